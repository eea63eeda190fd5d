"""Engine overheads calibrated on the shipped measured runs (issue 20 item 3), and the error
bands per regime (issue 25 item 3): what ``benchmarks/calibrate_engines.py`` and
``benchmarks/error_bands.py`` run.

Only an engine's named overhead fields are fitted here, on every aggregated run of that engine
the planner can express, all hardware and models together; kernel efficiencies are never
fitted. Leave-one-group-out cross-validation holds out a whole model, then a whole hardware,
and predicts it from the fit on the rest.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.calc.fit import log_residuals
from planner.studies.calibrate_runs import RunSet, expressible_runs, group_labels, run_forward

#: Where the engines' ``source`` says the values come from.
SCRIPT = "benchmarks/calibrate_engines.py"
#: Width of a ``source`` written into an engine YAML.
YAML_WIDTH = 96
#: Serving-mode names of the data -> the error bands' mode.
MODE_NAMES = {"agg": "aggregated", "disagg": "disaggregated"}
#: Percentile of the absolute error the bands give beside the median.
BAND_PERCENTILE = 90


@dataclass(frozen=True)
class EngineCalibration:
    """One engine fitted on its runs: the runs, the calibration (LOO off), and the predictions
    of each run from the fit without its model (``by_model``) and without its hardware
    (``by_hardware``; None where the runs have one)."""

    engine: str
    runs: RunSet
    calibration: Any
    by_model: np.ndarray | None
    by_hardware: np.ndarray | None
    #: Groups of runs the workload model refused (predicted NaN, left out), with its reason.
    failed: dict[tuple[Any, ...], str]


def calibrate_engine(table: Any, engine: str) -> EngineCalibration:
    """Fit ``engine``'s overhead fields on its expressible runs of ``table`` (a
    :class:`planner.specs.runs.RunTable`), with leave-one-model-out and
    leave-one-hardware-out predictions."""
    from planner.calc.fit import cross_validate
    from planner.specs.load import load_engine
    from planner.studies.calibrate import calibrate, engine_parameters

    runs, _ = expressible_runs(table, engine=engine)
    forward = run_forward(runs)
    params = engine_parameters(load_engine(engine))
    cal = calibrate(forward=forward, parameters=params, measured=runs.measured,
                    groups=group_labels(runs, ("model",)), loo=False)
    by_hw = None
    hw_groups = group_labels(runs, ("hardware",))
    if hw_groups is not None and cal.fitted:
        chosen = [p for p in params if p.name in cal.fitted]
        fixed = {p.name: p.default for p in params}

        def vec(theta: np.ndarray) -> np.ndarray:
            values = dict(fixed)
            values.update({p.name: float(t) for p, t in zip(chosen, theta)})
            return np.asarray(forward(values))

        by_hw, _ = cross_validate(forward=vec, initial=[cal.values[p.name] for p in chosen],
                                  lower=[p.lower for p in chosen],
                                  upper=[p.upper for p in chosen], measured=runs.measured,
                                  groups=hw_groups, rows=cal.rows)
    return EngineCalibration(engine, runs, cal, cal.logo, by_hw,
                             dict(getattr(forward, "failed", {})))


def median_pct(predicted: Any, measured: Any, rows: Any = None,
               q: float = 50) -> float:
    """The q-th percentile of |predicted / measured - 1| in percent (NaN for no value)."""
    r = log_residuals(predicted=predicted, measured=measured, rows=rows)
    return float(100 * np.percentile(np.abs(np.expm1(r)), q)) if r.size else float("nan")


def engine_summary(ec: EngineCalibration) -> list[dict[str, Any]]:
    """Per hardware of the engine's runs (and "all"): runs, and the median |error| of TTFT and
    TPOT before (defaults), in sample, model held out and hardware held out (percent)."""
    c, runs = ec.calibration, ec.runs
    out = []
    for hw in ["all", *sorted(set(runs.hardware))]:
        rows = c.rows if hw == "all" else c.rows & (runs.hardware == hw)
        rec: dict[str, Any] = {"engine": ec.engine, "hardware": hw, "runs": int(rows.sum())}
        for key, pred in (("before", c.before), ("in_sample", c.after),
                          ("logo_model", ec.by_model), ("logo_hardware", ec.by_hardware)):
            for k, metric in enumerate(("ttft", "tpot")):
                rec[f"{metric}_{key}_pct"] = (float("nan") if pred is None else
                                             median_pct(pred[k], runs.measured[k], rows))
        out.append(rec)
    return out


def engine_source(ec: EngineCalibration) -> str:
    """The ``source`` written beside each fitted value."""
    c = ec.calibration
    ins = c.median_error_pct("after")
    logo = c.median_error_pct("logo")
    by_hw = (float("nan") if ec.by_hardware is None
             else median_pct(ec.by_hardware, ec.runs.measured, c.rows))
    cv = f"LOGO-CV {logo:.1f}% model held out" + (
        f", {by_hw:.1f}% hardware held out" if by_hw == by_hw else "")
    return (f"calibrated by {SCRIPT} on {int(c.rows.sum())} rows of serving-runs.csv "
            f"(in-sample {ins:.1f}%, {cv}; median |error| of TTFT and TPOT)")


def yaml_float(value: float) -> str:
    """``value`` to 6 significant digits as YAML 1.1 reads a float: a mantissa without a point
    gets ``.0`` (``2e-10`` is text to ``yaml.safe_load``, ``2.0e-10`` a number)."""
    mantissa, e, exponent = f"{value:.6g}".partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else f"{value:.6g}"


def engine_yaml_with(text: str, values: dict[str, float], source: str) -> str:
    """The engine YAML ``text`` with each top-level field of ``values`` set (:func:`yaml_float`)
    and the ``source`` of its ``overheads.<field>`` entry replaced (comments and order kept)."""
    for name, value in values.items():
        text, n = re.subn(rf"(?m)^{name}:.*$", f"{name}: {yaml_float(value)}", text)
        if n != 1:
            raise ValueError(f"engine YAML: no single top-level {name}")
        block = re.compile(rf"(?m)^(  {name}:\n(?:    (?!source:)[^\n]*\n)*    source:)"
                           rf"[^\n]*\n(?:      [^\n]*\n)*")
        wrapped = "\n".join(textwrap.wrap(source, width=YAML_WIDTH, initial_indent="      ",
                                           subsequent_indent="      "))
        # subn calls the lambda now, in this iteration (B023 is about a later call)
        text, n = block.subn(lambda m: f"{m.group(1)} >-\n{wrapped}\n", text)  # noqa: B023
        if n != 1:
            raise ValueError(f"engine YAML: no overheads.{name}.source")
    return text


def regime_bands(runs: RunSet, predicted: np.ndarray,
                 cv: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One error-band entry per hardware x engine (aggregated runs): runs, median and
    90th-percentile |error| of TTFT and TPOT, and the cross-validated medians where ``cv``
    (predictions from fits without each run's model) is given."""
    out = []
    for hw, eng in sorted(set(zip(runs.hardware, runs.engine))):
        rows = (runs.hardware == hw) & (runs.engine == eng)
        finite = np.isfinite(predicted).all(axis=0) & rows
        if not finite.any():
            continue
        rec: dict[str, Any] = {"hardware": str(hw), "engine": str(eng),
                               "mode": MODE_NAMES["agg"], "runs": int(finite.sum())}
        for k, metric in enumerate(("ttft", "tpot")):
            meas = runs.measured[k]
            rec[f"{metric}_median_error_pct"] = round(median_pct(predicted[k], meas, finite), 1)
            rec[f"{metric}_p90_error_pct"] = round(
                median_pct(predicted[k], meas, finite, BAND_PERCENTILE), 1)
        if cv is not None:
            for k, metric in enumerate(("ttft", "tpot")):
                v = median_pct(cv[k], runs.measured[k], finite)
                if v == v:
                    rec[f"{metric}_cv_median_error_pct"] = round(v, 1)
        out.append(rec)
    return out


