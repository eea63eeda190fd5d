"""Calibration on measured runs: the runs the planner can express (aggregated rows whose model,
hardware, engine and formats resolve, :func:`planner.specs.runs.resolve`) as a named forward
model for :func:`planner.studies.calibrate.calibrate`, the selection of rows by model, hardware
and engine, and the check of calibrated values on runs not fitted (the shipped data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from planner.specs import run_protocols
import numpy as np

from planner.errors import PlannerError, UsageError
from planner.studies.calibrate import Parameter


@dataclass(frozen=True)
class RunSet:
    """Expressible runs: their ids, model / hardware / engine / formats per run, the layout and
    workload arrays and the measured [TTFT, TPOT] (s, 2 x n)."""

    ids: np.ndarray
    model: np.ndarray
    hardware: np.ndarray
    engine: np.ndarray
    weights_dtype: np.ndarray
    moe_weights_dtype: np.ndarray
    isl: np.ndarray
    osl: np.ndarray
    concurrency: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    attention_dp: np.ndarray
    moe_tp: np.ndarray
    moe_ep: np.ndarray
    measured: np.ndarray
    recv_interval: np.ndarray     # the run's launch flags (0: the engine's defaults)
    max_running: np.ndarray
    kv_fp8: np.ndarray
    max_num_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def layout(self) -> np.ndarray:
        """A label per run: ``tp4 pp1 dp2 moe1x8``."""
        return np.array([f"tp{a} pp{b} dp{c} moe{d}x{e}" for a, b, c, d, e in
                         zip(self.tp, self.pp, self.attention_dp, self.moe_tp, self.moe_ep)])

    def subset(self, keep: np.ndarray) -> RunSet:
        cols = {k: (v[:, keep] if k == "measured" else v[keep]) for k, v in vars(self).items()}
        return RunSet(**cols)


#: Why a disaggregated run is not calibrated: the fit is of the aggregated workload model.
DISAGG_REASON = "disaggregated (calibration fits aggregated runs only)"


def expressible_runs(table: Any, *, model: str | None = None, hardware: str | None = None,
                     engine: str | None = None) -> tuple[RunSet, dict[str, int]]:
    """The runs of ``table`` (a :class:`planner.specs.runs.RunTable`) the planner can express,
    chosen by catalog model, hardware and engine names (None: any); and, for the rows of the
    choice it cannot express, a count per reason."""
    from planner.specs.runs import resolve

    res = resolve(table)
    pick = np.ones(len(table.id), dtype=bool)
    for want, have in ((model, res.model), (hardware, res.hardware), (engine, res.engine)):
        if want is not None:
            pick &= np.array([h is not None and str(h).lower() == want.lower() for h in have])
    from planner.specs.runs import AGG

    agg = table.mode == AGG
    ok = pick & (res.reason == "") & agg
    reasons: dict[str, int] = {}
    why_not = np.where(agg, res.reason, DISAGG_REASON)
    for why in why_not[pick & ~ok]:
        reasons[str(why)] = reasons.get(str(why), 0) + 1
    runs = RunSet(
        ids=table.id[ok], model=res.model[ok], hardware=res.hardware[ok], engine=res.engine[ok],
        weights_dtype=res.weights_dtype[ok], moe_weights_dtype=res.moe_weights_dtype[ok],
        isl=table.mean_isl[ok], osl=table.mean_osl[ok], concurrency=table.concurrency[ok],
        tp=table.tp[ok], pp=table.pp[ok], attention_dp=table.attention_dp[ok],
        moe_tp=table.moe_tp[ok], moe_ep=table.moe_ep[ok],
        measured=np.stack([table.measured_ttft_s[ok], table.measured_tpot_s[ok]]),
        recv_interval=table.recv_interval[ok], max_running=table.max_running[ok],
        kv_fp8=table.kv_fp8[ok], max_num_tokens=table.max_num_tokens[ok])
    return runs, reasons


def _specs_with(values: Mapping[str, float], hardware: Any, engine: Any) -> tuple[Any, Any]:
    """``hardware`` and ``engine`` with the parameter values (scales of efficiency factors,
    engine field values) that differ from theirs."""
    from planner.specs.overrides import scale_efficiency

    scales = {k.rsplit(".", 1)[1]: v for k, v in values.items()
              if k.startswith("hardware.efficiency.") and v != 1.0}
    update = {k.split(".", 1)[1]: v for k, v in values.items()
              if k.startswith("engine.") and v != getattr(engine, k.split(".", 1)[1])}
    hw = scale_efficiency(hardware, scales, "calibration trial") if scales else hardware
    return hw, (engine.model_copy(update=update) if update else engine)


def run_forward(runs: RunSet) -> Any:
    """The named forward model of ``runs``: parameter values -> predicted [TTFT, TPOT] (s,
    2 x n), one vectorized workload call per group of runs sharing model, hardware, engine and
    formats (weights and the KV dtype their launch set). Hardware parameters apply to every hardware, engine parameters to every engine of
    the runs (calibrate one engine at a time). A run whose workload does not fit in memory, or
    that the workload model refuses (a hardware spec without efficiency factors), is predicted
    NaN (left out of every error); ``forward.failed`` holds the refusals by group."""
    from planner import catalog
    from planner.calc.serving.workload import serve_workload
    from planner.specs.load import load_engine

    keys = list(zip(runs.model, runs.hardware, runs.engine, runs.weights_dtype,
                    runs.moe_weights_dtype, [run_protocols.KV_FP8 if k else None for k in runs.kv_fp8]))
    groups: dict[tuple[Any, ...], np.ndarray] = {}
    for key in dict.fromkeys(keys):
        groups[key] = np.array([k == key for k in keys])
    models = {m: catalog.load_model(m) for m in set(runs.model)}
    hws = {h: catalog.load_hardware(h) for h in set(runs.hardware)}
    engines = {e: load_engine(e) for e in set(runs.engine)}

    #: Groups the workload model refuses (their runs predicted NaN), with its reason.
    failed: dict[tuple[Any, ...], str] = {}

    def forward(values: Mapping[str, float]) -> np.ndarray:
        out = np.full((2, len(runs)), np.nan)
        for (m, h, e, wd, md, kv), sel in groups.items():
            hw, eng = _specs_with(values, hws[h], engines[e])
            moe = models[m].is_moe      # a dense model's data layout says nothing of experts
            if (m, h, e, wd, md, kv) in failed:
                continue
            try:
                r = serve_workload(models[m], hw, eng, isl=runs.isl[sel], osl=runs.osl[sel],
                                   concurrency=runs.concurrency[sel], tp=runs.tp[sel],
                                   pp=runs.pp[sel], attention_dp=runs.attention_dp[sel],
                                   moe_tp=runs.moe_tp[sel] if moe else None,
                                   moe_ep=runs.moe_ep[sel] if moe else None,
                                   weights_dtype=wd, moe_weights_dtype=md if moe else None,
                                   queue_beyond_kv=True,   # as validate --runs reads them
                                   recv_interval=runs.recv_interval[sel],
                                   max_running=runs.max_running[sel], kv_dtype=kv,
                                   max_num_tokens=runs.max_num_tokens[sel])
            except PlannerError as err:     # e.g. a hardware spec without efficiency factors
                failed[(m, h, e, wd, md, kv)] = str(err)
                continue
            fits = np.broadcast_to(np.asarray(r.fits, dtype=bool), (int(sel.sum()),))
            out[0, sel] = np.where(fits, r.ttft_s, np.nan)
            out[1, sel] = np.where(fits, r.tpot_s, np.nan)
        return out

    forward.failed = failed     # type: ignore[attr-defined]
    return forward


def one_name(values: np.ndarray, what: str, option: str) -> str:
    """The one distinct name in ``values``, or a :class:`UsageError` asking for ``option``."""
    names = sorted({str(v) for v in values})
    if len(names) != 1:
        raise UsageError(f"the runs span {len(names)} {what}s ({', '.join(names)}): calibrate "
                         f"one at a time, choose it with {option}")
    return names[0]


def parameters_for(runs: RunSet) -> list[Parameter]:
    """Candidate parameters for runs of one hardware and one engine: the engine's overheads
    and the hardware's efficiency scales."""
    from planner import catalog
    from planner.specs.load import load_engine
    from planner.studies.calibrate import engine_parameters, hardware_parameters

    hw = catalog.load_hardware(one_name(runs.hardware, "hardware", "--hardware"))
    eng = load_engine(one_name(runs.engine, "engine", "--engine"))
    return engine_parameters(eng) + hardware_parameters(hw)


