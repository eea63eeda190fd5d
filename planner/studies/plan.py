"""``planner plan``: every serving layout of a model on one or more hardware specs, evaluated at
once with the vectorized workload model, and what to deploy (:mod:`.plan_select`).

A layout (the measured data's convention, README "Shared interfaces"): one replica has
``gpus = tp * attention_dp * pp`` GPUs; attention is tensor parallel over ``tp`` and data
parallel over ``attention_dp``; the experts of a MoE model are split over
``moe_tp * moe_ep = tp * attention_dp`` GPUs; ``concurrency`` requests are in flight per
replica, ``batch_per_rank * attention_dp`` of them. Replicas are not enumerated: every replica
of a layout makes the same tokens/s per GPU, so their number is computed from the GPUs given
(``gpus``) or from the request rate (the fewest that sustain it).

The grid (:func:`layout_grid`) is built with numpy from the exponents of powers of two (TP up
to the scale-up domain, attention DP, expert parallelism, pipeline stages) and the batch per
attention-DP rank, filtered by masks: no Python loop per layout. Each precision group (weights,
MoE weights, KV cache: the workload model takes them per call) is one call of
:func:`planner.calc.serving.workload.serve_workload` over the whole grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Largest TP degree tried: the scale-up domain, at most 2^3 = 8 (a node of 8 GPUs).
MAX_TP_EXPONENT = 3
#: Largest attention-DP degree tried: 2^6 = 64 ranks (wide expert parallelism).
MAX_ATTENTION_DP_EXPONENT = 6
#: Largest number of pipeline stages tried: 2^3 = 8.
MAX_PP_EXPONENT = 3
#: GPUs of one replica at most, unless ``--gpus`` / ``--max-gpus`` say otherwise: 2^7 = 128.
DEFAULT_MAX_REPLICA_GPUS = 128
#: Requests in flight per attention-DP rank tried (the data's ``batch_size``): 2^(k/4) rounded,
#: k = 0 .. 40, 36 values from 1 to 1,024 (steps of about 19%: a smooth frontier).
BATCH_PER_RANK = tuple(sorted({round(2 ** (k / 4)) for k in range(41)}))
#: The workload model's per-point outputs kept for every evaluated layout.
RESULT_FIELDS = ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
                 "total_tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_bytes_per_gpu",
                 "fits", "decode_bound", "prefill_bound")
#: Layout columns (integers) of every point.
LAYOUT_FIELDS = ("tp", "pp", "attention_dp", "moe_tp", "moe_ep", "concurrency", "gpus")
#: Columns that name a point's precision group and hardware (strings).
LABEL_FIELDS = ("hardware", "weights_dtype", "moe_weights_dtype", "kv_dtype")


@dataclass(frozen=True, kw_only=True)
class PlanQuery:
    """What the user asks: the workload (``isl`` prompt and ``osl`` output tokens per request),
    the latency limits (s, tokens/s), the GPUs (exactly ``gpus`` in all, or at most
    ``max_gpus``), the load (``request_rate_per_s`` requests/s, or ``concurrency`` requests in
    flight per replica), a price override (USD per GPU-hour) and the share of each prompt
    found in a prefix cache (``prefix_cache_hit_frac``, 0 <= F < 1)."""

    isl: int
    osl: int
    ttft_s: float | None = None
    tpot_s: float | None = None
    min_tokens_per_s_per_user: float | None = None
    gpus: int | None = None
    max_gpus: int | None = None
    request_rate_per_s: float | None = None
    concurrency: int | None = None
    usd_per_gpu_hour: float | None = None
    disagg: bool = False
    prefix_cache_hit_frac: float = 0.0

    def __post_init__(self) -> None:
        from planner.calc.serving.prefix_cache import checked_prefix_cache_hit_frac

        # a plain float (numpy's would not write into a scenario's YAML), -0 as 0
        object.__setattr__(self, "prefix_cache_hit_frac", float(checked_prefix_cache_hit_frac(
            self.prefix_cache_hit_frac, name="prefix_cache_hit_frac")))
        if self.tpot_s is not None and self.min_tokens_per_s_per_user is not None:
            raise UsageError("give --tpot-ms or --min-tokens-per-s-per-user, not both")
        if self.gpus is not None and self.max_gpus is not None:
            raise UsageError("give --gpus or --max-gpus, not both")
        if self.request_rate_per_s is not None and self.concurrency is not None:
            raise UsageError("give --request-rate or --concurrency, not both")
        if self.request_rate_per_s is not None and not self.request_rate_per_s > 0:
            raise UsageError(f"--request-rate: expected a rate > 0 requests/s (got "
                             f"{self.request_rate_per_s:g})")

    @classmethod
    def from_options(cls, *, ttft_ms: float | None, tpot_ms: float | None,
                     **rest: Any) -> "PlanQuery":
        """A query from the command line's units (milliseconds for the latency limits)."""
        from planner.units import MS

        return cls(ttft_s=None if ttft_ms is None else ttft_ms * MS,
                   tpot_s=None if tpot_ms is None else tpot_ms * MS, **rest)

    @property
    def replica_gpus_limit(self) -> int:
        """GPUs one replica may have at most."""
        return self.gpus or self.max_gpus or DEFAULT_MAX_REPLICA_GPUS


