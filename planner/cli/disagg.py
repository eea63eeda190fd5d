"""``planner serve-disagg``: disaggregated serving (a prefill pool and a decode pool, the KV
cache moved between them) of a workload, or with ``--disagg-ratio`` the prefill:decode split
and layouts that serve it best under TTFT and TPOT limits.

A command of its own (not options of ``planner serve``): ``serve`` is the aggregated command's,
and its options already name one replica's layout (``--tp``, ``--attention-dp``...).
"""

from typing import Any, Optional

import typer

from planner.cli import command, show_tables, violated
from planner.cli.options import (FORMAT, HARDWARE, KV_DTYPE, MODEL, OVERRIDES, PREFIX_CACHE_HIT,
                                 WEIGHTS_DTYPE, Dtype, Format, WeightsDtype,
                                 checked_prefix_cache_hit, quantity, refuse_unread,
                                 tokens_option, with_overrides)


def _pool(role: str, what: str, default: Any = None, **kw: Any) -> Any:
    return typer.Option(default, f"--{role}-{what}", min=1, **kw)


ENGINE = typer.Option(None, "--engine",
                      help="trtllm, vllm, sglang (engines/*.yaml), a YAML path, or none "
                           "(idealised: no host overheads) [default: trtllm].")
ISL = tokens_option(..., "--isl", "Input tokens per request")
OSL = tokens_option(..., "--osl", "Output tokens per request")
HELP = {"workers": "workers (replicas) [default: 1]", "tp": "attention TP [default: 1]",
        "pp": "pipeline stages [default: 1]", "dp": "attention DP ranks [default: 1]",
        "moe-tp": "experts' TP [default: the workload model's]",
        "ep": "experts' EP [default: the workload model's]"}
RATE = typer.Option(None, "--rate", min=0,
                    help="Requests per second arriving (open loop; with --disagg-ratio: the "
                         "target rate) [default: closed loop at the decode pool's batch].")
OVERLAP = typer.Option(False, "--overlap/--no-overlap",
                       help="Both pools hide their communication under compute (two "
                            "micro-batches, DeepSeek's and SGLang's two-batch overlap).")
KV_BANDWIDTH = typer.Option(None, "--kv-bandwidth",
                            help="The KV link's achievable bandwidth per GPU, e.g. '100 GB/s' "
                                 "[default: NVLink inside one scale-up domain, else the NIC].")
RATIO = typer.Option(False, "--disagg-ratio",
                     help="Solve for the split and layouts (with --gpus or --rate, "
                          "--max-ttft, --max-tpot) instead of evaluating the pools given.")
GPUS = typer.Option(None, "--gpus", min=1, help="--disagg-ratio: GPUs in all.")
MAX_TTFT = typer.Option("2 s", "--max-ttft", help="--disagg-ratio: TTFT limit ('2 s').")
MAX_TPOT = typer.Option("50 ms", "--max-tpot", help="--disagg-ratio: TPOT limit ('50 ms').")
MTP = typer.Option(0, "--mtp", "--mtp-depth", min=0, max=16,
                   help="MTP draft tokens per decode step (speculative decoding; 0: none); "
                        "--mtp-depth as in `serve`.")
MTP_ACCEPTANCE = typer.Option(None, "--mtp-acceptance", min=0, max=1,
                              help="With --mtp: each draft token's acceptance [default: 0.85, "
                                   "DeepSeek-V3 report §5.4.3].")


#: The pools' own parameters: what the pools given read and --disagg-ratio chooses itself.
POOL_OPTIONS = (*(f"{pool}_{field}" for pool in ("prefill", "decode")
                  for field in ("workers", "tp", "pp", "dp", "moe_tp", "ep", "batch")),
                "kv_bandwidth")


