"""``planner sweep`` over the workload model: vary the request shape (``isl``, ``osl``), the
load (``concurrency`` per replica) or the layout (``tp``, ``pp``, ``attention_dp``) and compute
TTFT, TPOT, end-to-end latency, tokens/s per GPU or per user, or memory per GPU, every point at
once through :func:`planner.calc.serving.workload.serve_workload`. A point whose requests do
not fit in memory is NaN (empty in CSV, null in JSON): its times are not reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: metric -> (unit, description): the workload model's outputs, vocabulary names.
WORKLOAD_SWEEP_METRICS = {
    "ttft_s": ("s", "time to first token (workload model)"),
    "tpot_s": ("s", "time per output token (workload model)"),
    "e2e_latency_s": ("s", "end-to-end latency of a request (workload model)"),
    "tokens_per_s_per_gpu": ("tokens/s", "output tokens/s per GPU (workload model)"),
    "total_tokens_per_s_per_gpu": ("tokens/s",
                                   "input + output tokens/s per GPU (workload model)"),
    "tokens_per_s_per_user": ("tokens/s", "output tokens/s per user (workload model)"),
    "memory_bytes_per_gpu": ("bytes", "memory per GPU (workload model)"),
}
#: name -> (unit, integer, description, default) of the workload's variables.
WORKLOAD_VARIABLES = {
    "isl": ("tokens", True, "prompt tokens per request", 1024),
    "osl": ("tokens", True, "output tokens per request", 1024),
    "concurrency": ("requests", True, "requests in flight per replica", 32),
    "tp": ("GPUs", True, "attention TP", 1),
    "pp": ("stages", True, "pipeline stages", 1),
    "attention_dp": ("ranks", True, "attention DP ranks", 1),
    "prefix_cache_hit_frac": ("fraction", False,
                              "share of each prompt's tokens in the prefix cache, 0 <= F < 1", 0.0),
}
#: The workload variables whose sweep may start at 0 (the others must be positive).
ZERO_ALLOWED = frozenset({"prefix_cache_hit_frac"})
#: Points computed per chunk of a workload sweep (its temporaries: a hundred arrays of this
#: size, ~100 MB), instead of the closed forms' million.
WORKLOAD_CHUNK_POINTS = 100_000


def workload_sweep_metric(model: Model, hardware: Hardware, metric: str,
                          vary: dict[str, np.ndarray], *, engine: Any = None) -> np.ndarray:
    """``metric`` of the workload model at every point of ``vary`` (arrays broadcast against
    each other; the variables not varied at their defaults), NaN where it does not fit."""
    import numpy as np

    from planner.calc.serving.workload import serve_workload

    other = [n for n in vary if n not in WORKLOAD_VARIABLES]
    if other:
        raise UsageError(f"--vary {other[0]}: the workload metric {metric} varies only "
                         f"{', '.join(WORKLOAD_VARIABLES)}")
    if "prefix_cache_hit_frac" in vary:
        from planner.calc.serving.prefix_cache import checked_prefix_cache_hit_frac

        checked_prefix_cache_hit_frac(vary["prefix_cache_hit_frac"],
                                      name="--vary prefix_cache_hit_frac")
    inputs: dict[str, Any] = {
        n: (np.asarray(vary[n], dtype=np.int64 if integer else float) if n in vary else default)
        for n, (_, integer, _, default) in WORKLOAD_VARIABLES.items()}
    r = serve_workload(model, hardware, engine, **inputs)
    out = np.where(np.asarray(r.fits), np.asarray(getattr(r, metric), dtype=float), np.nan)
    shape = np.broadcast_shapes(*[np.shape(a) for a in vary.values()]) if vary else ()
    return np.broadcast_to(out, shape)


def check_workload_vary(metric: str, names: list[str]) -> None:
    """A workload variable with a closed-form metric is a usage error naming both."""
    workload = [n for n in names if n in WORKLOAD_VARIABLES]
    if workload and metric not in WORKLOAD_SWEEP_METRICS:
        raise UsageError(f"--vary {workload[0]}: a workload variable; use it with a workload "
                         f"metric ({', '.join(WORKLOAD_SWEEP_METRICS)})")
