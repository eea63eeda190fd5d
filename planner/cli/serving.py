"""Serving commands: the serving roofline of one deployment, the model beside measured runs,
the fewest GPUs that hold a model.

``serve`` has many options; each is declared once here, above the command, so that its
signature stays one line per option.
"""

from typing import TYPE_CHECKING, Any, List, Optional

import typer

from planner import vocab
from planner.cli import command, show_tables
from planner.cli.options import (FORMAT, HARDWARE, KV_DTYPE, MODEL, MODELS, OVERRIDES,
                                 PREFIX_CACHE_HIT, WEIGHTS_DTYPE, Dtype, Format, WeightsDtype,
                                 checked_overrides, checked_prefix_cache_hit, choices,
                                 hardware_option, refuse_unread, tokens_option, with_overrides)

if TYPE_CHECKING:   # a type alias for the checker, the Enum for typer (options.Choice)
    from typing import TypeAlias

    from planner.cli.options import Choice

    SharedExperts: TypeAlias = Choice
    Overlap: TypeAlias = Choice
    AttentionDtype: TypeAlias = Choice
    ExpertBalance: TypeAlias = Choice
    Phase: TypeAlias = Choice
else:
    SharedExperts = choices("SharedExperts", vocab.SHARED_EXPERTS)
    Overlap = choices("Overlap", vocab.OVERLAP_MODES)
    AttentionDtype = choices("AttentionDtype", vocab.ATTENTION_DTYPES)
    ExpertBalance = choices("ExpertBalance", vocab.EXPERT_BALANCES)
    Phase = choices("Phase", vocab.PHASES)

PHASE = typer.Option(Phase.decode, "--phase")
GPUS = typer.Option(None, "--gpus", min=1,
                    help="[default: one routed expert per GPU, or a node]")
EP = typer.Option(None, "--ep", min=1, help="[default: all the GPUs]")
TP = typer.Option(None, "--tp", min=1,
                  help="Attention TP [default: the smallest TP that fits in memory, said in the "
                       "output; 1 with --dp-attention, the scale-up domain with "
                       "--no-dp-attention].")
DP_ATTENTION = typer.Option(None, "--dp-attention/--no-dp-attention",
                            help="Attention data parallel (TP 1: each GPU its own sequences) or "
                                 "tensor parallel over the scale-up domain [default: the "
                                 "smallest TP that fits].", show_default=False)
BATCH_PER_GPU = typer.Option(32, "--batch-per-gpu", min=1, help="Decode: sequences per GPU.")
TOKENS_PER_GPU = typer.Option(16384, "--tokens-per-gpu", min=1,
                              help="Prefill: prompt tokens per GPU per batch.")
CONTEXT_TOKENS = tokens_option(4096, "--context-tokens", "Decode: KV cache per sequence")
PROMPT_TOKENS = tokens_option(None, "--prompt-tokens",
                              "Prefill: prompt length [default: --context-tokens]")
SHARED_EXPERTS = typer.Option(
    SharedExperts.local, "--shared-experts",
    help="local: computed beside attention (SGLang, vLLM); routed: dispatched like a routed "
         "expert (DeepSeek's decode).")
EXPERT_BALANCE = typer.Option(
    ExpertBalance.eplb, "--expert-balance",
    help="Load of the hottest EP rank: eplb / no-eplb (routing skew measured for DeepSeek-R1 "
         "with and without EPLB), uniform (sampling noise only), exact (none).")
ATTENTION_DTYPE = typer.Option(
    AttentionDtype.bf16, "--attention-dtype",
    help="Attention core precision: bf16 (FlashMLA, FlashAttention), or fp8 (FP8 Q and KV on "
         "the FP8 tensor cores; use with --kv-dtype fp8).")
MTP_ACCEPTANCE = typer.Option(None, "--mtp-acceptance", min=0, max=1,
                              help="MTP draft acceptance (P: 0.8-0.9).")
MTP_DEPTH = typer.Option(None, "--mtp-depth", "--mtp", min=1,
                         help="MTP draft tokens per step [default: the model's MTP modules].")
OVERLAP = typer.Option(
    Overlap.auto, "--overlap",
    help="Compute/EP overlap: auto (the fastest of the three for this step, named in the "
         "output), dual micro-batches (DeepSeek, SGLang TBO), single-batch (SGLang SBO: "
         "dispatch beside the shared expert, combine beside the down GEMM), or none.")
