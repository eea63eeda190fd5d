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
