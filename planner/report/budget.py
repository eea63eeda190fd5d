"""Tables of ``planner evaluate`` and ``planner check``: scenario metrics and budget results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.report.formats import fmt_frac_pct, fmt_value
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.budget import CheckReport, Evaluation


def evaluation_tables(evaluations: list[Evaluation]) -> list[Table]:
    """One table per evaluated scenario: every metric with its value, basis and meaning; one
    JSON/CSV record per scenario whose keys are the metric names."""
    tables = []
    for e in evaluations:
        t = Table(f"Scenario {e.scenario}: {e.model} on {e.hardware}",
                  ["metric", "value", "basis", "meaning"], align="lrll")
        record = e.as_dict()
        for name, mv in e.metrics.items():
            value = record[name]
            t.rows.append([name, fmt_value(value, mv.metric.dimension),
                           mv.basis or ("" if value is not None else mv.reason),
                           mv.metric.description])
        t.records.append(record)
        t.notes.append(f"file: {e.file}. Values in base units in --format json/csv; "
                       "n/a: the metric does not apply. TPOT excludes time to first token.")
        tables.append(t)
    return tables


def check_table(report: CheckReport) -> Table:
    """Every bound of every budget: scenario, metric, bound, value, headroom, pass/fail."""
    t = Table("Budget check", ["scenario", "metric", "bound", "value", "headroom", "result"],
              align="llrrrl")
    for r in report.results:
        rec = r.as_dict()
        op = "<=" if rec["bound"] == "max" else ">="
        head = rec["headroom_frac"]
        t.add(rec, [rec["scenario"], rec["metric"], f"{rec['bound']} {op} {rec['limit_text']}",
                    fmt_value(rec["value"], rec["unit"]),
                    fmt_frac_pct(head) if head is not None else "n/a",
                    "pass" if rec["passed"] else "FAIL"])
    bad = len(report.violations)
    t.notes.append(f"{len(report.results)} bounds in {len(report.files)} scenario file(s): "
                   f"{len(report.results) - bad} met, {bad} violated. headroom: distance to the "
                   "bound as a fraction of the bound, negative when violated.")
    return t
