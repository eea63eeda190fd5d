"""Serving capacity: memory per GPU and fit, the decode step and prefill as rooflines, MTP, and
memory-bound decode on a local device.

Ref: P §2.2-2.3 (memory, EP, MTP); V3R §3.4 (DeepSeek's deployment: DP attention, EP for the
experts, dual micro-batch overlap); ../shared/reference/hardware.md (FlashMLA, DeepGEMM, DeepEP
measured figures behind the efficiency factors); FlashMLA's FLOP and byte counts for MLA decode.

Deployment model (DeepSeek's, V3R §3.4): ``gpus`` GPUs serve together; attention runs data
parallel (each GPU its own sequences, attention weights replicated) or tensor parallel over
``tp`` GPUs; routed experts are split over ``ep`` GPUs (default all of them); dense layers,
shared experts, embedding and output head follow attention (replicated under DP, split by TP).
A batch "per GPU" is each GPU's share: a TP group of ``tp`` GPUs decodes ``tp`` times as many
sequences, every GPU holding its share of each one's KV cache (MLA's latent whole: TP does not
split it) and the residual stream of all of them; after attention and after the FFN block the
group all-reduces its activations over the scale-up link.

Conventions:
- Weights: matrices of attention, dense FFN and experts at ``weights_dtype`` with their scales
  (FP8: one FP32 scale per 128×128 block, +4/16,384 B per weight; FP4: MXFP4, one byte per 32
  weights); embedding, output head, router and norms in BF16 (P §3.1 keeps them in higher
  precision).
- Memory per GPU = weights + KV cache + a workspace allowance of :data:`WORKSPACE_FRAC` of the
  GPU memory (activations, CUDA context, communication buffers, fragmentation; vLLM reserves 10%
  by default with gpu_memory_utilization = 0.9).
- Every step part takes the longer of its compute (FLOPs at achievable, or with ``bound`` peak,
  dense FLOP/s of ``compute_dtype``) and its memory traffic (bytes at achievable HBM bandwidth);
  EP communication runs on the link the group needs, TP all-reduces on the scale-up link. EP
  communication overlaps compute per the overlap mode (dual micro-batch slots, single-batch
  overlap, or none: their sum); TP all-reduces do not. GEMM rows are padded to whole
  tensor-core tiles. TPOT excludes TTFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from planner import vocab
from planner.calc.common import Parts
from planner.errors import UsageError
from planner.specs.deployment import ServeConfig

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Bytes per weight of each weight format, and the scale bytes per weight.
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5}
SCALE_BYTES_PER_WEIGHT = {"bf16": 0.0, "fp8": 4 / (128 * 128), "fp4": 1 / 32}
#: Parts kept in BF16 whatever the weight format.
HIGH_PRECISION_PARTS = ("embedding", "output_head", "router", "norms_biases")
HIGH_PRECISION_BYTES = 2.0
#: Share of GPU memory reserved for activations, context, buffers and fragmentation.
WORKSPACE_FRAC = 0.10
FLOPS_PER_MAC = 2
#: Candidate GPU counts for `fit`.
FIT_GPU_COUNTS = tuple(2**i for i in range(13))


def weight_bytes_per_gpu_by_part(model: Model, *, weights_dtype: str = "fp8", ep: int = 1,
                                 tp: int = 1) -> Parts:
    """Weight bytes one GPU holds, by part (bytes).

    Formula: routed experts / EP, or / TP when EP = 1 (each expert split by tensor parallelism,
    what engines do without expert parallelism); attention, dense FFN, shared experts,
    embedding and head / TP (replicated when TP = 1, i.e. DP attention); at the weight format
    with its scales, the high-precision parts at 2 B.
    Ref: V3R §3.4 (EP for experts, DP or TP for attention); P §3.1 (FP8 weights, 128×128 scales).
    Convention: norms and router replicated; no redundant experts.
    Example: DeepSeek-V3, FP8, EP 8, TP 1: routed 653.9e9 × 1.000244 / 8 = 81.77e9 B; attention
    11.41e9 B replicated; total per GPU ≈ 98.7e9 B.
    """
    from planner.calc.params import model_params

    if weights_dtype not in WEIGHT_BYTES:
        raise UsageError(f"unknown weight format {weights_dtype!r}; expected one of: "
                         f"{', '.join(WEIGHT_BYTES)}")
    per = WEIGHT_BYTES[weights_dtype] + SCALE_BYTES_PER_WEIGHT[weights_dtype]
    total = model_params(model).total.as_dict()
    out = []
    for part, n in total.items():
        b = HIGH_PRECISION_BYTES if part in HIGH_PRECISION_PARTS else per
        split = ((ep if ep > 1 else tp) if part == "routed_experts"
                 else 1 if part in ("router", "norms_biases") else tp)
        out.append((part, n * b / split))
    return Parts(tuple(out))


def kv_bytes_per_token_per_gpu(model: Model, *, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV cache bytes one token adds on one GPU (bytes).

    Formula: MLA: L·(d_c + d_R)·b (the latent is shared by all heads: TP does not split it);
    GQA/MHA: L·2·n_kv·d_h·b / min(TP, n_kv).
    Ref: P §2.1.2; V2R §2.1 (MLA's cache). Convention: TP beyond n_kv replicates KV heads.
    Example: DeepSeek-V3 BF16 at any TP: 70,272 B; Llama-3.1-405B BF16 at TP 8: 64,512 B.
    """
    from planner.calc.kv_cache import model_kv_cache
    from planner.specs.model import MLAttention

    per_token = model_kv_cache(model, dtype=kv_dtype).kv_cache_bytes_per_token
    if isinstance(model.attention, MLAttention):
        return per_token
    return per_token / min(tp, model.attention.num_kv_heads)


