"""Scenario spec: a model on hardware in a deployment, with design budgets (``specs/*.yaml``).

``model`` and ``hardware`` are catalog names or paths (relative to the scenario file).
``deployment`` holds what the calculators need beyond the two specs; every field has a default.
``budgets`` maps metric names of the vocabulary (:mod:`planner.metrics`) to ``{max: ...}``
and/or ``{min: ...}``; a bound is a number in base units or a string with a unit ("80 KB",
"15 ms", "60 tokens/s"), checked against the metric's dimension when the scenario is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Literal, Optional

from planner import vocab

from planner.specs._types import (SPEC_CONFIG, Frac, NonNegFloat, PartFrac, PosFloat, PosInt,
                                   Quantity, Str)

if TYPE_CHECKING:
    from planner.specs.deployment import ServeConfig

#: Element types the deployment may name.
DtypeName = Literal[vocab.DTYPES]  # type: ignore[valid-type]
#: FLOP conventions.
FlopsConvention = Literal[vocab.FLOPS_CONVENTIONS]  # type: ignore[valid-type]


@dataclass(frozen=True, kw_only=True)
class Bound:
    """``max`` and/or ``min`` of one metric; both inclusive (value <= max, value >= min)."""

    __pydantic_config__ = SPEC_CONFIG
    max: Optional[Quantity] = None
    min: Optional[Quantity] = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ValueError("a budget needs 'max' and/or 'min'")


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """How the model runs. Parallel sizes: ``num_gpus`` = tp × pp × dp when all are given; the EP
    group (``ep``, default one routed expert per GPU) must divide ``num_gpus``."""

    __pydantic_config__ = SPEC_CONFIG
    num_gpus: Optional[PosInt] = None
    num_nodes: Optional[PosInt] = None
    tp: PosInt = 1
    pp: PosInt = 1
    dp: Optional[PosInt] = None
    ep: Optional[PosInt] = None
    #: Tokens each GPU decodes at once (the paper: 32).
    tokens_per_device: PosFloat = 32
    #: Micro-batches overlapped in decode (DeepSeek's dual micro-batch: 2).
    micro_batches: PosInt = 2
    #: Sequences and tokens per sequence held in the KV cache.
    batch: PosInt = 1
    context_tokens: PosInt = 4096
    #: Sequence length for FLOPs per token, and the convention.
    seq_len: PosInt = 4096
    flops_convention: FlopsConvention = "exact-causal"
    weight_dtype: DtypeName = "bf16"
    kv_cache_dtype: DtypeName = "bf16"
    #: fp8: DeepEP's FP8 with 1x128 scales and metadata; bf16: 2 bytes per element.
    dispatch_dtype: Literal[vocab.DISPATCH_DTYPES] = "fp8"  # type: ignore[valid-type]
    combine_dtype: Literal[vocab.COMBINE_DTYPES] = "bf16"  # type: ignore[valid-type]
    #: Link bandwidth basis: the datasheet peak, or peak × the hardware's efficiency factor.
    bandwidth: Literal[vocab.BANDWIDTH_BASES] = "peak"  # type: ignore[valid-type]
    #: Serving roofline (planner serve): sequences each GPU decodes, prompt tokens each GPU
    #: prefills per batch, MTP acceptance (none: no MTP).
    batch_per_gpu: PosFloat = 32
    prefill_tokens_per_gpu: PosFloat = 16384
    mtp_acceptance: Optional[Frac] = None
    #: MTP draft tokens per step (none: the model's MTP modules).
    mtp_depth: Optional[PosInt] = None
    #: Compute/EP overlap of the serving step (planner serve --overlap); none given: auto, the
    #: fastest schedule for the step.
    overlap: Optional[Literal[vocab.OVERLAP_MODES]] = None  # type: ignore[valid-type]
    #: Attention core precision (planner serve --attention-dtype).
    attention_dtype: Literal[vocab.ATTENTION_DTYPES] = "bf16"  # type: ignore[valid-type]
    #: Decode EP copies to the own node over NVLink (planner serve --intranode-nvlink).
    intranode_nvlink: bool = False
    #: Rows per GEMM tile (planner serve --gemm-tile-rows; none: the hardware's).
    gemm_tile_rows: Optional[PosInt] = None
    #: Rows per tile of the routed experts' grouped GEMMs (planner serve --expert-tile-rows;
    #: none: the GEMM tile).
    expert_tile_rows: Optional[PosInt] = None
    #: Load of the hottest EP rank (planner serve --expert-balance): routing skew measured for
    #: DeepSeek-R1 with EPLB or without, sampling noise only (uniform), or none (exact).
    expert_balance: Literal[vocab.EXPERT_BALANCES] = "eplb"  # type: ignore[valid-type]

    def serve_config(self, phase: str, *, moe: bool) -> "ServeConfig":
        """The serving deployment this one describes, for ``phase`` (decode: ``batch_per_gpu``
        sequences; prefill: ``prefill_tokens_per_gpu`` prompt tokens). A weight type the
        serving model does not run is an error naming ``deployment.weight_dtype``."""
        from planner.errors import UsageError
        from planner.specs.deployment import ServeConfig

        if self.weight_dtype not in vocab.SERVING_WEIGHT_DTYPES:
            raise UsageError(f"deployment.weight_dtype: the serving model runs "
                             f"{', '.join(vocab.SERVING_WEIGHT_DTYPES)} weights, not "
                             f"{self.weight_dtype} (memory_bytes_per_gpu, tokens_per_s_* and "
                             f"ttft_s need one of them)")
        decode = phase == "decode"
        return ServeConfig(
            phase=phase, gpus=self.num_gpus, ep=self.ep if moe else 1, tp=self.tp,
            batch_per_gpu=self.batch_per_gpu if decode else self.prefill_tokens_per_gpu,
            context_tokens=self.context_tokens, weights_dtype=self.weight_dtype,
            kv_dtype=self.kv_cache_dtype,
            overlap=self.overlap or "auto",
            attention_dtype=self.attention_dtype, intranode_nvlink=self.intranode_nvlink,
            gemm_tile_rows=self.gemm_tile_rows, expert_tile_rows=self.expert_tile_rows,
            expert_balance=self.expert_balance,
            mtp_acceptance=self.mtp_acceptance if decode else None,
            mtp_depth=self.mtp_depth if decode else None)

    def __post_init__(self) -> None:
        n = self.num_gpus
        if self.dp is not None and n is not None and self.tp * self.pp * self.dp != n:
            raise ValueError(f"tp × pp × dp ({self.tp} × {self.pp} × {self.dp}) must equal "
                             f"num_gpus ({n})")
        if n is not None and self.tp * self.pp > n:
            raise ValueError(f"tp × pp ({self.tp} × {self.pp}) exceeds num_gpus ({n})")
        if n is not None and self.ep is not None and n % self.ep:
            raise ValueError(f"ep ({self.ep}) must divide num_gpus ({n})")
        if self.num_nodes is not None:
            if n is None:
                raise ValueError("num_nodes needs num_gpus")
            if n % self.num_nodes:
                raise ValueError(f"num_nodes ({self.num_nodes}) must divide num_gpus ({n})")


@dataclass(frozen=True, kw_only=True)
class Training:
    """A training run: ``tokens`` on ``num_gpus`` (default: deployment.num_gpus), its speed fixed
    by exactly one of ``mfu``, ``gpu_hours`` or ``tokens_per_day``; the price defaults to the
    hardware spec's."""

    __pydantic_config__ = SPEC_CONFIG
    #: Counts as numbers or as people write them: 14.8e+12 or "14.8T"; "2.664M", "272.8B".
    tokens: Quantity
    num_gpus: Optional[PosInt] = None
    mfu: Optional[Frac] = None
    gpu_hours: Optional[Quantity] = None
    tokens_per_day: Optional[Quantity] = None
    convention: FlopsConvention = "exact-causal"
    seq_len: PosInt = 4096
    usd_per_gpu_hour: Optional[NonNegFloat] = None

    def __post_init__(self) -> None:
        from planner.units import parse_quantity

        for name in ("tokens", "gpu_hours", "tokens_per_day"):
            value = getattr(self, name)
            if value is not None:
                try:
                    number = parse_quantity(value, "count")
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
                if number <= 0:
                    raise ValueError(f"{name} must be > 0 (got {value!r})")
                object.__setattr__(self, name, number)
        given = [n for n in ("mfu", "gpu_hours", "tokens_per_day") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of mfu, gpu_hours, tokens_per_day"
                             + (f" (got {', '.join(given)})" if given else ""))


