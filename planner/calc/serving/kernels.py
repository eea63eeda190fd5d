"""Kernels of a serving step as rooflines, and the ledger that sums them by name; GEMM rows as the
tensor cores compute them (padded to whole tiles).

Ref: PTX ISA (Hopper ``wgmma.mma_async`` tiles); DeepGEMM (grouped GEMMs padded to BLOCK_M);
the roofline model (Williams et al. 2009): a kernel takes the longer of its compute and its
memory traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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


#: Standard deviations of the Poisson count summed either side of its mean.
POISSON_WINDOW_SIGMAS = 12


def expected_padded_rows_per_expert(*, mean_rows, tile_rows):
    """Expected rows one expert's grouped-GEMM block computes when routing sends it a Poisson
    count of rows with mean ``mean_rows``, in tiles of ``tile_rows`` (count).

    Formula: E[⌈X / B⌉] · B, X ~ Poisson(r), summed over r ± 12 σ; r when B is None.
    Ref: :func:`padded_rows` (tiles); DeepGEMM grouped GEMMs (each expert's rows padded to
    BLOCK_M, masked layout in decode, contiguous in prefill).
    Convention: experts of a rank receive independent Poisson counts (routing at random at the
    rank's load); an expert with no rows computes none.
    Example: r = 20.3, B = 32: 32.2 rows (1.59x); B = 64: 64.0 rows (3.15x); r = 1,000,
    B = 64: 1,032 rows.
    """
    if tile_rows is None or mean_rows <= 0:
        return mean_rows
    r = mean_rows
    half = POISSON_WINDOW_SIGMAS * math.sqrt(r) + tile_rows
    total = 0.0
    for x in range(max(0, math.floor(r - half)), math.ceil(r + half) + 1):
        pmf = math.exp(x * math.log(r) - r - math.lgamma(x + 1))
        total += pmf * math.ceil(x / tile_rows) * tile_rows
    return total
