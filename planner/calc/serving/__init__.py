"""Serving capacity: the decode step and prefill as rooflines, memory per GPU and fit, MTP, and
memory-bound decode on a local device.

Ref: P §2.2-2.3 (memory, EP, MTP); V3R §3.4 (DeepSeek's deployment: DP attention, EP for the
experts, dual micro-batch overlap); the FlashMLA, DeepGEMM and DeepEP READMEs
(github.com/deepseek-ai: the measured figures behind the efficiency factors); FlashMLA's FLOP and byte counts for MLA decode.

Deployment model (DeepSeek's, V3R §3.4): ``gpus`` GPUs serve together; attention runs data
parallel (each GPU its own sequences, attention weights replicated) or tensor parallel over
``tp`` GPUs; routed experts are split over ``ep`` GPUs (default all of them); dense layers,
shared experts, embedding and output head follow attention (replicated under DP, split by TP).
A batch "per GPU" is each GPU's share: a TP group of ``tp`` GPUs decodes ``tp`` times as many
sequences, every GPU holding its share of each one's KV cache (MLA's latent whole: TP does not
split it) and the residual stream of all of them; after attention and after the FFN block the
group all-reduces its activations over the scale-up link.

Conventions:
- Weights and memory per GPU: :mod:`planner.calc.memory` (weights at ``weights_dtype`` with
  their scales, the high-precision parts in BF16; a workspace allowance of
  :data:`~planner.calc.memory.WORKSPACE_FRAC` of the GPU memory).
- Every step part takes the longer of its compute (FLOPs at achievable, or with ``bound`` peak,
  dense FLOP/s of ``compute_dtype``) and its memory traffic (bytes at achievable HBM bandwidth);
  EP communication runs on the link the group needs, TP all-reduces on the scale-up link. EP
  communication overlaps compute per the overlap mode (dual micro-batch slots, single-batch
  overlap, or none: their sum); TP all-reduces do not. GEMM rows are padded to whole
  tensor-core tiles. TPOT excludes TTFT.

Modules: :mod:`.rates` (peak × efficiency), :mod:`.kernels` (the roofline ledger, tiles),
:mod:`.blocks` (attention, dense FFN, MoE, output head), :mod:`.overlap` (schedules),
:mod:`.communication` (EP and TP traffic), :mod:`.shape` (layout and the step's shape),
:mod:`.step` (the step's time), :mod:`.result` (tokens per step, throughput, bottleneck).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.calc.memory import (
    FIT_GPU_COUNTS,
    HIGH_PRECISION_BYTES,
    HIGH_PRECISION_PARTS,
    SCALE_BYTES_PER_WEIGHT,
    WEIGHT_BYTES,
    WORKSPACE_FRAC,
    FitResult,
    MemoryResult,
    fewest_gpus,
    kv_bytes_per_token_per_gpu,
    memory_per_gpu,
    weight_bytes_per_gpu_by_part,
)
from planner.calc.serving.blocks import (
    ACT_BYTES,
    ACT_FP8_BYTES,
    FLOPS_PER_MAC,
    activation_bytes_per_token_per_layer,
    attention_core_flops_per_token_per_layer,
)
from planner.calc.serving.communication import (
    TP_ALL_REDUCES_PER_LAYER,
    ep_layer_comm_s,
    tp_all_reduce_s,
)
from planner.calc.serving.kernels import (
    MAX_TILE_ROWS,
    KernelLedger,
    StepPart,
    expected_padded_rows_per_expert,
    padded_rows,
)
from planner.calc.serving.overlap import (
    DOWN_MATRICES,
    DUAL_MICRO_BATCHES,
    GATED_FFN_MATRICES,
    OVERLAP_MODES,
    OVERLAP_SCHEDULES,
    dual_micro_batch_layer_s,
    single_batch_overlap_layer_s,
)
from planner.calc.serving.rates import (
    ATTENTION_DTYPES,
    SERVING_FACTORS,
    Rates,
    serving_rates,
)
from planner.calc.serving.result import (
    Bottleneck,
    ServeResult,
    local_decode_tokens_per_s,
    step_bottleneck,
    step_throughput,
)
from planner.calc.serving.shape import deployment_layout, serving_memory, step_shape
from planner.calc.serving.speculative import mtp_tokens_per_step
from planner.calc.serving.step import step_times
from planner.specs.deployment import ServeConfig

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

__all__ = [
    "ACT_BYTES",
    "ACT_FP8_BYTES",
    "ATTENTION_DTYPES",
    "DOWN_MATRICES",
    "DUAL_MICRO_BATCHES",
    "FIT_GPU_COUNTS",
    "FLOPS_PER_MAC",
    "GATED_FFN_MATRICES",
    "HIGH_PRECISION_BYTES",
    "HIGH_PRECISION_PARTS",
    "OVERLAP_MODES",
    "MAX_TILE_ROWS",
    "OVERLAP_SCHEDULES",
    "SCALE_BYTES_PER_WEIGHT",
    "SERVING_FACTORS",
    "TP_ALL_REDUCES_PER_LAYER",
    "WEIGHT_BYTES",
    "WORKSPACE_FRAC",
    "Bottleneck",
    "FitResult",
    "KernelLedger",
    "MemoryResult",
    "Rates",
    "ServeResult",
    "StepPart",
    "activation_bytes_per_token_per_layer",
    "attention_core_flops_per_token_per_layer",
    "dual_micro_batch_layer_s",
    "ep_layer_comm_s",
    "expected_padded_rows_per_expert",
    "fewest_gpus",
    "kv_bytes_per_token_per_gpu",
    "local_decode_tokens_per_s",
    "memory_per_gpu",
    "mtp_tokens_per_step",
    "padded_rows",
    "serve",
    "serving_memory",
    "serving_rates",
    "single_batch_overlap_layer_s",
    "tp_all_reduce_s",
    "weight_bytes_per_gpu_by_part",
]


def _fastest_schedule(model: Model, hardware: Hardware, config: ServeConfig) -> ServeResult:
    """``serve`` under each schedule of :data:`OVERLAP_SCHEDULES`: the fastest step (ties: the
    first listed), with every schedule's step time in ``overlap_step_s``."""
    from dataclasses import replace

    tried = [serve(model, hardware, config.replace(overlap=o)) for o in OVERLAP_SCHEDULES]
    best = min(tried, key=lambda r: r.step_s)
    return replace(best, overlap_step_s=tuple((o, r.step_s)
                                              for o, r in zip(OVERLAP_SCHEDULES, tried)))


