"""How compute and expert-parallel communication overlap in a MoE layer: dual micro-batches
(DeepSeek's and SGLang's two-batch overlap), single-batch overlap (SGLang's SBO), or none.

Ref: V3R §3.4 (dual micro-batch overlap); DeepEP README; SGLang two-batch overlap (lmsys.org,
2025-05-05); Ant Group and SGLang single-batch overlap (lmsys.org/blog/2025-09-26-sglang-ant-group).
"""

from __future__ import annotations

from planner import vocab

#: How compute and EP communication overlap in a MoE layer: dual micro-batches (DeepSeek's and
#: SGLang's two-batch overlap), single-batch overlap (SGLang's SBO), or none.
OVERLAP_MODES = vocab.OVERLAP_MODES
#: The schedules "auto" chooses from (the fastest for the step).
OVERLAP_SCHEDULES = vocab.OVERLAP_SCHEDULES
#: Micro-batches of the dual schedule.
DUAL_MICRO_BATCHES = 2
#: A gated FFN's three matrices (gate, up, down); single-batch overlap hides the combine behind
#: the last of them.
GATED_FFN_MATRICES = 3
DOWN_MATRICES = 1


def dual_micro_batch_layer_s(*, attention_s, moe_s, dispatch_s, combine_s):
    """Time of one MoE layer with two micro-batches overlapped (s).

    Formula: max(A, D) + max(M, D) + max(M, C) + max(A, C), with A, M the attention and MoE
    compute of one micro-batch and D, C its dispatch and combine: the compute stream runs
    A₁ M₀ M₁ A₀' while the communication stream runs D₀ D₁ C₀ C₁, each slot as long as its
    longer side.
    Ref: V3R §3.4 (dual micro-batch overlap in prefill and decode); DeepEP README (two
    micro-batch overlapping figure); SGLang two-batch overlap (lmsys.org, 2025-05-05).
    Convention: no stalls beyond the slot pairing; comm and compute streams independent.
    Example: A = 0.2, M = 0.1, D = 0.2, C = 0.4 ms: 0.2 + 0.2 + 0.4 + 0.4 = 1.2 ms per layer
    (compute alone 0.6 ms, communication alone 1.2 ms).
    """
    return (max(attention_s, dispatch_s) + max(moe_s, dispatch_s) + max(moe_s, combine_s)
            + max(attention_s, combine_s))


def single_batch_overlap_layer_s(*, attention_s, shared_s, experts_s, other_s, dispatch_s,
                                 combine_s):
    """Time of one MoE layer with single-batch overlap (s).

    Formula: A + max(D, S) + (2/3)·E + max(E/3, C) + R, with A the attention block, S the
    shared expert, E the routed experts' grouped GEMMs (gate and up are 2 of the 3 matrices,
    down the third), R the remaining kernels (norms, activations, EP buffers) and D, C the
    dispatch and combine of the one batch: the dispatch's receive waits beside the shared
    expert, and the combine sends each block the down GEMM finishes.
    Ref: Ant Group and SGLang, "Together with SGLang: Best Practices for Serving DeepSeek-R1 on
    H20-96G" (lmsys.org/blog/2025-09-26-sglang-ant-group, Single-Batch Overlap; SGLang PR
    9660, DeepEP PR 390, DeepGEMM PR 183).
    Convention: an upper bound on the overlap: the whole dispatch may hide behind the shared
    expert and the whole combine behind the down GEMM; no SMs held by the communication.
    Example: A = 0.2, S = 0.05, E = 0.15, R = 0.02, D = 0.2, C = 0.4 ms:
    0.2 + 0.2 + 0.1 + 0.4 + 0.02 = 0.92 ms (in sequence 1.02 ms).
    """
    down_s = experts_s * DOWN_MATRICES / GATED_FFN_MATRICES
    return (attention_s + max(dispatch_s, shared_s) + (experts_s - down_s)
            + max(down_s, combine_s) + other_s)


def resolve_overlap(overlap: str, *, decode: bool, batch_per_gpu: float, tp: int,
                    communicates: bool) -> tuple[str, int]:
    """(schedule, micro-batches) of a step asked to run ``overlap``.

    Formula: dual runs 2 micro-batches when the layer has EP traffic; in decode each needs a
    sequence of the TP group's TP · B, else the step runs as "none"; 1 otherwise.
    Ref: V3R §3.4; SGLang two-batch overlap (a decode batch of one sequence cannot split).
    Convention: a prompt may be split between micro-batches in prefill.
    Example: dual, decode, B = 0.5 per GPU at TP 2: TP · B = 1 sequence < 2: ("none", 1);
    B = 64, TP 1, EP 320: ("dual", 2).
    """
    if overlap == "dual" and decode and batch_per_gpu * tp < DUAL_MICRO_BATCHES:
        overlap = "none"
    return overlap, DUAL_MICRO_BATCHES if overlap == "dual" and communicates else 1


def moe_layer_s(*, overlap: str, micro_batches: int, communicates: bool, compute_share: float,
                attention_s: float, shared_s: float, experts_s: float, other_s: float,
                dispatch_s: float, combine_s: float) -> float:
    """Time of one MoE layer under its schedule (s): all micro-batches, compute and EP traffic.

    Formula: dual: :func:`dual_micro_batch_layer_s` with A = (attention + local shared expert)
    / s and M = (experts + the rest) / s; single (with EP traffic):
    :func:`single_batch_overlap_layer_s` with each compute term / s; none: the sum of all,
    A + S + E + R + D + C; s = ``compute_share``, the compute throughput left beside EP
    kernels that hold SMs.
    Ref: V3R §3.4; lmsys.org/blog/2025-09-26-sglang-ant-group (single-batch overlap).
    Convention: the times are of one micro-batch's blocks; without overlap compute runs at its
    full rate.
    Example: none, A = 0.2, S = 0.05, E = 0.15, R = 0.02, D = 0.2, C = 0.4 ms: 1.02 ms; dual
    with s = 1: max(0.25, 0.2) + max(0.17, 0.2) + max(0.17, 0.4) + max(0.25, 0.4) = 1.25 ms
    for the two micro-batches.
    """
    slow = 1 / compute_share
    if micro_batches == DUAL_MICRO_BATCHES:
        return dual_micro_batch_layer_s(
            attention_s=(attention_s + shared_s) * slow, moe_s=(experts_s + other_s) * slow,
            dispatch_s=dispatch_s, combine_s=combine_s)
    if overlap == "single" and communicates:
        return single_batch_overlap_layer_s(
            attention_s=attention_s * slow, shared_s=shared_s * slow,
            experts_s=experts_s * slow, other_s=other_s * slow, dispatch_s=dispatch_s,
            combine_s=combine_s)
    return attention_s + shared_s + experts_s + other_s + dispatch_s + combine_s
