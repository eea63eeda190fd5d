"""Kernel efficiency: the achieved fraction of a device's dense peak, as a function of shape,
from the hardware spec's ``efficiency:`` block (measured kernel tables where the spec gives
them, else single fractions), and the precision a weight format computes in on a device.

Ref: AIConfigurator's measured kernel tables (github.com/ai-dynamo/aiconfigurator, Apache-2.0,
``aic-core/src/aiconfigurator_core/systems/data/<system>/{gemm,moe,attention,comm}``), reduced
by ``benchmarks/extract_aic_kernels.py``; DeepGEMM, FlashMLA and DeepEP READMEs (H800). Each
value's source and reduction sit beside it in ``hardware/*.yaml``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware, RowsTable
    from planner.specs.model import Model

#: Weight formats stored at 4 bits: MXFP4 (E8M0 scale per 32), NVFP4 (E4M3 scale per 16),
#: INT4 (AWQ/GPTQ group scales).
FOUR_BIT_WEIGHTS = ("fp4", "nvfp4", "int4")
#: 4-bit formats tensor cores run natively where the device has an FP4 peak (Blackwell, CDNA 4);
#: INT4 has no tensor-core path on Hopper or Blackwell: it is weight-only everywhere.
NATIVE_FP4_WEIGHTS = ("fp4", "nvfp4")
#: Grouped-GEMM rows per expert from which the scalar fallback takes the prefill (contiguous
#: layout) factor rather than the decode (masked layout) one, when no phase is given.
CONTIGUOUS_LAYOUT_MIN_ROWS = 128


@dataclass(frozen=True)
class KernelPrecision:
    """How a weight format runs on a device: the kernel tables it reads, the peak it computes
    at, and whether the weights are dequantized first (weight-only)."""

    gemm_table: str       # key of ``efficiency.gemm``
    grouped_table: str    # key of ``efficiency.grouped_gemm``
    compute_dtype: str    # the dense peak it runs at: bf16, fp8 or fp4
    weight_only: bool


def kernel_precision(hardware: Hardware, *, weights_dtype: str,
                     weight_only_moe_table: str | None = None) -> KernelPrecision:
    """The kernels a weight format runs as on ``hardware``.

    Formula: bf16 -> BF16 GEMMs; fp8 -> block-scaled FP8 GEMMs (``fp8_block``, else per-tensor
    ``fp8``); fp4/nvfp4 with an FP4 peak -> native FP4 GEMMs at the FP4 peak (MXFP4 experts:
    the ``w4a8`` grouped table where given, MXFP4 weights times MXFP8 activations at the FP8
    peak, as TensorRT-LLM runs gpt-oss on Blackwell); fp4/nvfp4 without one, and int4
    everywhere -> weight-only: 4-bit weights (plus scales) streamed, dequantized and computed in
    BF16 (the ``w4a16`` tables where measured, dense and grouped, else the ``bf16`` ones).
    Ref: NVIDIA Hopper and Ampere tensor cores have no FP4 path (PTX ISA: ``.e2m1`` MMA from
    sm_100); AIConfigurator's ``w4a16_mxfp4`` MoE kernels on H100/H200.
    Convention: a table the spec lacks falls back to the scalar factors (:func:`gemm_flops_frac`);
    ``weight_only_moe_table`` (an engine's: vLLM's Marlin MoE, ``w4a16_marlin``) replaces the
    weight-only experts' grouped table where the spec has it.
    Example: gpt-oss experts (fp4) on H100: weight-only, BF16 compute, grouped table w4a16; on
    B200: native, grouped table w4a8 (of the 4,500 TFLOP/s FP8 peak); NVFP4 on B200: tables
    fp4, of the 9,000 TFLOP/s FP4 peak.
    """
    peaks = hardware.gpu.peak_dense_tflop_per_s
    has_fp4 = peaks is not None and peaks.fp4 is not None
    if weights_dtype in FOUR_BIT_WEIGHTS:
        if weights_dtype in NATIVE_FP4_WEIGHTS and has_fp4:
            mxfp4_moe = weights_dtype == "fp4" and "w4a8" in (hardware.efficiency.grouped_gemm
                                                              or {})
            return KernelPrecision("fp4", "w4a8" if mxfp4_moe else "fp4", "fp4", False)
        dense_tables = hardware.efficiency.gemm or {}
        grouped_tables = hardware.efficiency.grouped_gemm or {}
        grouped = next(t for t in (weight_only_moe_table, "w4a16", "bf16")
                       if t in grouped_tables or t == "bf16")
        return KernelPrecision("w4a16" if "w4a16" in dense_tables else "bf16", grouped, "bf16",
                               True)
    gemm = "fp8_block" if weights_dtype == "fp8" and "fp8_block" in (
        hardware.efficiency.gemm or {}) else weights_dtype
    grouped = "fp8_block" if weights_dtype == "fp8" and "fp8_block" in (
        hardware.efficiency.grouped_gemm or {}) else weights_dtype
    return KernelPrecision(gemm, grouped, weights_dtype, False)


def _monotone_points(table: RowsTable) -> tuple[list[float], list[float]]:
    """The table's (M, fraction) points with each fraction capped at the previous one × the
    ratio of their M: a GEMM on more rows never takes less time (time ∝ M / η), so a
    measurement's noise (M = 2 timed faster than M = 1) does not make a larger batch faster."""
    rows = [float(r) for r in table.rows]
    fracs = [float(table.frac[0])]
    for r0, r1, f1 in zip(rows, rows[1:], table.frac[1:]):
        fracs.append(min(float(f1), fracs[-1] * r1 / r0))
    return rows, fracs


