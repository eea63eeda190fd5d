"""Calibration: fit a few named, bounded parameters (an engine's host overheads, a hardware's
efficiency factors as scales) to measured runs, with the identifiability check, leave-one-out
and leave-one-group-out cross-validation beside the in-sample error, and the override file.

The forward model is a function of the parameters' values by name returning the predicted TTFT
and TPOT (s) of the runs as a 2 x n array (:func:`planner.studies.calibrate_runs.run_forward`
builds it from measured runs and the workload model); everything here is independent of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from planner.calc import fit

#: Named forward model: parameter values by name -> predicted [TTFT, TPOT] (s), 2 x n.
NamedForward = Callable[[Mapping[str, float]], np.ndarray]

#: Efficiency classes of a hardware spec a calibration may scale (kernel classes the workload
#: model reads), and the lowest scale allowed: at most half the default is lost (a kernel
#: efficiency measured at kernel level is not off by more); the highest reaches the peak.
EFFICIENCY_CLASSES = ("hbm_bandwidth", "gemm_weight_bandwidth", "matmul_flops",
                      "grouped_gemm_flops", "attention_flops", "scale_up_bandwidth",
                      "gemm", "grouped_gemm")   # the last two: measured tables, every dtype
MIN_EFFICIENCY_SCALE = 0.5
#: Median error (percentage points) another layout may lose before the fit is said to overfit.
OVERFIT_POINTS = 2.0
#: Leave-one-out up to this many runs; beyond, k-fold cross-validation with this many folds
#: (a fit per run would cost minutes on the shipped data).
LOO_MAX_RUNS = 40
KFOLD_FOLDS = 10
#: Metrics fitted together, in the order of the forward model's first axis.
METRICS = ("ttft", "tpot")


@dataclass(frozen=True)
class Parameter:
    """One parameter a calibration may fit: ``name`` as the report and override file say it
    (``engine.decode_step_overhead_s``, ``hardware.efficiency.hbm_bandwidth``), its default,
    bounds and where the default and bounds come from; ``scale`` when it multiplies a default
    (hardware efficiency) rather than replacing it."""

    name: str
    default: float
    lower: float
    upper: float
    source: str
    scale: bool = False
    #: The fraction the scale multiplies (hardware efficiency), for the report.
    base: float | None = None

    @property
    def field(self) -> str:
        return self.name.rsplit(".", 1)[1]

    @property
    def seconds(self) -> bool:
        """A time (the field's name ends in ``_s``), shown in ms."""
        return self.name.endswith("_s")


def engine_parameters(engine: Any) -> list[Parameter]:
    """The engine's overhead fields with the bounds and sources its spec gives
    (``overheads.<field>.min / max / source``, one entry per overhead field)."""
    import dataclasses

    out = []
    for f in dataclasses.fields(engine.overheads):
        name, bound = f.name, getattr(engine.overheads, f.name)
        lower = getattr(bound, "min", None)
        upper = getattr(bound, "max", None)
        lower = bound.min_s if lower is None else lower
        upper = bound.max_s if upper is None else upper
        out.append(Parameter(f"engine.{name}", float(getattr(engine, name)), float(lower),
                             float(upper), bound.source))
    return out


def hardware_parameters(hardware: Any) -> list[Parameter]:
    """A scale per efficiency class the hardware spec gives (1 = its default), from
    :data:`MIN_EFFICIENCY_SCALE` to the peak (fraction 1)."""
    out = []
    for name in EFFICIENCY_CLASSES:
        factor = getattr(hardware.efficiency, name, None)
        frac = getattr(factor, "frac", None)
        if isinstance(factor, dict) and factor:
            # a table per dtype scales as one: up to the peak of its highest fraction
            frac = max(max(t.frac) for t in factor.values())
            factor = next(iter(factor.values()))
        if isinstance(frac, (int, float)) and frac > 0:
            upper = max(1.0 / frac, 1.0 + 1e-6)
            out.append(Parameter(f"hardware.efficiency.{name}", 1.0, MIN_EFFICIENCY_SCALE,
                                 upper, getattr(factor, "source", ""), scale=True,
                                 base=float(frac)))
    return out


@dataclass(frozen=True)
class Calibration:
    """A calibration's result. Arrays are 2 x n (TTFT, TPOT) over the runs given; values of
    parameters not fitted are their defaults; ``unseen`` names why each was not fitted."""

    parameters: tuple[Parameter, ...]
    fitted: tuple[str, ...]
    values: dict[str, float]
    unseen: tuple[tuple[str, str], ...]
    condition: float
    measured: np.ndarray
    before: np.ndarray
    after: np.ndarray
    loo: np.ndarray | None
    logo: np.ndarray | None
    rows: np.ndarray
    converged: bool
    #: Runs given but not predicted (the workload does not fit in memory): left out.
    not_predicted: np.ndarray

    def median_error_pct(self, which: str, metric: str | None = None,
                         rows: Any = None) -> float:
        """Median |predicted / measured - 1| in percent of ``which`` (before, after, loo, logo)
        over both metrics, or one (``ttft`` / ``tpot``), over ``rows`` (default: those fitted)."""
        pred = getattr(self, which)
        if pred is None:
            return float("nan")
        use = self.rows if rows is None else np.asarray(rows, dtype=bool)
        if metric is not None:
            k = METRICS.index(metric)
            pred, meas = pred[k], self.measured[k]
        else:
            meas = self.measured
        return 100.0 * fit.median_abs_error_frac(predicted=pred, measured=meas, rows=use)


def loo_folds(n: int, rows: Any) -> np.ndarray:
    """Fold labels of the runs (over ``rows``' length): one fold per run (leave-one-out) up to
    :data:`LOO_MAX_RUNS` runs; beyond, :data:`KFOLD_FOLDS` folds of every k-th run (k-fold)."""
    use = np.asarray(rows, dtype=bool)
    labels = np.full(use.shape, -1)
    labels[use] = np.arange(n) if n <= LOO_MAX_RUNS else np.arange(n) % KFOLD_FOLDS
    return labels


def loo_label(n: int) -> str:
    """What :func:`loo_folds` does for ``n`` runs, for the report."""
    if n <= LOO_MAX_RUNS:
        return "leave-one-out"
    return f"{KFOLD_FOLDS}-fold (every {KFOLD_FOLDS}th run)"


def _vector_forward(forward: NamedForward, params: Sequence[Parameter],
                    chosen: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    defaults = {p.name: p.default for p in params}

    def run(theta: np.ndarray) -> np.ndarray:
        values = dict(defaults)
        values.update({params[j].name: float(t) for j, t in zip(chosen, theta)})
        return np.asarray(forward(values), dtype=float)

    return run


def calibrate(*, forward: NamedForward, parameters: Sequence[Parameter], measured: Any,
              rows: Any = None, groups: Any = None, loo: bool = True,
              max_condition: float = fit.MAX_CONDITION) -> Calibration:
    """Fit the parameters the runs determine, on ``rows`` (default: all), and cross-validate:
    leave-one-out over the runs (``loo``), and leave-one-group-out when ``groups`` labels them.

    The identifiability check runs first, at the defaults: a parameter that moves no prediction
    of these runs, or that moves them as another does, or one more than the values measured,
    keeps its default and is named in ``unseen`` with the reason.
    """
    params = tuple(parameters)
    y = np.asarray(measured, dtype=float)
    use = np.ones(y.shape[-1], dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    lo = np.array([p.lower for p in params])
    hi = np.array([p.upper for p in params])
    th0 = np.array([p.default for p in params])
    everything = _vector_forward(forward, params, range(len(params)))
    before = everything(th0)
    # a run the model cannot predict (its workload does not fit in memory: NaN) is left out
    predicted = np.all(np.isfinite(before) & (before > 0), axis=0)
    left_out = use & ~predicted
    use = use & predicted
    sens = fit.parameter_sensitivity(forward=everything, theta=th0, lower=lo, upper=hi,
                                     measured=y, rows=use)
    ident = fit.identifiable_parameters(sensitivity=sens, names=[p.name for p in params],
                                        max_condition=max_condition)
    chosen = list(ident.fit)
    fwd = _vector_forward(forward, params, chosen)
    kw: dict[str, Any] = dict(forward=fwd, initial=th0[chosen], lower=lo[chosen],
                              upper=hi[chosen], measured=y)
    if chosen:
        result = fit.fit_log_least_squares(rows=use, **kw)
        theta, converged = result.theta, result.converged
    else:
        theta, converged = th0[chosen], True
    values = {p.name: p.default for p in params}
    values.update({params[j].name: float(t) for j, t in zip(chosen, theta)})
    after = fwd(theta)
    loo_pred = logo_pred = None
    kw["initial"] = theta       # each fold starts from the full fit (it converges in a few steps)
    if chosen and loo:
        loo_pred, _ = fit.cross_validate(groups=loo_folds(int(use.sum()), use), rows=use, **kw)
    if chosen and groups is not None:
        logo_pred, _ = fit.cross_validate(groups=np.asarray(groups), rows=use, **kw)
    return Calibration(
        parameters=params, fitted=tuple(params[j].name for j in chosen), values=values,
        unseen=tuple((params[j].name, why) for j, why in ident.unseen),
        condition=ident.condition, measured=y, before=before, after=after, loo=loo_pred,
        logo=logo_pred, rows=use, converged=converged, not_predicted=left_out)


def predict_with(forward: NamedForward, calibration: Calibration) -> np.ndarray:
    """Predictions of ``forward`` (other runs) at the calibrated values."""
    return np.asarray(forward(calibration.values), dtype=float)


def overfit_warning(*, before_pct: float, after_pct: float, what: str,
                    points: float = OVERFIT_POINTS) -> str | None:
    """A warning when the calibrated values worsen the median error of runs not fitted
    (``what``) by more than ``points`` percentage points, else None."""
    if np.isfinite(before_pct) and np.isfinite(after_pct) and after_pct > before_pct + points:
        return (f"the calibration overfits: on {what} the median error goes from "
                f"{before_pct:.1f}% to {after_pct:.1f}% (more than {points:g} points worse); "
                "calibrate on runs of more layouts")
    return None


def overrides_for(calibration: Calibration, *, hardware: str | None, engine: str | None,
                  runs_file: str, ids: Sequence[str], created: str) -> Any:
    """The :class:`planner.specs.overrides.Overrides` of the fitted parameters (those left at
    their defaults are not written) and the fit's figures."""
    from planner.specs.overrides import HardwareOverride, Overrides, RunsProvenance

    hw: dict[str, float] = {}
    eng: dict[str, float] = {}
    for p in calibration.parameters:
        if p.name not in calibration.fitted:
            continue
        kind = p.name.split(".", 1)[0]
        (hw if kind == "hardware" else eng)[p.field] = round(calibration.values[p.name], 6)
    figures = {"in_sample_error_before_pct": calibration.median_error_pct("before"),
               "in_sample_error_pct": calibration.median_error_pct("after"),
               "loo_error_pct": calibration.median_error_pct("loo")}
    return Overrides(
        created=created,
        runs=RunsProvenance(file=runs_file, rows=int(calibration.rows.sum()), ids=list(ids)),
        hardware={hardware: HardwareOverride(efficiency=hw)} if hw and hardware else {},
        engines={engine: eng} if eng and engine else {},
        fit={k: round(v, 2) for k, v in figures.items() if np.isfinite(v)})
