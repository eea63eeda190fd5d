"""The rates a serving step runs at: peak FLOP/s, HBM and link bandwidth per GPU, times the
hardware spec's efficiency factors (achievable) or alone (``bound``).

Ref: the READMEs of DeepGEMM, FlashMLA and DeepEP (github.com/deepseek-ai; measured on H800): the
sources of the efficiency factors, each written beside its value in hardware/*.yaml.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

from planner import vocab
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.calc.serving.efficiency import KernelPrecision
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
    mla_decode: Any = None  # the MLA decode core's measured FLOP/s (None: attention, KV stream)
    mla_decode_fixed_s: Any = 0.0  # and its fixed time per call (kernels.mla_decode_fixed_s)
    #: The prefill attention core's measured fraction by prompt length over ``attention``'s
    #: (a function of ISL tokens; None: ``attention`` for every prompt).
    attention_isl_scale: Any = None
    #: The prompt length (tokens) that scale is read at for prefill (None: 2 · the mean context);
    #: the whole prompt where a cached prefix makes the computed tokens a late chunk of it.
    prefill_prompt_tokens: Any = None
    #: The MLA prefill core's measured FLOP/s as a function of ISL tokens (:func:`with_mla_prefill`;
    #: None: ``attention`` and ``attention_isl_scale``).
    mla_prefill: Any = None


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
                  bound: bool = False, rows: float | None = None,
                  expert_rows: float | None = None) -> Rates:
    """Peak rates × the spec's efficiency factors, or peak alone with ``bound`` (FLOP/s and
    bytes/s per GPU).

    Formula: GEMMs R = P(compute dtype) · η_gemm(M), P the dense peak of the precision the
    weights compute in (:func:`~.efficiency.kernel_precision`: native, or weight-only 4-bit at
    BF16; else the nearest the device has), η from the measured table over M = ``rows`` where
    the spec has one (:func:`~.efficiency.gemm_flops_frac`), else η_matmul; output head
    P(BF16) · η_gemm,bf16(M); routed experts P · η_grouped(rows per expert) (tables), else
    η_grouped (decode: masked layout) or η_grouped_prefill (contiguous); attention
    P(attention dtype) · η_attention; KV stream HBM · η_hbm; weights streamed by GEMMs
    HBM · η_gemm_weight; links B · η_link; in prefill compute keeps η_overlap of its rate
    beside EP kernels that hold SMs.
    Ref: github.com/deepseek-ai/DeepGEMM, FlashMLA and DeepEP READMEs (measured on H800);
    AIConfigurator's kernel tables (:mod:`~planner.calc.serving.efficiency`).
    Convention: dense (not sparse) peaks; a device whose spec gives no peak FLOP/s has compute
    not modelled (infinite rate: memory and links only); no scale-up domain: infinite scale-up
    rate; ``bound`` uses no factor at all; ``rows`` None reads the tables at their last M.
    Example: H800, FP8 weights, decode: GEMMs 1,979e12 × 0.526 = 1,040.95e12 FLOP/s; experts
    1,979e12 × 0.469 = 928.15e12; BF16 head 989e12 × 0.526 = 520.21e12; attention
    989e12 × 0.63 = 623.07e12; KV stream 3.35e12 × 0.9 = 3.015e12 B/s; weight stream
    3.35e12 × 0.686 = 2.298e12 B/s; NVLink 200e9 × 0.8 = 160e9 B/s; IB 50e9 × 0.8 = 40e9 B/s.
    """
    from planner.calc.serving import efficiency as eff

    if attention_dtype not in ATTENTION_DTYPES:
        raise UsageError(f"unknown attention dtype {attention_dtype!r}; expected "
                         + " or ".join(ATTENTION_DTYPES))
    peaks = hardware.gpu.peak_dense_tflop_per_s
    kernels = eff.kernel_precision(hardware, weights_dtype=weights_dtype)
    measured = eff.has_measured_tables(hardware)
    if peaks is not None and compute_dtype is None:
        compute_dtype = _compute_dtype(hardware, kernels.compute_dtype if measured
                                       else _base_dtype(weights_dtype))
    peak = math.inf if peaks is None else hardware.peak_dense_flop_per_s(compute_dtype or "bf16")
    bf16 = peak if peaks is None or peaks.bf16 is None else hardware.peak_dense_flop_per_s(
        "bf16")
    hbm = hardware.gpu.hbm_bandwidth_bytes_per_s
    up = hardware.scale_up.bandwidth_bytes_per_s if hardware.scale_up else math.inf
    out = hardware.scale_out.bandwidth_bytes_per_s
    att_peak = (hardware.peak_dense_flop_per_s("fp8") if attention_dtype == "fp8"
                and peaks is not None and peaks.fp8 is not None else bf16)
    if bound or peaks is None:
        basis = ("peak memory bandwidth; compute not modelled (the spec gives no peak FLOP/s); "
                 "no efficiency factors" if peaks is None
                 else "peak (bound: no efficiency factors)")
        return Rates(peak, bf16, peak, att_peak, hbm, hbm, up, out, 1.0, basis)
    assert compute_dtype is not None   # picked above: the spec gives peaks
    f = {name: hardware.efficiency_frac(name).frac
         for name in ("scale_out_bandwidth", "overlap_compute_share")}
    f["scale_up_bandwidth"] = (hardware.efficiency_frac("scale_up_bandwidth").frac
                               if hardware.scale_up is not None else 1.0)
    m = _table_rows(hardware, rows)
    gemm_rate, gemm, experts_rate, grouped = _gemm_rates(
        hardware, kernels, native=measured and compute_dtype == kernels.compute_dtype,
        compute_dtype=compute_dtype, peak=peak, rows=m,
        expert_rows=_table_rows(hardware, expert_rows), phase=None if measured else phase)
    head = eff.gemm_flops_frac(hardware, dtype="bf16", rows=m)
    attention = eff.attention_flops_frac(hardware, phase=phase, dtype=attention_dtype)
    kv, weights = eff.hbm_bandwidth_frac(hardware), eff.gemm_weight_bandwidth_frac(
        hardware, rows=m)
    overlap = f["overlap_compute_share"] if phase == "prefill" else 1.0
    by_isl = (hardware.efficiency.attention_by_isl or {}).get(attention_dtype)
    basis = _head_note(hardware, kernels, measured=measured, weights_dtype=weights_dtype,
                       rows=m) + _basis(
        f"{compute_dtype.upper()} GEMM", gemm, grouped, f"{attention_dtype.upper()} attention",
        _attention_factor_text(attention, by_isl if phase == "prefill" else None), kv, weights,
        f, overlap) + _assumed_note(hardware)
    scale = (functools.partial(_attention_isl_scale, hardware, attention_dtype, attention)
             if by_isl is not None else None)
    return Rates(gemm=gemm_rate, head=bf16 * head, experts=experts_rate,
                 attention=att_peak * attention, kv_stream=hbm * kv,
                 weight_stream=hbm * weights, scale_up=up * f["scale_up_bandwidth"],
                 scale_out=out * f["scale_out_bandwidth"], overlap_compute=overlap,
                 basis=basis, attention_isl_scale=scale)


#: A prompt's tokens per mean attended position of its prefill (the workload model's
#: ``prefill_context`` is ISL / 2, the causal mean): the measured kernel is read at 2 x that.
PROMPT_PER_MEAN_CONTEXT = 2


def prefill_attention_flop_per_s(rates: Rates, *, prefill_context: Any) -> Any:
    """The prefill attention core's FLOP/s for prompts whose mean attended position is
    ``prefill_context`` tokens (scalars or arrays).

    Formula: MLA with the measured MLA kernel (``rates.mla_prefill``, :func:`with_mla_prefill`):
    its rate at S; else R_attention · η(S) / η̄ where the spec has the measured kernel by prompt
    length (``efficiency.attention_by_isl``, :func:`~planner.calc.serving.efficiency.
    attention_prefill_flops_frac`), η̄ the scalar ``attention_flops``; else R_attention;
    S = ``rates.prefill_prompt_tokens`` (the whole prompt), else 2 · C_pre.
    Ref: AIConfigurator context_attention and context_mla tables
    (``benchmarks/extract_aic_kernels.py``); AIConfigurator ``query_context_attention_table``
    (a prefix: the table at full_s = prefix + s, the latency scaled by the FLOPs,
    (full_s² − prefix²) / full_s²).
    Convention: a chunk of a prompt, or the tokens after a cached prefix, at the whole
    prompt's length (never past it: at 2 · C_pre a late chunk would read a longer prompt's).
    Example: B200 BF16, 1,024-token prompts (C_pre = 512): 2,250e12 × 0.1427 = 321e12 FLOP/s.
    """
    if rates.attention_isl_scale is None and rates.mla_prefill is None:
        return rates.attention
    import numpy as np

    prompt = np.maximum(PROMPT_PER_MEAN_CONTEXT * np.asarray(prefill_context, dtype=float)
                        if rates.prefill_prompt_tokens is None
                        else np.asarray(rates.prefill_prompt_tokens, dtype=float), 1.0)
    tokens = prompt if prompt.ndim else float(prompt)
    if rates.mla_prefill is not None:
        return rates.mla_prefill(tokens)
    return rates.attention * rates.attention_isl_scale(tokens)


def with_mla_prefill(rates: Rates, model: Any, hardware: Hardware, *, kv_dtype: str) -> Rates:
    """``rates`` with the MLA prefill core at its measured kernel's rate by prompt length where
    ``model`` is MLA and the spec has the ``mla_prefill`` table (else ``rates`` unchanged).

    Formula: R(ISL) = P_bf16 · η_mla_prefill(kv dtype, ISL)
    (:func:`~planner.calc.serving.efficiency.mla_prefill_flop_per_s`).
    Ref: AIConfigurator context_mla_perf (TensorRT-LLM 1.3.0rc20).
    Convention: achievable rates only (a caller asking for peak bounds does not call it).
    Example: DeepSeek-V3 on H200, FP8 KV: 240.9e12 FLOP/s at 1,024-token prompts (the MHA
    table's BF16 rate there: 216.3e12).
    """
    from planner.calc.serving import efficiency as eff

    if eff.mla_prefill_flop_per_s(model, hardware, kv_dtype=kv_dtype, prompt_tokens=1.0) is None:
        return rates
    from dataclasses import replace

    return replace(rates, mla_prefill=functools.partial(
        _mla_prefill_rate, model, hardware, kv_dtype))


def _mla_prefill_rate(model: Any, hardware: Hardware, kv_dtype: str, prompt_tokens: Any) -> Any:
    from planner.calc.serving import efficiency as eff

    return eff.mla_prefill_flop_per_s(model, hardware, kv_dtype=kv_dtype,
                                      prompt_tokens=prompt_tokens)


def _attention_isl_scale(hardware: Hardware, dtype: str, scalar: float, prompt_tokens: Any) -> Any:
    """The measured prefill attention fraction at ``prompt_tokens`` over the scalar one."""
    from planner.calc.serving import efficiency as eff

    return eff.attention_prefill_flops_frac(hardware, dtype=dtype,
                                            prompt_tokens=prompt_tokens) / scalar


def gemm_rates_at_rows(hardware: Hardware, *, weights_dtype: str, moe_weights_dtype: str,
                       rows: Any, expert_rows: Any,
                       moe_kernel_table: str | None = None) -> tuple[Any, Any, Any, Any] | None:
    """(dense GEMM FLOP/s, BF16 head FLOP/s, routed-expert FLOP/s, weight-stream bytes/s) at
    ``rows`` (M, the tokens of a TP group) and ``expert_rows`` (rows per expert), scalars or
    arrays; None where the spec has no measured tables (the phase's single factors of
    :func:`serving_rates` hold for every shape).

    Formula: R_gemm = P_table · η_gemm(M), R_head = P_bf16 · η_gemm,bf16(M), R_experts =
    P_table · η_grouped(rows per expert) at the routed experts' own format, B_weights =
    HBM · η_gemm_weight(M): the same tables :func:`serving_rates` reads at one M.
    Ref: AIConfigurator's kernel tables (:mod:`~planner.calc.serving.efficiency`).
    Convention: dense peaks; compute precision as :func:`serving_rates` picks it;
    ``moe_kernel_table``: the engine's grouped table for weight-only experts (vLLM's Marlin:
    :func:`~planner.calc.serving.efficiency.kernel_precision`), where the spec has it.
    Example: H200, FP8, M = 64: R_gemm = 1,979e12 × η_fp8_block(64) from the table.
    """
    from planner.calc.serving import efficiency as eff

    if hardware.gpu.peak_dense_tflop_per_s is None or not eff.has_measured_tables(hardware):
        return None
    rates = []
    for dtype, table in ((weights_dtype, None), (moe_weights_dtype, moe_kernel_table)):
        kernels = eff.kernel_precision(hardware, weights_dtype=dtype, weight_only_moe_table=table)
        compute = _compute_dtype(hardware, kernels.compute_dtype)
        rates.append(_gemm_rates(hardware, kernels, native=compute == kernels.compute_dtype,
                                 compute_dtype=compute,
                                 peak=hardware.peak_dense_flop_per_s(compute), rows=rows,
                                 expert_rows=expert_rows, phase=None))
    bf16 = hardware.peak_dense_flop_per_s("bf16")
    head = bf16 * eff.gemm_flops_frac(hardware, dtype="bf16", rows=rows)
    weights = hardware.gpu.hbm_bandwidth_bytes_per_s * eff.gemm_weight_bandwidth_frac(
        hardware, rows=rows)
    return rates[0][0], head, rates[1][2], weights


def _gemm_rates(hardware: Hardware, kernels: KernelPrecision, *, native: bool,
                compute_dtype: str, peak: float, rows: Any, expert_rows: Any,
                phase: str | None) -> tuple[Any, Any, Any, Any]:
    """(dense GEMM FLOP/s, its fraction, grouped FLOP/s, its fraction): the weights' own kernel
    tables where the device computes in their precision (``native``), else (widened weights)
    the compute precision's; each fraction times the peak its table was measured against."""
    from planner.calc.serving import efficiency as eff

    gemm_key = kernels.gemm_table if native else compute_dtype
    grouped_key = kernels.grouped_table if native else compute_dtype
    gemm = eff.gemm_flops_frac(hardware, dtype=gemm_key, rows=rows)
    grouped = eff.routed_grouped_gemm_flops_frac(hardware, dtype=grouped_key, rows=expert_rows,
                                                 phase=phase)
    return (eff.table_peak_flop_per_s(hardware, grouped=False, dtype=gemm_key, default=peak)
            * gemm, gemm,
            eff.table_peak_flop_per_s(hardware, grouped=True, dtype=grouped_key, default=peak)
            * grouped, grouped)


