"""Disaggregated serving: a prefill pool and a decode pool, the KV cache of each request moved
from a prefill GPU to a decode GPU, the steady state of the two pools, and the prefill:decode
split that serves a workload best. Pure array calculators: the per-layout times come in as
arrays (from the workload model), so a whole candidate grid is one call.

Ref: DistServe (Zhong et al., OSDI 2024) §3 (disaggregation, goodput under TTFT/TPOT limits);
Splitwise (Patel et al., ISCA 2024) §4 (KV transfer overlapped with the prefill, pool sizing);
DeepSeek's inference system overview (github.com/deepseek-ai/open-infra-index, "Day 6":
prefill EP32 on 4 nodes, decode EP144 on 18 nodes); Lazowska et al., "Quantitative System
Performance" (1984) §5.3 (asymptotic bounds of a closed network).

Conventions (all functions):
- A pool is ``workers`` identical workers; a worker is one replica of ``gpus_per_worker`` GPUs.
- Closed loop (no arrival rate given): the benchmark's clients keep ``concurrency`` requests in
  flight, as the measured runs do; the decode pool holds them (concurrency = decode workers x
  requests per decode worker). Open loop: requests arrive at ``arrival_rate_per_s``.
- The first output token leaves after the KV transfer and one decode step; TPOT counts the
  decode pool's steps at its full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.calc.serving.disagg_burst import burst_mean_wait_s, staircase_sum

#: Codes of the side that sets a disaggregated deployment's request rate.
PREFILL_BOUND, DECODE_BOUND = 0, 1
BINDING_SIDES = ("prefill", "decode")
#: Decode steps between the KV cache's arrival and the first output token (the decode worker
#: samples the first token after its first step on the transferred cache).
FIRST_TOKEN_DECODE_STEPS = 1
#: Output tokens the decode pool generates per request: OSL minus the first (prefill's) token,
#: at least this many.
MIN_DECODE_TOKENS = 1
#: Pollaczek-Khinchine for deterministic service (M/D/1): Wq = rho * S / (MD1_DIVISOR (1 - rho)).
MD1_DIVISOR = 2


def kv_transfer_bytes_per_request(*, kv_bytes_per_token, isl_tokens):
    """Bytes of KV cache one request moves from its prefill worker to its decode worker.

    Formula: Q_KV = b_KV · ISL, b_KV the model's KV bytes per token (all layers, the decode
    side's KV dtype).
    Ref: Splitwise §4.2 (the KV cache of the prompt is the transfer); P §2.1.2 (KV per token).
    Convention: the whole prompt's cache, once (no prefix reuse); MLA's latent once, not per
    TP rank.
    Example: DeepSeek-V3 FP8 cache 40,016 B/token × 4,096 tokens = 163.9 MB per request.
    """
    return np.asarray(kv_bytes_per_token, dtype=float) * isl_tokens


def kv_link_bytes_per_s(*, pool_gpus, scale_up_domain_gpus, scale_up_bytes_per_s,
                        scale_out_bytes_per_s):
    """Per-GPU bandwidth (bytes/s) of the link the KV cache crosses between the pools.

    Formula: B = B_up where P_gpus + D_gpus ≤ domain (both pools in one NVLink domain: an NVL72
    rack, or one 8-GPU node), else B_NIC.
    Ref: NVIDIA Dynamo NIXL and Mooncake transfer engine (KV over NVLink inside the domain,
    RDMA across nodes); the hardware spec's scale-up and scale-out links.
    Convention: achievable bandwidths per GPU per direction (the caller applies efficiency).
    Example: GB200 NVL72, 4 prefill + 8 decode GPUs ≤ 72: 720 GB/s NVLink; H200, 8 + 8 > 8:
    40 GB/s per NIC.
    """
    inside = np.asarray(pool_gpus) <= scale_up_domain_gpus
    return np.where(inside, scale_up_bytes_per_s, scale_out_bytes_per_s)


def kv_transfer_s(*, kv_bytes_per_request, link_bytes_per_s, sender_gpus, latency_s=0.0):
    """Time (s) to move one request's KV cache from the prefill to the decode worker.

    Formula: t_KV = α + Q_KV / (n_send · B), n_send the GPUs of the prefill worker that hold
    distinct parts of the request's cache and send in parallel (attention TP × PP ranks).
    Ref: Splitwise §4.2 (layer-wise, per-GPU KV transfer); DistServe §4.3.
    Convention: one message per request, bandwidth-bound; overlapped with the next prefill by
    :func:`prefill_pool_rate_per_s`, on the TTFT path of its own request.
    Example: 163.9 MB over 8 senders × 40 GB/s NIC = 0.51 ms; over 8 × 160 GB/s NVLink 0.13 ms.
    """
    return latency_s + np.asarray(kv_bytes_per_request, dtype=float) / (
        np.asarray(sender_gpus) * np.asarray(link_bytes_per_s, dtype=float))


def prefill_cycle_s(*, prefill_batch_s, kv_transfer_s, requests_per_batch):
    """Seconds between two prefill batches of one worker, its KV transfers overlapped.

    Formula: T_cycle = max(T_prefill(batch), n_batch · t_KV): the batch's transfers run beside
    the next batch's prefill, so the slower of the two sets the pace.
    Ref: Splitwise §4.2 (transfer overlapped with the prefill); DistServe §4.3.
    Convention: ``requests_per_batch`` = batch per attention-DP rank × attention DP.
    Example: 0.30 s prefill of one 4K request, 0.5 ms transfer: 0.30 s cycle.
    """
    transfer = np.asarray(requests_per_batch) * kv_transfer_s
    return np.maximum(prefill_batch_s, transfer)


def prefill_pool_rate_per_s(*, cycle_s, requests_per_batch, workers):
    """Requests per second the prefill pool sustains.

    Formula: μ_P = n_P · n_batch / T_cycle.
    Ref: DistServe §3.2 (prefill instance throughput).
    Convention: every worker busy back to back (the pool's capacity).
    Example: 4 workers, 1 request per batch, 0.30 s cycle: 13.3 requests/s.
    """
    return np.asarray(workers) * np.asarray(requests_per_batch) / np.asarray(cycle_s)


def decode_pool_rate_per_s(*, tpot_s, osl_tokens, concurrency, workers):
    """Requests per second the decode pool sustains at its batch.

    Formula: μ_D = n_D · c_D / ((OSL − 1) · TPOT), c_D the requests in flight per decode worker.
    Ref: DistServe §3.2 (decode instance throughput); Little's law.
    Convention: OSL − 1 decode tokens per request (the first comes with the prefill), at least
    :data:`MIN_DECODE_TOKENS`; TPOT at the full batch.
    Example: 2 workers × 256 requests, 1,024 output tokens at 40 ms: 512 / 40.9 s = 12.5 /s.
    """
    tokens = np.maximum(np.asarray(osl_tokens) - 1, MIN_DECODE_TOKENS)
    return np.asarray(workers) * np.asarray(concurrency) / (tokens * np.asarray(tpot_s))


def prefill_queue_wait_s(*, arrival_rate_per_s, prefill_rate_per_s, cycle_s):
    """Mean wait (s) for a prefill worker under open arrivals; inf at or past saturation.

    Formula: ρ = λ / μ_P; W_q = ρ · T_cycle / (2 (1 − ρ)) (M/D/1, Pollaczek-Khinchine, each
    worker's batch one deterministic service).
    Ref: Kleinrock, Queueing Systems vol. 1 (1975) §5.6 (M/G/1 mean wait).
    Convention: Poisson arrivals spread evenly over the workers.
    Example: λ = 10 /s on μ_P = 13.3 /s (ρ = 0.75), 0.30 s cycle: 0.75 × 0.30 / 0.5 = 0.45 s.
    """
    rho = np.asarray(arrival_rate_per_s, dtype=float) / np.asarray(prefill_rate_per_s)
    busy = np.minimum(rho, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = busy * np.asarray(cycle_s) / (MD1_DIVISOR * (1.0 - busy))
    return np.where(rho < 1.0, wait, np.inf)


def burst_wait_rounds(*, requests, requests_per_round):
    """Mean prefill rounds a request of a simultaneous burst waits before its own round starts.

    Formula: m = requests per round, q = ⌊C / m⌋, r = C − q·m; the i-th request (0-based) waits
    ⌊i / m⌋ rounds, so the mean is (m · q (q − 1) / 2 + r · q) / C
    (:func:`~.disagg_burst.staircase_sum` in rounds of 1, over C).
    Ref: a closed-loop benchmark at an unlimited request rate starts its C clients together
    (srt-slurm's sa-bench script, github.com/ishandhanani/srt-slurm); the prefill pool then
    serves them in rounds of m.
    Convention: C and m >= 1 (requests in flight; prefill workers × requests per batch).
    Example: C = 64 on 2 workers × 8 per batch (m = 16): q = 4, r = 0, (16 · 6) / 64 = 1.5.
    """
    c = np.maximum(np.asarray(requests, dtype=float), 1.0)
    m = np.maximum(np.asarray(requests_per_round, dtype=float), 1.0)
    return staircase_sum(requests=c, requests_per_round=m, round_s=1.0) / c


@dataclass(frozen=True)
class DisaggState:
    """Steady state of a prefill and a decode pool (arrays of the broadcast shape)."""

    prefill_rate_per_s: np.ndarray     # requests/s the prefill pool sustains
    decode_rate_per_s: np.ndarray      # requests/s the decode pool sustains at its batch
    request_rate_per_s: np.ndarray     # requests/s served (closed loop: the throughput)
    bound: np.ndarray                  # PREFILL_BOUND / DECODE_BOUND (BINDING_SIDES)
    queue_s: np.ndarray                # wait for a prefill worker
    kv_transfer_s: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_latency_s: np.ndarray
    tokens_per_s_per_gpu: np.ndarray   # output tokens, every GPU of both pools
    total_tokens_per_s_per_gpu: np.ndarray
    tokens_per_s_per_user: np.ndarray
    prefill_gpus: np.ndarray
    decode_gpus: np.ndarray


def disagg_steady_state(*, prefill_batch_s, prefill_requests_per_batch, prefill_workers,
                        prefill_gpus_per_worker, kv_transfer_s, decode_step_s, decode_tpot_s,
                        decode_concurrency, decode_workers, decode_gpus_per_worker, isl_tokens,
                        osl_tokens, arrival_rate_per_s=None, request_overhead_s=0.0,
                        burst_share=0.0, clients=None, prefill_loaded=None) -> DisaggState:
    """TTFT, TPOT, request rate and tokens/s per GPU of a prefill and a decode pool.

    Formula: T_cycle (:func:`prefill_cycle_s`), μ_P (at ``prefill_loaded`` = (pass s, requests
    per pass) where given, :func:`~.disagg_context.loaded_context_pass`), μ_D; bound = the side
    with the lower rate. TTFT₀ = T_prefill + t_KV + 1 decode step + the engine's per-request
    host time (on no GPU's clock); T_dec = (OSL − 1) · TPOT.
    Closed loop, N = n_D · c_D requests in flight (``clients`` where given: more clients than
    the decode pool runs at once, the rest wait for a decode slot): X = min(N / (TTFT₀ +
    T_dec), μ_P, μ_D), TTFT = max(TTFT₀, N / X − T_dec) (the requests beyond the pipeline
    wait for prefill or for a decode slot);
    with ``burst_share`` s (the share of requests that arrive together at the start, a
    benchmark's first round of clients), TTFT = (1 − s) · that + s · (TTFT₀ + W_burst),
    W_burst = :func:`~.disagg_burst.burst_mean_wait_s` (N requests; prefill rounds of n_P ·
    n_batch per T_cycle, the unloaded batch; the decode pool's n_D · c_D slots, each held T_slot = T_dec + 1
    decode step): each burst request waits for its prefill round and, beyond the slots, for
    the first ones to finish, at the same time: the longer of its two waits, averaged.
    Open loop at λ: X = λ, TTFT = W_q (:func:`prefill_queue_wait_s`) + TTFT₀ (inf past either
    pool's rate). Output tokens/s per GPU = X · OSL / (n_P · g_P + n_D · g_D); total adds ISL.
    Ref: Lazowska et al. 1984 §5.3 (closed-network asymptotic bounds); DistServe §3;
    Splitwise §4.
    Convention: TPOT at the decode pool's full batch; E2E = TTFT + (OSL − 1) · TPOT; tokens/s
    per user = 1 / TPOT.
    Example: 1 prefill worker (8 GPUs, 0.30 s per 4K request), 1 decode worker (8 GPUs, 64
    requests, TPOT 20 ms), OSL 1,024: μ_P = 3.33 /s, μ_D = 64 / 20.5 s = 3.13 /s; TTFT₀ ≈ 0.32
    s, X = min(64 / 20.8, 3.33, 3.13) = 3.08 /s: 3.08 × 1,024 / 16 = 197 tokens/s per GPU.
    """
    cycle = prefill_cycle_s(prefill_batch_s=prefill_batch_s, kv_transfer_s=kv_transfer_s,
                            requests_per_batch=prefill_requests_per_batch)
    load_s, load_n = prefill_loaded or (None, prefill_requests_per_batch)
    mu_p = prefill_pool_rate_per_s(cycle_s=cycle if load_s is None else prefill_cycle_s(
        prefill_batch_s=load_s, kv_transfer_s=kv_transfer_s, requests_per_batch=load_n),
        requests_per_batch=load_n, workers=prefill_workers)
    mu_d = decode_pool_rate_per_s(tpot_s=decode_tpot_s, osl_tokens=osl_tokens,
                                  concurrency=decode_concurrency, workers=decode_workers)
    decode_time = np.maximum(np.asarray(osl_tokens) - 1, MIN_DECODE_TOKENS) * decode_tpot_s
    ttft0 = (np.asarray(prefill_batch_s) + kv_transfer_s + request_overhead_s
             + FIRST_TOKEN_DECODE_STEPS * np.asarray(decode_step_s))
    if arrival_rate_per_s is None:
        in_flight = (np.asarray(decode_workers) * np.asarray(decode_concurrency)
                     if clients is None else np.asarray(clients, dtype=float))
        rate = np.minimum(np.minimum(in_flight / (ttft0 + decode_time), mu_p), mu_d)
        ttft = np.maximum(ttft0, in_flight / rate - decode_time)
        burst = burst_mean_wait_s(
            requests=in_flight, prefill_cycle_s=cycle, prefill_round_requests=np.asarray(
                prefill_workers) * np.asarray(prefill_requests_per_batch),
            slots=np.asarray(decode_workers) * np.asarray(decode_concurrency),
            slot_s=decode_time + FIRST_TOKEN_DECODE_STEPS * np.asarray(decode_step_s))
        share = np.asarray(burst_share, dtype=float)
        ttft = (1 - share) * ttft + share * (ttft0 + burst)
        queue = ttft - ttft0
    else:
        rate = np.broadcast_arrays(np.asarray(arrival_rate_per_s, dtype=float), mu_p)[0]
        queue = prefill_queue_wait_s(arrival_rate_per_s=rate, prefill_rate_per_s=mu_p,
                                     cycle_s=cycle)
        queue = np.where(rate < mu_d, queue, np.inf)
        ttft = queue + ttft0
    p_gpus = np.asarray(prefill_workers) * np.asarray(prefill_gpus_per_worker)
    d_gpus = np.asarray(decode_workers) * np.asarray(decode_gpus_per_worker)
    per_gpu = rate / (p_gpus + d_gpus)
    tpot = np.asarray(decode_tpot_s, dtype=float)
    shape = np.broadcast_shapes(np.shape(ttft), np.shape(per_gpu), np.shape(tpot))

    def full(x):
        return np.broadcast_to(np.asarray(x, dtype=float), shape).copy()

    return DisaggState(
        prefill_rate_per_s=full(mu_p), decode_rate_per_s=full(mu_d),
        request_rate_per_s=full(rate),
        bound=np.broadcast_to(np.where(mu_p <= mu_d, PREFILL_BOUND, DECODE_BOUND), shape).copy(),
        queue_s=full(queue), kv_transfer_s=full(kv_transfer_s), ttft_s=full(ttft),
        tpot_s=full(tpot), e2e_latency_s=full(ttft + decode_time),
        tokens_per_s_per_gpu=full(per_gpu * osl_tokens),
        total_tokens_per_s_per_gpu=full(per_gpu * (np.asarray(isl_tokens) + osl_tokens)),
        tokens_per_s_per_user=full(1.0 / tpot), prefill_gpus=full(p_gpus),
        decode_gpus=full(d_gpus))


@dataclass(frozen=True)
class DisaggSplit:
    """The solver's answer and the grid it chose from (grid arrays: prefill candidate ×
    decode candidate × prefill worker count)."""

    found: bool                        # False: no split meets the limits (choice meaningless)
    prefill_choice: int                # index into the prefill candidates
    decode_choice: int                 # index into the decode candidates
    prefill_workers: int
    decode_workers: int
    bound: str                         # "prefill" or "decode": the side that sets the rate
    feasible: np.ndarray               # bool over the grid
    fits: np.ndarray                   # bool over the grid: both layouts fit and n_D >= 1
    grid: DisaggState                  # every split's steady state
    num_prefill_workers: np.ndarray    # the grid's worker counts
    num_decode_workers: np.ndarray


def _senders(prefill_sender_gpus, col):
    """Senders per prefill candidate (1-D) or per prefill × decode candidate (2-D) on the grid."""
    s = np.asarray(prefill_sender_gpus)
    return s[:, :, np.newaxis] if s.ndim == 2 else s[col]


def _split_workers(*, total_gpus, arrival_rate_per_s, prefill_gpus_per_worker,
                   decode_gpus_per_worker, decode_rate_per_worker, max_prefill_workers):
    """(prefill workers, decode workers) over the grid: n_P = 1 .. K on the last axis; n_D the
    GPUs left (total given) or the fewest decode workers faster than the arrivals (rate given)."""
    n_p = np.arange(1, max_prefill_workers + 1).reshape(1, 1, -1)
    if total_gpus is not None:
        left = total_gpus - n_p * prefill_gpus_per_worker
        return n_p, np.maximum(left // decode_gpus_per_worker, 0)
    return n_p, np.floor(arrival_rate_per_s / decode_rate_per_worker).astype(int) + 1


def best_disagg_split(*, prefill_batch_s, prefill_requests_per_batch, prefill_gpus_per_worker,
                      prefill_sender_gpus, prefill_fits, decode_step_s, decode_tpot_s,
                      decode_concurrency, decode_gpus_per_worker, decode_fits,
                      kv_bytes_per_request, isl_tokens, osl_tokens, scale_up_domain_gpus,
                      scale_up_bytes_per_s, scale_out_bytes_per_s, ttft_limit_s, tpot_limit_s,
                      scale_up_latency_s=0.0, scale_out_latency_s=0.0, total_gpus=None,
                      arrival_rate_per_s=None, max_prefill_workers=64,
                      request_overhead_s=0.0, prefill_loaded=None) -> DisaggSplit:
    """The prefill:decode split and layouts with the most output tokens/s per GPU under TTFT
    and TPOT limits, for ``total_gpus`` GPUs (closed loop, the decode pool full) or a target
    ``arrival_rate_per_s`` (open loop); the side that sets the rate named.

    Formula: over the grid P prefill candidates × D decode candidates × n_P = 1 .. K: n_D =
    ⌊(G − n_P · g_P) / g_D⌋ (GPUs given) or ⌊λ / μ_D,1⌋ + 1 (rate given); the KV link of
    :func:`kv_link_bytes_per_s` (and its latency) for n_P · g_P + n_D · g_D GPUs;
    :func:`disagg_steady_state` (the prefill pool's rate at ``prefill_loaded`` = (pass s,
    requests per pass) per prefill candidate where given, a loaded worker's pass as
    :func:`~.disagg_workload.serve_disagg` rates it; TTFT at the candidate's own batch);
    feasible = both layouts fit ∧ n_D ≥ 1 ∧ TTFT ≤ limit ∧ TPOT ≤ limit; choice = argmax of
    output tokens/s per GPU over the feasible points (ties: the first).
    Ref: DistServe §4 (placement search maximising per-GPU goodput under SLOs); DeepSeek's
    inference system overview (prefill and decode units sized apart).
    Convention: candidates are 1-D arrays (prefill: P, decode: D; a decode candidate is a layout
    at one batch; ``prefill_sender_gpus`` P or P × D, the senders depending on the decode
    layout); a closed-loop split need not use every GPU (per GPU counts those used).
    Example: 16 GPUs; prefill workers of 1 / 4 / 8 GPUs at 0.40 / 0.12 / 0.05 s per 2K
    request; decode workers of 2 GPUs at 16 requests and 10 ms or 64 and 20 ms TPOT; OSL 256,
    TTFT ≤ 2 s, TPOT ≤ 25 ms: 11 one-GPU prefill workers (μ_P = 27.5 /s) and 2 decode workers
    at 64 (μ_D = 25.1 /s, decode binds): 23.2 requests/s, TTFT 0.42 s, 23.2 × 256 / 15 GPUs =
    396 tokens/s per GPU (tests/calc/test_disagg.py checks it against every other split).
    """
    col = (slice(None), np.newaxis, np.newaxis)
    row = (np.newaxis, slice(None), np.newaxis)
    g_p = np.asarray(prefill_gpus_per_worker)[col]
    g_d = np.asarray(decode_gpus_per_worker)[row]
    mu_d1 = decode_pool_rate_per_s(tpot_s=np.asarray(decode_tpot_s)[row], osl_tokens=osl_tokens,
                                   concurrency=np.asarray(decode_concurrency)[row], workers=1)
    n_p, n_d = _split_workers(total_gpus=total_gpus, arrival_rate_per_s=arrival_rate_per_s,
                              prefill_gpus_per_worker=g_p, decode_gpus_per_worker=g_d,
                              decode_rate_per_worker=mu_d1,
                              max_prefill_workers=max_prefill_workers)
    pool = n_p * g_p + n_d * g_d
    link = kv_link_bytes_per_s(pool_gpus=pool,
                               scale_up_domain_gpus=scale_up_domain_gpus,
                               scale_up_bytes_per_s=scale_up_bytes_per_s,
                               scale_out_bytes_per_s=scale_out_bytes_per_s)
    transfer = kv_transfer_s(kv_bytes_per_request=kv_bytes_per_request, link_bytes_per_s=link,
                             sender_gpus=_senders(prefill_sender_gpus, col),
                             latency_s=np.where(pool <= scale_up_domain_gpus, scale_up_latency_s,
                                                scale_out_latency_s))
    used_d = np.maximum(n_d, 1)
    state = disagg_steady_state(
        prefill_batch_s=np.asarray(prefill_batch_s)[col],
        prefill_requests_per_batch=np.asarray(prefill_requests_per_batch)[col],
        prefill_workers=n_p, prefill_gpus_per_worker=g_p, kv_transfer_s=transfer,
        decode_step_s=np.asarray(decode_step_s)[row], decode_tpot_s=np.asarray(decode_tpot_s)[row],
        decode_concurrency=np.asarray(decode_concurrency)[row], decode_workers=used_d,
        decode_gpus_per_worker=g_d, isl_tokens=isl_tokens, osl_tokens=osl_tokens,
        arrival_rate_per_s=arrival_rate_per_s, request_overhead_s=request_overhead_s,
        prefill_loaded=None if prefill_loaded is None else tuple(
            np.asarray(x)[col] for x in prefill_loaded))
    fits = np.broadcast_to(np.asarray(prefill_fits)[col] & np.asarray(decode_fits)[row]
                           & (n_d >= 1), state.ttft_s.shape)
    feasible = (fits & (state.ttft_s <= ttft_limit_s) & (state.tpot_s <= tpot_limit_s)
                & np.isfinite(state.ttft_s))
    score = np.where(feasible, state.tokens_per_s_per_gpu, -np.inf)
    i, j, k = np.unravel_index(int(np.argmax(score)), score.shape)
    n_d_full = np.broadcast_to(used_d, score.shape)
    return DisaggSplit(
        found=bool(feasible[i, j, k]), prefill_choice=int(i), decode_choice=int(j),
        prefill_workers=int(k + 1), decode_workers=int(n_d_full[i, j, k]),
        bound=BINDING_SIDES[int(state.bound[i, j, k])], feasible=feasible, fits=fits, grid=state,
        num_prefill_workers=np.broadcast_to(n_p, score.shape),
        num_decode_workers=n_d_full)
