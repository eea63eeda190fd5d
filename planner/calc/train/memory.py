"""Memory per GPU of a training layout, by part: weights, gradients, optimizer states,
activations (cached for the backward, by recompute mode, for the micro-batches a schedule keeps
in flight), output logits, and an allowance for workspaces and fragmentation.

Ref: Megatron-LM ``theoretical_memory_usage.py`` (weights and optimizer: 18 bytes per parameter,
6 + 12/d with the distributed optimizer; in-flight micro-batches min(p, m), interleaving
× (1 + (p − 1)/(p·v))); Korthikanti et al. 2022 §4 (activations, sequence parallelism,
selective recompute); ZeRO (Rajbhandari et al. 2020); the DualPipe README (PP + 1 micro-batches,
2× parameters); V3R §3.2.1.
Convention: the busiest device: ⌈L/p⌉ layers of the model's average layer plus the heavier end
(input embedding; or output head and MTP modules; DualPipe and DualPipeV put both ends on one
device); dense parameters split over t (tensor parallel), routed experts over the EP ranks
(expert tensor parallelism 1); ZeRO shards dense state over d·c ranks and expert state over the
d·c·t/EP expert-data-parallel ranks. Every argument but the model's shape and the recipe may be a
numpy array (a grid of layouts); recompute and schedule as indices into
:data:`~planner.calc.train.recipe.RECOMPUTE_MODES` / ``TRAIN_SCHEDULES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.train.recipe import (
    FRAGMENTATION_FRAC, PARAM_COPIES, RECIPES, RECOMPUTE_MODES, TRAIN_SCHEDULES, WORKSPACE_BYTES,
)
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

    def largest_part(self) -> np.ndarray:
        """Index into MEMORY_PARTS of the largest part at each layout."""
        return np.argmax(np.stack([np.broadcast_to(self.parts[k], self.total_bytes.shape)
                                   for k in MEMORY_PARTS]), axis=0)


def _device_params(shape: TrainShape, *, tp, pp, ep, schedule):
    """(dense, expert) parameters on the busiest device, schedule copies included (count)."""
    tp, pp, ep = (np.asarray(x, dtype=float) for x in (tp, pp, ep))
    layers = np.ceil(shape.num_layers / pp)
    dual = np.asarray(schedule) >= TRAIN_SCHEDULES.index("dualpipe")
    first = shape.embedding_params
    last = shape.head_params + shape.mtp_params
    ends = np.where(dual, first + last, np.maximum(first, last))
    has_mtp_end = np.where(dual, True, last >= first)
    copies = _table(PARAM_COPIES, schedule)
    dense = (copies * layers * shape.layer_params + ends) / tp
    experts = (copies * layers * shape.expert_params
               + np.where(has_mtp_end, shape.mtp_expert_params, 0.0)) / ep
    return dense, experts


def _state_bytes(shape: TrainShape, *, recipe: str, tp, pp, dp, cp, ep, zero, schedule):
    """(weights, gradients, optimizer) bytes on the busiest device."""
    r = RECIPES[recipe]
    dense, experts = _device_params(shape, tp=tp, pp=pp, ep=ep, schedule=schedule)
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

    Formula: weights W·P, gradients G·P, optimizer (M + O)·P with P the busiest device's
    parameters (× schedule copies, ÷ the ZeRO shard where the stage shards them); activations
    a(mode)·T·⌈L/p⌉·n_flight (T = b·s/c tokens, plus the MTP modules' layers where that device
    holds them); logits 4·V/t·T; buffers 2 GiB + 5% of the rest; fits: total <= usable HBM.
    Ref: see the module docstring.
    Convention: see the module docstring; W, G, M, O from the recipe (bf16: 2, 4, 4, 8).
    Example: GPT-3 175B, t = 8, p = 8, d = 1, ZeRO 0, bf16: ⌈96/8⌉ = 12 layers × 1.812e9 / 8 +
    V·h/8 = 2.797e9 parameters × 18 B = 50.3e9 bytes of weights, gradients and optimizer.
    """
    weights, grads, optimizer = _state_bytes(shape, recipe=recipe, tp=tp, pp=pp, dp=dp, cp=cp,
                                             ep=ep, zero=zero, schedule=schedule)
    per_token = activation_bytes_per_token_layer(
        shape, recompute=recompute, tp=tp, cp=cp, seq_len=seq_len,
        sequence_parallel=sequence_parallel, flash_attention=flash_attention)
    tokens = np.asarray(micro_batch, dtype=float) * seq_len / np.asarray(cp, dtype=float)
    pp_f = np.asarray(pp, dtype=float)
    layers = np.ceil(shape.num_layers / pp_f) + shape.mtp_depth
    flight = in_flight_micro_batches(schedule=schedule, pp=pp, vpp=vpp,
                                     num_micro_batches=num_micro_batches)
    activations = per_token * tokens * layers * flight
    logits = LOGIT_BYTES * shape.vocab_size / np.asarray(tp, dtype=float) * tokens
    held = weights + grads + optimizer + activations + logits
    buffers = WORKSPACE_BYTES + FRAGMENTATION_FRAC * held
    total = held + buffers
    parts = dict(zip(MEMORY_PARTS, (weights, grads, optimizer, activations, logits, buffers)))
    return TrainMemory(parts=parts, total_bytes=np.asarray(total), capacity_bytes=capacity_bytes,
                       fits=np.asarray(total <= capacity_bytes))