def shipped_bands(table: Any, engines: Any) -> list[dict[str, Any]]:
    """Error bands of the engines' runs in ``table`` at the engines' current values, with the
    model-held-out cross-validated medians of a refit of their overheads."""
    bands = []
    for engine in engines:
        ec = calibrate_engine(table, engine)
        if not len(ec.runs):
            continue
        bands += regime_bands(ec.runs, ec.calibration.before, ec.by_model)
    return bands


def half_split(table: Any, *, hardware: str, engine: str) -> dict[str, Any]:
    """Calibrate (as ``planner calibrate``: the engine's overheads and the hardware's efficiency
    scales) on every other run of ``hardware`` x ``engine`` (sorted by id) and predict the other
    half: median |error| of the held-out half before and after (percent)."""
    from planner.studies.calibrate import calibrate
    from planner.studies.calibrate_runs import parameters_for

    runs, _ = expressible_runs(table, hardware=hardware, engine=engine)
    order = np.argsort(runs.ids)
    fit_rows = np.zeros(len(runs), dtype=bool)
    fit_rows[order[::2]] = True
    forward = run_forward(runs)
    cal = calibrate(forward=forward, parameters=parameters_for(runs), measured=runs.measured,
                    rows=fit_rows, loo=False)
    held = ~fit_rows
    return {"hardware": hardware, "engine": engine, "runs_fitted": int(fit_rows.sum()),
            "runs_held_out": int(held.sum()), "fitted": cal.fitted,
            "held_out_before_pct": cal.median_error_pct("before", rows=held),
            "held_out_after_pct": cal.median_error_pct("after", rows=held),
            "fitted_before_pct": cal.median_error_pct("before"),
            "fitted_after_pct": cal.median_error_pct("after")}
