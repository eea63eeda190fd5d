"""The error-band line of serve and plan output: how far the planner's predictions were from
measured runs in the same regime (hardware x engine x mode), or that there is no such data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.specs.error_bands import ErrorBand


def regime_label(hardware: str, engine: str | None, mode: str) -> str:
    """``H200 · TensorRT-LLM · aggregated`` (an idealised engine: ``no engine``)."""
    return f"{hardware} · {engine or 'no engine'} · {mode}"


def error_band_text(band: ErrorBand | None, *, hardware: str, engine: str | None,
                    mode: str = "aggregated", metric: str | None = None) -> str:
    """The line serve and plan print under their figures: ``typical error on H200 ·
    TensorRT-LLM · aggregated: TTFT 14%, TPOT 9% (median of 120 runs)``; with ``metric``
    (``ttft`` / ``tpot``) that metric's only (``typical error on ...: 9%``); without a band:
    ``no validation data for H200 · vLLM · disaggregated``. ``hardware`` and ``engine`` are the
    labels to print."""
    label = regime_label(hardware, engine, mode)
    if band is None:
        return f"no validation data for {label}"
    ttft, tpot = band.ttft_median_error_pct, band.tpot_median_error_pct
    if metric is not None:
        value = ttft if metric == "ttft" else tpot
        return f"typical error on {label}: {value:.0f}%"
    return (f"typical error on {label}: TTFT {ttft:.0f}%, TPOT {tpot:.0f}% "
            f"(median of {band.runs:,} runs)")


def error_band_record(band: ErrorBand | None) -> dict[str, Any]:
    """The band's figures for JSON and CSV (None where the regime has no validation data)."""
    if band is None:
        return {"error_band_runs": None, "ttft_typical_error_pct": None,
                "tpot_typical_error_pct": None}
    return {"error_band_runs": band.runs,
            "ttft_typical_error_pct": band.ttft_median_error_pct,
            "tpot_typical_error_pct": band.tpot_median_error_pct}