def other_layout_check(values: Mapping[str, float], defaults: Mapping[str, float],
                       others: RunSet) -> tuple[int, float, float]:
    """(runs, median |error| % at the defaults, at ``values``) of ``others``."""
    from planner.calc.fit import median_abs_error_frac

    if not len(others):
        return 0, float("nan"), float("nan")
    forward = run_forward(others)
    before = median_abs_error_frac(predicted=forward(defaults), measured=others.measured)
    after = median_abs_error_frac(predicted=forward(values), measured=others.measured)
    return len(others), 100 * before, 100 * after


def runs_not_fitted(shipped: RunSet, fitted: RunSet, *, layouts: bool = True) -> RunSet:
    """The runs of ``shipped`` of the fitted runs' hardware and engine that are not among them
    (by id), and with ``layouts`` only those of other layouts."""
    keep = (np.isin(shipped.hardware, np.unique(fitted.hardware))
            & np.isin(shipped.engine, np.unique(fitted.engine))
            & ~np.isin(shipped.ids, fitted.ids))
    if layouts:
        keep &= ~np.isin(shipped.layout(), np.unique(fitted.layout()))
    return shipped.subset(keep)


def group_labels(runs: RunSet, by: Sequence[str]) -> np.ndarray | None:
    """A label per run joining the fields ``by`` (``model``, ``hardware``, ``layout``), or None
    when they take a single value (no group to hold out)."""
    cols = [runs.layout() if b == "layout" else getattr(runs, b) for b in by]
    labels = np.array([" · ".join(str(c[i]) for c in cols) for i in range(len(runs))])
    return labels if len(set(labels)) > 1 else None


