"""Annotation markers for the spec dataclasses.

The specs are plain frozen dataclasses, so importing them (and running the calculators on them)
does not import pydantic. Pydantic validates them only when a file is loaded: these markers
implement pydantic's ``__get_pydantic_core_schema__`` hook and import pydantic lazily inside it.
"""

from __future__ import annotations

from typing import Annotated, Any


#: Largest number a spec field accepts unless it says otherwise: no count, size, bandwidth or
#: price in a spec comes near it, and products of a few such numbers stay far from float overflow.
MAX_SPEC_NUMBER = 10**15


def _int_or_none(bound: float | None) -> int | None:
    """An integer field's bound as pydantic's int schema takes it (the bounds are integers)."""
    return None if bound is None else int(bound)


class Num:
    """A strict finite number: YAML ``true`` or ``"80"`` is not a number; NaN and infinity are
    rejected; ``gt``/``ge``/``le``/``lt`` bound it (``le`` defaults to :data:`MAX_SPEC_NUMBER`)."""

    def __init__(self, typ: type, *, gt: float | None = None, ge: float | None = None,
                 le: float | None = None, lt: float | None = None) -> None:
        self.typ, self.gt, self.ge, self.lt = typ, gt, ge, lt
        self.le = MAX_SPEC_NUMBER if le is None else le

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        if self.typ is int:
            return cs.int_schema(strict=True, gt=_int_or_none(self.gt), ge=_int_or_none(self.ge),
                                 le=_int_or_none(self.le))
        return cs.float_schema(strict=True, gt=self.gt, ge=self.ge, le=self.le, lt=self.lt,
                               allow_inf_nan=False)


class Tagged:
    """A union of dataclasses told apart by the value of one key (``kind``)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic import Discriminator

        return handler.generate_schema(Annotated[source, Discriminator(self.key)])


class Text:
    """A strict, non-empty string."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        return cs.str_schema(strict=True, min_length=1)


class Flag:
    """A strict boolean (YAML ``true``/``false`` only, not ``1`` or ``"yes"``)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        return cs.bool_schema(strict=True)


class QuantityValue:
    """A bound as a person writes it: a finite number (base units) or a string such as
    ``"80 KB"``. The unit is checked later, against the metric the bound belongs to
    (:func:`planner.units.parse_quantity`)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        def check(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
                raise ValueError(f"expected a number or a string like '80 KB', got {value!r}")
            return value

        return cs.no_info_plain_validator_function(
            check, json_schema_input_schema=cs.union_schema(
                [cs.float_schema(), cs.str_schema(min_length=1)]))


PosInt = Annotated[int, Num(int, gt=0)]
NonNegInt = Annotated[int, Num(int, ge=0)]
PosFloat = Annotated[float, Num(float, gt=0)]
NonNegFloat = Annotated[float, Num(float, ge=0)]
#: A fraction in (0, 1]: an efficiency factor, an acceptance rate.
Frac = Annotated[float, Num(float, gt=0, le=1)]
#: A share that may be 0 but not the whole (a prefix-cache hit: at least one token computed).
PartFrac = Annotated[float, Num(float, ge=0, lt=1)]
Str = Annotated[str, Text()]
Bool = Annotated[bool, Flag()]
Quantity = Annotated[Any, QuantityValue()]

#: pydantic config of every spec dataclass: unknown fields are errors.
SPEC_CONFIG: dict[str, Any] = {"extra": "forbid"}
