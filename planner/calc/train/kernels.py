"""The memory-bound kernels of a training step, counted one kernel at a time: the HBM bytes
each reads and writes per token of a layer (forward, backward, and the forward kernels
selective recomputation runs again) and per token and vocabulary entry of the loss.

Ref: Megatron-LM (2021-2022) ``megatron/model/fused_layer_norm.py`` (LayerNorm forward reads
x and writes y, backward reads dy and x and writes dx), ``fused_bias_gelu.py`` (bias-GeLU
forward reads and writes the intermediate; backward reads dy and x, writes dx),
``transformer.py`` ``bias_dropout_add_fused_train`` (reads the branch and the residual, writes
the sum and a 1-byte mask; backward reads the gradient and the mask, writes one) and
``tensor_parallel/cross_entropy.py`` (``vocab_parallel_cross_entropy(output.float())``:
the FP32 cast, max, subtract, exp, sum and in-place divide forward; backward the in-place
scale by the loss gradient and the cast back); V3R §3.3 (DeepSeek-V3's FP8 recipe: GEMM inputs
quantized in 1x128 tiles forward, the backward's transposed 128x1 tiles; SwiGLU; MoE routed
copies), deepseek-ai/profile-data ``train.json`` (kernel names only: ``swiglu_forward_with_
weight``, the permute / unpermute of routed copies, the FP8 cast-transpose kernels,
``rotary_kernel`` and ``_copy_tensor_kernel`` beside a flash kernel of head dim 192).
Convention: element passes of a tensor; activations BF16/FP16 (2 bytes), masks 1 byte,
logits FP32 (4); an FP8 tile-quantized element 1 + 4/128 bytes; "h-sized" kernels run on the
hidden-size tensors of the tokens a rank holds (÷ t with sequence parallelism, else repeated
on every TP rank), "sharded" ones on the tensor-parallel intermediate (÷ t). Layout copies
inside attention: MLA's RoPE (q_pe, k_pe) and the concatenation of [nope, rope] into Q and K
of head dim qk (and the split of their gradients backward; again where selective recompute
reruns the up-projections); Megatron's unfused core attention: the output permute
(``.contiguous()``) and, backward, its copy and the QKV split's gradient concatenation. Not
counted: launch gaps between kernels; residual gradients at each block join are summed by
one add kernel. The MoE router's sigmoid, bias, group and expert top-k kernels over the FP32
expert scores are counted (DeepSeek-V3's ``Gate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.calc.pipeline import BACKWARD_TO_FORWARD

if TYPE_CHECKING:
    from planner.calc.train.rates import TrainRates
    from planner.calc.train.shape import TrainShape
    from planner.specs.model import Model

#: Bytes of an activation / gradient element, of a dropout mask, of a logit in the loss.
ELEM_BYTES = 2
MASK_BYTES = 1
LOGIT_BYTES = 4
#: An FP8 element quantized in tiles of 128 with one FP32 scale per tile (V3R §3.3.2).
FP8_TILE_BYTES = 1 + 4 / 128
#: Norm (LayerNorm / RMSNorm): forward reads x and writes y; backward reads dy and x, writes dx.
NORM_FORWARD_PASSES = 2
NORM_BACKWARD_PASSES = 3
#: Residual add: reads the branch and the residual, writes the sum; its backward join sums the
#: two gradients (read 2, write 1). With dropout (Megatron's fused bias-dropout-add) the
#: forward also writes the mask, the backward reads gradient and mask and writes one.
RESIDUAL_FORWARD_PASSES = 3
RESIDUAL_GRAD_JOIN_PASSES = 3
DROPOUT_BACKWARD_PASSES = 2
#: Activation functions over the FFN intermediate I: GeLU reads x, writes y; backward reads dy
#: and x, writes dx. SwiGLU reads gate and up, writes the product; backward reads dy, gate and
#: up, writes dgate and dup.
GELU_FORWARD_PASSES = 2
GELU_BACKWARD_PASSES = 3
SWIGLU_FORWARD_PASSES = 3
SWIGLU_BACKWARD_PASSES = 5
#: A layout copy (RoPE, concatenation, permute): read and write a tensor once.
COPY_PASSES = 2
#: Norms, residual adds (and dropouts) per layer: before / after attention and the FFN.
BLOCKS_PER_LAYER = 2
#: FP8 GEMMs (V3R §3.3): forward each GEMM input is cast BF16 -> FP8 (1x128 tiles); backward
#: each output gradient is cast twice (1x128 for dgrad, transposed 128x1 for wgrad) and each
#: cached FP8 input is re-tiled transposed (read and write one FP8 tile element) for wgrad.
CAST_BYTES = ELEM_BYTES + FP8_TILE_BYTES
GRAD_CASTS = 2
RETILE_BYTES = 2 * FP8_TILE_BYTES
#: V3R §3.3.3: the MoE SwiGLU inputs are cached in FP8 and its output recomputed backward;
#: the backward first casts them back to BF16 (read an FP8 tile element, write 2 bytes;
#: profile-data: ``cast_back_impl``).
DEQUANT_BYTES = FP8_TILE_BYTES + ELEM_BYTES
#: MoE: the permute gathers each routed copy into expert-contiguous rows (read + write a copy),
#: the unpermute reads every copy and writes the weighted sum; backward the same moves of the
#: gradients (BF16).
PERMUTE_PASSES = 2
#: Backward moves the gradients of both the permute and the unpermute (each read + write).
PERMUTE_MOVES_BACKWARD = 2
#: FFN input projections: gated (SwiGLU) FFNs have a gate and an up projection, others one.
GATED_PROJECTIONS = 2
UNGATED_PROJECTIONS = 1
#: vocab_parallel_cross_entropy, bytes per logit: forward the cast (read 2, write 4), max
#: (read 4), subtract (read + write 4), exp (read + write 4), sum (read 4), divide (read +
#: write 4); backward the scale by the loss gradient (read + write 4) and the cast back (read
#: 4, write 2).
LOSS_FORWARD_BYTES = (ELEM_BYTES + LOGIT_BYTES) + 2 * LOGIT_BYTES + 2 * LOGIT_BYTES * 3
LOSS_BACKWARD_BYTES = 2 * LOGIT_BYTES + LOGIT_BYTES + ELEM_BYTES
#: The MoE router over the E FP32 expert scores of a token (deepseek-ai/DeepSeek-V3
#: ``inference/model.py`` ``Gate.forward``, each op one kernel): forward sigmoid (read,
#: write), the selection bias added (read, write), the group scores' top-2 (read), the group
#: mask filled in place (read, write), the top-k (read); backward the gather's gradient
#: scattered into a zeroed E-wide tensor (write) and the sigmoid's backward (read gradient and
#: output, write). The k-wide gather / normalization and DeepEP's dispatch layout (k indices
#: read, a flag per EP rank written) are under 2% of these bytes and not counted.
ROUTER_FORWARD_PASSES = 2 + 2 + 1 + 2 + 1
ROUTER_BACKWARD_PASSES = 1 + 3


@dataclass(frozen=True)
class KernelBytes:
    """HBM bytes per token of an average layer: forward, backward and the forward kernels a
    selective recompute runs again, each split into h-sized and tensor-sharded parts; and the
    loss's bytes per token per vocabulary entry, forward and backward."""

    forward_hsized: float
    forward_sharded: float
    backward_hsized: float
    backward_sharded: float
    selective_hsized: float
    selective_sharded: float
    unfused_forward_sharded: float = 0.0     # unfused core attention's layout copies
    unfused_backward_sharded: float = 0.0
    loss_forward: float = LOSS_FORWARD_BYTES
    loss_backward: float = LOSS_BACKWARD_BYTES


