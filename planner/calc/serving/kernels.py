"""Kernels of a serving step as rooflines, and the ledger that sums them by name; GEMM rows as the
tensor cores compute them (padded to whole tiles).

Ref: PTX ISA (Hopper ``wgmma.mma_async`` tiles); DeepGEMM (grouped GEMMs padded to BLOCK_M);
the roofline model (Williams et al. 2009): a kernel takes the longer of its compute and its
memory traffic.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from planner.specs.deployment import MAX_TILE_ROWS


@dataclass(frozen=True)
class StepPart:
    name: str
    flops: float
    bytes_moved: float
    time_s: float
    bound: str          # "compute" or "memory" or "network"


@dataclass
class KernelTotals:
    """One kernel's sums over a step: FLOPs, bytes, time and its compute and memory times."""

    flops: float = 0.0
    bytes_moved: float = 0.0
    time_s: float = 0.0
    compute_s: float = 0.0
    memory_s: float = 0.0


class KernelLedger:
    """The kernels of one step by name, in the order they first ran, each with its totals."""

    def __init__(self) -> None:
        self.kernels: dict[str, KernelTotals] = {}

    def add(self, name: str, *, flops: float, bytes_moved: float, flop_per_s: float,
            bytes_per_s: float, count: float) -> float:
        """Time of one run of a kernel (s); adds ``count`` runs to ``name``'s totals.

        Formula: t = max(F / R, Q / B), F its FLOPs at R FLOP/s, Q its bytes at B bytes/s.
        Ref: the roofline model (Williams et al. 2009).
        Convention: a run's compute and memory traffic overlap fully; no launch overhead.
        Example: F = 2e12 FLOPs at R = 1e15 FLOP/s (2 ms) and Q = 3e9 B at B = 3e12 B/s (1 ms):
        t = 2 ms, compute bound; with ``count`` = 10 the totals grow by 2e13 FLOPs, 3e10 B, 20 ms.
        """
        compute_s, memory_s = flops / flop_per_s, bytes_moved / bytes_per_s
        time_s = max(compute_s, memory_s)
        totals = self.kernels.setdefault(name, KernelTotals())
        totals.flops += flops * count
        totals.bytes_moved += bytes_moved * count
        totals.time_s += time_s * count
        totals.compute_s += compute_s * count
        totals.memory_s += memory_s * count
        return time_s

    def parts(self) -> list[StepPart]:
        """Each kernel's totals as a step part, bound by compute where its compute time is at
        least its memory time."""
        return [StepPart(name, k.flops, k.bytes_moved, k.time_s,
                         "compute" if k.compute_s >= k.memory_s else "memory")
                for name, k in self.kernels.items()]


