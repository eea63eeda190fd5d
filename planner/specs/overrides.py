"""Override files: what ``planner calibrate`` writes and every command may read with
``--overrides FILE``: hardware efficiency factors scaled and engine fields replaced, with the
runs they were fitted on and the date.

Format (YAML, read with the one safe reader, unknown fields refused)::

    created: "2026-11-30"
    runs: {file: my-runs.csv, rows: 12, ids: [run-1, ...]}
    hardware:
      h200:                        # a hardware spec's name
        efficiency:
          hbm_bandwidth: 0.95      # the default fraction x 0.95 (at most 1)
    engines:
      sglang:                      # an engine spec's name
        decode_step_overhead_s: 0.0021
    fit: {in_sample_error_before_pct: 18.0, in_sample_error_pct: 6.1, loo_error_pct: 7.9}

A hardware factor is a *scale* of the spec's efficiency (so it applies unchanged to a factor
given as a table over rows); an engine field is the new *value* (an overhead's default may be 0).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from planner.errors import SpecError
from planner.specs._types import SPEC_CONFIG, NonNegFloat, NonNegInt, PosFloat, Str

#: Largest scale of an efficiency factor an override may give (a factor's fraction stays <= 1).
MAX_EFFICIENCY_SCALE = 100.0
#: Smallest scale an override may give: below a thousandth of the measured fraction no device
#: runs (calibration moves factors by tens of percent), and the figures lose their meaning.
MIN_EFFICIENCY_SCALE = 1e-3


@dataclass(frozen=True, kw_only=True)
class RunsProvenance:
    """The measured runs an override was fitted on."""

    __pydantic_config__ = SPEC_CONFIG
    file: Str
    rows: NonNegInt
    ids: list[Str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class HardwareOverride:
    """Scales of a hardware spec's efficiency factors, by factor name."""

    __pydantic_config__ = SPEC_CONFIG
    efficiency: dict[str, PosFloat] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Hardware and engine deltas, by spec name, with where they come from."""

    __pydantic_config__ = SPEC_CONFIG
    created: Str
    runs: RunsProvenance
    hardware: dict[str, HardwareOverride] = field(default_factory=dict)
    engines: dict[str, dict[str, NonNegFloat]] = field(default_factory=dict)
    fit: dict[str, NonNegFloat] = field(default_factory=dict)
    notes: Optional[Str] = None
    #: The file read (set by :func:`load_overrides`; not written).
    path: Optional[Str] = None

    @property
    def origin(self) -> str:
        """Where a changed value comes from, for a spec's ``source``."""
        where = f" ({self.path})" if self.path else ""
        return (f"calibrated on {self.runs.rows} runs of {self.runs.file} on {self.created}"
                f"{where}")


def load_overrides(path: str | os.PathLike[str]) -> Overrides:
    """An :class:`Overrides` from a YAML file, or a one-line :class:`SpecError` naming the file
    and the field."""
    from planner.specs.load import read_yaml_file, validate

    p = Path(path)
    data, _ = read_yaml_file(p)
    if "path" in data:
        raise SpecError("unknown field (the file's path is not written in it)", file=str(p),
                        field="path")
    obj = validate(Overrides, data, file=str(p))
    for name, hw in obj.hardware.items():
        for factor, scale in hw.efficiency.items():
            if not MIN_EFFICIENCY_SCALE <= scale <= MAX_EFFICIENCY_SCALE:
                raise SpecError(f"a scale from {MIN_EFFICIENCY_SCALE:g} to "
                                f"{MAX_EFFICIENCY_SCALE:g} (got {scale:g})",
                                file=str(p), field=f"hardware.{name}.efficiency.{factor}")
    return dataclasses.replace(obj, path=str(p))


def overrides_yaml(overrides: Overrides) -> str:
    """The YAML text of ``overrides`` (what :func:`load_overrides` reads back)."""
    import yaml

    data = dataclasses.asdict(overrides)
    data.pop("path", None)
    if data.get("notes") is None:
        data.pop("notes", None)
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100))


