"""Disaggregated serving calculators (planner.calc.serving.disagg): the KV transfer, the two
pools' steady state, the closed and open loops, and the ratio solver against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.calc.serving import disagg as d

GB = 1e9


def test_kv_transfer_bytes_and_time_by_hand():
    # DeepSeek-V3 FP8 MLA cache: 61 layers x 656 B = 40,016 B per token, x 4,096 tokens
    q = d.kv_transfer_bytes_per_request(kv_bytes_per_token=40_016, isl_tokens=4096)
    assert q == 40_016 * 4096 == 163_905_536
    # 8 senders x 40 GB/s NIC: 163.9e6 / 320e9 = 0.512 ms; + 5 us latency
    t = d.kv_transfer_s(kv_bytes_per_request=q, link_bytes_per_s=40 * GB, sender_gpus=8,
                        latency_s=5e-6)
    assert t == pytest.approx(5e-6 + 163_905_536 / 320e9)


def test_kv_link_nvlink_inside_the_domain_nic_across():
    link = d.kv_link_bytes_per_s(pool_gpus=np.array([12, 72, 73, 16]), scale_up_domain_gpus=72,
                                 scale_up_bytes_per_s=720 * GB, scale_out_bytes_per_s=40 * GB)
    assert list(link) == [720 * GB, 720 * GB, 40 * GB, 720 * GB]
    h200 = d.kv_link_bytes_per_s(pool_gpus=16, scale_up_domain_gpus=8,
                                 scale_up_bytes_per_s=360 * GB, scale_out_bytes_per_s=40 * GB)
    assert h200 == 40 * GB


def test_prefill_cycle_overlaps_the_transfer():
    # transfer shorter than the prefill: hidden; longer (x 4 requests): it sets the cycle
    assert d.prefill_cycle_s(prefill_batch_s=0.3, kv_transfer_s=0.01, requests_per_batch=1) == 0.3
    assert d.prefill_cycle_s(prefill_batch_s=0.3, kv_transfer_s=0.1,
                             requests_per_batch=4) == pytest.approx(0.4)


def test_pool_rates_by_hand():
    assert d.prefill_pool_rate_per_s(cycle_s=0.3, requests_per_batch=1,
                                     workers=4) == pytest.approx(13.333, rel=1e-4)
    # 2 x 256 requests, 1,023 decode tokens each at 40 ms: 512 / 40.92 s
    assert d.decode_pool_rate_per_s(tpot_s=0.04, osl_tokens=1024, concurrency=256,
                                    workers=2) == pytest.approx(512 / 40.92)
    # OSL 1: still one decode token
    assert d.decode_pool_rate_per_s(tpot_s=0.5, osl_tokens=1, concurrency=1, workers=1) == 2.0


def test_md1_wait_and_saturation():
    w = d.prefill_queue_wait_s(arrival_rate_per_s=np.array([10.0, 13.4, 0.0]),
                               prefill_rate_per_s=13.333333, cycle_s=0.3)
    assert w[0] == pytest.approx(0.75 * 0.3 / (2 * 0.25), rel=1e-5)
    assert np.isinf(w[1]) and w[2] == 0.0


def _example(**kw):
    args = dict(prefill_batch_s=0.30, prefill_requests_per_batch=1, prefill_workers=1,
                prefill_gpus_per_worker=8, kv_transfer_s=0.0005, decode_step_s=0.02,
                decode_tpot_s=0.02, decode_concurrency=64, decode_workers=1,
                decode_gpus_per_worker=8, isl_tokens=4096, osl_tokens=1024)
    args.update(kw)
    return d.disagg_steady_state(**args)


def test_steady_state_docstring_example():
    s = _example()
    assert s.prefill_rate_per_s == pytest.approx(1 / 0.3)
    assert s.decode_rate_per_s == pytest.approx(64 / (1023 * 0.02))
    assert s.bound == d.DECODE_BOUND
    ttft0 = 0.30 + 0.0005 + 0.02
    assert s.ttft_s == pytest.approx(ttft0)
    x = 64 / (ttft0 + 1023 * 0.02)
    assert s.request_rate_per_s == pytest.approx(x)
    assert s.tokens_per_s_per_gpu == pytest.approx(x * 1024 / 16)      # ~197
    assert s.tokens_per_s_per_gpu == pytest.approx(197, abs=1)
    assert s.total_tokens_per_s_per_gpu == pytest.approx(x * 5120 / 16)
    assert s.prefill_gpus == 8 and s.decode_gpus == 8
    assert s.e2e_latency_s == pytest.approx(ttft0 + 1023 * 0.02)


def test_closed_loop_prefill_bound_queues_in_ttft():
    # 4 decode workers x 64 = 256 in flight; one prefill worker at 1 / 0.3 s binds
    s = _example(decode_workers=4)
    assert s.bound == d.PREFILL_BOUND
    assert s.request_rate_per_s == pytest.approx(1 / 0.3)
    # TTFT = N / X - decode time = 256 x 0.3 - 20.46 s
    assert s.ttft_s == pytest.approx(256 * 0.3 - 1023 * 0.02)
    assert s.queue_s == pytest.approx(s.ttft_s - 0.3205)


def test_open_loop_queue_and_overload():
    s = _example(arrival_rate_per_s=np.array([1.0, 3.2, 4.0]))
    rho = 1.0 * 0.3
    assert s.ttft_s[0] == pytest.approx(0.3205 + rho * 0.3 / (2 * (1 - rho)))
    assert s.tokens_per_s_per_gpu[0] == pytest.approx(1024 / 16)
    assert np.isinf(s.ttft_s[1])          # past the decode pool's 3.13 /s
    assert np.isinf(s.ttft_s[2])          # past the prefill pool's 3.33 /s too


def test_a_faster_kv_link_changes_only_ttft():
    slow, fast = (_example(kv_transfer_s=t, arrival_rate_per_s=2.0) for t in (0.2, 0.002))
    assert fast.ttft_s == pytest.approx(slow.ttft_s - 0.198)
    for name in ("tpot_s", "tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                 "prefill_rate_per_s", "decode_rate_per_s", "request_rate_per_s",
                 "tokens_per_s_per_user"):
        assert getattr(fast, name) == getattr(slow, name), name


def test_a_transfer_longer_than_the_prefill_paces_the_prefill_pool():
    s = _example(kv_transfer_s=0.5)
    assert s.prefill_rate_per_s == pytest.approx(2.0)


# ----------------------------------------------------------------------------- the solver
P = dict(prefill_batch_s=np.array([0.40, 0.12, 0.05]), prefill_requests_per_batch=np.array([1, 1, 1]),
         prefill_gpus_per_worker=np.array([1, 4, 8]), prefill_sender_gpus=np.array([1, 4, 8]),
         prefill_fits=np.array([True, True, True]))
D = dict(decode_step_s=np.array([0.010, 0.020, 0.030, 0.012]),
         decode_tpot_s=np.array([0.010, 0.020, 0.030, 0.012]),
         decode_concurrency=np.array([16, 64, 128, 32]),
         decode_gpus_per_worker=np.array([2, 2, 4, 8]),
         decode_fits=np.array([True, True, True, False]))
W = dict(kv_bytes_per_request=50e6, isl_tokens=2048, osl_tokens=256, scale_up_domain_gpus=8,
         scale_up_bytes_per_s=160 * GB, scale_out_bytes_per_s=40 * GB)


def _brute(total_gpus, ttft_limit, tpot_limit):
    """Every split evaluated one at a time with scalars (a loop, for the test only)."""
    best = None
    for i, j, n_p in itertools.product(range(3), range(4), range(1, 65)):
        g_p, g_d = P["prefill_gpus_per_worker"][i], D["decode_gpus_per_worker"][j]
        n_d = (total_gpus - n_p * g_p) // g_d
        if n_d < 1 or not D["decode_fits"][j]:
            continue
        used = n_p * g_p + n_d * g_d
        link = W["scale_up_bytes_per_s"] if used <= 8 else W["scale_out_bytes_per_s"]
        t = W["kv_bytes_per_request"] / (P["prefill_sender_gpus"][i] * link)
        s = d.disagg_steady_state(
            prefill_batch_s=P["prefill_batch_s"][i], prefill_requests_per_batch=1,
            prefill_workers=n_p, prefill_gpus_per_worker=g_p, kv_transfer_s=t,
            decode_step_s=D["decode_step_s"][j], decode_tpot_s=D["decode_tpot_s"][j],
            decode_concurrency=D["decode_concurrency"][j], decode_workers=n_d,
            decode_gpus_per_worker=g_d, isl_tokens=2048, osl_tokens=256)
        if s.ttft_s <= ttft_limit and s.tpot_s <= tpot_limit:
            if best is None or s.tokens_per_s_per_gpu > best[0]:
                best = (float(s.tokens_per_s_per_gpu), i, j, n_p, n_d)
    return best


@pytest.mark.parametrize("total,ttft,tpot", [(16, 2.0, 0.025), (32, 1.0, 0.05), (64, 0.5, 0.015),
                                             (24, 5.0, 1.0), (32, 0.3, 0.05)])
def test_the_solver_beats_every_other_split(total, ttft, tpot):
    split = d.best_disagg_split(**P, **D, **W, ttft_limit_s=ttft, tpot_limit_s=tpot,
                                total_gpus=total)
    best = _brute(total, ttft, tpot)
    assert split.found and best is not None
    chosen = split.grid.tokens_per_s_per_gpu[split.prefill_choice, split.decode_choice,
                                             split.prefill_workers - 1]
    assert chosen == pytest.approx(best[0], rel=1e-12)
    assert (split.prefill_choice, split.decode_choice, split.prefill_workers,
            split.decode_workers) == best[1:]
    # every other feasible split yields at most as much, and the choice meets the limits
    assert np.all(split.grid.tokens_per_s_per_gpu[split.feasible] <= chosen)
    c = (split.prefill_choice, split.decode_choice, split.prefill_workers - 1)
    assert split.grid.ttft_s[c] <= ttft and split.grid.tpot_s[c] <= tpot
    assert split.bound == d.BINDING_SIDES[int(split.grid.bound[c])]


def test_the_solver_says_when_nothing_meets_the_limits():
    split = d.best_disagg_split(**P, **D, **W, ttft_limit_s=0.01, tpot_limit_s=0.025,
                                total_gpus=16)
    assert not split.found and not split.feasible.any()


def test_the_solver_at_a_target_rate_uses_the_fewest_gpus():
    split = d.best_disagg_split(**P, **D, **W, ttft_limit_s=2.0, tpot_limit_s=0.05,
                                arrival_rate_per_s=20.0)
    assert split.found
    c = (split.prefill_choice, split.decode_choice, split.prefill_workers - 1)
    used = split.grid.prefill_gpus[c] + split.grid.decode_gpus[c]
    feasible_used = (split.grid.prefill_gpus + split.grid.decode_gpus)[split.feasible]
    assert used == feasible_used.min()
    assert split.grid.tokens_per_s_per_gpu[c] == pytest.approx(20.0 * 256 / used)
    assert split.grid.decode_rate_per_s[c] > 20.0 and split.grid.prefill_rate_per_s[c] > 20.0


def test_burst_wait_rounds_by_hand():
    # docstring: 64 requests in rounds of 16 wait 0, 1, 2, 3 rounds, 16 each: mean 1.5
    assert d.burst_wait_rounds(requests=64, requests_per_round=16) == pytest.approx(1.5)
    # one round: nobody waits; 5 in rounds of 2: 0, 0, 1, 1, 2 -> 4 / 5
    assert d.burst_wait_rounds(requests=16, requests_per_round=16) == 0
    assert d.burst_wait_rounds(requests=5, requests_per_round=2) == pytest.approx(0.8)
    got = d.burst_wait_rounds(requests=np.array([1, 7, 100]), requests_per_round=3)
    want = [np.mean([i // 3 for i in range(c)]) for c in (1, 7, 100)]
    assert got == pytest.approx(want)


def test_a_burst_share_mixes_the_burst_and_the_steady_state_ttft():
    """A benchmark whose first round of clients starts together (share s of its requests):
    TTFT = (1 - s) x steady + s x (TTFT0 + mean rounds waited x prefill cycle); the steady
    state (s = 0) is unchanged, and nothing else moves."""
    base = _example()
    ttft0 = 0.30 + 0.0005 + 0.02
    for s in (0.2, 1.0):
        b = _example(burst_share=s)
        # 64 requests on 1 prefill worker of 1 per batch: rounds 0..63, mean 31.5 x 0.3 s
        assert b.ttft_s == pytest.approx((1 - s) * ttft0 + s * (ttft0 + 31.5 * 0.3))
        assert b.queue_s == pytest.approx(b.ttft_s - ttft0)
        assert b.tpot_s == base.tpot_s and b.request_rate_per_s == base.request_rate_per_s
    assert _example(burst_share=0.0).ttft_s == base.ttft_s


def test_clients_beyond_the_running_batch_wait_for_a_decode_slot():
    """Closed loop: clients = the decode pool's batch is the default to 1e-12; more clients
    than it runs lengthen TTFT by their wait (N / X - T_dec), the rate and TPOT unchanged once
    the decode pool binds."""
    import numpy as np

    from planner.calc.serving.disagg import disagg_steady_state

    kw = dict(prefill_batch_s=0.05, prefill_requests_per_batch=1, prefill_workers=2,
              prefill_gpus_per_worker=8, kv_transfer_s=0.001, decode_step_s=0.02,
              decode_tpot_s=0.02, decode_concurrency=4, decode_workers=2,
              decode_gpus_per_worker=8, isl_tokens=1024, osl_tokens=1024)
    base = disagg_steady_state(**kw)
    same = disagg_steady_state(**kw, clients=8)
    more = disagg_steady_state(**kw, clients=np.array([8.0, 12.0, 16.0]))
    assert float(same.ttft_s) == pytest.approx(float(base.ttft_s), rel=1e-12)
    t_dec = 1023 * 0.02
    rate = 8 / t_dec                     # the decode pool's 8 running requests bind
    assert more.request_rate_per_s[1:] == pytest.approx([rate, rate], rel=1e-9)
    assert more.ttft_s[1:] == pytest.approx([12 / rate - t_dec, 16 / rate - t_dec], rel=1e-9)
    assert np.all(more.tpot_s == 0.02) and np.all(np.diff(more.ttft_s) > 0)


def test_burst_clients_beyond_the_decode_slots_wait_for_a_slot():
    """The opening burst (share s) of N clients on S = n_D x c_D decode slots: the N - S beyond
    them wait for the first to finish (rounds of S, each T_dec + 1 step), the prefill pool
    working through the burst meanwhile: each request waits the longer of its prefill round
    and its slot round, burst TTFT = TTFT0 + the mean of those (round 11: was the longer of
    the two mean waits, max(R x T_cycle, R_D x T_slot), which is shorter wherever requests
    differ in which wait is longer). With N <= S nothing changes; TPOT and the rate never do."""
    import numpy as np

    from planner.calc.serving.disagg import burst_wait_rounds, disagg_steady_state

    kw = dict(prefill_batch_s=0.05, prefill_requests_per_batch=1, prefill_workers=2,
              prefill_gpus_per_worker=8, kv_transfer_s=0.001, decode_step_s=0.02,
              decode_tpot_s=0.02, decode_concurrency=4, decode_workers=2,
              decode_gpus_per_worker=8, isl_tokens=1024, osl_tokens=1024)
    s, clients = 0.2, np.array([8.0, 12.0, 16.0])
    steady = disagg_steady_state(**kw, clients=clients)
    burst = disagg_steady_state(**kw, clients=clients, burst_share=s)
    ttft0 = 0.05 + 0.001 + 0.02
    cycle = 0.05                              # max(prefill, 1 x transfer): the transfer overlaps
    slot = 1023 * 0.02 + 0.02
    prefill_rounds = burst_wait_rounds(requests=clients, requests_per_round=2)
    slot_rounds = burst_wait_rounds(requests=clients, requests_per_round=8)
    assert slot_rounds.tolist() == pytest.approx([0.0, 4 / 12, 8 / 16])
    # by hand: 12 clients, prefill rounds of 2: requests 0..7 wait 0, 0, .05, .05, .., .15 s
    # (0.6 s in all), 8..11 a slot (4 x 20.48 s); 16: 0..7 as before, 8..15 a slot
    by_hand = np.array([prefill_rounds[0] * cycle, (0.6 + 4 * slot) / 12,
                        (0.6 + 8 * slot) / 16])
    want = (1 - s) * steady.ttft_s + s * (ttft0 + by_hand)
    assert burst.ttft_s == pytest.approx(want, rel=1e-9)
    # the longer of the two mean waits is shorter: the prefill rounds of requests 8..15
    # (.2 .. .35 s) overlap their slot wait, not add to it
    old = np.maximum(prefill_rounds * cycle, slot_rounds * slot)
    assert np.all(by_hand[1:] > old[1:] + 1e-3) and by_hand[0] == pytest.approx(old[0])
    # 8 clients on 8 slots: only the prefill rounds; 12 and 16: the slot wait, seconds longer
    assert burst.ttft_s[0] == pytest.approx((1 - s) * steady.ttft_s[0]
                                            + s * (ttft0 + prefill_rounds[0] * cycle))
    assert np.all(burst.ttft_s[1:] - steady.ttft_s[1:] * (1 - s) - s * ttft0 > s * 1.0)
    np.testing.assert_array_equal(burst.tpot_s, steady.tpot_s)
    np.testing.assert_array_equal(burst.request_rate_per_s, steady.request_rate_per_s)


def _burst_brute_force(n, m, s, a, b):
    i = np.arange(n)
    return float(np.mean(np.maximum(a * (i // m), b * (i // s))))


def test_burst_mean_wait_is_the_mean_of_each_requests_longer_wait():
    """burst_mean_wait_s against the request-by-request mean of max(prefill round wait, slot
    round wait) on 2,000 random bursts (equal and nearly equal paces included, where the two
    staircases cross in many rounds and more than one pass of the round axis runs), vectorized
    in one call; the docstring's example by hand."""
    from planner.calc.serving.disagg_burst import BURST_ROUNDS_PER_PASS, burst_mean_wait_s

    rng = np.random.default_rng(11)
    n = rng.integers(1, 600, 2000)
    m, s = rng.integers(1, 40, 2000), rng.integers(1, 50, 2000)
    a = np.where(rng.random(2000) < 0.05, 0.0, rng.uniform(1e-3, 2.0, 2000))
    b = np.where(rng.random(2000) < 0.05, 0.0, rng.uniform(1e-3, 30.0, 2000))
    pace = rng.random(2000)
    b = np.where(pace < 0.2, a * s / m, np.where(pace < 0.3, a * s / m * 1.0004, b))
    got = burst_mean_wait_s(requests=n, prefill_round_requests=m, prefill_cycle_s=a, slots=s,
                            slot_s=b)
    want = [_burst_brute_force(*x) for x in zip(n, m, s, a, b)]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert np.max(np.ceil(n / s)) > 2 * BURST_ROUNDS_PER_PASS      # several passes ran
    assert burst_mean_wait_s(requests=12, prefill_round_requests=2, prefill_cycle_s=0.05,
                             slots=8, slot_s=20.48) == pytest.approx((0.6 + 4 * 20.48) / 12)
    # the burst's mean wait never falls below the longer of the two mean waits, nor when
    # either round lengthens (a faster KV link shortens the prefill cycle)
    old = np.maximum(d.burst_wait_rounds(requests=n, requests_per_round=m) * a,
                     d.burst_wait_rounds(requests=n, requests_per_round=s) * b)
    assert np.all(got >= old - 1e-12)
    for da, db in ((1.1, 1.0), (1.0, 1.1)):
        longer = burst_mean_wait_s(requests=n, prefill_round_requests=m,
                                   prefill_cycle_s=a * da, slots=s, slot_s=b * db)
        assert np.all(longer >= got - 1e-12)


def test_a_burst_one_staircase_bounds_from_the_start_sums_in_closed_form():
    """A burst of 10^7 requests whose prefill staircase bounds the slot one from the first
    round: the closed form of the prefill staircase, no pass over its 10 slot rounds."""
    from planner.calc.serving.disagg_burst import burst_mean_wait_s, staircase_sum

    # the prefill far slower per request than the slots: f >= g from round 1 on
    big = burst_mean_wait_s(requests=1e7, prefill_round_requests=1, prefill_cycle_s=1.0,
                            slots=1e6, slot_s=1.0)
    assert big == pytest.approx(float(staircase_sum(requests=1e7, requests_per_round=1,
                                                    round_s=1.0)) / 1e7)