def padded_rows(*, rows, tile_rows):
    """Rows a tensor-core GEMM computes for ``rows`` tokens in tiles of ``tile_rows`` (count).

    Formula: ⌈rows / B⌉ · B; ``rows`` itself when B is None (not modelled).
    Ref: PTX ISA, Hopper ``wgmma.mma_async`` (M = 64 rows per warpgroup tile); Ant Group and
    SGLang, lmsys.org/blog/2025-09-26-sglang-ant-group ("WGMMA's block_m is fixed at 64 ... with
    small-batch decoding, TBO introduces redundant MLP GEMM computations"; swapAB: BLOCK_M 32).
    Convention: the padding rows cost FLOPs, not weight bytes (the tile reads each weight
    once); rows > 0.
    Example: 36 rows at B = 64: 64 rows, 1.78x the useful FLOPs; 96 rows: 128.
    """
    if tile_rows is None:
        return rows
    return -(-rows // tile_rows) * tile_rows          # ⌈rows / B⌉·B, arrays too


#: Largest tile (rows) the padding model takes, the deployment's bound
#: (:data:`planner.specs.deployment.MAX_TILE_ROWS`); the expected padding costs at most
#: MAX_TILE_ROWS / 2 terms.
#: Means (rows) up to which the expected padding sums the Poisson pmf over x = 0 ..
#: SMALL_MEAN_MAX_ROWS directly (the Fourier series cancels there: E << B).
SMALL_MEAN_ROWS = 1.0
#: Last count of the direct sum: pmf(40; r <= 1) <= e^-1 / 40! < 1e-48.
SMALL_MEAN_MAX_ROWS = 40
#: Fourier terms whose Poisson factor exp(-2 r sin²(πj/B)) is below e^-40 (4e-18) are dropped.
FOURIER_DECAY_EXPONENT = 40.0


def _fourier_terms(*, mean_rows: float, tile_rows: int) -> int:
    """Fourier terms j = 1 .. J that :func:`expected_padded_rows_per_expert` keeps (count).

    Formula: J = min(⌊B/2⌋, ⌈B · sqrt(D / (8 r))⌉), D = FOURIER_DECAY_EXPONENT: past J,
    2 r sin²(πj/B) >= 2 r (2j/B)² >= D (sin x >= 2x/π on [0, π/2]).
    """
    return min(tile_rows // 2,
               math.ceil(tile_rows * math.sqrt(FOURIER_DECAY_EXPONENT / (8 * mean_rows))))


def expected_padded_rows_per_expert(*, mean_rows, tile_rows):
    """Expected rows one expert's grouped-GEMM block computes when routing sends it a Poisson
    count of rows with mean ``mean_rows``, in tiles of ``tile_rows`` (count); scalars or numpy
    arrays (broadcast against each other).

    Formula: E[⌈X / B⌉ · B], X ~ Poisson(r); in closed form (⌈X/B⌉·B = X + ((−X) mod B), and
    the Fourier series of X mod B):
    E = r + (B − 1)/2 + Σ_{j=1}^{⌊B/2⌋} w_j · exp(−2r·s_j²) · sin(r·sin θ_j − θ_j/2) / s_j,
    θ_j = 2πj/B, s_j = sin(θ_j/2), w_j = 1 (½ for j = B/2); terms below e^−40 dropped
    (:func:`_fourier_terms`). For r <= 1: Σ_{x=1}^{40} e^−r·r^x/x! · ⌈x/B⌉·B. r when B is
    None; r itself when r <= 0.
    Ref: :func:`padded_rows` (tiles); DeepGEMM grouped GEMMs (each expert's rows padded to
    BLOCK_M, masked layout in decode, contiguous in prefill).
    Convention: experts of a rank receive independent Poisson counts (routing at random at the
    rank's load); an expert with no rows computes none; 1 <= B <= MAX_TILE_ROWS (at most
    B/2 terms, whatever r).
    Example: r = 20.3, B = 32: 32.2 rows (1.59x); B = 64: 64.0 rows (3.15x); r = 1,000,
    B = 64: 1,031.4 rows (r + 31.5 − 0.09); B = 2: r + (1 − e^−2r)/2 (r plus P(X odd)).
    """
    if tile_rows is None:
        return mean_rows
    if isinstance(mean_rows, numbers.Real) and isinstance(tile_rows, numbers.Integral):
        return _expected_padded_rows_scalar(float(mean_rows), int(tile_rows))
    return _expected_padded_rows_array(mean_rows, tile_rows)


def _check_tile_rows(tile_rows: int) -> None:
    if not 1 <= tile_rows <= MAX_TILE_ROWS:
        raise ValueError(f"tile_rows must be 1 .. {MAX_TILE_ROWS} (got {tile_rows})")


def _expected_padded_rows_scalar(r: float, b: int) -> float:
    """:func:`expected_padded_rows_per_expert` of one mean and one tile (pure Python)."""
    _check_tile_rows(b)
    if r <= 0:
        return r
    if r <= SMALL_MEAN_ROWS:
        return sum(math.exp(x * math.log(r) - r - math.lgamma(x + 1)) * -(-x // b) * b
                   for x in range(1, SMALL_MEAN_MAX_ROWS + 1))
    total = r + (b - 1) / 2
    for j in range(1, _fourier_terms(mean_rows=r, tile_rows=b) + 1):
        theta, s = 2 * math.pi * j / b, math.sin(math.pi * j / b)
        weight = 0.5 if 2 * j == b else 1.0
        total += weight * math.exp(-2 * r * s * s) * math.sin(r * math.sin(theta) - theta / 2) / s
    return total


def _fourier_sum(r, b, *, terms: int):
    """r + (B − 1)/2 + the first ``terms`` terms of the Fourier series of
    :func:`expected_padded_rows_per_expert` (1-d arrays r, B)."""
    import numpy as np

    j = np.arange(1, terms + 1)
    bj, rr = b[:, None], r[:, None]
    weight = np.where(2 * j < bj, 1.0, np.where(2 * j == bj, 0.5, 0.0))
    theta, s = 2 * np.pi * j / bj, np.sin(np.pi * j / bj)
    s = np.where(weight > 0, s, 1.0)
    series = np.sum(weight * np.exp(-2 * rr * s * s) * np.sin(rr * np.sin(theta) - theta / 2)
                    / s, axis=-1)
    return r + (b - 1) / 2 + series


#: Arrays of more elements than this are computed once per distinct (mean, tile) pair: a
#: search over many layouts repeats the same few pairs (``planner plan``: 100,000 layouts,
#: a few thousand pairs).
DISTINCT_PAIRS_MIN_SIZE = 4096


def _expected_padded_rows_array(mean_rows, tile_rows):
    """:func:`expected_padded_rows_per_expert` on numpy arrays, each distinct (mean, tile) pair
    of a large array computed once (:func:`_expected_padded_rows_terms`)."""
    import numpy as np

    r, b = np.broadcast_arrays(np.asarray(mean_rows, dtype=float),
                               np.asarray(tile_rows, dtype=np.int64))
    if r.size > DISTINCT_PAIRS_MIN_SIZE:
        pairs, inverse = np.unique(np.stack([r.ravel(), b.ravel().astype(float)]), axis=1,
                                   return_inverse=True)
        if pairs.shape[1] < r.size:
            distinct = _expected_padded_rows_terms(pairs[0], pairs[1].astype(np.int64))
            return distinct[inverse.ravel()].reshape(r.shape)
    return _expected_padded_rows_terms(r, b)


def _expected_padded_rows_terms(mean_rows, tile_rows):
    """:func:`expected_padded_rows_per_expert` on numpy arrays: the terms on a last axis."""
    import numpy as np

    r, b = np.broadcast_arrays(np.asarray(mean_rows, dtype=float),
                               np.asarray(tile_rows, dtype=np.int64))
    if b.size:
        _check_tile_rows(int(b.min()))
        _check_tile_rows(int(b.max()))
    small = r <= SMALL_MEAN_ROWS
    out = np.array(np.where(r <= 0, r, 0.0))
    # Direct sum where 0 < r <= 1 (x = 1 .. 40 on the last axis), on those elements alone.
    pick = small & (r > 0)
    x = np.arange(1, SMALL_MEAN_MAX_ROWS + 1)
    log_fact = np.array([math.lgamma(k + 1) for k in x])
    r_small, b_small = r[pick][:, None], b[pick][:, None]
    pmf = np.exp(x * np.log(r_small) - r_small - log_fact)
    out[pick] = np.sum(pmf * (-(-x // b_small) * b_small), axis=-1)
    # Fourier series elsewhere (j = 1 .. J on the last axis; weight 0 past B/2), in groups of
    # elements whose J (rounded up to a power of two) is the same: work Σ J, not N · max J.
    big_pick = np.flatnonzero(~small)
    big, bb = r.ravel()[big_pick], b.ravel()[big_pick]
    need = np.minimum(bb // 2, np.ceil(bb * np.sqrt(FOURIER_DECAY_EXPONENT / (8 * big))))
    group = np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64)
    flat = out.reshape(-1)
    for g in np.unique(group):
        sel = group == g
        flat[big_pick[sel]] = _fourier_sum(big[sel], bb[sel], terms=int(2**g))
    return out


def random_routing_expert_rate(*, rate_at, mean_rows, hit_frac):
    """Routed experts' grouped-GEMM rate (FLOP/s) under random routing, read from a table
    measured with balanced routing; scalars or numpy arrays.

    Formula: R = R_bal(h) · R_bal(r / h) / R_bal(1), r = rows per local expert (T·k / E),
    h = the share of local experts hit (1 − (1 − k/E)^N). The balanced table's point r' hits
    min(r', 1) of the experts with max(r', 1) rows each; random routing hits h with r / h rows
    each. The time T ∝ r / R is taken as the balanced time at the same experts hit, t_bal(h),
    times the balanced ratio of r / h rows per hit expert to one, t_bal(r / h) / t_bal(1).
    Ref: AIConfigurator moe_perf (GB200, TensorRT-LLM 1.3.0rc20): Kimi-K2.5's NVFP4 experts
    (7,168 / 2,048, 384 experts, top-8, EP 8) at 48 tokens take 211.4 µs balanced (every local
    expert hit) and 137.6 µs with power_law_1.01 routing (benchmarks/moe_routing_parts.py).
    Convention: h = 1 (r large) gives R_bal(r); r / h = 1 (r small) gives R_bal(h) ≈ R_bal(r);
    ``rate_at`` maps rows per expert (array) to the balanced table's rate; r / h >= 1
    (Bernoulli: h <= r).
    Example: GB200's NVFP4 grouped table, Kimi-K2.5 (384 experts, top-8) at 48 tokens: r = 1,
    h = 0.636: η = 0.00203 · η(1.572) 0.00335 / η(1) 0.0023 = 0.00296, the routed time 0.78x
    the all-hit 0.0023's; r = 8 (h = 0.9997): 0.01449 (η(8) 0.01449).
    """
    import numpy as np

    hit = np.maximum(hit_frac, np.finfo(float).tiny)
    return rate_at(hit) * rate_at(np.maximum(mean_rows / hit, 1.0)) / rate_at(np.ones_like(hit))


def mla_decode_fixed_s(model: Any, hardware: Any, *, kv_dtype: str, tp: Any) -> Any:
    """The MLA decode kernel's fixed time per call (s) at TP ``tp`` (heads n_h / TP per GPU),
    scalars or arrays; 0 for another attention or a spec whose ``mla_decode`` table gives none.

    Formula: the ``mla_decode`` table's ``fixed_us`` of the KV dtype (else BF16), linear in
    log heads between its rows, constant past its ends; the kernel's time is this plus its
    FLOPs at the table's rate (:func:`~planner.calc.serving.efficiency.mla_decode_flop_per_s`).
    Ref: AIConfigurator generation_mla_perf (TensorRT-LLM 1.3.0rc20): the median latency of its
    runs of one sequence over at most 32 cached positions (``benchmarks/extract_aic_kernels.py``
    ``mla_decode_fixed``; ``benchmarks/hopper_decode_parts.py``).
    Convention: paid once per layer and micro-batch that decodes; the rate (a median over runs
    of >= 262,144 cached tokens) is kept, so large runs read at most this much more.
    Example: H200, FP8 KV, TP 8 (16 heads): 13.2e-6 s; TP 16 (8 heads): 12.8e-6 s; B200 at TP 8:
    9.0e-6 s; a spec without ``mla_decode`` (H800): 0.
    """
    from planner.specs.model import MLAttention
    from planner.units import US

    att = model.attention
    tables = hardware.efficiency.mla_decode or {}
    table = tables.get(kv_dtype, tables.get("bf16"))
    none = not isinstance(att, MLAttention) or table is None or table.fixed_us is None
    if isinstance(tp, numbers.Real):       # serve's one step: no numpy (the CLI's cold start)
        if none or table is None:
            return 0.0
        x, xs = math.log(att.num_heads / float(tp)), [math.log(r) for r in table.rows]
        ys = list(table.fixed_us)
        if x <= xs[0] or x >= xs[-1]:
            return (ys[0] if x <= xs[0] else ys[-1]) * US
        i = next(j for j in range(1, len(xs)) if xs[j] >= x)
        return (ys[i - 1] + (x - xs[i - 1]) / (xs[i] - xs[i - 1]) * (ys[i] - ys[i - 1])) * US
    import numpy as np

    if none or table is None:
        return 0.0 * np.asarray(tp, dtype=float)
    heads = np.log(np.maximum(att.num_heads / np.asarray(tp, dtype=float), 1e-9))
    return np.interp(heads, np.log(np.asarray(table.rows)), np.asarray(table.fixed_us)) * US
#: Rows per expert from which the routed experts take the measured routing skew
#: (``efficiency.routed_skew``): random routing reaches every expert there (all but e^−32 of
#: them), so the balanced table the planner reads is the skewed runs' own baseline; below it
#: :func:`random_routing_expert_rate` (checked against the same power-law runs near one row per
#: expert) stands. The reduction's first grid point (benchmarks/extract_aic_kernels.py).
SKEW_MIN_ROWS_PER_EXPERT = 32.0


def routed_skew_factor(grid, *, ep, rows):
    """The routed experts' time under skewed routing over their time under balanced routing
    (ratio ≥ 1), from a measured :class:`~planner.specs.kernel_times.SkewGrid`; scalars or
    numpy arrays broadcast together.

    Formula: ρ = max(1, g(EP, r)), g read off the grid linearly in log r along each EP row,
    then linearly in log EP (constant past the ends), where r >= SKEW_MIN_ROWS_PER_EXPERT;
    1 below it and without a grid.
    Ref: AIConfigurator moe_perf, power_law_1.01 routing (its default for DeepSeek-V3; the
    collector times the most-loaded EP rank) against balanced (hardware/*.yaml
    ``efficiency.routed_skew``); DeepSeek-V3's FP8 block-scale experts on B200, EP 8,
    16,384 tokens (r = 512): 1.399 ms against 0.855 (benchmarks/deepseek_prefill_parts.py,
    its FP8 report).
    Convention: a ratio below 1 (the power-law run faster: NVFP4 kernels at EP 2-8, larger
    GEMMs on the hot experts) reads as 1, the planner credits no speed to skew; MoE-TP is read at
    its EP (the grid's MoE-TP 1 runs).
    Example: B200 fp8_block: EP 8, r = 512: 1.637; EP 8, r = 16: 1; EP 4, r = 512: 1.461.
    """
    import numpy as np

    r = np.asarray(rows, dtype=float)
    if grid is None:
        return np.ones(np.broadcast_shapes(np.shape(r), np.shape(ep)))
    e, r = np.broadcast_arrays(np.log(np.maximum(np.asarray(ep, dtype=float), 1.0)), r)
    lr = np.log(np.maximum(r, 1e-9))
    at = np.stack([np.interp(lr, np.log(grid.rows), row) for row in grid.factor])
    le = np.log(grid.ep)
    hi = np.clip(np.searchsorted(le, e), 1, len(le) - 1) if len(le) > 1 else np.zeros_like(
        e, dtype=int)
    lo = np.maximum(hi - 1, 0)
    w = np.clip((e - le[lo]) / np.where(hi > lo, le[hi] - le[lo], 1.0), 0.0, 1.0)
    g = (np.take_along_axis(at, lo[None], 0)[0] * (1 - w)
         + np.take_along_axis(at, hi[None], 0)[0] * w)
    return np.where(r >= SKEW_MIN_ROWS_PER_EXPERT, np.maximum(g, 1.0), 1.0)


def hottest_rank_expert_rows(hardware, moe_weights_dtype, *, mean_rows, tile_rows, ep,
                             table=None):
    """Rows per local expert one MoE layer computes at the pace of its most-loaded EP rank:
    the expected padded rows (:func:`expected_padded_rows_per_expert`) times the measured
    routing skew of the experts' grouped table (:func:`routed_skew_factor`); arrays.

    Formula: E[padded rows](r, B) · ρ(EP, r), ρ from ``efficiency.routed_skew`` at the grouped
    table the experts run (:func:`~.efficiency.kernel_precision`, ``table`` the engine's
    weight-only one); 1 where the spec has none.
    Ref: :func:`routed_skew_factor`.
    Convention: the FLOPs of the hottest rank set the layer's time (every rank waits for it at
    the combine); the weights each rank streams do not change.
    Example: DeepSeek-V3 FP8 on B200, EP 8, 16 prompts of 1,024 tokens per rank (r = 4,096):
    4,096 · 1.637 rows; a decode batch of 64 per rank (r = 16): 16.
    """
    from planner.calc.serving.efficiency import kernel_precision

    key = kernel_precision(hardware, weights_dtype=moe_weights_dtype,
                           weight_only_moe_table=table).grouped_table
    grid = (hardware.efficiency.routed_skew or {}).get(key)
    return expected_padded_rows_per_expert(mean_rows=mean_rows, tile_rows=tile_rows) * (
        routed_skew_factor(grid, ep=ep, rows=mean_rows))
