"""The one memory model: weight bytes at a precision, by part and sharding; KV cache bytes per
token on one GPU; memory per GPU (weights + KV cache + workspace) and whether it fits; the fewest
GPUs that hold a model.

Ref: the models' config.json (parameter counts); P (arXiv 2505.09343) §2.1.2 (KV cache), §3.1
(FP8 weights, 128x128 block scales); V3R (arXiv 2412.19437) §3.4 (DeepSeek's deployment: DP
attention, EP for the experts).
Conventions:
- :func:`weight_bytes` and :func:`bytes_per_gpu_even_split` (the budgets' figures): every
  parameter at one element type; quantization scales and the MTP module are not counted; the
  even split is the least any sharding can put on one GPU (real engines replicate attention
  under DP-attention).
- The serving figures (:func:`weight_bytes_per_gpu_by_part` and below): matrices of attention,
  dense FFN and experts at ``weights_dtype`` with their scales (FP8: one FP32 scale per 128×128
  block, +4/16,384 B per weight; FP4: MXFP4, one byte per 32 weights); embedding, output head,
  router and norms in BF16 (P §3.1 keeps them in higher precision).
- Memory per GPU = weights + KV cache + a workspace allowance of :data:`WORKSPACE_FRAC` of the
  GPU memory (activations, CUDA context, communication buffers, fragmentation; vLLM reserves 10%
  by default with gpu_memory_utilization = 0.9).
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
#: Parts every GPU holds whole, whatever the sharding.
REPLICATED_PARTS = ("router", "norms_biases")
#: Share of GPU memory reserved for activations, context, buffers and fragmentation.
WORKSPACE_FRAC = 0.10
#: Candidate GPU counts for :func:`fewest_gpus`.
FIT_GPU_COUNTS = tuple(2**i for i in range(13))


def weight_bytes(*, num_params, bytes_per_param):
    """Bytes of all weights (bytes).

    Formula: W = P × b, with P parameters and b bytes per parameter.
    Ref: paper.md §2 (P = 671.03e9 for DeepSeek-V3).
    Convention: one element type for every parameter; scales excluded.
    Example: P = 671.03e9 at FP8 (b = 1): W = 671.03e9 bytes = 671.03 GB.
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
                 else 1 if part in REPLICATED_PARTS else tp)
        out.append((part, n * b / split))
    return Parts(tuple(out))


def kv_bytes_per_token_per_gpu(model: Model, *, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV cache bytes one token adds on one GPU (bytes).

    Formula: MLA: L·(d_c + d_R)·b (the latent is shared by all heads: TP does not split it);
    GQA/MHA: L·2·n_kv·d_h·b / min(TP, n_kv).
    Ref: P §2.1.2; V2R §2.1 (MLA's cache).
    Convention: TP beyond n_kv replicates KV heads.
    Example: DeepSeek-V3 BF16 at any TP: L = 61 × (d_c = 512 + d_R = 64) × b = 2 = 70,272 B;
    Llama-3.1-405B BF16 at TP 8: 126 × 2 × n_kv = 8 × d_h = 128 × 2 / 8 = 64,512 B.
    """
    from planner.calc.kv_cache import model_kv_cache
    from planner.specs.model import MLAttention

    per_token = model_kv_cache(model, dtype=kv_dtype).kv_cache_bytes_per_token
    if isinstance(model.attention, MLAttention):
        return per_token
    assert model.attention.num_kv_heads is not None   # set by HeadAttention.__post_init__
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
    """Weights + KV cache + workspace on one GPU (bytes), whether it fits, and the largest batch
    of ``context_tokens``-long sequences per GPU (0 when the weights alone do not fit).

    Formula: M = W_GPU + KV + ws·H, with W_GPU the weights this GPU holds
    (:func:`weight_bytes_per_gpu_by_part`), H its memory and ws = :data:`WORKSPACE_FRAC`;
    KV = B · TP · C · kv_GPU, the TP group's TP·B sequences each with its per-GPU share kv_GPU
    (:func:`kv_bytes_per_token_per_gpu`); fits when M ≤ H. The largest batch per TP group is
    ⌊(H − ws·H − W_GPU) / (C · kv_GPU)⌋ (0 when negative), per GPU that / TP rounded down.
    Ref: V3R §3.4 (the deployment's sharding); vLLM's gpu_memory_utilization = 0.9 (workspace).
    Convention: the workspace stands for activations, CUDA context, communication buffers and
    fragmentation; no prefix cache, no redundant experts.
    Example: DeepSeek-V3 FP8 on 8 x H200 (H = 141e9 B) at EP 8, TP 8 and C = 4,096 tokens:
    W_GPU = 84.33e9 B, ws·H = 14.1e9 B, kv_GPU = 70,272 B (the latent whole on every GPU):
    ⌊(141e9 − 14.1e9 − 84.33e9) / (4,096 × 70,272)⌋ = 147 sequences per TP group, so
    ⌊147 / 8⌋ = 18 per GPU; at B = 18, KV = 18 × 8 × 4,096 × 70,272 = 41.45e9 B and
    M = 139.88e9 B (fits, 1.12e9 B headroom).
    """
    weights = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype, ep=ep, tp=tp)
    kv_bytes_per_token = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)
    kv_bytes = batch_per_gpu * tp * context_tokens * kv_bytes_per_token
    capacity = hardware.gpu.hbm_capacity_bytes
    workspace = WORKSPACE_FRAC * capacity
    total = weights.total + kv_bytes + workspace
    free = capacity - workspace - weights.total
    group_batch = max(0, math.floor(free / (context_tokens * kv_bytes_per_token)))
    return MemoryResult(weights, weights.total, kv_bytes, workspace, total, capacity,
                        total <= capacity, capacity - total, group_batch // tp, tp, group_batch)


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
    ``context_tokens`` (count; None when even 4,096 do not), with every count checked.

    Formula: the least N in :data:`FIT_GPU_COUNTS` whose :func:`memory_per_gpu` fits at
    EP = N, TP = min(N, domain) and a batch of 1 / TP sequences per GPU (one sequence per
    TP group).
    Ref: V3R §3.4 (experts over EP, the rest within the scale-up domain).
    Convention: experts split over all N GPUs, everything else over up to one scale-up domain;
    the workspace allowance of :func:`memory_per_gpu` included; powers of two only.
    Example: DeepSeek-V3 FP8 on H800 (H = 80e9 B, domain 8): at N = 8 (EP 8, TP 8) a GPU holds
    84.33e9 B of weights alone: no; at N = 16 (EP 16, TP 8) M = 51.74e9 B: N = 16. On H200
    (H = 141e9 B): N = 8, M = 98.72e9 B.
    """
    checked = []
    total = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype).total
    for num_gpus in FIT_GPU_COUNTS:
        tp = min(num_gpus, hardware.scale_up_domain_gpus)
        memory = memory_per_gpu(model, hardware, weights_dtype=weights_dtype, kv_dtype=kv_dtype,
                                ep=num_gpus, tp=tp, batch_per_gpu=1 / tp,
                                context_tokens=context_tokens)
        checked.append((num_gpus, memory.fits))
        if memory.fits:
            return FitResult(model.name or model.label, hardware.name or hardware.label,
                             weights_dtype, context_tokens, num_gpus, memory, total,
                             tuple(checked))
    return FitResult(model.name or model.label, hardware.name or hardware.label, weights_dtype,
                     context_tokens, None, None, total, tuple(checked))