def _interp_log_rows(table: RowsTable, rows, *, monotone: bool = True):
    """The table's fraction at ``rows``, linear in log η against log M between its points
    (so that the time M / η stays monotone in M between them: the fractions are capped by
    :func:`_monotone_points` unless not ``monotone``), constant past its ends (float for a
    scalar, without numpy; else an array)."""
    points_m, points_f = (_monotone_points(table) if monotone
                          else ([float(r) for r in table.rows], [float(f) for f in table.frac]))
    if isinstance(rows, numbers.Real):
        m = float(rows)
        if m <= points_m[0]:
            return points_f[0]
        for r0, r1, f0, f1 in zip(points_m, points_m[1:], points_f, points_f[1:]):
            if m <= r1:
                w = math.log(m / r0) / math.log(r1 / r0)
                return float(math.exp(math.log(f0) + w * (math.log(f1) - math.log(f0))))
        return points_f[-1]
    import numpy as np

    x = np.log(np.maximum(np.asarray(rows, dtype=float), 1e-9))
    out = np.exp(np.interp(x, np.log(np.asarray(points_m)), np.log(np.asarray(points_f))))
    return float(out) if out.ndim == 0 else out


def _scalar(value: float, rows):
    if isinstance(rows, numbers.Real):
        return float(value)
    import numpy as np

    shaped = np.broadcast_to(np.asarray(value, dtype=float), np.shape(rows))
    return float(shaped) if shaped.ndim == 0 else shaped.copy()


def table_peak_flop_per_s(hardware: Hardware, *, grouped: bool, dtype: str,
                          default: float) -> float:
    """The dense peak (FLOP/s) a measured table's fractions are of, else ``default``.

    Formula: P(table.peak) where ``efficiency.gemm`` (``grouped``: ``grouped_gemm``) has a table
    for ``dtype`` and the device gives that peak; else ``default``.
    Ref: :class:`~planner.specs.hardware.RowsTable` (``peak``).
    Convention: a fraction is only ever multiplied by the peak it was measured against.
    Example: B200, grouped w4a8: 4,500e12 (FP8); B200, grouped fp4: 9,000e12.
    """
    tables = (hardware.efficiency.grouped_gemm if grouped else hardware.efficiency.gemm) or {}
    peaks = hardware.gpu.peak_dense_tflop_per_s
    table = tables.get(dtype)
    if table is None or peaks is None or getattr(peaks, table.peak) is None:
        return default
    return hardware.peak_dense_flop_per_s(table.peak)


