"""Unit constants and conversions. Inside the planner every quantity is in base units
(bytes, seconds, FLOPs, FLOP/s, bytes/s); these constants convert at the edges.

Decimal prefixes throughout, as the paper uses them: 1 KB = 1000 bytes, 1 GB/s = 1e9 bytes/s,
400 Gbit/s = 50 GB/s. Binary units (KiB, GiB) exist only where a name says so.
"""

from __future__ import annotations

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
MIB = 2.0**20
GIB = 2.0**30

GFLOP = 1e9
TFLOP = 1e12

US = 1e-6
MS = 1e-3

BITS_PER_BYTE = 8

#: Bytes per element of each supported data type. FP4 packs two elements per byte.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "fp4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (``fp32``, ``bf16``, ``fp16``, ``fp8``, ``fp4``)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        from planner.errors import UsageError

        raise UsageError(
            f"unknown dtype {dtype!r}; expected one of: {', '.join(DTYPE_BYTES)}"
        ) from None


def gbit_per_s_to_bytes_per_s(gbit_per_s):
    """400 Gbit/s -> 5e10 bytes/s (decimal giga, 8 bits per byte)."""
    return gbit_per_s * GB / BITS_PER_BYTE


def gb_per_s_to_bytes_per_s(gb_per_s):
    """50 GB/s -> 5e10 bytes/s (decimal giga)."""
    return gb_per_s * GB


def tb_per_s_to_bytes_per_s(tb_per_s):
    """3.35 TB/s -> 3.35e12 bytes/s (decimal tera)."""
    return tb_per_s * TB


def tflop_per_s_to_flop_per_s(tflop_per_s):
    """989 TFLOP/s -> 9.89e14 FLOP/s."""
    return tflop_per_s * TFLOP


# ----------------------------------------------------------------------------- quantities
#: Units a person may write after a number, by dimension, with their factor to the base unit.
#: Prefixes are decimal (1 KB = 1000 B) except the binary byte units (KiB, MiB, GiB, TiB).
#: A ``count`` takes the suffixes model cards use: K or k (thousand), M (million), B (billion),
#: T (trillion): "671B" parameters, "32k" (32,000) tokens; and the binary Ki and Mi: "32Ki"
#: (32,768) tokens. A ``frac`` takes "%".
UNITS: dict[str, dict[str, float]] = {
    "bytes": {
        "B": 1, "byte": 1, "bytes": 1,
        "KB": KB, "kB": KB, "MB": MB, "GB": GB, "TB": TB, "PB": 1e15,
        "KiB": 2.0**10, "MiB": MIB, "GiB": GIB, "TiB": 2.0**40,
    },
    "s": {"s": 1, "ms": MS, "us": US, "µs": US, "μs": US, "ns": 1e-9, "min": 60, "h": 3600},
    "FLOPs": {
        "FLOP": 1, "FLOPs": 1, "KFLOP": 1e3, "MFLOP": 1e6, "GFLOP": GFLOP, "TFLOP": TFLOP,
        "PFLOP": 1e15, "EFLOP": 1e18, "GFLOPs": GFLOP, "TFLOPs": TFLOP, "PFLOPs": 1e15,
    },
    "tokens/s": {"tokens/s": 1, "token/s": 1, "tok/s": 1},
    "bytes/s": {
        "B/s": 1, "KB/s": KB, "MB/s": MB, "GB/s": GB, "TB/s": TB,
        "bit/s": 1 / BITS_PER_BYTE, "Gbit/s": GB / BITS_PER_BYTE, "Tbit/s": TB / BITS_PER_BYTE,
    },
    "FLOP/s": {"FLOP/s": 1, "GFLOP/s": GFLOP, "TFLOP/s": TFLOP, "PFLOP/s": 1e15},
    "count": {"K": 1e3, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "Ki": 2.0**10, "Mi": 2.0**20},
    "fraction": {"%": 0.01},
    "USD": {"USD": 1, "$": 1},
    "h": {"h": 1, "GPU-hours": 1, "GPU-h": 1},
}

