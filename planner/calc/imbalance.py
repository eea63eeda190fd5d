"""Expert-load imbalance under expert parallelism: how many more routed rows the hottest EP rank
receives than the mean, from sampling noise and the routing's persistent skew.

Every EP rank waits for the slowest at dispatch and combine, so a MoE layer runs at the pace of
the hottest rank: its expert GEMM rows and its EP traffic are the mean's times (1 + ratio).

Model: the routed rows R of a rank are the mean load n times (1 + X), X with coefficient of
variation cv = sqrt(1/n + s²): 1/n is the Poisson noise of routing n rows at random, s the skew
of a routing that favours some experts, which load balancing (EPLB: redundant experts, placed
by measured load) reduces but does not remove. The hottest of N ranks sits near the expected
maximum of N standard normals, so (max - mean) / mean = z(N) · cv.

Ref: TensorRT-LLM tech blog 4, "Scaling Expert Parallelism in TensorRT-LLM (Part 1)", Table 1
(github.com/NVIDIA/TensorRT-LLM, docs/source/blogs/tech_blog/
blog4_Scaling_Expert_Parallelism_in_TensorRT-LLM.md): DeepSeek-R1 routing counted per rank on
32 GPUs, a mean of 1,024 routed rows per rank; imbalance ratio (max - mean) / mean averaged over
layers and iterations: 1.564 without EPLB, 0.109 with EPLB (32 redundant experts, 9 slots per
rank on 32 ranks), 0.115 with EPLB on 36 ranks. SGLang's large-scale EP blog (lmsys.org,
2025-05-05) ablates the same effect on throughput (EPLB 1.49x prefill, 2.54x decode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import UsageError

#: Rows per rank and ranks behind TRT-LLM's Table 1, and its imbalance ratios by placement.
MEASURED_ROWS_PER_RANK, MEASURED_RANKS = 1024, 32
MEASURED_SOURCE = ("TensorRT-LLM tech blog 4 Table 1: DeepSeek-R1 routed rows per rank, EP 32, "
                   "mean 1,024")


@dataclass(frozen=True)
class ExpertBalance:
    name: str
    description: str
    #: Measured (max - mean) / mean at MEASURED_ROWS_PER_RANK over MEASURED_RANKS, or None
    #: where the placement has no persistent skew.
    measured_ratio: float | None
    exact: bool = False            # every rank exactly the mean load (no noise either)


EXPERT_BALANCES = {
    b.name: b for b in (
        ExpertBalance("exact", "every rank the mean load (DeepSeek's profiles simulate "
                               "absolutely balanced routing)", None, exact=True),
        ExpertBalance("uniform", "experts drawn uniformly at random: sampling noise only "
                                 "(SGLang's simulated perfect EPLB)", None),
        ExpertBalance("eplb", "EPLB with 32 redundant experts placed by measured load: "
                              f"skew from 0.109 measured ({MEASURED_SOURCE})", 0.109),
        ExpertBalance("no-eplb", "experts placed in index order, no redundancy: skew from "
                                 f"1.564 measured ({MEASURED_SOURCE})", 1.564),
    )
}


def expected_max_standard_normal(n):
    """Expected maximum of ``n`` independent standard normal variables (count of sigmas).

    Formula: Blom's approximation Φ⁻¹((n - 0.375) / (n + 0.25)); 0 for n = 1.
    Ref: G. Blom, Statistical Estimates and Transformed Beta-Variables (1958), the plotting
    position of the largest order statistic.
    Convention: within 0.5% of the exact value for n >= 8 (n = 32: 2.0667 against 2.0697),
    2.5% below it for n = 4.
    Example: n = 32: Φ⁻¹(31.625 / 32.25) = Φ⁻¹(0.98062) = 2.067.
    """
    from statistics import NormalDist

    if n < 1:
        raise UsageError(f"the number of ranks must be at least 1, got {n}")
    return 0.0 if n == 1 else NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def routing_skew_cv(*, imbalance_ratio, rows_per_rank, ranks):
    """Persistent routing skew s (coefficient of variation of a rank's load beyond sampling
    noise) implied by a measured imbalance ratio (fraction).

    Formula: s = sqrt((ratio / z(N))² - 1/n), n rows per rank on average, N ranks.
    Ref: module docstring (TRT-LLM Table 1 gives the ratios).
    Convention: 0 where the ratio is within sampling noise.
    Example: ratio 0.109 at n = 1,024 over N = 32: sqrt((0.109 / 2.067)² - 1/1,024)
    = sqrt(0.002781 - 0.000977) = 0.0425.
    """
    z = expected_max_standard_normal(ranks)
    return math.sqrt(max(0.0, (imbalance_ratio / z) ** 2 - 1 / rows_per_rank)) if z else 0.0


def expert_imbalance_ratio(*, rows_per_rank, ranks, skew_cv):
    """How much more than the mean the hottest of ``ranks`` EP ranks receives (fraction).

    Formula: (max - mean) / mean = z(N) · sqrt(1/n + s²), n the mean routed rows per rank
    (tokens × top-k / ranks summed over the EP group, per micro-batch), s the routing skew.
    Ref: module docstring; TRT-LLM Table 1 (0.109 and 1.564 at n = 1,024, N = 32).
    Convention: normal approximation of the rank load (Poisson noise); the skew is independent
    of the batch (a persistent preference for some experts, stable over iterations as TRT-LLM
    observes). It understates a heavy-tailed skew at other N (no EPLB).
    Example: EPLB skew 0.0425, DeepSeek-V3 decode on EP 72, 128 tokens per micro-batch per GPU:
    n = 1,024, z(72) = 2.380: 2.380 × sqrt(1/1,024 + 0.0425²) = 2.380 × 0.0528 = 0.126.
    """
    if rows_per_rank <= 0:
        return 0.0
    return expected_max_standard_normal(ranks) * math.sqrt(1 / rows_per_rank + skew_cv ** 2)


def expert_balance(name):
    """The :class:`ExpertBalance` called ``name``; a UsageError naming the choices otherwise.

    Formula: none (a lookup in :data:`EXPERT_BALANCES`).
    Ref: TRT-LLM tech blog 4 Table 1 for the measured ratios (see the module docstring).
    Convention: ``exact`` and ``uniform`` have no measured ratio (None).
    Example: ``expert_balance("eplb").measured_ratio`` = 0.109; ``"no-eplb"``: 1.564.
    """
    try:
        return EXPERT_BALANCES[name]
    except KeyError:
        raise UsageError(f"unknown expert balance {name!r}; expected one of "
                         f"{', '.join(EXPERT_BALANCES)}") from None


def hottest_rank_factors(name, *, rows_per_rank, ranks, ranks_per_node):
    """(rank factor, node factor): the hottest EP rank's and hottest node's load over the mean
    (1 + ratio each) for the expert balance ``name``.

    Formula: rank: 1 + z(N) · sqrt(1/n + s²); node (N/g nodes of g ranks, n·g rows): 1 +
    z(N/g) · sqrt(1/(n·g) + s²/g), the skew of g ranks averaging out as if independent.
    Ref: module docstring.
    Convention: ``exact`` gives (1, 1); ``uniform`` has s = 0; ``eplb`` and ``no-eplb`` take s
    from TRT-LLM's measured ratios (:func:`routing_skew_cv`).
    Example: eplb, n = 65,536 (prefill, 8,192 tokens per micro-batch, top-8), N = 32, g = 8:
    rank 1 + 2.067 × sqrt(1.5e-5 + 0.0425²) = 1.088; node 1 + z(4) · sqrt(1.9e-6 + 0.0425²/8)
    = 1 + 1.049 × 0.0151 = 1.016.
    """
    balance = expert_balance(name)
    if balance.exact or ranks <= 1:
        return 1.0, 1.0
    skew = 0.0 if balance.measured_ratio is None else routing_skew_cv(
        imbalance_ratio=balance.measured_ratio, rows_per_rank=MEASURED_ROWS_PER_RANK,
        ranks=MEASURED_RANKS)
    rank = 1 + expert_imbalance_ratio(rows_per_rank=rows_per_rank, ranks=ranks, skew_cv=skew)
    g = max(1, min(ranks_per_node, ranks))
    nodes = max(1, ranks // g)
    node = 1 + expert_imbalance_ratio(rows_per_rank=rows_per_rank * g, ranks=nodes,
                                      skew_cv=skew / math.sqrt(g))
    return rank, node