def has_measured_tables(hardware: Hardware) -> bool:
    """Whether ``hardware``'s GEMM factors are measured tables over rows (which then include the
    tile padding of small M: the step model does not pad again).

    Formula: ``efficiency.gemm`` given (own or inherited).
    Ref: :mod:`planner.calc.serving.efficiency`.
    Convention: the grouped table alone does not count.
    Example: h200 (AIConfigurator tables): True; h800 (DeepGEMM scalars): False.
    """
    return bool(hardware.efficiency.gemm)


def gemm_flops_frac(hardware: Hardware, *, dtype: str, rows):
    """Achieved fraction of the dense peak for a dense GEMM of ``rows`` (M, tokens) at
    ``dtype`` (a key of ``efficiency.gemm``: bf16, fp8, fp8_block, fp4), scalars or arrays.

    Formula: the table's fraction interpolated linearly in log M (constant past its first and
    last M); without a table for ``dtype``, ``efficiency.matmul_flops`` for every M.
    Ref: AIConfigurator gemm_perf tables (``benchmarks/extract_aic_kernels.py``: median achieved
    FLOP/s over layer-sized (N, K) at each M / the dense peak); DeepGEMM (H800 scalar).
    Convention: the fraction is of the peak of the table's ``peak`` precision; small-M values
    include the weight streaming and tile padding the kernels measured.
    Example: H200 BF16: M = 1: 0.0032; M = 4,096: 0.7978; M = 2,048: 0.78445 (halfway in log M
    between 0.7711 at 1,024 and 0.7978 at 4,096).
    """
    tables = hardware.efficiency.gemm or {}
    if dtype in tables:
        return _interp_log_rows(tables[dtype], rows)
    return _scalar(hardware.efficiency_frac("matmul_flops").frac, rows)


def grouped_gemm_flops_frac(hardware: Hardware, *, dtype: str, rows, phase: str | None = None):
    """Achieved fraction of the dense peak for MoE grouped GEMMs with ``rows`` rows per expert,
    at ``dtype`` (bf16, fp8, fp8_block, fp4, w4a16, w4a8), scalars or arrays.

    Formula: the ``efficiency.grouped_gemm`` table interpolated in log rows; without one,
    ``grouped_gemm_flops`` (decode, masked layout) or ``grouped_gemm_prefill_flops`` (prefill,
    contiguous layout): by ``phase``, else by rows >= CONTIGUOUS_LAYOUT_MIN_ROWS.
    Ref: AIConfigurator moe_perf tables (balanced routing; FLOPs T·topk·6hi / (tp·ep));
    DeepGEMM masked / contiguous grouped GEMMs (H800 scalars).
    Convention: rows per expert = tokens · top-k / experts.
    Example: H200 FP8 block-scaled, 16 rows per expert: 0.0413 of 1,979 TFLOP/s; H800 decode:
    0.469 for any rows.
    """
    tables = hardware.efficiency.grouped_gemm or {}
    if dtype in tables:
        return _interp_log_rows(tables[dtype], rows)
    if phase is not None:
        name = "grouped_gemm_flops" if phase == "decode" else "grouped_gemm_prefill_flops"
        return _scalar(hardware.efficiency_frac(name).frac, rows)
    decode = hardware.efficiency_frac("grouped_gemm_flops").frac
    prefill = hardware.efficiency_frac("grouped_gemm_prefill_flops").frac
    if isinstance(rows, numbers.Real):
        return prefill if float(rows) >= CONTIGUOUS_LAYOUT_MIN_ROWS else decode
    import numpy as np

    out = np.where(np.asarray(rows) >= CONTIGUOUS_LAYOUT_MIN_ROWS, prefill, decode)
    return float(out) if out.ndim == 0 else out


