"""The time of one serving step: every layer's blocks under the overlap schedule, the EP traffic,
the TP all-reduces, the MTP module and the output head.

Ref: V3R §3.4 (DeepSeek's deployment); P §2.3.3 (MTP); module docstrings of
:mod:`~planner.calc.serving.blocks`, :mod:`~planner.calc.serving.overlap` and
:mod:`~planner.calc.serving.communication`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.serving.blocks import dense_layer_s, moe_blocks, output_head_s
from planner.calc.serving.communication import (
    TP_ALL_REDUCES_PER_LAYER,
    ep_layer_comm_s,
    tp_all_reduce_s,
)
from planner.calc.serving.kernels import KernelLedger, KernelTotals, StepPart
from planner.calc.serving.overlap import moe_layer_s

if TYPE_CHECKING:
    from planner.calc.serving.rates import Rates
    from planner.calc.serving.shape import Layout, StepShape
    from planner.specs.deployment import ServeConfig
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model


@dataclass(frozen=True)
class StepTimes:
    """One step's time and its communication (s), with the links that carry it."""

    step_s: float
    ep_communication_s: float     # dispatch + combine, all MoE layers and micro-batches
    ep_link: str                  # "none" without EP traffic
    tp_all_reduce_s: float        # all TP all-reduces of the step
    tp_link: str                  # "" without TP

    def network_parts(self) -> list[StepPart]:
        """The step's communication as parts (none where it takes no time)."""
        parts = []
        if self.ep_communication_s:
            parts.append(StepPart(f"EP dispatch + combine ({self.ep_link})", 0.0, 0.0,
                                  self.ep_communication_s, "network"))
        if self.tp_all_reduce_s:
            parts.append(StepPart(f"TP all-reduce ({self.tp_link})", 0.0, 0.0,
                                  self.tp_all_reduce_s, "network"))
        return parts


def _dense_layers_s(ledger: KernelLedger, model: Model, shape: StepShape, rates: Rates) -> float:
    """Time of all dense layers of a step, all micro-batches (s)."""
    if not shape.num_dense_layers:
        return 0.0
    count = shape.num_dense_layers * shape.micro_batches
    return count * dense_layer_s(ledger, model, shape, rates, count=count)


def _moe_layers_s(ledger: KernelLedger, model: Model, hardware: Hardware, config: ServeConfig,
                 layout: Layout, shape: StepShape, rates: Rates) -> tuple[float, float, str]:
    """(time (s), EP dispatch + combine (s), EP link) of all MoE layers of a step, all
    micro-batches, under the step's overlap schedule."""
    from planner.specs.model import MoEFFN

    if not shape.num_moe_layers:
        return 0.0, 0.0, "none"
    ffn = model.ffn
    assert isinstance(ffn, MoEFFN)   # a dense model has no MoE layers
    count = shape.num_moe_layers * shape.micro_batches
    blocks = moe_blocks(ledger, model, shape, rates, count=count)
    dispatch_s = combine_s = 0.0
    link = "none"
    if layout.communicates:
        dispatch_s, combine_s, link = ep_layer_comm_s(
            model, hardware, ep=layout.ep, tokens=shape.rows_per_micro_batch,
            up_bytes_per_s=rates.scale_up, out_bytes_per_s=rates.scale_out,
            copies=ffn.num_experts_per_token + (ffn.num_shared_experts
                                                if shape.shared_experts_routed else 0),
            forwarding=(not shape.decode) if config.forwarding is None else config.forwarding,
            rank_load=shape.rank_load, node_load=shape.node_load,
            intranode_nvlink=config.intranode_nvlink)
    layer_s = moe_layer_s(
        overlap=shape.overlap, micro_batches=shape.micro_batches,
        communicates=layout.communicates, compute_share=rates.overlap_compute,
        attention_s=blocks.attention_s, shared_s=blocks.shared_s, experts_s=blocks.experts_s,
        other_s=blocks.other_s, dispatch_s=dispatch_s, combine_s=combine_s)
    ep_s = count * (dispatch_s + combine_s) if layout.communicates else 0.0
    return shape.num_moe_layers * layer_s, ep_s, link


