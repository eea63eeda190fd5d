"""The ``planner`` command line: thin typer commands that parse options, call the library and
render with :mod:`planner.report`. No arithmetic here.

Annotations here are evaluated when the functions are defined (no ``from __future__ import
annotations``): typer reads them at every call, and string annotations would have to be compiled
and evaluated each time.
"""


import functools
import sys
from enum import Enum
from typing import Any, Callable, List, Optional

import typer

from planner import vocab
from planner.errors import PlannerError

def choices(name: str, values: tuple[str, ...]) -> Any:
    """A ``str`` Enum of ``values`` (a closed set of :mod:`planner.vocab`) for typer's choices;
    a member's name is its value with ``-`` as ``_`` (``ExpertBalance.no_eplb``)."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


app = typer.Typer(
    name="planner",
    help="Closed-form LLM capacity planner: KV cache, FLOPs and expert-parallel communication "
         "for any model on any hardware, reproducing the DeepSeek-V3 ISCA 2025 paper.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


Format = choices("Format", vocab.OUTPUT_FORMATS)


FORMAT = typer.Option(Format.table, "--format", "-f", help="Output format.")
EXPLAIN = typer.Option(False, "--explain",
                       help="Also print the formula, every input with where it came from, and "
                            "the reference.")


def fail(err: PlannerError) -> None:
    """One line on stderr, exit code 2 (invalid input)."""
    sys.stderr.write(f"error: {err}\n")
    raise typer.Exit(err.exit_code)


def command(name: str | None = None, **kw: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.command`` that turns a :class:`PlannerError` into one line and exit code 2."""

    def wrap(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except PlannerError as err:
                fail(err)
            except OverflowError:
                fail(PlannerError("a number given is too large to compute with"))

        return app.command(name, **kw)(run)

    return wrap


def write_file(path: str, text: str, what: str = "the file") -> None:
    """Write ``text`` to ``path``, or a one-line error naming the file."""
    from planner.errors import SpecError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(f"cannot write {what} ({exc.strerror or exc})", file=path) from None


def emit(text: str, output: str | None) -> None:
    """``text`` to stdout, or to the file ``output`` (saying so on stderr)."""
    if output is None:
        sys.stdout.write(text)
        return
    write_file(output, text)
    sys.stderr.write(f"wrote {output}\n")


def show_tables(tables: list[Any], fmt: Format) -> None:
    from planner.report import render

    render(tables, fmt.value)


# ----------------------------------------------------------------------------- catalog
@command("models")
def models_cmd(fmt: Format = FORMAT) -> None:
    """List the built-in models with their key figures."""
    from planner import catalog, report
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.params import model_params

    ms = [catalog.load_model(n) for n in catalog.names("model")]
    show_tables([report.catalog_models_table(ms, [model_params(m) for m in ms],
                                             [model_kv_cache(m) for m in ms])], fmt)


@command("hardware")
def hardware_cmd(fmt: Format = FORMAT) -> None:
    """List the built-in hardware with peak figures (dense FLOP/s, unidirectional bandwidths)."""
    from planner import catalog, report

    show_tables([report.catalog_hardware_table(
        [catalog.load_hardware(n) for n in catalog.names("hardware")])], fmt)


@command("show")
def show_cmd(name: str = typer.Argument(..., help="Catalog name or path to a YAML spec."),
             seq_len: int = typer.Option(4096, min=1, help="Sequence length for FLOPs."),
             fmt: Format = FORMAT) -> None:
    """Show one model or hardware spec with its derived figures."""
    from planner import catalog, report
    from planner.calc.flops import model_flops_per_token
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.params import model_params
    from planner.specs import Model

    spec = catalog.load_any(name)
    if isinstance(spec, Model):
        tables = report.model_detail_tables(spec, model_params(spec), model_kv_cache(spec),
                                            model_flops_per_token(spec, seq_len=seq_len))
    else:
        tables = report.hardware_detail_tables(spec)
    show_tables(tables, fmt)


# ----------------------------------------------------------------------------- calculators
#: Element types, as :data:`planner.units.DTYPE_BYTES` knows them.
Dtype = choices("Dtype", vocab.DTYPES)


@command("kv-cache")
def kv_cache_cmd(
    models: List[str] = typer.Argument(..., help="Model names or YAML paths; multipliers are "
                                                 "relative to the first."),
    dtype: Dtype = typer.Option("bf16", "--dtype", help="KV cache element type."),
    context_tokens: int = typer.Option(1, "--context-tokens", min=1,
                                       help="Tokens per sequence (for the total cache)."),
    batch: int = typer.Option(1, "--batch", min=1, help="Sequences (for the total cache)."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """KV cache bytes per token for MHA/GQA/MQA/MLA (paper Table 1), and for a batch at a context."""
    from planner import catalog, report
    from planner.calc import kv_cache

    results = kv_cache.kv_cache_for_models([catalog.load_model(m) for m in models],
                                           dtype=dtype.value, context_tokens=context_tokens,
                                           batch=batch)
    tables = [report.kv_cache_table(results)]
    if explain:
        tables += [report.explain_table(r.model, kv_cache.FORMULA, kv_cache.REF, r.inputs)
                   for r in results]
    show_tables(tables, fmt)


Convention = choices("Convention", vocab.FLOPS_CONVENTIONS)


@command("flops")
def flops_cmd(
    models: List[str] = typer.Argument(..., help="Model names or YAML paths."),
    seq_len: int = typer.Option(4096, "--seq-len", min=1, help="Sequence length s."),
    convention: Convention = typer.Option(
        Convention.exact_causal, "--convention",
        help="exact-causal: activated matmul parameters + causal attention (default; paper's "
             "MoE rows). exact-full: full attention. approx-12ld2: 6·(12·L·d² + V·d), the "
             "paper's dense rows."),
    parts: bool = typer.Option(False, "--parts", help="Also show forward FLOPs by part."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Forward and training FLOPs per token and parameter counts (paper Table 2)."""
    from planner import catalog, report
    from planner.calc import flops

    results = [flops.model_flops_per_token(catalog.load_model(m), seq_len=seq_len,
                                           convention=convention.value) for m in models]
    tables = [report.flops_table(results)]
    if parts:
        tables += [report.flops_parts_table(r) for r in results]
    if explain:
        tables += [report.explain_table(r.model, flops.FORMULA[r.convention], flops.REF,
                                        r.inputs, basis=flops.CONVENTIONS[r.convention])
                   for r in results]
    show_tables(tables, fmt)


WireFormat = choices("WireFormat", vocab.WIRE_FORMATS)


@command("ep")
def ep_cmd(
    model: str = typer.Argument(..., help="Model name or YAML path (an MoE model)."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Hardware name or YAML path."),
    ep: Optional[int] = typer.Option(None, "--ep", min=1,
                                     help="EP group size [default: one routed expert per GPU]."),
    tokens_per_device: float = typer.Option(32, "--tokens-per-device", min=0,
                                            help="Tokens each GPU decodes at a time."),
    experts_per_token: Optional[int] = typer.Option(
        None, "--experts-per-token", min=1, help="[default: top-k + shared experts]"),
    hidden: Optional[int] = typer.Option(None, "--hidden", min=1,
                                         help="Hidden size [default: the model's]."),
    dispatch_bytes: Optional[float] = typer.Option(
        None, "--dispatch-bytes", min=0,
        help="Bytes per element dispatched, no scales (the paper: 1) [default: FP8 with its "
             "1x128 scales and DeepEP metadata]."),
    combine_bytes: Optional[float] = typer.Option(
        None, "--combine-bytes", min=0, help="Bytes per element combined [default: 2, BF16]."),
    bandwidth_gb_per_s: Optional[float] = typer.Option(
        None, "--bandwidth-gb-per-s", min=0,
        help="Link bandwidth per GPU, unidirectional, GB/s [default: from the hardware spec]."),
    micro_batches: int = typer.Option(2, "--micro-batches", min=1,
                                      help="Micro-batches overlapped (computation hidden)."),
    layers: Optional[int] = typer.Option(None, "--layers", min=1,
                                         help="[default: the model's layers]"),
    achievable: bool = typer.Option(False, "--achievable",
                                    help="Use achievable bandwidth (peak x the spec's efficiency "
                                         "factor) instead of peak."),
    dispatch_format: Optional[WireFormat] = typer.Option(
        None, "--dispatch-format", help="Price dispatch in this format, per-tile metadata "
                                        "included (see `planner numerics`)."),
    combine_format: Optional[WireFormat] = typer.Option(
        None, "--combine-format", help="Price combine in this format."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Expert-parallel communication time per layer and the decode tokens/s ceiling (paper §2.3.2)."""
    from planner import catalog, report
    from planner.calc import ep as ep_calc
    from planner.units import gb_per_s_to_bytes_per_s

    result = ep_calc.ep_decode_limit(
        catalog.load_model(model), catalog.load_hardware(hardware), ep_size=ep,
        tokens_per_device=tokens_per_device, experts_per_token=experts_per_token,
        hidden_size=hidden, dispatch_bytes_per_element=dispatch_bytes,
        combine_bytes_per_element=combine_bytes,
        bandwidth_bytes_per_s=(None if bandwidth_gb_per_s is None
                               else gb_per_s_to_bytes_per_s(bandwidth_gb_per_s)),
        num_micro_batches=micro_batches, num_layers=layers, achievable=achievable,
        dispatch_format=None if dispatch_format is None else dispatch_format.value,
        combine_format=None if combine_format is None else combine_format.value,
    )
    tables = [report.ep_table(result)]
    if explain:
        tables.append(report.explain_table(f"{result.model} on {result.hardware}",
                                           ep_calc.FORMULA, ep_calc.REF, result.inputs,
                                           basis=result.bandwidth_basis))
    show_tables(tables, fmt)


@command("paper")
def paper_cmd(fmt: Format = FORMAT) -> None:
    """Reproduce the paper's closed-form figures from the catalog, beside the printed values."""
    from planner import report
    from planner.studies.paper import paper_rows

    show_tables(report.paper_tables(paper_rows()), fmt)


@command("import-hf")
def import_hf_cmd(
    config: str = typer.Argument(..., help="A local Hugging Face config.json."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write the YAML spec here [default: stdout]."),
    name: Optional[str] = typer.Option(None, "--name",
                                       help="Model name [default: the config's folder name]."),
) -> None:
    """Convert a Hugging Face config.json into a model spec (no network)."""
    from planner.specs.hf import hf_config_to_yaml

    text = hf_config_to_yaml(config, name=name)
    emit(text, output)


@command("compare")
def compare_cmd(
    models: List[str] = typer.Argument(..., help="Model names, YAML paths or config.json files."),
    hardware: Optional[List[str]] = typer.Option(None, "--hardware", "-H",
                                                 help="Hardware to compare on (repeatable) "
                                                      "[default: h800]."),
    context_tokens: int = typer.Option(4096, "--context-tokens", min=1,
                                       help="Context for the decode bytes per step."),
    seq_len: int = typer.Option(4096, "--seq-len", min=1, help="Sequence length for FLOPs."),
    fmt: Format = FORMAT,
) -> None:
    """Models side by side: KV cache and context (MLA vs GQA), FLOPs (dense vs MoE), EP ceiling."""
    from planner import catalog, report
    from planner.studies.compare import compare_models

    hws = [catalog.load_hardware(h) for h in (hardware or ["h800"])]
    rows = compare_models([catalog.load_model(m) for m in models], hws,
                          context_tokens=context_tokens, seq_len=seq_len)
    show_tables(report.compare_tables(rows, [h.name or h.label for h in hws],
                                      context_tokens=context_tokens, seq_len=seq_len), fmt)


@command("sweep")
def sweep_cmd(
    model: str = typer.Argument(..., help="Model name, YAML path or config.json."),
    hardware: str = typer.Option("h800", "--hardware", "-H", help="Hardware name or YAML path."),
    metric: str = typer.Option("decode_tokens_per_s", "--metric", "-m",
                               help="kv_cache_bytes_per_token, kv_cache_bytes, "
                                    "ep_comm_time_per_layer_s, time_per_layer_s, tpot_s or "
                                    "decode_tokens_per_s."),
    vary: List[str] = typer.Option(..., "--vary",
                                   help="name=start:stop:linN | logN | a,b,c (once or twice); "
                                        "see `planner sweep --help` for names."),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|FILE.svg",
                                       help="Also draw the sweep (needs planner[plot])."),
    fmt: Format = FORMAT,
) -> None:
    """Vary one or two inputs (model, hardware, deployment) and compute a metric, vectorized.

    Variables: num_layers, hidden_size, kv_lora_rank, qk_rope_head_dim, num_kv_heads, head_dim,
    experts_per_token, tokens_per_device, ep_size, micro_batches, context_tokens, batch,
    nic_bandwidth_gb_per_s, nvlink_bandwidth_gb_per_s.
    """
    from planner import catalog, report
    from planner.studies import sweep as sw

    m, h = catalog.load_model(model), catalog.load_hardware(hardware)
    points, rows = sw.grid_size(vary)
    bar = None
    if points > sw.PROGRESS_MIN_POINTS and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("sweeping", total=rows)
        bar.start()
    try:
        result = sw.run_sweep(m, h, metric, vary, progress=None if bar is None else (
            lambda done, _rows: bar.update(task, completed=done)))
    finally:
        if bar is not None:
            bar.stop()
    if plot is not None:
        sw.plot(result, plot)
        sys.stderr.write(f"wrote {plot}\n")
    show_tables([report.sweep_table(result, sw.records(result), sw.SWEEP_METRICS[metric][0])],
                fmt)


SharedExperts = choices("SharedExperts", vocab.SHARED_EXPERTS)


Overlap = choices("Overlap", vocab.OVERLAP_MODES)


AttentionDtype = choices("AttentionDtype", vocab.ATTENTION_DTYPES)


ExpertBalance = choices("ExpertBalance", vocab.EXPERT_BALANCES)


Phase = choices("Phase", vocab.PHASES)


WeightsDtype = choices("WeightsDtype", vocab.SERVING_WEIGHT_DTYPES)


@command("serve")
def serve_cmd(
    model: str = typer.Argument(..., help="Model name, YAML path or config.json."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Hardware name or YAML path."),
    phase: Phase = typer.Option(Phase.decode, "--phase"),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1,
                                       help="[default: one routed expert per GPU, or a node]"),
    ep: Optional[int] = typer.Option(None, "--ep", min=1, help="[default: all the GPUs]"),
    tp: Optional[int] = typer.Option(None, "--tp", min=1,
                                     help="Attention TP [default: 1, or the scale-up domain "
                                          "with --no-dp-attention]."),
    dp_attention: bool = typer.Option(True, "--dp-attention/--no-dp-attention",
                                      help="Attention data parallel (each GPU its own "
                                           "sequences) or tensor parallel."),
    batch_per_gpu: float = typer.Option(32, "--batch-per-gpu", min=1,
                                        help="Decode: sequences per GPU."),
    tokens_per_gpu: float = typer.Option(16384, "--tokens-per-gpu", min=1,
                                         help="Prefill: prompt tokens per GPU per batch."),
    context_tokens: int = typer.Option(4096, "--context-tokens", min=1,
                                       help="Decode: KV cache per sequence."),
    prompt_tokens: Optional[int] = typer.Option(None, "--prompt-tokens", min=1,
                                                help="Prefill: prompt length "
                                                     "[default: --context-tokens]."),
    shared_experts: SharedExperts = typer.Option(
        SharedExperts.local, "--shared-experts",
        help="local: computed beside attention (SGLang, vLLM); routed: dispatched like a "
             "routed expert (DeepSeek's decode)."),
    expert_balance: ExpertBalance = typer.Option(
        ExpertBalance.eplb, "--expert-balance",
        help="Load of the hottest EP rank: eplb / no-eplb (routing skew measured for "
             "DeepSeek-R1 with and without EPLB), uniform (sampling noise only), exact (none)."),
    weights_dtype: WeightsDtype = typer.Option(WeightsDtype.fp8, "--weights-dtype"),
    kv_dtype: Dtype = typer.Option("bf16", "--kv-dtype"),
    attention_dtype: AttentionDtype = typer.Option(
        AttentionDtype.bf16, "--attention-dtype",
        help="Attention core precision: bf16 (FlashMLA, FlashAttention), or fp8 (FP8 Q and KV "
             "on the FP8 tensor cores; use with --kv-dtype fp8)."),
    mtp_acceptance: Optional[float] = typer.Option(None, "--mtp-acceptance", min=0, max=1,
                                                   help="MTP draft acceptance (P: 0.8-0.9)."),
    mtp_depth: Optional[int] = typer.Option(None, "--mtp-depth", min=1,
                                            help="MTP draft tokens per step [default: the "
                                                 "model's MTP modules]."),
    overlap: Overlap = typer.Option(
        Overlap.dual, "--overlap",
        help="Compute/EP overlap: dual micro-batches (DeepSeek, SGLang TBO), single-batch "
             "(SGLang SBO: dispatch beside the shared expert, combine beside the down GEMM), "
             "or none."),
    intranode_nvlink: bool = typer.Option(
        False, "--intranode-nvlink",
        help="Decode: EP copies to the node's own GPUs over NVLink (DeepEP low-latency with "
             "NVLink allowed) instead of the NIC."),
    gemm_tile_rows: Optional[int] = typer.Option(
        None, "--gemm-tile-rows", min=1,
        help="Rows per GEMM tile; fewer rows compute the padding [default: the hardware's "
             "mma_tile_rows, 64 on Hopper]."),
    expert_tile_rows: Optional[int] = typer.Option(
        None, "--expert-tile-rows", min=1,
        help="Rows per tile of the routed experts' grouped GEMMs [default: the GEMM tile; 32 "
             "for DeepGEMM's swapAB masked grouped GEMM]."),
    bound: bool = typer.Option(False, "--bound", help="Pure peak ceiling (no efficiency)."),
    fmt: Format = FORMAT,
) -> None:
    """Serving roofline: memory per GPU, decode TPOT or prefill TTFT, tokens/s, the bottleneck."""
    from planner import catalog, report
    from planner.calc.serving import serve
    from planner.specs.deployment import ServeConfig

    decode = phase is Phase.decode
    hw = catalog.load_hardware(hardware)
    config = ServeConfig(
        phase=phase.value, gpus=gpus, ep=ep,
        tp=tp or (1 if dp_attention else hw.scale_up_domain_gpus),
        batch_per_gpu=batch_per_gpu if decode else tokens_per_gpu,
        context_tokens=context_tokens if decode else prompt_tokens or context_tokens,
        weights_dtype=weights_dtype.value, kv_dtype=kv_dtype.value,
        attention_dtype=attention_dtype.value, overlap=overlap.value, bound=bound,
        mtp_acceptance=mtp_acceptance, mtp_depth=mtp_depth, intranode_nvlink=intranode_nvlink,
        gemm_tile_rows=gemm_tile_rows, expert_tile_rows=expert_tile_rows,
        shared_experts=shared_experts.value, expert_balance=expert_balance.value)
    r = serve(catalog.load_model(model), hw, config)
    show_tables(report.serve_tables(r), fmt)


@command("validate")
def validate_cmd(fmt: Format = FORMAT) -> None:
    """The serving model beside measured deployment runs: predictions, errors, sources."""
    from planner import report
    from planner.studies.validate import validation_report

    show_tables(report.validation_table(validation_report()), fmt)


@command("fit")
def fit_cmd(
    models: List[str] = typer.Argument(..., help="Model names, YAML paths or config.json."),
    hardware: List[str] = typer.Option(..., "--hardware", "-H", help="Hardware (repeatable)."),
    context_tokens: int = typer.Option(4096, "--context-tokens", min=1),
    weights_dtype: WeightsDtype = typer.Option(WeightsDtype.fp8, "--weights-dtype"),
    kv_dtype: Dtype = typer.Option("bf16", "--kv-dtype"),
    fmt: Format = FORMAT,
) -> None:
    """The fewest GPUs that hold a model, and the largest batch per GPU at a context."""
    from planner import catalog, report
    from planner.calc.serving import fewest_gpus

    fits = [fewest_gpus(catalog.load_model(m), catalog.load_hardware(h),
                        weights_dtype=weights_dtype.value, kv_dtype=kv_dtype.value,
                        context_tokens=context_tokens) for m in models for h in hardware]
    show_tables([report.fit_table(fits)], fmt)


SpecKind = choices("SpecKind", vocab.SPEC_KINDS)


@command("schema")
def schema_cmd(
    kind: SpecKind = typer.Argument(..., help="model, hardware, scenario or network-prices."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write the schema here [default: stdout]."),
) -> None:
    """JSON Schema of a spec file, for editors (yaml-language-server) and other tools."""
    import json

    from planner.specs.schema import json_schema

    text = json.dumps(json_schema(kind.value), indent=2) + "\n"
    emit(text, output)


# ----------------------------------------------------------------------------- cluster
def quantity(text: str, dimension: str, option: str) -> float:
    """A command-line quantity ("14.8T", "1 GB") in base units, or a usage error naming it."""
    from planner.errors import UsageError
    from planner.units import parse_quantity

    try:
        return parse_quantity(text, dimension)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


Topo = choices("Topo", vocab.TOPOLOGIES)


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
    from planner.studies.paper import PAPER_TABLE3, default_network_prices
    from planner.specs.load import load_spec_file
    from planner.specs.network import NetworkPrices

    price_spec = (default_network_prices() if prices is None
                  else load_spec_file(NetworkPrices, prices))
    costs = []
    for kind in kinds or [Topo(k) for k in network.TABLE3_KINDS]:
        try:
            topo = network.topology(kind.value, radix=radix, planes=planes, q=q, p=p, a=a, h=h,
                                    g=g)
        except ValueError as exc:
            from planner.errors import UsageError

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
    hardware: Optional[str] = typer.Option(None, "--hardware", "-H",
                                           help="Hardware whose achievable BF16 FLOP/s runs "
                                                "the chunks."),
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
    from planner import report
    from planner.calc.pipeline import pipeline_schedules, pipeline_chunk_times

    f, b, w, origin = pipeline_chunk_times(
        f_s=f, b_s=b, w_s=w, model=model, hardware=hardware, pp=pp,
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


@command("train")
def train_cmd(
    model: str = typer.Argument(..., help="Model name or YAML path."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Hardware name or YAML path."),
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
    seq_len: int = typer.Option(4096, "--seq-len", min=1),
    price: Optional[float] = typer.Option(None, "--usd-per-gpu-hour", min=0,
                                          help="[default: the hardware spec's price]"),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Training GPU-hours, days, cost and MFU; give one of --mfu, --gpu-hours, --tokens-per-day."""
    from planner import catalog, report
    from planner.calc.training import train_run

    r = train_run(
        catalog.load_model(model), catalog.load_hardware(hardware),
        tokens=quantity(tokens, "count", "--tokens"), num_gpus=gpus, mfu=mfu,
        gpu_hours=None if gpu_hours is None else quantity(gpu_hours, "count", "--gpu-hours"),
        tokens_per_day=(None if tokens_per_day is None
                        else quantity(tokens_per_day, "count", "--tokens-per-day")),
        convention=convention.value, seq_len=seq_len, usd_per_gpu_hour=price)
    tables = [report.train_table(r)]
    if explain:
        tables.append(report.explain_table(
            f"training {r.model}", "GPU-hours = T / (τ·3600), τ = R / F; MFU = R / R_peak; "
            "cost = GPU-hours × price", "P Table 4; DeepSeek-V3 report Table 1", r.inputs))
    show_tables(tables, fmt)


@command("routing")
def routing_cmd(
    model: str = typer.Argument(..., help="Model name or YAML path (an MoE model)."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Hardware name or YAML path."),
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
    from planner.calc.routing import node_limited_routing

    r = node_limited_routing(catalog.load_model(model), catalog.load_hardware(hardware),
                             ep_size=ep, num_nodes=nodes, tokens_per_gpu=tokens_per_gpu,
                             node_limit=node_limit)
    tables = [report.routing_table(r)]
    if explain:
        tables.append(report.explain_table(
            f"routing {r.model}", "E[M] = N(1 − C((N−1)E_n, k)/C(N·E_n, k)); IB time = T · M_remote "
            "· h · b / B_IB; NVLink time = T · k · h · b / B_NVLink", "P §4.3; V3R §3.2.2",
            r.inputs))
    show_tables(tables, fmt)


Link = choices("Link", vocab.LINK_TIERS)


@command("collective")
def collective_cmd(
    operation: str = typer.Argument(..., help="all-reduce, all-gather, reduce-scatter or "
                                              "all-to-all."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Hardware name or YAML path."),
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


# ----------------------------------------------------------------------------- numerics
@command("numerics")
def numerics_cmd(
    formats: str = typer.Option("e4m3,e5m2,e5m6,logfmt8,logfmt10,bf16", "--formats",
                                help="Comma-separated: e4m3 e5m2 e5m6 logfmt8 logfmt10 bf16."),
    tile: int = typer.Option(128, "--tile", min=1, help="Scaling tile: 1 x tile elements."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the generated data."),
    rows: int = typer.Option(256, "--rows", min=1, help="Rows (tokens) of the test data."),
    pow2_scale: bool = typer.Option(False, "--pow2-scale",
                                    help="Round FP8 scales up to powers of two."),
    fmt: Format = FORMAT,
) -> None:
    """FP8, E5M6 and LogFMT errors, FP8 accumulation precision, bytes on the wire (paper §3)."""
    from planner import report
    from planner.calc import numerics

    names = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in names if f not in numerics.FORMATS]
    if unknown or not names:
        from planner.errors import UsageError

        raise UsageError(f"--formats: unknown format(s) {', '.join(unknown) or '(none given)'}; "
                         f"expected: {', '.join(numerics.FORMATS)}")
    hidden = numerics.DEFAULT_HIDDEN_SIZE
    if hidden % tile:
        from planner.errors import UsageError

        raise UsageError(f"--tile must divide the hidden size {hidden} (got {tile})")
    errors = numerics.format_errors(names, tile=tile, seed=seed, rows=rows, cols=hidden,
                                    pow2_scale=pow2_scale)
    accumulation = numerics.accumulation_errors(seed=seed)
    comm = [{"format": f, "bytes": numerics.comm_bytes_per_token(f, hidden_size=hidden,
                                                                  tile=tile)} for f in names]
    show_tables(report.numerics_tables(errors, accumulation, comm, seed=seed), fmt)


# ----------------------------------------------------------------------------- scenarios
@command("evaluate")
def evaluate_cmd(
    scenarios: List[str] = typer.Argument(..., help="Scenario YAML files or directories."),
    fmt: Format = FORMAT,
) -> None:
    """Every metric a scenario defines (model, hardware, deployment), in base units."""
    from planner import budget, report

    evaluations = [budget.evaluate(f) for f in budget.scenario_files(scenarios)]
    show_tables(report.evaluation_tables(evaluations), fmt)


@command("check")
def check_cmd(
    paths: List[str] = typer.Argument(..., help="Scenario YAML files or directories (searched "
                                                "recursively for *.yaml, *.yml)."),
    junit: Optional[str] = typer.Option(None, "--junit", metavar="FILE",
                                        help="Also write JUnit XML, one test case per bound."),
    fmt: Format = FORMAT,
) -> None:
    """Check every scenario's budgets: exit 0 when all are met, 1 when one is violated, 2 on
    invalid input (nothing is printed on stdout then). With GITHUB_ACTIONS=true, violations and
    errors are also printed on stderr as ::error annotations at the budget's line."""
    import os

    from planner import budget, report

    result = budget.check(*paths)
    if junit is not None:
        write_file(junit, report.junit_xml(result), "JUnit XML")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in report.github_annotations(result):
            sys.stderr.write(line + "\n")
    for err in result.errors:
        sys.stderr.write(f"error: {err}\n")
    if result.errors:
        raise typer.Exit(result.exit_code)
    show_tables([report.check_table(result)], fmt)
    for r in result.violations:
        sys.stderr.write(f"violated: {report.violation_message(r)}\n")
    raise typer.Exit(result.exit_code)


@app.callback()
def _group() -> None:
    """Closed-form LLM capacity planner (kept a command group even when one command is
    registered; see :func:`main`)."""


def main() -> None:
    """Console-script entry point.

    typer builds the click parameters of every registered command at each call (about 0.2 ms
    per command); when the first argument names a command, only that one is registered, so a
    call pays for its own command. Help, completion and unknown names see them all.
    """
    name = sys.argv[1] if len(sys.argv) > 1 else None
    everything = app.registered_commands
    chosen = [c for c in everything if c.name == name]
    try:
        if chosen:
            app.registered_commands = chosen
        app(prog_name="planner")
    finally:
        app.registered_commands = everything
