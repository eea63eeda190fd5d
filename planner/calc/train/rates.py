"""The rates a training step runs at on one GPU: GEMMs, grouped expert GEMMs, attention,
HBM and the link tiers, each the hardware spec's peak × its efficiency factor.

Ref: the sources written beside each factor in hardware/*.yaml (DeepGEMM, FlashMLA, DeepEP on
H800); planner.calc.serving.rates reads the same factors for serving.
Convention: dense GEMMs (and the unfused attention's batched GEMMs) run at the spec's measured
GEMM table read at M = the tokens of one micro-batch on a rank (b·s/c: sequence parallelism
gathers the sequence before each GEMM), through ``planner.calc.serving.efficiency`` (log-linear
in M, constant past the table's ends); a spec without a table gives its scalar ``matmul_flops``;
a grouped expert GEMM factor missing from a spec falls back to the dense GEMM factor (stated in
``note``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware


#: FlashAttention-3 (Shah et al. 2024, arXiv 2407.08608) Fig. 5-6 on H100 SXM5, BF16, head
#: dim 128, sequence 4k, non-causal (the one setting both directions report): forward 638,
#: backward 542 TFLOP/s (backward FLOPs counted as 2.5 × forward, as the paper's benchmark):
#: the fused backward kernel runs at 542 / 638 of the forward's rate.
FA3_FORWARD_TFLOPS = 638
FA3_BACKWARD_TFLOPS = 542
ATTENTION_BACKWARD_RATE_FRAC = FA3_BACKWARD_TFLOPS / FA3_FORWARD_TFLOPS


@dataclass(frozen=True)
class TrainRates:
    """FLOP/s and bytes/s per GPU a training step runs at (achievable)."""

    gemm: Any              # dense GEMMs at the recipe's precision (at M; array-valued)
    head: Any              # output head and router (BF16, at M)
    experts: Any           # grouped expert GEMMs (at rows per expert where a table exists)
    gemm_wgrad: Any        # dense weight-gradient GEMMs (the forward's rate where no factor)
    experts_wgrad: Any     # expert weight-gradient GEMMs (K-grouped; likewise)
    attention: float       # fused (flash) attention forward, BF16
    attention_backward: float   # fused attention backward (FA3's backward / forward rate)
    attention_unfused: Any     # attention as batched BF16 GEMMs (no fused kernel, at M)
    hbm: float
    scale_up: float
    scale_out: float
    scale_up_latency_s: float
    scale_out_latency_s: float
    overlap_compute: float  # compute share left beside communication kernels holding SMs
    domain_gpus: int
    note: str


def _kernel_frac(hardware: Hardware, factor: str) -> float:
    """The spec's efficiency fraction (the one place to switch to shape-dependent functions)."""
    return hardware.efficiency_frac(factor).frac


def _gemm_rate(hardware: Hardware, *, dtype: str, rows) -> Any:
    """Achievable dense GEMM FLOP/s at ``rows`` (M): the measured table where the spec has one
    for ``dtype``, else peak × matmul_flops."""
    from planner.calc.serving.efficiency import gemm_flops_frac, table_peak_flop_per_s

    peak = table_peak_flop_per_s(hardware, grouped=False, dtype=dtype,
                                 default=hardware.peak_dense_flop_per_s(dtype))
    if rows is None:
        return peak * _kernel_frac(hardware, "matmul_flops")
    return peak * gemm_flops_frac(hardware, dtype=dtype, rows=rows)


def _expert_rate(hardware: Hardware, *, dtype: str, expert_rows) -> Any:
    """Grouped expert GEMM FLOP/s: the spec's grouped table for ``dtype`` (FP8: its
    block-scaled table where given) read at ``expert_rows`` rows per expert, else peak ×
    grouped_gemm_prefill_flops (contiguous layout), else peak × matmul_flops."""
    from planner.calc.serving.efficiency import grouped_gemm_flops_frac, table_peak_flop_per_s

    tables = hardware.efficiency.grouped_gemm or {}
    key = "fp8_block" if dtype == "fp8" and "fp8_block" in tables else dtype
    if expert_rows is not None and key in tables:
        peak = table_peak_flop_per_s(hardware, grouped=True, dtype=key,
                                     default=hardware.peak_dense_flop_per_s(dtype))
        return peak * grouped_gemm_flops_frac(hardware, dtype=key, rows=expert_rows)
    grouped = hardware.efficiency.grouped_gemm_prefill_flops
    return hardware.peak_dense_flop_per_s(dtype) * (
        grouped.frac if grouped is not None else _kernel_frac(hardware, "matmul_flops"))


def _wgrad_rate(hardware: Hardware, factor: str, *, dtype: str, forward) -> Any:
    """Weight-gradient GEMM FLOP/s: peak × the spec's ``factor`` where it gives one (measured
    wgrad kernels), else the forward GEMM's rate ``forward``."""
    given = getattr(hardware.efficiency, factor)
    return forward if given is None else hardware.peak_dense_flop_per_s(dtype) * given.frac


