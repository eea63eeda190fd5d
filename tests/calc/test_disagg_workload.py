"""Disaggregated serving on a model (planner.calc.serving.disagg_workload and the solver of
planner.studies.disagg): the pools' pieces from the workload model, the KV link, overlap, and
the solver's choice evaluated whole."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving.disagg_kv import kv_link_rates, kv_sender_gpus
from planner.calc.serving.disagg_workload import PoolLayout, decode_piece, prefill_piece, serve_disagg
from planner.calc.serving.workload import serve_workload

DT = dict(weights_dtype="fp8", moe_weights_dtype=None, kv_dtype="fp8")


@pytest.fixture(scope="module")
def v3():
    return catalog.load_model("deepseek-v3")


@pytest.fixture(scope="module")
def h800():
    return catalog.load_hardware("h800")


PRE = PoolLayout(workers=2, batch=1, attention_dp=8)
DEC = PoolLayout(workers=1, batch=32, attention_dp=16)


def test_kv_bytes_and_the_nic_across_nodes(v3, h800):
    r = serve_disagg(v3, h800, None, isl_tokens=4096, osl_tokens=1024, prefill=PRE, decode=DEC,
                     **DT)
    # FP8 MLA cache 40,016 B per token x 4,096 tokens; 2 x 8 + 16 = 32 GPUs > 8: the NIC
    assert r.kv_bytes_per_request == 40_016 * 4096
    assert r.kv_link == 1
    up, out, _, out_lat = kv_link_rates(h800)
    assert (up, out) == (160e9, 40e9)
    # MLA: one sender per prefill rank group (the latent is whole on every TP rank)
    assert r.state.kv_transfer_s == pytest.approx(out_lat + 40_016 * 4096 / 40e9)
    assert r.state.prefill_gpus == 16 and r.state.decode_gpus == 16


def test_kv_over_nvlink_inside_one_node():
    llama = catalog.load_model("llama-3.1-70b")
    h200 = catalog.load_hardware("h200")
    r = serve_disagg(llama, h200, None, isl_tokens=2048, osl_tokens=256,
                     prefill=PoolLayout(tp=4), decode=PoolLayout(tp=4, batch=16), **DT)
    assert r.kv_link == 0      # 4 + 4 GPUs in one 8-GPU NVLink node
    # GQA, 8 KV heads at TP 4: four senders, each its quarter
    assert kv_sender_gpus(llama, kv_dtype="fp8", tp=np.array([1, 4, 8, 16]),
                          pp=1).tolist() == [1, 4, 8, 8]


def test_a_faster_kv_link_changes_only_ttft(v3, h800):
    args = dict(isl_tokens=4096, osl_tokens=1024, prefill=PRE, decode=DEC, **DT)
    # open loop at 2 requests/s: the link is on the TTFT path only
    slow, fast = (serve_disagg(v3, h800, None, arrival_rate_per_s=2.0, kv_bytes_per_s=b,
                               **args) for b in (40e9, 320e9))
    s, f = slow.state, fast.state
    assert s.kv_transfer_s == pytest.approx(2.8e-6 + 40_016 * 4096 / 40e9)
    assert f.kv_transfer_s == pytest.approx(2.8e-6 + 40_016 * 4096 / 320e9)
    assert f.ttft_s == pytest.approx(s.ttft_s - (s.kv_transfer_s - f.kv_transfer_s))
    for name in ("tpot_s", "tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu",
                 "prefill_rate_per_s", "decode_rate_per_s", "request_rate_per_s",
                 "tokens_per_s_per_user", "prefill_gpus", "decode_gpus"):
        assert getattr(f, name) == getattr(s, name), name
    assert np.array_equal(slow.prefill.time_s, fast.prefill.time_s)
    assert np.array_equal(slow.decode.time_s, fast.decode.time_s)
    # closed loop (the measured runs' benchmark): TPOT unchanged, TTFT shorter by the
    # transfer; the throughput moves only by Little's law (N / cycle), by less than 0.1 %
    cs, cf = (serve_disagg(v3, h800, None, kv_bytes_per_s=b, **args).state
              for b in (40e9, 320e9))
    assert cf.tpot_s == cs.tpot_s
    assert cf.ttft_s == pytest.approx(cs.ttft_s - (cs.kv_transfer_s - cf.kv_transfer_s))
    assert cf.tokens_per_s_per_gpu == pytest.approx(cs.tokens_per_s_per_gpu, rel=1e-3)


def test_the_pieces_follow_the_workload_model(v3, h800):
    dec = decode_piece(v3, h800, None, isl_tokens=4096, osl_tokens=1024, layout=DEC, **DT)
    agg = serve_workload(v3, h800, None, isl=4096, osl=1024, concurrency=512, attention_dp=16,
                         **DT)
    # the same worker's memory; a pure decode step is faster than the aggregated step that
    # carries prefill tokens too
    assert dec.memory.memory_bytes_per_gpu == agg.memory_bytes_per_gpu
    assert dec.memory.fits == agg.fits
    assert dec.time_s < agg.tpot_s
    # prefill of one prompt per rank: longer prompts take longer, twice the batch about twice
    pre = prefill_piece(v3, h800, None, isl_tokens=np.array([1024, 4096]),
                        layout=PoolLayout(attention_dp=8), **DT)
    assert pre.time_s[0] < pre.time_s[1]


def test_the_pieces_carry_the_engines_per_layer_and_per_peer_times(v3, h800):
    """Both pools run the workload model's pass with the engine's per-layer GPU time and its
    all-reduce per-peer time (serve_workload's terms; the decode pool's small-batch TP steps
    were 4x too fast without them): raising either by d adds L x d, or 2 x L x (TP - 1) x d,
    to each pass."""
    from planner.specs.load import load_engine

    eng = load_engine("trtllm")
    d = 1e-5                                # within both overheads' bounds
    tp8 = PoolLayout(workers=1, batch=1, tp=8, moe_tp=1, moe_ep=8)
    layers = v3.num_layers
    for key, per_pass in (("layer_overhead_s", layers * d),
                          ("all_reduce_peer_overhead_s", 2 * layers * 7 * d)):
        more = eng.model_copy(update={key: getattr(eng, key) + d})
        a = decode_piece(v3, h800, eng, isl_tokens=1024, osl_tokens=1024, layout=tp8, **DT)
        b = decode_piece(v3, h800, more, isl_tokens=1024, osl_tokens=1024, layout=tp8, **DT)
        assert float(b.time_s - a.time_s) == pytest.approx(per_pass, rel=1e-9), key
        a = prefill_piece(v3, h800, eng, isl_tokens=1024, layout=tp8, **DT)
        b = prefill_piece(v3, h800, more, isl_tokens=1024, layout=tp8, **DT)
        assert float(b.time_s - a.time_s) == pytest.approx(per_pass, rel=1e-9), key


def test_overlap_hides_communication_under_compute(v3, h800):
    lay = PoolLayout(attention_dp=16)
    plain = prefill_piece(v3, h800, None, isl_tokens=4096, layout=lay, **DT).time_s
    over = prefill_piece(v3, h800, None, isl_tokens=4096, layout=lay, overlap=True, **DT).time_s
    assert over < plain
    # no links at all, nothing to hide: one GPU of a dense model
    llama = catalog.load_model("llama-3.1-70b")
    one = PoolLayout(tp=1)
    h200 = catalog.load_hardware("h200")
    assert prefill_piece(llama, h200, None, isl_tokens=1024, layout=one, overlap=True,
                         **DT).time_s == prefill_piece(llama, h200, None, isl_tokens=1024,
                                                       layout=one, **DT).time_s


@pytest.mark.parametrize("engine, hit", [(None, None), ("trtllm", None), ("trtllm", 0.563),
                                         ("sglang", None)])
def test_the_solvers_choice_evaluated_whole_is_the_grids_best(v3, h800, engine, hit):
    """With an engine the prefill pool runs at a loaded worker's pass (its token budget's
    prompts per rank): the solver's grid rates its candidates so too, or it rejects splits whose
    own figures meet the limits (TensorRT-LLM, F = 0.563: it gave 80 + 64 GPUs at 734.7 tokens/s
    per GPU while 64 + 64 met the limits at 802.8)."""
    from planner.specs.load import load_engine
    from planner.studies.disagg import solve_disagg

    eng = None if engine is None else load_engine(engine)
    plan = solve_disagg(v3, h800, eng, isl_tokens=4096, osl_tokens=1024, ttft_limit_s=2.0,
                        tpot_limit_s=0.05, total_gpus=176, kv_dtype="fp8",
                        prefix_cache_hit_frac=hit)
    split, s = plan.split, plan.result.state
    c = (split.prefill_choice, split.decode_choice, split.prefill_workers - 1)
    # serve_disagg on the chosen layouts gives the grid's figures at the choice
    for name in ("ttft_s", "tpot_s", "tokens_per_s_per_gpu", "kv_transfer_s"):
        assert float(getattr(s, name)) == pytest.approx(getattr(split.grid, name)[c], rel=1e-9)
    # the grid rates other splits as serve_disagg does too: the fitting split with the most
    # tokens/s per GPU, limits aside (a prefill-bound one here), and its neighbour
    from planner.studies.disagg import _pick

    rate = np.where(split.fits, split.grid.tokens_per_s_per_gpu, -np.inf)
    top = np.unravel_index(int(np.argmax(rate)), rate.shape)
    for i, j, k in (top, (top[0], top[1], max(top[2] - 1, 0))):
        one = serve_disagg(v3, h800, eng, isl_tokens=4096, osl_tokens=1024,
                           prefill=_pick(plan.prefill_candidates, i, k + 1),
                           decode=_pick(plan.decode_candidates, j,
                                        int(split.num_decode_workers[i, j, k])),
                           prefix_cache_hit_frac=hit, **DT).state
        for name in ("ttft_s", "tokens_per_s_per_gpu", "prefill_rate_per_s"):
            assert float(getattr(one, name)) == pytest.approx(getattr(split.grid, name)[i, j, k],
                                                              rel=1e-9), name
    # and no other split of the grid that meets the limits does better
    assert np.all(split.grid.tokens_per_s_per_gpu[split.feasible]
                  <= split.grid.tokens_per_s_per_gpu[c])
    assert s.prefill_gpus + s.decode_gpus <= 176
    assert s.ttft_s <= 2.0 and s.tpot_s <= 0.05
    # a tighter TPOT limit gives a choice at least as slow per GPU, within that limit
    tight = solve_disagg(v3, h800, eng, isl_tokens=4096, osl_tokens=1024, ttft_limit_s=2.0,
                         tpot_limit_s=0.02, total_gpus=176, kv_dtype="fp8",
                         prefix_cache_hit_frac=hit)
    assert tight.result.state.tpot_s <= 0.02
    assert tight.result.state.tokens_per_s_per_gpu <= s.tokens_per_s_per_gpu


def test_kv_bandwidth_is_vectorized_like_the_lengths(v3, h800):
    """serve_disagg's arrays broadcast: a grid of KV link bandwidths over scalar layouts and
    lengths gave ValueError (np.broadcast_to onto the link's scalar shape); each point is its
    scalar call, TPOT the same at every bandwidth and TTFT never longer on a faster link."""
    args = dict(isl_tokens=4096, osl_tokens=1024, prefill=PRE, decode=DEC, burst_share=0.5,
                **DT)
    bandwidths = np.array([1e9, 40e9, 320e9])
    grid = serve_disagg(v3, h800, None, kv_bytes_per_s=bandwidths, **args).state
    assert grid.ttft_s.shape == (3,)
    for i, b in enumerate(bandwidths):
        one = serve_disagg(v3, h800, None, kv_bytes_per_s=float(b), **args).state
        assert grid.ttft_s[i] == pytest.approx(float(one.ttft_s), rel=1e-12)
        assert grid.tpot_s[i] == pytest.approx(float(one.tpot_s), rel=1e-12)
    assert np.all(grid.tpot_s == grid.tpot_s[0]) and np.all(np.diff(grid.ttft_s) <= 0)


def test_the_pools_read_the_engines_weight_only_expert_kernel():
    """vLLM's weight-only 4-bit experts run its Marlin MoE kernel (engines/vllm.yaml
    weight_only_moe_table: w4a16_marlin) in the aggregated model; the disaggregated pools built
    their figures without the engine's table (TensorRT-LLM's w4a16 kernel). Now both read it:
    on H200 (which has the Marlin table) the decode and prefill pieces move with the engine's
    table, on B200 (none) they do not."""
    from dataclasses import replace

    from planner.specs.load import load_engine

    gpt = catalog.load_model("gpt-oss-120b")
    vllm = load_engine("vllm")
    plain = replace(vllm, weight_only_moe_table=None)
    lay = PoolLayout(workers=1, batch=64, tp=1, attention_dp=4, moe_tp=1, moe_ep=4)
    for name, moves in (("h200", True), ("b200", False)):
        hw = catalog.load_hardware(name)
        kw = dict(isl_tokens=1024, layout=lay, weights_dtype="int4", moe_weights_dtype=None,
                  kv_dtype="bf16")
        dec, pre = ([float(f(gpt, hw, eng, **kw, **extra).time_s) for eng in (vllm, plain)]
                    for f, extra in ((decode_piece, dict(osl_tokens=1024)), (prefill_piece, {})))
        assert (dec[0] != dec[1]) == moves and (pre[0] != pre[1]) == moves, name


def test_an_mla_cache_goes_whole_to_every_decode_tp_rank(v3, h800):
    """MLA keeps the whole latent on every attention-TP rank: a decode worker of attention TP
    t_D takes t_D copies, sent by the prefill ranks that hold it (TensorRT-LLM's
    mlaCacheFormatter: each generation TP rank gets the whole cache from one context rank).
    From an attention-DP prefill rank to a TP 8 decode worker: 8 copies over one link; TP 8
    to TP 8: one each over 8 links, as before; GQA (8 KV heads) to TP <= 8 unchanged, to TP
    16 two copies of each shard."""
    llama = catalog.load_model("llama-3.1-70b")
    assert kv_sender_gpus(v3, kv_dtype="fp8", tp=np.array([1, 8, 8, 1]), pp=1,
                          decode_tp=np.array([8, 8, 1, 1])).tolist() == [1 / 8, 1, 1, 1]
    assert kv_sender_gpus(llama, kv_dtype="fp8", tp=np.array([8, 4, 8]), pp=1,
                          decode_tp=np.array([8, 8, 16])).tolist() == [8, 4, 4]
    q = 40_016 * 4096
    _, out, _, lat = kv_link_rates(h800)
    args = dict(isl_tokens=4096, osl_tokens=1024, prefill=PRE, **DT)
    tp_dec = serve_disagg(v3, h800, None, decode=PoolLayout(tp=8, batch=16), **args)
    dp_dec = serve_disagg(v3, h800, None, decode=PoolLayout(attention_dp=8, batch=2), **args)
    assert tp_dec.state.kv_transfer_s == pytest.approx(lat + 8 * q / out)
    assert dp_dec.state.kv_transfer_s == pytest.approx(lat + q / out)
    # on the TTFT path only (open loop): against a link 10^6 times faster, TTFT longer by the
    # difference of the transfers, TPOT the same
    slow, fast = (serve_disagg(v3, h800, None, decode=PoolLayout(tp=8, batch=16),
                               arrival_rate_per_s=0.2, kv_bytes_per_s=b, **args).state
                  for b in (out, out * 1e6))
    assert slow.ttft_s - fast.ttft_s == pytest.approx(8 * q / out - 8 * q / (out * 1e6))
    assert slow.tpot_s == fast.tpot_s
