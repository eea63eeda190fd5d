"""The rates a training step runs at on one GPU: GEMMs, grouped expert GEMMs, attention,
HBM and the link tiers, each the hardware spec's peak × its efficiency factor.

Ref: the sources written beside each factor in hardware/*.yaml (DeepGEMM, FlashMLA, DeepEP on
H800); planner.calc.serving.rates reads the same factors for serving.
Convention: one small adapter, :func:`_kernel_frac`, reads the factors, so that switching to the
shape-dependent functions of ``planner.calc.serving.efficiency`` is a one-line change; a grouped
expert GEMM factor missing from a spec falls back to the dense GEMM factor (stated in ``note``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware


@dataclass(frozen=True)
class TrainRates:
    """FLOP/s and bytes/s per GPU a training step runs at (achievable)."""

    gemm: float            # dense GEMMs at the recipe's precision
    head: float            # output head and router (BF16)
    experts: float         # grouped expert GEMMs (contiguous layout, many tokens)
    attention: float       # fused (flash) attention, BF16
    attention_unfused: float   # attention as batched BF16 GEMMs (no fused kernel)
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


def train_rates(hardware: Hardware, *, gemm_dtype: str) -> TrainRates:
    """Achievable rates of a training step on ``hardware`` (FLOP/s, bytes/s per GPU, s).

    Formula: GEMMs P(dtype)·η_matmul; head P(BF16)·η_matmul; experts P(dtype)·η_grouped_prefill
    (else η_matmul); attention P(BF16)·η_attention (fused) or ·η_matmul (batched GEMMs); HBM
    B·η_hbm; links B·η_link; latencies from the spec (scale-out: cross-leaf).
    Ref: hardware/*.yaml efficiency sources (DeepGEMM, FlashMLA, DeepEP READMEs).
    Convention: dense peaks; a missing factor is an error naming it, except the grouped GEMM.
    Example: H800, FP8: GEMMs 1,979e12 × 0.526 = 1,041e12 FLOP/s; experts 1,979e12 × 0.603 =
    1,193e12; attention 989e12 × 0.63 = 623e12; NVLink 200e9 × 0.8 = 160e9 B/s; IB 40e9 B/s.
    """
    from planner.units import US

    peak = hardware.peak_dense_flop_per_s
    matmul = _kernel_frac(hardware, "matmul_flops")
    grouped = hardware.efficiency.grouped_gemm_prefill_flops
    up = hardware.scale_up
    out = hardware.scale_out
    note = ("experts at the grouped-GEMM (prefill) factor" if grouped is not None
            else "experts at the dense GEMM factor (no grouped-GEMM factor in the spec)")
    up_latency = (up.latency_us or 0.0) * US if up is not None else 0.0
    out_latency = (out.latency_cross_leaf_us or out.latency_same_leaf_us or 0.0) * US
    return TrainRates(
        gemm=peak(gemm_dtype) * matmul, head=peak("bf16") * matmul,
        experts=peak(gemm_dtype) * (grouped.frac if grouped is not None else matmul),
        attention=peak("bf16") * _kernel_frac(hardware, "attention_flops"),
        attention_unfused=peak("bf16") * matmul,
        hbm=hardware.gpu.hbm_bandwidth_bytes_per_s * _kernel_frac(hardware, "hbm_bandwidth"),
        scale_up=(up.bandwidth_bytes_per_s * _kernel_frac(hardware, "scale_up_bandwidth")
                  if up is not None else float("inf")),
        scale_out=out.bandwidth_bytes_per_s * _kernel_frac(hardware, "scale_out_bandwidth"),
        scale_up_latency_s=up_latency, scale_out_latency_s=out_latency,
        overlap_compute=(hardware.efficiency.overlap_compute_share.frac
                         if hardware.efficiency.overlap_compute_share is not None else 1.0),
        domain_gpus=hardware.scale_up_domain_gpus, note=note,
    )