def precision_groups(model: Model, hardware: Hardware) -> list[tuple[str, str | None, str]]:
    """(weights, MoE weights or None for the same, KV cache) precisions the hardware computes:
    weights in each dtype with a dense peak (FP4 for the experts only, beside FP8 elsewhere, as
    the published FP4 checkpoints of MoE models keep attention at FP8 or higher), the KV cache
    in BF16 and, where the device has FP8, FP8."""
    from planner.specs.model import MoEFFN

    peaks = hardware.gpu.peak_dense_tflop_per_s
    has = {d for d in ("bf16", "fp8", "fp4") if peaks is not None and getattr(peaks, d)}
    weights = [d for d in ("fp8", "bf16") if d in has] or ["bf16"]
    groups: list[tuple[str, str | None]] = [(w, None) for w in weights]
    if "fp4" in has and isinstance(model.ffn, MoEFFN) and "fp8" in has:
        groups.append(("fp8", "fp4"))
    elif "fp4" in has:
        groups.append(("fp4", None))
    kvs = [k for k in ("fp8", "bf16") if k in has or k == "bf16"]
    return [(w, m, k) for w, m in groups for k in kvs]


def _powers(max_exponent: int) -> np.ndarray:
    import numpy as np

    return 2 ** np.arange(max_exponent + 1)


