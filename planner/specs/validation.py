"""Specs of the shipped validation data (``validation/*.yaml``): the paper's printed figures
(``paper.yaml``) and the measured deployment runs and ablations (``runs.yaml``).

Entries are keyed by their id (YAML refuses a duplicate key); a run's or an ablation's
deployment is a :class:`~planner.specs.deployment.ServeConfig`, the one serving deployment type,
checked field by field like the rest of the file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, Literal, Optional, Tuple, Union

from planner import vocab
from planner.specs._types import SPEC_CONFIG, Num, Str
from planner.specs.deployment import ServeConfig

#: How the paper rounds a figure (base units): to ``digits`` decimals (negative: tens,
#: hundreds...), truncated to ``digits`` decimals, or to ``digits`` significant digits ("≈1200").
ROUNDING_MODES = ("round", "truncate", "sig")

#: A number as written: an int stays an int (a count, 70,272 bytes), a float a float.
Number = Union[Annotated[int, Num(int, ge=0)], Annotated[float, Num(float, ge=0)]]
PosNumber = Union[Annotated[int, Num(int, gt=0)], Annotated[float, Num(float, gt=0)]]
#: A throughput gain, after / before - 1.
Gain = Annotated[float, Num(float, gt=-1)]


class ServeConfigValue:
    """A deployment written as a mapping of :class:`ServeConfig` fields: unknown fields and
    values of the wrong type are errors, then ServeConfig's own checks run."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        return cs.no_info_plain_validator_function(build_serve_config)


def _type_ok(value: Any, tp: str) -> bool:
    """Whether ``value`` fits the ServeConfig annotation ``tp`` (strict: no bool for a number,
    no number for a bool, finite floats)."""
    if tp.startswith("Optional["):
        return value is None or _type_ok(value, tp[len("Optional["):-1])
    if tp == "bool" or isinstance(value, bool):
        return tp == "bool" and isinstance(value, bool)
    if tp == "int":
        return isinstance(value, int)
    if tp == "float":
        return isinstance(value, (int, float)) and math.isfinite(value)
    return tp == "str" and isinstance(value, str)


def build_serve_config(data: Any) -> ServeConfig:
    """A :class:`ServeConfig` from a mapping of its fields (a float field's int becomes a float,
    as the loader's cached path builds it); a ``ValueError`` naming the field otherwise."""
    from planner.errors import UsageError

    if isinstance(data, ServeConfig):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"expected a mapping of deployment fields, got {data!r}")
    types = {f.name: str(f.type) for f in dataclasses.fields(ServeConfig)}
    kwargs = {}
    for name, value in data.items():
        if name not in types:
            raise ValueError(f"unknown deployment field {name!r}; allowed: {', '.join(types)}")
        if not _type_ok(value, types[name]):
            raise ValueError(f"{name}: expected {types[name]}, got {value!r}")
        if "float" in types[name] and isinstance(value, int):
            value = float(value)
        kwargs[name] = value
    try:
        return ServeConfig(**kwargs)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


Deployment = Annotated[ServeConfig, ServeConfigValue()]


# ----------------------------------------------------------------------------- paper.yaml
@dataclass(frozen=True, kw_only=True)
class Rounding:
    """The precision a figure is printed at, in base units."""

    __pydantic_config__ = SPEC_CONFIG
    mode: Literal[ROUNDING_MODES]  # type: ignore[valid-type]
    digits: Annotated[int, Num(int, ge=-15, le=15)]

    def agrees(self, value: float, printed: float) -> bool:
        """Whether ``value``, rounded as the paper rounds it, is the ``printed`` figure."""
        if self.mode == "round":
            return round(value, self.digits) == round(printed, self.digits)
        if self.mode == "truncate":
            scale = 10.0**self.digits
            return math.floor(value * scale) / scale == round(printed, self.digits)
        magnitude = 10.0 ** (math.floor(math.log10(abs(value))) - self.digits + 1)
        return round(value / magnitude) * magnitude == printed