@dataclass(frozen=True)
class MemoryResult:
    weights: Parts
    weight_bytes_per_gpu: float
    kv_cache_bytes_per_gpu: float
    workspace_bytes_per_gpu: float
    memory_bytes_per_gpu: float
    capacity_bytes_per_gpu: float
    fits: bool
    headroom_bytes: float
    max_batch_per_gpu: int
    tp: int = 1                   # attention TP group the batch is shared over
    max_batch_per_tp_group: int = 0


def memory_per_gpu(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                   kv_dtype: str = "bf16", ep: int = 1, tp: int = 1, batch_per_gpu: float = 1,
                   context_tokens: int = 4096) -> MemoryResult:
    """Weights + KV cache + workspace on one GPU, whether it fits, and the largest batch of
    ``context_tokens``-long sequences per GPU (0 when the weights alone do not fit).

    Formula: KV = B · TP · C · kv_GPU, the TP group's TP·B sequences each with its per-GPU
    share kv_GPU (:func:`kv_bytes_per_token_per_gpu`); the largest batch is the largest B that
    fits (the group's capacity / TP, rounded down), with the group's capacity beside it.
    Example: DeepSeek-V3 FP8 on 8 x H200 at TP 8 and 4,096 tokens: 147 sequences per TP group
    (the latent whole on every GPU), so 18 per GPU."""
    weights = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype, ep=ep, tp=tp)
    kv_tok = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)
    kv = batch_per_gpu * tp * context_tokens * kv_tok
    cap = hardware.gpu.hbm_capacity_bytes
    workspace = WORKSPACE_FRAC * cap
    total = weights.total + kv + workspace
    free = cap - workspace - weights.total
    group = max(0, math.floor(free / (context_tokens * kv_tok)))
    return MemoryResult(weights, weights.total, kv, workspace, total, cap, total <= cap,
                        cap - total, group // tp, tp, group)


@dataclass(frozen=True)
class FitResult:
    model: str
    hardware: str
    weights_dtype: str
    context_tokens: int
    num_gpus: int | None
    memory: MemoryResult | None
    weight_bytes_total: float
    checked: tuple[tuple[int, bool], ...]


def fewest_gpus(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                kv_dtype: str = "bf16", context_tokens: int = 4096) -> FitResult:
    """The fewest GPUs (1, 2, 4, ... 4096) that hold the model and one sequence of
    ``context_tokens``: experts split over all of them (EP = N) and everything else over up to
    one scale-up domain (TP = min(N, domain))."""
    checked = []
    total = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype).total
    for n in FIT_GPU_COUNTS:
        tp = min(n, hardware.scale_up_domain_gpus)
        mem = memory_per_gpu(model, hardware, weights_dtype=weights_dtype, kv_dtype=kv_dtype,
                             ep=n, tp=tp, batch_per_gpu=1 / tp, context_tokens=context_tokens)
        checked.append((n, mem.fits))
        if mem.fits:
            return FitResult(model.name or model.label, hardware.name or hardware.label,
                             weights_dtype, context_tokens, n, mem, total, tuple(checked))
    return FitResult(model.name or model.label, hardware.name or hardware.label, weights_dtype,
                     context_tokens, None, None, total, tuple(checked))


# ----------------------------------------------------------------------------- step model
def attention_core_flops_per_token_per_layer(model: Model, *, context_tokens,
                                             absorbed: bool = True) -> float:
    """FLOPs of the attention core (scores and values, not the projections) for one query
    token over ``context_tokens`` positions in one layer (FLOPs).

    Formula: 2·n_h·C·(d_qk + d_v) per position: MLA absorbed (decode) scores over the cached
    latent and rope key and reads values from the latent, d_c + d_R + d_c = 576 + 512 (FlashMLA);
    MLA expanded (prefill) 192 + 128; GQA/MHA 2·d_h.
    Ref: FlashMLA benchmark (FLOPs = s_q·Σseqlen·h_q·(576 + 512)·2); V2R §2.1.
    Convention: softmax and RoPE not counted; heads all on one GPU (divide by TP).
    Example: DeepSeek-V3, C = 4,096, absorbed: 2·128·4096·1088 = 1.141e9 FLOPs.
    """
    from planner.specs.model import MLAttention

    att = model.attention
    if isinstance(att, MLAttention):
        per_pos = (att.kv_lora_rank + att.qk_rope_head_dim + att.kv_lora_rank if absorbed
                   else att.qk_head_dim + att.v_head_dim)
    else:
        per_pos = 2 * att.head_dim
    return FLOPS_PER_MAC * att.num_heads * context_tokens * per_pos


#: Bytes per activation element: BF16 between kernels, FP8 where a GEMM input is quantized.
ACT_BYTES, ACT_FP8_BYTES = 2, 1


