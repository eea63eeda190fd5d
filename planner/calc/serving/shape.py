"""The shape of one serving step: the deployment's layout (GPUs, EP, TP) and what every kernel of
the step reads (token rows per micro-batch, per-layer weights and activations, tiles, loads).

Ref: V3R §3.4 (DeepSeek's deployment: DP attention, EP for the experts, dual micro-batches);
:mod:`planner.calc.imbalance` (the hottest EP rank's load).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.memory import (
    MemoryResult,
    kv_bytes_per_token_per_gpu,
    memory_per_gpu,
    prefill_sequences_per_gpu,
    tp_candidates,
)
from planner.calc.serving.blocks import activation_bytes_per_token_per_layer
from planner.calc.serving.efficiency import has_measured_tables
from planner.calc.serving.kernels import padded_rows
from planner.calc.serving.overlap import resolve_overlap
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.calc.serving.rates import Rates
    from planner.specs.deployment import ServeConfig
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model


@dataclass(frozen=True)
class Layout:
    """GPUs serving together, the routed experts split over ``ep`` of them, attention tensor
    parallel over ``tp`` (1: data parallel)."""

    gpus: int
    ep: int
    tp: int
    moe: bool
    tp_chosen: bool = False   # TP was not given: the smallest that fits (or, none fitting, the
                              # largest tried)

    @property
    def communicates(self) -> bool:
        """Whether the MoE layers send tokens between EP ranks."""
        return self.moe and self.ep > 1


def serving_memory(model: Model, hardware: Hardware, config: ServeConfig, *, ep: int,
                   tp: int) -> MemoryResult:
    """Memory per GPU of ``config`` at EP ``ep`` and TP ``tp``
    (:func:`~planner.calc.memory.memory_per_gpu`).

    Formula: decode holds B sequences of C tokens per GPU; prefill the prompts of its batch,
    :func:`~planner.calc.memory.prefill_sequences_per_gpu`; with MTP drafting (an acceptance
    given), the model's MTP modules.
    Ref: V3R §2.2 (MTP modules), §3.4 (the deployment).
    Convention: engines load the MTP modules only to draft with them.
    Example: DeepSeek-V3 prefill of 16,384 tokens per GPU in 4,096-token prompts: the KV of 4
    prompts per GPU.
    """
    batch = (config.batch_per_gpu if config.decode
             else prefill_sequences_per_gpu(tokens_per_gpu=config.batch_per_gpu,
                                            prompt_tokens=config.context_tokens, tp=tp))
    mtp_modules = model.mtp_depth if config.decode and config.mtp_acceptance is not None else 0
    return memory_per_gpu(model, hardware, weights_dtype=config.weights_dtype,
                          kv_dtype=config.kv_dtype, ep=ep, tp=tp, batch_per_gpu=batch,
                          context_tokens=config.context_tokens, mtp_modules=mtp_modules)


def deployment_layout(model: Model, hardware: Hardware, config: ServeConfig) -> Layout:
    """The layout ``config`` asks for, with its defaults filled in (count of GPUs, EP, TP).

    Formula: GPUs = one per routed expert (MoE), one scale-up domain (dense), 1 without a
    scale-up domain; EP = the given EP, else all GPUs (MoE), 1 (dense); TP = the given TP, else
    the smallest of :func:`~planner.calc.memory.tp_candidates` whose :func:`serving_memory`
    fits (the largest when none does); EP and TP must divide the GPUs.
    Ref: V3R §3.4 (EP over all the decode GPUs: 320 GPUs, 256 routed experts + redundant).
    Convention: the checks that need only the config run when it is built
    (:class:`~planner.specs.deployment.ServeConfig`); those that need the model run here.
    Example: DeepSeek-V3 (256 routed experts) on H800, nothing given: 256 GPUs, EP 256, TP 1;
    Llama-3.1-70B (dense) on H100, 32 sequences per GPU of 4,096 tokens: 8 GPUs (one node), EP
    1, TP 4 (TP 1 and 2 do not fit).
    """
    from planner.specs.model import MoEFFN

    ffn = model.ffn
    moe = isinstance(ffn, MoEFFN)
    gpus = config.gpus
    if gpus is None:
        gpus = (1 if hardware.scale_up is None
                else ffn.num_routed_experts if isinstance(ffn, MoEFFN)
                else hardware.scale_up_domain_gpus)
    ep = (config.ep or gpus) if moe else 1
    tp = config.tp
    if tp is None:
        candidates = tp_candidates(gpus=gpus, domain_gpus=hardware.scale_up_domain_gpus)
        tp = next((t for t in candidates
                   if serving_memory(model, hardware, config, ep=ep, tp=t).fits),
                  candidates[-1])
    if gpus % ep or gpus % tp:
        raise UsageError(f"EP ({ep}) and TP ({tp}) must divide the GPUs ({gpus})")
    return Layout(gpus=gpus, ep=ep, tp=tp, moe=moe, tp_chosen=config.tp is None)


@dataclass(frozen=True)
class StepShape:
    """What the kernels of one step read, per GPU (counts, bytes per layer, FLOPs factors)."""

    decode: bool
    ep: int
    tp: int
    num_layers: int
    num_dense_layers: int
    num_moe_layers: int
    mtp_depth: int                  # MTP draft tokens per sequence per step (decode only)
    queries_per_sequence: int       # 1 + the MTP drafts verified in the step
    tokens_per_step: float          # token rows per GPU per step, all micro-batches
    overlap: str                    # the schedule asked for, "none" where dual cannot split
    micro_batches: int
    rows_per_micro_batch: float     # token rows per micro-batch on this GPU (t)
    gemm_rows: float                # t padded to tiles as the group's GEMMs run them
    context_tokens: int
    attention_context_tokens: float  # positions one query attends to (prefill: half the prompt)
    kv_bytes_per_token_per_layer: float
    weight_bytes_per_layer: dict[str, float]   # this GPU's, per part
    head_weight_bytes: float
    activated_params: dict[str, float]         # per token, all layers, per part
    replicated_attention_params: float         # per layer, held whole under TP (MLA's down)
    activation_bytes_per_token: dict[str, float]   # per layer, per block
    gemm_tile_rows: int | None
    expert_tile_rows: int | None
    shared_experts_routed: bool
    bf16_parts: tuple[str, ...]     # matrix parts the checkpoint keeps in BF16 (BF16 GEMMs)
    rank_load: float                # the hottest EP rank's routed rows over the mean
    node_load: float                # the hottest node's NIC traffic over the mean
    rows_per_expert: float = 0.0    # routed rows per local expert on the hottest rank

    def gemm_rate(self, rates: Rates, part: str) -> float:
        """FLOP/s of ``part``'s GEMMs: the BF16 rate where the checkpoint keeps the part in BF16
        (``Model.part_weight_dtypes``), else the weights' precision."""
        return rates.head if part in self.bf16_parts else rates.gemm


