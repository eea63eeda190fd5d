"""The serving deployment: one type that the CLI, scenario files, measured runs and the Python
API all build, with its defaults and checks in one place (:class:`ServeConfig`).

``planner.calc.serving.serve(model, hardware, config)`` takes it. It is a plain frozen
dataclass: constructing one imports neither pydantic nor numpy (the CLI's cold start), and the
checks below run on every construction, whoever builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from planner import vocab
from planner.errors import UsageError

#: Most GPUs a deployment (and its EP and TP groups) may have: 2^20, beyond any cluster built
#: (the largest hold ~10^5).
MAX_GPUS = 2**20
#: Most tokens of KV cache per sequence (decode) or per prompt (prefill): 2^30, a hundred times
#: the longest context any model serves (10M).
MAX_CONTEXT_TOKENS = 2**30
#: Most sequences (decode) or prompt tokens (prefill) per GPU: 2^30; a GPU holds far fewer.
MAX_BATCH_PER_GPU = 2**30
#: Fewest: one sequence over the most GPUs (2^-20); below it rows per expert underflow.
MIN_BATCH_PER_GPU = 1 / MAX_GPUS
#: Largest tensor-core tile (rows) the padding model takes (4 x the largest tile in use,
#: Blackwell's two-SM UMMA, M = 256); the padding calculator reads this bound.
MAX_TILE_ROWS = 1024
#: Most MTP draft tokens per step: 16 (DeepSeek-V3 ships 1 module; draft chains stay under 10).
MAX_MTP_DEPTH = 16

#: The largest value each whole-number field takes.
INT_BOUNDS = {"gpus": MAX_GPUS, "ep": MAX_GPUS, "tp": MAX_GPUS,
              "context_tokens": MAX_CONTEXT_TOKENS, "gemm_tile_rows": MAX_TILE_ROWS,
              "expert_tile_rows": MAX_TILE_ROWS, "mtp_depth": MAX_MTP_DEPTH}


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
        for name, most in INT_BOUNDS.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= most):
                raise UsageError(f"{name} must be a whole number 1 .. {most:,} (got {value!r})")
        batch = self.batch_per_gpu
        if not (isinstance(batch, (int, float)) and not isinstance(batch, bool)
                and MIN_BATCH_PER_GPU <= batch <= MAX_BATCH_PER_GPU):
            raise UsageError(f"batch_per_gpu must be a number {MIN_BATCH_PER_GPU:.3g} .. "
                             f"{MAX_BATCH_PER_GPU:,} (got {batch!r})")
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