def activation_bytes_per_token_per_layer(model: Model, *, block: str, phase: str = "decode",
                                         expert_rows: float = 1.0) -> float:
    """HBM bytes the non-GEMM kernels of one layer move per token (bytes): norms, RoPE,
    quantization, activation functions, residual adds, and the EP buffers' copies.

    Formula, d = hidden size, BF16 = 2 B, FP8 = 1 B (each term read + write):
    - attention block: pre-norm + FP8 quant 3d; q/kv latent norms + quant 3(d_q + d_c + d_R)
      (MLA) and RoPE on the query's rope part 4·n_h·d_R, or RoPE on q and k 4(n_h + n_kv)·d_h
      (GQA); the attention output quantized for o_proj 3·n_h·d_v; residual add 6d.
    - MoE block: pre-norm + quant 3d; per expert copy: received into the EP buffer d, permuted
      into the contiguous layout 2d (prefill only: the masked layout of decode needs none),
      SiLU·mul + quant 5·I_e, the output sent back and received 4d, read by the weighted sum
      2d; the shared expert's SiLU·mul 5·I_s; the sum written 2d; residual add 6d.
    - dense FFN block: pre-norm + quant 3d, SiLU·mul + quant 5·I, residual add 6d.
    Ref: SGLang large-scale EP blog (lmsys.org, 2025-05-05: contiguous-layout permutation in
    prefill, masked layout in decode); DeepEP README (FP8 dispatch, BF16 combine).
    Convention: one pass per kernel (no fusion beyond norm + quant); GEMM inputs and outputs and
    the attention kernel's own traffic are counted with those kernels, not here. ``expert_rows``
    scales the per-copy terms: the hottest EP rank's expert rows over the mean (imbalance).
    Example: DeepSeek-V3 MoE block in decode, k = 8: 3d + 8·(d + 5·2048 + 6d) + 5·2048 + 8d =
    21,504 + 8·60,416 + 10,240 + 57,344 = 572,416 B; attention block 152,768 B.
    """
    from planner.specs.model import MLAttention, MoEFFN

    d = model.hidden_size
    norm = d * (ACT_BYTES + ACT_FP8_BYTES)
    residual = 3 * d * ACT_BYTES
    glu = 2 * ACT_BYTES + ACT_FP8_BYTES            # read gate and up, write the FP8 product
    if block == "attention":
        att = model.attention
        if isinstance(att, MLAttention):
            latents = (att.q_lora_rank or 0) + att.kv_lora_rank + att.qk_rope_head_dim
            rope = 2 * ACT_BYTES * att.num_heads * att.qk_rope_head_dim
            out = att.num_heads * att.v_head_dim
            pre = latents * (ACT_BYTES + ACT_FP8_BYTES) + rope
        else:
            pre = 2 * ACT_BYTES * (att.num_heads + att.num_kv_heads) * att.head_dim
            out = att.num_heads * att.head_dim
        return norm + pre + out * (ACT_BYTES + ACT_FP8_BYTES) + residual
    ffn = model.ffn
    if block == "dense_ffn":
        inter = (ffn.dense_intermediate_size if isinstance(ffn, MoEFFN)
                 else ffn.intermediate_size)
        return norm + glu * inter + residual
    if block != "moe":
        raise UsageError(f"unknown block {block!r}; expected attention, dense_ffn or moe")
    copies = ffn.num_experts_per_token
    receive = d * ACT_FP8_BYTES * (1 if phase == "decode" else 3)
    per_copy = receive + glu * ffn.expert_intermediate_size + 3 * d * ACT_BYTES
    shared = ffn.num_shared_experts * glu * ffn.shared_expert_intermediate_size
    return norm + copies * expert_rows * per_copy + shared + d * ACT_BYTES + residual


@dataclass(frozen=True)
class StepPart:
    name: str
    flops: float
    bytes_moved: float
    time_s: float
    bound: str          # "compute" or "memory" or "network"


@dataclass(frozen=True)
class Rates:
    """The rates one step runs at (FLOP/s, bytes/s per GPU), achievable or peak.

    ``overlap_compute`` is the share of compute throughput left while forwarding EP kernels
    (DeepEP's normal kernels, prefill) hold SMs; 1 where communication holds none."""

    gemm: float            # dense GEMMs at the weights' precision: projections, dense FFN, shared
    head: float            # the output head (BF16 weights)
    experts: float         # grouped expert GEMMs: masked layout (decode) / contiguous (prefill)
    attention: float       # attention core (BF16)
    kv_stream: float       # KV cache read by the attention kernel
    weight_stream: float   # weights streamed by GEMMs
    scale_up: float        # bytes/s per GPU per direction
    scale_out: float
    overlap_compute: float
    basis: str


#: Efficiency factors the achievable step model reads, in the order ``basis`` names them
#: (FP8 attention reads ``attention_fp8_flops`` instead of ``attention_flops``).
SERVING_FACTORS = ("matmul_flops", "grouped_gemm_flops", "grouped_gemm_prefill_flops",
                   "attention_flops", "hbm_bandwidth", "gemm_weight_bandwidth",
                   "scale_up_bandwidth", "scale_out_bandwidth", "overlap_compute_share")
#: Precisions the attention core computes in: BF16 (FlashMLA, FlashAttention), or FP8 Q and KV
#: on the FP8 tensor cores (FlashMLA's FP8 kernel).
ATTENTION_DTYPES = vocab.ATTENTION_DTYPES
#: How compute and EP communication overlap in a MoE layer: dual micro-batches (DeepSeek's and
#: SGLang's two-batch overlap), single-batch overlap (SGLang's SBO), or none.
OVERLAP_MODES = vocab.OVERLAP_MODES