def train_rates(hardware: Hardware, *, gemm_dtype: str, rows=None,
                expert_rows=None) -> TrainRates:
    """Achievable rates of a training step on ``hardware`` (FLOP/s, bytes/s per GPU, s).

    Formula: GEMMs P(dtype)·η_gemm(M); head P(BF16)·η_gemm(M); experts P(dtype)·η_grouped_prefill
    (else η_matmul); weight-gradient GEMMs P(dtype)·η_wgrad (dense) and ·η_grouped_wgrad
    (experts) where the spec gives them, else the forward's rates; attention P(BF16)·η_attention (fused) or ·η_gemm(M) (batched GEMMs); HBM
    backward × 542/638 (FA3); B·η_hbm; links B·η_link; latencies from the spec (scale-out: cross-leaf). η_gemm(M) is the
    spec's GEMM table at M = ``rows`` (tokens per micro-batch on a rank), else matmul_flops;
    η_grouped the spec's grouped-GEMM table at ``expert_rows`` rows per expert where it has one
    (AIConfigurator moe tables), else grouped_gemm_prefill_flops.
    Ref: hardware/*.yaml efficiency sources (DeepGEMM, FlashMLA, DeepEP READMEs; AIConfigurator
    gemm tables).
    Convention: dense peaks; a missing factor is an error naming it, except the grouped GEMM;
    ``rows`` may be an array (then the GEMM rates are arrays of its shape).
    Example: H800, FP8 (no table): GEMMs 1,979e12 × 0.526 = 1,041e12 FLOP/s; experts 1,979e12 ×
    0.603 = 1,193e12; their weight gradients 1,979e12 × 0.4704 = 931e12 and × 0.5248 =
    1,038.5e12 (DeepGEMM's wgrad kernels); attention 989e12 × 0.63 = 623e12; NVLink 200e9 × 0.8 = 160e9 B/s; IB
    40e9 B/s. A100, BF16 at M = 2,048: 312e12 × 0.8508 = 265.4e12 (between 0.8574 at 1,024 and
    0.8442 at 4,096).
    """
    from planner.units import US

    peak = hardware.peak_dense_flop_per_s
    grouped = hardware.efficiency.grouped_gemm_prefill_flops
    up = hardware.scale_up
    out = hardware.scale_out
    has_table = bool(hardware.efficiency.grouped_gemm) and expert_rows is not None
    note = ("experts at the grouped-GEMM table read at the rows per expert" if has_table
            else "experts at the grouped-GEMM (prefill) factor" if grouped is not None
            else "experts at the dense GEMM factor (no grouped-GEMM factor in the spec)")
    wgrad = [f for f in ("wgrad_gemm_flops", "grouped_wgrad_gemm_flops")
             if getattr(hardware.efficiency, f) is not None]
    note += ("; weight-gradient GEMMs at efficiency." + " and ".join(wgrad) if wgrad else
             "; weight-gradient GEMMs at the forward GEMMs' rates (no wgrad factor in the spec)")
    up_latency = (up.latency_us or 0.0) * US if up is not None else 0.0
    out_latency = (out.latency_cross_leaf_us or out.latency_same_leaf_us or 0.0) * US
    bf16_gemm = _gemm_rate(hardware, dtype="bf16", rows=rows)
    gemm = _gemm_rate(hardware, dtype=gemm_dtype, rows=rows)
    experts = _expert_rate(hardware, dtype=gemm_dtype, expert_rows=expert_rows)
    return TrainRates(
        gemm=gemm, head=bf16_gemm, experts=experts,
        gemm_wgrad=_wgrad_rate(hardware, "wgrad_gemm_flops", dtype=gemm_dtype, forward=gemm),
        experts_wgrad=_wgrad_rate(hardware, "grouped_wgrad_gemm_flops", dtype=gemm_dtype,
                                  forward=experts),
        attention=peak("bf16") * _kernel_frac(hardware, "attention_flops"),
        attention_backward=(peak("bf16") * _kernel_frac(hardware, "attention_flops")
                            * ATTENTION_BACKWARD_RATE_FRAC),
        attention_unfused=bf16_gemm,
        hbm=hardware.gpu.hbm_bandwidth_bytes_per_s * _kernel_frac(hardware, "hbm_bandwidth"),
        scale_up=(up.bandwidth_bytes_per_s * _kernel_frac(hardware, "scale_up_bandwidth")
                  if up is not None else float("inf")),
        scale_out=out.bandwidth_bytes_per_s * _kernel_frac(hardware, "scale_out_bandwidth"),
        scale_up_latency_s=up_latency, scale_out_latency_s=out_latency,
        overlap_compute=(hardware.efficiency.overlap_compute_share.frac
                         if hardware.efficiency.overlap_compute_share is not None else 1.0),
        domain_gpus=hardware.scale_up_domain_gpus, note=note,
    )


#: The forward FLOPs parts (``TrainShape.forward_flops``) that run as the recipe's dense GEMMs
#: (FP8 in V3R §3.3.1); the routed experts run as grouped GEMMs, the head and router in BF16.
DENSE_GEMM_PARTS = ("attention_proj", "dense_ffn", "shared_experts")