INTRANODE_NVLINK = typer.Option(
    False, "--intranode-nvlink",
    help="Decode: EP copies to the node's own GPUs over NVLink (DeepEP low-latency with NVLink "
         "allowed) instead of the NIC.")
GEMM_TILE_ROWS = typer.Option(
    None, "--gemm-tile-rows", min=1,
    help="Rows per GEMM tile; fewer rows compute the padding [default: the hardware's "
         "mma_tile_rows, 64 on Hopper].")
EXPERT_TILE_ROWS = typer.Option(
    None, "--expert-tile-rows", min=1,
    help="Rows per tile of the routed experts' grouped GEMMs [default: the GEMM tile; 32 for "
         "DeepGEMM's swapAB masked grouped GEMM].")
BOUND = typer.Option(False, "--bound", help="Pure peak ceiling (no efficiency).")
ISL = tokens_option(None, "--isl",
                    "Workload mode: input tokens per request (with --osl, --concurrency)")
OSL = tokens_option(None, "--osl", "Workload mode: output tokens per request")
CONCURRENCY = typer.Option(None, "--concurrency", min=1,
                           help="Workload mode: requests in flight per replica.")
PP = typer.Option(None, "--pp", min=1, help="Workload mode: pipeline stages [default: 1].")
ATTENTION_DP = typer.Option(None, "--attention-dp", min=1,
                            help="Workload mode: attention data-parallel ranks [default: 1].")
MOE_TP = typer.Option(None, "--moe-tp", min=1,
                      help="Workload mode: experts' tensor parallel [default: 1 for MoE, all "
                           "for dense].")
MOE_EP = typer.Option(None, "--moe-ep", min=1,
                      help="Workload mode: experts' expert parallel [default: TP x attention "
                           "DP for MoE, 1 for dense].")
ENGINE = typer.Option(None, "--engine",
                      help="Workload mode: trtllm, vllm, sglang (engines/*.yaml), a YAML path, "
                           "or none (idealised: no host overheads) [default: trtllm].")
#: Options of the workload mode alone: given without --isl/--osl/--concurrency, refused.
SERVE_KV_DTYPE = typer.Option(None, "--kv-dtype",
                              help="KV cache element type [default: bf16; workload mode: the "
                                   "engine's (TensorRT-LLM: FP8 with FP8 / FP4 weights)].")
WORKLOAD_ONLY = ("--pp", "--attention-dp", "--moe-tp", "--moe-ep", "--engine",
                 "--prefix-cache-hit")
#: Parameters of the single-step mode alone: given on the command line with --isl/--osl/
#: --concurrency, refused (the workload model would otherwise ignore them silently).
SINGLE_STEP_ONLY = ("phase", "gpus", "ep", "dp_attention", "batch_per_gpu", "tokens_per_gpu",
                    "context_tokens", "prompt_tokens", "shared_experts", "expert_balance",
                    "attention_dtype", "mtp_acceptance", "mtp_depth", "overlap",
                    "intranode_nvlink", "gemm_tile_rows", "expert_tile_rows", "bound")


