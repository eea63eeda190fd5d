"""Memory per GPU of a training layout, by part: weights, gradients, optimizer states,
activations (cached for the backward, by recompute mode, for the micro-batches a schedule keeps
in flight), output logits, and an allowance for workspaces and fragmentation.

Ref: Megatron-LM ``theoretical_memory_usage.py`` (weights and optimizer: 18 bytes per parameter,
6 + 12/d with the distributed optimizer; in-flight micro-batches min(p, m), interleaving
× (1 + (p − 1)/(p·v))); Korthikanti et al. 2022 §4 (activations, sequence parallelism,
selective recompute); ZeRO (Rajbhandari et al. 2020); the DualPipe README (PP + 1 micro-batches,
2× parameters); V3R §3.2.1.
Convention: the busiest device: ⌈L/p⌉ layers of the model's average layer plus the heavier end
(input embedding; or output head and MTP modules; one stage holds both); under DualPipe(V) the
ends count as blocks of ⌈(L + D + 2)/p⌉-block stages and both sit on one device, so the larger
of that end device and a middle device (whole blocks) is reported (recipe.ENDS_AS_BLOCKS);
dense parameters split over t (tensor parallel), routed experts over the EP ranks
(expert tensor parallelism 1); ZeRO shards dense state over d·c ranks and expert state over the
d·c·t/EP expert-data-parallel ranks. Every argument but the model's shape and the recipe may be a
numpy array (a grid of layouts); recompute and schedule as indices into
:data:`~planner.calc.train.recipe.RECOMPUTE_MODES` / ``TRAIN_SCHEDULES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.train.recipe import (
    END_BLOCKS, ENDS_AS_BLOCKS, FIRST_DEVICE_END_BLOCKS, FRAGMENTATION_FRAC, PARAM_COPIES, RECIPES,
    RECOMPUTE_MODES, TRAIN_SCHEDULES, WORKSPACE_BYTES,
)
from planner.calc.train.overlap import DUALPIPEV_CHUNKS_PER_MICRO_BATCH
from planner.calc.train.shape import TrainShape

#: Logits are materialised in FP32 for the loss (bytes per element).
LOGIT_BYTES = 4
#: Parts of the memory per GPU, in the order tables show them.
MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers")


def _table(values: dict, codes) -> np.ndarray:
    """Look a per-value table up at integer codes (vectorized)."""
    return np.asarray(list(values.values()), dtype=float)[np.asarray(codes)]


def in_flight_micro_batches(*, schedule, pp, vpp, num_micro_batches):
    """Micro-batches of one stage's activations the busiest device keeps (count).

    Formula: 1F1B and ZB1P min(p, m); interleaved min(p, m)·(1 + (p − 1)/(p·v)); DualPipe
    min(p + 1, m); DualPipeV min(p + 1/2, m) (its p + 1 half-stages of 2p).
    Ref: Megatron-LM theoretical_memory_usage.py; DualPipe README (PP + 1).
    Convention: ``schedule`` an index into TRAIN_SCHEDULES; a stage = L/p layers.
    Example: p = 16, m = 120: 1F1B 16; interleaved v = 2: 16 × (1 + 15/32) = 23.5; DualPipe 17.
    """
    p, m = np.asarray(pp, dtype=float), np.asarray(num_micro_batches, dtype=float)
    base = np.minimum(p, m)
    inter = base * (1 + (p - 1) / (p * np.maximum(vpp, 1)))
    dual = np.minimum(p + 1, m)
    dualv = np.minimum(p + 0.5, m)
    return np.choose(np.asarray(schedule), [base, inter, base, dual, dualv])


def activation_bytes_per_token_layer(shape: TrainShape, *, recompute, tp, cp, seq_len,
                                     sequence_parallel=True, flash_attention=True):
    """Activation bytes one GPU caches per token of its micro-batch, per layer (bytes).

    Formula: A_h/(t if SP else 1) + A_t/t + (no fused attention, recompute none) n_h·5·s/c/t,
    A_h, A_t the shape's h-sized and tensor-parallel bytes of the recompute mode.
    Ref: Korthikanti et al. 2022 eq. 1-4 (34 + 5as/h; with SP and TP everything / t).
    Convention: ``recompute`` an index into RECOMPUTE_MODES (selective drops the s² terms).
    Example: GPT-3 175B, t = 8, SP, s = 2,048, no flash, with dropout: none (34h + 5·96·2,048)
    / 8 = (417,792 + 983,040) / 8 = 175,104 bytes; selective 52,224; full 2h/8 = 3,072.
    """
    rc = np.asarray(recompute)
    tp = np.asarray(tp, dtype=float)
    hs = _table({m: shape.act_hsized[m] for m in RECOMPUTE_MODES}, rc)
    sh = _table({m: shape.act_sharded[m] for m in RECOMPUTE_MODES}, rc)
    h_div = np.where(np.asarray(sequence_parallel), tp, 1.0)
    quad = 0.0 if flash_attention else np.where(
        rc == 0, shape.act_softmax_per_key * seq_len / np.asarray(cp, dtype=float) / tp, 0.0)
    return hs / h_div + sh / tp + quad


@dataclass(frozen=True)
class TrainMemory:
    """Bytes per GPU by part (arrays of the layout grid's shape), their total and the fit."""

    parts: dict
    total_bytes: np.ndarray
    capacity_bytes: float
    fits: np.ndarray
    middle_device: np.ndarray     # True where a middle stage, not an end, is the busiest
    device_parts: dict            # "end" / "middle" -> that device's parts (the busiest's above)

    def largest_part(self) -> np.ndarray:
        """Index into MEMORY_PARTS of the largest part at each layout."""
        return np.argmax(np.stack([np.broadcast_to(self.parts[k], self.total_bytes.shape)
                                   for k in MEMORY_PARTS]), axis=0)


def stage_blocks(shape: TrainShape, *, pp, schedule):
    """Blocks (layers, MTP modules and, where the schedule counts them, the two ends) of one
    pipeline stage (count), and whether the schedule counts the ends as blocks.

    Formula: ends as blocks ⌈(L + D + 2)/p⌉, else ⌈L/p⌉ (the ends and MTP added on top).
    Ref: recipe.ENDS_AS_BLOCKS (Megatron-LM's pipeline-split options; V3R §3.2.3;
    deepseek-ai/profile-data: 4 layers per DualPipe chunk).
    Convention: ``schedule`` an index into TRAIN_SCHEDULES.
    Example: DeepSeek-V3 (L = 61, D = 1), p = 16, DualPipe: ⌈64/16⌉ = 4; 1F1B: ⌈61/16⌉ = 4.
    """
    pp = np.asarray(pp, dtype=float)
    as_blocks = _table(ENDS_AS_BLOCKS, schedule).astype(bool)
    blocks = np.where(as_blocks, np.ceil((shape.num_layers + shape.mtp_depth + 2) / pp),
                      np.ceil(shape.num_layers / pp))
    return blocks, as_blocks


def device_moe_share(shape: TrainShape, *, pp, schedule, rank):
    """MoE share of the layers one micro-batch passes on DualPipe(V)'s device of half-rank
    ``rank`` (0: the device holding the ends; 1 ... H − 1 a middle one), where the schedule
    counts the ends as blocks; the model's average elsewhere (fraction).

    Formula: the pipeline's S chunks (DualPipe S = p chunks of b blocks, DualPipeV 2p of b/2)
    hold, in order, c0 = (chunk blocks) − 1 layers after the embedding,
    k = (L − c0 − c1)/(S − 2) layers each in the middle, and c1 = c0 − D before the MTP modules and the head; device r
    holds chunks r and S − 1 − r; with the first L_d layers dense, a chunk of layers [a, a + n)
    has max(a + n − max(a, L_d), 0) MoE layers; q = MoE layers / layers of the two chunks.
    Ref: V3R §3.2.3 (DualPipe: the shallowest layers with the embedding and the deepest with
    the output head on one rank; rank r holds stage r of one direction and stage p − 1 − r of
    the other); github.com/deepseek-ai/DualPipe (``dualpipev.py``: device r the chunks r and
    2p − 1 − r); the model spec's ``ffn.num_dense_layers`` (the first ones).
    Convention: ``rank`` clipped to the middle ranks that exist (H − 1 = p/2 − 1, DualPipeV
    p − 1); the middle layers spread evenly over the middle chunks (k may be fractional).
    Example: DeepSeek-V3, p = 16, DualPipe (b = 4, L_d = 3): the end device holds layers 0-2
    (dense) and 59-60: q = 2/5; rank 1 layers 3-6 and 51-54: q = 1.
    """
    blocks, as_blocks = stage_blocks(shape, pp=pp, schedule=schedule)
    layers, depth = float(shape.num_layers), float(shape.mtp_depth)
    dense = layers - round(shape.moe_layer_share * layers)
    folded = np.asarray(schedule) == TRAIN_SCHEDULES.index("dualpipev")
    chunks = np.where(folded, DUALPIPEV_CHUNKS_PER_MICRO_BATCH, 1.0) * np.asarray(pp, dtype=float)
    first = np.where(folded, blocks / DUALPIPEV_CHUNKS_PER_MICRO_BATCH, blocks) \
        - FIRST_DEVICE_END_BLOCKS
    last = np.maximum(first - depth, 0.0)
    k = np.maximum(layers - first - last, 0.0) / np.maximum(chunks - 2, 1.0)
    r = np.clip(np.asarray(rank, dtype=float), 0.0, np.maximum(chunks / 2 - 1, 0.0))

    def moe(a, n):
        return np.maximum(a + n - np.maximum(a, dense), 0.0)

    a1 = np.where(r == 0, 0.0, first + (r - 1) * k)
    n1 = np.where(r == 0, first, k)
    a2 = np.where(r == 0, layers - last, first + (chunks - 2 - r) * k)
    n2 = np.where(r == 0, last, k)
    held = np.broadcast_to(n1 + n2, np.broadcast(n1, n2, as_blocks).shape)
    q = np.divide(moe(a1, n1) + moe(a2, n2), held, where=held > 0,
                  out=np.full(held.shape, shape.moe_layer_share))
    return np.where(as_blocks, q, shape.moe_layer_share)


def middle_ranks(shape: TrainShape, *, pp, schedule):
    """Half-ranks of the middle devices that can set DualPipe(V)'s pace (tuple of arrays):
    rank 1 (the most chunks run alone), and the first rank whose shallow chunk holds no dense
    layer and the one before it (the most MoE layers); deeper ranks hold the same layers and
    run fewer chunks alone, shallower ones more dense layers (counts).

    Formula: r* = ⌈1 + (L_d − c0)/k⌉ clipped to 1 ... H − 1 (c0, k as
    :func:`device_moe_share`); the candidates 1, r* − 1, r*.
    Ref: :func:`device_moe_share`; planner.calc.train.overlap.standalone_chunks (3·p/2 − r − 1
    chunks alone on half-rank r).
    Convention: a device's time is m·(its micro-batch) + n_r·(a chunk's all-to-all); for
    r ≥ r* the MoE share is 1 and n_r falls with r; below, whole dense chunks give way to MoE
    ones only at r* − 1.
    Example: DeepSeek-V3, p = 16: c0 = 3, k = 4, L_d = 3: r* = 1 (the candidates all rank 1).
    """
    blocks, _ = stage_blocks(shape, pp=pp, schedule=schedule)
    layers = float(shape.num_layers)
    dense = layers - round(shape.moe_layer_share * layers)
    folded = np.asarray(schedule) == TRAIN_SCHEDULES.index("dualpipev")
    chunks = np.where(folded, DUALPIPEV_CHUNKS_PER_MICRO_BATCH, 1.0) * np.asarray(pp, dtype=float)
    first = np.where(folded, blocks / DUALPIPEV_CHUNKS_PER_MICRO_BATCH, blocks) \
        - FIRST_DEVICE_END_BLOCKS
    last = np.maximum(first - float(shape.mtp_depth), 0.0)
    k = np.maximum(layers - first - last, 0.0) / np.maximum(chunks - 2, 1.0)
    top = np.maximum(chunks / 2 - 1, 1.0)
    # chunks of no layer (k = 0): rank 1 (every middle device alike)
    deeper = np.divide(dense - first, k, where=k > 0, out=np.zeros(np.shape(k)))
    star = np.clip(np.ceil(1 + deeper), 1.0, top)
    return np.ones(np.shape(star)), np.maximum(star - 1, 1.0), star


def _device_params(shape: TrainShape, *, tp, pp, ep, schedule, end=True):
    """(dense, expert) parameters on the device holding the ends (``end``) or on a middle
    device, schedule copies included (count)."""
    tp, pp, ep = (np.asarray(x, dtype=float) for x in (tp, pp, ep))
    blocks, as_blocks = stage_blocks(shape, pp=pp, schedule=schedule)
    copies = _table(PARAM_COPIES, schedule)
    if not end:
        return (copies * blocks * shape.layer_params / tp,
                copies * blocks * shape.expert_params / ep)
    dual = np.asarray(schedule) >= TRAIN_SCHEDULES.index("dualpipe")
    both = dual | (pp == 1)               # DualPipe(V) and a single stage hold both ends
    first = shape.embedding_params
    last = shape.head_params + shape.mtp_params
    # one stage of a tied model holds the embedding once (it is the head)
    tied_one = (pp == 1) & shape.tied_head
    ends = np.where(both, first + last - np.where(tied_one, shape.head_params, 0.0),
                    np.maximum(first, last))
    has_mtp_end = np.where(both, True, last >= first)
    # Where the ends count as blocks, the embedding, the head and the MTP modules take the
    # place of layers in the device's stages.
    layers = np.where(as_blocks,
                      np.maximum(copies * blocks - END_BLOCKS - shape.mtp_depth, 0.0),
                      copies * blocks)
    dense = (layers * shape.layer_params + ends) / tp
    experts = (layers * shape.expert_params
               + np.where(has_mtp_end, shape.mtp_expert_params, 0.0)) / ep
    return dense, experts


def _state_bytes(shape: TrainShape, *, recipe: str, tp, pp, dp, cp, ep, zero, schedule,
                 end=True):
    """(weights, gradients, optimizer) bytes on the end device (``end``) or a middle one."""
    r = RECIPES[recipe]
    dense, experts = _device_params(shape, tp=tp, pp=pp, ep=ep, schedule=schedule, end=end)
    zero = np.asarray(zero)
    d_shard = np.asarray(dp, dtype=float) * np.asarray(cp, dtype=float)
    e_shard = np.maximum(1.0, d_shard * np.asarray(tp, dtype=float) / np.asarray(ep, dtype=float))

    def held(sharded):
        return (dense / np.where(sharded, d_shard, 1.0)
                + experts / np.where(sharded, e_shard, 1.0))

    return (r.weight_bytes * held(zero >= 3), r.grad_bytes * held(zero >= 2),
            (r.master_bytes + r.moment_bytes) * held(zero >= 1))


def train_memory_per_gpu(shape: TrainShape, *, capacity_bytes: float, recipe: str, tp, pp,
                         dp, cp, ep, vpp, micro_batch, seq_len, num_micro_batches, recompute,
                         zero, schedule, sequence_parallel=True,
                         flash_attention=True) -> TrainMemory:
    """Memory per GPU of a training layout, by part, and whether it fits (bytes).

    Formula: weights W·P, gradients G·P, optimizer (M + O)·P with P the device's parameters
    (× schedule copies, ÷ the ZeRO shard where the stage shards them); activations
    a(mode)·T·n·n_flight (T = b·s/c tokens; n = ⌈L/p⌉ + D on the end device, or with the ends
    as blocks b − 1 there and b on a middle device); logits 4·V/t·T on the end device; buffers
    2 GiB + 5% of the rest; the busiest of the end and a middle device; fits: total <= usable
    HBM.
    Ref: see the module docstring.
    Convention: see the module docstring; W, G, M, O from the recipe (bf16: 2, 4, 4, 8).
    Example: GPT-3 175B, t = 8, p = 8, d = 1, ZeRO 0, bf16: ⌈96/8⌉ = 12 layers × 1.812e9 / 8 +
    V·h/8 = 2.797e9 parameters × 18 B = 50.3e9 bytes of weights, gradients and optimizer.
    """
    per_token = activation_bytes_per_token_layer(
        shape, recompute=recompute, tp=tp, cp=cp, seq_len=seq_len,
        sequence_parallel=sequence_parallel, flash_attention=flash_attention)
    tokens = np.asarray(micro_batch, dtype=float) * seq_len / np.asarray(cp, dtype=float)
    blocks, as_blocks = stage_blocks(shape, pp=pp, schedule=schedule)
    flight = in_flight_micro_batches(schedule=schedule, pp=pp, vpp=vpp,
                                     num_micro_batches=num_micro_batches)
    per_block = per_token * tokens * flight
    devices = []
    for end in (True, False):
        states = _state_bytes(shape, recipe=recipe, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep,
                              zero=zero, schedule=schedule, end=end)
        if end:    # the first stage's chunks: its layers (the MTP modules where not blocks);
            # DualPipe: mostly the embedding chunk (b − 1); DualPipeV: both chunks (b − 2)
            folded = np.asarray(schedule) == TRAIN_SCHEDULES.index("dualpipev")
            ends_here = np.where(folded, END_BLOCKS, FIRST_DEVICE_END_BLOCKS)
            layers = np.where(as_blocks, np.maximum(blocks - ends_here, 1.0),
                              blocks + shape.mtp_depth)
            logits = LOGIT_BYTES * shape.vocab_size / np.asarray(tp, dtype=float) * tokens
        else:      # a middle stage: whole blocks, no logits
            layers, logits = blocks, np.zeros(np.shape(tokens))
        held = sum(states) + per_block * layers + logits
        buffers = WORKSPACE_BYTES + FRAGMENTATION_FRAC * held
        devices.append((*states, per_block * layers, logits, buffers, held + buffers))
    middle_binds = (devices[1][-1] > devices[0][-1]) & (np.asarray(pp) > 2)
    chosen = [np.where(middle_binds, b, a) for a, b in zip(devices[0], devices[1])]
    parts = dict(zip(MEMORY_PARTS, chosen[:-1]))
    total = chosen[-1]
    return TrainMemory(parts=parts, total_bytes=np.asarray(total), capacity_bytes=capacity_bytes,
                       fits=np.asarray(total <= capacity_bytes),
                       middle_device=np.asarray(middle_binds),
                       device_parts={kind: dict(zip(MEMORY_PARTS, d[:-1]))
                                     for kind, d in zip(("end", "middle"), devices)})
