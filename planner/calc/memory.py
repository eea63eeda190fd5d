"""The one memory model: weight bytes at a precision, by part and sharding; KV cache bytes per
token on one GPU; memory per GPU (weights + KV cache + workspace) and whether it fits; the
smallest TP that fits; the fewest GPUs that hold a model; the longest context a GPU holds.
``serve``, ``fit``, ``compare`` all use it.

Ref: the models' config.json (parameter counts); P (arXiv 2505.09343) §2.1.2 (KV cache), §3.1
(FP8 weights, 128x128 block scales); V3R (arXiv 2412.19437) §3.4 (DeepSeek's deployment: DP
attention, EP for the experts), §2.2 (MTP modules); FlashMLA README (github.com/deepseek-ai/
FlashMLA: its FP8 KV cache layout, 656 B per token per layer).
Conventions:
- Two weight totals, named apart: :func:`weight_bytes` is *parameter bytes*, P × b, every
  parameter at one element type with no scales (the paper's 671.03 GB for DeepSeek-V3 at FP8;
  the budgets' ``weight_bytes``); :func:`stored_weight_bytes` is what a GPU actually holds
  (673.15 GB for DeepSeek-V3 at FP8): matrices of attention, dense FFN and experts at
  ``weights_dtype`` with their scales (FP8: one FP32 scale per 128×128 block, +4/16,384 B per
  weight; FP4: MXFP4, one byte per 32 weights; NVFP4: one byte per 16; INT4: an FP16 scale and
  a 4-bit zero per group of 128); embedding, output head, router and norms in
  BF16 (P §3.1 keeps them in higher precision). Every figure per GPU uses the stored bytes.
- MTP modules (V3R §2.2: one transformer block, a 2d×d projection and two norms each, embedding
  and head shared with the main model) are held only when the deployment drafts with them.
- Memory per GPU = weights + KV cache + a workspace allowance of :data:`WORKSPACE_FRAC` of the
  memory an engine can use (activations, CUDA context, communication buffers, fragmentation;
  vLLM reserves 10% by default with gpu_memory_utilization = 0.9). The memory an engine can use
  is the hardware's ``hbm_usable_bytes`` (the driver's total, below the HBM fitted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.common import Parts
from planner.calc.kv_cache import mla_fp8_kv_bytes_per_token_per_layer  # noqa: F401 (re-export)
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Bytes per weight of each weight format, and the scale bytes per weight.
#: fp4 is MXFP4 (an E8M0 byte per 32 weights); nvfp4 an E4M3 byte per 16 (its one FP32 scale per
#: tensor is negligible); int4 AWQ/GPTQ-style groups of 128 with an FP16 scale and a 4-bit zero
#: point each ((2 + 0.5) / 128 B per weight).
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5, "nvfp4": 0.5, "int4": 0.5}
SCALE_BYTES_PER_WEIGHT = {"bf16": 0.0, "fp8": 4 / (128 * 128), "fp4": 1 / 32, "nvfp4": 1 / 16,
                          "int4": (2 + 0.5) / 128}
#: Parts kept in BF16 whatever the weight format.
HIGH_PRECISION_PARTS = ("embedding", "output_head", "router", "norms_biases")
HIGH_PRECISION_BYTES = 2.0
#: Parts every GPU holds whole, whatever the sharding.
REPLICATED_PARTS = ("router", "norms_biases")
#: Share of GPU memory reserved for activations, context, buffers and fragmentation.
WORKSPACE_FRAC = 0.10
#: Candidate GPU counts for :func:`fewest_gpus`.
FIT_GPU_COUNTS = tuple(2**i for i in range(13))
#: An MTP module's projection M_k ∈ R^{d × 2d} (V3R §2.2) takes 2d inputs; its norms: of the
#: previous depth's hidden state and of the token's embedding.
MTP_PROJECTION_INPUTS = 2
MTP_NORMS = 2


def weight_bytes(*, num_params, bytes_per_param):
    """Parameter bytes of all weights (bytes): the paper's and the budgets' ``weight_bytes``.

    Formula: W = P × b, with P parameters and b bytes per parameter.
    Ref: paper.md §2 (P = 671.03e9 for DeepSeek-V3).
    Convention: *parameter bytes*: one element type for every parameter; scales excluded; what a
    GPU holds is :func:`stored_weight_bytes` (scales, BF16 parts), a little more.
    Example: P = 671.03e9 at FP8 (b = 1): W = 671.03e9 bytes = 671.03 GB (stored: 673.15 GB).
    """
    return num_params * bytes_per_param


def bytes_per_gpu_even_split(*, total_bytes, num_gpus):
    """Bytes per GPU when ``total_bytes`` are split evenly over ``num_gpus`` (bytes).

    Formula: total / N.
    Ref: arithmetic; the lower bound of any sharding (no replication).
    Convention: no replication, no activations, no KV cache, no workspace.
    Example: 671.03 GB over N = 8 GPUs: 83.88 GB per GPU (more than an 80 GB H800 holds).
    """
    return total_bytes / num_gpus


def _held_per_gpu(part: str, count: float, *, model: Model, ep: int, tp: int,
                  replicated_attention: float) -> float:
    """Parameters of ``part`` (``count`` in all) one GPU holds: routed experts as whole experts
    over EP, ⌈E / EP⌉ of them (EP beyond E holds one, the others' replicas), or split by TP
    when EP = 1; router and norms replicated; attention split by TP but for its
    ``replicated_attention`` parameters (MLA's down-projections, held whole); the rest / TP."""
    from planner.specs.model import MoEFFN

    if part == "routed_experts":
        if ep == 1:
            return count / tp
        experts = model.ffn.num_routed_experts if isinstance(model.ffn, MoEFFN) else ep
        return count * math.ceil(experts / ep) / experts
    if part in REPLICATED_PARTS:
        return count
    if part == "attention":
        return replicated_attention + (count - replicated_attention) / tp
    return count / tp


def _bytes_per_weight(part: str, weights_dtype: str, model: Model) -> float:
    """Stored bytes of one weight of ``part``: BF16 for the high-precision parts, else the
    part's format (the weights', or what the model's checkpoint keeps the part in:
    ``Model.part_weight_dtypes``) with its scales."""
    if weights_dtype not in WEIGHT_BYTES:
        raise UsageError(f"unknown weight format {weights_dtype!r}; expected one of: "
                         f"{', '.join(WEIGHT_BYTES)}")
    if part in HIGH_PRECISION_PARTS:
        return HIGH_PRECISION_BYTES
    dtype = model.part_weight_dtype(part, weights_dtype)
    return WEIGHT_BYTES[dtype] + SCALE_BYTES_PER_WEIGHT[dtype]


def mtp_module_params(model: Model) -> Parts:
    """Parameters of one MTP module, by the part of a main-model layer each is stored like
    (count).

    Formula: one transformer block of the model's last layer type (attention + MoE FFN with its
    router, or the dense FFN) + the projection M (d × 2d, as attention) + norms (the block's,
    and the two of h and of the embedding).
    Ref: V3R §2.2 (MTP: embedding and output head shared with the main model).
    Convention: a MoE model's block is a MoE layer; per-layer parameters are the model's per-part
    totals over the layers that have the part.
    Example: DeepSeek-V3: attention 187.1e6 + M 2 × 7,168² = 102.8e6; routed 256 × 44.04e6 =
    11.27e9; shared 44.04e6; router 1.84e6: 11.61e9 in all.
    """
    from planner.calc.params import model_params

    total = model_params(model).total.as_dict()
    d, layers = model.hidden_size, model.num_layers
    moe_layers = model.num_moe_layers
    per_layer_norms = (total["norms_biases"] - d) / layers          # less the final norm
    if moe_layers:
        ffn = [(part, total[part] / moe_layers)
               for part in ("shared_experts", "routed_experts", "router")]
    else:
        ffn = [("dense_ffn", total["dense_ffn"] / layers)]
    return Parts((("attention", total["attention"] / layers + MTP_PROJECTION_INPUTS * d * d),
                  *ffn, ("norms_biases", per_layer_norms + MTP_NORMS * d)))


def weight_bytes_per_gpu_by_part(model: Model, *, weights_dtype: str = "fp8", ep: int = 1,
                                 tp: int = 1, mtp_modules: int = 0) -> Parts:
    """Weight bytes one GPU holds, by part (bytes).

    Formula: routed experts ⌈E / EP⌉ whole experts per GPU (EP beyond E: one, replicated), or
    / TP when EP = 1 (each expert split by tensor parallelism, what engines do without expert
    parallelism); attention / TP but MLA's down-projections whole on every GPU
    (:func:`~planner.calc.params.attention_replicated_params_per_layer`); dense FFN, shared
    experts, embedding and head / TP (replicated when TP = 1, i.e. DP attention); at the weight format
    with its scales, the high-precision parts at 2 B; ``mtp_modules`` MTP modules
    (:func:`mtp_module_params`) split as the layers are.
    Ref: V3R §3.4 (EP for experts, DP or TP for attention), §2.2 (MTP); P §3.1 (FP8 weights,
    128×128 scales).
    Convention: stored bytes (see the module docstring); norms and router replicated; no
    redundant experts beyond what EP > E forces.
    Example: DeepSeek-V3, FP8, EP 8, TP 1: routed 653.9e9 × 1.000244 / 8 = 81.77e9 B; attention
    11.41e9 B replicated; total per GPU ≈ 98.7e9 B; with its one MTP module, + 1.75e9 B.
    """
    from planner.calc.params import attention_replicated_params_per_layer, model_params

    per_layer = attention_replicated_params_per_layer(model)

    def held(part: str, count: float, layers: int) -> float:
        return _bytes_per_weight(part, weights_dtype, model) * _held_per_gpu(
            part, count, model=model, ep=ep, tp=tp, replicated_attention=per_layer * layers)

    out = [(part, held(part, n, model.num_layers))
           for part, n in model_params(model).total.as_dict().items()]
    if mtp_modules:
        mtp = sum(held(part, n, 1) for part, n in mtp_module_params(model).as_dict().items())
        out.append(("mtp_modules", mtp_modules * mtp))
    return Parts(tuple(out))


def stored_weight_bytes(model: Model, *, weights_dtype: str = "fp8") -> float:
    """Bytes of all the weights as a GPU stores them (bytes): the *stored* convention.

    Formula: Σ over parts of P_part × b_part (:func:`weight_bytes_per_gpu_by_part` on one GPU).
    Ref: P §3.1 (FP8 weights with 128×128 block scales; embedding, head in higher precision).
    Convention: see the module docstring; main model only (no MTP module); compare
    :func:`weight_bytes`, the parameter bytes P × b.
    Example: DeepSeek-V3 FP8: 669.1e9 matrix weights × 1.000244 + 1.96e9 BF16 weights × 2 =
    673.15e9 B (parameter bytes: 671.03e9).
    """
    return weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype).total


def kv_bytes_per_token_per_gpu(model: Model, *, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV cache bytes one token adds on one GPU (bytes).

    Formula: MLA: L·(d_c + d_R)·b (the latent is shared by all heads: TP does not split it;
    FP8: L × :func:`mla_fp8_kv_bytes_per_token_per_layer`); GQA/MHA: L·2·n_kv·d_h·b /
    min(TP, n_kv).
    Ref: P §2.1.2; V2R §2.1 (MLA's cache); FlashMLA README (the FP8 layout).
    Convention: TP beyond n_kv replicates KV heads; FP8 MLA in FlashMLA's layout.
    Example: DeepSeek-V3 BF16 at any TP: L = 61 × (d_c = 512 + d_R = 64) × b = 2 = 70,272 B;
    FP8: 61 × 656 = 40,016 B; Llama-3.1-405B BF16 at TP 8: 126 × 2 × n_kv = 8 × d_h = 128 × 2
    / 8 = 64,512 B.
    """
    from planner.calc.kv_cache import model_kv_cache
    from planner.specs.model import MLAttention

    att = model.attention
    if isinstance(att, MLAttention):
        return model_kv_cache(model, dtype=kv_dtype).kv_cache_bytes_per_token
    assert att.num_kv_heads is not None   # set by HeadAttention.__post_init__
    per_token = model_kv_cache(model, dtype=kv_dtype).kv_cache_bytes_per_token
    return per_token / min(tp, att.num_kv_heads)


def prefill_sequences_per_gpu(*, tokens_per_gpu, prompt_tokens, tp):
    """Prompts whose KV cache one GPU holds while prefilling (sequences, each GPU's share).

    Formula: max(T / C, 1 / TP): T prompt tokens per GPU in prompts of C tokens; a TP group
    holds at least the one prompt it is prefilling (a chunk of it attends to all of it).
    Ref: arithmetic (the batch of a prefill step).
    Convention: the KV of the prompts being prefilled, none of earlier batches.
    Example: 16,384 tokens per GPU of 4,096-token prompts: 4 prompts per GPU; 256 tokens of a
    4,096-token prompt at TP 8: 1 / 8 (one prompt per TP group).
    """
    return max(tokens_per_gpu / prompt_tokens, 1 / tp)


@dataclass(frozen=True)
class MemoryResult:
    weights: Parts
    weight_bytes_per_gpu: float
    kv_cache_bytes_per_gpu: float
    workspace_bytes_per_gpu: float
    memory_bytes_per_gpu: float
    capacity_bytes_per_gpu: float   # what an engine can use (hardware.gpu.hbm_usable_bytes)
    fits: bool
    headroom_bytes: float
    max_batch_per_gpu: int
    tp: int = 1                   # attention TP group the batch is shared over
    max_batch_per_tp_group: int = 0
    ep: int = 1


def memory_per_gpu(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                   kv_dtype: str = "bf16", ep: int = 1, tp: int = 1, batch_per_gpu: float = 1,
                   context_tokens: int = 4096, mtp_modules: int = 0) -> MemoryResult:
    """Weights + KV cache + workspace on one GPU (bytes), whether it fits, and the largest batch
    of ``context_tokens``-long sequences per GPU (0 when the weights alone do not fit).

    Formula: M = W_GPU + KV + ws·H, with W_GPU the weights this GPU holds
    (:func:`weight_bytes_per_gpu_by_part`, ``mtp_modules`` MTP modules included), H the memory
    an engine can use (``hbm_usable_bytes``) and ws = :data:`WORKSPACE_FRAC`;
    KV = B · TP · C · kv_GPU, the TP group's TP·B sequences each with its per-GPU share kv_GPU
    (:func:`kv_bytes_per_token_per_gpu`); fits when M ≤ H. The largest batch per TP group is
    ⌊(H − ws·H − W_GPU) / (C · kv_GPU)⌋ (0 when negative), per GPU that / TP rounded down.
    Ref: V3R §3.4 (the deployment's sharding); vLLM's gpu_memory_utilization = 0.9 (workspace).
    Convention: the workspace stands for activations, CUDA context, communication buffers and
    fragmentation; no prefix cache, no redundant experts.
    Example: DeepSeek-V3 FP8 on 8 x H200 (H = 143,771 MiB = 150.76e9 B usable) at EP 8, TP 8
    and C = 4,096 tokens: W_GPU = 84.33e9 B, ws·H = 15.08e9 B, kv_GPU = 70,272 B (the latent
    whole on every GPU): ⌊(150.76e9 − 15.08e9 − 84.33e9) / (4,096 × 70,272)⌋ = 178 sequences
    per TP group, so ⌊178 / 8⌋ = 22 per GPU.
    """
    weights = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype, ep=ep, tp=tp,
                                           mtp_modules=mtp_modules)
    kv_bytes_per_token = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)
    kv_bytes = batch_per_gpu * tp * context_tokens * kv_bytes_per_token
    capacity = hardware.gpu.hbm_usable_bytes
    workspace = WORKSPACE_FRAC * capacity
    total = weights.total + kv_bytes + workspace
    free = capacity - workspace - weights.total
    group_batch = max(0, math.floor(free / (context_tokens * kv_bytes_per_token)))
    return MemoryResult(weights, weights.total, kv_bytes, workspace, total, capacity,
                        total <= capacity, capacity - total, group_batch // tp, tp, group_batch,
                        ep)


def tp_candidates(*, gpus: int, domain_gpus: int) -> tuple[int, ...]:
    """TP sizes a deployment of ``gpus`` GPUs may take, smallest first (counts).

    Formula: 1, 2, 4, ... that divide ``gpus`` and do not exceed the scale-up domain.
    Ref: V3R §3.4 (TP within a node, over NVLink).
    Convention: powers of two; never across the scale-up domain.
    Example: 8 GPUs, domain 8: 1, 2, 4, 8; 12 GPUs, domain 8: 1, 2, 4.
    """
    out, tp = [], 1
    while tp <= min(gpus, domain_gpus) and gpus % tp == 0:
        out.append(tp)
        tp *= 2
    return tuple(out)


def max_context_tokens(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                       kv_dtype: str = "bf16", ep: int = 1, tp: int = 1) -> int | None:
    """The longest context one sequence per TP group can have in memory (tokens; None when the
    weights and workspace alone do not fit).

    Formula: ⌊(H − ws·H − W_GPU) / kv_GPU⌋, the terms of :func:`memory_per_gpu`.
    Ref: P §2.1 (KV cache as the memory bound of long contexts).
    Convention: one sequence per TP group, its KV split as :func:`kv_bytes_per_token_per_gpu`
    splits it; workspace included.
    Example: Llama-3.1-405B FP8 on one 8 x H800 node (TP 8): W_GPU = 51.28e9 B; (85.52e9 −
    8.55e9 − 51.28e9) / 64,512 = 398,246 tokens.
    """
    mem = memory_per_gpu(model, hardware, weights_dtype=weights_dtype, kv_dtype=kv_dtype, ep=ep,
                         tp=tp, batch_per_gpu=1 / tp, context_tokens=1)
    free = mem.capacity_bytes_per_gpu - mem.workspace_bytes_per_gpu - mem.weight_bytes_per_gpu
    return mem.max_batch_per_tp_group if free > 0 else None


@dataclass(frozen=True)
class FitResult:
    model: str
    hardware: str
    weights_dtype: str
    context_tokens: int
    num_gpus: int | None
    memory: MemoryResult | None
    stored_weight_bytes: float    # what the GPUs hold (scales, BF16 parts): :func:`stored_...`
    weight_bytes: float           # parameter bytes P × b (the budgets' weight_bytes)
    checked: tuple[tuple[int, int, bool], ...]   # (GPUs, TP, fits) in the order tried


def fewest_gpus(model: Model, hardware: Hardware, *, weights_dtype: str = "fp8",
                kv_dtype: str = "bf16", context_tokens: int = 4096) -> FitResult:
    """The fewest GPUs (1, 2, 4, ... 4096) that hold the model and one sequence of
    ``context_tokens``, and the smallest TP that does it (count; None when even 4,096 do not),
    with every layout checked.

    Formula: the least N in :data:`FIT_GPU_COUNTS`, and at it the least TP of
    :func:`tp_candidates`, whose :func:`memory_per_gpu` fits at EP = N and a batch of 1 / TP
    sequences per GPU (one sequence per TP group).
    Ref: V3R §3.4 (experts over EP, the rest replicated or split within the scale-up domain).
    Convention: experts split over all N GPUs, everything else over TP; the workspace allowance
    of :func:`memory_per_gpu` included; powers of two only.
    Example: Llama-3.1-70B FP8 on H800 (85.52e9 B usable): N = 1, TP = 1: 72.67e9 B of weights
    + 1.34e9 B of KV + 8.55e9 B workspace = 82.56e9 B: fits. DeepSeek-V3 FP8 on H800: N = 8
    does not fit at any TP; N = 16, TP = 1 does (the attention replicated).
    """
    from planner.calc.params import model_params
    from planner.units import dtype_bytes

    checked = []
    stored = stored_weight_bytes(model, weights_dtype=weights_dtype)
    params = weight_bytes(num_params=model_params(model).total.total,
                          bytes_per_param=WEIGHT_BYTES.get(weights_dtype)
                          or dtype_bytes(weights_dtype))
    name, hw = model.name or model.label, hardware.name or hardware.label
    for num_gpus in FIT_GPU_COUNTS:
        for tp in tp_candidates(gpus=num_gpus, domain_gpus=hardware.scale_up_domain_gpus):
            memory = memory_per_gpu(model, hardware, weights_dtype=weights_dtype,
                                    kv_dtype=kv_dtype, ep=num_gpus, tp=tp, batch_per_gpu=1 / tp,
                                    context_tokens=context_tokens)
            checked.append((num_gpus, tp, memory.fits))
            if memory.fits:
                return FitResult(name, hw, weights_dtype, context_tokens, num_gpus, memory,
                                 stored, params, tuple(checked))
    return FitResult(name, hw, weights_dtype, context_tokens, None, None, stored, params,
                     tuple(checked))