def _head_note(hardware: Hardware, kernels: KernelPrecision, *, measured: bool,
               weights_dtype: str, rows: float) -> str:
    """Where a step's factors come from, as its header begins."""
    if not measured:
        return "achievable: "
    tables = ("measured kernel tables" if "gemm" not in hardware.efficiency_inherited
              else f"{hardware.efficiency_from}'s measured kernel tables")
    return (f"achievable ({tables}"
            + (f", weight-only {weights_dtype.upper()}" if kernels.weight_only else "")
            + f" at M = {rows:g}): ")


def _attention_factor_text(scalar: float, by_isl: Any) -> str:
    """The attention factor as a header prints it: the scalar, or where prefill reads the
    measured kernel by prompt length (:func:`prefill_attention_flop_per_s`) the table's span."""
    if by_isl is None:
        return f"{scalar:g}"
    return (f"{min(by_isl.frac):g}-{max(by_isl.frac):g} by prompt length "
            f"({by_isl.rows[0]:,g}-{by_isl.rows[-1]:,g} tokens)")


def _basis(gemm_name: str, gemm: float, grouped: float, attention_name: str, attention: str,
           kv: float, weights: float, f: dict[str, float], overlap: float) -> str:
    """The factors a step runs at, as its header prints them."""
    return (f"{gemm_name} x {gemm:.4g}, experts x {grouped:.4g}, {attention_name} x "
            f"{attention}, KV stream x {kv:g}, GEMM weight stream x {weights:g}, links "
            f"x {f['scale_up_bandwidth']:g} / {f['scale_out_bandwidth']:g}"
            + (f", compute x {overlap:g} beside EP kernels" if overlap < 1 else ""))


