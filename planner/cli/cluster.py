"""Cluster commands: network topologies, pipeline schedules, training runs, node-limited routing,
collectives."""

from typing import TYPE_CHECKING, List, Optional

import typer

from planner import vocab
from planner.cli import command, show_tables, violated
from planner.cli.options import (EXPLAIN, FORMAT, HARDWARE, MODEL, MOE_MODEL, SEQ_LEN,
                                 Convention, Format, choices, hardware_option, quantity,
                                 refuse_unread)

if TYPE_CHECKING:   # a type alias for the checker, the Enum for typer (options.Choice)
    from typing import TypeAlias

    from planner.cli.options import Choice

    Topo: TypeAlias = Choice
    Link: TypeAlias = Choice
else:
    Topo = choices("Topo", vocab.TOPOLOGIES)
    Link = choices("Link", vocab.LINK_TIERS)


@command("network")
def network_cmd(
    kinds: Optional[List[Topo]] = typer.Argument(
        None, help="Topologies: ft2 mpft ft3 sf df [default: all five of P Table 3]."),
    radix: int = typer.Option(64, "--radix", min=2, help="Switch ports (fat trees)."),
    planes: int = typer.Option(8, "--planes", min=1, help="Planes of the multi-plane fat tree."),
    q: int = typer.Option(28, "--q", min=2, help="Slim Fly q (4w + δ, δ in -1, 0, 1)."),
    p: int = typer.Option(16, "--p", min=1, help="Dragonfly endpoints per router."),
    a: int = typer.Option(32, "--a", min=1, help="Dragonfly routers per group."),
    h: int = typer.Option(16, "--h", min=1, help="Dragonfly global links per router."),
    g: int = typer.Option(511, "--g", min=1, help="Dragonfly groups (511 reproduces P)."),
    prices: Optional[str] = typer.Option(None, "--prices", metavar="YAML",
                                         help="Network price spec [default: hardware/network/"
                                              "ib-ndr-400g.yaml]."),
    fmt: Format = FORMAT,
) -> None:
    """Network topologies (P Table 3): endpoints, switches, links and cost per endpoint."""
    from planner import report
    from planner.calc import network
    from planner.errors import UsageError
    from planner.specs.load import load_spec_file
    from planner.specs.network import NetworkPrices
    from planner.studies.paper import PAPER_TABLE3, default_network_prices

    price_spec = (default_network_prices() if prices is None
                  else load_spec_file(NetworkPrices, prices))
    costs = []
    for kind in kinds or [Topo(k) for k in network.TABLE3_KINDS]:
        try:
            topo = network.topology(kind.value, radix=radix, planes=planes, q=q, p=p, a=a, h=h,
                                    g=g)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        costs.append(network.topology_cost(topo, price_spec))
    show_tables([report.network_table(costs, PAPER_TABLE3)], fmt)


