"""The expert-parallel all-to-all of a training micro-batch and how much of it a schedule
hides: dispatch + combine per MoE layer (node-limited routing, NVLink forwarding), the
chunks DualPipe(V) runs without a partner chunk, whose all-to-all nothing hides; and the
schedule's pipeline bubble.

Ref: V3R §3.2.1-3.2.2 (DualPipe overlaps a forward chunk's all-to-all with a backward chunk's
computation and vice versa; node-limited routing to at most 4 nodes, IB then NVLink
forwarding); github.com/deepseek-ai/DualPipe ``dualpipe/dualpipe.py`` and ``dualpipev.py``
``step()`` (which chunks run overlapped: ``_forward_backward_chunk``, and which alone:
``_forward_chunk`` / ``_backward_chunk``); planner.calc.routing (distinct nodes a token reaches).
Convention: a chunk run alone exposes its whole all-to-all (its MoE layers wait for their
combine); a chunk in an overlapped pair exposes what the pair's computation does not cover,
as :mod:`planner.calc.train.step` counts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from planner.calc.collectives import ring_all_gather_time_s, ring_all_reduce_time_s
from planner.calc.pipeline import (
    DUALPIPE_W_CHUNKS, ZB1P_W_CHUNKS, bubble_1f1b_s, bubble_dualpipe_s, bubble_zb1p_s,
)
from planner.calc.train.recipe import RECIPES, TRAIN_SCHEDULES
from planner.calc.train.shape import TrainShape

if TYPE_CHECKING:
    from planner.calc.train.rates import TrainRates

#: DualPipe (``dualpipe.py`` ``step()``, p ranks, half-rank r = min(rank, p − 1 − rank)) runs
#: forward chunks alone in its steps 1-3 (2(p/2 − r − 1) + 2(r + 1) + (p/2 − r − 1)) and as
#: many backward chunks alone in steps 3, 5, 6 and 7: 3·(p/2) − r − 1 of each, one more on a
#: middle rank (r = p/2 − 1), whose first main-step pair is not overlapped either.
#: DualPipeV (``dualpipev.py``, p devices, rank r) the same with p/2 → p: 3p − r − 1 (+ 1 on
#: its last rank), each chunk half of the device's layers a micro-batch passes.
DUALPIPE_ALONE_PER_HALF_RANKS = 3
DUALPIPEV_CHUNKS_PER_MICRO_BATCH = 2


def standalone_chunks(*, schedule, pp, rank):
    """Micro-batches' worth of the forward and backward passes DualPipe(V)'s device of
    half-rank ``rank`` (0: the device holding the ends) runs without a partner chunk (count;
    0 for the other schedules).

    Formula: DualPipe n = 3·(p/2) − r − 1 (+ 1 where r = p/2 − 1), r clipped to p/2 − 1;
    DualPipeV (3·p − r − 1 (+ 1 where r = p − 1)) / 2, r clipped to p − 1.
    Ref: github.com/deepseek-ai/DualPipe ``dualpipe.py`` / ``dualpipev.py`` ``step()``: steps
    1-8, the chunks run by ``_forward_chunk`` and ``_backward_chunk`` outside
    ``_forward_backward_chunk``.
    Convention: counts per step, each a forward and a backward pass of one micro-batch's
    chunk on the device; independent of the number of micro-batches (m ≥ 2p, as ``step()``
    asserts).
    Example: DualPipe, p = 16: an end device 23, rank 1 22, rank 7 17; DualPipeV, p = 8:
    11.5 on the end device.
    """
    sched = np.asarray(schedule)
    pp_f = np.asarray(pp, dtype=float)
    r = np.asarray(rank, dtype=float)
    half = pp_f / 2
    r_dp = np.minimum(r, np.maximum(half - 1, 0.0))
    dual = DUALPIPE_ALONE_PER_HALF_RANKS * half - r_dp - 1 + (r_dp == half - 1)
    r_v = np.minimum(r, np.maximum(pp_f - 1, 0.0))
    v = (DUALPIPE_ALONE_PER_HALF_RANKS * pp_f - r_v - 1 + (r_v == pp_f - 1)) \
        / DUALPIPEV_CHUNKS_PER_MICRO_BATCH
    return np.select([sched == TRAIN_SCHEDULES.index("dualpipe"),
                      sched == TRAIN_SCHEDULES.index("dualpipev")], [dual, v], 0.0)


def overlapped_ep_exposed_s(*, ep_s, compute_s, gemm_s, held_frac):
    """Time an overlapped forward-backward pair adds for its all-to-all (s).

    Formula: with G' = G·h/(1 − h): G' + max(T − W − G', h·max(T − G − G', 0)); T the
    all-to-all's link time, W the pair's compute at full rate, G ⊆ W its persistent GEMMs, h
    the SM share the all-to-all kernels hold. G = 0 gives round three's max(T − W, h·T).
    Ref: V3R §3.2.2 (20 SMs for the training all-to-all); deepseek-ai/profile-data
    ``train.json`` (a DualPipe chunk pair, V3's layout): every FP8 GEMM kernel is launched
    with 112 thread blocks of 384 threads (grids 112×1, 1×112, 2×56) beside DeepEP's internode
    kernels' 20, 132 SMs in all; the flash attention and memory-bound kernels' grids are not
    so bounded (launch grids only, no durations taken); DeepGEMM's ``set_num_sms``.
    Convention: the GEMMs run on the (1 − h) share for the whole pair; the link time covers
    them first and the other compute beside its rest (the most T can hide); DualPipe's chunks
    run alone (warm-up, cool-down) are not in a pair; no all-to-all (T = 0): no SMs held, 0.
    Example: T = 20 ms, W = 100 ms of which G = 70 ms, h = 20/132: 70 × 20/112 = 12.5 ms
    (round five: h·T = 3.0 ms).
    """
    g_held = np.where(np.asarray(ep_s) > 0, gemm_s * held_frac / (1 - held_frac), 0.0)
    return g_held + np.maximum(ep_s - compute_s - g_held,
                               held_frac * np.maximum(ep_s - gemm_s - g_held, 0.0))


def _ep_layer_s(shape: TrainShape, rates, *, tokens, tp, ep):
    """EP dispatch + combine of one micro-batch through one MoE layer, one pass (s): the
    slower of the IB leg (one copy per distinct remote node of the eligible ones) and the
    NVLink leg (one copy per routed expert on another GPU)."""
    from planner.calc.routing import expected_distinct_nodes

    if not shape.experts:
        return np.zeros(np.broadcast(tokens, tp, ep).shape)
    ep = np.asarray(ep)
    nodes = np.maximum(1, np.ceil(ep / rates.domain_gpus))
    k = shape.experts_per_token
    distinct = np.ones(nodes.shape)
    for n in np.unique(nodes):        # one value per distinct node count, not per layout
        eligible = int(min(n, max(1, np.ceil(shape.limited_groups * n / shape.expert_groups))))
        distinct = np.where(nodes == n, expected_distinct_nodes(
            experts_per_token=k, experts_per_node=int(shape.experts // n), num_nodes=eligible),
            distinct)
    per_copy = shape.dispatch_bytes + shape.combine_bytes
    tok = tokens / np.asarray(tp, dtype=float)
    ib = tok * distinct * (nodes - 1) / nodes * per_copy / rates.scale_out
    nvlink = tok * k * (1 - 1 / ep) * per_copy / rates.scale_up
    return np.where(ep > 1, np.maximum(ib, nvlink), 0.0)


def ep_pass_s(shape: TrainShape, rates, *, tokens, tp, ep, layers_dev, ends_share):
    """EP dispatch + combine of one micro-batch through the MoE layers of a device, one pass
    (s): its layers' MoE share and, with its share of the ends, the MTP modules' MoE blocks.

    Formula: t_layer · (layers · MoE share + D · ends share), t_layer the slower of
    T/t · M_remote · (b_d + b_c) / B_IB and T/t · k · (1 − 1/EP) · (b_d + b_c) / B_NVLink.
    Ref: V3R §3.2.2 (node-limited routing, NVLink forwarding), §2.2 (an MTP module is one MoE
    block); planner.calc.routing.expected_distinct_nodes.
    Convention: FP8 dispatch with its scales and DeepEP's metadata, BF16 combine; expected
    distinct nodes of uniform routing over the eligible nodes; 0 for a dense model or EP 1.
    Example: DeepSeek-V3, EP 64 on 8-GPU nodes, 4,096 tokens: 4,096 × 3.175 × 21,744 B /
    40 GB/s = 7.07 ms per MoE layer; DualPipe's end device (2.5 layers a micro-batch, 2 of
    its 5 MoE, and half the MTP module): 7.07 × (2.5 × 0.4 + 0.5) = 10.6 ms per pass.
    """
    moe = shape.moe_layer_share * np.asarray(layers_dev, dtype=float)
    mtp = shape.mtp_depth * np.asarray(ends_share, dtype=float) if shape.experts else 0.0
    return _ep_layer_s(shape, rates, tokens=tokens, tp=tp, ep=ep) * (moe + mtp)


def bubble_s(schedule, *, pp, vpp, f_s, b_s, w_s, m):
    """The schedule's pipeline bubble per step (s).

    Formula: 1F1B (p − 1)(F + B); interleaved ÷ v; ZB1P max((p − 1)(F + B − 2W),
    (p − 1)(F + B − W) − (m − 1)·W); DualPipe (p/2 − 1)(F&B + B − 3W); DualPipeV as DualPipe
    over 2p stages of half chunks; W capped where the schedule cannot hide more; clipped at 0.
    Ref: planner.calc.pipeline (V3R Table 2; the DualPipe README; Qi et al. 2024, arXiv
    2401.10241 §2.1, for ZB1P). ZB-H1 (ZB1P) moves the W passes out of the backward chain
    ((p − 1)·W off the critical path) and fills the drain with delayed W passes (another
    (p − 1)·W): (p − 1)(F + B − 2W), stated for m >= p. With m < p a stage has only m − 1
    W passes to delay behind its last B (the last W follows it), so the drain hides (m − 1)·W
    (the second term; derived here, equal to the first at m = p, to a greedy event simulation
    of the schedule at F = B − W = W for every m, tests/calc/test_train_rules.py).
    Convention: B is the whole backward (W included, V3R's); F&B = F + B (the pair's overlap is
    in the exposed EP term); ``schedule`` an index into TRAIN_SCHEDULES; ``m`` micro-batches.
    Example: DualPipe, p = 16, F + B = 0.3 s, B = 0.2 s, W = 0.05 s: 7 × 0.35 = 2.45 s; ZB1P,
    p = 16, m = 8, F = 1, B = 2, W = 1: max(15, 30 − 7) = 23 s (the step grows with W).
    """
    pp = np.asarray(pp, dtype=float)
    w1 = np.minimum(w_s, (f_s + b_s) / ZB1P_W_CHUNKS)
    zb1p = bubble_zb1p_s(pp=pp, f_s=f_s, b_s=b_s, w_s=w1, num_micro_batches=m)
    w2 = np.minimum(w_s, (f_s + 2 * b_s) / DUALPIPE_W_CHUNKS)
    one = bubble_1f1b_s(pp=pp, f_s=f_s, b_s=b_s)
    options = [one, one / np.maximum(vpp, 1), zb1p,
               bubble_dualpipe_s(pp=pp, fb_s=f_s + b_s, b_s=b_s, w_s=w2),
               bubble_dualpipe_s(pp=2 * pp, fb_s=(f_s + b_s) / 2, b_s=b_s / 2, w_s=w2 / 2)]
    return np.maximum(np.choose(np.asarray(schedule), options), 0.0)


#: The optimizer step's HBM passes per parameter (Megatron-LM's optimizer.step: the gradient
#: norm for clipping, the fused Adam kernel, the copy of the master weights to the working
#: weights, the gradient buffer zeroed for the next step). Adam reads master weight, moments and
#: gradient and writes master weight and moments (2 × (M + O) + G); the copy reads the master
#: weight and writes the working weight (M + W), over the parameters the device updates;
#: the norm reads each gradient held once and zeroing writes it once (2 × G).
ADAM_READS_WRITES = 2
GRADIENT_PASSES = 2


def link_s(rates: TrainRates, group_gpus):
    """(bandwidth, latency) of a group of ``group_gpus`` consecutive ranks.

    Formula: the scale-up link where the group fits the scale-up domain, else scale-out.
    Ref: the hardware spec (``scale_up``, ``scale_out``). Convention: per GPU, bytes/s and s.
    Example: 8 ranks on an 8-GPU H800 node: NVLink 160e9 B/s; 16 ranks: InfiniBand.
    """
    inside = np.asarray(group_gpus) <= rates.domain_gpus
    return (np.where(inside, rates.scale_up, rates.scale_out),
            np.where(inside, rates.scale_up_latency_s, rates.scale_out_latency_s))


def dp_time_s(shape: TrainShape, rates: TrainRates, *, recipe, tp, pp, dp, cp, ep, zero,
               schedule, m, f_s, b_s, overlap, alone=0.0, end=True):
    """(exposed DP communication, optimizer step) per step (s).

    Formula: ZeRO 0 ring all-reduce of the gradients, ZeRO 1-2 reduce-scatter + all-gather
    (ZeRO 3 gathers 2m times), over the dense and the expert data-parallel groups; with
    overlap, what the last backward (ZeRO 3: m(F + B) + the chunks run alone) does not hide;
    optimizer: Adam's HBM traffic over the parameters held.
    Ref: ZeRO (Rajbhandari et al. 2020); Megatron-LM's distributed optimizer.
    Convention: arrays broadcast; ``alone`` the exposed all-to-all of DualPipe's lone chunks;
    the parameters of the device holding the ends (``end``) or of a middle one.
    Example: DeepSeek-V3 on 2,048 H800 (ZeRO 1, DualPipe): 0.458 s exposed, 16.4 ms Adam.
    """
    from planner.calc.train.memory import _device_params

    r = RECIPES[recipe]
    at = dict(shape=shape, tp=tp, pp=pp, ep=ep, schedule=schedule)
    (dense_e, experts_e), (dense_m, experts_m) = (_device_params(**at, end=e) for e in (1, 0))
    dense, experts = np.where(end, dense_e, dense_m), np.where(end, experts_e, experts_m)
    tp_f, dp_f, cp_f = (np.asarray(x, dtype=float) for x in (tp, dp, cp))
    bw, lat = link_s(rates, tp_f * dp_f * cp_f)
    d_ranks = dp_f * cp_f
    e_ranks = np.maximum(1.0, d_ranks * tp_f / np.asarray(ep, dtype=float))
    zero = np.asarray(zero)

    def coll(func, ranks, nbytes):
        return np.where(ranks > 1, func(num_ranks=ranks, bytes_total=nbytes, latency_s=lat,
                                        bandwidth_bytes_per_s=bw), 0.0)

    grads = [(d_ranks, dense), (e_ranks, experts)]
    all_reduce = sum(coll(ring_all_reduce_time_s, n, r.grad_bytes * p) for n, p in grads)
    scatter = sum(coll(ring_all_gather_time_s, n, r.grad_bytes * p) for n, p in grads)
    gather = sum(coll(ring_all_gather_time_s, n, r.weight_bytes * p) for n, p in grads)
    gathers = np.where(zero >= 3, 2 * np.asarray(m, dtype=float), 1.0)
    reduce_s = np.where(zero == 0, all_reduce, scatter)
    gather_s = np.where(zero == 0, 0.0, gathers * gather)
    window_b = np.where(zero >= 3, m * b_s + 2 * alone / 3, b_s)
    window_f = np.where(zero >= 3, m * f_s + alone / 3, f_s)
    exposed = np.where(overlap, np.maximum(reduce_s - window_b, 0.0)
                       + np.maximum(gather_s - window_f, 0.0), reduce_s + gather_s)
    shard = np.where(zero >= 1, d_ranks, 1.0), np.where(zero >= 1, e_ranks, 1.0)
    held = dense / shard[0] + experts / shard[1]
    grad_shard = np.where(zero >= 2, d_ranks, 1.0), np.where(zero >= 2, e_ranks, 1.0)
    grads_held = dense / grad_shard[0] + experts / grad_shard[1]
    traffic = (ADAM_READS_WRITES * (r.master_bytes + r.moment_bytes) + r.grad_bytes
               + r.master_bytes + r.weight_bytes)
    return exposed, (held * traffic + grads_held * GRADIENT_PASSES * r.grad_bytes) / rates.hbm