def _scaled_factor(factor: Any, scale: float, origin: str, where: str) -> Any:
    """A copy of one efficiency factor with its fraction (or table of fractions) times
    ``scale``, capped at 1."""
    changes: dict[str, Any] = {}
    for name in ("frac", "table", "fracs"):
        value = getattr(factor, name, None)
        if isinstance(value, (int, float)):
            changes[name] = min(1.0, float(value) * scale)
        elif isinstance(value, dict):
            changes[name] = {k: min(1.0, float(v) * scale) for k, v in value.items()}
        elif isinstance(value, (list, tuple)):
            changes[name] = type(value)(min(1.0, float(v) * scale) for v in value)
    if not changes:
        raise SpecError("this efficiency factor has no fraction to scale", field=where)
    if hasattr(factor, "source"):
        changes["source"] = f"{factor.source}; x{scale:.4g} {origin}"
    return dataclasses.replace(factor, **changes)


def scale_efficiency(hardware: Any, scales: dict[str, float], origin: str,
                     file: str | None = None) -> Any:
    """``hardware`` with each named efficiency factor's fraction times its scale (at most 1),
    its source saying ``origin``; a :class:`SpecError` for a factor the spec does not have."""
    eff = hardware.efficiency
    changes = {}
    for factor, scale in scales.items():
        where = f"hardware.{hardware.name}.efficiency.{factor}"
        current = getattr(eff, factor, None) if not factor.startswith("_") else None
        if current is None:
            raise SpecError(f"{hardware.label} has no efficiency factor {factor!r} to scale",
                            file=file, field=where)
        changes[factor] = ({k: _scaled_factor(t, scale, origin, where)
                            for k, t in current.items()} if isinstance(current, dict)
                           else _scaled_factor(current, scale, origin, where))
    return dataclasses.replace(hardware, efficiency=dataclasses.replace(eff, **changes))


def apply_hardware_overrides(hardware: Any, overrides: Overrides | None) -> Any:
    """``hardware`` with the efficiency scales ``overrides`` gives for its name (unchanged when
    it gives none); a :class:`SpecError` for a factor the spec does not have."""
    if overrides is None or hardware.name not in overrides.hardware:
        return hardware
    return scale_efficiency(hardware, overrides.hardware[hardware.name].efficiency,
                            overrides.origin, overrides.path)


def apply_engine_overrides(engine: Any, overrides: Overrides | None) -> Any:
    """``engine`` (an engine spec: a pydantic model or a frozen dataclass) with the field values
    ``overrides`` gives for its name; a :class:`SpecError` for a field it does not have or that
    is not a number."""
    if engine is None or overrides is None or engine.name not in overrides.engines:
        return engine
    update: dict[str, float] = {}
    for name, value in overrides.engines[engine.name].items():
        current = getattr(engine, name, None) if not name.startswith("_") else None
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise SpecError(f"engine {engine.name} has no numeric field {name!r} to override",
                            file=overrides.path, field=f"engines.{engine.name}.{name}")
        if not math.isfinite(value):
            raise SpecError("expected a finite number", file=overrides.path,
                            field=f"engines.{engine.name}.{name}")
        update[name] = type(current)(value) if isinstance(current, float) else value
    try:
        return _copy(engine, update, overrides.path, f"engines.{engine.name}")
    except SpecError:
        # name the field the engine refuses, where one alone is refused
        for name, value in update.items():
            _copy(engine, {name: value}, overrides.path, f"engines.{engine.name}.{name}")
        raise


def _copy(engine: Any, update: dict[str, float], file: str | None, where: str) -> Any:
    """``engine`` with ``update``; a value the engine refuses (an overhead outside its bounds)
    a :class:`SpecError` naming the override file and ``where``."""
    from planner.errors import PlannerError

    try:
        if hasattr(engine, "model_copy"):
            return engine.model_copy(update=update)
        return dataclasses.replace(engine, **update)
    except PlannerError as err:
        raise SpecError(err.message, file=file, field=where) from None
    except ValueError as err:
        raise SpecError(str(err), file=file, field=where) from None