@dataclass(frozen=True)
class RunsCalibration:
    """What ``planner calibrate`` prints and writes: the calibration, the run ids, the hardware
    and engine calibrated, the checks on runs not fitted (what, runs, before %, after %), the
    warnings, and the override file's content."""

    calibration: Any
    ids: tuple[str, ...]
    hardware: str
    engine: str
    checks: tuple[tuple[str, int, float, float], ...]
    warnings: tuple[str, ...]
    overrides: Any


#: The leave-one-out error may exceed the in-sample error by this many points before the
#: command says that the fit memorised the runs.
MEMORISED_POINTS = 5.0


def _checks(cal: Any, runs: RunSet, shipped: RunSet | None
            ) -> tuple[list[tuple[str, int, float, float]], list[str]]:
    """Checks of the calibrated values on shipped runs not fitted, and the warnings."""
    from planner.studies.calibrate import overfit_warning

    checks: list[tuple[str, int, float, float]] = []
    warnings: list[str] = []
    defaults = {p.name: p.default for p in cal.parameters}
    if shipped is not None:
        regime = f"{runs.hardware[0]} · {runs.engine[0]}"
        for label, layouts in (("of other layouts", True), ("of any layout", False)):
            others = runs_not_fitted(shipped, runs, layouts=layouts)
            n, before, after = other_layout_check(cal.values, defaults, others)
            if n:
                checks.append((f"shipped {regime} runs {label}", n, before, after))
                w = overfit_warning(before_pct=before, after_pct=after,
                                    what=f"the {n} shipped {regime} runs {label} not fitted")
                if w and not warnings:
                    warnings.append(w)
    loo, ins = cal.median_error_pct("loo"), cal.median_error_pct("after")
    if np.isfinite(loo) and loo > ins + MEMORISED_POINTS:
        warnings.append(f"the leave-one-out error ({loo:.1f}%) is far above the in-sample error "
                        f"({ins:.1f}%): the fit memorises these runs more than it generalises")
    return checks, warnings


