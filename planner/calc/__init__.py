"""Closed-form calculators: pure, keyword-only functions of numbers (which work unchanged on numpy
arrays, so a sweep is one call) plus spec-level helpers that read their inputs from a
:class:`~planner.specs.Model` / :class:`~planner.specs.Hardware`. No I/O, no printing, no
formatting. Every result is in base units: bytes, seconds, FLOPs, FLOP/s, bytes/s, tokens/s."""

from planner.calc.ep import EPResult, ep_decode_limit
from planner.calc.flops import CONVENTIONS, FlopsResult, model_flops_per_token
from planner.calc.kv_cache import KVCacheResult, model_kv_cache
from planner.calc.params import ParamCounts, model_params

__all__ = [
    "CONVENTIONS",
    "EPResult",
    "FlopsResult",
    "KVCacheResult",
    "ParamCounts",
    "ep_decode_limit",
    "model_flops_per_token",
    "model_kv_cache",
    "model_params",
]
