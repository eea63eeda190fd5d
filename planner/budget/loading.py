"""Reading scenario files: the validated scenario, its bounds with their units parsed, and the
line of each bound in the YAML (for CI annotations)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

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
    try:
        scenario = build_spec(Scenario, p, data, raw)
    except SpecError as err:          # the line of the field, or of its nearest parent key
        keys = tuple((err.field or "").split("."))
        while err.line is None and keys and keys[0]:
            err.line, keys = key_lines.get(keys), keys[:-1]
        raise
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


#: A scenario file in a directory has a top-level ``budgets:`` key or ``kind: scenario``.
_SCENARIO_MARK = re.compile(r"""^(?:budgets[ \t]*:|kind[ \t]*:[ \t]*['"]?scenario['"]?[ \t]*"""
                            r"(?:#.*)?$)", re.M)
#: Most directory entries one search looks at (``planner check /`` ends here, not in hours).
MAX_SCAN_ENTRIES = 100_000
#: Skipped files named in the message; the rest are counted.
SHOWN_SKIPPED = 5


def is_scenario_file(path: Path) -> bool:
    """True when ``path`` reads as a scenario: a top-level ``budgets:`` key, or ``kind:
    scenario`` (a scenario without budgets, for ``planner evaluate``). A file that cannot be
    read counts as a scenario, so that its error is reported rather than hidden."""
    from planner.specs.yaml_reader import MAX_SPEC_FILE_BYTES

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SPEC_FILE_BYTES + 1)
    except OSError:
        return True
    if len(raw) > MAX_SPEC_FILE_BYTES:
        return False        # far larger than a scenario: some other data file
    return _SCENARIO_MARK.search(raw.decode("utf-8", "replace")) is not None


def _walk_yaml(root: Path) -> list[Path]:
    """YAML files under ``root``, sorted; symbolic links to directories are not followed and
    other file systems (``/proc``, ``/sys``, mounts) are not entered; at most
    :data:`MAX_SCAN_ENTRIES` entries are looked at."""
    device = root.stat().st_dev
    found: list[Path] = []
    seen = 0
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue                            # unreadable: nothing of it is searched
        seen += len(entries)
        if seen > MAX_SCAN_ENTRIES:
            raise SpecError(f"more than {MAX_SCAN_ENTRIES:,} files and folders below this "
                            "directory: name the folder that holds the scenarios",
                            file=str(root))
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.stat(follow_symlinks=False).st_dev == device:
                        stack.append(entry.path)
                elif entry.name.endswith(SCENARIO_SUFFIXES) and entry.is_file():
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


def scenario_files(paths: Iterable[str | os.PathLike[str]],
                   skipped: list[Path] | None = None) -> list[Path]:
    """The scenario files named by ``paths``: files as given; directories searched recursively
    for ``*.yaml``/``*.yml`` that read as scenarios (:func:`is_scenario_file`), the others
    appended to ``skipped``. A missing path or a directory with no scenario is an error."""
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = _walk_yaml(p)
            scenarios = [f for f in found if is_scenario_file(f)]
            if skipped is not None:
                chosen = set(scenarios)
                skipped += [f for f in found if f not in chosen]
            if not scenarios:
                raise SpecError(
                    "no scenario files (*.yaml, *.yml with a top-level `budgets:` or `kind: "
                    "scenario`) in this directory"
                    + (f"; {len(found)} other YAML file(s) skipped" if found else ""),
                    file=str(p))
            files += scenarios
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            raise SpecError("file not found", file=str(p))
    if not files:
        raise SpecError("no scenario files given")
    return files


def skipped_message(skipped: Sequence[str | os.PathLike[str]]) -> str:
    """One line naming the YAML files a directory search skipped (the first few, then a
    count)."""
    shown = ", ".join(str(p) for p in skipped[:SHOWN_SKIPPED])
    more = len(skipped) - SHOWN_SKIPPED
    return (f"skipped {len(skipped)} YAML file(s) that are not scenarios (no top-level "
            f"`budgets:` or `kind: scenario`): {shown}" + (f" and {more} more" if more > 0 else ""))