#: Weight element types the workload model runs.
WeightsDtypeName = Literal[vocab.SERVING_WEIGHT_DTYPES]  # type: ignore[valid-type]


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A served workload (what ``planner plan --write-scenario`` writes): requests of ``isl``
    prompt and ``osl`` output tokens, ``concurrency`` of them in flight per replica of
    ``tp`` x ``attention_dp`` x ``pp`` GPUs, the experts over ``moe_tp`` x ``moe_ep`` (default:
    the workload model's), the precisions, the serving ``engine`` (a catalog name or a
    path relative to the scenario; none: an idealised engine) and the share of each prompt
    found in a prefix cache (``prefix_cache_hit_frac``, 0 <= F < 1). When given, the workload model
    computes ``ttft_s``, ``tpot_s``, ``decode_tokens_per_s`` (tokens/s per user),
    ``tokens_per_s_per_gpu``, ``tokens_per_s_per_node`` and ``memory_bytes_per_gpu`` instead of
    the one-step serving roofline."""

    __pydantic_config__ = SPEC_CONFIG
    isl: PosInt
    osl: PosInt
    concurrency: PosInt
    tp: PosInt = 1
    pp: PosInt = 1
    attention_dp: PosInt = 1
    moe_tp: Optional[PosInt] = None
    moe_ep: Optional[PosInt] = None
    weights_dtype: WeightsDtypeName = "fp8"
    moe_weights_dtype: Optional[WeightsDtypeName] = None
    kv_dtype: Optional[DtypeName] = None
    engine: Optional[Str] = None
    prefix_cache_hit_frac: PartFrac = 0.0


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A model on hardware in a deployment, with budgets. ``name`` defaults to the file stem."""

    __pydantic_config__ = SPEC_CONFIG
    model: Str
    hardware: Str
    deployment: Deployment = field(default_factory=Deployment)
    budgets: Dict[str, Bound] = field(default_factory=dict)
    #: ``scenario``: marks a file without budgets as a scenario for a directory search.
    kind: Optional[Literal["scenario"]] = None
    training: Optional[Training] = None
    #: A served workload (the workload model) instead of the serving roofline's deployment.
    workload: Optional[Workload] = None
    name: Optional[Str] = None
    description: Optional[Str] = None
    source: Optional[Str] = None