def layout_grid(model: Model, hardware: Hardware, query: PlanQuery) -> dict[str, np.ndarray]:
    """Every layout of ``model`` on ``hardware`` allowed by ``query``, as 1-D integer arrays
    (:data:`LAYOUT_FIELDS`): the outer product of the powers of two (TP up to the scale-up
    domain, attention DP, expert parallelism, pipeline stages up to the layers) and the batch
    per rank, filtered by masks (no loop per layout). A dense model takes attention DP 1 and
    moe_ep 1 (its FFN split over the TP group); ``query.gpus`` keeps replicas that divide it."""
    import numpy as np

    from planner.specs.model import MoEFFN

    moe = isinstance(model.ffn, MoEFFN)
    tp = _powers(MAX_TP_EXPONENT)
    tp = tp[tp <= hardware.scale_up_domain_gpus]
    adp = _powers(MAX_ATTENTION_DP_EXPONENT) if moe else np.array([1])
    ep = _powers(MAX_TP_EXPONENT + MAX_ATTENTION_DP_EXPONENT) if moe else np.array([1])
    pp = _powers(MAX_PP_EXPONENT)
    pp = pp[pp <= model.num_layers]
    batch = (np.array([query.concurrency]) if query.concurrency is not None
             else np.array(BATCH_PER_RANK))
    g_tp, g_adp, g_ep, g_pp, g_b = (a.ravel() for a in np.meshgrid(tp, adp, ep, pp, batch,
                                                                     indexing="ij"))
    group = g_tp * g_adp
    gpus = group * g_pp
    keep = (gpus <= query.replica_gpus_limit) & (group % g_ep == 0)
    if moe:
        keep &= g_ep <= model.ffn.num_routed_experts      # type: ignore[union-attr]
    if query.gpus is not None:
        keep &= query.gpus % gpus == 0
    concurrency = g_b if query.concurrency is not None else g_b * g_adp
    if query.concurrency is not None:
        keep &= concurrency >= g_adp                     # a request per attention-DP rank
    out = {"tp": g_tp, "pp": g_pp, "attention_dp": g_adp,
           "moe_tp": group // g_ep, "moe_ep": g_ep, "concurrency": concurrency, "gpus": gpus}
    return {k: v[keep].astype(np.int64) for k, v in out.items()}


#: ``progress(done, total)``: called after each precision group of each hardware.
Progress = Callable[[int, int], None]


@dataclass
class PlanPoints:
    """Every evaluated point: one entry per point in each column (numpy arrays)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per hardware name: the workload model's basis and efficiency note, the price and its
    #: origin, the board power.
    hardware_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What the codes of ``decode_bound`` / ``prefill_bound`` name (the workload model's).
    bound_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return 0 if not self.columns else len(next(iter(self.columns.values())))


def grid_points(model: Model, hardwares: list[Hardware], query: PlanQuery) -> int:
    """Points :func:`evaluate_plan` evaluates (for the progress bar and the benchmark)."""
    return sum(len(layout_grid(model, h, query)["tp"]) * len(precision_groups(model, h))
               for h in hardwares)


def price_of(hardware: Hardware, query: PlanQuery) -> tuple[float | None, str]:
    """(USD per GPU-hour, where it comes from): ``--usd-per-gpu-hour``, else the spec's
    ``cost:`` block, else its ``price_usd_per_gpu_hour``, else (None, why)."""
    if query.usd_per_gpu_hour is not None:
        return query.usd_per_gpu_hour, "--usd-per-gpu-hour"
    if hardware.cost is not None:
        c = hardware.cost
        return c.usd_per_gpu_hour, f"{c.source}, read {c.date}; it includes {c.includes}"
    if hardware.price_usd_per_gpu_hour is not None:
        return hardware.price_usd_per_gpu_hour, "the spec's price_usd_per_gpu_hour"
    return None, "no price in the spec: give --usd-per-gpu-hour"


def evaluate_plan(model: Model, hardwares: list[Hardware], engine: Any, query: PlanQuery, *,
                  progress: Progress | None = None, evaluate: Callable[..., Any] | None = None
                  ) -> PlanPoints:
    """Every layout of :func:`layout_grid` in every precision group of :func:`precision_groups`
    on every hardware, evaluated by ``evaluate`` (default
    :func:`~planner.calc.serving.workload.serve_workload`) in one call per group; the
    columns of :data:`LABEL_FIELDS`, :data:`LAYOUT_FIELDS`, :data:`RESULT_FIELDS` and the
    derived ones of :func:`derive_columns`."""
    import numpy as np

    if evaluate is None:
        from planner.calc.serving import workload

        evaluate = workload.serve_workload
    run: Callable[..., Any] = evaluate
    parts: list[dict[str, np.ndarray]] = []
    points = PlanPoints()
    total = sum(len(precision_groups(model, h)) for h in hardwares)
    done = 0
    for hw in hardwares:
        name = hw.name or hw.label
        grid = layout_grid(model, hw, query)
        n = len(grid["tp"])
        for weights, moe_weights, kv in precision_groups(model, hw):
            result = run(model, hw, engine, isl=query.isl, osl=query.osl,
                              concurrency=grid["concurrency"], tp=grid["tp"], pp=grid["pp"],
                              attention_dp=grid["attention_dp"], moe_tp=grid["moe_tp"],
                              moe_ep=grid["moe_ep"], weights_dtype=weights,
                              moe_weights_dtype=moe_weights, kv_dtype=kv,
                              prefix_cache_hit_frac=query.prefix_cache_hit_frac)
            cols = {k: np.broadcast_to(np.asarray(getattr(result, k)), (n,))
                    for k in RESULT_FIELDS}
            cols.update(grid)
            cols.update(hardware=np.full(n, name), weights_dtype=np.full(n, weights),
                        moe_weights_dtype=np.full(n, moe_weights or weights),
                        kv_dtype=np.full(n, kv))
            parts.append(cols)
            points.hardware_notes[name] = {"basis": getattr(result, "basis", ""),
                                           "efficiency_note": getattr(result, "efficiency_note",
                                                                      "")}
            points.bound_names = _bound_names(result, run)
            done += 1
            if progress is not None:
                progress(done, total)
        price, origin = price_of(hw, query)
        points.hardware_notes[name].update(usd_per_gpu_hour=price, price_source=origin,
                                           board_power_w=hw.gpu.tdp_w)
    if parts:
        points.columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    derive_columns(points, query)
    return points


def _bound_names(result: Any, evaluate: Callable[..., Any]) -> tuple[str, ...]:
    """The names of the bound codes: the result's ``BOUND_NAMES``, else its module's."""
    import sys

    names = getattr(result, "BOUND_NAMES", None)
    if names is None:
        names = getattr(sys.modules.get(evaluate.__module__), "BOUND_NAMES", None)
    return tuple(names or ())


def derive_columns(points: PlanPoints, query: PlanQuery) -> None:
    """Add to ``points``: ``usd_per_million_tokens`` and ``joules_per_token`` (NaN where the
    hardware has no price or board power), ``requests_per_s_per_replica`` (Little's law:
    concurrency / end-to-end latency), ``replicas`` and ``total_gpus`` (from ``query.gpus``;
    the fewest replicas that sustain ``query.request_rate_per_s``; else one)."""
    import numpy as np

    from planner.calc.cost import joules_per_token, usd_per_million_tokens

    c = points.columns
    if not c:
        return
    price = np.full(len(points), np.nan)
    power = np.full(len(points), np.nan)
    for name, note in points.hardware_notes.items():
        on = c["hardware"] == name
        price[on] = np.nan if note["usd_per_gpu_hour"] is None else note["usd_per_gpu_hour"]
        power[on] = np.nan if note["board_power_w"] is None else note["board_power_w"]
    with np.errstate(divide="ignore", invalid="ignore"):
        c["usd_per_million_tokens"] = usd_per_million_tokens(
            usd_per_gpu_hour=price, tokens_per_s_per_gpu=c["tokens_per_s_per_gpu"])
        c["joules_per_token"] = joules_per_token(board_power_w=power,
                                                 tokens_per_s_per_gpu=c["tokens_per_s_per_gpu"])
        c["requests_per_s_per_replica"] = c["concurrency"] / c["e2e_latency_s"]
        if query.gpus is not None:
            replicas = query.gpus // c["gpus"]
        elif query.request_rate_per_s is not None:
            replicas = np.ceil(query.request_rate_per_s / c["requests_per_s_per_replica"])
            replicas = np.where(np.isfinite(replicas), replicas, 0)
        else:
            replicas = np.ones(len(points))
    c["replicas"] = replicas.astype(np.int64)
    c["total_gpus"] = c["replicas"] * c["gpus"]