@command("serve-disagg")
def serve_disagg_cmd(
    ctx: typer.Context,
    model: str = MODEL,
    hardware: str = HARDWARE,
    isl: int = ISL,
    osl: int = OSL,
    engine: Optional[str] = ENGINE,
    prefill_workers: int = _pool("prefill", "workers", 1, help=f"Prefill {HELP['workers']}."),
    prefill_tp: int = _pool("prefill", "tp", 1, help=f"Prefill {HELP['tp']}."),
    prefill_pp: int = _pool("prefill", "pp", 1, help=f"Prefill {HELP['pp']}."),
    prefill_dp: int = _pool("prefill", "dp", 1, help=f"Prefill {HELP['dp']}."),
    prefill_moe_tp: Optional[int] = _pool("prefill", "moe-tp", help=f"Prefill {HELP['moe-tp']}."),
    prefill_ep: Optional[int] = _pool("prefill", "ep", help=f"Prefill {HELP['ep']}."),
    prefill_batch: int = _pool("prefill", "batch", 1,
                               help="Prompts per attention rank in a prefill batch."),
    decode_workers: int = _pool("decode", "workers", 1, help=f"Decode {HELP['workers']}."),
    decode_tp: int = _pool("decode", "tp", 1, help=f"Decode {HELP['tp']}."),
    decode_pp: int = _pool("decode", "pp", 1, help=f"Decode {HELP['pp']}."),
    decode_dp: int = _pool("decode", "dp", 1, help=f"Decode {HELP['dp']}."),
    decode_moe_tp: Optional[int] = _pool("decode", "moe-tp", help=f"Decode {HELP['moe-tp']}."),
    decode_ep: Optional[int] = _pool("decode", "ep", help=f"Decode {HELP['ep']}."),
    decode_batch: int = _pool("decode", "batch", 1,
                              help="Requests in flight per attention rank of a decode worker."),
    rate: Optional[float] = RATE,
    overlap: bool = OVERLAP,
    kv_bandwidth: Optional[str] = KV_BANDWIDTH,
    disagg_ratio: bool = RATIO,
    gpus: Optional[int] = GPUS,
    max_ttft: str = MAX_TTFT,
    max_tpot: str = MAX_TPOT,
    mtp: int = MTP,
    mtp_acceptance: Optional[float] = MTP_ACCEPTANCE,
    prefix_cache_hit: Optional[float] = PREFIX_CACHE_HIT,
    weights_dtype: WeightsDtype = WEIGHTS_DTYPE,
    kv_dtype: Dtype = KV_DTYPE,
    overrides: Optional[str] = OVERRIDES,
    fmt: Format = FORMAT,
) -> None:
    """Disaggregated serving: TTFT, TPOT and tokens/s per GPU of a prefill pool and a decode
    pool; with --disagg-ratio the split and layouts that maximise tokens/s per GPU (exit code
    1 when none meets the limits: the best split over them is shown, and one line on stderr
    names the limits it breaks)."""
    from planner import catalog
    from planner.calc.serving.disagg_workload import PoolLayout, serve_disagg
    from planner.errors import UsageError
    from planner.report.disagg import disagg_record, disagg_refusal, disagg_tables
    from planner.specs.error_bands import error_band
    from planner.specs.load import load_engine

    name = engine or "trtllm"
    eng = None if name.casefold() == "none" else load_engine(name)
    m = catalog.load_model(model)
    (hw,), eng, origin = with_overrides(overrides, [catalog.load_hardware(hardware)], eng)
    setup: dict[str, Any] = {
        "model": m.name or m.label, "hardware": hw.name or hw.label,
        "engine": "idealised engine" if eng is None else f"{eng.label} {eng.version}",
        "isl": isl, "osl": osl, "weights_dtype": weights_dtype.value,
        "kv_dtype": kv_dtype.value, "overlap": overlap, "arrival_rate_per_s": rate,
        "prefix_cache_hit_frac": checked_prefix_cache_hit(prefix_cache_hit),
        **({} if origin is None else {"overrides": origin})}
    dtypes = dict(weights_dtype=weights_dtype.value, kv_dtype=kv_dtype.value,  # both modes'
                  prefix_cache_hit_frac=setup["prefix_cache_hit_frac"],
                  mtp_draft_tokens=mtp, mtp_acceptance=mtp_acceptance)
    _check_mode(ctx, mtp, mtp_acceptance, disagg_ratio, gpus)
    if disagg_ratio:
        return _solve(m, hw, eng, setup, isl=isl, osl=osl, gpus=gpus, rate=rate,
                      max_ttft=max_ttft, max_tpot=max_tpot, overlap=overlap, fmt=fmt, **dtypes)
    prefill = PoolLayout(workers=prefill_workers, batch=prefill_batch, tp=prefill_tp,
                         pp=prefill_pp, attention_dp=prefill_dp, moe_tp=prefill_moe_tp,
                         moe_ep=prefill_ep)
    decode = PoolLayout(workers=decode_workers, batch=decode_batch, tp=decode_tp, pp=decode_pp,
                        attention_dp=decode_dp, moe_tp=decode_moe_tp, moe_ep=decode_ep)
    r = serve_disagg(m, hw, eng, isl_tokens=isl, osl_tokens=osl, prefill=prefill,
                     decode=decode, arrival_rate_per_s=rate, overlap=overlap,
                     kv_bytes_per_s=_kv_link(kv_bandwidth), **dtypes)
    if not bool(r.fits):
        raise UsageError(disagg_refusal(disagg_record(r, setup, prefill, decode)))
    band = (error_band(hw.name or "", None if eng is None else eng.name, "disaggregated"),
            hw.label, None if eng is None else eng.label)
    show_tables(disagg_tables(r, setup, prefill, decode, band), fmt)