def routed_grouped_gemm_flops_frac(hardware: Hardware, *, dtype: str, rows,
                                   phase: str | None = None):
    """:func:`grouped_gemm_flops_frac` for routed experts under random routing: the measured
    (balanced-routing) table read at the experts a random routing hits and the rows each gets.

    Formula: η = η_bal(h) · η_bal(r / h) / η_bal(1), h = 1 − e^(−r) (the share of experts a
    Poisson count of mean r rows reaches), r = rows per expert
    (:func:`~planner.calc.serving.kernels.random_routing_expert_rate`); without a table, the
    scalar factors of :func:`grouped_gemm_flops_frac` unchanged.
    Ref: AIConfigurator moe_perf, balanced against power_law_1.01 routing
    (benchmarks/moe_routing_parts.py): Kimi-K2.5 NVFP4 on GB200, EP 8, 48 tokens (r = 1):
    211.4 µs balanced, 137.6 µs power-law; the planner's routed experts 183.8 µs read at r,
    142.3 µs with this fraction.
    Convention: h in the Poisson limit (k / E small; Kimi-K2.5's binomial 1 − (1 − 8/384)^48
    = 0.636 against 0.632); r large: η_bal(r) (h = 1), r small: η_bal(r) (r / h -> 1).
    Example: GB200 NVFP4, r = 1 (h = 0.632): 0.00297 (0.0023 read at r, the routed time 0.77x);
    r = 64: 0.0835 (as the table).
    """
    from planner.calc.serving.kernels import random_routing_expert_rate

    if dtype not in (hardware.efficiency.grouped_gemm or {}):
        return grouped_gemm_flops_frac(hardware, dtype=dtype, rows=rows, phase=phase)
    import numpy as np

    out = random_routing_expert_rate(
        rate_at=lambda x: grouped_gemm_flops_frac(hardware, dtype=dtype, rows=x),
        mean_rows=np.asarray(rows, dtype=float), hit_frac=-np.expm1(-np.asarray(rows, float)))
    return float(out) if np.ndim(out) == 0 else out


def attention_flops_frac(hardware: Hardware, *, phase: str, dtype: str = "bf16") -> float:
    """Achieved fraction of the BF16 (``dtype`` fp8: FP8) dense peak for the attention core.

    Formula: ``attention_fp8_flops`` for fp8, else ``attention_flops``; the same in both phases.
    Ref: AIConfigurator context_attention tables (median over isl >= 4,096; causal FLOPs
    2·B·isl²·n_h·d_h); FlashMLA (H800).
    Convention: decode attention is bound by the KV stream (:func:`hbm_bandwidth_frac`); its
    compute fraction is the prefill one (``phase`` is accepted for when they part).
    Example: H200 BF16: 0.5087 (503.1 of 989 TFLOP/s).
    """
    del phase
    name = "attention_fp8_flops" if dtype == "fp8" else "attention_flops"
    return hardware.efficiency_frac(name).frac


def attention_prefill_flops_frac(hardware: Hardware, *, dtype: str = "bf16",
                                 prompt_tokens: Any) -> Any:
    """Achieved fraction of the ``dtype`` dense peak for the prefill attention core of prompts
    of ``prompt_tokens`` tokens, scalars or arrays.

    Formula: the ``efficiency.attention_by_isl`` table of ``dtype`` interpolated in log ISL
    (constant past its first and last ISL); without one, :func:`attention_flops_frac` for
    every ISL.
    Ref: AIConfigurator context_attention tables (``benchmarks/extract_aic_kernels.py``: median
    achieved FLOP/s 2·B·isl²·n_h·d_h / t over the runs at each ISL, no window).
    Convention: the kernel's rate rises with the prompt (B200 BF16: 321 TFLOP/s at 1,024
    tokens, 983 at 8,192): the scalar factor, a median over ISL >= 4,096, held it at the
    long-prompt rate for every prompt.
    Example: B200 BF16 at 1,024 tokens: 0.1427 (321 of 2,250 TFLOP/s).
    """
    tables = hardware.efficiency.attention_by_isl or {}
    if dtype in tables:
        return _interp_log_rows(tables[dtype], prompt_tokens, monotone=False)
    return _scalar(attention_flops_frac(hardware, phase="prefill", dtype=dtype), prompt_tokens)


