"""The prefill:decode ratio solver on a model: candidate layouts for each pool, the workload
model over all of them in one call per pool, :func:`~planner.calc.serving.disagg.best_disagg_split`
over the grid, and the chosen deployment evaluated whole.

Candidates: workers of 1, 2, 4, ... GPUs (at most ``max_gpus_per_worker``); attention TP over
the worker where it fits one scale-up domain, and for an MoE model also attention DP over the
worker (TP 1) with the experts over all of its GPUs (DeepSeek's layout); prefill batches of
:data:`PREFILL_BATCHES` prompts per rank, decode batches of :data:`DECODE_BATCHES` requests per
rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.calc.serving.disagg import DisaggSplit
from planner.calc.serving.disagg_workload import DisaggResult, PoolLayout

if TYPE_CHECKING:
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Prompts per attention-DP rank a prefill candidate batches.
PREFILL_BATCHES = (1, 2, 4)
#: Requests per attention-DP rank a decode candidate holds.
DECODE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Largest worker the solver tries when no GPU total bounds it (GPUs).
MAX_GPUS_PER_WORKER = 256
#: Most prefill workers per candidate pair the grid holds.
MAX_PREFILL_WORKERS = 128


@dataclass(frozen=True)
class DisaggPlan:
    """The solver's answer: the split over the candidate grid, the chosen layouts (with their
    worker counts) and the chosen deployment evaluated by ``serve_disagg``."""

    split: DisaggSplit
    prefill_candidates: PoolLayout    # arrays over the P prefill candidates
    decode_candidates: PoolLayout     # arrays over the D decode candidates
    prefill: PoolLayout | None        # the choice (scalars); None when nothing meets the limits
    decode: PoolLayout | None
    result: DisaggResult | None


def pool_candidates(model: Model, hardware: Hardware, *, max_gpus: int,
                    batches: tuple[int, ...]) -> PoolLayout:
    """Every candidate layout of one pool, as arrays (see the module's docstring)."""
    from planner.specs.model import MoEFFN

    moe = isinstance(model.ffn, MoEFFN)
    layouts = []
    g = 1
    while g <= max_gpus:
        if g <= hardware.scale_up_domain_gpus:
            layouts.append((g, 1))
        if moe and g > 1:
            layouts.append((1, g))
        g *= 2
    rows = [(tp, dp, b) for tp, dp in layouts for b in batches]
    tp, dp, b = (np.array(col, dtype=int) for col in zip(*rows))
    return PoolLayout(workers=1, batch=b, tp=tp, attention_dp=dp)


def _pick(layout: PoolLayout, index: int, workers: int) -> PoolLayout:
    return PoolLayout(workers=workers, batch=int(layout.batch[index]),
                      tp=int(layout.tp[index]), pp=1,
                      attention_dp=int(layout.attention_dp[index]))


def solve_disagg(model: Model, hardware: Hardware, engine: Engine | None, *, isl_tokens: int,
                 osl_tokens: int, ttft_limit_s: float, tpot_limit_s: float,
                 total_gpus: int | None = None, arrival_rate_per_s: float | None = None,
                 weights_dtype: str = "fp8", moe_weights_dtype: str | None = None,
                 kv_dtype: str | None = None, overlap: bool = False,
                 prefix_cache_hit_frac: float | None = None, mtp_draft_tokens: int = 0,
                 mtp_acceptance: float | None = None) -> DisaggPlan:
    """The split and layouts with the most output tokens/s per GPU under the limits, for
    ``total_gpus`` GPUs or a target ``arrival_rate_per_s`` (exactly one of the two); with a
    prefix cache (``prefix_cache_hit_frac``: the prefill pool computes the uncached tokens,
    :func:`~planner.calc.serving.disagg_workload.prefill_piece`) and MTP in the decode pool
    (``mtp_draft_tokens``, ``mtp_acceptance``: TPOT = step / tokens per step,
    :func:`~planner.calc.serving.disagg_workload.decode_piece`)."""
    from planner.calc.serving.disagg import best_disagg_split
    from planner.calc.serving.disagg_context import loaded_context_pass
    from planner.calc.serving.disagg_kv import kv_bytes_per_request, kv_link_rates, kv_sender_gpus
    from planner.calc.serving.disagg_workload import decode_piece, prefill_piece, serve_disagg

    most = MAX_GPUS_PER_WORKER if total_gpus is None else min(total_gpus, MAX_GPUS_PER_WORKER)
    dtypes: dict[str, Any] = dict(weights_dtype=weights_dtype,
                                  moe_weights_dtype=moe_weights_dtype, kv_dtype=kv_dtype)
    pc = pool_candidates(model, hardware, max_gpus=most, batches=PREFILL_BATCHES)
    dc = pool_candidates(model, hardware, max_gpus=most, batches=DECODE_BATCHES)
    pre = prefill_piece(model, hardware, engine, isl_tokens=isl_tokens, layout=pc,
                        overlap=overlap, prefix_cache_hit_frac=prefix_cache_hit_frac, **dtypes)
    mtp: dict[str, Any] = dict(mtp_draft_tokens=mtp_draft_tokens, mtp_acceptance=mtp_acceptance)
    dec = decode_piece(model, hardware, engine, isl_tokens=isl_tokens, osl_tokens=osl_tokens,
                       layout=dc, overlap=overlap, **mtp, **dtypes)
    kv = dec.memory.kv_dtype
    up, out, up_lat, out_lat = kv_link_rates(hardware)

    split = best_disagg_split(
        prefill_batch_s=pre.time_s, request_overhead_s=pre.request_overhead_s,
        prefill_requests_per_batch=pc.requests_per_worker,
        prefill_gpus_per_worker=pc.gpus_per_worker,
        prefill_sender_gpus=kv_sender_gpus(model, kv_dtype=kv, tp=np.asarray(pc.tp)[:, None],
                                           pp=pc.pp, decode_tp=np.asarray(dc.tp)[None, :]),
        prefill_fits=np.asarray(pre.memory.fits), decode_step_s=dec.time_s,
        decode_tpot_s=dec.time_s / np.asarray(dec.tokens_per_step),
        decode_concurrency=dc.requests_per_worker,
        decode_gpus_per_worker=dc.gpus_per_worker, decode_fits=np.asarray(dec.memory.fits),
        kv_bytes_per_request=kv_bytes_per_request(model, kv_dtype=kv, isl_tokens=isl_tokens),
        isl_tokens=isl_tokens, osl_tokens=osl_tokens,
        scale_up_domain_gpus=hardware.scale_up_domain_gpus, scale_up_bytes_per_s=up,
        scale_out_bytes_per_s=out, scale_up_latency_s=up_lat, scale_out_latency_s=out_lat,
        ttft_limit_s=ttft_limit_s, tpot_limit_s=tpot_limit_s,
        total_gpus=total_gpus, arrival_rate_per_s=arrival_rate_per_s,
        max_prefill_workers=MAX_PREFILL_WORKERS,
        prefill_loaded=loaded_context_pass(model, hardware, engine, unloaded=pre, prefill=pc,
                                           isl_tokens=isl_tokens, overlap=overlap,
                                           prefix_cache_hit_frac=prefix_cache_hit_frac,
                                           **dtypes))
    if not split.found:
        return DisaggPlan(split, pc, dc, None, None, None)
    prefill = _pick(pc, split.prefill_choice, split.prefill_workers)
    decode = _pick(dc, split.decode_choice, split.decode_workers)
    result = serve_disagg(model, hardware, engine, isl_tokens=isl_tokens, osl_tokens=osl_tokens,
                          prefill=prefill, decode=decode, arrival_rate_per_s=arrival_rate_per_s,
                          overlap=overlap, prefix_cache_hit_frac=prefix_cache_hit_frac, **mtp,
                          **dtypes)
    return DisaggPlan(split, pc, dc, prefill, decode, result)


def scalar(value: Any) -> float:
    """One figure of a 0-d result array as a float (for reports)."""
    return float(np.asarray(value).reshape(-1)[0])