def _linears(model: Model) -> tuple[list, list]:
    """(attention, FFN) lists of FP8 GEMMs as (input width, output width, copies, cast input)
    per token of an average layer; ``cast input`` False where the input arrives in FP8."""
    att: Any = model.attention
    h = model.hidden_size
    if att.kind == "mla":
        q_in = att.q_lora_rank or 0
        latents = q_in + att.kv_lora_rank + att.qk_rope_head_dim
        nope = att.num_heads * (att.qk_nope_head_dim + att.v_head_dim)
        attention = [(h, latents, 1, True), (att.kv_lora_rank, nope, 1, True),
                     (att.num_heads * att.v_head_dim, h, 1, True)]
        if q_in:
            attention.append((q_in, att.num_heads * att.qk_head_dim, 1, True))
    else:
        kv = getattr(att, "num_kv_heads", att.num_heads)
        qkv = (att.num_heads + kv) * att.qk_head_dim + kv * att.v_head_dim
        attention = [(h, qkv, 1, True), (att.num_heads * att.v_head_dim, h, 1, True)]
    return attention, _ffn_linears(model)


def _ffn_linears(model: Model) -> list:
    ffn: Any = model.ffn
    h = model.hidden_size
    up = GATED_PROJECTIONS if ffn.gated else UNGATED_PROJECTIONS
    if not model.is_moe:
        return [(h, up * ffn.intermediate_size, 1, True), (ffn.intermediate_size, h, 1, True)]
    share = model.num_moe_layers / model.num_layers
    k, ie = ffn.num_experts_per_token, ffn.expert_intermediate_size
    shared = ffn.num_shared_experts * (ffn.shared_expert_intermediate_size or 0)
    out = [(h, 0, share, True),    # the one cast before dispatch (the copies arrive in FP8)
           (h, up * ie, share * k, False), (ie, h, share * k, True)]
    if shared:
        out += [(h, up * shared, share, False), (shared, h, share, True)]
    if share < 1:
        di = ffn.dense_intermediate_size
        out += [(h, up * di, 1 - share, True), (di, h, 1 - share, True)]
    return out


