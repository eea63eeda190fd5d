"""Serving-engine spec: what a user writes in ``engines/*.yaml`` (TensorRT-LLM, vLLM, SGLang).

An engine changes a workload's numbers in two ways: by how it schedules work (whether prefill
tokens ride in the decode steps, the token budget of a step, CUDA graphs, overlap of the host
with the GPU, how much memory it gives the KV cache), and by host time the GPU model does not
see (per step, per prefill, per request). The scheduling fields are the engine's documented
defaults; the three overheads are plain numeric fields, each with bounds and a ``source`` in
``overheads`` ("uncalibrated default" until a calibration or a published profile sets them).
Calibration changes them with :meth:`Engine.model_copy` (``update={name: value}``), which checks
the bounds again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from planner.errors import UsageError
from planner.specs._types import SPEC_CONFIG, Bool, Frac, NonNegFloat, PosInt, Str

#: The engine's parameters that calibration may change, each bounded in ``overheads``: host
#: time per step, per prefill step and per request, GPU time per layer and per all-reduce peer
#: that the rooflines leave out (s), and the share of the requests in flight a new request
#: queues behind (a fraction).
OVERHEAD_FIELDS = ("decode_step_overhead_s", "prefill_overhead_s", "request_overhead_s",
                   "layer_overhead_s", "all_reduce_peer_overhead_s", "burst_share")


@dataclass(frozen=True, kw_only=True)
class OverheadBound:
    """The range a calibratable parameter may take (its field's unit) and where its value comes
    from."""

    __pydantic_config__ = SPEC_CONFIG
    min: NonNegFloat
    max: NonNegFloat
    source: Str

    def __post_init__(self) -> None:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) exceeds max ({self.max:g})")


@dataclass(frozen=True, kw_only=True)
class Overheads:
    """Bounds and source of each of :data:`OVERHEAD_FIELDS`."""

    __pydantic_config__ = SPEC_CONFIG
    decode_step_overhead_s: OverheadBound
    prefill_overhead_s: OverheadBound
    request_overhead_s: OverheadBound
    layer_overhead_s: OverheadBound
    all_reduce_peer_overhead_s: OverheadBound
    burst_share: OverheadBound


@dataclass(frozen=True, kw_only=True)
class Engine:
    """A serving engine at a version: its scheduling defaults and its host overheads.

    Scheduling: ``mixed_batching`` (prefill tokens ride in the decode steps, in-flight /
    continuous batching with chunked or whole-prompt prefill: TensorRT-LLM, vLLM V1; False:
    prefill batches run between decode steps, SGLang's default without ``--enable-mixed-chunk``);
    ``chunked_prefill`` (a prompt longer than the step's token budget is split over steps;
    False: a prompt is prefilled whole in one step); ``max_num_tokens``, the token budget of
    one step; ``cuda_graphs`` and ``overlap_scheduling`` (the host prepares step n + 1 while the
    GPU runs step n: the per-step host time hides behind the GPU's, else it adds);
    ``gpu_memory_fraction``, the share of the GPU memory the engine takes for weights and KV
    cache (the rest: activations, CUDA graphs, context); ``quantized_kv_cache``, an FP8 KV
    cache with FP8 / FP4 checkpoints (TensorRT-LLM's ModelOpt checkpoints) where the caller
    names none. Kernels are named for the reader.
    Overheads (s): ``decode_step_overhead_s`` host time per step (scheduling, sampling,
    launches), ``prefill_overhead_s`` per step that carries prefill tokens,
    ``request_overhead_s`` per request before its first token (HTTP, tokenizer, admission);
    GPU time the rooflines leave out: ``layer_overhead_s`` per layer per forward pass (kernel
    launch gaps and tails), ``all_reduce_peer_overhead_s`` per TP all-reduce per peer
    (the custom all-reduce's flag synchronisation); ``burst_share`` (a fraction): the share of
    the other requests in flight of its attention rank whose prefill a new request waits
    behind (0: arrivals spread out; 1: a closed-loop benchmark whose requests stay in step);
    ``attention_dp_balance``: with attention DP, the scheduler holds context requests until
    every attention rank has one, so the ranks' prefill lumps share steps (TensorRT-LLM's
    ``attention_dp_config.enable_balance``); False: each rank's lumps fall independently;
    ``attention_dp_timeout_steps``: the most steps a balancing scheduler holds a context
    request waiting for the other ranks' (``timeout_iters``); ``scheduler_recv_interval``: the
    scheduler polls for new requests every N decode steps (SGLang's
    ``--scheduler-recv-interval``; 1: every step); ``max_running_requests``: the most requests
    a replica runs at once, the rest queue (SGLang's ``--max-running-requests``; None: as many
    as the KV pool holds); ``weight_only_moe_table``: the hardware's grouped-GEMM table of the
    engine's own kernel for weight-only 4-bit experts (vLLM: Marlin), where the spec has one
    (None: TensorRT-LLM's ``w4a16``). A run may launch with other values
    (:mod:`planner.specs.run_protocols`).
    """

    __pydantic_config__ = SPEC_CONFIG
    name: Optional[Str] = None
    display_name: Optional[Str] = None
    version: Str
    source: Str
    mixed_batching: Bool
    chunked_prefill: Bool
    max_num_tokens: PosInt
    cuda_graphs: Bool
    overlap_scheduling: Bool
    gpu_memory_fraction: Frac
    quantized_kv_cache: Bool
    attention_kernels: Str
    moe_kernels: Str
    decode_step_overhead_s: NonNegFloat
    prefill_overhead_s: NonNegFloat
    request_overhead_s: NonNegFloat
    layer_overhead_s: NonNegFloat
    all_reduce_peer_overhead_s: NonNegFloat
    burst_share: NonNegFloat
    overheads: Overheads
    notes: Optional[Str] = None
    attention_dp_balance: Bool = False
    attention_dp_timeout_steps: NonNegFloat = 0.0
    scheduler_recv_interval: PosInt = 1
    max_running_requests: Optional[PosInt] = None
    weight_only_moe_table: Optional[Str] = None
    label: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self.display_name or self.name or "engine")
        for name in OVERHEAD_FIELDS:
            bound: OverheadBound = getattr(self.overheads, name)
            value = getattr(self, name)
            if not bound.min <= value <= bound.max:
                raise ValueError(f"{name} = {value:g} is outside its bounds "
                                 f"[{bound.min:g}, {bound.max:g}] (overheads.{name})")

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Engine:
        """A copy with ``update`` applied (pydantic's name, so calibration code reads the same
        on this dataclass); an overhead outside its bounds is a :class:`UsageError`."""
        update = dict(update or {})
        unknown = sorted(set(update) - {f.name for f in dataclasses.fields(self) if f.init})
        if unknown:
            raise UsageError(f"engine {self.label}: unknown field(s) {', '.join(unknown)}")
        try:
            return dataclasses.replace(self, **update)
        except ValueError as exc:
            raise UsageError(f"engine {self.label}: {exc}") from None