def serving_rates(hardware: Hardware, *, phase: str, weights_dtype: str,
                  compute_dtype: str | None = None, attention_dtype: str = "bf16",
                  bound: bool = False) -> Rates:
    """Peak rates × the spec's efficiency factors (or peak alone with ``bound``).

    GEMMs run at the dense peak of the weights' precision (else the nearest the device has),
    the BF16 output head at the BF16 peak, attention at the peak of ``attention_dtype`` (bf16:
    FlashMLA's BF16 kernel; fp8: FP8 Q and KV on the FP8 tensor cores, factor
    ``attention_fp8_flops``); a device whose spec gives no peak FLOP/s has compute not
    modelled (infinite rate: memory and links only).
    Ref: ../shared/reference/hardware.md (DeepGEMM, FlashMLA, DeepEP measured on H800)."""
    if attention_dtype not in ATTENTION_DTYPES:
        raise UsageError(f"unknown attention dtype {attention_dtype!r}; expected "
                         + " or ".join(ATTENTION_DTYPES))
    peaks = hardware.gpu.peak_dense_tflop_per_s
    if compute_dtype is None and peaks is not None:
        order = {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16", "fp4"),
                 "bf16": ("bf16", "fp8", "fp4")}[weights_dtype]
        compute_dtype = next((d for d in order if getattr(peaks, d) is not None), "bf16")
    peak = math.inf if peaks is None else hardware.peak_dense_flop_per_s(compute_dtype)
    bf16 = peak if peaks is None or peaks.bf16 is None else hardware.peak_dense_flop_per_s(
        "bf16")
    hbm = hardware.gpu.hbm_bandwidth_bytes_per_s
    up = hardware.scale_up.bandwidth_bytes_per_s if hardware.scale_up else math.inf
    out = hardware.scale_out.bandwidth_bytes_per_s
    fp8_attention = attention_dtype == "fp8"
    att_peak = bf16
    if fp8_attention and peaks is not None:
        att_peak = hardware.peak_dense_flop_per_s("fp8") if peaks.fp8 is not None else bf16
    if bound or peaks is None:
        basis = ("peak memory bandwidth; compute not modelled (the spec gives no peak FLOP/s); "
                 "no efficiency factors" if peaks is None
                 else "peak (bound: no efficiency factors)")
        return Rates(peak, bf16, peak, att_peak, hbm, hbm, up, out, 1.0, basis)
    att_factor = "attention_fp8_flops" if fp8_attention else "attention_flops"
    f = {name: hardware.efficiency_frac(name).frac
         for name in (*SERVING_FACTORS, att_factor)
         if name != "scale_up_bandwidth" or hardware.scale_up is not None}
    f.setdefault("scale_up_bandwidth", 1.0)
    experts = "grouped_gemm_flops" if phase == "decode" else "grouped_gemm_prefill_flops"
    overlap = f["overlap_compute_share"] if phase == "prefill" else 1.0
    basis = (f"achievable: {compute_dtype.upper()} GEMM x {f['matmul_flops']:g}, experts x "
             f"{f[experts]:g}, {attention_dtype.upper()} attention x {f[att_factor]:g}, KV "
             f"stream x "
             f"{f['hbm_bandwidth']:g}, GEMM weight stream x {f['gemm_weight_bandwidth']:g}, links "
             f"x {f['scale_up_bandwidth']:g} / {f['scale_out_bandwidth']:g}"
             + (f", compute x {overlap:g} beside EP kernels" if overlap < 1 else ""))
    return Rates(gemm=peak * f["matmul_flops"], head=bf16 * f["matmul_flops"],
                 experts=peak * f[experts], attention=att_peak * f[att_factor],
                 kv_stream=hbm * f["hbm_bandwidth"],
                 weight_stream=hbm * f["gemm_weight_bandwidth"],
                 scale_up=up * f["scale_up_bandwidth"], scale_out=out * f["scale_out_bandwidth"],
                 overlap_compute=overlap, basis=basis)


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
    bottleneck: str


def mtp_tokens_per_step(*, acceptance, depth):
    """Tokens a decode step yields with ``depth`` MTP draft tokens accepted with probability
    ``acceptance`` each (count).

    Formula: 1 + p + p² + ... + p^D (a draft counts only if every earlier one was accepted).
    Ref: P §2.3.3; V3R §5.4.3 (85-90% acceptance, 1.8x TPS).
    Convention: acceptance independent per position; verification in the same step.
    Example: p = 0.85, D = 1: 1.85 tokens per step.
    """
    return sum(acceptance**i for i in range(depth + 1))


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


#: Micro-batches of the dual schedule.
DUAL_MICRO_BATCHES = 2

#: A gated FFN's three matrices (gate, up, down); single-batch overlap hides the combine behind
#: the last of them.
GATED_FFN_MATRICES = 3
DOWN_MATRICES = 1


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


