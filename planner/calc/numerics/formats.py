"""Number formats of the numerics study: FP8 (E4M3, E5M2), E5M6 and BF16 rounding, fine-grained
scaling, LogFMT-n encoding, and the bits and bytes each format costs (the conventions are in
:mod:`planner.calc.numerics`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Hidden size of the test data: DeepSeek-V3's.
DEFAULT_HIDDEN_SIZE = 7168
#: Bits of one FP32 scale or LogFMT bound.
FP32_BITS = 32
#: P's tile: 1×128 activation tiles, 128×128 weight blocks.
DEFAULT_TILE = 128
#: LogFMT's min is clamped to max − ln(2^32) (a dynamic range like E5's).
LOGFMT_RANGE_LOG2 = 32
#: LogFMT stores two FP32 bounds (min, max) per tile.
LOGFMT_BOUNDS_PER_TILE = 2
BITS_PER_BYTE = 8


@dataclass(frozen=True)
class FloatFormat:
    name: str
    exp_bits: int
    man_bits: int
    max_value: float

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def min_normal_exp(self) -> int:
        return 2 - 2 ** (self.exp_bits - 1)


#: Float formats by name. E5M6 is P's custom format (12 bits).
FLOAT_FORMATS = {
    "e4m3": FloatFormat("e4m3", 4, 3, 448.0),
    "e5m2": FloatFormat("e5m2", 5, 2, 57344.0),
    "e5m6": FloatFormat("e5m6", 5, 6, (2 - 2.0**-6) * 2.0**15),
    "bf16": FloatFormat("bf16", 8, 7, (2 - 2.0**-7) * 2.0**127),
}
#: LogFMT widths by name.
LOGFMT_FORMATS = {"logfmt8": 8, "logfmt10": 10}
FORMATS = (*FLOAT_FORMATS, *LOGFMT_FORMATS)


def quantize_float(x, fmt: FloatFormat):
    """Round ``x`` to the nearest value of ``fmt`` (ties to even), saturating at ±max.

    Formula: e = max(⌊log₂|x|⌋, e_min); step = 2^(e − m); Q(x) = step · round(x / step).
    Ref: IEEE 754 rounding; OCP OFP8 rev. 1.0.
    Convention: subnormals kept; NaN/inf are not produced (saturation).
    Example: E4M3, x = 0.3: e = −2, step = 2^−5, 0.3 / 2^−5 = 9.6 -> 10 -> 0.3125.
    """
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(x)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(mag > 0, mag, 1.0)))
    e = np.maximum(e, fmt.min_normal_exp)
    step = np.exp2(e - fmt.man_bits)
    q = np.round(x / step) * step
    return np.clip(q, -fmt.max_value, fmt.max_value)


def _tiles(x, tile: int, block: bool):
    """View ``x`` (2-D, dims multiples of ``tile``) as groups: (n_groups, elements)."""
    rows, cols = x.shape
    if block:
        g = x.reshape(rows // tile, tile, cols // tile, tile).transpose(0, 2, 1, 3)
        return g.reshape(-1, tile * tile)
    return x.reshape(rows, cols // tile, tile).reshape(-1, tile)


def _untile(g, shape, tile: int, block: bool):
    rows, cols = shape
    if block:
        return g.reshape(rows // tile, cols // tile, tile, tile).transpose(0, 2, 1, 3).reshape(
            rows, cols)
    return g.reshape(rows, cols)


def quantize_scaled(x, fmt: FloatFormat, *, tile: int = DEFAULT_TILE, block: bool = False,
                    pow2_scale: bool = False):
    """Fine-grained scaled quantize-dequantize of a 2-D array (same shape back).

    Formula: per group G, s = max|G| / max_fmt (rounded up to 2^⌈log₂ s⌉ when ``pow2_scale``);
    Q(G) = s · quantize_float(G / s).
    Ref: P §3.1 (1×128 activation tiles, 128×128 weight blocks); V3R §3.3.1.
    Convention: scales kept exactly (FP32 in practice); an all-zero group keeps scale 1.
    Example: a tile whose largest |x| is 896 gets s = 2 under E4M3 (448 × 2).
    """
    x = np.asarray(x, dtype=np.float64)
    g = _tiles(x, tile, block)
    amax = np.max(np.abs(g), axis=1, keepdims=True)
    scale = np.where(amax > 0, amax / fmt.max_value, 1.0)
    if pow2_scale:
        scale = np.exp2(np.ceil(np.log2(scale)))
    q = quantize_float(g / scale, fmt) * scale
    return _untile(q, x.shape, tile, block)


def logfmt_encode(x, *, bits: int, tile: int = DEFAULT_TILE):
    """LogFMT-n codes of a 2-D array in 1×``tile`` groups: (sign, code K, min, step) where the
    decoded value is sign · exp(min + step·(K − 1)) for K ≥ 1 and 0 for K = 0.

    Formula: levels L_K = exp(m + Δ(K − 1)), K = 1 .. 2^(n−1) − 1, Δ = (M − m)/(2^(n−1) − 2),
    m = max(min ln|x|, M − ln 2^32), M = max ln|x|; K = the level nearest |x| in linear space.
    Ref: P §3.2 (LogFMT); paper.md §11.
    Convention: below L_1, |x| goes to L_1 or 0, whichever is nearer; a group of one distinct
    magnitude uses Δ = 0 (every non-zero element decodes exactly).
    Example: bits = 8: 127 levels from m to M, Δ = (M − m)/126.
    """
    if bits < 3:
        raise ValueError(f"LogFMT needs at least 3 bits (sign + 2 code bits), got {bits}")
    x = np.asarray(x, dtype=np.float64)
    g = _tiles(x, tile, block=False)
    mag = np.abs(g)
    nz = mag > 0
    with np.errstate(divide="ignore"):
        logs = np.where(nz, np.log(np.where(nz, mag, 1.0)), np.nan)
    any_nz = nz.any(axis=1, keepdims=True)
    hi = np.where(any_nz, np.nanmax(np.where(nz, logs, -np.inf), axis=1, keepdims=True), 0.0)
    lo = np.where(any_nz, np.nanmin(np.where(nz, logs, np.inf), axis=1, keepdims=True), 0.0)
    lo = np.maximum(lo, hi - LOGFMT_RANGE_LOG2 * np.log(2.0))
    levels = 2 ** (bits - 1) - 1                 # codes 1 .. levels
    step = (hi - lo) / (levels - 1)
    safe_step = np.where(step > 0, step, 1.0)
    pos = np.where(nz, (logs - lo) / safe_step, 0.0)
    k_lo = np.clip(np.floor(pos), 0, levels - 1)                 # level index, 0-based
    k_hi = np.minimum(k_lo + 1, levels - 1)
    v_lo, v_hi = np.exp(lo + step * k_lo), np.exp(lo + step * k_hi)
    k = np.where(mag - v_lo <= v_hi - mag, k_lo, k_hi) + 1       # nearest in linear space
    below = nz & (logs < lo)
    k = np.where(below, np.where(mag >= np.exp(lo) / 2, 1, 0), k)
    k = np.where(nz, k, 0).astype(np.int64)
    k = np.where(step > 0, k, np.where(nz, 1, 0))
    return np.sign(g), k, lo, step


def logfmt_decode(sign, k, lo, step, shape, *, tile: int = DEFAULT_TILE):
    """Values of LogFMT codes (see :func:`logfmt_encode`), shaped back to ``shape``.

    Formula: x̂ = sign · exp(m + Δ·(K − 1)) for K ≥ 1; 0 for K = 0.
    Ref: P §3.2 (LogFMT); paper.md §11.
    Convention: 1×``tile`` groups, each with its own m and Δ.
    Example: [[1, 2, 3, 4]] in one 1×4 tile at 8 bits: m = ln 1 = 0, Δ = ln 4 / 126 = 0.011002,
    codes 1, 64, 101, 127 decode to 1, 2, 3.00487, 4.
    """
    g = np.where(k > 0, sign * np.exp(lo + step * (k - 1)), 0.0)
    return _untile(g, shape, tile, block=False)


def quantize_logfmt(x, *, bits: int, tile: int = DEFAULT_TILE):
    """LogFMT-n quantize-dequantize of a 2-D array (same shape back).

    Formula: Q(x) = :func:`logfmt_decode` (:func:`logfmt_encode` (x)).
    Ref: P §3.2 (LogFMT); paper.md §11.
    Convention: see the module docstring (nearest level in linear space, natural log).
    Example: bits = 8, tile = 4: [[1, 2, 3, 4]] -> [[1, 2, 3.00487, 4]].
    """
    x = np.asarray(x, dtype=np.float64)
    sign, k, lo, step = logfmt_encode(x, bits=bits, tile=tile)
    return logfmt_decode(sign, k, lo, step, x.shape, tile=tile)


def bits_per_element(fmt: str, *, tile: int = DEFAULT_TILE, block: bool = False) -> float:
    """Bits per element including per-tile metadata (bits).

    Formula: float format: b + 32 / G (one FP32 scale per group of G elements; BF16 unscaled: 16);
    LogFMT-n: n + 2·32 / G (FP32 min and max per group).
    Ref: P §3 (scales per 1×128 tile); paper.md §11.
    Convention: G = tile (1×tile) or tile² (block).
    Example: E4M3, 1×128: 8 + 0.25 = 8.25 bits; LogFMT-8: 8 + 0.5 = 8.5 bits.
    """
    group = tile * tile if block else tile
    if fmt in LOGFMT_FORMATS:
        return LOGFMT_FORMATS[fmt] + LOGFMT_BOUNDS_PER_TILE * FP32_BITS / group
    f = FLOAT_FORMATS[fmt]
    return f.bits if fmt == "bf16" else f.bits + FP32_BITS / group


def comm_bytes_per_token(fmt: str, *, hidden_size, tile: int = DEFAULT_TILE):
    """Bytes of one token's hidden vector in ``fmt`` on the wire (bytes), metadata included.

    Formula: ⌈h / G⌉ groups; bytes = h·b/8 + groups · metadata bytes.
    Ref: P §3 (FP8 dispatch, BF16 combine; LogFMT for communication); DeepEP for the layout.
    Convention: 1×tile groups; no per-token routing metadata (the EP calculator adds DeepEP's).
    Example: h = 7168: E4M3 7,168 + 56 × 4 = 7,392; LogFMT-8 7,168 + 56 × 8 = 7,616; BF16 14,336.
    """
    groups = -(-hidden_size // tile)
    if fmt == "bf16":
        return hidden_size * FLOAT_FORMATS["bf16"].bits / BITS_PER_BYTE
    if fmt in LOGFMT_FORMATS:
        meta = LOGFMT_BOUNDS_PER_TILE * FP32_BITS / BITS_PER_BYTE
        return hidden_size * LOGFMT_FORMATS[fmt] / BITS_PER_BYTE + groups * meta
    return hidden_size * FLOAT_FORMATS[fmt].bits / BITS_PER_BYTE + groups * FP32_BITS / BITS_PER_BYTE


def quantize(x, fmt: str, *, tile: int = DEFAULT_TILE, block: bool = False,
             pow2_scale: bool = False):
    """Quantize-dequantize ``x`` (2-D) in ``fmt`` with its scaling (BF16 unscaled).

    Formula: LogFMT-n :func:`quantize_logfmt`; BF16 :func:`quantize_float`; E4M3, E5M2, E5M6
    :func:`quantize_scaled` (s = max|G| / max_fmt per group).
    Ref: P §3 (fine-grained FP8, LogFMT); OCP OFP8 rev. 1.0.
    Convention: 1×``tile`` groups (``tile``×``tile`` blocks with ``block``).
    Example: [[0.3, −1, 100, 7]] in one 1×4 tile: E4M3 s = 100 / 448 = 0.2232:
    [[0.30692, −1.00446, 100, 7.14286]]; BF16 [[0.30078, −1, 100, 7]]; LogFMT-8
    [[0.3, −0.99475, 100, 6.89723]].
    """
    if fmt in LOGFMT_FORMATS:
        return quantize_logfmt(x, bits=LOGFMT_FORMATS[fmt], tile=tile)
    if fmt == "bf16":
        return quantize_float(x, FLOAT_FORMATS["bf16"])
    return quantize_scaled(x, FLOAT_FORMATS[fmt], tile=tile, block=block, pow2_scale=pow2_scale)


def rel_l2_error(x, q) -> float:
    """Relative L2 error of ``q`` against ``x`` (fraction).

    Formula: ‖x − q‖₂ / ‖x‖₂.
    Ref: the module docstring (the error the numerics study reports).
    Convention: over the whole tensor, not per tile.
    Example: x = (3, 4), q = (3, 4.5): 0.5 / 5 = 0.1.
    """
    return float(np.linalg.norm(x - q) / np.linalg.norm(x))
