"""Which requests an engine takes in, and when: the running batch its KV pool and its
``max_running_requests`` allow (the rest queue for a slot), and the steps a new request waits
for a scheduler that polls for arrivals only every N decode steps (SGLang's
``scheduler_recv_interval``). Closed forms over numpy arrays, for
:func:`planner.calc.serving.workload.serve_workload`.

Ref: TensorRT-LLM's KV cache manager, vLLM's ``gpu_memory_utilization`` / ``max_num_seqs`` and
SGLang's ``mem_fraction_static`` / ``max_running_requests`` (the pool and the cap the scheduler
admits requests into); SGLang python/sglang/srt/managers/scheduler_recv_skipper.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.calc.serving.workload_step import (
    Layout,
    kv_bytes_per_token_per_gpu_array,
    weight_bytes_per_gpu_array,
)

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware

#: Whole decode steps a recv-skipping scheduler's counter counts before it polls again: one per
#: decode step (``_WEIGHT_OF_FORWARD_MODE[DECODE] = 1``); a prefill step weighs 1,000, so the
#: scheduler polls right after one.
DECODE_STEP_WEIGHT = 1
#: Mean of a phase uniform on 0 .. M − 1, as a share of M − 1 (the steps a poll is away).
UNIFORM_PHASE_MEAN_FRAC = 0.5


def poll_wait_steps(*, recv_interval: Any) -> Any:
    """Mean whole decode steps a new request waits for the scheduler's next poll, beyond the
    step during which it arrives (steps; arrays).

    Formula: (M − 1) / 2, M = ⌈N / w⌉ decode steps between polls, N the interval (the
    counter's threshold, N ≥ 1), w the counter's weight per decode step (1).
    Derivation: the scheduler adds w to a counter per decode step and receives new requests
    when the counter reaches N (then resets it): every M steps; a request arriving during a
    decode step finds the cycle at a phase j uniform on 0 .. M − 1 (the arrivals of a closed
    loop follow completions, which fall on any step of the cycle) and waits M − 1 − j more
    whole steps, mean (M − 1) / 2; the half step it arrives in is the workload model's own
    (``ARRIVAL_WAIT_STEPS``).
    Ref: SGLang ``SchedulerRecvSkipper.handle`` (python/sglang/srt/managers/
    scheduler_recv_skipper.py: counter += weight of the last forward mode, DECODE 1, others
    1,000; receive when counter >= scheduler_recv_interval); server argument
    ``scheduler_recv_interval`` (default 1: every step).
    Convention: N = 1 (every step) gives 0; a prefill step between polls is not counted (it
    makes the scheduler poll at once, so the wait is at most this).
    Example: N = 30: 14.5 steps; N = 10: 4.5 steps.
    """
    import numpy as np

    steps = np.ceil(np.maximum(np.asarray(recv_interval, dtype=float), 1.0) / DECODE_STEP_WEIGHT)
    return (steps - 1) * UNIFORM_PHASE_MEAN_FRAC


def running_requests(fig: Any, lay: Layout, hardware: Hardware, memory_frac: float, *, c: Any,
                     tokens: Any, kv_frac: Any, cap: bool, max_running: Any = None) -> Any:
    """Requests running at once per replica: c, at most ``max_running`` (SGLang's
    ``max_running_requests``, per replica: its DP ranks share it; None or 0: no cap) and, with
    ``cap``, at most :func:`running_requests_cap` (c where not even one fits: refused as not
    fitting); the others queue for a slot (count; arrays).

    Formula: n = min(c, max_running, running_requests_cap) (the caps that apply).
    Ref: SGLang server argument ``max_running_requests``; the KV pool of
    :func:`running_requests_cap`; in a closed loop the slots turn over every TTFT + (OSL − 1) ·
    TPOT, so each queued request waits (c − n) / n of that (Little's law, in the caller).
    Convention: ``max_running`` broadcasts with ``c``; NaN or values below 1 mean no cap.
    Example: c = 256, max_running = 128, the KV pool holding 300: 128 run, 128 queue.
    """
    import numpy as np

    run = np.asarray(c, dtype=float)
    if max_running is not None:
        limit = np.asarray(max_running, dtype=float)
        run = np.where(limit >= 1, np.minimum(run, limit), run)
    if not cap:
        return run
    n = running_requests_cap(fig, lay, hardware, memory_frac=memory_frac, tokens=tokens,
                             kv_frac=kv_frac)
    return np.where(n >= 1, np.minimum(run, n), run)


def running_requests_cap(fig: Any, lay: Layout, hardware: Hardware, *, memory_frac: float,
                         tokens: Any, kv_frac: Any = 1.0) -> Any:
    """Requests one replica's engine runs at once: as many as its KV memory holds, requests
    of ``tokens`` each (count; arrays).

    Formula: DP_att · ⌊(f · U − W) / (tokens · kv per token per GPU · kv_frac / PP)⌋, f the
    engine's memory fraction, U the usable memory, W the weights per GPU.
    Ref: TensorRT-LLM's KV cache manager (free_gpu_memory_fraction, guaranteed-no-evict
    admission); vLLM's gpu_memory_utilization and SGLang's mem_fraction_static (the pool the
    scheduler admits requests into).
    Convention: each request reserves its whole ISL + OSL (as the memory model counts it); 0
    where not one request fits.
    Example: Llama-3.1-8B BF16 KV on one H200 (f = 0.9), ISL + OSL = 3,000: (0.9 × 150.8e9 −
    16.1e9) / (3,000 × 131,072) = 304 requests.
    """
    import numpy as np

    weights = weight_bytes_per_gpu_array(fig, tp=lay.tp, pp=lay.pp, moe_tp=lay.moe_tp,
                                         moe_ep=lay.moe_ep)
    per_request = tokens * kv_bytes_per_token_per_gpu_array(fig, tp=lay.tp) * kv_frac / lay.pp
    room = memory_frac * hardware.gpu.hbm_usable_bytes - weights
    return lay.adp * np.floor(np.maximum(room, 0.0) / per_request)


#: Points of the quadrature of :func:`balance_wait_steps` (the integrand is smooth and monotone).
BALANCE_QUADRATURE_POINTS = 65


def balance_wait_steps(*, adp: Any, arrivals_per_step: Any, timeout_steps: float) -> Any:
    """Mean steps a context request is held by an attention-DP balancing scheduler: until each
    of the other DP_att − 1 ranks has a new request too, at most ``timeout_steps``.

    Formula: W = ∫₀^T [1 − (1 − e^(−λt))^(DP_att − 1)] dt, T the timeout, λ the arrivals per
    rank per step (closed loop: b / OSL); trapezoid rule on 65 points; 0 where DP_att = 1.
    Ref: TensorRT-LLM AttentionDpConfig (enable_balance, timeout_iters); the other ranks'
    next arrivals as independent exponential waits (the max of n of them).
    Convention: arrays broadcast; a request already waiting on another rank is not counted
    (an upper bound on the wait).
    Example: DP_att = 8, λ = 32 / 921.5 per step, T = 60: 53.7 steps; λ = 32 / 7,372.5: 60.0.
    """
    import numpy as np

    lam = np.asarray(arrivals_per_step, dtype=float)[..., None]
    others = (np.asarray(adp, dtype=float) - 1)[..., None]
    t = np.linspace(0.0, 1.0, BALANCE_QUADRATURE_POINTS) * timeout_steps
    held = 1 - (1 - np.exp(-lam * t)) ** others
    return ((held[..., 1:] + held[..., :-1]) / 2 * np.diff(t)).sum(axis=-1)