def serve(model: Model, hardware: Hardware, config: ServeConfig | None = None) -> ServeResult:
    """Decode step or prefill of ``model`` on ``config.gpus`` x ``hardware`` (the fields of
    :class:`~planner.specs.deployment.ServeConfig` are named below without ``config.``).

    decode: ``batch_per_gpu`` sequences per GPU (each GPU's share of its attention-TP group's),
    each with ``context_tokens`` of KV cache; one step emits one token per sequence (1 + p + ...
    with MTP, whose D drafts are verified in the same step: 1 + D query tokens per sequence).
    prefill: ``batch_per_gpu`` prompt tokens per GPU, in prompts of ``context_tokens`` (causal
    attention over half the prompt on average); TTFT = the time of that batch.
    Each kernel takes the longer of its FLOPs and its bytes at the rates of
    :func:`serving_rates` (``attention_dtype`` fp8: FP8 Q and KV on the FP8 tensor cores).
    ``overlap`` (with EP traffic): "dual" runs the step as two micro-batches
    (:func:`dual_micro_batch_layer_s`), each re-reading the weights (in decode only with at
    least one sequence per micro-batch, else as "none"); "single" overlaps one
    batch's dispatch with its shared expert and its combine with the down GEMM
    (:func:`single_batch_overlap_layer_s`); "none" runs everything in sequence. ``intranode_nvlink``: decode's EP copies to the node's own GPUs go
    over NVLink (:func:`ep_layer_comm_s`). GEMMs compute their rows padded to the
    hardware's ``mma_tile_rows`` (``gemm_tile_rows`` overrides it; ``expert_tile_rows``
    overrides it for the routed experts' grouped GEMMs alone, e.g. 32 for DeepGEMM's swapAB
    masked grouped GEMM; :func:`padded_rows`, :func:`expected_padded_rows_per_expert`; not
    with ``bound``).
    ``shared_experts="routed"``
    dispatches the shared expert like a routed one (DeepSeek's decode layout, V3R §3.4),
    "local" computes it beside attention (SGLang, vLLM). ``expert_balance`` (exact, uniform,
    eplb, no-eplb; :mod:`planner.calc.imbalance`) sets how much more than the mean the hottest
    EP rank receives: its expert GEMM rows, EP buffers and EP traffic set the layer's pace.
    """
    from planner.calc.imbalance import hottest_rank_factors
    from planner.calc.params import model_params
    from planner.specs.model import MoEFFN

    config = ServeConfig() if config is None else config
    (phase, gpus, ep, tp, batch_per_gpu, context_tokens, weights_dtype, kv_dtype,
     compute_dtype, attention_dtype, overlap, shared_experts, expert_balance, forwarding,
     intranode_nvlink, gemm_tile_rows, expert_tile_rows, mtp_acceptance, mtp_depth,
     bound) = (getattr(config, f.name) for f in fields(ServeConfig))
    ffn = model.ffn
    moe = isinstance(ffn, MoEFFN)
    if gpus is None:
        gpus = (1 if hardware.scale_up is None
                else ffn.num_routed_experts if moe else hardware.scale_up_domain_gpus)
    ep = (ep or gpus) if moe else 1
    if gpus % ep or gpus % tp:
        raise UsageError(f"EP ({ep}) and TP ({tp}) must divide the GPUs ({gpus})")
    rates = serving_rates(hardware, phase=phase, weights_dtype=weights_dtype,
                          compute_dtype=compute_dtype, attention_dtype=attention_dtype,
                          bound=bound)
    decode = phase == "decode"
    mem = memory_per_gpu(model, hardware, weights_dtype=weights_dtype, kv_dtype=kv_dtype,
                         ep=ep, tp=tp, batch_per_gpu=batch_per_gpu if decode else 1,
                         context_tokens=context_tokens)
    layers = model.num_layers
    dense_layers = ffn.num_dense_layers if moe else layers
    moe_layers = layers - dense_layers
    # Weight bytes per layer of each part on this GPU (the head once per step).
    held = mem.weights.as_dict()
    w = {"attention": held["attention"] / layers,
         "dense_ffn": held["dense_ffn"] / max(dense_layers, 1),
         "routed_experts": held["routed_experts"] / max(moe_layers, 1),
         "shared_experts": held["shared_experts"] / max(moe_layers, 1)}
    w_head = held["output_head"]
    p_act = model_params(model).activated.as_dict()
    depth = 0
    if decode and mtp_acceptance is not None:
        depth = model.mtp_depth if mtp_depth is None else mtp_depth
    queries = 1 + depth                           # query tokens per sequence per step
    tokens = batch_per_gpu * queries if decode else batch_per_gpu
    comm = moe and ep > 1
    # Dual micro-batches need a sequence each in decode (a prompt may be split in prefill); a
    # TP group splits its tp·batch sequences.
    if overlap == "dual" and decode and batch_per_gpu * tp < DUAL_MICRO_BATCHES:
        overlap = "none"
    n_mb = DUAL_MICRO_BATCHES if overlap == "dual" and comm else 1
    t = tokens / n_mb                             # token rows per micro-batch on this GPU
    kv_tok_layer = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp) / layers
    ctx = context_tokens if decode else context_tokens / 2
    shared_routed = moe and shared_experts == "routed" and ffn.num_shared_experts > 0
    # The hottest EP rank's routed rows over the mean (and its node's, for the NIC legs).
    domain = hardware.scale_up_domain_gpus
    rank_load, node_load = (hottest_rank_factors(
        expert_balance, rows_per_rank=t * ffn.num_experts_per_token, ranks=ep,
        ranks_per_node=domain if hardware.scale_up is not None and ep > domain else ep)
        if moe else (1.0, 1.0))

    act = {"attention": activation_bytes_per_token_per_layer(model, block="attention")}
    if dense_layers:
        act["dense_ffn"] = activation_bytes_per_token_per_layer(model, block="dense_ffn")
    if moe_layers:
        act["moe"] = activation_bytes_per_token_per_layer(model, block="moe", phase=phase,
                                                          expert_rows=rank_load)
    # GEMM rows as the tensor cores compute them: padded to whole tiles (achievable figures);
    # a TP-split GEMM runs the group's tp·t rows on 1/tp of the weights: t rows' worth each.
    tile = None if bound else gemm_tile_rows or hardware.gpu.mma_tile_rows
    expert_tile = None if bound else expert_tile_rows or tile
    rows = padded_rows(rows=t * tp, tile_rows=tile) / tp
    totals: dict[str, list] = {}

    def kernel(name, flops, nbytes, flop_s, byte_s, count):
        """Time of one kernel; adds ``count`` of them to the step's totals."""
        c, m = flops / flop_s, nbytes / byte_s
        time = max(c, m)
        entry = totals.setdefault(name, [0.0, 0.0, 0.0, 0.0, 0.0])
        entry[0] += flops * count
        entry[1] += nbytes * count
        entry[2] += time * count
        entry[3] += c * count
        entry[4] += m * count
        return time

    # Under attention TP the group's tp·t tokens are split by heads (or vocabulary): each GPU
    # computes its 1/tp of them, t tokens' worth, reads its share of all tp·t sequences' KV,
    # and keeps the whole residual stream of all of them.
    def attention_s(count):
        core_flops = t * attention_core_flops_per_token_per_layer(
            model, context_tokens=ctx, absorbed=decode)
        core_bytes = (t * tp / queries * context_tokens if decode else t * tp) * kv_tok_layer
        return (kernel("attention (core)", core_flops, core_bytes, rates.attention,
                       rates.kv_stream, count)
                + kernel("attention projections", FLOPS_PER_MAC * p_act["attention"] / layers
                         * rows, w["attention"], rates.gemm, rates.weight_stream, count)
                + kernel("norms, RoPE, quantization, residuals", 0.0,
                         t * tp * act["attention"], rates.attention, rates.kv_stream, count))

    step = 0.0
    comm_s = 0.0
    link = "none"
    if dense_layers:
        count = dense_layers * n_mb
        per = attention_s(count) + kernel(
            "dense FFN", FLOPS_PER_MAC * p_act["dense_ffn"] / dense_layers * rows,
            w["dense_ffn"], rates.gemm, rates.weight_stream, count) + kernel(
            "FFN activations, EP buffers, residuals", 0.0, t * tp * act["dense_ffn"],
            rates.attention, rates.kv_stream, count)
        step += count * per
    if moe_layers:
        count = moe_layers * n_mb
        a = attention_s(count)
        s_local = 0.0
        if ffn.num_shared_experts and not shared_routed:
            s_local = kernel("shared experts", FLOPS_PER_MAC * p_act["shared_experts"]
                             / moe_layers * rows, w["shared_experts"], rates.gemm,
                             rates.weight_stream, count)
        # Routed experts: each GPU receives t·k (+ shared) expert rows in expectation, the
        # hottest rank_load times that; only the local experts some row selects are read
        # (E/EP experts, t·EP·k draws); each expert's rows padded to whole tiles.
        # Without EP (EP 1) the experts are split by TP instead: every GPU of the group runs
        # all of the group's tp·t·k rows on its 1/tp of each expert.
        k = ffn.num_experts_per_token
        moe_tp = tp if ep == 1 else 1
        hit = 1 - (1 - 1 / ffn.num_routed_experts) ** (t * ep * moe_tp * k)
        per_expert = t * moe_tp * k * rank_load / max(ffn.num_routed_experts / ep, 1)
        pad = expected_padded_rows_per_expert(mean_rows=per_expert,
                                              tile_rows=expert_tile) / per_expert
        m = kernel("routed experts",
                   FLOPS_PER_MAC * p_act["routed_experts"] / moe_layers * t * rank_load * pad,
                   w["routed_experts"] * hit, rates.experts, rates.weight_stream, count)
        if shared_routed:
            m += kernel("shared experts", FLOPS_PER_MAC * p_act["shared_experts"] / moe_layers
                        * rows, w["shared_experts"], rates.experts, rates.weight_stream, count)
        rest = kernel("FFN activations, EP buffers, residuals", 0.0, t * act["moe"],
                      rates.attention, rates.kv_stream, count)
        d = c = 0.0
        if comm:
            d, c, link = ep_layer_comm_s(
                model, hardware, ep=ep, tokens=t, up_bytes_per_s=rates.scale_up,
                out_bytes_per_s=rates.scale_out, copies=k + (ffn.num_shared_experts
                                                             if shared_routed else 0),
                forwarding=(not decode) if forwarding is None else forwarding,
                rank_load=rank_load, node_load=node_load, intranode_nvlink=intranode_nvlink)
            comm_s = count * (d + c)
        slow = 1 / rates.overlap_compute      # compute beside EP kernels that hold SMs
        if n_mb == DUAL_MICRO_BATCHES:
            step += moe_layers * dual_micro_batch_layer_s(
                attention_s=(a + s_local) * slow, moe_s=(m + rest) * slow, dispatch_s=d,
                combine_s=c)
        elif overlap == "single" and comm:
            step += moe_layers * single_batch_overlap_layer_s(
                attention_s=a * slow, shared_s=s_local * slow, experts_s=m * slow,
                other_s=rest * slow, dispatch_s=d, combine_s=c)
        else:
            step += moe_layers * (a + s_local + m + rest + d + c)
    tp_s, tp_link = 0.0, ""
    if tp > 1:
        per, tp_link = tp_all_reduce_s(model, hardware, tp=tp, tokens=t * tp,
                                       up_bytes_per_s=rates.scale_up,
                                       out_bytes_per_s=rates.scale_out)
        tp_s = TP_ALL_REDUCES_PER_LAYER * layers * n_mb * per
        step += tp_s
    if depth:
        step *= 1 + depth / layers          # the MTP module: about one more layer per depth

    def head_s(rows_per_micro_batch, passes):
        """The output head over ``rows_per_micro_batch`` rows (prefill: each prompt's last
        token), ``passes`` times per micro-batch; vocabulary split by TP."""
        rows_head = padded_rows(rows=rows_per_micro_batch * tp, tile_rows=tile) / tp
        return n_mb * passes * kernel("output head", FLOPS_PER_MAC * p_act["output_head"]
                                      * rows_head, w_head, rates.head, rates.weight_stream,
                                      n_mb * passes)

    # The verifying pass scores every query token; each MTP draft pass scores one token per
    # sequence through the same (shared) head, reading its weights again.
    step += head_s(t if decode else t / context_tokens, 1)
    if depth:
        step += head_s(t / queries, depth)
    parts = [StepPart(name, f, b, time, "compute" if cs >= ms else "memory")
             for name, (f, b, time, cs, ms) in totals.items()]
    compute_s = sum(p.time_s for p in parts)
    busiest = max(parts, key=lambda p: p.time_s)
    if comm_s:
        parts.append(StepPart(f"EP dispatch + combine ({link})", 0.0, 0.0, comm_s, "network"))
    if tp_s:
        parts.append(StepPart(f"TP all-reduce ({tp_link})", 0.0, 0.0, tp_s, "network"))
        link = tp_link if not comm_s else f"{link}; TP over {tp_link}"
        comm_s += tp_s
    if decode:
        per_step = mtp_tokens_per_step(acceptance=mtp_acceptance, depth=depth) if depth else 1.0
        tpot, ttft = step / per_step, None
        tps_gpu, decode_tps = batch_per_gpu * per_step / step, per_step / step
    else:
        per_step, tpot, decode_tps, ttft = tokens, None, None, step
        tps_gpu = tokens / step
    if comm_s and comm_s >= compute_s:
        bottleneck = (f"network ({link}): communication {comm_s * 1e3:,.1f} ms >= compute "
                      f"{compute_s * 1e3:,.1f} ms per step")
    else:
        kind = {"compute": "compute (FLOP/s)", "memory": "HBM bandwidth"}[busiest.bound]
        bottleneck = f"{kind} in {busiest.name}"
    return ServeResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label, phase=phase,
        basis=rates.basis, gpus=gpus, ep=ep, tp=tp, batch_per_gpu=batch_per_gpu,
        context_tokens=context_tokens, micro_batches=n_mb,
        shared_experts=shared_experts if moe and ffn.num_shared_experts else "none",
        expert_balance=expert_balance if moe and ep > 1 else "none", hottest_rank_load=rank_load,
        parts=tuple(parts), compute_s=compute_s, communication_s=comm_s,
        overlap=overlap if comm else "none", gemm_tile_rows=tile,
        expert_tile_rows=expert_tile if moe else None,
        step_s=step, tokens_per_step=per_step, tpot_s=tpot, ttft_s=ttft,
        decode_tokens_per_s=decode_tps, tokens_per_s_per_gpu=tps_gpu,
        tokens_per_s_per_node=tps_gpu * hardware.scale_up_domain_gpus, memory=mem,
        bottleneck=bottleneck)


