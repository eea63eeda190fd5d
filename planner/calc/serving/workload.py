"""Serving a workload with continuous batching: requests of ISL input and OSL output tokens at a
concurrency, on one replica of TP × attention-DP × PP GPUs, to TTFT, TPOT, end-to-end latency
and tokens/s, in closed form over numpy arrays (one call evaluates a grid).

Model (per replica, ``c`` requests in flight; the formulas are in docs/workload.md):
- Each request costs one prefill of ISL tokens and OSL decode steps. Its sequences spread over
  the DP_att attention ranks and, with PP, over PP micro-batches: a step carries
  b = c / (DP_att · PP) decode sequences per rank, at a mean context of ISL + OSL / 2.
- Steady state: c requests complete every OSL steps, so each step brings p = b · ISL / OSL
  prefill tokens on average. With mixed batching (TensorRT-LLM's in-flight batching, vLLM's
  chunked prefill) they ride in the decode step: TPOT = step(b decodes + p prefill tokens).
  Without it (SGLang's default) prefill batches of X tokens run between decode steps:
  TPOT = step(b) + (p / X) · step(X prefill tokens).
- TTFT = wait + the request's prefill + the engine's per-request overhead; the prefill is
  ⌈ISL / q⌉ chunk steps of q = the step's token budget less the decode batch (the whole
  prompt in one step when the engine does not chunk), each chunk step carrying the decode
  batch too (mixed) or not; the wait is half a step (the request arrives during one).
- Host time: per step ``decode_step_overhead_s`` (+ ``prefill_overhead_s`` on steps carrying
  prefill) hides behind the GPU with overlap scheduling (max), else adds.
- e2e = TTFT + (OSL − 1) · TPOT; output tokens/s per GPU = c · OSL / e2e / GPUs; total adds
  ISL; per user 1 / TPOT.
- Prefix cache (:mod:`planner.calc.serving.prefix_cache`): a share F of each prompt cached,
  prefill computes (1 − F) · ISL tokens attending over the whole prompt; KV memory unchanged.

Ref: :mod:`planner.calc.serving.workload_step` (the pass); Yu et al. 2022 (Orca: iteration-level
scheduling); Agrawal et al. 2024 (Sarathi-Serve: chunked prefill); the engines' docs
(engines/*.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.calc.serving.admission import (
    UNIFORM_PHASE_MEAN_FRAC,
    balance_wait_steps,
    poll_wait_steps,
    running_requests,
    running_requests_cap,
)
from planner.calc.serving.blocks import kv_cache_fraction
from planner.calc.serving.prefix_cache import (
    checked_prefix_cache_hit_frac,
    prefill_computed_tokens,
    prefill_mean_context_tokens,
)
from planner.calc.serving.workload_step import (
    BOUND_NAMES,
    Layout,
    ModelFigures,
    _rates,
    forward_pass,
    kv_bytes_per_token_per_gpu_array,
    model_figures,
    _padded_tile,
    weight_bytes_per_gpu_array,
)
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

__all__ = ["BOUND_NAMES", "WorkloadResult", "balance_wait_steps", "running_requests_cap",
           "serve_workload"]

#: Share of the request's step that a new request waits on average (it arrives during one).
ARRIVAL_WAIT_STEPS = 0.5


@dataclass(frozen=True)
class WorkloadResult:
    """A workload's figures, numpy arrays of the inputs' broadcast shape (s, tokens/s, bytes);
    ``decode_bound`` / ``prefill_bound`` are codes into :data:`BOUND_NAMES`."""

    ttft_s: Any
    tpot_s: Any
    e2e_latency_s: Any
    tokens_per_s_per_gpu: Any
    total_tokens_per_s_per_gpu: Any
    tokens_per_s_per_user: Any
    memory_bytes_per_gpu: Any
    weight_bytes_per_gpu: Any
    kv_cache_bytes_per_gpu: Any
    capacity_bytes_per_gpu: float
    fits: Any
    gpus: Any
    decode_step_s: Any
    prefill_s: Any
    decode_bound: Any
    prefill_bound: Any
    basis: str
    efficiency_note: str
    kv_dtype: str                 # the KV cache's element type (given, or the engine's)
    running_requests: Any = None  # per replica, the engine's KV-capped running batch (<= c)


@dataclass(frozen=True)
class _EngineTerms:
    mixed: bool
    chunked: bool
    budget: Any                   # tokens per step (float, or per run: an array)
    overlap: bool
    step_s: float
    prefill_s: float
    request_s: float
    memory_frac: float
    layer_s: float
    peer_s: float
    burst: float
    quantized_kv: bool
    adp_balance: bool = False
    adp_timeout: float = 0.0
    recv_interval: float = 1.0
    max_running: float | None = None


def _engine_terms(engine: Engine | None, max_num_tokens: Any = None) -> _EngineTerms:
    """The engine's scheduling and host times; an idealised engine (None): mixed batching, no
    token budget, no host time, the memory model's workspace. ``max_num_tokens``: the token
    budget per run (None, or 0 in an array: the engine's)."""
    import dataclasses
    import math

    from planner.calc.memory import WORKSPACE_FRAC

    if engine is None:
        return _EngineTerms(True, True, math.inf, True, 0.0, 0.0, 0.0, 1 - WORKSPACE_FRAC, 0.0,
                            0.0, 0.0, False)
    terms = _EngineTerms(engine.mixed_batching, engine.chunked_prefill,
                         float(engine.max_num_tokens), engine.overlap_scheduling,
                         engine.decode_step_overhead_s, engine.prefill_overhead_s,
                         engine.request_overhead_s, engine.gpu_memory_fraction,
                         engine.layer_overhead_s, engine.all_reduce_peer_overhead_s,
                         engine.burst_share, engine.quantized_kv_cache,
                         engine.attention_dp_balance, engine.attention_dp_timeout_steps,
                         engine.scheduler_recv_interval, engine.max_running_requests)
    if max_num_tokens is None:
        return terms
    return dataclasses.replace(terms, budget=_per_run(max_num_tokens, terms.budget))


def _with_host(gpu_s: Any, host_s: Any, overlap: bool) -> Any:
    """A step's time with the engine's host time: hidden behind the GPU's (overlap) or added."""
    import numpy as np

    return np.maximum(gpu_s, host_s) if overlap else gpu_s + host_s


def _layout(model: Model, hardware: Hardware, *, tp: Any, pp: Any, attention_dp: Any,
            moe_tp: Any, moe_ep: Any) -> Layout:
    """The layout arrays with the MoE split's defaults, checked: MoE-TP × MoE-EP = TP × DP_att."""
    import numpy as np

    from planner.specs.deployment import MAX_GPUS
    from planner.specs.model import MoEFFN

    tp, pp, adp = (np.asarray(v, dtype=np.int64) for v in (tp, pp, attention_dp))
    group = tp * adp
    moe = isinstance(model.ffn, MoEFFN)
    moe_tp = (np.ones_like(group) if moe else group) if moe_tp is None \
        else np.asarray(moe_tp, dtype=np.int64)
    moe_ep = (group if moe else np.ones_like(group)) if moe_ep is None \
        else np.asarray(moe_ep, dtype=np.int64)
    for name, v in (("tp", tp), ("pp", pp), ("attention_dp", adp), ("moe_tp", moe_tp),
                    ("moe_ep", moe_ep)):
        if np.any(v < 1):
            raise UsageError(f"{name} must be a whole number >= 1 (got {v.min()})")
    if np.any(moe_tp * moe_ep != group):
        raise UsageError("moe_tp x moe_ep must equal tp x attention_dp (the GPUs of a "
                         "pipeline stage)")
    if np.any(tp * adp * pp > MAX_GPUS):
        raise UsageError(f"tp x attention_dp x pp must be at most {MAX_GPUS:,} GPUs per "
                         f"replica (got {int((tp * adp * pp).max()):,})")
    if np.any(pp > model.num_layers):
        raise UsageError(f"pp must not exceed the model's {model.num_layers} layers")
    return Layout(tp=tp, pp=pp, adp=adp, moe_tp=moe_tp, moe_ep=moe_ep, tile=_padded_tile(hardware))


def serve_workload(model: Model, hardware: Hardware, engine: Engine | None, *, isl: Any,
                   osl: Any, concurrency: Any, tp: Any = 1, pp: Any = 1, attention_dp: Any = 1,
                   moe_tp: Any = None, moe_ep: Any = None, weights_dtype: str = "fp8",
                   moe_weights_dtype: str | None = None, kv_dtype: str | None = None,
                   queue_beyond_kv: bool = False, recv_interval: Any = None,
                   max_running: Any = None, max_num_tokens: Any = None,
                   prefix_cache_hit_frac: Any = None) -> WorkloadResult:
    """TTFT, TPOT, end-to-end latency, tokens/s per GPU (output, total) and per user, memory per
    GPU and fit of ``concurrency`` requests of ``isl`` + ``osl`` tokens on one replica of
    TP × DP_att × PP GPUs served by ``engine`` (None: idealised); arrays broadcast together.

    Formula: b = c / (DP_att · PP) decodes per rank at context ISL + OSL/2, p = b · ISL / OSL
    prefill tokens per step; mixed: TPOT = S(b, 0) + u · (S(b, L) − S(b, 0)) (+ host), L =
    min(W, budget − b) the budget-filling lump, u its share of steps, non-mixed: TPOT = S(b, 0) +
    p / X · S(0, X), X = min(budget, max(ISL, p)); TTFT = ½ step + ⌈ISL / q⌉ · S(b, q) (q =
    budget − b, the whole prompt without chunking) + request overhead; e2e = TTFT + (OSL − 1) ·
    TPOT; tokens/s per GPU = c · OSL / e2e / (TP · DP_att · PP); S the forward pass of
    :func:`~planner.calc.serving.workload_step.forward_pass`. Memory: weights (the layout's
    split) + c / DP_att · (ISL + OSL) · kv per token / PP + (1 − the engine's memory fraction)
    of the usable memory; fits when at most the usable memory. ``queue_beyond_kv``: n run
    (:mod:`~planner.calc.serving.admission`, ``max_running`` too), TTFT += (c − n) / n · e2e_n,
    memory at n; ``recv_interval`` N: TTFT += (N − 1) / 2 decode steps, ``max_num_tokens`` the
    step's token budget, per run (None, or 0 in an array: the engine's). Prefix cache F: the
    prompt ISL above (p, lumps, TTFT) is (1 − F) · ISL at context ISL · (1 + F) / 2; KV whole.
    Ref: the module docstring; docs/workload.md; Orca (Yu 2022); Sarathi-Serve (Agrawal 2024).
    Convention: moe_tp / moe_ep None: EP over the stage's TP · DP_att GPUs (MoE), TP (dense); KV
    reserved for each request's whole ISL + OSL; ``fits`` False: the times are meaningless. One
    dtype per call; ``moe_weights_dtype`` (default the weights'): the routed experts'.
    Example: Llama-3.1-70B FP8 on 8 x H200 (TP 8), TensorRT-LLM (FP8 KV), ISL = OSL = 1,024,
    c = 64: TPOT 11.20 ms, TTFT 380 ms, e2e 11.83 s, 692 output tokens/s per GPU, 89 per
    user; 26.8 GB per GPU (weights 9.09, KV 2.68). Measured: TPOT 13.5 ms, TTFT 225 ms.
    """
    import numpy as np

    moe_dtype, eng = moe_weights_dtype or weights_dtype, _engine_terms(engine, max_num_tokens)
    kv = kv_dtype or ("fp8" if eng.quantized_kv and weights_dtype != "bf16" else "bf16")
    fig = _figures(model, engine, weights_dtype=weights_dtype, moe_dtype=moe_dtype, kv=kv)
    lay = _layout(model, hardware, tp=tp, pp=pp, attention_dp=attention_dp, moe_tp=moe_tp,
                  moe_ep=moe_ep)
    isl_a, osl_a, c, new_a, pre_ctx = _lengths(isl, osl, concurrency, prefix_cache_hit_frac)
    dec_rates, pre_rates = (_rates(hardware, phase=ph, weights_dtype=weights_dtype)
                            for ph in ("decode", "prefill"))
    kv_frac = kv_cache_fraction(model, context_tokens=isl_a + osl_a, kv_dtype=kv)
    run = running_requests(fig, lay, hardware, eng.memory_frac, c=c, tokens=isl_a + osl_a,
                           kv_frac=kv_frac, cap=engine is not None and queue_beyond_kv,
                           max_running=_per_run(max_running, eng.max_running))
    b, dec_ctx = run / (lay.adp * lay.pp), isl_a + osl_a / 2

    def step(rates: Any, dec: Any, pre: Any, prompts: Any) -> tuple[Any, Any]:
        """A pass with ``pre`` prefill tokens on one attention rank (a lump), decodes on all."""
        return forward_pass(model, hardware, fig, rates, lay, decode_seqs=dec,
                            prefill_tokens=pre, decode_context=dec_ctx,
                            prefill_context=pre_ctx, prompts=prompts, lone_prefill=True,
                            layer_overhead_s=eng.layer_s, peer_overhead_s=eng.peer_s)

    tpot, prefill, wait, decode_bound, prefill_bound = _schedule(
        step, eng, dec_rates, pre_rates, b=b, rank_requests=run / lay.adp, adp=lay.adp,
        isl_a=new_a, osl_a=osl_a,
        poll_steps=poll_wait_steps(recv_interval=_per_run(recv_interval, eng.recv_interval)))
    ttft = wait + prefill + eng.request_s
    ttft = ttft + (c - run) / run * (ttft + (osl_a - 1) * tpot)   # queued for a slot
    e2e, gpus = ttft + (osl_a - 1) * tpot, lay.tp * lay.adp * lay.pp
    weights, kv_bytes, memory = _memory(fig, lay, hardware, eng, c=run, tokens=isl_a + osl_a,
                                        kv_frac=kv_frac)
    capacity, shape = hardware.gpu.hbm_usable_bytes, np.broadcast(ttft, tpot, memory, gpus).shape

    def out(x: Any) -> Any:
        return np.broadcast_to(x, shape).copy()

    return WorkloadResult(
        ttft_s=out(ttft), tpot_s=out(tpot), e2e_latency_s=out(e2e),
        tokens_per_s_per_gpu=out(c * osl_a / e2e / gpus),
        total_tokens_per_s_per_gpu=out(c * (isl_a + osl_a) / e2e / gpus),
        tokens_per_s_per_user=out(1 / tpot), memory_bytes_per_gpu=out(memory),
        weight_bytes_per_gpu=out(weights), kv_cache_bytes_per_gpu=out(kv_bytes),
        capacity_bytes_per_gpu=capacity, fits=out(memory <= capacity), gpus=out(gpus),
        decode_step_s=out(tpot), prefill_s=out(prefill), decode_bound=out(decode_bound),
        prefill_bound=out(prefill_bound), basis=dec_rates.basis.split(":")[0],
        efficiency_note=_efficiency_note(dec_rates.basis, model, hardware), kv_dtype=kv,
        running_requests=out(run))


def _lengths(isl: Any, osl: Any, concurrency: Any, hit: Any) -> tuple[Any, ...]:
    """(ISL, OSL, concurrency, prompt tokens prefill computes, their mean context) as float
    arrays, checked (:mod:`~planner.calc.serving.prefix_cache`: a share ``hit`` cached)."""
    import numpy as np

    isl_a, osl_a, c = (np.asarray(v, dtype=float) for v in (isl, osl, concurrency))
    if np.any(isl_a < 1) or np.any(osl_a < 1) or np.any(c < 1):
        raise UsageError("isl, osl and concurrency must be at least 1")
    hit = checked_prefix_cache_hit_frac(hit, name="prefix_cache_hit_frac")
    return (isl_a, osl_a, c, prefill_computed_tokens(isl_tokens=isl_a, prefix_cache_hit_frac=hit),
            prefill_mean_context_tokens(isl_tokens=isl_a, prefix_cache_hit_frac=hit))


def _figures(model: Model, engine: Engine | None, *, weights_dtype: str, moe_dtype: str,
             kv: str) -> ModelFigures:
    """The model's per-layer figures, with the engine's own kernel table for weight-only
    experts (``weight_only_moe_table``) where it names one."""
    import dataclasses

    fig = model_figures(model, weights_dtype=weights_dtype, moe_weights_dtype=moe_dtype,
                        kv_dtype=kv)
    if engine is None or not engine.weight_only_moe_table:
        return fig
    return dataclasses.replace(fig, moe_kernel_table=engine.weight_only_moe_table)


def _schedule(step: Any, eng: _EngineTerms, dec_rates: Any, pre_rates: Any, *, b: Any,
              rank_requests: Any, adp: Any, isl_a: Any, osl_a: Any,
              poll_steps: Any = 0.0) -> tuple[Any, Any, Any, Any, Any]:
    """(TPOT, the request's prefill, its wait (s), decode and prefill bound codes) of the
    engine's schedule; ``step(rates, decodes, prefill tokens, prompts)`` is the forward pass;
    ``isl_a`` the prompt tokens each request's prefill computes (ISL less its cached prefix).

    A new request's prefill completes after its own ISL tokens and those of the requests
    queued ahead of it, burst · (c_rank − 1) / 2 of them (that share of the prefill work runs
    before the first tokens, the rest interrupts the decode steps), at up to ``cap`` tokens per step: the
    budget less the decode batch (mixed) or the budget (prefill batches); at least one whole
    prompt where the engine does not chunk. A scheduler that polls every N decode steps adds
    ``poll_steps`` = (N − 1) / 2 decode steps to the wait, and (prefill batches) takes N steps'
    arrivals, N · p prompt tokens, into one prefill batch."""
    import numpy as np

    p = b * isl_a / osl_a
    ahead = eng.burst * np.maximum(rank_requests - 1, 0) / 2
    work = (ahead + 1) * isl_a
    cap = np.maximum(eng.budget - b, 1.0) if eng.mixed else np.zeros_like(b) + eng.budget
    if not eng.chunked:
        cap = np.maximum(cap, isl_a)
    steps = np.maximum(np.ceil(work / cap), 1.0)
    tokens = work / steps
    if eng.mixed:
        # Prefill arrives in lumps of ``tokens`` (a group's prompts) in p / tokens of the
        # steps: the mean step interpolates between a pure decode step and a lump step.
        gpu_dec, decode_bound = step(dec_rates, b, 0.0, 0.0)
        gpu_chunk, prefill_bound = step(pre_rates, b, tokens, tokens / isl_a)
        # The lumps that interrupt the decode fill the step's budget (the next prompt joins a
        # remainder chunk): min(work, cap) tokens, not the TTFT's even split work / steps,
        # which falls each time ⌈work / cap⌉ steps up (TPOT fell with concurrency).
        lump = np.minimum(work, cap)
        gpu_lump, _ = step(pre_rates, b, lump, lump / isl_a)
        # Attention-DP ranks step together (the MoE layers join them): a step is a lump step
        # when any of the DP_att ranks carries one; a balancing scheduler puts the ranks'
        # lumps in the same steps.
        # The burst share of the prefill work runs before the requests' first tokens (in
        # TTFT); the rest interrupts their decode.
        share = (1 - eng.burst) * p / lump
        busy = np.where((share < 1) & (not eng.adp_balance),
                        1 - (1 - np.minimum(share, 1)) ** adp, share)
        gpu_avg = gpu_dec + busy * (gpu_lump - gpu_dec)
        tpot = _with_host(gpu_avg, eng.step_s + np.minimum(busy, 1.0) * eng.prefill_s,
                          eng.overlap)
        prefill = steps * _with_host(gpu_chunk, eng.step_s + eng.prefill_s, eng.overlap)
        held = balance_wait_steps(adp=adp, arrivals_per_step=b / osl_a,
                                  timeout_steps=eng.adp_timeout) if eng.adp_balance else 0.0
        wait = (ARRIVAL_WAIT_STEPS + held + poll_steps) * tpot
    else:
        gpu_dec, decode_bound = step(dec_rates, b, 0.0, 0.0)
        batch = np.minimum(cap, np.maximum(isl_a, (poll_steps / UNIFORM_PHASE_MEAN_FRAC + 1) * p))
        gpu_batch, _ = step(pre_rates, 0.0, batch, batch / isl_a)
        gpu_pre, prefill_bound = step(pre_rates, 0.0, tokens, tokens / isl_a)
        dec_step = _with_host(gpu_dec, eng.step_s, eng.overlap)
        tpot = dec_step + (1 - eng.burst) * p / batch * _with_host(gpu_batch, eng.prefill_s,
                                                                   eng.overlap)
        prefill = steps * _with_host(gpu_pre, eng.prefill_s, eng.overlap)
        wait = (ARRIVAL_WAIT_STEPS + poll_steps) * dec_step
    return tpot, prefill, wait, decode_bound, prefill_bound


def _per_run(given: Any, default: Any) -> Any:
    """A per-run launch setting: ``given`` (an array: 0 where the run took the engine's
    default) or the engine's ``default`` (None: none)."""
    import numpy as np

    if given is None:
        return default
    given = np.asarray(given, dtype=float)
    return np.where(given > 0, given, np.nan if default is None else default)


def _memory(fig: Any, lay: Layout, hardware: Hardware, eng: _EngineTerms, *, c: Any,
            tokens: Any, kv_frac: Any = 1.0) -> tuple[Any, Any, Any]:
    """(weights, KV cache, all) bytes per GPU: c / DP_att requests of ``tokens`` each, the
    layers / PP, the engine's reserve."""
    weights = weight_bytes_per_gpu_array(fig, tp=lay.tp, pp=lay.pp, moe_tp=lay.moe_tp,
                                         moe_ep=lay.moe_ep)
    kv_bytes = (c / lay.adp * tokens * kv_bytes_per_token_per_gpu_array(fig, tp=lay.tp)
                * kv_frac / lay.pp)    # kv_frac: windows, DSA keys, linear state (issue 21)
    return weights, kv_bytes, (weights + kv_bytes
                               + (1 - eng.memory_frac) * hardware.gpu.hbm_usable_bytes)


def _efficiency_note(basis: str, model: Model, hardware: Hardware) -> str:
    """Which factors are measured and which assumed, and how attention is counted."""
    import re

    from planner.specs.model import MLAttention

    tables = "measured kernel tables" in basis
    where = ("GEMM and expert rates read from the tables at each pass's rows M and rows per "
             "expert; " if tables else "") + ("prefill attention at the measured kernel's rate "
             "for the prompt's length (efficiency.attention_by_isl), decode's factor below; "
             if hardware.efficiency.attention_by_isl else "")
    # the one-M figures of the basis are the tables' rates at their largest M
    basis = re.sub(r" at M = [\d.e+]+", " (figures below at the tables' largest M)", basis)
    attention = ("attention per layer as the model's pattern (windowed, sparse or linear layers "
                 "read what they hold)" if getattr(model, "attention_layers", None)
                 else "full attention in every layer")
    if isinstance(model.attention, MLAttention) and hardware.efficiency.mla_decode:
        attention += ("; MLA decode at the measured generation-MLA kernel's rate "
                      "(efficiency.mla_decode, by KV dtype and heads per GPU)")
    return (f"kernel efficiencies: {where}{basis}; {attention}; engine overheads as the "
            "engine spec's sources say")
