"""A prefix cache in the workload model: the share F of each prompt's tokens whose KV cache is
already stored (a shared system prompt, an earlier turn of the conversation) and is read, not
recomputed. Prefill computes the other (1 − F) · ISL tokens; they attend over the whole prompt,
the cached tokens being their prior context as a later chunk of a chunked prefill reads the
earlier chunks. The KV cache a request holds and, disaggregated, moves is unchanged: the whole
prompt's. Closed forms over numpy arrays (F may be an array), for
:func:`planner.calc.serving.workload.serve_workload` and
:func:`planner.calc.serving.disagg_workload.serve_disagg`; and the split of a fleet's GPU-time
between its prefill and decode pools from its daily token counts and per-node rates
(DeepSeek's published day-6 figures, docs/workload.md).

Ref: DeepSeek, "DeepSeek-V3/R1 Inference System Overview" (github.com/deepseek-ai/
open-infra-index, 202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_
overview.md: "Total input tokens: 608B, of which 342B tokens (56.3%) hit the on-disk KV
cache"); 3FS README ("KVCache for Inference: Provides a cost-effective alternative to
DRAM-based caching"); Zheng et al. 2024 (SGLang, RadixAttention); vLLM automatic prefix caching.
"""

from __future__ import annotations

from typing import Any

from planner.errors import UsageError

#: The prefix-cache hit fraction when none is given: no cached tokens (every figure as before).
NO_PREFIX_CACHE_FRAC = 0.0
#: Mean attended position of a run of new tokens as a share of the run (causal: (0 + n) / 2).
CAUSAL_MEAN_POSITION_FRAC = 0.5
#: Seconds per day (a fleet's daily token counts to rates).
SECONDS_PER_DAY = 86_400.0


def checked_prefix_cache_hit_frac(value: Any, *, name: str = "prefix_cache_hit") -> Any:
    """``value`` as a float array when every element is a prefix-cache hit fraction F with
    0 <= F < 1, else a :class:`~planner.errors.UsageError` naming ``name`` (one line).

    Formula: accepted iff 0 <= F < 1 (F = 1 would leave no token to prefill, the first token
    undefined; NaN refused).
    Ref: the module's docstring.
    Convention: None is :data:`NO_PREFIX_CACHE_FRAC` (no prefix cache).
    Example: 0.563 -> array(0.563); 1.0 -> UsageError "prefix_cache_hit: must be at least 0 and
    below 1, the share of each prompt's tokens found in the prefix cache (got 1)".
    """
    import numpy as np

    frac = np.asarray(NO_PREFIX_CACHE_FRAC if value is None else value, dtype=float)
    bad = ~((frac >= 0) & (frac < 1))
    if np.any(bad):
        raise UsageError(f"{name}: must be at least 0 and below 1, the share of each prompt's "
                         f"tokens found in the prefix cache (got {frac[bad].flat[0]:g})")
    return frac


def prefill_computed_tokens(*, isl_tokens: Any, prefix_cache_hit_frac: Any) -> Any:
    """Prompt tokens a request's prefill computes when a share F of them hit the prefix cache
    (tokens; arrays broadcast).

    Formula: n_new = (1 − F) · ISL.
    Ref: DeepSeek day-6 overview (input tokens that "hit the on-disk KV cache" are not
    prefilled again); SGLang RadixAttention; vLLM automatic prefix caching.
    Convention: the cached tokens are the prompt's first F · ISL (a prefix); F = 0 gives ISL.
    Example: ISL = 4,096, F = 0.563: 1,790.0 tokens computed.
    """
    import numpy as np

    return (1 - np.asarray(prefix_cache_hit_frac, dtype=float)) * np.asarray(isl_tokens,
                                                                              dtype=float)


def prefill_mean_context_tokens(*, isl_tokens: Any, prefix_cache_hit_frac: Any) -> Any:
    """Mean position the computed prompt tokens attend over (tokens; arrays broadcast): the
    prefill attention core's context, as for a later chunk of a chunked prefill, which reads
    the earlier chunks' KV.

    Formula: C_pre = F · ISL + (1 − F) · ISL / 2 = ISL · (1 + F) / 2 (the new tokens sit at
    positions F · ISL .. ISL; causal attention: the mean over them).
    Ref: :func:`~planner.calc.serving.rates.prefill_attention_flop_per_s` (a chunk is read at
    2 · its mean context); Agrawal et al. 2024 (Sarathi-Serve: chunked prefill).
    Convention: F = 0 gives ISL / 2, the workload model's prefill context.
    Example: ISL = 4,096, F = 0.563: 3,201.0 positions (F = 0: 2,048).
    """
    import numpy as np

    frac = np.asarray(prefix_cache_hit_frac, dtype=float)
    isl = np.asarray(isl_tokens, dtype=float)
    return frac * isl + (1 - frac) * isl * CAUSAL_MEAN_POSITION_FRAC


def fleet_pool_nodes(*, input_tokens_per_day: Any, output_tokens_per_day: Any,
                     prefill_input_tokens_per_s_per_node: Any,
                     decode_output_tokens_per_s_per_node: Any) -> tuple[Any, Any]:
    """(prefill nodes, decode nodes) a fleet keeps busy on average over a day, from its daily
    token counts and each pool's throughput per node while it works (nodes; arrays).

    Formula: N_prefill = T_in / (r_in · 86,400 s), N_decode = T_out / (r_out · 86,400 s): the
    node-seconds each pool spends on the day's tokens, over a day.
    Ref: DeepSeek day-6 overview: "Total input tokens: 608B", "Total output tokens: 168B",
    "Each H800 node delivers an average throughput of ~73.7k tokens/s input (including cache
    hits) during prefilling or ~14.8k tokens/s output during decoding", "an average occupancy
    of 226.75 nodes".
    Convention: r_in counts cached input tokens too, as the source does (so T_in is every
    input token); the nodes' idle time is in the per-node averages.
    Example: DeepSeek's day: 608e9 / 73.7e3 / 86,400 = 95.48 prefill nodes, 168e9 / 14.8e3 /
    86,400 = 131.38 decode nodes: 226.86 in all (the source: 226.75), decode 57.9%.
    """
    import numpy as np

    prefill = (np.asarray(input_tokens_per_day, dtype=float)
               / np.asarray(prefill_input_tokens_per_s_per_node, dtype=float) / SECONDS_PER_DAY)
    decode = (np.asarray(output_tokens_per_day, dtype=float)
              / np.asarray(decode_output_tokens_per_s_per_node, dtype=float) / SECONDS_PER_DAY)
    return prefill, decode
