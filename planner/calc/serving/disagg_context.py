"""A disaggregated deployment's prefill (context) worker under sustained load: the prompts one
context-only iteration takes when its queue holds more than it can (its token budget's worth,
:func:`context_batch_per_rank`) and that iteration's time from the workload model
(:func:`~.disagg_workload.prefill_piece`): the pass that sets the prefill pool's capacity.
Arrays in, arrays out.

Ref: TensorRT-LLM's PyExecutor (a busy executor drains its request queue every iteration,
``_get_from_request_queue`` with ``timedelta(0)``) and its capacity and micro-batch schedulers
(context requests go into one iteration while they fit ``max_num_tokens`` and
``max_batch_size``); InferenceX's H200 DeepSeek-R1 TensorRT-LLM recipes (NVIDIA/srt-slurm
``recipes/trtllm/h200/1k1k/stp/c32_ctx1_gen9_tep8_batch256_eplb0_mtp0.yaml``: prefill
``max_num_tokens: 8192``, ``max_batch_size: 8``, ``enable_chunked_prefill: false``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from planner.calc.serving.disagg_workload import PoolLayout, PoolPiece
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model


def context_batch_per_rank(*, prompt_tokens, token_budget, batch, memory_prompts=np.inf,
                           max_batch=np.inf):
    """Prompts per attention rank one context-only iteration of a loaded prefill worker takes:
    as many as its token budget holds, its memory keeps and its batch cap allows, never fewer
    than its stated batch.

    Formula: b_load = max(b, min(⌊Q / ISL⌋, M, B)), Q the worker's tokens per iteration
    (``max_num_tokens``), ISL the tokens one prompt computes, M the prompts per rank the
    worker's memory holds (:func:`loaded_context_pass`), B its ``max_batch_size`` (inf: none).
    Ref: TensorRT-LLM's micro-batch scheduler (context requests join an iteration while their
    tokens fit ``max_num_tokens``, chunking off, and their KV blocks fit); InferenceX's H200
    DeepSeek-R1 prefill workers: ``max_num_tokens: 8192``, ``max_batch_size: 8`` (8 prompts of
    1K either way).
    Convention: a budget below one prompt still takes one (chunked, or whole); Q = 0 (not
    stated): b; B NaN: no cap.
    Example: ISL 922 (1K drawn at a range ratio of 0.8), Q = 8,192: b_load = 8; ISL 8,192: 1;
    Q = 20,000 and B = 32 (gpt-oss-120b's GB200 prefill workers): 21 at ISL 922, 2 at 7,372.
    """
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    isl = np.maximum(np.asarray(prompt_tokens, dtype=float), 1.0)
    budget = np.floor(np.asarray(token_budget, dtype=float) / isl)
    cap = np.asarray(max_batch, dtype=float)
    cap = np.where(np.isnan(cap), np.inf, cap)
    return np.maximum(b, np.minimum(np.minimum(budget, np.asarray(memory_prompts, dtype=float)),
                                    cap))


def all_reduce_gather_layout(prefill: PoolLayout, all_reduce_gather: Any) -> PoolLayout:
    """The layout whose forward pass an attention-DP prefill worker runs when it gathers its
    ranks' tokens for the MoE by all-reduce: attention TP over the worker's GPUs, every rank's
    prompts in one batch, the experts as laid out.

    Formula: where g (``all_reduce_gather``) and D > 1: tp' = tp · D, D' = 1, b' = b · D (the
    worker's prompts), moe_tp / moe_ep kept; elsewhere the layout unchanged.
    Ref: SGLang ``layers/dp_attention.py``: an extend (prefill) batch gathers in
    ``DpPaddingMode.SUM_LEN``, ``_dp_gather_via_all_reduce`` (every rank writes its tokens into
    a zeroed buffer of all ranks' tokens, then all-reduces it over the TP group), the MoE runs
    on all the worker's tokens and its output is reduced back before ``dp_scatter``: a TP
    worker's two all-reduces of every token per layer, not the all-to-all of each token's
    routed copies that DeepEP (SGLang's ``moe_a2a_backend`` deepep) and the planner's DP
    layout move.
    The attention is each rank's own prompts either way (the same work as TP's head slices).
    Convention: g None, or False wherever D > 1: ``prefill`` itself (callers skip the second
    pass); the worker's memory stays the DP layout's (only the pass is read at this layout).
    Example: 1 worker, attention DP 8, EP 8, 1 prompt a rank: TP 8, EP 8, 8 prompts.
    """
    if all_reduce_gather is None:
        return prefill
    dp = np.asarray(prefill.attention_dp)
    on = np.asarray(all_reduce_gather, dtype=bool) & (dp > 1)
    if not on.any():
        return prefill
    return replace(prefill, tp=np.where(on, np.asarray(prefill.tp) * dp, prefill.tp),
                   attention_dp=np.where(on, 1, dp),
                   batch=np.where(on, np.asarray(prefill.batch, dtype=float) * dp, prefill.batch))


def gathered_prefill_piece(model: Model, hardware: Hardware, engine: Engine | None, *,
                           layout: PoolLayout, all_reduce_gather: Any = None,
                           **kwargs: Any) -> PoolPiece:
    """:func:`~.disagg_workload.prefill_piece` of ``layout``, its pass (and bound) at
    :func:`all_reduce_gather_layout` where the worker gathers its tokens by all-reduce.

    Formula: T = T_pass(layout') on those rows, T_pass(layout) elsewhere; memory, fit and
    request time of ``layout``.
    Ref: :func:`all_reduce_gather_layout`.
    Convention: ``all_reduce_gather`` None (every caller but the measured runs' reader): the
    planner's DP layout, its all-to-all.
    Example: see tests/calc/test_disagg_context.py.
    """
    from planner.calc.serving.disagg_workload import prefill_piece

    piece = prefill_piece(model, hardware, engine, layout=layout, **kwargs)
    tp_like = all_reduce_gather_layout(layout, all_reduce_gather)
    if tp_like is layout:
        return piece
    on = np.asarray(tp_like.attention_dp) != np.asarray(layout.attention_dp)
    other = prefill_piece(model, hardware, engine, layout=tp_like, **kwargs)
    return replace(piece, time_s=np.where(on, other.time_s, piece.time_s),
                   bound=np.where(on, other.bound, piece.bound))


def loaded_context_pass(model: Model, hardware: Hardware, engine: Engine | None, *,
                        unloaded: PoolPiece, prefill: PoolLayout, isl_tokens: Any,
                        overlap: bool = False, prefix_cache_hit_frac: Any = None,
                        max_num_tokens: Any = None, max_batch_size: Any = None,
                        all_reduce_gather: Any = None, **dtypes: Any) -> tuple[Any, Any]:
    """(pass s, requests per pass) of a prefill worker whose queue holds more than one
    iteration takes: its capacity is requests / pass; its unloaded pass (``unloaded``, the
    :func:`~.disagg_workload.prefill_piece` at ``prefill.batch``) stays on each request's TTFT.

    Formula: b_load = :func:`context_batch_per_rank` at ``max_num_tokens`` (the worker's own
    budget, per configuration; None or NaN: the engine's) and ``max_batch_size`` B, the
    prompt's computed tokens (1 − F) · ISL and M = b + ⌊(C − m_b) / (k_b / b)⌋ (C the GPU's
    capacity, m_b and k_b the unloaded worker's memory and KV cache per GPU: the KV grows by
    one prompt's whole cache per prompt); pass = :func:`~.disagg_workload.prefill_piece` at
    b_load prompts per rank; requests = b_load × attention DP.
    Ref: :func:`context_batch_per_rank`; :func:`~.disagg.disagg_steady_state` (the pool's rate
    from this pass).
    Convention: where b_load prompts per rank do not fit the worker's memory, or are no more
    than ``prefill.batch``, the unloaded batch and pass (``unloaded``, read at the same
    ``all_reduce_gather``: :func:`gathered_prefill_piece`); no engine (the idealised
    one, no budget stated) and no ``max_num_tokens``: the unloaded batch; ``max_batch_size``
    None or NaN: no cap (the token budget and memory alone).
    Example: DeepSeek-V3 FP8 on one H200 worker of attention DP 8 (EP 8), 1K prompts (922
    tokens drawn on average): 8 per rank, 64 requests per 1.23 s pass against 8 per 0.24 s
    unloaded (tests/calc/test_disagg_context.py).
    """
    from planner.calc.serving.prefix_cache import (checked_prefix_cache_hit_frac,
                                                   prefill_computed_tokens)

    hit = checked_prefix_cache_hit_frac(prefix_cache_hit_frac, name="prefix_cache_hit_frac")
    new = prefill_computed_tokens(isl_tokens=np.asarray(isl_tokens, dtype=float),
                                  prefix_cache_hit_frac=hit)
    budget = np.asarray(0.0 if engine is None else float(engine.max_num_tokens))
    if max_num_tokens is not None:
        own = np.asarray(max_num_tokens, dtype=float)
        budget = np.where(np.isnan(own), budget, own)
    mem, batch = unloaded.memory, np.asarray(prefill.batch, dtype=float)
    per_prompt = np.asarray(mem.kv_cache_bytes_per_gpu, dtype=float) / batch
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.floor((mem.capacity_bytes_per_gpu - np.asarray(mem.memory_bytes_per_gpu))
                        / per_prompt)
    b = context_batch_per_rank(prompt_tokens=new, token_budget=budget, batch=batch,
                               memory_prompts=np.where(per_prompt > 0, batch + room, np.inf),
                               max_batch=np.inf if max_batch_size is None else max_batch_size)
    piece = gathered_prefill_piece(model, hardware, engine, isl_tokens=isl_tokens,
                                   layout=replace(prefill, batch=b), overlap=overlap,
                                   all_reduce_gather=all_reduce_gather,
                                   prefix_cache_hit_frac=prefix_cache_hit_frac, **dtypes)
    more = np.asarray(piece.memory.fits, dtype=bool) & (b > np.asarray(prefill.batch))
    return (np.where(more, piece.time_s, unloaded.time_s),
            np.where(more, b, np.asarray(prefill.batch)) * np.asarray(prefill.attention_dp))