#: What each dimension measures, for messages.
DIMENSION_NAMES = {
    "bytes": "a size in bytes", "s": "a time", "FLOPs": "a FLOP count",
    "tokens/s": "a token rate", "bytes/s": "a bandwidth", "FLOP/s": "a FLOP rate",
    "count": "a count", "fraction": "a fraction", "USD": "an amount in USD",
    "h": "a duration in GPU-hours",
}

#: Multipliers a person may put, separated by spaces, before a unit: "2.788 M GPU-hours",
#: "5.6 M USD", "1.2 k tokens/s". Alone after a number they are a count's suffix ("671B").
MULTIPLIERS = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}

#: Spellings refused because they are ambiguous, with what to write instead.
AMBIGUOUS_UNITS = {
    "Gbps": "bits or bytes? write Gbit/s or GB/s",
    "GBps": "bits or bytes? write Gbit/s or GB/s",
    "Mbps": "bits or bytes? write Gbit/s or GB/s",
    "Tbps": "bits or bytes? write Tbit/s or TB/s",
    "Kb": "kilobits? write KB (1000 bytes)",
    "kb": "kilobits? write KB (1000 bytes)",
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


def parse_quantity(value: object, dimension: str) -> float:
    """A quantity written by a person -> a float in the base unit of ``dimension``.

    Grammar: a number (``80``, ``1.5e-2``) is already in base units; a string is
    ``<number> [<multiplier> ]<unit>`` with optional spaces after the number (``"80 KB"``,
    ``"15ms"``, ``"60 tokens/s"``, ``"671B"``, ``"45%"``, ``"2.788 M GPU-hours"``), where the
    unit must be one of ``UNITS[dimension]`` and the multiplier one of ``MULTIPLIERS``: units of another dimension (``"15 ms"`` for a byte count) and
    ambiguous spellings (``Gbps``) are refused. Booleans, NaN, infinity and negative values are
    refused. Raises ``ValueError`` with a one-line message.

    Example: ``parse_quantity("70.272 KB", "bytes") == 70272.0``.
    """
    import math
    import re

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number or a string like '80 KB', got {value!r}")
    if isinstance(value, str):
        m = re.fullmatch(rf"\s*({_NUMBER})\s*(.*?)\s*", value)
        if m is None:
            raise ValueError(f"cannot read {value!r} as '<number> <unit>'")
        number, unit = float(m.group(1)), m.group(2)
        if unit:
            number *= _unit_factor(unit, dimension)
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


def _unit_factor(unit: str, dimension: str) -> float:
    table = UNITS[dimension]
    if unit in table:
        return table[unit]
    head, _, rest = unit.partition(" ")
    if rest.strip() in table and head in MULTIPLIERS and dimension != "count":
        return MULTIPLIERS[head] * table[rest.strip()]
    if unit in AMBIGUOUS_UNITS:
        raise ValueError(f"unit {unit!r} is ambiguous ({AMBIGUOUS_UNITS[unit]})")
    others = [d for d, t in UNITS.items() if unit in t and d != dimension]
    allowed = ", ".join(table)
    if others:
        raise ValueError(f"unit {unit!r} is {DIMENSION_NAMES[others[0]]}, but this metric is "
                         f"{DIMENSION_NAMES[dimension]} (allowed: {allowed})")
    raise ValueError(f"unknown unit {unit!r} for {dimension} (allowed: {allowed})")


#: The largest whole count :func:`parse_count` accepts (the specs' bound on numbers).
MAX_COUNT = 10**15


def parse_count(value: object, *, minimum: int = 1) -> int:
    """A whole count written by a person -> an int: ``4096``, ``"32768"``, ``"32k"``,
    ``"32Ki"`` (32,768), ``"1.5M"``, ``"14.8T"`` (the suffixes of ``UNITS["count"]``). Refused, with a one-line
    ``ValueError``: what :func:`parse_quantity` refuses, a fraction (``"1.5"``), a count below
    ``minimum`` or above :data:`MAX_COUNT`.

    Example: ``parse_count("32k") == 32000``.
    """
    number = parse_quantity(value, "count")
    if number != int(number):
        raise ValueError(f"{value!r} is not a whole number")
    if number < minimum:
        raise ValueError(f"{value!r} is below {minimum:,}")
    if number > MAX_COUNT:
        raise ValueError(f"{value!r} is above 10^15")
    return int(number)