def _per_layer_weight_bytes(memory: MemoryResult, *, num_layers: int, num_dense_layers: int,
                           num_moe_layers: int) -> dict[str, float]:
    """Weight bytes per layer of each part on this GPU (bytes): a part's bytes over the layers
    that have it (the output head, read once per step, is not a layer's)."""
    held = memory.weights.as_dict()
    return {"attention": held["attention"] / num_layers,
            "dense_ffn": held["dense_ffn"] / max(num_dense_layers, 1),
            "routed_experts": held["routed_experts"] / max(num_moe_layers, 1),
            "shared_experts": held["shared_experts"] / max(num_moe_layers, 1),
            "router": held["router"] / max(num_moe_layers, 1)}


def _activation_bytes_by_block(model: Model, *, phase: str, num_dense_layers: int,
                              num_moe_layers: int, rank_load: float,
                              tp: int) -> dict[str, float]:
    """HBM bytes per token of its TP group per layer of the non-GEMM kernels of each block the
    model has (:func:`~planner.calc.serving.blocks.activation_bytes_per_token_per_layer`)."""
    act = {"attention": activation_bytes_per_token_per_layer(model, block="attention", tp=tp)}
    if num_dense_layers:
        act["dense_ffn"] = activation_bytes_per_token_per_layer(model, block="dense_ffn", tp=tp)
    if num_moe_layers:
        act["moe"] = activation_bytes_per_token_per_layer(model, block="moe", phase=phase,
                                                          expert_rows=rank_load)
    return act


