"""The format-error study: seeded activation-like data and each format's quantize-dequantize
error on it (P §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.numerics.formats import (
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_TILE,
    LOGFMT_FORMATS,
    bits_per_element,
    quantize,
    rel_l2_error,
)

#: Activation-like test data (seeded): name -> description.
DATASETS = {
    "gaussian-outliers": "N(0, 1) with 1% of channels scaled ×50 (outlier channels)",
    "heavy-tailed": "Student-t, 3 degrees of freedom",
}
OUTLIER_CHANNEL_FRAC = 0.01
OUTLIER_SCALE = 50.0
HEAVY_TAIL_DOF = 3


def activation_data(name: str, *, rows: int, cols: int, seed: int):
    """Seeded activation-like data (see :data:`DATASETS`), shape (rows, cols).

    Formula: gaussian-outliers: N(0, 1) with ⌈1% of cols⌉ channels × 50; heavy-tailed: Student-t
    with 3 degrees of freedom.
    Ref: P §3.1 (activation outliers motivate fine-grained scaling).
    Convention: numpy's default_rng(seed): the same seed gives the same data.
    Example: heavy-tailed, 256 × 7,168, seed 0: largest |x| = 160.66.
    """
    rng = np.random.default_rng(seed)
    if name == "gaussian-outliers":
        x = rng.standard_normal((rows, cols))
        n_out = max(1, int(round(cols * OUTLIER_CHANNEL_FRAC)))
        x[:, rng.choice(cols, n_out, replace=False)] *= OUTLIER_SCALE
        return x
    if name == "heavy-tailed":
        return rng.standard_t(HEAVY_TAIL_DOF, (rows, cols))
    raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")


@dataclass(frozen=True)
class FormatError:
    format: str
    dataset: str
    tile: int
    scaling: str
    rel_l2_error: float
    bits_per_element: float


def format_errors(formats, *, tile: int = DEFAULT_TILE, seed: int = 0, rows: int = 256,
                  cols: int = DEFAULT_HIDDEN_SIZE, pow2_scale: bool = False) -> list[FormatError]:
    """Quantize-dequantize error of each format on each dataset (1×tile activation tiles).

    Formula: :func:`rel_l2_error` (x, :func:`quantize` (x, fmt)); bits from
    :func:`bits_per_element`.
    Ref: P §3 (FP8 and LogFMT accuracy); paper.md §11.
    Convention: seeded data of :func:`activation_data`, ``rows`` × ``cols``.
    Example: defaults (256 × 7,168, 1×128, seed 0), gaussian-outliers: E4M3 0.01232 at 8.25 bits,
    LogFMT-8 0.01023 at 8.5 bits, BF16 0.00166 at 16 bits.
    """
    out = []
    for ds in DATASETS:
        x = activation_data(ds, rows=rows, cols=cols, seed=seed)
        for fmt in formats:
            scaling = ("none" if fmt == "bf16" else
                       f"min/max per 1x{tile}" if fmt in LOGFMT_FORMATS else
                       f"{'2^k ' if pow2_scale else ''}scale per 1x{tile}")
            q = quantize(x, fmt, tile=tile, pow2_scale=pow2_scale)
            out.append(FormatError(fmt, ds, tile, scaling, rel_l2_error(x, q),
                                   bits_per_element(fmt, tile=tile)))
    return out
