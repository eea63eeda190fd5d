"""Hardware spec: what a user writes in ``hardware/*.yaml``, one GPU (or accelerator) and its links.

YAML keys carry the datasheet's unit in their name (``hbm_capacity_gib``,
``hbm_bandwidth_tb_per_s``, ``nic_bandwidth_gbit_per_s``, ``bandwidth_gb_per_s_unidirectional``);
each is converted once, at construction, into a base-unit attribute (``hbm_capacity_bytes``,
``hbm_bandwidth_bytes_per_s`` ...). Memory capacities on NVIDIA and AMD datasheets are binary:
their "80 GB" is 80 GiB = 85.9e9 bytes (``hbm_capacity_gib``); ``hbm_capacity_gb`` is for a
source that states decimal gigabytes. What the driver leaves to an engine (nvidia-smi's total,
less than the HBM fitted) is ``hbm_usable_mib`` where a source gives it. FLOP rates are DENSE
peaks (no 2:4 sparsity); link bandwidths are per GPU and per direction. Achievable-efficiency
factors live apart from the peaks, in ``efficiency``, each with its own ``source``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Optional

from planner import units
from planner.specs._types import SPEC_CONFIG, Frac, NonNegFloat, Num, PosFloat, PosInt, Str
from planner.specs.deployment import MAX_TILE_ROWS


@dataclass(frozen=True, kw_only=True)
class PeakDenseTflops:
    """Vendor peak dense tensor-core throughput, TFLOP/s, per data type (not "with sparsity")."""

    __pydantic_config__ = SPEC_CONFIG
    bf16: Optional[PosFloat] = None
    fp8: Optional[PosFloat] = None
    fp4: Optional[PosFloat] = None

    def __post_init__(self) -> None:
        if self.bf16 is None and self.fp8 is None and self.fp4 is None:
            raise ValueError("give at least one of bf16, fp8, fp4")


@dataclass(frozen=True, kw_only=True)
class Accelerator:
    """One accelerator: dense peaks (absent when the vendor publishes none), memory capacity and
    bandwidth (HBM, or the unified memory of a desktop system).

    Capacity: exactly one of ``hbm_capacity_gib`` (binary, as NVIDIA and AMD datasheets mean
    their "GB") or ``hbm_capacity_gb`` (decimal); ``hbm_usable_mib``, the total the driver
    reports (nvidia-smi's "MiB"), is what an engine can allocate from (default: the capacity).
    """

    __pydantic_config__ = SPEC_CONFIG
    hbm_bandwidth_tb_per_s: PosFloat
    hbm_capacity_gib: Optional[PosFloat] = None
    hbm_capacity_gb: Optional[PosFloat] = None
    hbm_usable_mib: Optional[PosFloat] = None
    peak_dense_tflop_per_s: Optional[PeakDenseTflops] = None
    tdp_w: Optional[PosFloat] = None
    #: Rows (tokens) one tensor-core GEMM tile computes at least: a GEMM over fewer rows, or a
    #: grouped GEMM's expert with fewer, computes the padding too (Hopper WGMMA: M = 64).
    #: None: not modelled.
    mma_tile_rows: Optional[Annotated[int, Num(int, gt=0, le=MAX_TILE_ROWS)]] = None
    #: The memory fitted (bytes): the datasheet's capacity.
    hbm_capacity_bytes: float = field(init=False, repr=False)
    #: What an engine can allocate from (bytes): ``hbm_usable_mib``, else the capacity.
    hbm_usable_bytes: float = field(init=False, repr=False)
    hbm_bandwidth_bytes_per_s: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.hbm_capacity_gib is None) == (self.hbm_capacity_gb is None):
            raise ValueError("give exactly one of hbm_capacity_gib (binary: NVIDIA's and AMD's "
                             "\"80 GB\" is 80 GiB) and hbm_capacity_gb (decimal)")
        capacity = (self.hbm_capacity_gib * units.GIB if self.hbm_capacity_gib is not None
                    else self.hbm_capacity_gb * units.GB)   # type: ignore[operator]
        usable = (capacity if self.hbm_usable_mib is None
                  else self.hbm_usable_mib * units.MIB)
        if usable > capacity:
            raise ValueError(f"hbm_usable_mib ({self.hbm_usable_mib:g} MiB) exceeds the "
                             f"capacity ({capacity / units.MIB:,.0f} MiB)")
        object.__setattr__(self, "hbm_capacity_bytes", capacity)
        object.__setattr__(self, "hbm_usable_bytes", usable)
        object.__setattr__(self, "hbm_bandwidth_bytes_per_s",
                           units.tb_per_s_to_bytes_per_s(self.hbm_bandwidth_tb_per_s))


@dataclass(frozen=True, kw_only=True)
class ScaleUp:
    """The scale-up domain (NVLink/NVSwitch, Infinity Fabric, ICI): GPUs that reach each other
    at ``bandwidth_gb_per_s_unidirectional`` per GPU per direction (half the "bidirectional"
    datasheet figure: H800 400 GB/s bidirectional = 200 GB/s unidirectional)."""

    __pydantic_config__ = SPEC_CONFIG
    technology: Str
    domain_gpus: PosInt
    bandwidth_gb_per_s_unidirectional: PosFloat
    latency_us: Optional[NonNegFloat] = None
    bandwidth_bytes_per_s: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bandwidth_bytes_per_s",
                           units.gb_per_s_to_bytes_per_s(self.bandwidth_gb_per_s_unidirectional))


@dataclass(frozen=True, kw_only=True)
class ScaleOut:
    """The scale-out network (InfiniBand, RoCE): ``nics_per_gpu`` NICs of
    ``nic_bandwidth_gbit_per_s`` each, per direction (ConnectX-7: 400 Gbit/s = 50 GB/s)."""

    __pydantic_config__ = SPEC_CONFIG
    technology: Str
    nics_per_gpu: PosFloat
    nic_bandwidth_gbit_per_s: PosFloat
    latency_same_leaf_us: Optional[NonNegFloat] = None
    latency_cross_leaf_us: Optional[NonNegFloat] = None
    bandwidth_bytes_per_s: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "bandwidth_bytes_per_s",
            self.nics_per_gpu * units.gbit_per_s_to_bytes_per_s(self.nic_bandwidth_gbit_per_s),
        )


@dataclass(frozen=True, kw_only=True)
class Factor:
    """An achievable fraction of a peak, with where it comes from."""

    __pydantic_config__ = SPEC_CONFIG
    frac: Frac
    source: Str


@dataclass(frozen=True, kw_only=True)
class Efficiency:
    """Achievable / peak. Each factor is optional; a calculation asked for achievable figures
    fails with a clear message when the factor it needs is missing."""

    __pydantic_config__ = SPEC_CONFIG
    scale_up_bandwidth: Optional[Factor] = None
    scale_out_bandwidth: Optional[Factor] = None
    hbm_bandwidth: Optional[Factor] = None
    #: Dense GEMMs at the weights' precision, compute-bound shapes (many tokens).
    matmul_flops: Optional[Factor] = None
    #: Grouped GEMMs of MoE experts in decode (masked layout, few tokens per expert).
    grouped_gemm_flops: Optional[Factor] = None
    #: Grouped GEMMs of MoE experts in prefill (contiguous layout, many tokens per expert).
    grouped_gemm_prefill_flops: Optional[Factor] = None
    #: Attention kernels (BF16), e.g. FlashMLA in its compute-bound regime.
    attention_flops: Optional[Factor] = None
    #: Attention kernels with FP8 Q and KV on the FP8 tensor cores (FlashMLA's FP8 kernel),
    #: as a fraction of the FP8 peak.
    attention_fp8_flops: Optional[Factor] = None
    #: HBM bandwidth GEMMs reach while streaming weights (memory-bound, few tokens).
    gemm_weight_bandwidth: Optional[Factor] = None
    #: Share of compute throughput left while EP kernels that hold SMs (DeepEP's normal,
    #: forwarding kernels) run beside it.
    overlap_compute_share: Optional[Factor] = None


#: A date as ``cost.date`` takes it: YYYY-MM-DD (quoted in YAML, which otherwise reads a date).
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, kw_only=True)
class Cost:
    """The price of one GPU-hour (USD), what it includes, where it comes from and when it was
    read (``date``, YYYY-MM-DD): prices move, so a price without its date means little."""

    __pydantic_config__ = SPEC_CONFIG
    usd_per_gpu_hour: PosFloat
    includes: Str
    source: Str
    date: Str

    def __post_init__(self) -> None:
        if not _DATE.match(self.date):
            raise ValueError(f"date: expected YYYY-MM-DD, quoted (got {self.date!r})")


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """One accelerator with its memory and links; optionally its price per GPU-hour."""

    __pydantic_config__ = SPEC_CONFIG
    source: Str
    gpu: Accelerator
    scale_out: ScaleOut
    #: None for a single device with no scale-up domain (a desktop system).
    scale_up: Optional[ScaleUp] = None
    name: Optional[Str] = None
    display_name: Optional[Str] = None
    efficiency: Efficiency = field(default_factory=Efficiency)
    price_usd_per_gpu_hour: Optional[PosFloat] = None
    #: What one GPU-hour costs to rent (``planner plan``'s $ per million tokens), with source.
    cost: Optional[Cost] = None
    notes: Optional[Str] = None

    @property
    def label(self) -> str:
        return self.display_name or self.name or "hardware"

    @property
    def scale_up_domain_gpus(self) -> int:
        """GPUs of the scale-up domain; 1 when there is none."""
        return 1 if self.scale_up is None else self.scale_up.domain_gpus

    def require_scale_up(self) -> ScaleUp:
        """The scale-up domain, or a clear error for a device without one."""
        if self.scale_up is None:
            from planner.errors import UsageError

            raise UsageError(f"{self.label} has no scale-up domain (scale_up is not given)")
        return self.scale_up

    def peak_dense_flop_per_s(self, dtype: str) -> float:
        """Peak dense FLOP/s for ``dtype`` (``bf16``, ``fp8``, ``fp4``)."""
        from planner.errors import UsageError

        if dtype not in ("bf16", "fp8", "fp4"):
            raise UsageError(f"no peak FLOP/s for dtype {dtype!r}; expected bf16, fp8 or fp4")
        peaks = self.gpu.peak_dense_tflop_per_s
        tflops = None if peaks is None else getattr(peaks, dtype)
        if tflops is None:
            raise UsageError(
                f"{self.label}: gpu.peak_dense_tflop_per_s.{dtype} is not given in its spec"
            )
        return units.tflop_per_s_to_flop_per_s(tflops)

    def efficiency_frac(self, factor: str) -> Factor:
        """The named efficiency factor, or a clear error when the spec does not give it."""
        from planner.errors import UsageError

        value = getattr(self.efficiency, factor)
        if value is None:
            raise UsageError(
                f"{self.label}: efficiency.{factor} is not given in its spec, so achievable "
                "figures cannot be computed; add it or use peak figures"
            )
        return value