def step_shape(model: Model, hardware: Hardware, config: ServeConfig, layout: Layout,
               memory: MemoryResult) -> StepShape:
    """The shape of one step of ``config`` on ``layout`` (see :class:`StepShape`).

    Formula: rows per micro-batch t = B · (1 + D) / n_mb in decode (B sequences, D MTP drafts),
    B / n_mb in prefill; a TP group's GEMMs run its TP · t rows padded to tiles, t rows' worth
    per GPU: ⌈TP·t / tile⌉ · tile / TP.
    Ref: V3R §3.4; :func:`~planner.calc.serving.kernels.padded_rows`;
    :func:`~planner.calc.imbalance.hottest_rank_factors`.
    Convention: a tied output head reads the embedding table (one matrix, held once);
    prefill attends to half the prompt on average (causal); tiles not modelled with
    ``bound``; the hottest rank's load from t·k rows per rank, the node's (for the NIC legs)
    over the scale-up domain when EP spans nodes.
    Example: DeepSeek-V3 decode, B = 64 per GPU, EP 320, TP 1, dual micro-batches on H800
    (tile 64): t = 64 / 2 = 32 rows, GEMM rows ⌈32 / 64⌉ · 64 = 64.
    """
    from planner.calc.imbalance import hottest_rank_factors
    from planner.calc.params import attention_replicated_params_per_layer, model_params
    from planner.specs.model import MATRIX_PARTS, MoEFFN

    decode, tp, ep = config.decode, layout.tp, layout.ep
    moe = model.ffn if layout.moe else None
    assert moe is None or isinstance(moe, MoEFFN)   # deployment_layout: layout.moe is an MoE FFN
    num_layers = model.num_layers
    num_dense_layers = moe.num_dense_layers if moe is not None else num_layers
    num_moe_layers = num_layers - num_dense_layers
    depth = 0
    if decode and config.mtp_acceptance is not None:
        depth = model.mtp_depth if config.mtp_depth is None else config.mtp_depth
    queries = 1 + depth
    tokens = config.batch_per_gpu * queries if decode else config.batch_per_gpu
    overlap, micro_batches = resolve_overlap(config.overlap, decode=decode,
                                             batch_per_gpu=config.batch_per_gpu, tp=tp,
                                             communicates=layout.communicates)
    rows = tokens / micro_batches
    domain = hardware.scale_up_domain_gpus
    rank_load, node_load = (hottest_rank_factors(
        config.expert_balance, rows_per_rank=rows * moe.num_experts_per_token, ranks=ep,
        ranks_per_node=domain if hardware.scale_up is not None and ep > domain else ep)
        if moe is not None else (1.0, 1.0))
    # Measured kernel tables over M include the tile padding of small M: not padded again.
    default_tile = None if has_measured_tables(hardware) else hardware.gpu.mma_tile_rows
    tile = None if config.bound else config.gemm_tile_rows or default_tile
    moe_tp = tp if ep == 1 else 1
    per_expert = (rows * moe_tp * moe.num_experts_per_token * rank_load
                  / max(moe.num_routed_experts / ep, 1) if moe is not None else 0.0)
    return StepShape(
        decode=decode, ep=ep, tp=tp, num_layers=num_layers, num_dense_layers=num_dense_layers,
        num_moe_layers=num_moe_layers, mtp_depth=depth, queries_per_sequence=queries,
        tokens_per_step=tokens, overlap=overlap, micro_batches=micro_batches,
        rows_per_micro_batch=rows, gemm_rows=padded_rows(rows=rows * tp, tile_rows=tile) / tp,
        context_tokens=config.context_tokens,
        attention_context_tokens=(config.context_tokens if decode
                                  else config.context_tokens / 2),
        kv_bytes_per_token_per_layer=kv_bytes_per_token_per_gpu(
            model, kv_dtype=config.kv_dtype, tp=tp) / num_layers,
        weight_bytes_per_layer=_per_layer_weight_bytes(
            memory, num_layers=num_layers, num_dense_layers=num_dense_layers,
            num_moe_layers=num_moe_layers),
        head_weight_bytes=memory.weights.as_dict()[
            "embedding" if model.tie_word_embeddings else "output_head"],
        activated_params=model_params(model).activated.as_dict(),
        replicated_attention_params=attention_replicated_params_per_layer(model),
        activation_bytes_per_token=_activation_bytes_by_block(
            model, phase=config.phase, num_dense_layers=num_dense_layers,
            num_moe_layers=num_moe_layers, rank_load=rank_load, tp=tp),
        gemm_tile_rows=tile,
        expert_tile_rows=None if config.bound else config.expert_tile_rows or tile,
        bf16_parts=tuple(part for part in MATRIX_PARTS if config.weights_dtype != "bf16"
                         and model.part_weight_dtype(part, config.weights_dtype) == "bf16"),
        shared_experts_routed=(moe is not None and config.shared_experts == "routed"
                               and moe.num_shared_experts > 0),
        rank_load=rank_load, node_load=node_load, rows_per_expert=per_expert)
