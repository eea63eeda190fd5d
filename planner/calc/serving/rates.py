"""The rates a serving step runs at: peak FLOP/s, HBM and link bandwidth per GPU, times the
hardware spec's efficiency factors (achievable) or alone (``bound``).

Ref: the READMEs of DeepGEMM, FlashMLA and DeepEP (github.com/deepseek-ai; measured on H800): the
sources of the efficiency factors, each written beside its value in hardware/*.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner import vocab
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware


@dataclass(frozen=True)
class Rates:
    """The rates one step runs at (FLOP/s, bytes/s per GPU), achievable or peak.

    ``overlap_compute`` is the share of compute throughput left while forwarding EP kernels
    (DeepEP's normal kernels, prefill) hold SMs; 1 where communication holds none."""

    gemm: float            # dense GEMMs at the weights' precision: projections, dense FFN, shared
    head: float            # the output head (BF16 weights)
    experts: float         # grouped expert GEMMs: masked layout (decode) / contiguous (prefill)
    attention: float       # attention core (BF16)
    kv_stream: float       # KV cache read by the attention kernel
    weight_stream: float   # weights streamed by GEMMs
    scale_up: float        # bytes/s per GPU per direction
    scale_out: float
    overlap_compute: float
    basis: str


#: Efficiency factors the achievable step model reads, in the order ``basis`` names them
#: (FP8 attention reads ``attention_fp8_flops`` instead of ``attention_flops``).
SERVING_FACTORS = ("matmul_flops", "grouped_gemm_flops", "grouped_gemm_prefill_flops",
                   "attention_flops", "hbm_bandwidth", "gemm_weight_bandwidth",
                   "scale_up_bandwidth", "scale_out_bandwidth", "overlap_compute_share")
#: Precisions the attention core computes in: BF16 (FlashMLA, FlashAttention), or FP8 Q and KV
#: on the FP8 tensor cores (FlashMLA's FP8 kernel).
ATTENTION_DTYPES = vocab.ATTENTION_DTYPES
#: The GEMM precision each weight format computes in, nearest first, where the device lacks it.
COMPUTE_DTYPE_ORDER = {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16", "fp4"),
                       "bf16": ("bf16", "fp8", "fp4")}


def serving_rates(hardware: Hardware, *, phase: str, weights_dtype: str,
                  compute_dtype: str | None = None, attention_dtype: str = "bf16",
                  bound: bool = False) -> Rates:
    """Peak rates × the spec's efficiency factors, or peak alone with ``bound`` (FLOP/s and
    bytes/s per GPU).

    Formula: GEMMs R = P(compute dtype) · η_matmul, P the dense peak of the weights' precision
    (else the nearest the device has); output head P(BF16) · η_matmul; routed experts
    P · η_grouped (decode: masked layout) or η_grouped_prefill (contiguous layout); attention
    P(attention dtype) · η_attention (bf16: FlashMLA's BF16 kernel; fp8: FP8 Q and KV on the
    FP8 tensor cores, η_attention_fp8); KV stream HBM · η_hbm; weights streamed by GEMMs
    HBM · η_gemm_weight; links B · η_link; in prefill compute keeps η_overlap of its rate
    beside EP kernels that hold SMs.
    Ref: github.com/deepseek-ai/DeepGEMM, FlashMLA and DeepEP READMEs (measured on H800).
    Convention: dense (not sparse) peaks; a device whose spec gives no peak FLOP/s has compute
    not modelled (infinite rate: memory and links only); no scale-up domain: infinite scale-up
    rate; ``bound`` uses no factor at all.
    Example: H800, FP8 weights, decode: GEMMs 1,979e12 × 0.526 = 1,040.95e12 FLOP/s; experts
    1,979e12 × 0.469 = 928.15e12; BF16 head 989e12 × 0.526 = 520.21e12; attention
    989e12 × 0.63 = 623.07e12; KV stream 3.35e12 × 0.9 = 3.015e12 B/s; weight stream
    3.35e12 × 0.686 = 2.298e12 B/s; NVLink 200e9 × 0.8 = 160e9 B/s; IB 50e9 × 0.8 = 40e9 B/s.
    """
    if attention_dtype not in ATTENTION_DTYPES:
        raise UsageError(f"unknown attention dtype {attention_dtype!r}; expected "
                         + " or ".join(ATTENTION_DTYPES))
    peaks = hardware.gpu.peak_dense_tflop_per_s
    if peaks is None:
        peak = math.inf
    else:
        if compute_dtype is None:
            compute_dtype = next((d for d in COMPUTE_DTYPE_ORDER[weights_dtype]
                                  if getattr(peaks, d) is not None), "bf16")
        peak = hardware.peak_dense_flop_per_s(compute_dtype)
    bf16 = peak if peaks is None or peaks.bf16 is None else hardware.peak_dense_flop_per_s(
        "bf16")
    hbm = hardware.gpu.hbm_bandwidth_bytes_per_s
    up = hardware.scale_up.bandwidth_bytes_per_s if hardware.scale_up else math.inf
    out = hardware.scale_out.bandwidth_bytes_per_s
    fp8_attention = attention_dtype == "fp8"
    att_peak = bf16
    if fp8_attention and peaks is not None:
        att_peak = hardware.peak_dense_flop_per_s("fp8") if peaks.fp8 is not None else bf16
    if bound or peaks is None:
        basis = ("peak memory bandwidth; compute not modelled (the spec gives no peak FLOP/s); "
                 "no efficiency factors" if peaks is None
                 else "peak (bound: no efficiency factors)")
        return Rates(peak, bf16, peak, att_peak, hbm, hbm, up, out, 1.0, basis)
    assert compute_dtype is not None   # picked above: the spec gives peaks
    att_factor = "attention_fp8_flops" if fp8_attention else "attention_flops"
    f = {name: hardware.efficiency_frac(name).frac
         for name in (*SERVING_FACTORS, att_factor)
         if name != "scale_up_bandwidth" or hardware.scale_up is not None}
    f.setdefault("scale_up_bandwidth", 1.0)
    experts = "grouped_gemm_flops" if phase == "decode" else "grouped_gemm_prefill_flops"
    overlap = f["overlap_compute_share"] if phase == "prefill" else 1.0
    basis = (f"achievable: {compute_dtype.upper()} GEMM x {f['matmul_flops']:g}, experts x "
             f"{f[experts]:g}, {attention_dtype.upper()} attention x {f[att_factor]:g}, KV "
             f"stream x "
             f"{f['hbm_bandwidth']:g}, GEMM weight stream x {f['gemm_weight_bandwidth']:g}, links "
             f"x {f['scale_up_bandwidth']:g} / {f['scale_out_bandwidth']:g}"
             + (f", compute x {overlap:g} beside EP kernels" if overlap < 1 else ""))
    return Rates(gemm=peak * f["matmul_flops"], head=bf16 * f["matmul_flops"],
                 experts=peak * f[experts], attention=att_peak * f[att_factor],
                 kv_stream=hbm * f["hbm_bandwidth"],
                 weight_stream=hbm * f["gemm_weight_bandwidth"],
                 scale_up=up * f["scale_up_bandwidth"], scale_out=out * f["scale_out_bandwidth"],
                 overlap_compute=overlap, basis=basis)