@command("serve")
def serve_cmd(
    ctx: typer.Context,
    model: str = MODEL,
    hardware: str = HARDWARE,
    phase: Phase = PHASE,
    gpus: Optional[int] = GPUS,
    ep: Optional[int] = EP,
    tp: Optional[int] = TP,
    dp_attention: Optional[bool] = DP_ATTENTION,
    batch_per_gpu: float = BATCH_PER_GPU,
    tokens_per_gpu: float = TOKENS_PER_GPU,
    context_tokens: int = CONTEXT_TOKENS,
    prompt_tokens: Optional[int] = PROMPT_TOKENS,
    shared_experts: SharedExperts = SHARED_EXPERTS,
    expert_balance: ExpertBalance = EXPERT_BALANCE,
    weights_dtype: WeightsDtype = WEIGHTS_DTYPE,
    kv_dtype: Optional[Dtype] = SERVE_KV_DTYPE,
    attention_dtype: AttentionDtype = ATTENTION_DTYPE,
    mtp_acceptance: Optional[float] = MTP_ACCEPTANCE,
    mtp_depth: Optional[int] = MTP_DEPTH,
    overlap: Overlap = OVERLAP,
    intranode_nvlink: bool = INTRANODE_NVLINK,
    gemm_tile_rows: Optional[int] = GEMM_TILE_ROWS,
    expert_tile_rows: Optional[int] = EXPERT_TILE_ROWS,
    bound: bool = BOUND,
    isl: Optional[int] = ISL,
    osl: Optional[int] = OSL,
    concurrency: Optional[int] = CONCURRENCY,
    pp: Optional[int] = PP,
    attention_dp: Optional[int] = ATTENTION_DP,
    moe_tp: Optional[int] = MOE_TP,
    moe_ep: Optional[int] = MOE_EP,
    engine: Optional[str] = ENGINE,
    prefix_cache_hit: Optional[float] = PREFIX_CACHE_HIT,
    overrides: Optional[str] = OVERRIDES,
    fmt: Format = FORMAT,
) -> None:
    """Serving roofline: memory per GPU, decode TPOT or prefill TTFT, tokens/s, the bottleneck;
    with --isl, --osl and --concurrency a whole workload: TTFT, TPOT, end-to-end latency,
    tokens/s per GPU and per user."""
    from planner import catalog, report
    from planner.calc.serving import serve
    from planner.errors import UsageError
    from planner.specs.deployment import ServeConfig

    workload = (isl, osl, concurrency)
    if any(v is not None for v in workload):
        if any(v is None for v in workload):
            raise UsageError("workload mode needs all of --isl, --osl and --concurrency")
        refuse_unread(ctx, SINGLE_STEP_ONLY, "belong(s) to the single-step mode, which the "
                      "workload mode (--isl, --osl, --concurrency) does not read: drop them, "
                      "or drop --isl/--osl/--concurrency")
        return _serve_workload(model, hardware, engine, isl=isl, osl=osl,
                               concurrency=concurrency, tp=tp, pp=pp, attention_dp=attention_dp,
                               moe_tp=moe_tp, moe_ep=moe_ep, weights_dtype=weights_dtype.value,
                               kv_dtype=kv_dtype and kv_dtype.value, fmt=fmt,
                               overrides=overrides,
                               prefix_cache_hit=checked_prefix_cache_hit(prefix_cache_hit))
    given = [flag for flag, v in zip(WORKLOAD_ONLY, (pp, attention_dp, moe_tp, moe_ep, engine,
                                                     prefix_cache_hit)) if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} belong(s) to the workload mode: give --isl, --osl "
                         "and --concurrency too")
    decode = phase is Phase.decode
    (hw,), _, _ = with_overrides(overrides, [catalog.load_hardware(hardware)], None)
    config = ServeConfig(
        phase=phase.value, gpus=gpus, ep=ep,
        tp=tp or (None if dp_attention is None else 1 if dp_attention
                  else hw.scale_up_domain_gpus),
        batch_per_gpu=batch_per_gpu if decode else tokens_per_gpu,
        context_tokens=context_tokens if decode else prompt_tokens or context_tokens,
        weights_dtype=weights_dtype.value, kv_dtype=kv_dtype.value if kv_dtype else "bf16",
        attention_dtype=attention_dtype.value, overlap=overlap.value, bound=bound,
        mtp_acceptance=mtp_acceptance, mtp_depth=mtp_depth, intranode_nvlink=intranode_nvlink,
        gemm_tile_rows=gemm_tile_rows, expert_tile_rows=expert_tile_rows,
        shared_experts=shared_experts.value, expert_balance=expert_balance.value)
    r = serve(catalog.load_model(model), hw, config)
    show_tables(report.serve_tables(r), fmt)


