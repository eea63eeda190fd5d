"""Checking budgets: each bound of each scenario, passed or violated, and every input error
collected (never raised) in a :class:`CheckReport`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.budget.evaluating import evaluate
from planner.budget.loading import LoadedScenario, load_scenario, scenario_files
from planner.errors import EXIT_INVALID, EXIT_OK, EXIT_VIOLATION, PlannerError, SpecError


@dataclass(frozen=True)
class BudgetResult:
    """One bound of one budget, evaluated. ``passed``: value <= max, or value >= min."""

    scenario: str
    file: str
    line: int | None
    metric: str
    dimension: str
    bound: str          # "max" or "min"
    limit: float        # base units
    limit_text: str     # as written in the file
    value: float
    basis: str
    passed: bool

    @property
    def headroom_frac(self) -> float | None:
        """How far inside the bound the value is, as a fraction of the bound (negative when
        violated): (max - value) / max, or (value - min) / min; ``None`` for a bound of 0."""
        if self.limit == 0:
            return None
        gap = self.limit - self.value if self.bound == "max" else self.value - self.limit
        return gap / self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "file": self.file, "line": self.line,
                "metric": self.metric, "unit": self.dimension, "bound": self.bound,
                "limit": self.limit, "limit_text": self.limit_text, "value": self.value,
                "headroom_frac": self.headroom_frac, "basis": self.basis,
                "passed": self.passed}


@dataclass(frozen=True)
class CheckError:
    """An input that could not be checked: the file, the field, the line when known."""

    file: str | None
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return str(PlannerError(self.message, file=self.file, field=self.field))

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "field": self.field, "line": self.line,
                "message": self.message}


@dataclass
class CheckReport:
    """The outcome of :func:`check`: every budget result and every input error."""

    results: list[BudgetResult] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: YAML files that a directory search skipped: not scenarios.
    skipped: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[BudgetResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        """True only when there was something to check, nothing failed and nothing was
        invalid."""
        return not self.errors and bool(self.results) and not self.violations

    @property
    def exit_code(self) -> int:
        if self.errors or not self.results:
            return EXIT_INVALID
        return EXIT_VIOLATION if self.violations else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "exit_code": self.exit_code,
                "results": [r.as_dict() for r in self.results],
                "errors": [e.as_dict() for e in self.errors]}


def check(*paths: str | os.PathLike[str]) -> CheckReport:
    """Evaluate the budgets of every scenario under ``paths`` (files or directories).

    Never raises for a user's mistake: invalid inputs are collected in ``report.errors``, and a
    report with errors is never ``ok``. Example (from pytest)::

        report = planner.check("specs/")
        assert report.ok, report.violations
    """
    report = CheckReport()
    skipped: list[Path] = []
    try:
        files = scenario_files(paths, skipped)
    except PlannerError as err:
        report.errors.append(CheckError(err.file, err.field, err.message))
        return report
    report.skipped = [str(f) for f in skipped]
    for f in files:
        report.files.append(str(f))
        try:
            loaded = load_scenario(f)
            report.results += check_scenario(loaded)
        except _BudgetError as err:
            report.errors.append(err.error)
        except PlannerError as err:
            report.errors.append(CheckError(err.file, err.field, err.message, err.line))
    return report


class _BudgetError(Exception):
    def __init__(self, error: CheckError) -> None:
        super().__init__(str(error))
        self.error = error


def check_scenario(loaded: LoadedScenario) -> list[BudgetResult]:
    """The results of every bound of one scenario; a :class:`PlannerError` (or the internal
    ``_BudgetError``) when the scenario cannot be checked."""
    scenario, file = loaded.scenario, loaded.file
    if not scenario.budgets:
        raise SpecError("the scenario defines no budgets; `planner check` needs at least one "
                        "(use `planner evaluate` to see the metrics)", file=file,
                        field="budgets")

    def fail(name: str, message: str) -> _BudgetError:
        return _BudgetError(CheckError(file, f"budgets.{name}", message, loaded.line(name)))

    evaluation = evaluate(loaded)
    results = []
    for b in loaded.bounds:
        name = b.metric.name
        mv = evaluation.metrics[name]
        if mv.value is None:
            raise fail(name, f"metric does not apply to this scenario: {mv.reason}")
        value = float(mv.value)
        if not math.isfinite(value):
            raise fail(name, f"metric evaluates to {value} (not a finite number)")
        passed = value <= b.limit if b.kind == "max" else value >= b.limit
        results.append(BudgetResult(
            scenario=evaluation.scenario, file=file, line=loaded.line(name, b.kind), metric=name,
            dimension=b.metric.dimension, bound=b.kind, limit=b.limit, limit_text=b.text,
            value=value, basis=mv.basis, passed=passed))
    return results
