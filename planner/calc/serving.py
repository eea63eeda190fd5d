"""Serving capacity: memory per GPU and fit, the decode step and prefill as rooflines, MTP, and
memory-bound decode on a local device.

Ref: P §2.2-2.3 (memory, EP, MTP); V3R §3.4 (DeepSeek's deployment: DP attention, EP for the
experts, dual micro-batch overlap); ../shared/reference/hardware.md (FlashMLA, DeepGEMM, DeepEP
measured figures behind the efficiency factors); FlashMLA's FLOP and byte counts for MLA decode.

Deployment model (DeepSeek's, V3R §3.4): ``gpus`` GPUs serve together; attention runs data
parallel (each GPU its own sequences, attention weights replicated) or tensor parallel over
``tp`` GPUs; routed experts are split over ``ep`` GPUs (default all of them); dense layers,
shared experts, embedding and output head follow attention (replicated under DP, split by TP).

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
  communication runs on the EP link. With overlap (dual micro-batch) a layer takes
  max(compute, communication), without it their sum. TPOT excludes TTFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.common import Parts
from planner.errors import UsageError

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

    Formula: routed experts / EP; attention, dense FFN, shared experts, embedding and head / TP
    (replicated when TP = 1, i.e. DP attention); at the weight format with its scales, the
    high-precision parts at 2 B.
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
        split = ep if part == "routed_experts" else (1 if part in ("router", "norms_biases")
                                                     else tp)
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


def memory_per_gpu(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                   kv_dtype: str = "bf16", ep: int = 1, tp: int = 1, batch_per_gpu: int = 1,
                   context_tokens: int = 4096) -> MemoryResult:
    """Weights + KV cache + workspace on one GPU, whether it fits, and the largest batch of
    ``context_tokens``-long sequences per GPU (0 when the weights alone do not fit)."""
    weights = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype, ep=ep, tp=tp)
    kv_tok = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)
    kv = batch_per_gpu * context_tokens * kv_tok
    cap = hardware.gpu.hbm_capacity_bytes
    workspace = WORKSPACE_FRAC * cap
    total = weights.total + kv + workspace
    free = cap - workspace - weights.total
    return MemoryResult(weights, weights.total, kv, workspace, total, cap, total <= cap,
                        cap - total, max(0, math.floor(free / (context_tokens * kv_tok))))


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
                             ep=n, tp=tp, batch_per_gpu=1, context_tokens=context_tokens)
        checked.append((n, mem.fits))
        if mem.fits:
            return FitResult(model.name or model.label, hardware.name or hardware.label,
                             weights_dtype, context_tokens, n, mem, total, tuple(checked))
    return FitResult(model.name or model.label, hardware.name or hardware.label, weights_dtype,
                     context_tokens, None, None, total, tuple(checked))


# ----------------------------------------------------------------------------- step model
def roofline_time_s(*, flops, bytes_moved, flop_per_s, bytes_per_s):
    """max(FLOPs / R, bytes / B) (s). Ref: Williams et al., "Roofline", CACM 2009.
    Example: 1e12 FLOPs at 1e15 FLOP/s and 3e9 B at 3e12 B/s: max(1 ms, 1 ms) = 1 ms."""
    return max(flops / flop_per_s, bytes_moved / bytes_per_s)


def attention_flops_per_token_per_layer(model: Model, *, context_tokens,
                                        absorbed: bool = True) -> float:
    """Attention FLOPs of one decode token in one layer (FLOPs).

    Formula: 2·P_att (projections; MLA absorbed up-projections cost the same MACs) +
    2·n_h·C·(d_qk_cached + d_v_cached): MLA (d_c + d_R) + d_c (FlashMLA: 576 + 512); GQA
    2·d_h.
    Ref: FlashMLA benchmark (FLOPs = s_q·Σseqlen·h_q·(576 + 512)·2); V2R §2.1.
    Convention: softmax and RoPE not counted; MLA decode runs absorbed (scores over the cached
    latent); MLA prefill (``absorbed=False``) expands K and V: d_qk + d_v = 192 + 128 per
    position.
    Example: DeepSeek-V3, C = 4,096: 2·187.1e6 + 2·128·4096·1088 = 1.515e9 FLOPs.
    """
    from planner.calc.params import attention_params_per_layer
    from planner.specs.model import MLAttention

    att = model.attention
    if isinstance(att, MLAttention):
        per_pos = (att.kv_lora_rank + att.qk_rope_head_dim + att.kv_lora_rank if absorbed
                   else att.qk_head_dim + att.v_head_dim)
    else:
        per_pos = 2 * att.head_dim
    return (FLOPS_PER_MAC * attention_params_per_layer(model)
            + FLOPS_PER_MAC * att.num_heads * context_tokens * per_pos)


@dataclass(frozen=True)
class StepPart:
    name: str
    flops: float
    bytes_moved: float
    time_s: float
    bound: str          # "compute" or "memory" or "network"


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
    parts: tuple[StepPart, ...]   # per step (all layers and the head)
    compute_s: float
    communication_s: float
    overlap: bool
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


def serve(model: Model, hardware: Hardware, *, phase: str = "decode", gpus: int | None = None,
          ep: int | None = None, tp: int = 1, batch_per_gpu: float = 32,
          context_tokens: int = 4096, weights_dtype: str = "fp8", kv_dtype: str = "bf16",
          compute_dtype: str | None = None, overlap: bool = True, bound: bool = False,
          mtp_acceptance: float | None = None, mtp_depth: int | None = None,
          forwarding: bool | None = None) -> ServeResult:
    """Decode step or prefill of ``model`` on ``gpus`` x ``hardware``.

    decode: ``batch_per_gpu`` sequences per GPU, each with ``context_tokens`` of KV cache; one
    step emits one token per sequence (1 + p + ... with MTP).
    prefill: ``batch_per_gpu`` prompt tokens per GPU, in prompts of ``context_tokens`` (causal
    attention over half the prompt on average); TTFT = the time of that batch.
    """
    from planner.calc.params import model_params
    from planner.specs.model import MoEFFN

    if phase not in ("decode", "prefill"):
        raise UsageError(f"unknown phase {phase!r}; expected decode or prefill")
    ffn = model.ffn
    moe = isinstance(ffn, MoEFFN)
    if gpus is None:
        gpus = (1 if hardware.scale_up is None
                else ffn.num_routed_experts if moe else hardware.scale_up_domain_gpus)
    ep = ep or gpus
    if gpus % ep or gpus % tp:
        raise UsageError(f"EP ({ep}) and TP ({tp}) must divide the GPUs ({gpus})")
    peaks = hardware.gpu.peak_dense_tflop_per_s
    if compute_dtype is None and peaks is not None:   # the weights' precision, else the nearest
        order = {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16", "fp4"),
                 "bf16": ("bf16", "fp8", "fp4")}[weights_dtype]
        compute_dtype = next((d for d in order if getattr(peaks, d) is not None), "bf16")
    # A device whose vendor publishes no peak: compute is not modelled (memory and links only).
    peak_flops = (math.inf if peaks is None
                  else hardware.peak_dense_flop_per_s(compute_dtype))
    compute_dtype = compute_dtype or "none"
    # Attention runs in BF16 (P §3.1 keeps it in higher precision) where the device has a BF16
    # peak; MoE experts in decode run as grouped GEMMs.
    attn_peak = (peak_flops if peaks is None or peaks.bf16 is None
                 else hardware.peak_dense_flop_per_s("bf16"))
    peak_hbm = hardware.gpu.hbm_bandwidth_bytes_per_s
    if bound or peaks is None:
        flop_s = grouped_s = peak_flops
        attn_s, hbm_s, basis = attn_peak, peak_hbm, "peak (bound: no efficiency factors)"
        eff_up = eff_out = 1.0
        if peaks is None:
            basis = ("peak memory bandwidth; compute not modelled (the spec gives no peak "
                     "FLOP/s); no efficiency factors")
    else:
        fm, fh = hardware.efficiency_frac("matmul_flops"), hardware.efficiency_frac(
            "hbm_bandwidth")
        fa = hardware.efficiency_frac("attention_flops")
        fg = hardware.efficiency_frac("grouped_gemm_flops") if phase == "decode" else fm
        flop_s, hbm_s = peak_flops * fm.frac, peak_hbm * fh.frac
        attn_s, grouped_s = attn_peak * fa.frac, peak_flops * fg.frac
        eff_out = hardware.efficiency_frac("scale_out_bandwidth").frac
        eff_up = (hardware.efficiency_frac("scale_up_bandwidth").frac
                  if hardware.scale_up is not None else 1.0)
        basis = (f"achievable: {compute_dtype.upper()} GEMM x {fm.frac:g}, experts x "
                 f"{fg.frac:g}, BF16 attention x {fa.frac:g}, HBM x {fh.frac:g}, links x "
                 f"{eff_up:g} / {eff_out:g}")
    mem = memory_per_gpu(model, hardware, weights_dtype=weights_dtype, kv_dtype=kv_dtype,
                         ep=ep, tp=tp,
                         batch_per_gpu=batch_per_gpu if phase == "decode" else 1,
                         context_tokens=context_tokens)
    w = mem.weights.as_dict()
    layers = model.num_layers
    p_act = model_params(model).activated.as_dict()
    decode = phase == "decode"
    tokens = batch_per_gpu                       # tokens this GPU processes per step
    ctx = context_tokens if decode else context_tokens / 2   # causal prefill: half on average
    kv_tok = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)

    parts: list[StepPart] = []

    def add(name: str, flops: float, nbytes: float, rate: float | None = None) -> None:
        c, m = flops / (rate or flop_s), nbytes / hbm_s
        parts.append(StepPart(name, flops, nbytes, max(c, m), "compute" if c >= m else "memory"))

    # Attention: every layer; TP splits heads (FLOPs) and weights.
    att_flops = tokens * layers * attention_flops_per_token_per_layer(
        model, context_tokens=ctx, absorbed=decode) / tp
    kv_read = (tokens * context_tokens * kv_tok) if decode else tokens * kv_tok  # read / write
    add("attention", att_flops, w["attention"] + kv_read, attn_s)
    if w["dense_ffn"]:
        add("dense FFN", FLOPS_PER_MAC * p_act["dense_ffn"] * tokens / tp, w["dense_ffn"])
    comm_s = 0.0
    link = "none"
    if moe:
        k = ffn.num_experts_per_token
        # Each GPU runs the expert work of its tokens' share: tokens × (k + shared) expert
        # passes in total over the group, spread evenly over EP GPUs.
        routed_flops = FLOPS_PER_MAC * p_act["routed_experts"] * tokens * gpus / ep
        shared_flops = FLOPS_PER_MAC * p_act["shared_experts"] * tokens / tp
        # Experts touched: with few tokens per expert only some of a GPU's experts are read.
        pairs = tokens * gpus * k
        hit = 1 - (1 - 1 / ffn.num_routed_experts) ** pairs
        add("routed experts", routed_flops, w["routed_experts"] * hit, grouped_s)
        if p_act["shared_experts"]:
            add("shared experts", shared_flops, w["shared_experts"])
        if ep > 1:
            comm_s, link = ep_comm_time_s(model, hardware, ep=ep, tokens_per_gpu=tokens,
                                          forwarding=(not decode) if forwarding is None
                                          else forwarding, eff_up=eff_up, eff_out=eff_out)
    head_tokens = tokens if decode else tokens / context_tokens   # prefill: last token only
    add("output head", FLOPS_PER_MAC * p_act["output_head"] * head_tokens / tp,
        w["output_head"])
    compute_s = sum(p.time_s for p in parts)
    busiest = max(parts, key=lambda p: p.time_s)
    step = max(compute_s, comm_s) if overlap else compute_s + comm_s
    if comm_s:
        parts.append(StepPart(f"EP dispatch + combine ({link})", 0.0, 0.0, comm_s, "network"))
    if decode:
        depth = model.mtp_depth if mtp_depth is None else mtp_depth
        per_step = (mtp_tokens_per_step(acceptance=mtp_acceptance, depth=depth)
                    if mtp_acceptance is not None and depth else 1.0)
        if mtp_acceptance is not None and depth:
            step *= 1 + depth / layers          # the MTP module: one more layer per depth
        tpot = step / per_step
        tps_gpu = tokens * per_step / step
        ttft = None
        decode_tps = 1 / tpot
    else:
        per_step, tpot, decode_tps = tokens, None, None
        ttft = step
        tps_gpu = tokens / step
    if comm_s and comm_s >= compute_s:
        bottleneck = f"network ({link}): communication {comm_s * 1e3:.3g} ms >= compute " \
                     f"{compute_s * 1e3:.3g} ms per step"
    else:
        kind = {"compute": "compute (FLOP/s)", "memory": "HBM bandwidth"}[busiest.bound]
        bottleneck = f"{kind} in {busiest.name}"
    return ServeResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label, phase=phase,
        basis=basis, gpus=gpus, ep=ep, tp=tp, batch_per_gpu=batch_per_gpu,
        context_tokens=context_tokens, parts=tuple(parts), compute_s=compute_s,
        communication_s=comm_s, overlap=overlap, step_s=step, tokens_per_step=per_step,
        tpot_s=tpot, ttft_s=ttft, decode_tokens_per_s=decode_tps, tokens_per_s_per_gpu=tps_gpu,
        tokens_per_s_per_node=tps_gpu * hardware.scale_up_domain_gpus, memory=mem,
        bottleneck=bottleneck)


def ep_comm_time_s(model: Model, hardware: Hardware, *, ep: int, tokens_per_gpu: float,
                   forwarding: bool, eff_up: float = 1.0, eff_out: float = 1.0):
    """(EP dispatch + combine time of one step over all MoE layers (s), link used).

    Formula: per MoE layer, T tokens per GPU × copies × (b_dispatch + b_combine) / B. Inside the
    scale-up domain: k + shared copies over NVLink. Across nodes without forwarding (DeepSeek's
    decode: direct IB): k + shared copies over IB. With NVLink forwarding (DeepSeek's prefill):
    one IB copy per distinct remote node (node-limited routing, uniform expectation) while NVLink
    fans out to the k + shared experts; IB and NVLink run at once.
    Ref: P §2.3.2 and §4.3; V3R §3.4. Convention: FP8 dispatch with DeepEP scales, BF16 combine;
    bandwidths × the given efficiency factors.
    Example: DeepSeek-V3, EP 320 over IB, 32 tokens: 58 × 32 × 9 × 21,744 / 40e9 = 9.08 ms.
    """
    from planner.calc import ep as ep_calc
    from planner.calc.routing import expected_distinct_nodes, ib_copies_per_token

    ffn = model.ffn
    copies = ffn.num_experts_per_token + ffn.num_shared_experts
    per_copy = (ep_calc.fp8_dispatch_bytes_per_token_expert(hidden_size=model.hidden_size)
                + model.hidden_size * HIGH_PRECISION_BYTES)
    moe_layers = model.num_layers - ffn.num_dense_layers
    domain = hardware.scale_up_domain_gpus
    out_bw = hardware.scale_out.bandwidth_bytes_per_s * eff_out
    if ep <= domain and hardware.scale_up is not None:
        bw = hardware.scale_up.bandwidth_bytes_per_s * eff_up
        return moe_layers * tokens_per_gpu * copies * per_copy / bw, "scale_up"
    nodes = max(1, ep // domain)
    if forwarding and hardware.scale_up is not None and nodes > 1:
        limit = min(ffn.num_limited_groups or nodes, nodes)
        distinct = expected_distinct_nodes(experts_per_token=ffn.num_experts_per_token,
                                           experts_per_node=ffn.num_routed_experts // nodes,
                                           num_nodes=limit)
        ib = tokens_per_gpu * ib_copies_per_token(distinct_target_nodes=distinct,
                                                  num_nodes=nodes) * per_copy / out_bw
        nvl = tokens_per_gpu * copies * per_copy / (hardware.scale_up.bandwidth_bytes_per_s
                                                    * eff_up)
        return moe_layers * max(ib, nvl), "scale_out + NVLink forwarding"
    return moe_layers * tokens_per_gpu * copies * per_copy / out_bw, "scale_out"


def local_decode_tokens_per_s(*, activated_params, bytes_per_param, memory_bytes_per_s):
    """Memory-bound decode speed of one sequence on one device (tokens/s).

    Formula: B / (N_act · b): every activated weight is read once per token.
    Ref: P §2.2.2; paper.md §4 (V2 at 4 bits on 256 GB/s ≈ 24 tokens/s; a dense 70B ≈ 7.3).
    Convention: KV cache reads, compute and efficiency ignored (an upper bound).
    Example: 21e9 × 0.5 B at 256e9 B/s: 24.4 tokens/s.
    """
    return memory_bytes_per_s / (activated_params * bytes_per_param)