def _serve_workload(model: str, hardware: str, engine: Optional[str], *, isl: Any, osl: Any,
                    concurrency: Any, tp: Optional[int], pp: Optional[int],
                    attention_dp: Optional[int], moe_tp: Optional[int], moe_ep: Optional[int],
                    weights_dtype: str, kv_dtype: Optional[str], fmt: Format,
                    overrides: Optional[str] = None, prefix_cache_hit: float = 0.0) -> None:
    """``planner serve`` in workload mode: the figures, or the refusal of a workload that does
    not fit in memory (one line, exit 2)."""
    from planner import catalog, report
    from planner.calc.serving.workload import serve_workload
    from planner.errors import UsageError
    from planner.specs.error_bands import error_band
    from planner.specs.load import load_engine

    name = engine or "trtllm"
    eng = None if name.casefold() == "none" else load_engine(name)
    m = catalog.load_model(model)
    (hw,), eng, origin = with_overrides(overrides, [catalog.load_hardware(hardware)], eng)
    extra: dict[str, Any] = {} if origin is None else {"overrides": origin}
    layout: dict[str, Any] = {"tp": tp or 1, "pp": pp or 1, "attention_dp": attention_dp or 1,
                              "moe_tp": moe_tp, "moe_ep": moe_ep}
    r = serve_workload(m, hw, eng, isl=isl, osl=osl, concurrency=concurrency,
                       weights_dtype=weights_dtype, kv_dtype=kv_dtype, queue_beyond_kv=True,
                       prefix_cache_hit_frac=prefix_cache_hit, **layout)
    setup = {"model": m.name or m.label, "hardware": hw.name or hw.label,
             "engine": "idealised engine" if eng is None else f"{eng.label} {eng.version}",
             "isl": isl, "osl": osl, "concurrency": concurrency, **layout,
             "weights_dtype": weights_dtype, "kv_dtype": r.kv_dtype,
             "prefix_cache_hit_frac": prefix_cache_hit, **extra}
    if not r.fits:
        raise UsageError(report.workload_refusal(report.workload_record(r, setup)))
    band = error_band(hw.name or "", None if eng is None else eng.name, "aggregated")
    show_tables(report.workload_tables(r, setup, (band, hw.label, None if eng is None
                                                  else eng.label)), fmt)


RUNS = typer.Option(
    False, "--runs",
    help="Check the workload model on measured serving runs instead: FILE.csv in the columns "
         "of the shipped planner/data/serving-runs.csv, which is the default.")
RUNS_FILE = typer.Argument(None, metavar="[FILE.csv]", show_default=False,
                           help="With --runs: the runs CSV [default: the shipped runs].")
ROWS = typer.Option(True, "--rows/--no-rows",
                    help="With --runs: print every run, or only the statistics.")


@command("validate")
def validate_cmd(file: Optional[str] = RUNS_FILE, runs: bool = RUNS, rows: bool = ROWS,
                 overrides: Optional[str] = OVERRIDES, fmt: Format = FORMAT) -> None:
    """The serving model beside measured runs: the 15 published deployment runs (single-step
    model), or with --runs every run of a serving-runs CSV (workload model: TTFT and TPOT;
    with --overrides, the aggregated runs predicted with the override file's values)."""
    from planner import report
    from planner.errors import UsageError

    if not runs and file is None:
        if overrides is not None:
            raise UsageError("--overrides belongs to --runs (the workload model's runs)")
        from planner.studies.validate import validation_report

        show_tables(report.validation_table(validation_report()), fmt)
        return
    from planner.report.runs import validate_runs_tables
    from planner.studies.validate_runs import validate_runs

    ov = None
    if overrides is not None:
        ov = checked_overrides(overrides)
    tables = validate_runs_tables(validate_runs(file, overrides=ov), rows=rows)
    if ov is not None:
        tables[-1].notes.append(f"overrides applied to the aggregated runs: {ov.origin}")
    show_tables(tables, fmt)


@command("fit")
def fit_cmd(
    models: List[str] = MODELS,
    hardware: List[str] = hardware_option(text="Hardware (repeatable)."),
    context_tokens: int = tokens_option(4096, "--context-tokens", "Tokens per sequence"),
    weights_dtype: WeightsDtype = WEIGHTS_DTYPE,
    kv_dtype: Dtype = KV_DTYPE,
    fmt: Format = FORMAT,
) -> None:
    """The fewest GPUs that hold a model, the smallest TP that does it, and the largest batch
    per GPU at a context."""
    from planner import catalog, report
    from planner.calc.serving import fewest_gpus

    fits = [fewest_gpus(catalog.load_model(m), catalog.load_hardware(h),
                        weights_dtype=weights_dtype.value, kv_dtype=kv_dtype.value,
                        context_tokens=context_tokens) for m in models for h in hardware]
    show_tables([report.fit_table(fits)], fmt)