@dataclass(frozen=True, kw_only=True)
class PaperFigure:
    """One figure as the paper prints it, of a ``model`` (on ``hardware``) or a network
    ``topology``: ``value`` in base units (``unit``), ``printed`` the
    text, ``rounding`` its precision (none: the planner makes no claim to reproduce it, e.g. a
    cost under assumed prices). ``erratum``: why the printed figure is wrong, with
    ``corrected``, the value the paper's own inputs give, at the same precision."""

    __pydantic_config__ = SPEC_CONFIG
    section: Str
    quantity: Str
    metric: Str
    value: Number
    unit: Str
    printed: Str
    model: Optional[Str] = None
    hardware: Optional[Str] = None
    topology: Optional[Literal[vocab.TOPOLOGIES]] = None  # type: ignore[valid-type]
    rounding: Optional[Rounding] = None
    convention: Optional[Literal[vocab.FLOPS_CONVENTIONS]] = None  # type: ignore[valid-type]
    note: str = ""
    erratum: Optional[Str] = None
    corrected: Optional[Number] = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.topology is None):
            raise ValueError("give exactly one of model, topology")
        if (self.erratum is None) != (self.corrected is None):
            raise ValueError("an erratum needs both 'erratum' and 'corrected'")

    def agrees(self, value: float) -> bool:
        """Whether ``value`` rounds to the printed figure (a figure without a precision: no)."""
        return self.rounding is not None and self.rounding.agrees(value, self.value)


@dataclass(frozen=True, kw_only=True)
class PaperInput:
    """A quantity the paper states and computes with (base units), and where."""

    __pydantic_config__ = SPEC_CONFIG
    value: Number
    unit: Str
    note: Str


@dataclass(frozen=True, kw_only=True)
class PaperFile:
    """``validation/paper.yaml``: the paper's sections, stated inputs and printed figures."""

    __pydantic_config__ = SPEC_CONFIG
    source: Str
    sections: Dict[str, Str]
    inputs: Dict[str, PaperInput]
    figures: Dict[str, PaperFigure]

    def __post_init__(self) -> None:
        for key, fig in self.figures.items():
            if fig.section not in self.sections:
                raise ValueError(f"figures.{key}.section: unknown section {fig.section!r}; "
                                 f"sections: {', '.join(self.sections)}")

    def figure(self, key: str) -> PaperFigure:
        return self.figures[key]

    def input(self, key: str) -> Number:
        return self.inputs[key].value


# ----------------------------------------------------------------------------- runs.yaml
@dataclass(frozen=True, kw_only=True)
class RunEntry:
    """A published deployment-level measurement: ``measured_tokens_per_s_per_node`` (output
    tokens in decode, input tokens in prefill) on ``deployment``, the published setup restated.
    ``source`` names an entry of the file's sources, ``section`` the part of it."""

    __pydantic_config__ = SPEC_CONFIG
    source: Str
    setup: Str
    model: Str
    hardware: Str
    measured_tokens_per_s_per_node: PosNumber
    deployment: Deployment
    section: Optional[Str] = None
    assumed: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class AblationEntry:
    """A source's own measurement of one engine feature's gain (after / before - 1): each side
    a deployment, or a run's (``before_run`` / ``after_run``); ``measured_gain`` one figure or a
    range [low, high], by default the two runs' measured ratio."""

    __pydantic_config__ = SPEC_CONFIG
    source: Str
    setup: Str
    model: Str
    hardware: Str
    before: Optional[Deployment] = None
    after: Optional[Deployment] = None
    before_run: Optional[Str] = None
    after_run: Optional[Str] = None
    measured_gain: Optional[Union[Gain, Tuple[Gain, Gain]]] = None
    section: Optional[Str] = None
    assumed: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.measured_gain, list):   # the loader's cached path keeps YAML's list
            object.__setattr__(self, "measured_gain", tuple(self.measured_gain))
        for side in ("before", "after"):
            if (getattr(self, side) is None) == (getattr(self, f"{side}_run") is None):
                raise ValueError(f"give exactly one of {side}, {side}_run")
        if self.measured_gain is None and None in (self.before_run, self.after_run):
            raise ValueError("measured_gain is needed unless both sides are runs")


@dataclass(frozen=True, kw_only=True)
class RunsFile:
    """``validation/runs.yaml``: the sources cited, the measured runs and the ablations."""

    __pydantic_config__ = SPEC_CONFIG
    sources: Dict[str, Str]
    runs: Dict[str, RunEntry]
    ablations: Dict[str, AblationEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, entries in (("runs", self.runs), ("ablations", self.ablations)):
            for key, entry in entries.items():
                if entry.source not in self.sources:
                    raise ValueError(f"{kind}.{key}.source: unknown source {entry.source!r}; "
                                     f"sources: {', '.join(self.sources)}")
        for key, a in self.ablations.items():
            for side in ("before_run", "after_run"):
                run = getattr(a, side)
                if run is not None and run not in self.runs:
                    raise ValueError(f"ablations.{key}.{side}: unknown run {run!r}")

    def citation(self, entry: RunEntry | AblationEntry) -> str:
        """The entry's source in words, with its section."""
        text = self.sources[entry.source]
        return f"{text} ({entry.section})" if entry.section else text