@command("pipeline")
def pipeline_cmd(
    pp: int = typer.Option(16, "--pp", min=2, help="Pipeline stages (even)."),
    f: Optional[float] = typer.Option(None, "--f", min=0,
                                      help="Forward chunk time, s [default: P Table 4's 1.13, "
                                           "or derived with --model]."),
    b: Optional[float] = typer.Option(None, "--b", min=0,
                                      help="Full backward chunk time, s [default: 1.99]."),
    w: Optional[float] = typer.Option(None, "--w", min=0,
                                      help="Weight-backward chunk time, s [default: 0.48]."),
    fb: Optional[float] = typer.Option(None, "--fb", min=0,
                                       help="Overlapped forward+backward time, s "
                                            "[default: F + B, no overlap gain]."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Derive F, B, W from this model's FLOPs "
                                             "(needs --hardware)."),
    hardware: Optional[str] = hardware_option(
        None, "Hardware whose achievable BF16 FLOP/s runs the chunks."),
    tokens_per_micro_batch: float = typer.Option(4096, "--tokens-per-micro-batch", min=1),
    micro_batches: Optional[int] = typer.Option(None, "--micro-batches", min=1,
                                                help="For the bubble share."),
    stage_params: Optional[str] = typer.Option(None, "--stage-params-bytes",
                                               help="One stage's parameter bytes (\"12 GB\")."),
    activations: Optional[str] = typer.Option(None, "--activation-bytes",
                                              help="One micro-batch's activations on one stage."),
    fmt: Format = FORMAT,
) -> None:
    """Pipeline bubbles and per-device memory of 1F1B, ZB1P, DualPipe and DualPipeV."""
    from planner import catalog, report
    from planner.calc.pipeline import pipeline_chunk_times, pipeline_schedules
    from planner.errors import UsageError

    if (model is None) != (hardware is None):
        raise UsageError("give --model and --hardware together to derive chunk times")
    f, b, w, origin = pipeline_chunk_times(
        f_s=f, b_s=b, w_s=w, pp=pp,
        model=None if model is None else catalog.load_model(model),
        hardware=None if hardware is None else catalog.load_hardware(hardware),
        tokens_per_micro_batch=tokens_per_micro_batch)
    results = pipeline_schedules(
        pp=pp, f_s=f, b_s=b, w_s=w, fb_s=fb, num_micro_batches=micro_batches,
        stage_param_bytes=(None if stage_params is None
                           else quantity(stage_params, "bytes", "--stage-params-bytes")),
        micro_batch_activation_bytes=(None if activations is None
                                      else quantity(activations, "bytes", "--activation-bytes")))
    table = report.pipeline_table(results, f_s=f, b_s=b, w_s=w, fb_s=results[0].fb_s)
    table.notes.append(f"F, B, W: {origin}.")
    show_tables([table], fmt)


#: ``train``'s layout-mode parameters, which the accounting mode (--mfu, --gpu-hours,
#: --tokens-per-day) does not read.
TRAIN_LAYOUT_ONLY = ("tp", "pp", "vpp", "cp", "dp", "ep", "micro_batch", "global_batch",
                     "recompute", "zero", "schedule", "fp8", "search", "top")