def _check_mode(ctx: typer.Context, mtp: int, acceptance: Optional[float], ratio: bool,
                gpus: Optional[int]) -> None:
    """Refuse, in one line, an option the call's mode would not read: the pools' options with
    --disagg-ratio (it chooses them), its limits and --gpus without it, --mtp-acceptance
    without --mtp (--mtp itself both modes read: with --disagg-ratio every decode candidate
    runs it)."""
    from planner.errors import UsageError

    if ratio:
        refuse_unread(ctx, POOL_OPTIONS, "--disagg-ratio does not read them: it chooses the "
                      "pools' layouts itself, over the hardware's KV link")
    elif gpus is not None:
        raise UsageError("--gpus belongs to --disagg-ratio (the pools' layouts set the GPUs)")
    else:
        refuse_unread(ctx, ("max_ttft", "max_tpot"), "limits of --disagg-ratio's search, "
                      "which the pools given do not read")

    if acceptance is not None and not mtp:
        raise UsageError("--mtp-acceptance needs --mtp K (draft tokens per step)")


def _kv_link(kv_bandwidth: Optional[str]) -> Optional[float]:
    """--kv-bandwidth in bytes/s (None: not given); above 0 or a usage error."""
    from planner.errors import UsageError

    link = None if kv_bandwidth is None else quantity(kv_bandwidth, "bytes/s", "--kv-bandwidth")
    if link is not None and not link > 0:
        raise UsageError(f"--kv-bandwidth: must be above 0 (got {kv_bandwidth!r})")
    return link


def _solve(m: Any, hw: Any, eng: Any, setup: dict[str, Any], *, isl: int, osl: int,
           gpus: Optional[int], rate: Optional[float], max_ttft: str, max_tpot: str,
           overlap: bool, fmt: Format, **dtypes: Any) -> None:
    """``--disagg-ratio``: the solver's answer; when no split meets the limits, the best split
    without them (the solver run again with no limit) and one line naming the limits it breaks
    (exit 1)."""
    import math

    from planner.errors import UsageError
    from planner.report.disagg import disagg_violation, plan_tables
    from planner.studies.disagg import solve_disagg

    if (gpus is None) == (rate is None):
        raise UsageError("--disagg-ratio needs exactly one of --gpus and --rate")
    ttft = quantity(max_ttft, "s", "--max-ttft")
    tpot = quantity(max_tpot, "s", "--max-tpot")
    for option, text, value in (("--max-ttft", max_ttft, ttft), ("--max-tpot", max_tpot, tpot)):
        if not value > 0:
            raise UsageError(f"{option}: must be above 0 (got {text!r})")
    solve = dict(isl_tokens=isl, osl_tokens=osl, total_gpus=gpus, arrival_rate_per_s=rate,
                 overlap=overlap, **dtypes)
    plan = solve_disagg(m, hw, eng, ttft_limit_s=ttft, tpot_limit_s=tpot, **solve)
    setup.update({"ttft_limit_s": ttft, "tpot_limit_s": tpot, "gpus_given": gpus})
    if plan.result is not None:
        show_tables(plan_tables(plan, setup), fmt)
        return
    over = solve_disagg(m, hw, eng, ttft_limit_s=math.inf, tpot_limit_s=math.inf, **solve)
    if over.result is not None:
        show_tables(plan_tables(plan, setup, over_limits=over), fmt)
    violated(disagg_violation(plan, setup, over))


RUNS = typer.Option(None, "--runs", metavar="FILE",
                    help="Measured runs in the shipped columns [default: the shipped "
                         "planner/data/serving-runs.csv].")


@command("validate-disagg")
def validate_disagg_cmd(runs: Optional[str] = RUNS, overrides: Optional[str] = OVERRIDES,
                        fmt: Format = FORMAT) -> None:
    """The disaggregated measured runs beside the planner: TTFT and TPOT error per hardware
    (with --overrides, predicted with the override file's hardware and engine values)."""
    from planner.catalog import SERVING_RUNS_CSV
    from planner.cli.options import checked_overrides
    from planner.report.disagg import disagg_validation_tables
    from planner.specs.runs import read_runs, resolve
    from planner.studies.disagg_runs import disagg_validation, not_predicted, predict_disagg_rows

    ov = None if overrides is None else checked_overrides(overrides)
    table = read_runs(runs or SERVING_RUNS_CSV)
    res = resolve(table)
    pred = predict_disagg_rows(table, res, overrides=ov)
    tables = disagg_validation_tables(disagg_validation(table, pred, res),
                                      not_predicted(table, pred))
    if ov is not None:
        tables[-1].notes.append(f"overrides applied: {ov.origin}")
    show_tables(tables, fmt)
