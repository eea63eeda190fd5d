"""Closed-form calculators: pure, keyword-only functions of numbers (which work unchanged on numpy
arrays, so a sweep is one call) plus spec-level helpers that read their inputs from a
:class:`~planner.specs.Model` / :class:`~planner.specs.Hardware`. No I/O, no printing, no
formatting. Every result is in base units: bytes, seconds, FLOPs, FLOP/s, bytes/s, tokens/s.

The submodules are imported on first use (``planner.calc.ep_decode_limit`` imports
``planner.calc.ep``), so a command that needs one calculator does not pay for the others.
"""

from __future__ import annotations

from planner._lazy import lazy_exports

_EXPORTS = {
    "EPResult": "ep",
    "ep_decode_limit": "ep",
    "CONVENTIONS": "flops",
    "FlopsResult": "flops",
    "model_flops_per_token": "flops",
    "KVCacheResult": "kv_cache",
    "model_kv_cache": "kv_cache",
    "kv_cache_for_models": "kv_cache",
    "ParamCounts": "params",
    "model_params": "params",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