def gemm_per_token_s(parts: dict, rates: TrainRates) -> Any:
    """Forward time per token of the recipe's GEMMs (s): the dense layers' and the experts',
    not the BF16 head and router, not the attention core.

    Formula: (attention projections + dense FFN + shared experts)/R_gemm + routed/R_experts.
    Ref: V3R §3.3.1 (the FP8 GEMMs; head, router and attention in BF16).
    Convention: FLOPs per token by part as ``TrainShape.forward_flops`` gives them.
    Example: H800 FP8, 1e9 dense FLOPs per token: 1e9 / 1,041e12 = 0.96 µs.
    """
    dense = sum(parts.get(k, 0.0) for k in DENSE_GEMM_PARTS)
    return dense / rates.gemm + parts.get("routed_experts", 0.0) / rates.experts


def wgrad_extra_per_token_s(parts: dict, rates: TrainRates) -> Any:
    """Weight-gradient time per token beyond the forward's GEMM rate (s), from forward FLOPs per
    token by part.

    Formula: W = 1 × forward FLOPs per GEMM; (dense parts)·(1/R_wgrad − 1/R_gemm) + (routed
    experts)·(1/R_experts_wgrad − 1/R_experts); the head and router stay at the BF16 rate.
    Ref: DeepGEMM pull request 95 (wgrad kernels, H800), via hardware/h800.yaml.
    Convention: 0 where the spec gives no wgrad factors (the rates are the forward's).
    Example: H800 FP8, 1e9 dense FLOPs per token: 1e9 × (1/931e12 − 1/1,041e12) = 0.11 µs.
    """
    dense = sum(parts.get(k, 0.0) for k in DENSE_GEMM_PARTS)
    return (dense * (1 / rates.gemm_wgrad - 1 / rates.gemm)
            + parts.get("routed_experts", 0.0) * (1 / rates.experts_wgrad - 1 / rates.experts))


def train_rate_inputs(hardware: Hardware, *, gemm_dtype: str, rows: float,
                      expert_rows=None) -> tuple:
    """The rates a layout ran at (GEMMs at M = ``rows``, experts at ``expert_rows`` rows per
    expert, the weight-gradient GEMMs at theirs), each with the spec field it came from.

    Formula: the rates of :func:`train_rates`, one Input each.
    Ref: the hardware spec's ``efficiency`` block.
    Convention: a wgrad rate without its spec factor says it is the forward's rate.
    Example: H800 FP8 at 4,096 rows: wgrad 931e12 FLOP/s from efficiency.wgrad_gemm_flops.
    """
    from planner.calc.common import Input

    eff = "hardware spec gpu.peak_dense_tflop_per_s x efficiency."
    r = train_rates(hardware, gemm_dtype=gemm_dtype, rows=rows, expert_rows=expert_rows)
    grouped = hardware.efficiency.grouped_gemm or {}
    key = "fp8_block" if gemm_dtype == "fp8" and "fp8_block" in grouped else gemm_dtype
    expert_from = (f"{eff}grouped_gemm.{key} table at {expert_rows:,.0f} rows per expert"
                   if expert_rows is not None and key in grouped
                   else f"{eff}grouped_gemm_prefill_flops")
    gemm_from = (f"{eff}gemm.{gemm_dtype} table at M = {rows:,.0f}"
                 if gemm_dtype in (hardware.efficiency.gemm or {})
                 else f"{eff}matmul_flops ({gemm_dtype})")

    def wgrad_from(factor: str, forward: str) -> str:
        return (f"{eff}{factor}" if getattr(hardware.efficiency, factor) is not None
                else f"the {forward} (the spec has no efficiency.{factor})")

    return (
        Input("GEMM rate", float(r.gemm), "FLOP/s", gemm_from),
        Input("expert GEMM rate", float(r.experts), "FLOP/s", expert_from),
        Input("weight-gradient GEMM rate", float(r.gemm_wgrad), "FLOP/s",
              wgrad_from("wgrad_gemm_flops", "GEMM rate")),
        Input("expert weight-gradient GEMM rate", float(r.experts_wgrad), "FLOP/s",
              wgrad_from("grouped_wgrad_gemm_flops", "expert GEMM rate")),
        Input("attention rate (fused)", r.attention, "FLOP/s", f"{eff}attention_flops"),
        Input("HBM", r.hbm, "bytes/s", "hardware spec hbm x efficiency.hbm_bandwidth"),
        Input("scale-up per GPU", r.scale_up, "bytes/s",
              "hardware spec scale_up x efficiency.scale_up_bandwidth"),
        Input("scale-out per GPU", r.scale_out, "bytes/s",
              "hardware spec scale_out x efficiency.scale_out_bandwidth"),
        Input("usable HBM", hardware.gpu.hbm_usable_bytes, "bytes",
              "hardware spec gpu.hbm_usable_mib (else the capacity)"),
    )
