"""A loaded prefill (context) worker of a disaggregated deployment
(planner.calc.serving.disagg_context): the prompts one context-only iteration takes under load,
its pass, and the prefill pool's rate at that pass (serve_disagg / disagg_steady_state)."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving.disagg import disagg_steady_state
from planner.calc.serving.disagg_context import context_batch_per_rank, loaded_context_pass
from planner.calc.serving.disagg_workload import PoolLayout, prefill_piece, serve_disagg
from planner.specs.load import load_engine

DT = dict(weights_dtype="fp8", moe_weights_dtype=None, kv_dtype="fp8")
#: InferenceX's H200 DeepSeek-R1 1K/1K TensorRT-LLM layout: one prefill worker of attention
#: DP 8 (EP 8), decode workers of TP 8 (EP 8) at 4 requests each (the c36 recipe).
CTX = PoolLayout(workers=1, batch=1, tp=1, attention_dp=8, moe_tp=1, moe_ep=8)
GEN = PoolLayout(workers=9, batch=4, tp=8, attention_dp=1, moe_tp=1, moe_ep=8)


@pytest.fixture(scope="module")
def setup():
    return (catalog.load_model("deepseek-v3"), catalog.load_hardware("h200"),
            load_engine("trtllm"))


def test_a_loaded_iteration_takes_the_token_budgets_prompts():
    # 1K prompts drawn at a range ratio of 0.8 (922 tokens on average) under an 8,192-token
    # budget: 8 per rank (the recipes' max_batch_size 8 too); 8K prompts: one; a stated batch
    # above the budget's stays; no budget stated: the stated batch
    got = context_batch_per_rank(prompt_tokens=np.array([922.0, 8192.0, 922.0, 922.0]),
                                 token_budget=np.array([8192.0, 8192.0, 8192.0, 0.0]),
                                 batch=np.array([1, 1, 12, 3]))
    assert got.tolist() == [8.0, 1.0, 12.0, 3.0]
    # the memory's prompts cap the budget's, never below the stated batch
    capped = context_batch_per_rank(prompt_tokens=100.0, token_budget=8192.0, batch=2,
                                    memory_prompts=np.array([50.0, 1.0, np.inf]))
    assert capped.tolist() == [50.0, 2.0, 81.0]


def test_a_loaded_worker_takes_no_more_prompts_than_its_memory_holds(setup):
    # Llama-3.1-70B FP8 on 8 x H200 (TP 8), 30,000-token prompts, a budget of 10 M tokens:
    # the budget would take 333 per pass; one prompt's cache is 0.614 GB per GPU and 126 GB
    # are free after the unloaded prompt: 206 fit, the workload model's own fit at that batch
    _, h200, trt = setup
    llama = catalog.load_model("llama-3.1-70b")
    wide = trt.model_copy(update={"max_num_tokens": 10_000_000})
    lay = PoolLayout(workers=1, batch=1, tp=8)
    one = prefill_piece(llama, h200, wide, isl_tokens=30_000.0, layout=lay, **DT)
    load_s, requests = loaded_context_pass(llama, h200, wide, unloaded=one, prefill=lay,
                                           isl_tokens=30_000.0, **DT)
    assert int(requests) == 206
    full = prefill_piece(llama, h200, wide, isl_tokens=30_000.0,
                         layout=PoolLayout(workers=1, batch=206, tp=8), **DT)
    over = prefill_piece(llama, h200, wide, isl_tokens=30_000.0,
                         layout=PoolLayout(workers=1, batch=207, tp=8), **DT)
    assert bool(full.memory.fits) and not bool(over.memory.fits)
    assert load_s == pytest.approx(full.time_s, rel=1e-12)


def test_the_loaded_pass_is_the_workload_models_pass_at_that_batch(setup):
    model, h200, trt = setup
    unloaded = prefill_piece(model, h200, trt, isl_tokens=922.0, layout=CTX, **DT)
    load_s, requests = loaded_context_pass(model, h200, trt, unloaded=unloaded,
                                           prefill=CTX, isl_tokens=922.0, **DT)
    eight = prefill_piece(model, h200, trt, isl_tokens=922.0,
                          layout=PoolLayout(workers=1, batch=8, tp=1, attention_dp=8, moe_tp=1,
                                            moe_ep=8), **DT)
    assert requests == 64 and load_s == pytest.approx(eight.time_s, rel=1e-12)
    # the docstring's example: 64 requests per 1.23 s against 8 per 0.24 s unloaded (1.00 s
    # and 0.18 s before the routed experts' measured routing skew, fp8ctx15, round 15)
    assert (round(float(load_s), 2), round(float(unloaded.time_s), 2)) == (1.23, 0.24)
    # the idealised engine states no budget: the unloaded pass
    plain = prefill_piece(model, h200, None, isl_tokens=922.0, layout=CTX, **DT)
    none_s, none_n = loaded_context_pass(model, h200, None, unloaded=plain, prefill=CTX,
                                         isl_tokens=922.0, **DT)
    assert (float(none_s), int(none_n)) == (float(plain.time_s), 8)


def test_the_prefill_pools_rate_is_the_loaded_workers(setup):
    model, h200, trt = setup
    isl = np.array([922.0, 7373.0])
    r = serve_disagg(model, h200, trt, isl_tokens=isl, osl_tokens=np.array([922.0, 922.0]),
                     prefill=CTX, decode=GEN, clients=36, **DT)
    load_s, requests = loaded_context_pass(model, h200, trt, unloaded=r.prefill,
                                           prefill=CTX, isl_tokens=isl, **DT)
    cycle = np.maximum(load_s, requests * r.state.kv_transfer_s)
    assert r.state.prefill_rate_per_s == pytest.approx(requests / cycle, rel=1e-12)
    # 1K: 64 per loaded pass, well above the 8 per unloaded pass; 8K: one prompt per rank
    # either way (the budget holds one), the rate unchanged
    unloaded_rate = 8 / np.maximum(r.prefill.time_s, 8 * r.state.kv_transfer_s)
    assert r.state.prefill_rate_per_s[0] > 1.4 * unloaded_rate[0]
    assert r.state.prefill_rate_per_s[1] == pytest.approx(unloaded_rate[1], rel=1e-12)


def test_a_loaded_pass_shortens_only_the_prefill_bound_queue():
    # one worker, 8 per 0.18 s unloaded, 64 per 0.5 s loaded; 2,000 clients on 2,000 slots
    # of 20 ms x 921 tokens: unloaded the prefill binds (44 /s < 108.6 /s), loaded the decode
    # (128 /s > 108.6 /s)
    args = dict(prefill_batch_s=0.18, prefill_requests_per_batch=8, prefill_workers=1,
                prefill_gpus_per_worker=8, kv_transfer_s=0.001, decode_step_s=0.02,
                decode_tpot_s=0.02, decode_concurrency=250, decode_workers=8,
                decode_gpus_per_worker=8, isl_tokens=922, osl_tokens=922)
    base = disagg_steady_state(**args)
    loaded = disagg_steady_state(**args, prefill_loaded=(0.5, 64))
    assert base.prefill_rate_per_s == pytest.approx(8 / 0.18)
    assert loaded.prefill_rate_per_s == pytest.approx(128.0)
    assert base.bound == 0 and loaded.bound == 1
    # TTFT₀ keeps the unloaded pass: no queue once the decode pool binds
    ttft0 = 0.18 + 0.001 + 0.02
    assert loaded.ttft_s == pytest.approx(max(ttft0, 2000 / loaded.request_rate_per_s
                                              - 921 * 0.02))
    assert base.ttft_s > loaded.ttft_s
    # a light load (the decode pool's rate far below either): nothing moves
    light = dict(args, decode_concurrency=4)
    assert disagg_steady_state(**light).ttft_s == pytest.approx(
        disagg_steady_state(**light, prefill_loaded=(0.5, 64)).ttft_s, rel=1e-12)


def test_a_loaded_iteration_takes_no_more_than_its_max_batch_size():
    # gpt-oss-120b's GB200 prefill workers (max_num_tokens 20,000, max_batch_size 32): 21
    # prompts of 922 tokens, 2 of 7,372; a cap of 8 takes 8; NaN / inf: no cap; never below
    # the stated batch
    got = context_batch_per_rank(prompt_tokens=np.array([922.0, 7372.0, 922.0, 922.0, 100.0]),
                                 token_budget=20_000.0, batch=np.array([1, 1, 1, 1, 40]),
                                 max_batch=np.array([32.0, 32.0, 8.0, np.nan, 32.0]))
    assert got.tolist() == [21.0, 2.0, 8.0, 21.0, 40.0]


def test_the_workers_own_budget_and_cap_override_the_engines(setup):
    # H200 DeepSeek-R1 8K prompts on the DEP8 context worker: the engine's 8,192 tokens hold
    # one prompt per rank (the unloaded pass); the 8K recipes' 16,640 hold two (16 per pass);
    # a cap of 1 keeps one; NaN keeps the engine's budget, per configuration
    model, h200, trt = setup
    isl = np.array([7373.0, 7373.0, 7373.0])
    unloaded = prefill_piece(model, h200, trt, isl_tokens=isl, layout=CTX, **DT)
    _, engine_n = loaded_context_pass(model, h200, trt, unloaded=unloaded, prefill=CTX,
                                      isl_tokens=isl, **DT)
    own_s, own_n = loaded_context_pass(model, h200, trt, unloaded=unloaded, prefill=CTX,
                                       isl_tokens=isl,
                                       max_num_tokens=np.array([16_640.0, np.nan, 16_640.0]),
                                       max_batch_size=np.array([2.0, np.nan, 1.0]), **DT)
    assert np.asarray(engine_n).tolist() == [8.0, 8.0, 8.0]
    assert np.asarray(own_n).tolist() == [16.0, 8.0, 8.0]
    two = prefill_piece(model, h200, trt, isl_tokens=7373.0,
                        layout=PoolLayout(workers=1, batch=2, tp=1, attention_dp=8, moe_tp=1,
                                          moe_ep=8), **DT)
    assert own_s[0] == pytest.approx(float(two.time_s), rel=1e-12)
    assert own_s[1] == pytest.approx(float(unloaded.time_s[1]), rel=1e-12)
    # serve_disagg passes them through: the pool's rate at 16 per two-prompt pass
    r = serve_disagg(model, h200, trt, isl_tokens=isl[:1], osl_tokens=np.array([922.0]),
                     prefill=CTX, decode=GEN, clients=36, prefill_max_num_tokens=16_640.0,
                     prefill_max_batch_size=2.0, **DT)
    base = serve_disagg(model, h200, trt, isl_tokens=isl[:1], osl_tokens=np.array([922.0]),
                        prefill=CTX, decode=GEN, clients=36, **DT)
    cycle = np.maximum(own_s[0], 16 * r.state.kv_transfer_s)
    assert r.state.prefill_rate_per_s == pytest.approx(16 / cycle, rel=1e-12)
    assert r.state.prefill_rate_per_s > base.state.prefill_rate_per_s


def test_a_dp_worker_that_gathers_by_all_reduce_runs_the_tp_workers_pass():
    """SGLang's attention-DP prefill without an all-to-all backend gathers every rank's tokens
    by all-reduce (dp_attention.py, SUM_LEN for extend batches): its pass is the TP layout's of
    the worker's GPUs with all its prompts, its memory the DP layout's. DeepSeek-V3 FP8 on one
    B200 worker of attention DP 8 (EP 8), 8K prompts: longer than the all-to-all DP pass; a TP
    worker, or the flag off, unchanged."""
    from dataclasses import replace

    from planner.calc.serving.disagg_context import (all_reduce_gather_layout,
                                                     gathered_prefill_piece)

    lay = PoolLayout(workers=2, batch=1, tp=1, attention_dp=8, moe_tp=1, moe_ep=8)
    tp_like = all_reduce_gather_layout(lay, True)
    assert (int(tp_like.tp), int(tp_like.attention_dp), float(tp_like.batch),
            int(tp_like.moe_ep), int(tp_like.workers)) == (8, 1, 8.0, 8, 2)
    assert all_reduce_gather_layout(lay, None) is lay
    assert int(all_reduce_gather_layout(lay, False).attention_dp) == 8
    tep = PoolLayout(workers=1, batch=1, tp=8, attention_dp=1, moe_tp=1, moe_ep=8)
    assert int(all_reduce_gather_layout(tep, True).tp) == 8
    model, b200 = catalog.load_model("deepseek-v3"), catalog.load_hardware("b200")
    sgl = load_engine("sglang")
    isl = np.array([7372.5, 7372.5])
    flags = np.array([True, False])
    got = gathered_prefill_piece(model, b200, sgl, isl_tokens=isl,
                                 layout=replace(lay, batch=np.array([1, 1])),
                                 all_reduce_gather=flags, **DT)
    dp = prefill_piece(model, b200, sgl, isl_tokens=isl, layout=lay, **DT)
    tp = prefill_piece(model, b200, sgl, isl_tokens=isl, layout=tp_like, **DT)
    assert got.time_s[0] == pytest.approx(tp.time_s[0], rel=1e-12)
    assert got.time_s[1] == pytest.approx(dp.time_s[1], rel=1e-12)
    assert got.time_s[0] > 1.2 * dp.time_s[0]
    np.testing.assert_array_equal(got.memory.memory_bytes_per_gpu, dp.memory.memory_bytes_per_gpu)
    # the loaded pass reads the same layout
    load_s, _ = loaded_context_pass(model, b200, sgl, unloaded=got, prefill=lay, isl_tokens=isl,
                                    all_reduce_gather=flags, **DT)
    off_s, _ = loaded_context_pass(model, b200, sgl, unloaded=dp, prefill=lay, isl_tokens=isl, **DT)
    assert load_s[0] > off_s[0] and load_s[1] == pytest.approx(off_s[1], rel=1e-12)
