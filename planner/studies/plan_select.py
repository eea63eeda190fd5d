"""What to deploy, chosen from the evaluated points of :mod:`planner.studies.plan`: the Pareto
frontier of output tokens/s per GPU against tokens/s per user, the best point under the latency
limits with its runner-up and why it lost, and the fewest GPUs for a request rate. Every step
is a few numpy operations over all the points (a sort and a running maximum for the frontier),
never a Python loop over them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.studies.plan import LABEL_FIELDS, LAYOUT_FIELDS, PlanPoints, PlanQuery

if TYPE_CHECKING:
    import numpy as np

#: Fields that make a layout, whatever its concurrency: a runner-up differs in one of them.
LAYOUT_KEY = ("hardware", "tp", "pp", "attention_dp", "moe_tp", "moe_ep", "weights_dtype",
              "moe_weights_dtype", "kv_dtype")


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point dominates, both axes maximized (one of equal points kept).

    A point is dominated when another has x and y at least as large and one larger. Sorted by
    x descending, then y descending, every point that could dominate a point comes before it,
    so the point is on the frontier exactly when its y exceeds the running maximum of the y
    before it: a sort and ``np.maximum.accumulate``, O(n log n).
    """
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.lexsort((-y, -x))
    ys = y[order]
    before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1]))
    mask = np.zeros(len(x), dtype=bool)
    mask[order[ys > before]] = True
    return mask


def limits_mask(points: PlanPoints, query: PlanQuery, *, tpot: bool = True) -> np.ndarray:
    """Points that fit in memory and meet the limits of ``query``: TTFT, and (with ``tpot``)
    TPOT or tokens/s per user; the GPUs given or the most allowed."""
    import numpy as np

    c = points.columns
    ok = c["fits"].astype(bool) & np.isfinite(c["tokens_per_s_per_gpu"])
    if query.ttft_s is not None:
        ok &= c["ttft_s"] <= query.ttft_s
    if tpot and query.tpot_s is not None:
        ok &= c["tpot_s"] <= query.tpot_s
    if tpot and query.min_tokens_per_s_per_user is not None:
        ok &= c["tokens_per_s_per_user"] >= query.min_tokens_per_s_per_user
    if query.request_rate_per_s is not None:
        ok &= c["replicas"] >= 1
        if query.max_gpus is not None or query.gpus is not None:
            ok &= c["total_gpus"] <= (query.max_gpus or query.gpus)
    return ok


def _best(points: PlanPoints, mask: np.ndarray) -> int | None:
    """The point of ``mask`` with the most output tokens/s per GPU (ties, in
    :data:`TIE_BREAKS` order: fewer GPUs, shorter TPOT, shorter TTFT, then the first
    enumerated), or None."""
    import numpy as np

    idx = np.flatnonzero(mask)
    if not len(idx):
        return None
    c = points.columns
    tokens = c["tokens_per_s_per_gpu"][idx]
    idx = idx[tokens == tokens.max()]           # the ties alone go to the sort
    keys = [c[k][idx] for k in reversed(TIE_BREAKS)]
    order = np.lexsort((idx, *keys, -c["tokens_per_s_per_gpu"][idx]))
    return int(idx[order[0]])


#: What decides between points of equal tokens/s per GPU, first to last (less is better).
TIE_BREAKS = ("gpus", "tpot_s", "ttft_s")


def same_layout(points: PlanPoints, i: int) -> np.ndarray:
    """Points with point ``i``'s layout (:data:`LAYOUT_KEY`), any concurrency."""
    import numpy as np

    c = points.columns
    same = np.ones(len(points), dtype=bool)
    for k in LAYOUT_KEY:
        same &= c[k] == c[k][i]
    return same


