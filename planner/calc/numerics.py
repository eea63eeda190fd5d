"""Low-precision numerics of the paper, as seeded numpy simulations: FP8 (E4M3, E5M2) and E5M6
with fine-grained scaling, LogFMT-n, limited-precision accumulation in FP8 GEMMs, and the bytes
each format puts on the wire.

Ref: P §3 (fine-grained FP8, accumulation precision, LogFMT); V3R §3.3; ../shared/reference/
paper.md §11. OCP "8-bit floating point specification (OFP8)" rev. 1.0 for E4M3 and E5M2.

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
"""

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
    """Values of LogFMT codes (see :func:`logfmt_encode`), shaped back to ``shape``."""
    g = np.where(k > 0, sign * np.exp(lo + step * (k - 1)), 0.0)
    return _untile(g, shape, tile, block=False)


def quantize_logfmt(x, *, bits: int, tile: int = DEFAULT_TILE):
    """LogFMT-n quantize-dequantize of a 2-D array (P §3.2)."""
    x = np.asarray(x, dtype=np.float64)
    return logfmt_decode(*logfmt_encode(x, bits=bits, tile=tile), x.shape, tile=tile)


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
    """Quantize-dequantize ``x`` (2-D) in ``fmt`` with its scaling (BF16 unscaled)."""
    if fmt in LOGFMT_FORMATS:
        return quantize_logfmt(x, bits=LOGFMT_FORMATS[fmt], tile=tile)
    if fmt == "bf16":
        return quantize_float(x, FLOAT_FORMATS["bf16"])
    return quantize_scaled(x, FLOAT_FORMATS[fmt], tile=tile, block=block, pow2_scale=pow2_scale)


def rel_l2_error(x, q) -> float:
    """‖x − q‖₂ / ‖x‖₂ (fraction)."""
    return float(np.linalg.norm(x - q) / np.linalg.norm(x))


# ----------------------------------------------------------------------------- data
#: Activation-like test data (seeded): name -> description.
DATASETS = {
    "gaussian-outliers": "N(0, 1) with 1% of channels scaled ×50 (outlier channels)",
    "heavy-tailed": "Student-t, 3 degrees of freedom",
}
OUTLIER_CHANNEL_FRAC = 0.01
OUTLIER_SCALE = 50.0
HEAVY_TAIL_DOF = 3


def activation_data(name: str, *, rows: int, cols: int, seed: int):
    """Seeded activation-like data (see :data:`DATASETS`)."""
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
    """Quantize-dequantize error of each format on each dataset (1×tile activation tiles)."""
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


# ----------------------------------------------------------------------------- accumulation
#: Fraction bits Hopper's FP8 tensor cores keep after aligning to the largest exponent (P §3.1:
#: "FP22" = 1 + 8 + 13).
ACCUM_FRACTION_BITS = 13
#: Products a tensor-core instruction adds at once (WGMMA, FP8: k = 32).
MMA_K = 32
#: DeepSeek promotes partial sums to FP32 CUDA-core registers every 128 elements (V3R §3.3.2).
PROMOTION_INTERVAL = 128


def _chop(values, exp_ref, fraction_bits):
    """Truncate ``values`` toward zero to multiples of 2^(exp_ref − fraction_bits)."""
    ulp = np.exp2(exp_ref - fraction_bits)
    return np.trunc(values / ulp) * ulp


def limited_accumulate(products, *, fraction_bits: int = ACCUM_FRACTION_BITS,
                       mma_k: int = MMA_K, promote_every: int | None = None):
    """Sum the rows of ``products`` (trials × K) the way an FP8 tensor core does: each
    instruction aligns its ``mma_k`` products and the running accumulator to their largest
    exponent and keeps ``fraction_bits`` fraction bits (truncating); with ``promote_every`` the
    partial sum is added to an exact (FP32-class) accumulator every that many elements and
    restarted.

    Ref: P §3.1 (13 fraction bits; promotion every 128 elements, V3R §3.3.2).
    Convention: truncation toward zero at alignment; the promoted accumulator is float64 here
    (FP32's 2^-24 rounding is far below the effects studied).
    Example: K = 4096 with 32 products per instruction: 128 lossy alignments.
    """
    trials, k = products.shape
    acc = np.zeros(trials)
    total = np.zeros(trials)
    for start in range(0, k, mma_k):
        chunk = products[:, start:start + mma_k]
        with np.errstate(divide="ignore"):
            biggest = np.maximum(np.abs(acc), np.max(np.abs(chunk), axis=1))
            exp_ref = np.floor(np.log2(np.where(biggest > 0, biggest, 1.0)))
        acc = _chop(acc, exp_ref, fraction_bits) + np.sum(
            _chop(chunk, exp_ref[:, None], fraction_bits), axis=1)
        if promote_every and (start + mma_k) % promote_every == 0:
            total += acc
            acc = np.zeros(trials)
    return total + acc


#: Dot-product inputs of the accumulation study.
ACCUMULATION_DATA = {
    "mean-zero": "a, b ~ N(0, 1): products of both signs, the sum grows like sqrt(K)",
    "positive": "a, b ~ |N(0, 1)|: every product adds, the sum grows like K (worst case)",
}


@dataclass(frozen=True)
class AccumulationError:
    data: str
    k: int
    limited_rel_error: float
    promoted_rel_error: float
    fp32_rel_error: float


def accumulation_errors(ks=(128, 512, 1024, 2048, 4096, 8192), *, trials: int = 512,
                        seed: int = 0, fraction_bits: int = ACCUM_FRACTION_BITS,
                        promote_every: int = PROMOTION_INTERVAL,
                        data=tuple(ACCUMULATION_DATA)) -> list[AccumulationError]:
    """Relative error (‖c − c_exact‖₂ / ‖c_exact‖₂ over ``trials`` dot products) of K-long FP8
    dot products accumulated with limited precision, with promotion, and in FP32 (sequential
    float32 sum), against the exact float64 sum of the same E4M3-quantized inputs (scaled per
    1×128 tile), for each kind of input in :data:`ACCUMULATION_DATA`."""
    out = []
    for kind in data:
        rng = np.random.default_rng(seed)
        kmax = max(ks)
        a, b = rng.standard_normal((2, trials, kmax))
        if kind == "positive":
            a, b = np.abs(a), np.abs(b)
        elif kind != "mean-zero":
            raise ValueError(f"unknown data {kind!r}; expected one of: "
                             f"{', '.join(ACCUMULATION_DATA)}")
        e4m3 = FLOAT_FORMATS["e4m3"]
        prods = quantize_scaled(a, e4m3) * quantize_scaled(b, e4m3)
        for k in ks:
            p = prods[:, :k]
            exact = p.sum(axis=1)
            fp32 = np.cumsum(p.astype(np.float32), axis=1, dtype=np.float32)[:, -1]
            lim = limited_accumulate(p, fraction_bits=fraction_bits)
            pro = limited_accumulate(p, fraction_bits=fraction_bits, promote_every=promote_every)
            norm = np.linalg.norm(exact)
            out.append(AccumulationError(kind, k, float(np.linalg.norm(lim - exact) / norm),
                                         float(np.linalg.norm(pro - exact) / norm),
                                         float(np.linalg.norm(fp32 - exact) / norm)))
    return out
