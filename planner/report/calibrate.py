"""Tables of ``planner calibrate``: the error of each run before and after calibration and left
out of it, the fitted values beside the defaults (and the parameters the runs cannot see), the
summary with cross-validation and the check on runs not fitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from planner.report.table import Table

if TYPE_CHECKING:
    from planner.studies.calibrate import Calibration, Parameter


#: A fitted value within this share of its range from a bound is reported as at the bound (the
#: runs would take it further: the parameter compensates for something the model lacks).
AT_BOUND_FRAC = 1e-3


def _err(pred: float, meas: float) -> float | None:
    if not (meas > 0 and pred == pred and meas == meas):
        return None
    return pred / meas - 1


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def _ms(value: float) -> str:
    return "n/a" if value != value else f"{value * 1e3:,.2f}"


def runs_table(c: Calibration, ids: Sequence[str]) -> Table:
    """Per run: measured TTFT and TPOT, and the error before, after, and left out (LOO)."""
    t = Table("Calibration: error per run (predicted / measured - 1)",
              ["run", "metric", "measured ms", "before", "after", "left out"], align="Llrrrr")
    for i, run_id in enumerate(ids):
        if not c.rows[i]:
            continue
        for k, metric in enumerate(("TTFT", "TPOT")):
            meas = float(c.measured[k, i])
            before = _err(float(c.before[k, i]), meas)
            after = _err(float(c.after[k, i]), meas)
            loo = None if c.loo is None else _err(float(c.loo[k, i]), meas)
            rec = {"id": run_id, "metric": metric.lower(), f"measured_{metric.lower()}_s": meas,
                   "error_before": before, "error_after": after, "error_left_out": loo}
            t.add(rec, [run_id, metric, _ms(meas), _pct(before), _pct(after), _pct(loo)])
    return t


def _value_text(p: Parameter, value: float) -> str:
    if p.scale:
        return f"x{value:.3f} (frac {min(1.0, value * (p.base or 1.0)):.3f})"
    return f"{value * 1e3:,.4g} ms" if p.seconds else f"{value:.4g}"


def _bounds_text(p: Parameter) -> str:
    if p.scale:
        return f"x{p.lower:.2f} .. x{p.upper:.2f}"
    if p.seconds:
        return f"{p.lower * 1e3:,.4g} .. {p.upper * 1e3:,.4g} ms"
    return f"{p.lower:.4g} .. {p.upper:.4g}"


def parameters_table(c: Calibration) -> Table:
    """Each parameter: default, bounds, fitted value, or why the runs cannot determine it."""
    t = Table("Calibration: parameters (fitted vs default)",
              ["parameter", "default", "bounds", "calibrated", "status"], align="LllrL")
    unseen = dict(c.unseen)
    for p in c.parameters:
        fitted = p.name in c.fitted
        value = c.values[p.name]
        status = "fitted" if fitted else f"default kept: {unseen.get(p.name, '')}"
        span = p.upper - p.lower
        if fitted and min(value - p.lower, p.upper - value) <= AT_BOUND_FRAC * span:
            status = ("fitted, at its lower bound" if value - p.lower <= AT_BOUND_FRAC * span
                      else "fitted, at its upper bound")
        bounds = _bounds_text(p)
        rec = {"parameter": p.name, "default": p.default, "lower": p.lower, "upper": p.upper,
               "value": value, "fitted": fitted,
               "reason": None if fitted else unseen.get(p.name), "source": p.source}
        t.add(rec, [p.name, _value_text(p, p.default), bounds,
                    _value_text(p, value) if fitted else "-", status])
    return t


def summary_table(c: Calibration, checks: Sequence[tuple[str, int, float, float]] = (),
                  warnings: Sequence[str] = ()) -> Table:
    """Median |error| of TTFT, TPOT and both: before, after (in sample), leave-one-out,
    leave-one-group-out; then each check on runs not fitted (what, runs, before %, after %)."""
    t = Table("Calibration: median |error|", ["runs", "what", "TTFT", "TPOT", "both"],
              align="LLrrr")

    def row(what: str, which: str, key: str) -> None:
        vals = [c.median_error_pct(which, m) for m in ("ttft", "tpot")]
        vals.append(c.median_error_pct(which))
        rec: dict[str, Any] = {"runs": "fitted", "what": key, "ttft_error_pct": vals[0],
                               "tpot_error_pct": vals[1], "error_pct": vals[2]}
        t.add(rec, ["fitted", what, *("n/a" if v != v else f"{v:.1f}%" for v in vals)])

    row("before (defaults)", "before", "before")
    row("after (in sample)", "after", "in_sample")
    if c.loo is not None:
        from planner.studies.calibrate import loo_label

        row(loo_label(int(c.rows.sum())), "loo", "leave_one_out")
    if c.logo is not None:
        row("leave-one-group-out", "logo", "leave_one_group_out")
    for what, n, before, after in checks:
        rec = {"runs": f"{n} not fitted", "what": what, "error_before_pct": before,
               "error_after_pct": after}
        t.add(rec, [f"{n:,} not fitted", what, "", "", f"{before:.1f}% -> {after:.1f}%"])
    t.notes.extend(f"warning: {w}" for w in warnings)
    skipped = int(c.not_predicted.sum())
    if skipped:
        t.notes.append(f"{skipped} runs left out: the planner predicts no time for them (the "
                       "workload does not fit in memory)")
    t.notes.append(f"{int(c.rows.sum())} runs fitted, {len(c.fitted)} parameters "
                   f"({', '.join(c.fitted) or 'none'}); least squares on log error, bounds from "
                   "the specs' sources; condition of the fitted set "
                   f"{c.condition:,.1f}" + ("" if c.converged else "; NOT converged"))
    return t


def calibration_tables(c: Calibration, ids: Sequence[str],
                       checks: Sequence[tuple[str, int, float, float]] = (),
                       warnings: Sequence[str] = ()) -> list[Table]:
    """The three tables of ``planner calibrate``."""
    return [runs_table(c, ids), parameters_table(c), summary_table(c, checks, warnings)]