def hbm_bandwidth_frac(hardware: Hardware) -> float:
    """Achieved fraction of the HBM peak for streaming the KV cache (decode attention).

    Formula: ``efficiency.hbm_bandwidth``.
    Ref: AIConfigurator generation_attention tables (bytes B·(isl + step)·2·n_kv·d_h·2 / t);
    FlashMLA (H800: 3,000 of 3,350 GB/s).
    Convention: one fraction per device.
    Example: H200: 0.7298 (3,502.9 of 4,800 GB/s).
    """
    return hardware.efficiency_frac("hbm_bandwidth").frac


def gemm_weight_bandwidth_frac(hardware: Hardware, *, rows):
    """Achieved fraction of the HBM peak for the weights a GEMM streams (small M).

    Formula: ``efficiency.gemm_weight_bandwidth`` for every ``rows``.
    Ref: AIConfigurator gemm_perf tables (BF16, M = 1..8: bytes 2NK + 2M(N + K) / t); DeepGEMM
    small-M GEMMs (H800).
    Convention: the compute tables carry the shape dependence; this is the memory roofline.
    Example: H200: 0.671 (3,220.9 of 4,800 GB/s) at any M.
    """
    return _scalar(hardware.efficiency_frac("gemm_weight_bandwidth").frac, rows)


def mla_decode_flops_frac(hardware: Hardware, *, kv_dtype: str, heads_per_gpu):
    """Achieved fraction of the BF16 dense peak for MLA decode attention (the absorbed core over
    the cached latent) with ``heads_per_gpu`` query heads on one GPU and a ``kv_dtype`` cache,
    scalars or arrays; None where the spec has no ``efficiency.mla_decode`` table.

    Formula: the ``mla_decode`` table of the KV dtype (else the BF16 one) interpolated linearly
    in log heads (constant past its ends); FLOPs 2·n_h·C·(576 + 512) per sequence and layer.
    Ref: AIConfigurator generation_mla_perf tables (TensorRT-LLM 1.3.0rc20; median over runs of
    B·C >= 262,144 cached tokens at each head count, ``benchmarks/extract_aic_kernels.py``).
    Convention: the kernel's time whatever binds it: with few heads per GPU the latent stream
    (the fraction falls in proportion to the heads), with 128 the tensor cores (FP8 KV runs the
    FP8 MMA: over 0.5 of the BF16 peak on Blackwell). The points are read as measured, not
    capped to a time monotone in heads: Blackwell's kernel runs 32 heads slower than 64 (a
    different tile path), a property of the kernel, not noise.
    Example: B200, FP8 KV, 16 heads (TP 8): 0.1524; 128 heads (attention DP): 0.9501; H200,
    FP8 KV, 128 heads: 0.6753.
    """
    tables = hardware.efficiency.mla_decode or {}
    table = tables.get(kv_dtype, tables.get("bf16"))
    if table is None:
        return None
    return _interp_log_rows(table, heads_per_gpu, monotone=False)