def _compute_dtype(hardware: Hardware, preferred: str) -> str:
    """``preferred`` where the device has its peak, else the nearest precision it has."""
    peaks = hardware.gpu.peak_dense_tflop_per_s
    return next((d for d in COMPUTE_DTYPE_ORDER[preferred] if getattr(peaks, d) is not None),
                "bf16")


def _base_dtype(weights_dtype: str) -> str:
    """The element type a weight format computes in without measured tables (4-bit: fp4)."""
    return "fp4" if weights_dtype in ("nvfp4", "int4") else weights_dtype


def _table_rows(hardware: Hardware, rows: float | None) -> float:
    """Rows to read a table at: ``rows``, else the largest M of the dense tables."""
    if rows is not None:
        return float(rows)
    tables = hardware.efficiency.gemm or {}
    return float(max((max(t.rows) for t in tables.values()), default=1.0))


def _assumed_note(hardware: Hardware) -> str:
    """"; assumed (from <sibling>): <factors>" where the spec inherits factors, else ""."""
    inherited = hardware.efficiency_inherited
    if not inherited:
        return ""
    if len(inherited) == len(hardware.efficiency.given()):
        return f"; every factor assumed (from {hardware.efficiency_from})"
    return f"; assumed (from {hardware.efficiency_from}): {', '.join(inherited)}"
