"""Low-precision numerics of the paper, as seeded numpy simulations: FP8 (E4M3, E5M2) and E5M6
with fine-grained scaling, LogFMT-n, limited-precision accumulation in FP8 GEMMs, and the bytes
each format puts on the wire.

Ref: P §3 (arXiv 2505.09343: fine-grained FP8, accumulation precision, LogFMT); V3R §3.3 (arXiv
2412.19437). OCP "8-bit floating point specification (OFP8)" rev. 1.0 for E4M3 and E5M2.

Conventions:
- A float format has ``exp_bits`` exponent bits (bias 2^(e−1) − 1), ``man_bits`` fraction bits,
  subnormals, round-to-nearest-even, and saturates at its largest finite value (E4M3: 448, OCP's
  "FN" variant with no infinities; E5M2: 57,344; E5M6, the paper's custom format, assumed
  IEEE-like: 65,024; BF16: 3.39e38).
- Fine-grained scaling: one FP32 scale per 1×``tile`` group of a row (activations, P: 1×128) or
  per ``tile``×``tile`` block (weights, P: 128×128); the scale maps the group's largest |x| to
  the format's largest value (optionally rounded up to a power of two).
- LogFMT-n (paper.md §11): n bits = sign + (n − 1)-bit code per element; per 1×tile group, min
  and max of ln|x| over the non-zero elements, min clamped to > max − ln(2^32); code 0 is zero,
  code K ≥ 1 the level exp(min + Step·(K − 1)), Step = (max − min)/(2^(n−1) − 2); a value goes
  to the nearest level in LINEAR space; a value below exp(min) goes to exp(min) or to zero,
  whichever is nearer (P does not say; this is the choice here). Natural log (P: unstated).
  Metadata: min and max as FP32 per group.
- Errors are relative L2 errors, ‖x − Q(x)‖₂ / ‖x‖₂, over the whole tensor.

The formats and their bytes are in :mod:`~planner.calc.numerics.formats`, the format-error study
in :mod:`~planner.calc.numerics.study`, limited-precision accumulation in
:mod:`~planner.calc.numerics.accumulation`; every public name is re-exported here.
"""

from __future__ import annotations

from planner.calc.numerics.accumulation import (
    ACCUM_FRACTION_BITS,
    ACCUMULATION_DATA,
    MMA_K,
    PROMOTION_INTERVAL,
    AccumulationError,
    accumulation_errors,
    limited_accumulate,
)
from planner.calc.numerics.formats import (
    BITS_PER_BYTE,
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_TILE,
    FLOAT_FORMATS,
    FORMATS,
    FP32_BITS,
    LOGFMT_BOUNDS_PER_TILE,
    LOGFMT_FORMATS,
    LOGFMT_RANGE_LOG2,
    FloatFormat,
    bits_per_element,
    comm_bytes_per_token,
    logfmt_decode,
    logfmt_encode,
    quantize,
    quantize_float,
    quantize_logfmt,
    quantize_scaled,
    rel_l2_error,
)
from planner.calc.numerics.study import (
    DATASETS,
    HEAVY_TAIL_DOF,
    OUTLIER_CHANNEL_FRAC,
    OUTLIER_SCALE,
    FormatError,
    activation_data,
    format_errors,
)

__all__ = [
    "ACCUM_FRACTION_BITS", "ACCUMULATION_DATA", "BITS_PER_BYTE", "DATASETS",
    "DEFAULT_HIDDEN_SIZE", "DEFAULT_TILE", "FLOAT_FORMATS", "FORMATS", "FP32_BITS",
    "HEAVY_TAIL_DOF", "LOGFMT_BOUNDS_PER_TILE", "LOGFMT_FORMATS", "LOGFMT_RANGE_LOG2", "MMA_K",
    "OUTLIER_CHANNEL_FRAC", "OUTLIER_SCALE", "PROMOTION_INTERVAL", "AccumulationError",
    "FloatFormat", "FormatError", "accumulation_errors", "activation_data", "bits_per_element",
    "comm_bytes_per_token", "format_errors", "limited_accumulate", "logfmt_decode",
    "logfmt_encode", "quantize", "quantize_float", "quantize_logfmt", "quantize_scaled",
    "rel_l2_error",
]