#: All-reduces of the residual stream per layer under attention TP: after attention's output
#: projection and after the FFN block (Megatron-LM's forward pass).
TP_ALL_REDUCES_PER_LAYER = 2


def tp_all_reduce_s(model: Model, hardware: Hardware, *, tp: int, tokens: float,
                    up_bytes_per_s: float, out_bytes_per_s: float):
    """(time (s), link) of one all-reduce of ``tokens`` hidden states over a TP group of ``tp``.

    Formula: n = T·d·2 (BF16). Inside the scale-up domain the two-shot all-reduce engines run
    there, 2·α + 2(p − 1)/p · n / B; across nodes a ring, 2(p − 1)·α + 2(p − 1)/p · n / B; α
    the spec's latency (0 where it gives none).
    Ref: Shoeybi et al. 2019 (Megatron-LM) §3, two all-reduces per layer in the forward pass;
    :mod:`planner.calc.collectives` (two-shot: vLLM's and TensorRT-LLM's custom all-reduce).
    Convention: not overlapped with compute (the next kernel needs the result).
    Example: TP 8, 256 tokens of d = 7,168 (3.67 MB) over H800 NVLink at 160 GB/s, α = 3.33 µs:
    2 × 3.33 + 1.75 × 3.670e6 / 160e9 s = 6.7 + 40.1 = 46.8 µs.
    """
    from planner.calc.collectives import collective_time_s, link_latency_us
    from planner.units import US

    up = hardware.scale_up is not None and tp <= hardware.scale_up_domain_gpus
    latency_us = link_latency_us(hardware, "scale-up" if up else "scale-out-same-leaf") or 0.0
    return collective_time_s(
        operation="all-reduce", algorithm="two-shot" if up else "ring", num_ranks=tp,
        bytes_total=tokens * model.hidden_size * HIGH_PRECISION_BYTES, latency_s=latency_us * US,
        bandwidth_bytes_per_s=up_bytes_per_s if up else out_bytes_per_s), (
        "scale_up" if up else "scale_out")


