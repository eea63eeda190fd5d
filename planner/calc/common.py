"""Shared result pieces: labelled parts that sum to a total, and the provenance of an input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


#: An :class:`Input` whose value is a calculator argument has the origin ``"argument <name>"``
#: (the parameter's name; a front end translates it to its own spelling, e.g. a CLI flag).
ARGUMENT_ORIGIN_PREFIX = "argument "


def argument_origin(parameter: str) -> str:
    """The origin of an :class:`Input` taken from the calculator argument ``parameter``."""
    return ARGUMENT_ORIGIN_PREFIX + parameter


@dataclass(frozen=True)
class Input:
    """One input of a calculation: its value (base units), unit, and where it came from."""

    name: str
    value: Any
    unit: str
    origin: str


@dataclass(frozen=True)
class Parts:
    """Labelled parts of a quantity; ``total`` is their sum (parts that do not apply are 0 and
    listed, so a breakdown always has the same labels for every model)."""

    items: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(v for _, v in self.items)

    def as_dict(self) -> dict[str, float]:
        return dict(self.items)

    def __getitem__(self, key: str) -> float:
        return self.as_dict()[key]
