"""Closed-form calculators: pure, keyword-only functions of numbers (which work unchanged on numpy
arrays, so a sweep is one call) plus spec-level helpers that read their inputs from a
:class:`~planner.specs.Model` / :class:`~planner.specs.Hardware`. No I/O, no printing, no
formatting. Every result is in base units: bytes, seconds, FLOPs, FLOP/s, bytes/s, tokens/s.

The submodules are imported on first use (``planner.calc.ep_decode_limit`` imports
``planner.calc.ep``), so a command that needs one calculator does not pay for the others. Every
public calculator's docstring has ``Formula:``, ``Ref:``, ``Convention:`` and ``Example:``
sections (tests/test_calc_docstrings.py walks them); calculators name their parameters, never a
front end's spelling of them (an input taken from an argument has the origin
``argument <parameter>``).
"""

from __future__ import annotations

from planner._lazy import lazy_exports

_EXPORTS = {
    "Input": "common",
    "Parts": "common",
    "ParamCounts": "params",
    "model_params": "params",
    "KVCacheResult": "kv_cache",
    "model_kv_cache": "kv_cache",
    "kv_cache_for_models": "kv_cache",
    "CONVENTIONS": "flops",
    "FlopsResult": "flops",
    "model_flops_per_token": "flops",
    "EPResult": "ep",
    "ep_decode_limit": "ep",
    "RoutingResult": "routing",
    "node_limited_routing": "routing",
    "collective_time_s": "collectives",
    "hardware_collective": "collectives",
    "Topology": "network",
    "NetworkCost": "network",
    "topology": "network",
    "topology_cost": "network",
    "ScheduleResult": "pipeline",
    "pipeline_schedules": "pipeline",
    "pipeline_chunk_times": "pipeline",
    "TrainResult": "training",
    "train_run": "training",
    "expert_imbalance_ratio": "imbalance",
    "hottest_rank_factors": "imbalance",
    "format_errors": "numerics",
    "accumulation_errors": "numerics",
    "comm_bytes_per_token": "numerics",
    "ServeResult": "serving",
    "serve": "serving",
    "FitResult": "serving",
    "fewest_gpus": "serving",
    "MemoryResult": "serving",
    "memory_per_gpu": "serving",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