def _refuse_unknown_models(table: Any, path: str, *, hardware: str | None,
                           engine: str | None) -> None:
    """A :class:`SpecError` naming the first run (the file's line) and column ``model_path``
    whose model the catalog does not have, among the runs of the hardware and engine chosen."""
    from planner.errors import SpecError
    from planner.specs.runs import BACKEND_ENGINE, REASONS, SYSTEM_HARDWARE, resolve

    unknown = REASONS["model"].split("{")[0]
    reasons = resolve(table).reason
    for i, why in enumerate(reasons):
        hw = SYSTEM_HARDWARE.get(str(table.system[i]), str(table.system[i]))
        eng = BACKEND_ENGINE.get(str(table.backend[i]), str(table.backend[i]))
        if (str(why).startswith(unknown) and (hardware is None or hw == hardware.lower())
                and (engine is None or eng == engine.lower())):
            raise SpecError(f"{why} (choose runs with --model, or add the model to the "
                            "catalog)", file=str(path),
                            field=f"row {i + 2}, column model_path")


def calibrate_runs_file(path: str, *, model: str | None = None, hardware: str | None = None,
                        engine: str | None = None, created: str,
                        shipped_path: str | None = None) -> RunsCalibration:
    """Calibrate the engine's overheads and the hardware's efficiency scales on the runs of
    ``path`` (one hardware and one engine after the choice), cross-validated, and check the
    values on the runs of ``shipped_path`` not fitted (the shipped data by default)."""
    from planner import catalog
    from planner.specs.runs import read_runs
    from planner.studies.calibrate import calibrate, overrides_for

    table = read_runs(path)
    if model is None:
        _refuse_unknown_models(table, path, hardware=hardware, engine=engine)
    runs, reasons = expressible_runs(table, model=model, hardware=hardware, engine=engine)
    if not len(runs):
        why = "; ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
        chosen = ", ".join(f"{k} {v}" for k, v in (("model", model), ("hardware", hardware),
                                                   ("engine", engine)) if v)
        raise UsageError(f"{path}: no run the planner can express"
                         + (f" for {chosen}" if chosen else "") + (f" ({why})" if why else ""))
    params = parameters_for(runs)
    forward = run_forward(runs)
    if not np.isfinite(forward({p.name: p.default for p in params})).any():
        why = "; ".join(sorted(set(forward.failed.values()))) or "no workload fits in memory"
        raise UsageError(f"{path}: the planner predicts none of the {len(runs)} runs ({why})")
    groups = group_labels(runs, ("model",))
    if groups is None:
        groups = group_labels(runs, ("layout",))
    cal = calibrate(forward=forward, parameters=params, measured=runs.measured, groups=groups)
    shipped_file = shipped_path or str(catalog.SERVING_RUNS_CSV)
    shipped = None
    if shipped_file:
        shipped, _ = expressible_runs(read_runs(shipped_file), hardware=runs.hardware[0],
                                      engine=runs.engine[0])
    checks, warnings = _checks(cal, runs, shipped)
    catalog.take_notes()    # the notes of every model resolving the files loaded: keep ours
    for name in sorted(set(runs.model)):
        catalog.load_model(name)
    ids = tuple(str(i) for i in runs.ids)
    ov = overrides_for(cal, hardware=str(runs.hardware[0]), engine=str(runs.engine[0]),
                       runs_file=str(path), ids=ids, created=created)
    return RunsCalibration(cal, ids, str(runs.hardware[0]), str(runs.engine[0]),
                           tuple(checks), tuple(warnings), ov)