def _attention_copies(model: Model) -> tuple[float, float]:
    """(MLA RoPE + Q/K concatenation bytes per token of a layer, each direction and each
    recompute; unfused core attention's output-permute bytes forward) (bytes)."""
    att: Any = model.attention
    heads = att.num_heads
    if att.kind == "mla":
        rope = COPY_PASSES * ELEM_BYTES * (heads + 1) * att.qk_rope_head_dim
        concat = COPY_PASSES * ELEM_BYTES * 2 * heads * att.qk_head_dim      # Q and K
        return float(rope + concat), 0.0
    return 0.0, float(COPY_PASSES * ELEM_BYTES * heads * att.v_head_dim)


def _qkv_width(model: Model) -> float:
    att: Any = model.attention
    kv = getattr(att, "num_kv_heads", att.num_heads)
    return float((att.num_heads + kv) * att.qk_head_dim + kv * att.v_head_dim)


def _fp8_cast_bytes(model: Model) -> tuple[float, float]:
    """(forward, backward) FP8 cast / transpose bytes per token of an average layer."""
    attention, ffn = _linears(model)
    fwd = bwd = 0.0
    for width_in, width_out, copies, cast in attention + ffn:
        fwd += copies * width_in * CAST_BYTES * cast
        bwd += copies * (GRAD_CASTS * width_out * CAST_BYTES + width_in * RETILE_BYTES)
    return fwd, bwd


def _ffn_intermediate(model: Model) -> tuple[float, float, float]:
    """(intermediate elements per token of an average layer through the activation function,
    routed copies of the hidden state per token of an average layer, MoE layer share)."""
    ffn: Any = model.ffn
    if not model.is_moe:
        return float(ffn.intermediate_size), 0.0, 0.0
    share = model.num_moe_layers / model.num_layers
    k = ffn.num_experts_per_token
    shared = ffn.num_shared_experts * (ffn.shared_expert_intermediate_size or 0)
    moe = k * ffn.expert_intermediate_size + shared
    dense = ffn.dense_intermediate_size or 0
    return share * moe + (1 - share) * dense, share * k, share