def ep_layer_comm_s(model: Model, hardware: Hardware, *, ep: int, tokens: float, copies: int,
                    forwarding: bool, up_bytes_per_s: float, out_bytes_per_s: float,
                    rank_load: float = 1.0, node_load: float = 1.0,
                    intranode_nvlink: bool = False):
    """(dispatch (s), combine (s), link) of one MoE layer for ``tokens`` tokens on one GPU.

    Formula: T · copies · b / B per direction, b = the FP8 dispatch bytes with DeepEP's scales
    (7,408 B for d = 7,168) or the BF16 combine bytes (2·d). Inside the scale-up domain: over
    it. Across nodes without forwarding (DeepSeek's and SGLang's decode: DeepEP low-latency
    kernels, pure RDMA): every copy over the NIC; with ``intranode_nvlink`` (DeepEP's
    low-latency kernels with NVLink allowed, its newer default) the copies to the node's own
    GPUs, domain / EP of them under uniform routing, go over NVLink at the same time instead.
    With NVLink forwarding (prefill: DeepEP normal kernels): one NIC copy per distinct remote
    node (node-limited routing, uniform expectation) while NVLink fans out to the experts; the
    two run at once.
    Ref: P §2.3.2 and §4.3; V3R §3.4; DeepEP README (low-latency kernels at EP 128-256:
    39-40 GB/s per GPU, 0.8 of the 50 GB/s NIC).
    Convention: ``copies`` = top-k, plus the shared experts when they are dispatched. The
    hottest rank receives (dispatch) and returns (combine) ``rank_load`` times the mean; with
    forwarding its node's NIC legs carry ``node_load`` times the mean (the layer waits for both).
    Example: DeepSeek-V3, EP 72 over IB at 40 GB/s, 128 tokens, 8 copies: dispatch
    128 × 8 × 7,408 / 40e9 = 190 µs, combine 128 × 8 × 14,336 / 40e9 = 367 µs (DeepEP measures
    173 / 314 µs at EP 64 and 192 / 369 µs at EP 128). With ``intranode_nvlink`` at EP 16 on
    8-GPU nodes, half the copies stay on NVLink: the NIC legs take half as long (Ant Group
    reports ~50% of the EP 16 traffic on NVLink, lmsys.org/blog/2025-09-26-sglang-ant-group).
    """
    from planner.calc import ep as ep_calc
    from planner.calc.routing import expected_distinct_nodes, ib_copies_per_token

    ffn = model.ffn
    per = (ep_calc.fp8_dispatch_bytes_per_token_expert(hidden_size=model.hidden_size),
           model.hidden_size * HIGH_PRECISION_BYTES)
    domain = hardware.scale_up_domain_gpus
    if ep <= domain and hardware.scale_up is not None:
        return (*(tokens * copies * rank_load * b / up_bytes_per_s for b in per), "scale_up")
    nodes = max(1, ep // domain)
    if forwarding and hardware.scale_up is not None and nodes > 1:
        limit = min(ffn.num_limited_groups or nodes, nodes)
        distinct = expected_distinct_nodes(experts_per_token=ffn.num_experts_per_token,
                                           experts_per_node=ffn.num_routed_experts // nodes,
                                           num_nodes=limit)
        ib = ib_copies_per_token(distinct_target_nodes=distinct, num_nodes=nodes)
        return (*(tokens * max(ib * node_load * b / out_bytes_per_s,
                               copies * rank_load * b / up_bytes_per_s)
                  for b in per), "scale_out + NVLink forwarding")
    if intranode_nvlink and hardware.scale_up is not None:
        local = min(domain, ep) / ep              # share of the copies bound for the own node
        return (*(tokens * copies * rank_load * max((1 - local) * b / out_bytes_per_s,
                                                    local * b / up_bytes_per_s)
                  for b in per), "scale_out + intranode NVLink")
    return (*(tokens * copies * rank_load * b / out_bytes_per_s for b in per), "scale_out")


def local_decode_tokens_per_s(*, activated_params, bytes_per_param, memory_bytes_per_s):
    """Memory-bound decode speed of one sequence on one device (tokens/s).

    Formula: B / (N_act · b): every activated weight is read once per token.
    Ref: P §2.2.2; paper.md §4 (V2 at 4 bits on 256 GB/s ≈ 24 tokens/s; a dense 70B ≈ 7.3).
    Convention: KV cache reads, compute and efficiency ignored (an upper bound).
    Example: 21e9 × 0.5 B at 256e9 B/s: 24.4 tokens/s.
    """
    return memory_bytes_per_s / (activated_params * bytes_per_param)
