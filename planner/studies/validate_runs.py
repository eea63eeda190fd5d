"""The workload model beside measured serving runs (``planner validate --runs``, issue 20).

Every row of a runs CSV (default: the shipped ``planner/data/serving-runs.csv``) is resolved to
catalog specs (:func:`planner.specs.runs.resolve`) or given the reason the planner cannot express
it. The expressible rows are grouped by (model, hardware, engine, weight formats) and each group
is ONE vectorized call of :func:`planner.calc.serving.workload.serve_workload` over its rows'
input and output lengths, concurrencies and layouts. A row the model says does not fit in memory
gets that as its reason, never a number. Disaggregated rows are predicted by the one hook,
:func:`planner.specs.runs.disagg_predictor`, where it gives a function; else they keep the
resolver's reason.

Error = predicted / measured - 1 (positive: the planner is optimistic about time, i.e. predicts
less). Statistics are of |error|, per regime (hardware x engine x mode x model family), per
hardware and overall.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from planner.specs import run_protocols
import numpy as np

from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.specs.runs import Resolution, RunTable

#: The issue's targets on the aggregated rows whose model and hardware the catalog covers.
EXPRESSIBLE_TARGET, TPOT_MEDIAN_TARGET, TTFT_MEDIAN_TARGET = 0.90, 0.15, 0.30
#: The percentile reported beside the median.
TAIL_PERCENTILE = 90
#: The reason of a row the workload model says does not fit (a ``{}`` takes the figures).
NO_FIT = "planner: does not fit in memory ({})"
#: The reason of rows whose specs the workload model refuses (a ``{}`` takes its message).
CANNOT = "planner: {}"


@dataclass(frozen=True)
class ErrorStats:
    """|error| statistics of a set of rows: ``rows`` in the set, ``expressed`` with a prediction,
    median and 90th percentile of |TTFT error| and |TPOT error| (None without a prediction);
    ``distinct``: the expressed rows counting each measurement once (the data records some runs
    twice, :func:`~planner.studies.disagg_runs.first_of_each_measurement`), and the medians of
    |error| over those."""

    key: tuple[str, ...]
    rows: int
    expressed: int
    ttft_median: float | None
    ttft_p90: float | None
    tpot_median: float | None
    tpot_p90: float | None
    distinct: int = 0
    ttft_median_distinct: float | None = None
    tpot_median_distinct: float | None = None

    @property
    def share(self) -> float:
        """The share of the rows the planner expresses."""
        return self.expressed / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class RunsValidation:
    """Per row of ``table``: the prediction (NaN where none) and the final reason ("" where
    predicted); the statistics per regime, per hardware (covered aggregated rows) and overall."""

    path: str
    table: RunTable
    resolution: Resolution
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    reason: np.ndarray
    covered: np.ndarray            # aggregated rows whose model and hardware the catalog has
    regimes: tuple[ErrorStats, ...]
    by_hardware: tuple[ErrorStats, ...]
    overall: ErrorStats

    @property
    def ttft_error(self) -> np.ndarray:
        return self.ttft_s / self.table.measured_ttft_s - 1

    @property
    def tpot_error(self) -> np.ndarray:
        return self.tpot_s / self.table.measured_tpot_s - 1

    @property
    def meets_targets(self) -> bool:
        o = self.overall
        return (o.share >= EXPRESSIBLE_TARGET and o.tpot_median is not None
                and o.tpot_median <= TPOT_MEDIAN_TARGET and o.ttft_median is not None
                and o.ttft_median <= TTFT_MEDIAN_TARGET)


def error_stats(key: tuple[str, ...], ttft_err: np.ndarray, tpot_err: np.ndarray,
                expressed: np.ndarray, once: np.ndarray | None = None) -> ErrorStats:
    """The :class:`ErrorStats` of rows with errors ``ttft_err``/``tpot_err`` (predicted where
    ``expressed``; ``once``: the first row of each measurement, default every row)."""
    def stat(err: np.ndarray, q: float, rows: np.ndarray = expressed) -> float | None:
        return float(np.percentile(np.abs(err[rows]), q)) if rows.any() else None

    distinct = expressed & (np.ones_like(expressed) if once is None else once)
    return ErrorStats(key, int(expressed.size), int(expressed.sum()),
                      stat(ttft_err, 50), stat(ttft_err, TAIL_PERCENTILE),
                      stat(tpot_err, 50), stat(tpot_err, TAIL_PERCENTILE), int(distinct.sum()),
                      stat(ttft_err, 50, distinct), stat(tpot_err, 50, distinct))


def _workload() -> Callable[..., Any]:
    """The workload model (helper ``workload``'s ``serve_workload``), imported when first used."""
    from planner.calc.serving.workload import serve_workload

    return serve_workload


def _predict_group(index: np.ndarray, table: RunTable, model: str, hardware: str, engine: str,
                   weights: str, moe_weights: str | None, kv_dtype: str | None = None, *,
                   overrides: Any = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(TTFT s, TPOT s, fits, the no-fit reason per row) of the rows at ``index``: one
    vectorized call of the workload model (with the deltas of ``overrides``, an
    :class:`~planner.specs.overrides.Overrides`, where it names the hardware or engine)."""
    from planner import catalog
    from planner.specs.load import load_engine
    from planner.specs.overrides import apply_engine_overrides, apply_hardware_overrides

    spec = catalog.load_model(model)
    moe = spec.is_moe
    r = _workload()(
        spec, apply_hardware_overrides(catalog.load_hardware(hardware), overrides),
        apply_engine_overrides(load_engine(engine), overrides),
        isl=table.mean_isl[index], osl=table.mean_osl[index],
        concurrency=table.concurrency[index],
        tp=table.tp[index], pp=table.pp[index], attention_dp=table.attention_dp[index],
        moe_tp=table.moe_tp[index] if moe else None, moe_ep=table.moe_ep[index] if moe else None,
        weights_dtype=weights, moe_weights_dtype=moe_weights if moe else None,
        queue_beyond_kv=True,   # the engine runs what its KV pool holds, the rest queue
        recv_interval=table.recv_interval[index], max_running=table.max_running[index],
        kv_dtype=kv_dtype, max_num_tokens=table.max_num_tokens[index])
    shape = index.shape
    fits = np.broadcast_to(np.asarray(r.fits, dtype=bool), shape)
    memory = np.broadcast_to(np.asarray(r.memory_bytes_per_gpu, dtype=float), shape)
    from planner.units import GB

    usable = catalog.load_hardware(hardware).gpu.hbm_usable_bytes
    why = [NO_FIT.format(f"{m / GB:,.1f} GB per GPU of {usable / GB:,.1f} GB") for m in memory]
    return (np.broadcast_to(np.asarray(r.ttft_s, dtype=float), shape),
            np.broadcast_to(np.asarray(r.tpot_s, dtype=float), shape), fits, why)


def _predict(table: RunTable, res: Resolution, overrides: Any = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TTFT s, TPOT s, reason) per row: the expressible aggregated rows predicted one group per
    (model, hardware, engine, weight formats, the KV dtype its launch set); NaN and the reason
    elsewhere."""
    from planner.specs.runs import AGG

    ttft, tpot = np.full(len(table), np.nan), np.full(len(table), np.nan)
    reason = res.reason.copy()
    todo = (reason == "") & (table.mode == AGG)
    keys = list(zip(res.model, res.hardware, res.engine, res.weights_dtype,
                    res.moe_weights_dtype, [run_protocols.KV_FP8 if k else None for k in table.kv_fp8]))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in np.flatnonzero(todo):
        groups.setdefault(keys[i], []).append(int(i))
    for key, rows in groups.items():
        index = np.array(rows)
        try:
            t1, t2, fits, why = _predict_group(index, table, *key, overrides=overrides)
        except PlannerError as err:     # a spec the model cannot use yet (no efficiency data)
            reason[index] = CANNOT.format(err)
            continue
        ttft[index] = np.where(fits, t1, np.nan)
        tpot[index] = np.where(fits, t2, np.nan)
        for i, ok, text in zip(index, fits, why):
            if not ok:
                reason[i] = text
    _predict_disagg(table, res, ttft, tpot, reason)
    return ttft, tpot, reason


def _predict_disagg(table: RunTable, res: Resolution, ttft: np.ndarray, tpot: np.ndarray,
                    reason: np.ndarray) -> None:
    """The disaggregated rows' TTFT, TPOT and reason, in place, from the one hook
    (:func:`planner.specs.runs.disagg_predictor`) where it gives a function (its result has
    per-row ``ttft_s``, ``tpot_s``, ``reason`` and ``predicted``); else they keep the
    resolver's reason."""
    from planner.specs import runs

    predictor = runs.disagg_predictor()
    disagg = table.mode != runs.AGG
    if predictor is None or not disagg.any():
        return
    got = predictor(table, res)
    done = disagg & np.asarray(got.predicted, dtype=bool)
    ttft[done], tpot[done] = np.asarray(got.ttft_s)[done], np.asarray(got.tpot_s)[done]
    why = np.asarray(got.reason, dtype=object)
    missing = disagg & ~done
    reason[missing] = [str(w) or str(r) or runs.REASONS["disagg"]
                       for w, r in zip(why[missing], reason[missing])]


def _grouped(keys: Sequence[tuple[str, ...]], mask: np.ndarray, ttft_err: np.ndarray,
             tpot_err: np.ndarray, expressed: np.ndarray, once: np.ndarray
             ) -> tuple[ErrorStats, ...]:
    """:func:`error_stats` of the rows in ``mask``, one per distinct key, in sorted key order."""
    out = []
    for key in sorted({keys[int(i)] for i in np.flatnonzero(mask)}):
        sel = mask & np.array([k == key for k in keys])
        out.append(error_stats(key, ttft_err[sel], tpot_err[sel], expressed[sel], once[sel]))
    return tuple(out)


def validate_runs(path: str | Path | None = None, *, overrides: Any = None) -> RunsValidation:
    """Read the runs at ``path`` (default: the shipped serving runs), predict every row the
    planner can express, and the error statistics per regime, per hardware and overall; with
    ``overrides`` (an :class:`~planner.specs.overrides.Overrides`) the aggregated rows are
    predicted with its hardware and engine deltas (the disaggregated rows without them)."""
    from planner import catalog
    from planner.specs.runs import AGG, SYSTEM_HARDWARE, read_runs, resolve
    from planner.studies.disagg_runs import first_of_each_measurement

    where = catalog.SERVING_RUNS_CSV if path is None else Path(path)
    table = read_runs(where)
    res = resolve(table)
    ttft, tpot, reason = _predict(table, res, overrides)
    expressed = reason == ""
    once = first_of_each_measurement(table, expressed)
    ttft_err, tpot_err = ttft / table.measured_ttft_s - 1, tpot / table.measured_tpot_s - 1
    hardware = np.array([h or SYSTEM_HARDWARE.get(s, s) for h, s in zip(res.hardware,
                                                                         table.system)],
                        dtype=object)
    regime_keys = [(str(h), str(b), str(m), str(f))
                   for h, b, m, f in zip(hardware, table.backend, table.mode, res.family)]
    everything = np.ones(len(table), dtype=bool)
    covered = (table.mode == AGG) & np.array([m is not None for m in res.model]) \
        & np.array([h is not None for h in res.hardware])
    return RunsValidation(
        str(where), table, res, ttft, tpot, reason, covered,
        _grouped(regime_keys, everything, ttft_err, tpot_err, expressed, once),
        _grouped([(str(h),) for h in hardware], covered, ttft_err, tpot_err, expressed, once),
        error_stats(("all",), ttft_err[covered], tpot_err[covered], expressed[covered],
                    once[covered]))
