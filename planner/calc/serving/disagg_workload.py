"""Disaggregated serving of a model: each pool's piece of the workload model
(:func:`~planner.calc.serving.workload.serve_workload`: the prefill of a batch on a prefill
worker, the decode step at its batch on a decode worker, each with its own memory fit), the KV
cache moved over the link between the pools, and the steady state of
:mod:`planner.calc.serving.disagg` over them. Arrays in, arrays out: every layout field and
workload length may be a numpy array (one call evaluates a grid).

Ref: :mod:`planner.calc.serving.disagg` (DistServe, Splitwise, DeepSeek's inference system);
the workload model's own references.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.calc.serving.disagg import DisaggState, disagg_steady_state

if TYPE_CHECKING:
    from planner.calc.serving.workload import WorkloadResult
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Names of the links the KV cache crosses (``DisaggResult.kv_link``).
KV_LINKS = ("scale_up", "scale_out")
#: Output tokens a prefill-only request asks of the workload model (the prefill worker emits
#: the first token and hands the request over).
PREFILL_ONLY_OSL = 1


@dataclass(frozen=True)
class PoolLayout:
    """One pool: ``workers`` replicas of ``tp * attention_dp * pp`` GPUs, ``batch`` requests per
    attention-DP rank (the data's ``prefill_batch_size`` / ``decode_batch_size``); moe_tp /
    moe_ep None: the workload model's defaults. Fields are ints or numpy int arrays."""

    workers: Any = 1
    batch: Any = 1
    tp: Any = 1
    pp: Any = 1
    attention_dp: Any = 1
    moe_tp: Any = None
    moe_ep: Any = None

    @property
    def gpus_per_worker(self) -> Any:
        return np.asarray(self.tp) * np.asarray(self.attention_dp) * np.asarray(self.pp)

    @property
    def requests_per_worker(self) -> Any:
        return np.asarray(self.batch) * np.asarray(self.attention_dp)


@dataclass(frozen=True)
class PoolPiece:
    """One pool's worker: the time of its unit of work (prefill: one batch of prompts; decode:
    one step at its batch), what binds it, the engine's per-request host time, and the workload
    model's memory and fit for that worker (arrays)."""

    time_s: Any
    bound: Any                        # code into the workload model's BOUND_NAMES
    request_overhead_s: float
    memory: WorkloadResult            # memory_bytes_per_gpu, fits, basis of the worker
    tokens_per_step: Any = 1.0        # decode: output tokens per request per step (MTP)


@dataclass(frozen=True)
class DisaggResult:
    """A disaggregated deployment's figures (arrays of the broadcast shape) and its pieces."""

    state: DisaggState
    prefill: PoolPiece
    decode: PoolPiece
    kv_bytes_per_request: np.ndarray
    kv_link: np.ndarray               # index into KV_LINKS
    fits: np.ndarray                  # both pools' workers fit in memory
    basis: str
    efficiency_note: str


def _setup(model: Model, hardware: Hardware, engine: Engine | None, layout: PoolLayout,
           dtypes: dict[str, Any], kv_dtype: str) -> Any:
    """The workload model's internals for one pool: its figures, layout and engine terms."""
    from planner.calc.serving.workload import _engine_terms, _figures, _layout

    wd = dtypes["weights_dtype"]
    # the engine's own weight-only expert kernel (vLLM: Marlin), as the aggregated model reads it
    fig = _figures(model, engine, weights_dtype=wd, moe_dtype=dtypes["moe_weights_dtype"] or wd,
                   kv=kv_dtype)
    lay = _layout(model, hardware, tp=layout.tp, pp=layout.pp, attention_dp=layout.attention_dp,
                  moe_tp=layout.moe_tp, moe_ep=layout.moe_ep)
    return fig, lay, _engine_terms(engine)


def _memory(model: Model, hardware: Hardware, engine: Engine | None, layout: PoolLayout, *,
            isl: Any, osl: Any, dtypes: dict[str, Any]) -> WorkloadResult:
    from planner.calc.serving.workload import serve_workload

    return serve_workload(model, hardware, engine, isl=isl, osl=osl,
                          concurrency=np.maximum(layout.requests_per_worker, 1), tp=layout.tp,
                          pp=layout.pp, attention_dp=layout.attention_dp, moe_tp=layout.moe_tp,
                          moe_ep=layout.moe_ep, **dtypes)


def overlapped_pass_s(model: Model, hardware: Hardware, fig: Any, rates: Any, lay: Any, *,
                      overlap: bool, **shape: Any) -> tuple[Any, Any]:
    """(time (s), bound code) of one forward pass of the workload model, its communication
    hidden under its compute with ``overlap`` (two micro-batches, one's all-to-all and
    all-reduces under the other's kernels: DeepSeek's prefill and decode, SGLang's two-batch
    overlap), else in sequence as the workload model takes it.

    Formula: T = S (no overlap); T = max(S₀, S − S₀) with overlap, S the pass
    (:func:`~planner.calc.serving.workload_step.forward_pass`) and S₀ the same pass with
    infinitely fast links (its kernels alone), so S − S₀ is its communication.
    Ref: V3R §3.4 (dual micro-batch overlap in prefill and decode); SGLang two-batch overlap
    (lmsys.org/blog/2025-05-05-large-scale-ep).
    Convention: ideal overlap (no compute share lost to the communication kernels, no
    imbalance between the two micro-batches): a bound on what the schedule can hide.
    Example: DeepSeek-V3 FP8 prefill of one 4,096-token prompt per rank on 16 x H800
    (attention DP 16, EP 16): S = 1.42 s of which S₀ = 0.39 s kernels: 1.03 s overlapped.
    """
    import dataclasses
    import math

    from planner.calc.serving.workload_step import forward_pass

    full, bound = forward_pass(model, hardware, fig, rates, lay, **shape)
    if not overlap:
        return full, bound
    fast = dataclasses.replace(rates, scale_up=math.inf, scale_out=math.inf)
    quiet, quiet_bound = forward_pass(model, hardware, fig, fast, lay, **shape)
    network = full - quiet
    return np.maximum(quiet, network), np.where(quiet >= network, quiet_bound, bound)


def prefill_piece(model: Model, hardware: Hardware, engine: Engine | None, *, isl_tokens: Any,
                  layout: PoolLayout, overlap: bool = False, prefix_cache_hit_frac: Any = None,
                  **dtypes: Any) -> PoolPiece:
    """A prefill worker's batch: the time (s) to prefill ``layout.batch`` prompts of ISL tokens
    per attention rank, nothing else in its steps; memory and fit from the workload model.

    Formula: T = ⌈n / q⌉ · host(S(0 decodes, n / ⌈n / q⌉ prefill tokens)), n = batch ·
    (1 − F) · ISL / PP tokens per rank (F the prefix-cache hit fraction: those tokens' KV is
    read, not computed; the rest attend over the whole prompt, mean context ISL · (1 + F) / 2:
    :mod:`~planner.calc.serving.prefix_cache`), q = min(the engine's token budget, n) with
    chunked prefill (else n);
    host(x) = max(x, h) with overlap scheduling else x + h, h the engine's per-step +
    per-prefill-step host time; S the workload model's forward pass
    (:func:`~planner.calc.serving.workload_step.forward_pass`) at the prefill rates with the
    engine's per-layer and per-peer times, as serve_workload's, its communication hidden
    with ``overlap`` (:func:`overlapped_pass_s`).
    Ref: :mod:`planner.calc.serving.workload` (the same pass and host terms); Splitwise §4.
    Convention: memory as serve_workload at OSL 1 (the prompt's whole cache, cached prefix
    included, then handed over); F None: 0.
    Example: DeepSeek-V3 FP8 on 32 x H800 (attention DP 32, EP 32), one 4,096-token prompt
    per rank: see tests/calc/test_disagg_workload.py.
    """
    from planner.calc.serving.prefix_cache import (checked_prefix_cache_hit_frac,
                                                   prefill_computed_tokens,
                                                   prefill_mean_context_tokens)
    from planner.calc.serving.workload import _with_host
    from planner.calc.serving.workload_step import _rates

    memory = _memory(model, hardware, engine, layout, isl=isl_tokens, osl=PREFILL_ONLY_OSL,
                     dtypes=dtypes)
    fig, lay, eng = _setup(model, hardware, engine, layout, dtypes, memory.kv_dtype)
    isl = np.asarray(isl_tokens, dtype=float)
    rates = replace(_rates(hardware, phase="prefill", weights_dtype=dtypes["weights_dtype"]),
                    prefill_prompt_tokens=isl)   # a cached prefix: the kernel at the whole prompt
    hit = checked_prefix_cache_hit_frac(prefix_cache_hit_frac, name="prefix_cache_hit_frac")
    new = prefill_computed_tokens(isl_tokens=isl, prefix_cache_hit_frac=hit)
    tokens = np.asarray(layout.batch, dtype=float) * new / np.asarray(layout.pp)
    chunk = np.minimum(eng.budget, tokens) if eng.chunked else tokens
    steps = np.ceil(tokens / chunk)
    context = prefill_mean_context_tokens(isl_tokens=isl, prefix_cache_hit_frac=hit)
    gpu, bound = overlapped_pass_s(model, hardware, fig, rates, lay, overlap=overlap,
                                   decode_seqs=0.0, prefill_tokens=tokens / steps,
                                   decode_context=isl, prefill_context=context,
                                   prompts=tokens / steps / new, layer_overhead_s=eng.layer_s,
                                   peer_overhead_s=eng.peer_s)
    time_s = steps * _with_host(gpu, eng.step_s + eng.prefill_s, eng.overlap)
    return PoolPiece(time_s, bound, eng.request_s, memory)


def decode_piece(model: Model, hardware: Hardware, engine: Engine | None, *, isl_tokens: Any,
                 osl_tokens: Any, layout: PoolLayout, overlap: bool = False,
                 mtp_draft_tokens: Any = 0, mtp_acceptance: Any = None,
                 **dtypes: Any) -> PoolPiece:
    """A decode worker's step (s) at its full batch, no prefill in it, and the tokens it yields
    per request: TPOT = step / tokens of a disaggregated deployment; memory and fit from the
    workload model.

    Formula: step = host(S(b decodes of k + 1 tokens, 0 prefill tokens) + k · S_MTP(b)) at a
    mean context of ISL + OSL / 2, b = batch / PP per attention rank, k = ``mtp_draft_tokens``;
    host(x) = max(x, h) with overlap scheduling else x + h, h the engine's per-step host time;
    S the workload model's forward pass at decode rates with the engine's per-layer and
    per-peer times, as serve_workload's (communication hidden with ``overlap``:
    :func:`overlapped_pass_s`), S_MTP the same over one MTP module
    (:func:`~planner.calc.serving.speculative.mtp_module_figures`); tokens per step
    :func:`~planner.calc.serving.speculative.mtp_tokens_per_step` at ``mtp_acceptance``
    (None: :data:`~planner.calc.serving.speculative.DEFAULT_MTP_ACCEPTANCE`).
    Ref: :mod:`planner.calc.serving.workload` (the same pass and host terms); DistServe §3;
    :mod:`planner.calc.serving.speculative` (MTP).
    Convention: memory as serve_workload: every request's whole ISL + OSL reserved (the MTP
    module's weights and KV cache not added); k = 0 is the plain decode step; k > 0 needs the
    model's own MTP module (``mtp_depth`` >= 1, else a UsageError).
    Example: DeepSeek-V3 FP8 on 144 x H800 (attention DP 144, EP 144), 32 requests per rank
    of 4K + 1K tokens: see tests/calc/test_disagg_workload.py.
    """
    from planner.calc.serving import speculative as spec
    from planner.calc.serving.workload import _with_host
    from planner.calc.serving.workload_step import _rates

    memory = _memory(model, hardware, engine, layout, isl=isl_tokens, osl=osl_tokens,
                     dtypes=dtypes)
    fig, lay, eng = _setup(model, hardware, engine, layout, dtypes, memory.kv_dtype)
    rates = _rates(hardware, phase="decode", weights_dtype=dtypes["weights_dtype"])
    isl = np.asarray(isl_tokens, dtype=float)
    per_rank = np.asarray(layout.batch, dtype=float) / np.asarray(layout.pp)
    k = np.asarray(mtp_draft_tokens, dtype=float)
    shape = dict(decode_seqs=per_rank, prefill_tokens=0.0,
                 decode_context=isl + np.asarray(osl_tokens, dtype=float) / 2,
                 prefill_context=0.0, prompts=0.0, layer_overhead_s=eng.layer_s,
                 peer_overhead_s=eng.peer_s)
    gpu, bound = overlapped_pass_s(model, hardware, fig, rates, lay, overlap=overlap,
                                   draft_tokens=k, **shape)
    tokens = 1.0
    if np.any(k > 0) and not model.mtp_depth:
        from planner.errors import UsageError

        raise UsageError(f"mtp_draft_tokens: {model.name or 'the model'} has no MTP "
                         "module to draft with (its mtp_depth is 0)")
    if np.any(k > 0):
        draft, _ = overlapped_pass_s(model, hardware, spec.mtp_module_figures(fig), rates, lay,
                                     overlap=overlap, **shape)
        gpu = spec.speculative_step_s(verify_pass_s=gpu, draft_pass_s=draft, draft_tokens=k)
        acc = spec.DEFAULT_MTP_ACCEPTANCE if mtp_acceptance is None else mtp_acceptance
        tokens = spec.mtp_tokens_per_step(draft_tokens=k, acceptance=acc)
    return PoolPiece(_with_host(gpu, eng.step_s, eng.overlap), bound, eng.request_s, memory,
                     tokens)


def serve_disagg(model: Model, hardware: Hardware, engine: Engine | None, *, isl_tokens: Any,
                 osl_tokens: Any, prefill: PoolLayout, decode: PoolLayout,
                 weights_dtype: str = "fp8", moe_weights_dtype: str | None = None,
                 kv_dtype: str | None = None, arrival_rate_per_s: Any = None,
                 overlap: bool = False, kv_bytes_per_s: Any = None,
                 burst_share: Any = 0.0, mtp_draft_tokens: Any = 0,
                 mtp_acceptance: Any = None, clients: Any = None,
                 prefix_cache_hit_frac: Any = None, prefill_max_num_tokens: Any = None,
                 prefill_max_batch_size: Any = None,
                 prefill_all_reduce_gather: Any = None) -> DisaggResult:
    """TTFT, TPOT and tokens/s per GPU of a prefill pool and a decode pool serving ``model``
    (arrays of the broadcast shape of the layouts and lengths).

    Formula: T_prefill = :func:`prefill_piece`'s batch time; TPOT and the first decode step =
    :func:`decode_piece`'s step; Q_KV = b_KV · ISL; t_KV = α + Q_KV / (n_send · B), n_send
    :func:`~.disagg_kv.kv_sender_gpus` (the decode worker's copies counted), B NVLink where both
    pools fit in one scale-up domain, else the NIC (:func:`~.disagg_kv.pools_kv_transfer`); then
    :func:`~.disagg.disagg_steady_state` (closed loop at decode workers × batch × attention DP
    requests in flight, or open loop at ``arrival_rate_per_s``; the prefill pool's rate at a
    loaded worker's pass, :func:`~.disagg_context.loaded_context_pass`).
    Ref: :mod:`planner.calc.serving.disagg`; DistServe §3; Splitwise §4.
    Convention: the decode pool's TPOT is its pure decode step (no prefill rides in it);
    ``overlap``: both pools hide communication under compute (:func:`overlapped_pass_s`);
    the KV cache at ``kv_dtype``, else the engine's (the workload model's rule);
    ``kv_bytes_per_s``: a KV link of that achievable bandwidth per GPU instead (a dedicated
    transfer network, or a what-if), the pools' own EP and TP links unchanged;
    ``burst_share``: the share of requests that arrive together at the start (a benchmark's
    first round of clients; 0: the steady state, :func:`~.disagg.disagg_steady_state`);
    ``clients``: closed-loop requests in flight beyond the decode pool's running batch (the
    engine's max batch size caps it; the rest wait for a decode slot; None: the pool's batch);
    ``mtp_draft_tokens`` k / ``mtp_acceptance``: MTP speculative decoding in the decode pool
    (:func:`decode_piece`: TPOT = step / tokens per step; the first token's step a whole step);
    ``prefill_max_num_tokens`` / ``_batch_size``: :func:`~.disagg_context.loaded_context_pass`'s;
    ``prefill_all_reduce_gather``: :func:`~.disagg_context.gathered_prefill_piece`'s;
    prefill workers run one batch at a time with the transfers overlapped; ``fits`` needs
    both pools' workers to fit; prefix cache F: :func:`prefill_piece`'s (1 − F) · ISL tokens,
    the whole prompt's KV moved (read from the cache on the prefill side), decode unchanged.
    Example: DeepSeek-V3 FP8 on H800, 4K / 1K, 1 prefill worker of 8 GPUs (attention DP 8,
    EP 8), 1 decode worker of 16 (attention DP 16, EP 16) at 32 per rank: 24 GPUs > 8, the
    KV cache (163.9 MB) crosses the NIC (see tests/calc/test_disagg_workload.py).
    """
    from planner.calc.serving.disagg_context import gathered_prefill_piece, loaded_context_pass
    from planner.calc.serving.disagg_kv import pools_kv_transfer

    dtypes = dict(weights_dtype=weights_dtype, moe_weights_dtype=moe_weights_dtype,
                  kv_dtype=kv_dtype)
    pre = gathered_prefill_piece(model, hardware, engine, isl_tokens=isl_tokens, layout=prefill,
                                 all_reduce_gather=prefill_all_reduce_gather, overlap=overlap,
                                 prefix_cache_hit_frac=prefix_cache_hit_frac, **dtypes)
    dec = decode_piece(model, hardware, engine, isl_tokens=isl_tokens, osl_tokens=osl_tokens,
                       layout=decode, overlap=overlap, mtp_draft_tokens=mtp_draft_tokens,
                       mtp_acceptance=mtp_acceptance, **dtypes)
    loaded = loaded_context_pass(model, hardware, engine, unloaded=pre, prefill=prefill,
                                 isl_tokens=isl_tokens, overlap=overlap,
                                 max_num_tokens=prefill_max_num_tokens,
                                 prefix_cache_hit_frac=prefix_cache_hit_frac,
                                 max_batch_size=prefill_max_batch_size,
                                 all_reduce_gather=prefill_all_reduce_gather, **dtypes)
    q_kv, inside, transfer = pools_kv_transfer(model, hardware, prefill, decode,
                                               isl_tokens=isl_tokens, kv_dtype=dec.memory.kv_dtype,
                                               kv_bytes_per_s=kv_bytes_per_s)
    state = disagg_steady_state(
        prefill_batch_s=pre.time_s, request_overhead_s=pre.request_overhead_s,
        prefill_requests_per_batch=prefill.requests_per_worker,
        prefill_workers=prefill.workers, prefill_gpus_per_worker=prefill.gpus_per_worker,
        kv_transfer_s=transfer, decode_step_s=dec.time_s,
        decode_tpot_s=dec.time_s / np.asarray(dec.tokens_per_step),
        decode_concurrency=decode.requests_per_worker,
        decode_workers=decode.workers, decode_gpus_per_worker=decode.gpus_per_worker,
        isl_tokens=isl_tokens, osl_tokens=osl_tokens, arrival_rate_per_s=arrival_rate_per_s,
        burst_share=burst_share, clients=clients, prefill_loaded=loaded)
    shape = state.ttft_s.shape
    return DisaggResult(
        state=state, prefill=pre, decode=dec,
        kv_bytes_per_request=np.broadcast_to(q_kv, shape).copy(),
        kv_link=np.broadcast_to(np.where(inside, 0, 1), shape).copy(),
        fits=np.broadcast_to(np.asarray(pre.memory.fits) & np.asarray(dec.memory.fits),
                             shape).copy(),
        basis=dec.memory.basis, efficiency_note=dec.memory.efficiency_note)
