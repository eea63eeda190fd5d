"""The blocks of a serving step (attention, dense FFN, MoE, output head): each adds its kernels
to the step's :class:`~planner.calc.serving.kernels.KernelLedger` and returns its time; and the
per-token FLOPs and bytes they are built from.

Ref: FlashMLA (MLA decode FLOPs and bytes); DeepGEMM (grouped GEMMs); SGLang large-scale EP blog
(lmsys.org, 2025-05-05); V3R §3.4.
Conventions: every time is of one run of the block (one layer, one micro-batch) on one GPU;
under attention TP the group's TP·t tokens are split by heads (or vocabulary): each GPU computes
its 1/TP of them, t tokens' worth, reads its share of all TP·t sequences' KV and keeps the whole
residual stream of all of them. GEMM FLOPs are 2 per activated parameter per (padded) row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.serving.kernels import (
    KernelLedger,
    expected_padded_rows_per_expert,
    padded_rows,
)
from planner.calc.serving.rates import prefill_attention_flop_per_s
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.calc.serving.rates import Rates
    from planner.calc.serving.shape import StepShape
    from planner.specs.model import Model

FLOPS_PER_MAC = 2
#: Bytes per activation element: BF16 between kernels, FP8 where a GEMM input is quantized.
ACT_BYTES, ACT_FP8_BYTES = 2, 1
#: Names of the non-GEMM kernels in the step's parts.
ATTENTION_ACTIVATIONS = "norms, RoPE, quantization, residuals"
FFN_ACTIVATIONS = "FFN activations, EP buffers, residuals"


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
    if model.has_attention_pattern:
        from planner.calc.flops import attention_core_flops_per_query

        per_layer = attention_core_flops_per_query(
            model, context_tokens=context_tokens, absorbed=absorbed) / model.num_layers
        return per_layer if getattr(per_layer, "ndim", 0) else float(per_layer)
    from planner.calc.flops import attention_core_flops_per_position

    return (model.attention.num_heads * context_tokens
            * attention_core_flops_per_position(model, absorbed=absorbed))


def kv_read_fraction(model: Model, *, context_tokens, kv_dtype: str) -> float:
    """Bytes a decode query reads from its cache over the bytes an all-full-attention model of
    the same KV layout would read (fraction; 1 when every layer is full attention).

    Formula: R(C) / (C · L · e · b), R from
    :func:`~planner.calc.kv_cache.attention_kv_read_bytes_per_query` (windows cap at W, DSA
    reads top-k plus the indexer's keys, linear layers their state).
    Ref: :mod:`planner.calc.kv_cache`.
    Convention: scales the step's per-layer KV traffic, which counts C tokens in every layer;
    vectorized over ``context_tokens`` (C < 1 counted as 1).
    Example: gpt-oss-120b BF16 at C = 4,096: 155,713,536 / (4,096 × 36 × 2,048) = 0.516.
    """
    if not model.has_attention_pattern:
        return 1.0
    from planner.calc.kv_cache import (attention_kv_read_bytes_per_query,
                                       kv_bytes_per_token_per_layer)

    import numpy as np

    c = np.maximum(np.asarray(context_tokens, dtype=float), 1.0)
    full = c * model.num_layers * kv_bytes_per_token_per_layer(model, kv_dtype=kv_dtype)
    frac = attention_kv_read_bytes_per_query(model, context_tokens=c, kv_dtype=kv_dtype) / full
    return frac if frac.ndim else float(frac)


def kv_cache_fraction(model: Model, *, context_tokens, kv_dtype: str):
    """A sequence's cache over what an all-full-attention model of the same KV layout would
    keep at ``context_tokens`` (fraction; 1 when every layer is full attention; arrays).

    Formula: S(C) / (C · L · e · b), S from
    :func:`~planner.calc.kv_cache.kv_cache_bytes_per_sequence`.
    Ref: :mod:`planner.calc.kv_cache`.
    Convention: scales a memory model that counts C tokens in every layer (the linear state is
    then split over TP as the KV heads are, an over-count where TP exceeds the KV heads).
    Example: gpt-oss-120b BF16 at C = 4,096: 155,713,536 / (4,096 × 36 × 2,048) = 0.516.
    """
    if not model.has_attention_pattern:
        return 1.0
    import numpy as np

    from planner.calc.kv_cache import kv_bytes_per_token_per_layer, kv_cache_bytes_per_sequence

    c = np.maximum(np.asarray(context_tokens, dtype=float), 1.0)
    full = c * model.num_layers * kv_bytes_per_token_per_layer(model, kv_dtype=kv_dtype)
    frac = kv_cache_bytes_per_sequence(model, context_tokens=c, kv_dtype=kv_dtype) / full
    return frac if frac.ndim else float(frac)


def activation_bytes_per_token_per_layer(model: Model, *, block: str, phase: str = "decode",
                                         expert_rows: float = 1.0, tp: int = 1) -> float:
    """HBM bytes the non-GEMM kernels of one layer move per token (bytes): norms, RoPE,
    quantization, activation functions, residual adds, and the EP buffers' copies.

    Formula: with d = hidden size, BF16 = 2 B, FP8 = 1 B (each term read + write):
    - attention block: pre-norm + FP8 quant 3d; q/kv latent norms + quant 3(d_q + d_c + d_R)
      (MLA) and RoPE on the query's rope part 4·n_h·d_R, or RoPE on q and k 4(n_h + n_kv)·d_h
      (GQA); the attention output quantized for o_proj 3·n_h·d_v; residual add 6d. Under TP
      each GPU holds every token of its group, so the norms, the MLA latents (whose
      down-projections are replicated) and the residual are per token, while the per-head
      terms (RoPE on heads, the attention output) are split: / TP.
    - MoE block: pre-norm + quant 3d; per expert copy: received into the EP buffer d, permuted
      into the contiguous layout 2d (prefill only: the masked layout of decode needs none),
      SiLU·mul + quant 5·I_e, the output sent back and received 4d, read by the weighted sum
      2d; the shared expert's SiLU·mul 5·I_s; the sum written 2d; residual add 6d.
    - dense FFN block: pre-norm + quant 3d, SiLU·mul + quant 5·I / TP (the intermediate is
      split by TP), residual add 6d.
    Ref: vLLM deepseek_v2.py (q_a_proj and kv_a_proj_with_mqa are ReplicatedLinear: every TP
    rank computes the latents of all its group's tokens; heads are split); SGLang large-scale EP blog (lmsys.org, 2025-05-05: contiguous-layout permutation in
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
            replicated = latents * (ACT_BYTES + ACT_FP8_BYTES)
        else:
            assert att.num_kv_heads is not None   # set by HeadAttention.__post_init__
            rope = 2 * ACT_BYTES * (att.num_heads + att.num_kv_heads) * att.head_dim
            out = att.num_heads * att.head_dim
            replicated = 0
        per_head = rope + out * (ACT_BYTES + ACT_FP8_BYTES)
        return norm + replicated + per_head / tp + residual
    ffn = model.ffn
    if block == "dense_ffn":
        inter = (ffn.dense_intermediate_size if isinstance(ffn, MoEFFN)
                 else ffn.intermediate_size)
        if inter is None:
            raise UsageError("block 'dense_ffn' of an MoE model without dense layers")
        return norm + glu * inter / tp + residual
    if block != "moe":
        raise UsageError(f"unknown block {block!r}; expected attention, dense_ffn or moe")
    if not isinstance(ffn, MoEFFN):
        raise UsageError("block 'moe' of a dense model")
    assert ffn.shared_expert_intermediate_size is not None   # set by MoEFFN.__post_init__
    copies = ffn.num_experts_per_token
    receive = d * ACT_FP8_BYTES * (1 if phase == "decode" else 3)
    per_copy = receive + glu * ffn.expert_intermediate_size + 3 * d * ACT_BYTES
    shared = ffn.num_shared_experts * glu * ffn.shared_expert_intermediate_size
    return norm + copies * expert_rows * per_copy + shared + d * ACT_BYTES + residual


def attention_block_s(ledger: KernelLedger, model: Model, shape: StepShape, rates: Rates, *,
                      count: int) -> float:
    """Time of one layer's attention block for one micro-batch (s): the core, the projections
    and the non-GEMM kernels, each added ``count`` times to ``ledger``.

    Formula: core t·F_core(C) FLOPs over KV bytes (decode: the TP group's TP·t / (1 + D)
    sequences × C tokens; prefill TP·t tokens) × kv per token per layer; projections
    2·((P_att / L − P_rep) · rows + P_rep · TP · rows) FLOPs over the layer's attention weights
    (P_rep: MLA's down-projections, replicated, run on all of the group's rows); the rest
    TP·t × its bytes.
    Ref: FlashMLA; :func:`attention_core_flops_per_token_per_layer`;
    :func:`activation_bytes_per_token_per_layer`.
    Convention: see the module docstring (TP splits heads; rows padded to tiles); MLA decode
    on a device with a measured ``mla_decode`` table runs at that kernel's rate
    (``rates.mla_decode``), its KV stream inside the measured time; the prefill core at the
    measured kernel's rate for the prompt's length (2 C,
    :func:`~planner.calc.serving.rates.prefill_attention_flop_per_s`), as the workload model.
    Example: DeepSeek-V3 decode on H800, t = 32, C = 4,096: core 32 × 1.141e9 = 36.5e9 FLOPs
    and 32 × 4,096 × 1,152 B = 151e6 B of KV: 59 µs at 623e12 FLOP/s, 50 µs at 3.015e12 B/s.
    """
    rows, tp = shape.rows_per_micro_batch, shape.tp
    core_flops = rows * attention_core_flops_per_token_per_layer(
        model, context_tokens=shape.attention_context_tokens, absorbed=shape.decode)
    core_bytes = ((rows * tp / shape.queries_per_sequence * shape.context_tokens
                   * shape.kv_read_fraction if shape.decode
                   else rows * tp) * shape.kv_bytes_per_token_per_layer)
    mla = rates.mla_decode if shape.decode else None   # the measured kernel's time, all of it
    if mla is not None and core_flops > 0:   # + its fixed time per call, as one rate
        mla = core_flops / (rates.mla_decode_fixed_s + core_flops / mla)
    core_rate = (rates.attention if shape.decode else prefill_attention_flop_per_s(
        rates, prefill_context=shape.attention_context_tokens))   # by prompt length, as workload
    return (ledger.add("attention (core)", flops=core_flops, bytes_moved=core_bytes,
                       flop_per_s=core_rate if mla is None else mla,
                       bytes_per_s=rates.kv_stream if mla is None else math.inf, count=count)
            + ledger.add("attention projections",
                         flops=FLOPS_PER_MAC * (
                             (shape.activated_params["attention"] / shape.num_layers
                              - shape.replicated_attention_params) * shape.gemm_rows
                             + shape.replicated_attention_params * shape.gemm_rows * tp),
                         bytes_moved=shape.weight_bytes_per_layer["attention"],
                         flop_per_s=shape.gemm_rate(rates, "attention"), bytes_per_s=rates.weight_stream, count=count)
            + ledger.add(ATTENTION_ACTIVATIONS, flops=0.0,
                         bytes_moved=rows * tp * shape.activation_bytes_per_token["attention"],
                         flop_per_s=rates.attention, bytes_per_s=rates.kv_stream, count=count))


def dense_layer_s(ledger: KernelLedger, model: Model, shape: StepShape, rates: Rates, *,
                  count: int) -> float:
    """Time of one dense layer for one micro-batch (s): attention, the dense FFN's GEMMs and
    its non-GEMM kernels, each added ``count`` times to ``ledger``.

    Formula: attention block + max(2·P_ffn / L_dense · rows / R_gemm, W_ffn / B_weights)
    + TP·t · a_ffn / B_hbm.
    Ref: :func:`attention_block_s`; :func:`activation_bytes_per_token_per_layer`.
    Convention: see the module docstring.
    Example: DeepSeek-V3's 3 dense layers, decode on H800 at 64 GEMM rows: FFN 2 × 396e6
    parameters per layer × 64 rows = 50.7e9 FLOPs (49 µs) over 396e6 B of FP8 weights
    (172 µs at 2.298e12 B/s): 172 µs, memory bound.
    """
    return (attention_block_s(ledger, model, shape, rates, count=count)
            + ledger.add("dense FFN",
                         flops=(FLOPS_PER_MAC * shape.activated_params["dense_ffn"]
                                / shape.num_dense_layers * shape.gemm_rows),
                         bytes_moved=shape.weight_bytes_per_layer["dense_ffn"],
                         flop_per_s=shape.gemm_rate(rates, "dense_ffn"), bytes_per_s=rates.weight_stream, count=count)
            + ledger.add(FFN_ACTIVATIONS, flops=0.0,
                         bytes_moved=(shape.rows_per_micro_batch * shape.tp
                                      * shape.activation_bytes_per_token["dense_ffn"]),
                         flop_per_s=rates.attention, bytes_per_s=rates.kv_stream, count=count))


@dataclass(frozen=True)
class MoEBlockTimes:
    """Times of one MoE layer's blocks for one micro-batch on one GPU (s)."""

    attention_s: float
    shared_s: float        # shared experts computed beside attention (0 when routed or none)
    experts_s: float       # routed experts' grouped GEMMs (and the shared ones when routed)
    other_s: float         # norms, activations, EP buffers, residuals


def moe_blocks(ledger: KernelLedger, model: Model, shape: StepShape, rates: Rates, *,
               count: int) -> MoEBlockTimes:
    """Times of one MoE layer's compute for one micro-batch (s), each kernel added ``count``
    times to ``ledger``.

    Formula: router 2·E·d · TP·t FLOPs over its E·d BF16 weights (replicated, before the
    dispatch); routed experts 2·P_routed / L_moe · t · λ · pad FLOPs (λ the hottest rank's load,
    pad = E[padded rows] / rows per local expert) over W_routed · (1 − (1 − k/E)^(t·EP))
    bytes: only the local experts some row selects are read (a token picks k distinct experts:
    an expert is missed by all t·EP tokens of the group with probability (1 − k/E)^(t·EP)). Without EP the experts split by
    TP: every GPU runs all of the group's TP·t·k rows on its 1/TP of each expert.
    Ref: DeepGEMM grouped GEMMs;
    :func:`~planner.calc.serving.kernels.expected_padded_rows_per_expert`;
    :mod:`planner.calc.imbalance`.
    Convention: shared experts "routed" run in the grouped GEMM at the experts' rate, "local"
    beside attention at the dense GEMM rate; per-copy EP buffer bytes scale with λ.
    Example: DeepSeek-V3 decode at t = 32, EP 320, k = 8: 1 − (1 − 8/256)^(32·320) ≈ 1, every
    local expert read; 32 × 8 × λ / max(256 / 320, 1) = 256·λ rows per local expert.
    """
    from planner.specs.model import MoEFFN

    ffn, tp, ep, rows = model.ffn, shape.tp, shape.ep, shape.rows_per_micro_batch
    assert isinstance(ffn, MoEFFN), "MoE blocks of a dense model"
    attention_s = attention_block_s(ledger, model, shape, rates, count=count)
    shared_flops = (FLOPS_PER_MAC * shape.activated_params["shared_experts"]
                    / shape.num_moe_layers * shape.gemm_rows)
    shared_bytes = shape.weight_bytes_per_layer["shared_experts"]
    shared_s = 0.0
    if ffn.num_shared_experts and not shape.shared_experts_routed:
        shared_s = ledger.add("shared experts", flops=shared_flops, bytes_moved=shared_bytes,
                              flop_per_s=shape.gemm_rate(rates, "shared_experts"), bytes_per_s=rates.weight_stream,
                              count=count)
    # The router (gate) GEMM in BF16, replicated: every GPU scores all of its group's rows,
    # before the dispatch (on the attention side of the overlap schedules).
    attention_s += ledger.add(
        "router", flops=(FLOPS_PER_MAC * shape.activated_params["router"]
                         / shape.num_moe_layers * shape.gemm_rows * tp),
        bytes_moved=shape.weight_bytes_per_layer["router"], flop_per_s=rates.head,
        bytes_per_s=rates.weight_stream, count=count)
    k = ffn.num_experts_per_token
    moe_tp = tp if ep == 1 else 1
    hit = 1 - (1 - k / ffn.num_routed_experts) ** (rows * ep * moe_tp)
    per_expert = shape.rows_per_expert
    pad = expected_padded_rows_per_expert(mean_rows=per_expert,
                                          tile_rows=shape.expert_tile_rows) / per_expert
    experts_s = ledger.add(
        "routed experts", flops=(FLOPS_PER_MAC * shape.activated_params["routed_experts"]
                                 / shape.num_moe_layers * rows * shape.rank_load * pad),
        bytes_moved=shape.weight_bytes_per_layer["routed_experts"] * hit,
        flop_per_s=rates.experts, bytes_per_s=rates.weight_stream, count=count)
    if shape.shared_experts_routed:
        experts_s += ledger.add("shared experts", flops=shared_flops, bytes_moved=shared_bytes,
                                flop_per_s=rates.experts, bytes_per_s=rates.weight_stream,
                                count=count)
    other_s = ledger.add(FFN_ACTIVATIONS, flops=0.0,
                         bytes_moved=rows * shape.activation_bytes_per_token["moe"],
                         flop_per_s=rates.attention, bytes_per_s=rates.kv_stream, count=count)
    return MoEBlockTimes(attention_s, shared_s, experts_s, other_s)


def output_head_s(ledger: KernelLedger, shape: StepShape, rates: Rates, *,
                  rows_per_micro_batch: float, passes: int) -> float:
    """Time of the output head over ``rows_per_micro_batch`` rows, ``passes`` times per
    micro-batch, all micro-batches (s); vocabulary split by TP.

    Formula: n_mb · passes · max(2·P_head · rows_head / R_head, W_head / B_weights), rows_head
    the group's TP·rows padded to tiles / TP.
    Ref: :func:`~planner.calc.serving.kernels.padded_rows`.
    Convention: prefill scores each prompt's last token only; each MTP draft pass reads the
    (shared) head's weights again.
    Example: DeepSeek-V3 on H800, BF16 head of 926.7e6 parameters (1.853e9 B): one pass at 64
    rows: 2 × 926.7e6 × 64 = 118.6e9 FLOPs (228 µs at 520e12 FLOP/s) over 1.853e9 B (806 µs at
    2.298e12 B/s): 806 µs.
    """
    count = shape.micro_batches * passes
    rows_head = padded_rows(rows=rows_per_micro_batch * shape.tp,
                            tile_rows=shape.gemm_tile_rows) / shape.tp
    return count * ledger.add("output head",
                              flops=FLOPS_PER_MAC * shape.activated_params["output_head"]
                              * rows_head, bytes_moved=shape.head_weight_bytes,
                              flop_per_s=rates.head, bytes_per_s=rates.weight_stream,
                              count=count)