def _tp_all_reduces_s(model: Model, hardware: Hardware, shape: StepShape,
                     rates: Rates) -> tuple[float, str]:
    """(time (s), link) of all TP all-reduces of a step: two per layer per micro-batch."""
    if shape.tp <= 1:
        return 0.0, ""
    per_s, link = tp_all_reduce_s(model, hardware, tp=shape.tp,
                                  tokens=shape.rows_per_micro_batch * shape.tp,
                                  up_bytes_per_s=rates.scale_up,
                                  out_bytes_per_s=rates.scale_out)
    return TP_ALL_REDUCES_PER_LAYER * shape.num_layers * shape.micro_batches * per_s, link


#: The step part of DSA's measured indexer time (:func:`_dsa_indexer_s`).
DSA_INDEXER = "DSA indexer (measured)"


def _dsa_indexer_s(ledger: KernelLedger, model: Model, hardware: Hardware,
                   shape: StepShape) -> float:
    """DSA's lightning indexer over all the step's DSA layers and micro-batches (s), the
    hardware's measured time (:func:`~planner.calc.attention.dsa_indexer_decode_s`, the
    prefill one), added to ``ledger`` as a memory-bound part; 0 for other models or devices
    without the tables. Decode: the TP group's TP·t query rows over C; prefill: its TP·t
    prompt tokens of prompts of C tokens (as the workload model)."""
    from planner.calc.attention import dsa_indexer_decode_s, dsa_indexer_prefill_s

    if not model.num_sparse_layers:
        return 0.0
    rows = shape.rows_per_micro_batch * shape.tp
    one = float(dsa_indexer_decode_s(model, hardware, seqs=rows, context_tokens=shape.context_tokens)
                if shape.decode else dsa_indexer_prefill_s(
                    model, hardware, prefill_tokens=rows, prompt_tokens=shape.context_tokens))
    if one:
        totals = ledger.kernels.setdefault(DSA_INDEXER, KernelTotals())
        totals.time_s += one * shape.micro_batches
        totals.memory_s += one * shape.micro_batches
    return one * shape.micro_batches


def step_times(ledger: KernelLedger, model: Model, hardware: Hardware, config: ServeConfig,
               layout: Layout, shape: StepShape, rates: Rates) -> StepTimes:
    """Time of one step (s): the layers, the TP all-reduces, the MTP module, the output head.

    Formula: step = (dense layers + MoE layers + TP all-reduces + DSA's measured indexer) ·
    (1 + D / L) + head passes:
    the verifying pass over every query token (prefill: each prompt's last token), and each of
    the D MTP draft passes over one token per sequence.
    Ref: P §2.3.3 (MTP modules: about one more layer each); V3R §3.4.
    Convention: the MTP module costs one more layer per depth; kernels add to ``ledger``.
    Example: DeepSeek-V3 decode at 64 sequences per GPU on 320 x H800, dual micro-batches:
    3 dense + 58 MoE layers + the head = 32.0 ms per step.
    """
    dense_s = _dense_layers_s(ledger, model, shape, rates)
    moe_s, ep_s, ep_link = _moe_layers_s(ledger, model, hardware, config, layout, shape, rates)
    tp_s, tp_link = _tp_all_reduces_s(model, hardware, shape, rates)
    step_s = dense_s + moe_s + tp_s + _dsa_indexer_s(ledger, model, hardware, shape)
    if shape.mtp_depth:
        step_s *= 1 + shape.mtp_depth / shape.num_layers
    rows = shape.rows_per_micro_batch
    step_s += output_head_s(ledger, shape, rates, passes=1,
                            rows_per_micro_batch=(rows if shape.decode
                                                  else rows / shape.context_tokens))
    if shape.mtp_depth:
        step_s += output_head_s(ledger, shape, rates, passes=shape.mtp_depth,
                                rows_per_micro_batch=rows / shape.queries_per_sequence)
    return StepTimes(step_s, ep_s, ep_link, tp_s, tp_link)
