"""Step time of a training layout, by part: compute (GEMMs and attention at the kernel
efficiencies of the hardware spec), memory-bound elementwise work, recomputation, tensor-,
context-, expert-, pipeline- and data-parallel communication as far as it is exposed, the
pipeline bubble of the schedule, and the optimizer step.

Ref: Narayanan et al. SC'21 §3 (1F1B bubble (p − 1)/m, interleaved ÷ v; TP all-reduces, PP
point-to-point with scatter-gather); Korthikanti et al. 2022 §4.2-5 (sequence parallelism:
all-gather + reduce-scatter; selective recompute of the core attention); V3R §3.2 (DualPipe
hides the EP all-to-all and PP communication; node-limited routing with NVLink forwarding);
planner.calc.pipeline (the schedules' bubbles), planner.calc.collectives (ring alpha-beta
costs), planner.calc.routing (distinct nodes a token reaches).
Convention: the busiest device sets the pace: L/p layers plus the output head (and MTP modules)
each micro-batch (under DualPipe(V), whose stages count the ends as blocks, the slower of a
middle device and the end device, which carries half the head and MTP per micro-batch);
backward = 2 × forward FLOPs, of which the weight gradients W = 1 × forward (their GEMMs at the
spec's wgrad rates where it gives them: DeepGEMM's wgrad kernels on H800); memory-bound
kernels (norms, residual adds, activations, FP8 casts, MoE permutes, the loss, the unfused
attention core's s² score traffic) one by one at HBM speed as :mod:`planner.calc.train.kernels`
counts them; attention without a fused kernel computes the full s² scores; overlap per schedule
as :mod:`planner.calc.train.recipe` states; latencies from the hardware spec. EP: dispatch +
combine forward, the same bytes backward (again with full recompute), through the device's MoE
layers and its share of the MTP blocks (:mod:`planner.calc.train.overlap`); under DualPipe an
overlapped pair's all-to-all hides behind its compute, whose GEMMs run on the SMs its kernels
leave (h = (1 − s)·20/24: V3R §3.2.2's 20 of the spec's 24); chunks run alone expose it all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.collectives import ring_all_gather_time_s, ring_all_reduce_time_s
from planner.calc.pipeline import BACKWARD_TO_FORWARD, WEIGHT_BACKWARD_TO_FORWARD
from planner.calc.train.kernels import grad_accumulation_s
from planner.calc.train.kernels import unfused_attention_s as _unfused_attention_s
from planner.calc.train.overlap import bubble_s as _bubble_s
from planner.calc.train.overlap import (
    dp_time_s, ep_pass_s, link_s, overlapped_ep_exposed_s, standalone_chunks,
)
from planner.calc.train.rates import TrainRates, gemm_per_token_s, wgrad_extra_per_token_s
from planner.calc.train.recipe import (
    DEEPEP_NORMAL_COMM_SMS, DP_OVERLAP, EP_OVERLAP, EP_PASSES, EP_PASSES_FULL_RECOMPUTE,
    FULL_RECOMPUTE, PP_OVERLAP, SELECTIVE_RECOMPUTE, TRAIN_SCHEDULES, TRAINING_COMM_SMS,
)
from planner.calc.train.shape import ACT_BYTES, TrainShape

#: Parts of the step time, in the order tables show them.
STEP_PARTS = ("compute", "elementwise", "recompute", "tp_comm", "cp_comm", "ep_comm",
              "pp_comm", "bubble", "dp_comm", "optimizer")
#: FlashAttention's causal kernels skip the key blocks above the diagonal and compute the
#: diagonal's blocks whole (tiles of 128 query rows: FA2 arXiv 2307.08691, FA3 2407.08608):
#: (1 + 128/s)/(1 + 1/s) of the exact-causal FLOPs.
FLASH_CAUSAL_BLOCK_ROWS = 128
#: FlashAttention's backward FLOPs: 5 matmuls (S again, dV, dP, dQ, dK) to the forward's 2.
FLASH_BACKWARD_FLOPS_TO_FORWARD = 2.5
#: Tensor-parallel collectives per layer and direction: attention (gather before QKV, reduce
#: after the output projection) and a dense FFN (the same again); a MoE FFN dispatches instead.
TP_COLLECTIVES_ATTENTION = 2
TP_COLLECTIVES_DENSE_FFN = 2
#: Sequence parallelism gathers the LayerNorm outputs again in the backward (Megatron-LM).
SP_BACKWARD_REGATHERS = 2
#: Without a fused kernel the scores of all s keys are computed (the mask applied after).
UNFUSED_SCORE_FACTOR = 2
#: A point-to-point transfer joins two adjacent pipeline stages (Megatron-LM's rank order puts
#: t, c and d inside a stage, so a stage's neighbour is t·c·d ranks away).
PP_PAIR_STAGES = 2


@dataclass(frozen=True)
class TrainStep:
    """Step time by part (arrays of the layout grid's shape, seconds) and its total."""

    parts: dict
    step_time_s: np.ndarray
    forward_s: np.ndarray       # one micro-batch on the busiest device, exposed comm included
    backward_s: np.ndarray


def _busiest_stage(shape: TrainShape, *, pp, schedule, layer_s, ends_s):
    """(layers, share of the ends) one micro-batch passes through on the device that sets the
    pace (counts): L/p layers and the whole head + MTP (Megatron-LM: the last stage); where the
    ends count as blocks (DualPipe(V)), the slower of a middle device (b blocks) and an end
    device, whose micro-batches alternate between its embedding chunk (b − 1 layers) and its
    head chunk (b − 1 − D layers, the MTP modules and the head): half the ends each (DualPipeV:
    both chunks every micro-batch, so b − 2 − D layers and all of the ends).
    """
    from planner.calc.train.memory import stage_blocks

    blocks, as_blocks = stage_blocks(shape, pp=pp, schedule=schedule)
    # DualPipeV folds the pipeline: every micro-batch passes both of a device's chunks, so the
    # end device runs all of the ends each micro-batch on its b − 2 − D layers.
    v_shape = np.asarray(schedule) == TRAIN_SCHEDULES.index("dualpipev")
    end_layers = np.where(v_shape, np.maximum(blocks - 2 - shape.mtp_depth, 0.0),
                          np.maximum(blocks - 1 - shape.mtp_depth / 2, 0.0))
    end_share = np.where(v_shape, 1.0, 0.5)
    end_binds = end_layers * layer_s + end_share * ends_s >= blocks * layer_s
    layers = np.where(as_blocks, np.where(end_binds, end_layers, blocks),
                      shape.num_layers / np.asarray(pp, dtype=float))
    share = np.where(as_blocks, np.where(end_binds, end_share, 0.0), 1.0)
    return layers, share


def _per_token_s(parts: dict, rates: TrainRates, *, att_per_flop):
    """(forward time, its attention-core part) per token of FLOPs by part (s): GEMMs at the
    recipe's rate, experts at the grouped rate, the router and the output head in BF16 (V3R
    §3.3.1), the attention core at ``att_per_flop`` s per FLOP."""
    def g(key):
        return parts.get(key, 0.0)

    scores = g("attention_scores") * att_per_flop
    return (scores + (g("attention_proj") + g("dense_ffn") + g("shared_experts")) / rates.gemm
            + g("routed_experts") / rates.experts + (g("router") + g("output_head")) / rates.head,
            scores)


def _per_layer_forward_s(shape: TrainShape, rates: TrainRates, *, tokens, tp, flash, seq_len):
    """(forward compute of one layer, its attention-core part, the head + MTP forward, the
    MTP modules' attention-core part) of one micro-batch (s)."""
    f = shape.forward_flops
    att_rate = rates.attention if flash else rates.attention_unfused
    # A flash kernel computes the causal diagonal's key blocks whole; unfused, all s keys.
    causal = ((1 + FLASH_CAUSAL_BLOCK_ROWS / seq_len) / (1 + 1 / seq_len) if flash
              else UNFUSED_SCORE_FACTOR)
    per_token, scores = _per_token_s({k: v for k, v in f.items() if k != "output_head"}, rates,
                                     att_per_flop=causal / att_rate)
    per_layer = tokens / np.asarray(tp, dtype=float) / shape.num_layers
    # The head and the MTP modules (V3R §2.2: a MoE block, the projection M, the BF16 head)
    mtp, mtp_scores = _per_token_s(shape.mtp_forward_flops, rates, att_per_flop=causal / att_rate)
    tok = tokens / np.asarray(tp, dtype=float)
    ends = tok * (f["output_head"] / rates.head + mtp)
    return per_token * per_layer, scores * per_layer, ends, tok * mtp_scores


def _kernel_s(shape: TrainShape, rates: TrainRates, *, tokens, tp, layers_dev, ends_share,
              sequence_parallel):
    """(layers' forward, loss forward, backward, selective recompute) time of the memory-bound
    kernels of one micro-batch on the busiest device (s): :mod:`planner.calc.train.kernels`
    bytes over its layers (and the MTP modules' blocks it carries, MoE blocks on a MoE model
    whatever its own layers' mix, V3R §2.2), and the loss over the vocabulary (V/t per token,
    once per head: output and MTP) for the share of the ends the device carries (full
    recompute reruns the layers' kernels, not the loss's)."""
    k = shape.kernels
    k_mtp = shape.ffn_variants[0].kernels if shape.ffn_variants else k
    tp_f = np.asarray(tp, dtype=float)
    h_div = np.where(np.asarray(sequence_parallel), tp_f, 1.0)
    # the device's layers and, with its share of the ends, the MTP modules' blocks
    per_layer, per_mtp = (tokens * n / rates.hbm for n in (layers_dev, shape.mtp_depth * ends_share))

    def layer(hsized, sharded):
        return sum((getattr(kb, hsized) / h_div + getattr(kb, sharded) / tp_f) * n
                   for kb, n in ((k, per_layer), (k_mtp, per_mtp)))

    logits = tokens * (1 + shape.mtp_depth) * shape.vocab_size / tp_f * ends_share / rates.hbm
    return (layer("forward_hsized", "forward_sharded"), k.loss_forward * logits,
            layer("backward_hsized", "backward_sharded") + k.loss_backward * logits,
            layer("selective_hsized", "selective_sharded"))


def _fbw(mb: dict):
    """(F, B, W) of one micro-batch from its pieces (s): B the whole backward, W in it."""
    f_s = mb["compute_f"] + mb["elem_f"] + mb["tp_f"] + mb["cp"] / 3 + mb["ep"] / 3
    b_s = (BACKWARD_TO_FORWARD * mb["compute_f"] + mb["wgrad_x"] + mb["att_b"] + mb["elem_b"]
           + mb["tp_b"] + mb["recompute"] + 2 * mb["cp"] / 3 + 2 * mb["ep"] / 3)
    return f_s, b_s, WEIGHT_BACKWARD_TO_FORWARD * mb["compute_f"] + mb["wgrad_x"]


def _device_s(shape: TrainShape, rates: TrainRates, *, pp, schedule, m, rank, rest=None, **kw):
    """(pieces of one micro-batch, time in the step) of DualPipe(V)'s device of half-rank
    ``rank`` (0: the end device) on its own layers (their MoE share; the end device's first
    are dense): the step's time its m micro-batches and the chunks it runs alone take, plus
    ``rest(pieces, alone)`` (its bubble and exposed DP time, from its own F, B, W) (s)."""
    from planner.calc.train.memory import device_moe_share
    from planner.calc.train.shape import with_moe_share

    end = np.asarray(rank) == 0
    # _busiest_stage's end device (the ends weigh all) or a middle one (the layers do)
    layers, share = _busiest_stage(shape, pp=pp, schedule=schedule, layer_s=(~end) * 1.0,
                                   ends_s=end * 1.0)
    dev = with_moe_share(shape, device_moe_share(shape, pp=pp, schedule=schedule, rank=rank))
    layer, scores, ends, ends_scores = _per_layer_forward_s(
        dev, rates, tokens=kw["tokens"], tp=kw["tp"], flash=kw["flash"], seq_len=kw["seq_len"])
    # the layers' and MTP blocks' wgrad beyond the forward's GEMM rate; their GEMMs; the MTP's
    wgrad, gemm, gemm_ends = (kw["tokens"] / np.asarray(kw["tp"], dtype=float) * (
        f(dev.forward_flops, rates) * layers / dev.num_layers * with_layers
        + f(dev.mtp_forward_flops, rates) * share) for f, with_layers in (
        (wgrad_extra_per_token_s, True), (gemm_per_token_s, True), (gemm_per_token_s, False)))
    mb = _pieces_s(dev, rates, comp=layer * layers, scores=scores * layers, ends=ends * share,
                   ends_scores=ends_scores * share, layers_dev=layers, share=share, wgrad=wgrad,
                   gemm=gemm, gemm_ends=gemm_ends, **kw)
    busy = m * ((1 + BACKWARD_TO_FORWARD) * mb["compute_f"] + sum(mb[k] for k in (
        "wgrad_x", "att_b", "elem_f", "elem_b", "recompute", "tp_f", "tp_b", "cp", "ep")))
    alone = standalone_chunks(schedule=schedule, pp=pp, rank=rank) * mb["ep_alone"]
    return mb, busy + alone + (0.0 if rest is None else rest(mb, alone, end))


def _micro_batch_s(shape: TrainShape, rates: TrainRates, **kw):
    """Per micro-batch on the device that sets the pace: where the ends count as blocks
    (DualPipe(V)), the end device or one of the middle ones that can be the slowest
    (:func:`planner.calc.train.memory.middle_ranks`), each timed on its own layers, whichever
    has more time in the step (:func:`_device_s`; the end device on a tie); else the last
    stage: dict of forward/backward pieces (s) and the pace-setting ``rank``."""
    from planner.calc.train.memory import middle_ranks, stage_blocks

    best, best_s = _device_s(shape, rates, rank=0.0, **kw)
    rank = np.zeros(np.shape(best_s))
    _, as_blocks = stage_blocks(shape, pp=kw["pp"], schedule=kw["schedule"])
    tried: list = []
    for r in middle_ranks(shape, pp=kw["pp"], schedule=kw["schedule"]):
        # (the last stage alone where no layout counts the ends as blocks; a rank once)
        if not np.any(as_blocks) or any(np.array_equal(r, x) for x in tried):
            continue
        tried.append(r)
        mb, t = _device_s(shape, rates, rank=r, **kw)
        slower = t > best_s
        best = {k: np.where(slower, v, best[k]) for k, v in mb.items()}
        best_s, rank = np.where(slower, t, best_s), np.where(slower, r, rank)
    return {**best, "rank": rank}


def _pieces_s(shape: TrainShape, rates: TrainRates, *, recompute, tp, cp, ep, tokens, seq_len,
              sequence_parallel, flash, ep_overlap, comp, scores, ends, ends_scores, layers_dev,
              share, wgrad=0.0, gemm=0.0, gemm_ends=0.0):
    """The forward/backward pieces of one micro-batch through ``layers_dev`` layers and
    ``share`` of the ends, given their forward compute, the weight gradients' time beyond
    the forward's rate ``wgrad`` and the forward time of the recipe's GEMMs ``gemm`` (s; the
    MTP blocks' ``gemm_ends``)."""
    tp_f, cp_f = np.asarray(tp, dtype=float), np.asarray(cp, dtype=float)
    comp = comp + ends
    # Memory-bound kernels one by one (kernels.py); an unfused attention core's s² traffic apart
    elem_f, loss_f, elem_b, elem_sel = _kernel_s(shape, rates, tokens=tokens, tp=tp,
                                         layers_dev=layers_dev, ends_share=share,
                                         sequence_parallel=sequence_parallel)
    # FlashAttention's backward: 2.5 × forward FLOPs at its rate (2 in the backward = 2 × forward)
    att_extra_b = np.where(flash, (scores + ends_scores) * (
        FLASH_BACKWARD_FLOPS_TO_FORWARD * rates.attention / rates.attention_backward
        - BACKWARD_TO_FORWARD), 0.0)
    att_f, att_b = _unfused_attention_s(shape, rates, tokens=tokens, tp=tp,
                                        layers_dev=layers_dev, seq_len=seq_len, scores=scores)
    att_f, att_b = np.where(flash, 0.0, att_f), np.where(flash, 0.0, att_b)
    rc = np.asarray(recompute)
    # The MTP modules' blocks the device carries (V3R §2.2: each a transformer block with its
    # attention; a MoE block on a MoE model) beside its own layers.
    mtp_blocks = shape.mtp_depth * np.asarray(share, dtype=float)
    blocks = layers_dev + mtp_blocks
    # Tensor parallel: all-gather / reduce-scatter with SP, else half as many all-reduces.
    bw, lat = link_s(rates, tp_f)
    nbytes = tokens * shape.hidden_size * ACT_BYTES
    mtp_dense_ffn = 0.0 if shape.experts else 1.0
    ag = ring_all_gather_time_s(num_ranks=tp_f, bytes_total=nbytes, latency_s=lat,
                                bandwidth_bytes_per_s=bw)
    ar = ring_all_reduce_time_s(num_ranks=tp_f, bytes_total=nbytes, latency_s=lat,
                                bandwidth_bytes_per_s=bw)
    sp = np.asarray(sequence_parallel)
    one = np.where(sp, ag, ar / 2)        # one collective's time, SP or not

    def tp_over(layers, mtp):
        return one * (TP_COLLECTIVES_ATTENTION * (layers + mtp) + TP_COLLECTIVES_DENSE_FFN * (
            (1 - shape.moe_layer_share) * layers + mtp_dense_ffn * mtp))

    tp_layers, tp_fwd = tp_over(layers_dev, 0.0), tp_over(layers_dev, mtp_blocks)
    tp_bwd = tp_fwd + np.where(sp, SP_BACKWARD_REGATHERS * ag * blocks, 0.0)
    # Context parallel: a ring passes each rank's K and V (c - 1) times, under the attention.
    cbw, clat = link_s(rates, tp_f * cp_f)
    ring = (cp_f - 1) * (clat + tokens * shape.kv_bytes_per_token / tp_f / cbw) * blocks
    cp_fwd = np.maximum(ring - scores - ends_scores, 0.0)
    cp_bwd = np.maximum(BACKWARD_TO_FORWARD * (ring - scores - ends_scores), 0.0)
    ep_one = ep_pass_s(shape, rates, tokens=tokens, tp=tp, ep=ep, layers_dev=layers_dev,
                       ends_share=share)
    # Selective: Megatron-LM's recomputes the attention core (Korthikanti et al. §5; its
    # checkpoint wraps a flash kernel too); V3R §3.2.3's the norms, SwiGLU and MLA's
    # up-projections (the MTP blocks' too); full: the whole forward.
    up_proj = shape.up_projection_flops * tokens / tp_f * blocks / rates.gemm
    core = 0.0 if shape.up_projection_flops else scores + att_f
    selective = core + up_proj + elem_sel
    recomputed = [rc == SELECTIVE_RECOMPUTE, rc == FULL_RECOMPUTE]
    recomp = np.select(recomputed, [selective, comp - ends + elem_f + att_f + tp_layers], 0.0)
    ep_total = ep_one * np.where(rc == FULL_RECOMPUTE, EP_PASSES_FULL_RECOMPUTE, EP_PASSES)
    busy = (1 + BACKWARD_TO_FORWARD) * comp + wgrad
    # Overlapped (DualPipe): the all-to-all's kernels hold h of the SMs (V3R §3.2.2's 20; the
    # spec's share counts DeepEP's 24); the recipe's GEMMs (forward, backward, recomputed:
    # in G and W) run beside them on the rest for the pair (overlap.overlapped_ep_exposed_s).
    held = (1 - rates.overlap_compute) * TRAINING_COMM_SMS / DEEPEP_NORMAL_COMM_SMS
    g = (1 + BACKWARD_TO_FORWARD) * gemm + wgrad + np.select(recomputed, [up_proj,
                                                                  gemm - gemm_ends], 0.0)
    w = busy + np.select(recomputed, [core + up_proj, comp - ends], 0.0)
    ep_exposed = np.where(ep_overlap, overlapped_ep_exposed_s(
        ep_s=ep_total, compute_s=w, gemm_s=g, held_frac=held), ep_total)
    return {"compute_f": comp, "wgrad_x": wgrad + 0.0 * comp, "att_b": att_extra_b,
            "elem_f": elem_f + loss_f + att_f, "elem_b": elem_b + att_b, "recompute": recomp,
            "tp_f": tp_fwd, "tp_b": tp_bwd, "cp": cp_fwd + cp_bwd, "ep": ep_exposed,
            "ep_alone": ep_total - ep_exposed}


def train_step_time(shape: TrainShape, rates: TrainRates, *, recipe: str, tp, pp, dp, cp, ep,
                    vpp, micro_batch, seq_len, num_micro_batches, recompute, zero, schedule,
                    sequence_parallel=True, flash_attention=True, dp_overlap=None,
                    grad_accumulation_fused=True) -> TrainStep:
    """Step time of a training layout, by part (s).

    Formula: step = m·(F + B) + n·(T − T_exposed) + bubble + PP + DP + optimizer (n the chunks
    DualPipe(V) runs alone, T a micro-batch's all-to-all), with F = compute +
    elementwise + TP + CP + EP (exposed) of one micro-batch on the busiest device, B = 2·compute
    + 2·elementwise + TP + recompute + ...; bubble from the schedule (1F1B (p − 1)(F + B),
    interleaved ÷ v, ZB1P, DualPipe(V) as planner.calc.pipeline); PP 2·(m + p − 1)·v transfers
    of b·s·h·2/t bytes unless the schedule hides them; DP: ring all-reduce of the gradients
    (ZeRO 0) or reduce-scatter + all-gather (ZeRO 1-2; ZeRO 3 gathers 2m times); optimizer:
    Adam's traffic at HBM speed; without gradient accumulation fused into the wgrad GEMMs,
    each micro-batch also adds every gradient into its accumulator (W + 2·G bytes each).
    Ref: see the module docstring.
    Convention: see the module docstring; arrays broadcast (a grid of layouts in one call).
    Example: GPT-3 175B on A100 (t = 8, p = 8, v = 3, m = 64, selective): see
    validation/training.yaml and docs/training.md for the parts (compute ~72% of the step).
    """
    tokens = np.asarray(micro_batch, dtype=float) * seq_len / np.asarray(cp, dtype=float)
    sched = np.asarray(schedule)
    m = np.asarray(num_micro_batches, dtype=float)
    pp_f, tp_f = np.asarray(pp, dtype=float), np.asarray(tp, dtype=float)
    overlap = _flag(DP_OVERLAP, sched) if dp_overlap is None else np.asarray(dp_overlap)
    dp_kw = dict(recipe=recipe, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, zero=zero, schedule=sched,
                 m=m, overlap=overlap)

    def rest(piece, alone, end):
        # a candidate pace-setter's bubble and exposed DP time, on its own F, B, W
        f, b, w = _fbw(piece)
        return (_bubble_s(sched, pp=pp_f, vpp=vpp, f_s=f, b_s=b, w_s=w, m=m)
                + dp_time_s(shape, rates, f_s=f, b_s=b, alone=alone, end=end, **dp_kw)[0])

    mb = _micro_batch_s(shape, rates, m=m, recompute=recompute, tp=tp, pp=pp, cp=cp, ep=ep,
                        tokens=tokens, seq_len=seq_len, sequence_parallel=sequence_parallel,
                        flash=flash_attention, ep_overlap=_flag(EP_OVERLAP, sched),
                        schedule=sched, rest=rest)
    if not grad_accumulation_fused:
        mb["elem_b"] = mb["elem_b"] + grad_accumulation_s(shape, rates, recipe=recipe, tp=tp,
                                                           pp=pp, ep=ep, schedule=sched)
    f_s, b_s, w_s = _fbw(mb)
    bubble = _bubble_s(sched, pp=pp_f, vpp=vpp, f_s=f_s, b_s=b_s, w_s=w_s, m=m)
    # Adjacent stages are t·c·d ranks apart: a pair spans 2·t·c·d consecutive ranks.
    bw, lat = link_s(rates, PP_PAIR_STAGES * tp_f * np.asarray(cp, dtype=float)
                    * np.asarray(dp, dtype=float))
    # Narayanan et al. §4.1 scatter/gather: each of the t ranks sends 1/t of the micro-batch's
    # activations over its own NIC; without sequence parallelism the receiver all-gathers
    # them over the scale-up link (with it the stage works on its 1/t of the sequence).
    boundary = tokens * shape.hidden_size * ACT_BYTES
    up_bw, up_lat = link_s(rates, tp_f)
    regather = np.where(np.asarray(sequence_parallel) | (tp_f <= 1), 0.0, ring_all_gather_time_s(
        num_ranks=tp_f, bytes_total=boundary, latency_s=up_lat, bandwidth_bytes_per_s=up_bw))
    p2p = lat + boundary / tp_f / bw + regather
    pp_comm = np.where((pp_f > 1) & ~_flag(PP_OVERLAP, sched),
                       2 * (m + pp_f - 1) * np.maximum(vpp, 1) * p2p, 0.0)
    alone = standalone_chunks(schedule=sched, pp=pp_f, rank=mb["rank"]) * mb["ep_alone"]
    dp_comm, optimizer = dp_time_s(shape, rates, f_s=f_s, b_s=b_s, alone=alone,
                                   end=np.asarray(mb["rank"]) == 0, **dp_kw)
    parts = dict(zip(STEP_PARTS, (
        m * ((1 + BACKWARD_TO_FORWARD) * mb["compute_f"] + mb["wgrad_x"] + mb["att_b"]),
        m * (mb["elem_f"] + mb["elem_b"]),
        m * mb["recompute"], m * (mb["tp_f"] + mb["tp_b"]), m * mb["cp"],
        m * mb["ep"] + alone,
        pp_comm, bubble, dp_comm, optimizer)))
    total = sum(np.asarray(v, dtype=float) for v in parts.values())
    return TrainStep(parts=parts, step_time_s=np.asarray(total), forward_s=f_s, backward_s=b_s)


def _flag(table: dict, schedule) -> np.ndarray:
    return np.asarray([bool(v) for v in table.values()])[np.asarray(schedule)]