@command("train")
def train_cmd(
    ctx: typer.Context,
    model: str = MODEL,
    hardware: str = HARDWARE,
    tokens: str = typer.Option(..., "--tokens", help="Training tokens (\"14.8T\")."),
    gpus: int = typer.Option(..., "--gpus", min=1, help="GPUs in the run."),
    mfu: Optional[float] = typer.Option(None, "--mfu", min=0, max=1,
                                        help="Model FLOPs utilization (fraction)."),
    gpu_hours: Optional[str] = typer.Option(None, "--gpu-hours",
                                            help="GPU-hours of the run (\"2.664M\")."),
    tokens_per_day: Optional[str] = typer.Option(None, "--tokens-per-day",
                                                 help="Tokens per day (\"272.8B\")."),
    convention: Convention = typer.Option(Convention.exact_causal, "--convention",
                                          help="exact-causal (P's 'causal') or exact-full "
                                               "(P's 'non-causal')."),
    seq_len: int = SEQ_LEN,
    price: Optional[float] = typer.Option(None, "--usd-per-gpu-hour", min=0,
                                          help="[default: the hardware spec's price]"),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel size (layout mode)."),
    pp: int = typer.Option(1, "--pp", min=1, help="Pipeline stages (devices per pipeline)."),
    vpp: int = typer.Option(1, "--vpp", min=1, help="Model chunks per device (interleaved)."),
    cp: int = typer.Option(1, "--cp", min=1, help="Context-parallel size."),
    dp: Optional[int] = typer.Option(None, "--dp", min=1,
                                     help="[default: GPUs / (tp x pp x cp)]"),
    ep: int = typer.Option(1, "--ep", min=1, help="Expert-parallel size."),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, help="Sequences per micro-batch."),
    global_batch: Optional[int] = typer.Option(None, "--global-batch", min=1,
                                               help="Sequences per step (layout mode)."),
    recompute: str = typer.Option("selective", "--recompute",
                                  help="none, selective or full."),
    zero: int = typer.Option(1, "--zero", min=0, max=3, help="ZeRO stage 0-3 (3 = FSDP)."),
    schedule: str = typer.Option("1f1b", "--schedule",
                                 help="1f1b, interleaved, zb1p, dualpipe or dualpipev."),
    fp8: bool = typer.Option(False, "--fp8", help="FP8 GEMMs (DeepSeek-V3's recipe)."),
    search: bool = typer.Option(False, "--search",
                                help="List the fastest layouts that fit (needs --global-batch)."),
    top: int = typer.Option(10, "--top", min=1, max=1000, help="Layouts --search lists."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Training GPU-hours, days, cost and MFU: from a layout (--global-batch with --tp, --pp,
    ...: memory per GPU, step time, MFU predicted), a --search over layouts, or given one of
    --mfu, --gpu-hours, --tokens-per-day. A --search where no layout fits exits 1 and shows the
    layout nearest to fitting."""
    from planner import catalog, report
    from planner.calc import training
    from planner.calc.training import train_run

    accounting = (mfu, gpu_hours, tokens_per_day) != (None, None, None)
    _check_train_mode(ctx, accounting=accounting, search=search)
    if global_batch is not None and not accounting:
        _train_layout_mode(model, hardware, tokens=quantity(tokens, "count", "--tokens"),
                           gpus=gpus, layout=dict(
                               tp=tp, pp=pp, vpp=vpp, cp=cp, dp=dp, ep=ep,
                               micro_batch=micro_batch, global_batch=global_batch,
                               seq_len=seq_len, recompute=recompute, zero=zero,
                               schedule=schedule, recipe="fp8" if fp8 else "bf16",
                               usd_per_gpu_hour=price), search=search, top=top, fmt=fmt,
                           explain=explain)
        return
    if search:
        from planner.errors import UsageError

        raise UsageError("--search needs --global-batch (and no --mfu, --gpu-hours or "
                         "--tokens-per-day)")
    r = train_run(
        catalog.load_model(model), catalog.load_hardware(hardware),
        tokens=quantity(tokens, "count", "--tokens"), num_gpus=gpus, mfu=mfu,
        gpu_hours=None if gpu_hours is None else quantity(gpu_hours, "count", "--gpu-hours"),
        tokens_per_day=(None if tokens_per_day is None
                        else quantity(tokens_per_day, "count", "--tokens-per-day")),
        convention=convention.value, seq_len=seq_len, usd_per_gpu_hour=price)
    tables = [report.train_table(r)]
    if explain:
        tables.append(report.explain_table(f"training {r.model}", training.FORMULA,
                                           training.REF, r.inputs))
    show_tables(tables, fmt)


def _check_train_mode(ctx: typer.Context, *, accounting: bool, search: bool) -> None:
    """Refuse, in one line, an option ``train``'s mode would not read: a layout option where
    the speed is given (--mfu, --gpu-hours, --tokens-per-day), --top without --search."""
    if accounting:
        refuse_unread(ctx, TRAIN_LAYOUT_ONLY, "layout-mode options, which --mfu, --gpu-hours "
                      "and --tokens-per-day (speed given, not predicted) do not read")
    elif not search:
        refuse_unread(ctx, ("top",), "counts the layouts of --search, which is not given")


def _train_layout_mode(model: str, hardware: str, *, tokens: float, gpus: int, layout: dict,
                       search: bool, top: int, fmt: Format, explain: bool) -> None:
    """Layout mode of ``planner train``: one layout's tables, or the search's."""
    from planner import catalog, report
    from planner.calc.train import layout as train_module
    from planner.calc.train.layout import search_layouts, train_layout
    from planner.errors import UsageError
    from planner.specs.deployment import MAX_GPUS
    from planner.units import MAX_COUNT

    if not 0 < tokens <= MAX_COUNT:
        raise UsageError(f"--tokens: expected a count above 0 and at most {MAX_COUNT:.0e} "
                         f"(got {tokens:g})")
    if gpus > MAX_GPUS:
        raise UsageError(f"--gpus: at most {MAX_GPUS:,} (got {gpus:,})")
    m, h = catalog.load_model(model), catalog.load_hardware(hardware)
    if search:
        e, order = search_layouts(m, h, gpus=gpus, global_batch=layout["global_batch"],
                                  seq_len=layout["seq_len"], recipe=layout["recipe"], top=top)
        names = dict(gpus=gpus, model=m.label, hardware=h.label)
        show_tables([report.train_search_table(e, order, **names)], fmt)
        over = report.train_search_violation(e, **names)
        if over is not None:
            violated(over)
        return
    r = train_layout(m, h, gpus=gpus, tokens=tokens, **layout)
    tables = report.train_layout_tables(r)
    if explain:
        tables.append(report.explain_table(f"training {r.model} from a layout",
                                           train_module.FORMULA, train_module.REF, r.inputs))
    show_tables(tables, fmt)


@command("routing")
def routing_cmd(
    model: str = MOE_MODEL,
    hardware: str = HARDWARE,
    ep: int = typer.Option(64, "--ep", min=1, help="EP size (GPUs)."),
    nodes: int = typer.Option(8, "--nodes", min=1, help="Nodes the EP group spans."),
    tokens_per_gpu: float = typer.Option(4096, "--tokens-per-gpu", min=0,
                                         help="Tokens per GPU in one micro-batch."),
    node_limit: Optional[int] = typer.Option(None, "--node-limit", min=1,
                                             help="[default: the model's num_limited_groups]"),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Node-limited routing: IB copies per token with and without NVLink forwarding (P §4.3)."""
    from planner import catalog, report
    from planner.calc import routing
    from planner.calc.routing import node_limited_routing

    r = node_limited_routing(catalog.load_model(model), catalog.load_hardware(hardware),
                             ep_size=ep, num_nodes=nodes, tokens_per_gpu=tokens_per_gpu,
                             node_limit=node_limit)
    tables = [report.routing_table(r)]
    if explain:
        tables.append(report.explain_table(f"routing {r.model}", routing.FORMULA, routing.REF,
                                           r.inputs))
    show_tables(tables, fmt)


@command("collective")
def collective_cmd(
    operation: str = typer.Argument(..., help="all-reduce, all-gather, reduce-scatter or "
                                              "all-to-all."),
    hardware: str = HARDWARE,
    size: str = typer.Option(..., "--size", help="Buffer bytes (\"1 GB\")."),
    ranks: int = typer.Option(..., "--ranks", min=1, help="Ranks (GPUs)."),
    link: Link = typer.Option(Link.scale_out_cross_leaf, "--link", help="Link tier."),
    algorithm: Optional[str] = typer.Option(None, "--algorithm",
                                            help="ring, tree or two-shot (all-reduce); default ring."),
    latency_us: Optional[float] = typer.Option(None, "--latency-us", min=0,
                                               help="[default: the spec's latency, P Table 5]"),
    achievable: bool = typer.Option(False, "--achievable",
                                    help="Bandwidth x the spec's efficiency factor."),
    fmt: Format = FORMAT,
) -> None:
    """Alpha-beta time of a collective on one link tier (latencies: P Table 5)."""
    from planner import catalog, report
    from planner.calc.collectives import hardware_collective

    row = hardware_collective(
        catalog.load_hardware(hardware), operation=operation, algorithm=algorithm,
        num_ranks=ranks, bytes_total=quantity(size, "bytes", "--size"), link=link.value,
        achievable=achievable, latency_us=latency_us)
    show_tables([report.collective_table([row])], fmt)
