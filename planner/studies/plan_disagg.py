"""``planner plan --disagg``: the best disaggregated deployment (a prefill pool and a decode
pool, the KV cache moved between them) beside the aggregated layouts, from the ratio solver of
:mod:`planner.studies.disagg` run once per hardware and precision group.

The solver sizes the two pools for a number of GPUs (``--gpus``) or a request rate
(``--request-rate``) under both latency limits, over its own candidate layouts (TP within a
scale-up domain, or attention DP with the experts over the worker, PP 1); the plan keeps the
candidate with the most output tokens/s per GPU. It is not part of the Pareto frontier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model
    from planner.studies.plan import PlanQuery


def _limits(query: PlanQuery) -> tuple[float, float]:
    """(TTFT, TPOT) limits (s) the solver needs, or a usage error naming the options."""
    tpot = query.tpot_s
    if tpot is None and query.min_tokens_per_s_per_user is not None:
        tpot = 1 / query.min_tokens_per_s_per_user
    if query.ttft_s is None or tpot is None:
        raise UsageError("--disagg needs --ttft-ms and --tpot-ms (or "
                         "--min-tokens-per-s-per-user): the pools are sized under both")
    if (query.gpus is None) == (query.request_rate_per_s is None):
        raise UsageError("--disagg needs --gpus or --request-rate (one of them): the pools are "
                         "sized for it")
    return query.ttft_s, tpot


def disagg_candidates(model: Model, hardwares: list[Hardware], engine: Any,
                      query: PlanQuery, groups: Any) -> list[dict[str, Any]]:
    """One record per hardware and precision group where the solver finds a split: the two
    pools, their GPUs, the steady state's figures, $ and J per output token."""
    from planner.calc.cost import joules_per_token, usd_per_million_tokens
    from planner.studies.disagg import scalar, solve_disagg
    from planner.studies.plan import price_of

    ttft, tpot = _limits(query)
    out = []
    for hw in hardwares:
        price, _ = price_of(hw, query)
        for weights, moe_weights, kv in groups(model, hw):
            p = solve_disagg(model, hw, engine, isl_tokens=query.isl, osl_tokens=query.osl,
                             ttft_limit_s=ttft, tpot_limit_s=tpot, total_gpus=query.gpus,
                             arrival_rate_per_s=query.request_rate_per_s,
                             prefix_cache_hit_frac=query.prefix_cache_hit_frac,
                             weights_dtype=weights, moe_weights_dtype=moe_weights, kv_dtype=kv)
            if p.result is None or p.prefill is None or p.decode is None:
                continue
            s = p.result.state
            rec: dict[str, Any] = {
                "role": "disagg_best", "hardware": hw.name or hw.label,
                "weights_dtype": weights, "moe_weights_dtype": moe_weights or weights,
                "kv_dtype": kv, "bound_side": p.split.bound}
            for side, pool in (("prefill", p.prefill), ("decode", p.decode)):
                rec.update({f"{side}_workers": pool.workers, f"{side}_tp": pool.tp,
                            f"{side}_attention_dp": pool.attention_dp,
                            f"{side}_batch": pool.batch})
            for k in ("prefill_gpus", "decode_gpus", "ttft_s", "tpot_s", "e2e_latency_s",
                      "tokens_per_s_per_gpu", "tokens_per_s_per_user", "request_rate_per_s",
                      "kv_transfer_s"):
                rec[k] = scalar(getattr(s, k))
            rec["total_gpus"] = int(rec["prefill_gpus"] + rec["decode_gpus"])
            per_gpu = rec["tokens_per_s_per_gpu"]
            rec["usd_per_million_tokens"] = (None if price is None else usd_per_million_tokens(
                usd_per_gpu_hour=price, tokens_per_s_per_gpu=per_gpu))
            rec["joules_per_token"] = (None if hw.gpu.tdp_w is None else joules_per_token(
                board_power_w=hw.gpu.tdp_w, tokens_per_s_per_gpu=per_gpu))
            out.append(rec)
    return out


def best_disagg(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record with the most output tokens/s per GPU (ties: fewer GPUs), or None."""
    if not records:
        return None
    return max(records, key=lambda r: (r["tokens_per_s_per_gpu"], -r["total_gpus"]))