def _with_mla_decode_rate(rates: Rates, model: Model, hardware: Hardware, config: ServeConfig,
                          *, tp: int) -> Rates:
    """``rates`` with MLA decode (prefill) at its measured kernel's rate (achievable; else as
    given): :func:`~planner.calc.serving.efficiency.mla_decode_flop_per_s`
    (:func:`~planner.calc.serving.rates.with_mla_prefill`)."""
    from dataclasses import replace

    from planner.calc.serving.efficiency import mla_decode_flop_per_s
    from planner.calc.serving.kernels import mla_decode_fixed_s
    from planner.calc.serving.rates import with_mla_prefill

    if config.bound:
        return rates
    if not config.decode:
        return with_mla_prefill(rates, model, hardware, kv_dtype=config.kv_dtype)
    return replace(rates, mla_decode=mla_decode_flop_per_s(model, hardware,
                                                           kv_dtype=config.kv_dtype, tp=tp),
                   mla_decode_fixed_s=float(mla_decode_fixed_s(model, hardware,
                                                               kv_dtype=config.kv_dtype, tp=tp)))


def serve(model: Model, hardware: Hardware, config: ServeConfig | None = None) -> ServeResult:
    """Decode step or prefill of ``model`` on ``config.gpus`` x ``hardware``: its parts (FLOPs,
    bytes, s), step time, TPOT or TTFT (s), tokens/s per GPU and per node, memory per GPU and
    what binds it (config fields named without ``config.``, see
    :class:`~planner.specs.deployment.ServeConfig`).

    decode: ``batch_per_gpu`` sequences per GPU, each with ``context_tokens`` of KV cache; a
    step emits one token per sequence (1 + p + ... with MTP, whose D drafts are verified in the
    same step). prefill: ``batch_per_gpu`` prompt tokens per GPU in prompts of
    ``context_tokens``; TTFT = the time of that batch.
    Formula: each kernel max(F / R, Q / B) at the rates of :func:`serving_rates`
    (:class:`~.kernels.KernelLedger`); step = (dense layers + MoE layers + TP all-reduces)
    · (1 + D / L) + head (:func:`~.step.step_times`), a MoE layer per ``overlap``: dual
    (:func:`dual_micro_batch_layer_s`, two micro-batches each re-reading the weights; in decode
    only with a sequence per micro-batch, else as none), single
    (:func:`single_batch_overlap_layer_s`), none (all in sequence) or auto (the default: each
    of the three, the fastest step kept, every one's time in ``overlap_step_s``); TPOT = step / n and
    tokens/s per GPU = B · n / step, n the tokens per step (:func:`mtp_tokens_per_step`).
    Ref: V3R §3.4 (deployment, dual micro-batches, shared experts routed in decode); P §2.3
    (EP, MTP); the module docstrings of :mod:`planner.calc.serving`.
    Convention: EP traffic (:func:`ep_layer_comm_s`; ``intranode_nvlink``: decode's copies to
    the own node over NVLink) overlaps per ``overlap``, TP all-reduces
    (:func:`tp_all_reduce_s`) never; GEMM rows padded to ``gemm_tile_rows`` (default the
    hardware's ``mma_tile_rows``; ``expert_tile_rows`` for the routed experts alone;
    :func:`padded_rows`, :func:`expected_padded_rows_per_expert`; not with ``bound``);
    ``shared_experts`` "routed" dispatches the shared expert like a routed one, "local"
    computes it beside attention; ``expert_balance`` (:mod:`planner.calc.imbalance`) sets the
    hottest EP rank's load, whose expert rows, EP buffers and traffic set the layer's pace.
    Example: DeepSeek-V3 decode, 64 sequences per GPU of 4,096 tokens on 320 x H800, EP 320,
    dual micro-batches, eplb (hottest rank 1.218 x the mean): compute 26.7 ms and EP traffic
    19.7 ms per step, step 32.0 ms: TPOT 32.0 ms, 64 / 0.032 = 2,000 tokens/s per GPU, 16,003
    per 8-GPU node; bound by HBM bandwidth in the attention projections.
    """
    from planner.specs.model import MoEFFN

    config = ServeConfig() if config is None else config
    if config.overlap == "auto":
        return _fastest_schedule(model, hardware, config)
    layout = deployment_layout(model, hardware, config)
    memory = serving_memory(model, hardware, config, ep=layout.ep, tp=layout.tp)
    shape = step_shape(model, hardware, config, layout, memory)
    rates = serving_rates(hardware, phase=config.phase, weights_dtype=config.weights_dtype,
                          compute_dtype=config.compute_dtype,
                          attention_dtype=config.attention_dtype, bound=config.bound,
                          rows=shape.rows_per_micro_batch * shape.tp,
                          expert_rows=shape.rows_per_expert or None)
    rates = _with_mla_decode_rate(rates, model, hardware, config, tp=layout.tp)
    ledger = KernelLedger()
    times = step_times(ledger, model, hardware, config, layout, shape, rates)
    kernels = ledger.parts()
    compute_s = sum(part.time_s for part in kernels)
    bottleneck = step_bottleneck(kernels, compute_s=compute_s,
                                 ep_communication_s=times.ep_communication_s,
                                 ep_link=times.ep_link, tp_all_reduce_s=times.tp_all_reduce_s,
                                 tp_link=times.tp_link)
    throughput = step_throughput(decode=config.decode, step_s=times.step_s,
                                 batch_per_gpu=config.batch_per_gpu,
                                 tokens=shape.tokens_per_step,
                                 mtp_acceptance=config.mtp_acceptance, mtp_depth=shape.mtp_depth)
    has_shared_experts = isinstance(model.ffn, MoEFFN) and model.ffn.num_shared_experts
    return ServeResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label,
        phase=config.phase, basis=rates.basis, gpus=layout.gpus, ep=layout.ep, tp=layout.tp,
        batch_per_gpu=config.batch_per_gpu, context_tokens=config.context_tokens,
        micro_batches=shape.micro_batches,
        shared_experts=config.shared_experts if has_shared_experts else "none",
        expert_balance=config.expert_balance if layout.communicates else "none",
        hottest_rank_load=shape.rank_load, parts=tuple(kernels + times.network_parts()),
        compute_s=compute_s, communication_s=bottleneck.communication_s,
        overlap=shape.overlap if layout.communicates else "none",
        gemm_tile_rows=shape.gemm_tile_rows,
        expert_tile_rows=shape.expert_tile_rows if layout.moe else None,
        step_s=times.step_s, tokens_per_step=throughput.tokens_per_step,
        tpot_s=throughput.tpot_s, ttft_s=throughput.ttft_s,
        decode_tokens_per_s=throughput.decode_tokens_per_s,
        tokens_per_s_per_gpu=throughput.tokens_per_s_per_gpu,
        tokens_per_s_per_node=throughput.tokens_per_s_per_gpu * hardware.scale_up_domain_gpus,
        memory=memory, bottleneck=bottleneck, tp_chosen=layout.tp_chosen)