@dataclass
class PlanResult:
    """What ``planner plan`` shows: every point, the frontier per hardware (indices sorted by
    tokens/s per user), the chosen points (indices into the points, None when none qualifies)
    and the counts."""

    model: str
    query: PlanQuery
    points: PlanPoints
    frontier: dict[str, np.ndarray]
    best: int | None
    runner_up: int | None
    #: The point with the most tokens/s per GPU that fits but breaks a latency limit (when it
    #: beats ``best``): what the limits cost.
    over_limits: int | None
    fewest_gpus: int | None
    evaluated: int
    fitting: int
    within_limits: int
    wall_s: float
    notes: list[str] = field(default_factory=list)
    #: With ``--disagg``: the best disaggregated deployment (a record; None: none found or
    #: not asked), beside the aggregated ones.
    disagg: dict[str, Any] | None = None
    #: A MoE model (the layouts name the experts' TP x EP).
    moe: bool = True

    def record(self, i: int) -> dict[str, Any]:
        """Point ``i`` as a record of plain Python values (base units)."""
        return {k: v[i].item() for k, v in self.points.columns.items()}

    def differences(self, i: int, j: int) -> list[tuple[str, Any, Any]]:
        """(field, value at i, value at j) for each layout field where points i and j differ."""
        c = self.points.columns
        return [(k, c[k][i].item(), c[k][j].item())
                for k in (*LABEL_FIELDS, *LAYOUT_FIELDS) if c[k][i] != c[k][j]]


def select(model: str, points: PlanPoints, query: PlanQuery, *, started: float) -> PlanResult:
    """The frontier of every hardware, the best point, its runner-up (the best point of another
    layout), the best point over the limits and the fewest GPUs for the request rate."""
    import numpy as np

    c = points.columns
    ok_no_tpot = limits_mask(points, query, tpot=False)
    ok = limits_mask(points, query)
    fits = c["fits"].astype(bool)
    frontier = {}
    for hw in points.hardware_notes:
        on = np.flatnonzero(ok_no_tpot & (c["hardware"] == hw))
        mask = pareto_mask(c["tokens_per_s_per_user"][on], c["tokens_per_s_per_gpu"][on])
        idx = on[mask]
        frontier[hw] = idx[np.argsort(c["tokens_per_s_per_user"][idx], kind="stable")]
    best = _best(points, ok)
    runner = None if best is None else _best(points, ok & ~same_layout(points, best))
    over = _best(points, fits & ~ok)
    if over is not None and best is not None and (c["tokens_per_s_per_gpu"][over]
                                                  <= c["tokens_per_s_per_gpu"][best]):
        over = None
    fewest = None
    if query.request_rate_per_s is not None:
        idx = np.flatnonzero(ok)
        if len(idx):
            order = np.lexsort((idx, -c["tokens_per_s_per_gpu"][idx], c["total_gpus"][idx]))
            fewest = int(idx[order[0]])
    return PlanResult(model=model, query=query, points=points, frontier=frontier, best=best,
                      runner_up=runner, over_limits=over, fewest_gpus=fewest,
                      evaluated=len(points), fitting=int(fits.sum()),
                      within_limits=int(ok.sum()), wall_s=time.perf_counter() - started)


def plan(model: Any, hardwares: list[Any], engine: Any, query: PlanQuery, *,
         progress: Any = None, evaluate: Any = None) -> PlanResult:
    """Evaluate every layout (:func:`~planner.studies.plan.evaluate_plan`) and choose
    (:func:`select`); the notes say what was not searched."""
    from planner.studies.plan import evaluate_plan, precision_groups

    started = time.perf_counter()
    disagg = None
    if query.disagg:      # its usage errors before the search
        from planner.studies.plan_disagg import best_disagg, disagg_candidates

        disagg = best_disagg(disagg_candidates(model, hardwares, engine, query,
                                               precision_groups))
    points = evaluate_plan(model, hardwares, engine, query, progress=progress,
                           evaluate=evaluate)
    result = select(model.name or model.label, points, query, started=started)
    result.moe, result.disagg = model.is_moe, disagg
    result.notes.append("the frontier, best and runner-up are aggregated layouts: prefill and "
                        "decode share each replica's GPUs" + (
                            "; --disagg adds the best disaggregated deployment of the ratio "
                            "solver (planner serve-disagg), PP 1, beside them" if query.disagg
                            else "; --disagg adds the best disaggregated deployment"))
    if model.mtp_depth:
        result.notes.append(f"MTP not searched: the workload model takes no MTP setting "
                            f"({result.model} has {model.mtp_depth} MTP module(s)); every "
                            "figure is without speculative decoding")
    return result
