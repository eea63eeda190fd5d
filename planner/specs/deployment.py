"""The serving deployment: one type that the CLI, scenario files, measured runs and the Python
API all build, with its defaults and checks in one place (:class:`ServeConfig`).

``planner.calc.serving.serve(model, hardware, config)`` takes it. It is a plain frozen
dataclass: constructing one imports neither pydantic nor numpy (the CLI's cold start), and the
checks below run on every construction, whoever builds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from planner import vocab
from planner.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """How a model is served: layout, batch, precisions, schedule.

    Layout: ``gpus`` GPUs serve together (default: one routed expert per GPU for a MoE model, a
    scale-up domain for a dense one, one device without a scale-up domain); routed experts are
    split over ``ep`` of them (default all; 1 splits the experts by TP instead); attention runs
    data parallel or, with ``tp`` > 1, tensor parallel over ``tp`` GPUs (None: the smallest TP
    whose memory fits, within the scale-up domain).
    Work: decode, ``batch_per_gpu`` sequences per GPU (each GPU's share of its TP group's) with
    ``context_tokens`` of KV cache each; prefill, ``batch_per_gpu`` prompt tokens per GPU in
    prompts of ``context_tokens``.
    Precisions: ``weights_dtype`` for the matrices (with their scales), ``kv_dtype`` for the
    cache, ``attention_dtype`` for the attention core, ``compute_dtype`` for GEMMs (default: the
    weights' precision, else the nearest the device has).
    Schedule: ``overlap`` of compute and EP traffic (dual micro-batches, single-batch, none;
    default "auto": the fastest of the three for the step, named in the result);
    ``shared_experts`` local (beside attention) or routed (dispatched like a routed expert);
    ``expert_balance``, the hottest EP rank's load; ``forwarding`` (default: in prefill only)
    EP traffic forwarded over NVLink inside a node; ``intranode_nvlink``, decode's copies to the
    own node over NVLink; ``gemm_tile_rows`` / ``expert_tile_rows``, tensor-core tile rows
    (default: the hardware's); ``mtp_acceptance`` / ``mtp_depth``, multi-token prediction
    (none: no MTP; depth default: the model's MTP modules); ``bound``, peak rates instead of
    achievable ones.
    """

    phase: str = "decode"
    gpus: Optional[int] = None
    ep: Optional[int] = None
    tp: Optional[int] = 1
    batch_per_gpu: float = 32
    context_tokens: int = 4096
    weights_dtype: str = "fp8"
    kv_dtype: str = "bf16"
    compute_dtype: Optional[str] = None
    attention_dtype: str = "bf16"
    overlap: str = "auto"
    shared_experts: str = "local"
    expert_balance: str = "eplb"
    forwarding: Optional[bool] = None
    intranode_nvlink: bool = False
    gemm_tile_rows: Optional[int] = None
    expert_tile_rows: Optional[int] = None
    mtp_acceptance: Optional[float] = None
    mtp_depth: Optional[int] = None
    bound: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("phase", vocab.PHASES),
                              ("weights_dtype", vocab.SERVING_WEIGHT_DTYPES),
                              ("kv_dtype", vocab.DTYPES), ("attention_dtype",
                                                           vocab.ATTENTION_DTYPES),
                              ("overlap", vocab.OVERLAP_MODES),
                              ("shared_experts", vocab.SHARED_EXPERTS),
                              ("expert_balance", vocab.EXPERT_BALANCES)):
            vocab.check_choice(getattr(self, name), allowed, name)
        if self.compute_dtype is not None:
            vocab.check_choice(self.compute_dtype, vocab.DTYPES, "compute_dtype")
        for name in ("gpus", "ep", "tp", "context_tokens", "gemm_tile_rows",
                     "expert_tile_rows", "mtp_depth"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise UsageError(f"{name} must be a whole number >= 1 (got {value!r})")
        if not (isinstance(self.batch_per_gpu, (int, float)) and math.isfinite(self.batch_per_gpu)
                and self.batch_per_gpu > 0):
            raise UsageError(f"batch_per_gpu must be a finite number > 0 "
                             f"(got {self.batch_per_gpu!r})")
        acc = self.mtp_acceptance
        if acc is not None and not (isinstance(acc, (int, float)) and 0 <= acc <= 1):
            raise UsageError(f"mtp_acceptance must be between 0 and 1 (got {acc!r})")

    @property
    def decode(self) -> bool:
        return self.phase == "decode"

    def replace(self, **changes: Any) -> "ServeConfig":
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
