"""Limited-precision accumulation in FP8 GEMMs (P §3.1): a tensor core's truncating alignment,
DeepSeek's promotion to FP32 every 128 elements, and the errors they cause."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.numerics.formats import FLOAT_FORMATS, quantize_scaled

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

    Formula: per instruction, e = ⌊log₂ max(|acc|, max|chunk|)⌋; acc = chop(acc) + Σ chop(p),
    chop(v) = trunc(v / 2^(e − f)) · 2^(e − f), f = ``fraction_bits``.
    Ref: P §3.1 (13 fraction bits; promotion every 128 elements, V3R §3.3.2).
    Convention: truncation toward zero at alignment; the promoted accumulator is float64 here
    (FP32's 2^-24 rounding is far below the effects studied).
    Example: K = 4096 with 32 products per instruction: 128 lossy alignments; products
    |N(0, 1)| (default_rng(0), 1 × 4,096) summing to 3,283.94 accumulate to 3,008 (−8.4%), and
    to 3,276.95 when promoted every 128.
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
    1×128 tile), for each kind of input in :data:`ACCUMULATION_DATA`.

    Formula: error = ‖c − c_exact‖₂ / ‖c_exact‖₂ over the trials, c from
    :func:`limited_accumulate` (without and with promotion) or a float32 cumulative sum.
    Ref: P §3.1 (limited accumulation precision of FP8 GEMMs); V3R §3.3.2 (promotion).
    Convention: seeded normal inputs (``positive``: their absolute values), the same products for
    every K (prefixes of the longest).
    Example: K = 4,096, 512 trials, seed 0: mean-zero limited 0.00224, promoted 0.000379;
    positive limited 0.0798, promoted 0.00220 (FP32 about 1e-6).
    """
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
