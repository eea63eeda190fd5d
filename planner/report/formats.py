"""Number formats: a base-unit value -> the string a table shows (decimal units, as the paper)."""

from __future__ import annotations

from typing import Any, Callable


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def fmt_count_si(x: float) -> str:
    """1.2345e9 -> '1.23 B' (billions, as model cards write parameter counts)."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:,.2f} {suffix}"
    return f"{x:,.0f}"


def fmt_bytes(x: float) -> str:
    """Decimal units, as the paper: 70,272 -> '70.272 KB'."""
    for scale, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if abs(x) >= scale:
            return f"{x / scale:,.3f} {suffix}"
    return f"{x:,.0f} B"


def fmt_seconds(x: float) -> str:
    if x >= 1:
        return f"{x:,.3f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3f} ms"
    return f"{x * 1e6:.2f} µs"


def fmt_rate_bytes(x: float) -> str:
    return f"{x / 1e9:,.1f} GB/s"


def fmt_gflop(x: float) -> str:
    return f"{x / 1e9:,.2f} GFLOP"


def fmt_tokens_per_s(x: float) -> str:
    return f"{x:,.2f} tokens/s"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


def fmt_frac_pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


def fmt_pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def fmt_share_pct(x: float) -> str:
    """A share (0 <= x < 1) as a percentage to one decimal, with more digits where one decimal
    would show 0.0% or 100.0% for a share that is neither (0.9999999 -> 99.99999%)."""
    text = f"{x * 100:.1f}"
    if text in ("0.0", "100.0") and 0 < x < 1:
        text = f"{x * 100:.10g}"
    return f"{text}%"


def fmt_tflop_per_s(x: float) -> str:
    return f"{x / 1e12:,.1f} TFLOP/s"


#: Unit of a metric (:mod:`planner.metrics` dimensions) -> its format.
UNIT_FORMATS: dict[str, Callable[[float], str]] = {
    "bytes": fmt_bytes, "s": fmt_seconds, "FLOPs": fmt_gflop, "tokens/s": fmt_tokens_per_s,
    "x": fmt_ratio, "bytes/s": fmt_rate_bytes, "count": fmt_count_si, "fraction": fmt_pct,
    "USD": lambda v: f"{v:,.0f} USD", "h": lambda v: f"{v:,.0f} GPU-hours",
    "FLOP/s": fmt_tflop_per_s,
}


def fmt_value(x: Any, unit: str) -> str:
    """Format a base-unit value by its unit ("n/a" for None; a string as written)."""
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return UNIT_FORMATS.get(unit, lambda v: f"{v:g}")(x)
