"""Reading scenario files: the validated scenario, its bounds with their units parsed, and the
line of each bound in the YAML (for CI annotations)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from planner.errors import SpecError
from planner.metrics import Metric, metric

if TYPE_CHECKING:
    from planner.specs.scenario import Scenario

#: File name endings of scenario files in a directory.
SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ParsedBound:
    """One bound of a budget, its unit parsed: value <= limit (``max``) or >= limit (``min``)."""

    metric: Metric
    kind: str       # "max" or "min"
    limit: float    # base units
    text: str       # as written


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from, its parsed bounds, and the line of each
    budget bound."""

    scenario: Scenario
    file: str
    #: (metric, "max"/"min") -> 1-based line of the bound; (metric, "") -> line of the metric.
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    bounds: tuple[ParsedBound, ...] = ()

    @property
    def name(self) -> str:
        return self.scenario.name or Path(self.file).stem

    def line(self, metric_name: str, bound: str = "") -> int | None:
        return self.lines.get((metric_name, bound)) or self.lines.get((metric_name, ""))


def load_scenario(path: str | os.PathLike[str]) -> LoadedScenario:
    """Read and validate one scenario file, budgets included (metric names, units of the bounds,
    min <= max); a :class:`SpecError` naming the file and the field otherwise."""
    from planner.specs.load import build_spec, read_yaml_mapping
    from planner.specs.scenario import Scenario
    from planner.units import parse_quantity

    p = Path(path)
    data, raw, key_lines = read_yaml_mapping(p)
    scenario = build_spec(Scenario, p, data, raw)
    lines = _budget_lines(key_lines)

    def fail(name: str, kind: str, message: str) -> SpecError:
        return SpecError(message, file=str(p),
                         field=f"budgets.{name}" + (f".{kind}" if kind else ""),
                         line=lines.get((name, kind)) or lines.get((name, "")))

    bounds: list[ParsedBound] = []
    for name, b in scenario.budgets.items():
        try:
            m = metric(name)
        except KeyError as exc:
            raise fail(name, "", exc.args[0]) from None
        limits: dict[str, float] = {}
        for kind in ("max", "min"):
            written = getattr(b, kind)
            if written is None:
                continue
            try:
                limits[kind] = parse_quantity(written, m.dimension)
            except ValueError as exc:
                raise fail(name, kind, str(exc)) from None
            bounds.append(ParsedBound(m, kind, limits[kind], str(written)))
        if len(limits) == 2 and limits["min"] > limits["max"]:
            raise fail(name, "", f"min ({b.min}) is above max ({b.max}): no value can pass")
    return LoadedScenario(scenario, str(p), lines, tuple(bounds))


def _budget_lines(key_lines: dict[tuple[str, ...], int]) -> dict[tuple[str, str], int]:
    """Lines of ``budgets.<metric>`` and ``budgets.<metric>.max|min``, keyed (metric, "") and
    (metric, "max"/"min"), from the file's key lines."""
    lines: dict[tuple[str, str], int] = {}
    for path, line in key_lines.items():
        if len(path) in (2, 3) and path[0] == "budgets":
            lines[(path[1], path[2] if len(path) == 3 else "")] = line
    return lines


def scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, directories searched recursively
    for ``*.yaml``/``*.yml`` (sorted). A missing path or a directory with no scenario is an
    error."""
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in SCENARIO_SUFFIXES
                           and f.is_file())
            if not found:
                raise SpecError("no scenario files (*.yaml, *.yml) in this directory",
                                file=str(p))
            files += found
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            raise SpecError("file not found", file=str(p))
    if not files:
        raise SpecError("no scenario files given")
    return files