def kernel_bytes(model: Model, *, recipe: str, dropout: bool,
                 norms_recomputed: bool) -> KernelBytes:
    """HBM bytes of the memory-bound kernels per token of an average layer (bytes).

    Formula: h-sized forward 2·(2 norm + 3 residual (+ mask)) passes of h (+ MLA's latent norms);
    sharded forward act_fwd·I (+ FP8 casts of the GEMM inputs, + MoE permute 2·k·h·b_in and
    unpermute (k + 1)·h·2); backward 2·(3 norm + 3 join (+ 2 dropout + mask)) passes of h,
    act_bwd·I, FP8: 2 casts of each output gradient + a transposed re-tile of each input and
    the cast back of the FP8-cached MoE SwiGLU inputs, MoE
    moves 2·(2k·h)·2; MoE router 8·4·E forward, 4·4·E backward (h-sized); selective
    recompute (norms and SwiGLU recomputed, V3R §3.2.3) the norm and
    SwiGLU forward kernels again; MLA's RoPE and Q/K concatenation 2·2·((n_h + 1)·d_rope +
    2·n_h·d_qk) each way (and again with the up-projections recomputed); unfused attention's
    output permute 2·2·n_h·d_v forward, + the QKV gradient concatenation backward.
    Ref: see the module docstring.
    Convention: see the module docstring; I the FFN intermediate of an average layer, routed
    copies included; casts only under the FP8 recipe.
    Example: GPT-3 175B (h = 12,288, I = 4h, GeLU, dropout, BF16): h-sized forward 2·(2·2 + 3·2
    + 1)·h = 22h = 270,336 bytes, sharded 2·2·4h = 196,608; backward 2·(3·2 + 3·2 + 2·2 +
    1)·h = 34h, sharded 3·2·4h = 294,912.
    """
    att: Any = model.attention
    h = model.hidden_size
    ffn: Any = model.ffn
    inter, copies, moe_share = _ffn_intermediate(model)
    mask = MASK_BYTES if dropout else 0
    latent = (att.q_lora_rank or 0) + att.kv_lora_rank if att.kind == "mla" else 0
    norm_f = ELEM_BYTES * NORM_FORWARD_PASSES * (BLOCKS_PER_LAYER * h + latent)
    norm_b = ELEM_BYTES * NORM_BACKWARD_PASSES * (BLOCKS_PER_LAYER * h + latent)
    fwd_h = norm_f + BLOCKS_PER_LAYER * (ELEM_BYTES * RESIDUAL_FORWARD_PASSES + mask) * h
    bwd_h = norm_b + BLOCKS_PER_LAYER * (ELEM_BYTES * RESIDUAL_GRAD_JOIN_PASSES + mask
                                         + (ELEM_BYTES * DROPOUT_BACKWARD_PASSES
                                            if dropout else 0)) * h
    if model.is_moe:          # the router's kernels, on the tokens a rank holds
        fwd_h += ROUTER_FORWARD_PASSES * LOGIT_BYTES * ffn.num_routed_experts * moe_share
        bwd_h += ROUTER_BACKWARD_PASSES * LOGIT_BYTES * ffn.num_routed_experts * moe_share
    act_f, act_b = ((SWIGLU_FORWARD_PASSES, SWIGLU_BACKWARD_PASSES) if ffn.gated
                    else (GELU_FORWARD_PASSES, GELU_BACKWARD_PASSES))
    fwd_s, bwd_s = ELEM_BYTES * act_f * inter, ELEM_BYTES * act_b * inter
    b_in = FP8_TILE_BYTES if recipe == "fp8" else ELEM_BYTES
    fwd_s += copies * h * (PERMUTE_PASSES * b_in + ELEM_BYTES) + moe_share * ELEM_BYTES * h
    bwd_s += copies * h * PERMUTE_MOVES_BACKWARD * PERMUTE_PASSES * ELEM_BYTES
    if recipe == "fp8":
        cast_f, cast_b = _fp8_cast_bytes(model)
        # the MoE SwiGLU inputs (gate and up of each routed copy and the shared expert)
        swiglu_in = (GATED_PROJECTIONS if ffn.gated else UNGATED_PROJECTIONS) * moe_share * (
            ffn.num_experts_per_token * ffn.expert_intermediate_size
            + ffn.num_shared_experts * (ffn.shared_expert_intermediate_size or 0)
        ) if model.is_moe else 0.0
        fwd_s, bwd_s = fwd_s + cast_f, bwd_s + cast_b + DEQUANT_BYTES * swiglu_in
    mla_copies, permute = _attention_copies(model)
    fwd_s, bwd_s = fwd_s + mla_copies, bwd_s + mla_copies
    sel_h = norm_f if norms_recomputed else 0.0
    sel_s = ELEM_BYTES * act_f * inter if (norms_recomputed and ffn.gated) else 0.0
    sel_s += mla_copies if norms_recomputed else 0.0
    return KernelBytes(forward_hsized=float(fwd_h), forward_sharded=float(fwd_s),
                       backward_hsized=float(bwd_h), backward_sharded=float(bwd_s),
                       selective_hsized=float(sel_h), selective_sharded=float(sel_s),
                       unfused_forward_sharded=permute,
                       unfused_backward_sharded=(permute + COPY_PASSES * ELEM_BYTES
                                                 * _qkv_width(model) if permute else 0.0))


#: Attention without a fused kernel (Megatron-LM 2022: ``CoreAttention`` = baddbmm QK^T,
#: ``FusedScaleMaskSoftmax``, torch dropout, bmm PV; megatron/model/transformer.py and
#: fused_softmax.py): HBM bytes per element of the b·(a/t)·s·(s/c) score matrix (FP16/BF16, a
#: bool dropout mask). The score GEMMs' own traffic (forward: QK^T writes S, PV reads the
#: dropped-out P; backward: dV reads P, dP is written, dQ and dK each read dS) is set against
#: their FLOP time (the slower binds); the softmax (one read, one write) and dropout (read,
#: write, mask) kernels run at HBM speed; backward: dropout reads the gradient and mask and
#: writes one, softmax reads its output and the gradient and writes one.
SCORE_GEMM_BYTES_FORWARD = 2 + 2
SCORE_GEMM_BYTES_BACKWARD = 2 + 2 + 2 + 2
SOFTMAX_BYTES_FORWARD = 2 + 2
SOFTMAX_BYTES_BACKWARD = 2 + 2 + 2
DROPOUT_BYTES_FORWARD = 2 + 2 + 1
DROPOUT_BYTES_BACKWARD = 2 + 1 + 2


