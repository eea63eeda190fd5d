"""What a serving step yields: tokens per step (MTP), TPOT / TTFT and tokens/s, what binds the
step, and the result :func:`~planner.calc.serving.serve` returns.

Ref: P §2.2.2 (memory-bound decode), §2.3.3 (MTP); V3R §5.4.3 (MTP acceptance).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.calc.memory import MemoryResult
from planner.calc.serving.kernels import StepPart


@dataclass(frozen=True)
class Bottleneck:
    """What sets a step's pace: the network where its communication takes at least its compute
    time, else the kernel with the most time, bound by compute (FLOP/s) or memory (HBM)."""

    resource: str                 # "network", "compute" or "memory"
    part: str                     # the kernel with the most time per step
    ep_link: str | None           # the EP traffic's link; None without EP traffic
    tp_link: str | None           # the TP all-reduces' link; None without them
    communication_s: float        # per step, EP and TP together
    compute_s: float              # per step, all kernels


@dataclass(frozen=True)
class ServeResult:
    model: str
    hardware: str
    phase: str
    basis: str                    # "achievable (...)" or "peak (bound)"
    gpus: int
    ep: int
    tp: int
    batch_per_gpu: float          # decode: sequences per GPU; prefill: tokens per GPU
    context_tokens: int
    micro_batches: int            # 2 with dual micro-batch overlap, else 1
    shared_experts: str           # "local" or "routed" (dispatched like a routed expert)
    expert_balance: str           # exact, uniform, eplb, no-eplb; none: dense or one EP rank
    hottest_rank_load: float      # the hottest EP rank's routed rows over the mean (1 + ratio)
    parts: tuple[StepPart, ...]   # per step (all layers, all micro-batches, the head)
    compute_s: float
    communication_s: float
    overlap: str                  # dual, single or none (none without EP traffic)
    gemm_tile_rows: int | None    # rows per GEMM tile the padding used (None: not modelled)
    expert_tile_rows: int | None  # rows per tile of the routed experts' grouped GEMMs
    step_s: float
    tokens_per_step: float        # MTP: 1 + p + ... (decode); prompt tokens (prefill)
    tpot_s: float | None
    ttft_s: float | None
    decode_tokens_per_s: float | None
    tokens_per_s_per_gpu: float
    tokens_per_s_per_node: float
    memory: MemoryResult
    bottleneck: Bottleneck
    tp_chosen: bool = False       # TP not given: the smallest that fits (memory.fits says if any)
    #: With ``overlap`` "auto": the step time (s) of each schedule tried, the fastest chosen;
    #: empty when the user chose the schedule.
    overlap_step_s: tuple[tuple[str, float], ...] = ()


def step_bottleneck(kernels: list[StepPart], *, compute_s: float, ep_communication_s: float,
                    ep_link: str, tp_all_reduce_s: float, tp_link: str) -> Bottleneck:
    """What binds the step (see :class:`Bottleneck`).

    Formula: network when T_comm = T_EP + T_TP > 0 and T_comm ≥ T_compute (the sum of the
    kernels' times); else the kernel with the largest time, by the side of its roofline that
    is longer.
    Ref: the roofline model; V3R §3.4 (communication hidden behind compute when shorter).
    Convention: the comparison is of per-step sums, whatever the overlap schedule.
    Example: DeepSeek-V3 decode at 64 sequences per GPU on 320 x H800: EP 19.7 ms < compute
    26.7 ms, the largest kernel the attention projections (9.9 ms, HBM): memory bound there.
    """
    busiest = max(kernels, key=lambda p: p.time_s)
    communication_s = ep_communication_s
    if tp_all_reduce_s:
        communication_s += tp_all_reduce_s
    network = bool(communication_s) and communication_s >= compute_s
    return Bottleneck(resource="network" if network else busiest.bound, part=busiest.name,
                      ep_link=ep_link if ep_communication_s else None,
                      tp_link=tp_link if tp_all_reduce_s else None,
                      communication_s=communication_s, compute_s=compute_s)


@dataclass(frozen=True)
class Throughput:
    """Tokens per step and the latency and throughput metrics of one step."""

    tokens_per_step: float
    tpot_s: float | None
    ttft_s: float | None
    decode_tokens_per_s: float | None
    tokens_per_s_per_gpu: float


def step_throughput(*, decode: bool, step_s: float, batch_per_gpu: float, tokens: float,
                    mtp_acceptance: float | None, mtp_depth: int) -> Throughput:
    """The metrics of a step of ``step_s`` seconds (s, tokens/s).

    Formula: decode: n = 1 + p + ... + p^D tokens per sequence per step
    (:func:`mtp_tokens_per_step`; 1 without MTP), TPOT = step / n, tokens/s per sequence
    n / step, per GPU B · n / step; prefill: TTFT = step, tokens/s per GPU = tokens / step.
    Ref: P §2.3.3 (MTP).
    Convention: TPOT excludes TTFT; prefill tokens are prompt tokens.
    Example: decode step 32.0 ms, B = 64, no MTP: TPOT 32.0 ms, 31.3 tokens/s per sequence,
    64 / 0.032 = 2,000 tokens/s per GPU.
    """
    if not decode:
        return Throughput(tokens, None, step_s, None, tokens / step_s)
    from planner.calc.serving.speculative import mtp_tokens_per_step

    per_step = float(mtp_tokens_per_step(draft_tokens=mtp_depth, acceptance=mtp_acceptance)) \
        if mtp_depth else 1.0
    return Throughput(per_step, step_s / per_step, None, per_step / step_s,
                      batch_per_gpu * per_step / step_s)


def local_decode_tokens_per_s(*, activated_params, bytes_per_param, memory_bytes_per_s):
    """Memory-bound decode speed of one sequence on one device (tokens/s).

    Formula: B / (N_act · b): every activated weight is read once per token.
    Ref: P §2.2.2; paper.md §4 (V2 at 4 bits on 256 GB/s ≈ 24 tokens/s; a dense 70B ≈ 7.3).
    Convention: KV cache reads, compute and efficiency ignored (an upper bound).
    Example: 21e9 × 0.5 B at 256e9 B/s: 24.4 tokens/s.
    """
    return memory_bytes_per_s / (activated_params * bytes_per_param)
