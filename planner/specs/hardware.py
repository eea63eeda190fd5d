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
from dataclasses import dataclass, field, fields
from typing import Annotated, Dict, Optional, Tuple

from planner import units
from planner.specs._types import SPEC_CONFIG, Frac, NonNegFloat, Num, PosFloat, PosInt, Str
from planner.specs.deployment import MAX_TILE_ROWS
from planner.specs.kernel_times import SkewGrid, TimeGrid, check_increasing


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
class AllToAllLatency:
    """Measured fixed time of one MoE layer's expert-parallel all-to-all (the engine's prepare,
    dispatch and combine kernels at a few tokens per rank, where the bytes take ~nothing) over
    the scale-up domain: ``latency_us[i]`` at ``ep[i]`` ranks (increasing), read linearly in
    log EP between the points, constant past the ends."""

    __pydantic_config__ = SPEC_CONFIG
    ep: Tuple[PosFloat, ...]
    latency_us: Tuple[NonNegFloat, ...]
    source: Str
    reduction: Str

    def __post_init__(self) -> None:
        for name in ("ep", "latency_us"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if not self.ep or len(self.ep) != len(self.latency_us):
            raise ValueError(f"ep ({len(self.ep)}) and latency_us ({len(self.latency_us)}) "
                             "must be non-empty and of one length")
        check_increasing(self.ep, "ep")


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
    #: Measured fixed time of one MoE layer's EP all-to-all inside the domain (None: bytes only).
    ep_all_to_all: Optional[AllToAllLatency] = None
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
    """An achievable fraction of a peak, with where it comes from; for a measured one, what the
    source measured (``achieved``: TFLOP/s or GB/s, frac = achieved / the peak) and how the
    measurements were reduced to it."""

    __pydantic_config__ = SPEC_CONFIG
    frac: Frac
    source: Str
    reduction: Optional[Str] = None
    achieved: Optional[PosFloat] = None


#: Keys of the measured GEMM tables: the kernel's precision (fp8_block: FP8 with block scales;
#: w4a16 / w4a8: 4-bit weights dequantized to BF16 / FP8 activations, weight-only; w4a16_marlin:
#: vLLM's Marlin kernel of them, an engine's ``weight_only_moe_table``).
KERNEL_TABLE_DTYPES = ("bf16", "fp8", "fp8_block", "fp4", "w4a16", "w4a8", "w4a16_marlin")
#: Keys of the MLA decode tables: the KV cache's element type.
MLA_TABLE_DTYPES = ("bf16", "fp8")
PEAK_DTYPES = ("bf16", "fp8", "fp4")
#: Scalar factors a measured table replaces: a spec with the table inherits none of them.
SUPERSEDED_BY_TABLES = {
    "grouped_gemm": ("grouped_gemm_flops", "grouped_gemm_prefill_flops", "grouped_wgrad_gemm_flops"),
    # a device's own GEMM tables: another device's wgrad kernels are not inherited either
    "gemm": ("wgrad_gemm_flops",),
}


@dataclass(frozen=True, kw_only=True)
class RowsTable:
    """Achieved fraction of a dense peak as a function of a GEMM's rows M (tokens; for grouped
    GEMMs, rows per expert; for MLA decode, heads per GPU), measured: ``frac[i]`` at ``rows[i]`` (rows increasing), of the dense
    peak of ``peak``; read between the points linearly in log M, constant past the ends."""

    __pydantic_config__ = SPEC_CONFIG
    rows: Tuple[PosFloat, ...]
    frac: Tuple[Frac, ...]
    peak: Str
    source: Str
    reduction: Str
    achieved_tflop_per_s: Optional[Tuple[PosFloat, ...]] = None
    #: A measured kernel's fixed time per call at each row (µs; ``mla_decode``: the generation
    #: MLA kernel's time at one sequence of few positions), added to its FLOPs' time.
    fixed_us: Optional[Tuple[PosFloat, ...]] = None

    def __post_init__(self) -> None:
        # Tuples of floats however built (validated, or from the cache's plain lists).
        for name in ("rows", "frac", "achieved_tflop_per_s", "fixed_us"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        if not self.rows or len(self.rows) != len(self.frac):
            raise ValueError(f"rows ({len(self.rows)}) and frac ({len(self.frac)}) must be "
                             "non-empty and of one length")
        if any(b <= a for a, b in zip(self.rows, self.rows[1:])):
            raise ValueError("rows must increase")
        if self.achieved_tflop_per_s is not None and len(self.achieved_tflop_per_s) != len(
                self.rows):
            raise ValueError("achieved_tflop_per_s must have one value per row")
        if self.fixed_us is not None and len(self.fixed_us) != len(self.rows):
            raise ValueError("fixed_us must have one value per row")
        if self.peak not in PEAK_DTYPES:
            raise ValueError(f"peak must be one of {', '.join(PEAK_DTYPES)} (got {self.peak!r})")


def _check_table_keys(tables: Optional[Dict[str, RowsTable]] | Optional[Dict[str, SkewGrid]],
                      name: str,
                      keys: tuple[str, ...] = KERNEL_TABLE_DTYPES) -> None:
    for key in tables or {}:
        if key not in keys:
            raise ValueError(f"{name}.{key}: not one of {', '.join(keys)}")


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
    #: Weight-gradient GEMMs of the dense layers (training: K = the tokens of a micro-batch).
    wgrad_gemm_flops: Optional[Factor] = None
    #: Weight-gradient GEMMs of MoE experts (training: K-grouped, K = the rows per expert).
    grouped_wgrad_gemm_flops: Optional[Factor] = None
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
    #: Measured dense GEMM fractions over M, per kernel precision (:data:`KERNEL_TABLE_DTYPES`).
    gemm: Optional[Dict[Str, RowsTable]] = None
    #: Measured MoE grouped-GEMM fractions over rows per expert, per kernel precision.
    grouped_gemm: Optional[Dict[Str, RowsTable]] = None
    #: Measured MLA decode-attention fractions of the BF16 peak over heads per GPU, per KV dtype.
    mla_decode: Optional[Dict[Str, RowsTable]] = None
    #: Measured MLA prefill (context) attention fractions of the BF16 peak over the prompt's
    #: tokens (``rows``: ISL), per KV dtype: the expanded core MLA models' prefill reads.
    mla_prefill: Optional[Dict[Str, RowsTable]] = None
    #: Measured prefill (context) attention fractions over the prompt's tokens (``rows``: ISL),
    #: per attention dtype (bf16, fp8), of the peak of that dtype.
    attention_by_isl: Optional[Dict[Str, RowsTable]] = None
    #: Measured routed-expert time under skewed routing over balanced, per grouped table.
    routed_skew: Optional[Dict[Str, SkewGrid]] = None

    def __post_init__(self) -> None:
        _check_table_keys(self.routed_skew, "routed_skew")
        _check_table_keys(self.gemm, "gemm")
        _check_table_keys(self.grouped_gemm, "grouped_gemm")
        _check_table_keys(self.mla_decode, "mla_decode", MLA_TABLE_DTYPES)
        _check_table_keys(self.mla_prefill, "mla_prefill", MLA_TABLE_DTYPES)
        _check_table_keys(self.attention_by_isl, "attention_by_isl", MLA_TABLE_DTYPES)

    def given(self) -> tuple[str, ...]:
        """Names of the factors this block gives."""
        return tuple(name for name in EFFICIENCY_FIELDS if getattr(self, name) is not None)


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
    #: Measured time DSA's lightning indexer adds to a decode / prefill layer
    #: (:mod:`~planner.specs.kernel_times`).
    dsa_indexer_decode: Optional[TimeGrid] = None
    dsa_indexer_prefill: Optional[TimeGrid] = None
    price_usd_per_gpu_hour: Optional[PosFloat] = None
    #: What one GPU-hour costs to rent (``planner plan``'s $ per million tokens), with source.
    cost: Optional[Cost] = None
    notes: Optional[Str] = None
    #: A catalog device (or a path) whose efficiency factors this spec takes where its own
    #: ``efficiency`` gives none: assumed, not measured, and printed so.
    efficiency_from: Optional[Str] = None
    #: Factors taken from ``efficiency_from`` (set by :meth:`inherit_efficiency`).
    efficiency_inherited: Tuple[str, ...] = field(default=(), init=False, repr=False)

    def inherit_efficiency(self, sibling: Hardware) -> Hardware:
        """This spec with the factors its ``efficiency`` lacks taken from ``sibling``'s (a
        sibling's own inherited factors included), recorded in ``efficiency_inherited``."""
        from dataclasses import replace

        own = self.efficiency.given()
        superseded = {name for table, names in SUPERSEDED_BY_TABLES.items() if table in own
                      for name in names}
        taken = tuple(name for name in sibling.efficiency.given()
                      if name not in own and name not in superseded)
        merged = replace(self.efficiency,
                         **{name: getattr(sibling.efficiency, name) for name in taken})
        out = replace(self, efficiency=merged)
        object.__setattr__(out, "efficiency_inherited", taken)
        return out

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


#: Every factor an ``efficiency`` block may give, in its order.
EFFICIENCY_FIELDS = tuple(f.name for f in fields(Efficiency))