def unfused_attention_s(shape: TrainShape, rates: TrainRates, *, tokens, tp, layers_dev, seq_len,
                        scores):
    """(forward, backward) time the unfused attention core adds to its score GEMMs' FLOP time
    on one micro-batch (s): their traffic beyond the FLOP time, the softmax and dropout
    kernels and the layout copies at HBM speed.

    Formula: with N = b·s/c·(a/t)·s·layers score elements, forward max(4N/B − t_scores, 0) +
    (4 + 5)·N/B + copies; backward max(8N/B − 2·t_scores, 0) + (6 + 5)·N/B + copies (B the
    HBM rate; dropout terms only with dropout).
    Ref: Megatron-LM 2022 ``CoreAttention`` and ``FusedScaleMaskSoftmax`` (see the constants).
    Convention: FP16/BF16 scores, a 1-byte dropout mask; ``tokens`` the b·s/c queries a rank
    holds under context parallelism c, each against all s keys; ``scores`` the score GEMMs'
    FLOP time on the same micro-batch and layers (s).
    Example: GPT-3 175B, t = 8, s = 2,048, one layer and sequence: N = 2,048 x 12 x 2,048 =
    50.3M elements, forward softmax + dropout 9 x 50.3M / 1.62e12 B/s = 0.28 ms.
    """
    # ``tokens`` is already the rank's b·s/c queries; each attends to all s keys (the ring
    # brings the other ranks' K and V), so the key length is s, not s/c.
    elements = tokens * shape.num_heads / np.asarray(tp, dtype=float) * seq_len * layers_dev
    drop = DROPOUT_BYTES_FORWARD if shape.dropout else 0
    drop_b = DROPOUT_BYTES_BACKWARD if shape.dropout else 0
    # the output permute's copy (and backward the QKV split's gradient concatenation)
    per_token = tokens / np.asarray(tp, dtype=float) * layers_dev / rates.hbm
    fwd = (np.maximum(SCORE_GEMM_BYTES_FORWARD * elements / rates.hbm - scores, 0.0)
           + (SOFTMAX_BYTES_FORWARD + drop) * elements / rates.hbm
           + shape.kernels.unfused_forward_sharded * per_token)
    bwd = (np.maximum(SCORE_GEMM_BYTES_BACKWARD * elements / rates.hbm
                      - BACKWARD_TO_FORWARD * scores, 0.0)
           + (SOFTMAX_BYTES_BACKWARD + drop_b) * elements / rates.hbm
           + shape.kernels.unfused_backward_sharded * per_token)
    return fwd, bwd


def grad_accumulation_s(shape, rates, *, recipe, tp, pp, ep, schedule):
    """One micro-batch's gradient accumulation on the device that holds the ends, where it is
    a kernel of its own: read the new gradient, read and write the accumulator, over the
    parameters one micro-batch passes (one copy under DualPipe) (s).

    Formula: P_dev / copies · (W + 2·G) / B_HBM.
    Ref: Megatron-LM before gradient-accumulation fusion (2022-02-13, 83b1e42f30): autograd's
    or the DDP hook's ``main_grad.add_(grad)`` every micro-batch.
    Convention: W, G the recipe's weight and gradient bytes; P_dev the end device's
    parameters (planner.calc.train.memory); ``schedule`` an index into TRAIN_SCHEDULES.
    Example: GPT-3 175B on A100, t = 8, p = 12, bf16: the last stage's parameters × 10 B at
    1.62e12 B/s = 11.7 ms.
    """
    from planner.calc.train.memory import _device_params
    from planner.calc.train.recipe import ACCUMULATOR_PASSES, PARAM_COPIES, RECIPES

    r = RECIPES[recipe]
    dense, experts = _device_params(shape, tp=tp, pp=pp, ep=ep, schedule=schedule)
    copies = np.asarray(list(PARAM_COPIES.values()), dtype=float)[np.asarray(schedule)]
    return ((dense + experts) / copies * (r.weight_bytes + ACCUMULATOR_PASSES * r.grad_bytes)
            / rates.hbm)