def mla_decode_flop_per_s(model: Model, hardware: Hardware, *, kv_dtype: str, tp):
    """FLOP/s of ``model``'s MLA decode core on one GPU at TP ``tp`` (heads n_h / TP per GPU;
    attention DP keeps all of them), scalars or arrays; None for another attention, a device
    without peaks or a spec without the ``mla_decode`` table.

    Formula: R = P_bf16 · η_mla(kv dtype, n_h / TP) (:func:`mla_decode_flops_frac`), the
    measured kernel's time F / R whatever binds it (no separate KV-stream roof).
    Ref: AIConfigurator generation_mla_perf (TensorRT-LLM 1.3.0rc20).
    Convention: the table measures DeepSeek's geometry (d_c 512, d_R 64); other MLA models
    (Kimi-K2: the same geometry, 64 heads) read it at their own head count.
    Example: DeepSeek-V3 on B200, FP8 KV, TP 8: 2,250e12 × 0.1524 = 342.9e12 FLOP/s.
    """
    from planner.specs.model import MLAttention

    att = model.attention
    if not isinstance(att, MLAttention) or hardware.gpu.peak_dense_tflop_per_s is None:
        return None
    frac = mla_decode_flops_frac(hardware, kv_dtype=kv_dtype, heads_per_gpu=att.num_heads / tp)
    return None if frac is None else hardware.peak_dense_flop_per_s("bf16") * frac


def mla_prefill_flops_frac(hardware: Hardware, *, kv_dtype: str, prompt_tokens: Any) -> Any:
    """Achieved fraction of the BF16 dense peak for the MLA prefill core (expanded: q and k of
    d_nope + d_R, v of d_v per head) of prompts of ``prompt_tokens`` tokens with a ``kv_dtype``
    cache, scalars or arrays; None where the spec has no ``efficiency.mla_prefill`` table.

    Formula: the ``mla_prefill`` table of the KV dtype (else the BF16 one) interpolated linearly
    in log ISL (constant past its ends); FLOPs B·isl²·n_h·(192 + 128) per layer (causal).
    Ref: AIConfigurator context_mla_perf tables (TensorRT-LLM 1.3.0rc20; median over the runs
    of >= 16 (sequence, head) pairs per GPU at each ISL, ``benchmarks/extract_aic_kernels.py``).
    Convention: one rate per prompt length whatever the heads per GPU and prompts per pass (the
    table's median); MLA's own kernel, 12-33% faster at 1K-8K than the MHA context kernel
    (``attention_by_isl``) the other models read.
    Example: H200, FP8 KV, 1,024 tokens: 0.2436 (240.9 of 989 TFLOP/s); 8,192: 0.6138.
    """
    tables = hardware.efficiency.mla_prefill or {}
    table = tables.get(kv_dtype, tables.get("bf16"))
    if table is None:
        return None
    return _interp_log_rows(table, prompt_tokens, monotone=False)


def mla_prefill_flop_per_s(model: Model, hardware: Hardware, *, kv_dtype: str,
                           prompt_tokens: Any) -> Any:
    """FLOP/s of ``model``'s MLA prefill core on one GPU for prompts of ``prompt_tokens``
    tokens, scalars or arrays; None for another attention, a device without peaks or a spec
    without the ``mla_prefill`` table.

    Formula: R = P_bf16 · η_mla_prefill(kv dtype, ISL) (:func:`mla_prefill_flops_frac`).
    Ref: AIConfigurator context_mla_perf (TensorRT-LLM 1.3.0rc20).
    Convention: the table measures DeepSeek's geometry (192 + 128 per head); other MLA models
    (Kimi-K2: the same head dims) read it as measured.
    Example: DeepSeek-V3 on H200, FP8 KV, 1,024 tokens: 989e12 × 0.2436 = 240.9e12 FLOP/s.
    """
    from planner.specs.model import MLAttention

    if not isinstance(model.attention, MLAttention) or hardware.gpu.peak_dense_tflop_per_s is None:
        return None
    frac = mla_prefill_flops_frac(hardware, kv_dtype=kv_dtype, prompt_tokens=prompt_tokens)
    return None if frac is None else hardware.peak_dense_flop_per_s("bf16") * frac
