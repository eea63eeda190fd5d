"""The opening burst of a closed-loop benchmark on a disaggregated deployment: the mean wait of
its clients, each waiting for its prefill round and for a decode slot at the same time, the
longer of the two its own. Arrays in, arrays out.

Ref: srt-slurm's sa-bench client (github.com/ishandhanani/srt-slurm,
src/srtctl/benchmarks/scripts/sa-bench/bench.sh: its clients start together at an unlimited
request rate); :func:`planner.calc.serving.disagg.disagg_steady_state` (its burst term).
"""

from __future__ import annotations

import numpy as np

#: Slot rounds one vectorized pass of :func:`burst_mean_wait_s` evaluates (its added axis);
#: a burst whose staircases can cross past this many rounds takes another pass.
BURST_ROUNDS_PER_PASS = 16


def staircase_sum(*, requests, requests_per_round, round_s):
    """Total wait (s) of a burst's first ``requests`` requests served in rounds of
    ``requests_per_round``, each round ``round_s`` long: Σ_{i < n} round_s · ⌊i / m⌋.

    Formula: q = ⌊n / m⌋, r = n − q·m; W(n) = t · (m · q (q − 1) / 2 + r · q).
    Ref: :func:`planner.calc.serving.disagg.burst_wait_rounds` (the same sum over n, per request).
    Convention: n >= 0 and m > 0; a fractional n counts its last request in part (linear
    between whole counts).
    Example: n = 5 in rounds of m = 2 of 0.3 s: waits 0, 0, 0.3, 0.3, 0.6: W = 1.2 s.
    """
    n = np.asarray(requests, dtype=float)
    m = np.asarray(requests_per_round, dtype=float)
    q = np.floor(n / m)
    return np.asarray(round_s, dtype=float) * (m * q * (q - 1) / 2 + (n - q * m) * q)


def _crossing_rounds(a, b, m, s, rounds):
    """Slot rounds before which the two staircases may cross (after it one bounds the other,
    1 / (S/m − b/a) and 1 / (b/a · m/S − 1) rounds on), and whether the prefill one is above."""
    gap = a * s - b * m
    with np.errstate(divide="ignore", invalid="ignore"):
        f_after = np.where(b <= 0, 0.0, np.where(gap > 0, a * m / np.where(gap > 0, gap, 1), np.inf))
        g_after = np.where(a <= 0, 0.0, np.where(gap < 0, a * s / np.where(gap < 0, -gap, 1),
                                                 np.inf))
    prefill_above = (b <= 0) | ((gap > 0) & (a > 0))
    return np.minimum(rounds, np.ceil(np.minimum(f_after, g_after))), prefill_above


def burst_mean_wait_s(*, requests, prefill_round_requests, prefill_cycle_s, slots, slot_s):
    """Mean wait (s) of a burst of N simultaneous requests before their own prefill and decode
    slot: request i waits max(f(i), g(i)), f(i) = T_cycle · ⌊i / m⌋ (the prefill pool serves
    m per cycle) and g(i) = T_slot · ⌊i / S⌋ (S decode slots, each held T_slot).

    Formula: W = (1 / N) Σ_i max(f(i), g(i)), summed by slot round j (i in [jS, min((j+1)S, N))):
    g = T_slot · j there, and f < g exactly for i < c_j = clip(m ⌈T_slot · j / T_cycle⌉, jS,
    (j+1)S), so round j gives T_slot · j · (c_j − jS) + F(hi_j) − F(c_j), F the prefill
    staircase's :func:`staircase_sum`. Past round j* one staircase bounds the other in every
    round (f ≥ g from j ≥ a·m / (a·S − b·m) where a·S > b·m, f ≤ g from j ≥ a·S / (b·m − a·S)
    where b·m > a·S; a = T_cycle, b = T_slot), so the rounds from j* on sum in closed form
    (F(N) − F(j*·S), or the slot staircase's); only rounds below min(⌈j*⌉, ⌈N / S⌉) are
    evaluated, :data:`BURST_ROUNDS_PER_PASS` at a time over an added axis.
    Ref: srt-slurm's sa-bench (its clients start together); the request's TTFT waits for the
    later of its prefill and its decode slot.
    Convention: N, m, S >= 1 (fewer taken as 1); N <= S: the prefill rounds alone
    (:func:`~planner.calc.serving.disagg.burst_wait_rounds` × T_cycle); exact over whole
    requests, linear in a fractional N's last request; memory is the arrays' size times the
    pass axis, whatever N.
    Example: N = 12 on m = 2 per 0.05 s cycle and S = 8 slots of 20.48 s: requests 0..7 wait
    their prefill rounds (0, 0, 0.05, 0.05, ..., 0.15 s), 8..11 a slot (20.48 s): W = (0.6 +
    81.92) / 12 = 6.877 s, against max(2.5 × 0.05, 4 / 12 × 20.48) = 6.827 s for the longer
    of the two mean waits.
    """
    n = np.maximum(np.asarray(requests, dtype=float), 1.0)
    m = np.maximum(np.asarray(prefill_round_requests, dtype=float), 1.0)
    s = np.maximum(np.asarray(slots, dtype=float), 1.0)
    a, b = np.asarray(prefill_cycle_s, dtype=float), np.asarray(slot_s, dtype=float)
    n, m, s, a, b = np.broadcast_arrays(n, m, s, a, b)
    explicit, prefill_above = _crossing_rounds(a, b, m, s, np.ceil(n / s))
    start = np.minimum(explicit * s, n)
    total = np.where(prefill_above,
                     staircase_sum(requests=n, requests_per_round=m, round_s=a)
                     - staircase_sum(requests=start, requests_per_round=m, round_s=a),
                     staircase_sum(requests=n, requests_per_round=s, round_s=b)
                     - staircase_sum(requests=start, requests_per_round=s, round_s=b))
    x = [v[..., np.newaxis] for v in (n, m, s, a, b, explicit)]
    safe_a = np.where(x[3] > 0, x[3], 1.0)
    first = 0
    while first < np.max(explicit, initial=0.0):
        j = first + np.arange(BURST_ROUNDS_PER_PASS, dtype=float)
        lo, hi = j * x[2], np.minimum((j + 1) * x[2], x[0])
        cut = np.clip(x[1] * np.ceil(x[4] * j / safe_a), lo, np.maximum(hi, lo))
        part = (x[4] * j * (cut - lo) + staircase_sum(requests=hi, requests_per_round=x[1],
                                                      round_s=x[3])
                - staircase_sum(requests=np.maximum(cut, 0), requests_per_round=x[1],
                                round_s=x[3]))
        total = total + np.where(j < x[5], part, 0.0).sum(axis=-1)
        first += BURST_ROUNDS_PER_PASS
    return total / n
