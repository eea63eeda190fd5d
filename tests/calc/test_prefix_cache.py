"""The prefix cache in the workload model (planner.calc.serving.prefix_cache): the tokens prefill
computes and the context they attend over, F = 0 leaving every figure as it was, TTFT and the
prefill pool's GPU-time falling with F while decode and the KV cache stay, and DeepSeek's own
fleet split from its published day-6 figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving.disagg_workload import (PoolLayout, decode_piece, prefill_piece,
                                                  serve_disagg)
from planner.calc.serving.prefix_cache import (checked_prefix_cache_hit_frac, fleet_pool_nodes,
                                               prefill_computed_tokens,
                                               prefill_mean_context_tokens)
from planner.calc.serving.workload import WorkloadResult, serve_workload
from planner.errors import UsageError
from planner.specs.load import load_engine

DT = dict(weights_dtype="fp8", moe_weights_dtype=None, kv_dtype="fp8")
PRE = PoolLayout(workers=2, batch=1, attention_dp=16)
DEC = PoolLayout(workers=1, batch=32, attention_dp=16)


def test_computed_tokens_and_their_context():
    assert prefill_computed_tokens(isl_tokens=4096, prefix_cache_hit_frac=0.563) == \
        pytest.approx(1789.952)
    # the new tokens sit at positions F * ISL .. ISL: their causal mean
    assert prefill_mean_context_tokens(isl_tokens=4096, prefix_cache_hit_frac=0.563) == \
        pytest.approx(4096 * 1.563 / 2)
    assert prefill_mean_context_tokens(isl_tokens=4096, prefix_cache_hit_frac=0.0) == 2048
    f = np.array([0.0, 0.5, 0.9])
    assert prefill_computed_tokens(isl_tokens=np.array([[1000], [2000]]),
                                   prefix_cache_hit_frac=f).tolist() == \
        [[1000, 500, pytest.approx(100)], [2000, 1000, pytest.approx(200)]]


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), [0.2, 1.5]])
def test_a_fraction_outside_0_to_1_is_refused_on_one_line(bad):
    with pytest.raises(UsageError) as err:
        checked_prefix_cache_hit_frac(bad, name="--prefix-cache-hit")
    assert "\n" not in str(err.value) and "--prefix-cache-hit" in str(err.value)
    assert "below 1" in str(err.value)


def test_deepseeks_fleet_split_from_its_day6_figures():
    # DeepSeek-V3/R1 Inference System Overview (open-infra-index, day 6): "Total input tokens:
    # 608B", "Total output tokens: 168B", "~73.7k tokens/s input (including cache hits)
    # during prefilling or ~14.8k tokens/s output during decoding" per H800 node, "an average
    # occupancy of 226.75 nodes".
    prefill, decode = fleet_pool_nodes(input_tokens_per_day=608e9, output_tokens_per_day=168e9,
                                       prefill_input_tokens_per_s_per_node=73.7e3,
                                       decode_output_tokens_per_s_per_node=14.8e3)
    assert float(prefill) == pytest.approx(95.48, abs=0.01)
    assert float(decode) == pytest.approx(131.38, abs=0.01)
    assert float(prefill + decode) == pytest.approx(226.75, rel=1e-3)    # 226.86
    assert float(decode / (prefill + decode)) == pytest.approx(0.579, abs=1e-3)
    assert float(decode / prefill) == pytest.approx(1.376, abs=1e-3)


def _same(a: WorkloadResult, b: WorkloadResult) -> None:
    for field in dataclasses.fields(WorkloadResult):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


@pytest.mark.parametrize("engine", ["trtllm", "vllm", "sglang", None])
def test_no_prefix_cache_is_the_workload_model_as_before(engine, v3, h800):
    eng = None if engine is None else load_engine(engine)
    grid = dict(isl=np.array([[1024], [8192]]), osl=1024, concurrency=np.array([8, 64, 512]),
                attention_dp=8, queue_beyond_kv=True, **DT)
    _same(serve_workload(v3, h800, eng, **grid),
          serve_workload(v3, h800, eng, prefix_cache_hit_frac=0.0, **grid))


@pytest.mark.parametrize("engine", ["trtllm", "vllm", "sglang", None])
def test_ttft_falls_with_the_hit_fraction_and_the_kv_cache_stays(engine, v3, h800):
    eng = None if engine is None else load_engine(engine)
    f = np.array([0.0, 0.25, 0.5, 0.75, 0.9])
    r = serve_workload(v3, h800, eng, isl=8192, osl=512, concurrency=64, attention_dp=8,
                       prefix_cache_hit_frac=f, **DT)
    assert np.all(np.diff(r.ttft_s) < 0)
    assert np.all(np.diff(r.prefill_s) < 0)
    # fewer prompt tokens ride in (or between) the decode steps
    assert np.all(np.diff(r.tpot_s) <= 1e-15)
    assert np.all(r.kv_cache_bytes_per_gpu == r.kv_cache_bytes_per_gpu[0])
    assert np.all(r.memory_bytes_per_gpu == r.memory_bytes_per_gpu[0])
    # one vectorized call equals the points one by one
    for i, fi in enumerate(f):
        one = serve_workload(v3, h800, eng, isl=8192, osl=512, concurrency=64, attention_dp=8,
                             prefix_cache_hit_frac=fi, **DT)
        assert float(one.ttft_s) == pytest.approx(r.ttft_s[i], rel=1e-12)


def test_cached_tokens_are_prior_context_not_a_shorter_prompt(v3, h800):
    """Half of a 4,096-token prompt cached: the 2,048 new tokens attend over positions 2,048 ..
    4,096, so their prefill costs more than a fresh 2,048-token prompt and less than the whole
    4,096."""
    t = [float(prefill_piece(v3, h800, None, isl_tokens=isl, layout=PRE,
                             prefix_cache_hit_frac=f, **DT).time_s)
         for isl, f in ((2048, 0.0), (4096, 0.5), (4096, 0.0))]
    assert t[0] < t[1] < t[2]


def test_disagg_prefix_cache_cuts_the_prefill_pool_only(v3, h800):
    args = dict(isl_tokens=4096, osl_tokens=1024, prefill=PRE, decode=DEC, **DT)
    eng = load_engine("trtllm")
    base = serve_disagg(v3, h800, eng, **args)
    zero = serve_disagg(v3, h800, eng, prefix_cache_hit_frac=0.0, **args)
    for name in ("ttft_s", "tpot_s", "tokens_per_s_per_gpu", "prefill_rate_per_s",
                 "decode_rate_per_s", "kv_transfer_s"):
        assert np.array_equal(getattr(base.state, name), getattr(zero.state, name)), name
    hit = serve_disagg(v3, h800, eng, prefix_cache_hit_frac=np.array([0.0, 0.3, 0.563]),
                       **args)
    s = hit.state
    # the prefill pool's GPU-seconds per request fall, so its rate rises
    gpu_s = s.prefill_gpus / s.prefill_rate_per_s
    assert np.all(np.diff(gpu_s) < 0) and np.all(np.diff(hit.prefill.time_s) < 0)
    # TTFT falls with the shorter prefill (open loop: nothing else moves)
    open_ = serve_disagg(v3, h800, eng, prefix_cache_hit_frac=np.array([0.0, 0.563]),
                         arrival_rate_per_s=2.0, **args).state
    assert open_.ttft_s[1] < open_.ttft_s[0]
    # decode and the KV cache moved: the whole prompt's, as without a prefix cache
    assert np.all(s.tpot_s == base.state.tpot_s)
    assert np.all(hit.decode.time_s == base.decode.time_s)
    assert np.all(s.decode_rate_per_s == base.state.decode_rate_per_s)
    assert np.all(hit.kv_bytes_per_request == 40_016 * 4096)
    assert np.all(s.kv_transfer_s == base.state.kv_transfer_s)
    dec = decode_piece(v3, h800, eng, isl_tokens=4096, osl_tokens=1024, layout=DEC, **DT)
    assert float(dec.time_s) == float(base.decode.time_s)


@pytest.mark.parametrize("engine", ["sglang", "vllm", None])
def test_the_prompts_last_token_is_always_computed(engine, v3, h800):
    """A hit never covers the last prompt token (vLLM caps a hit at ISL - 1 tokens, SGLang its
    prefix at input_len - 1): a 1-token prompt prefills the same at any F, and F beyond
    (ISL - 1) / ISL computes that one token. Before, ISL = 1 at F = 0.5 computed half a token
    and SGLang's TTFT rose with F (237.353 -> 237.373 ms on Llama-3.1-70B, H200, TP 8)."""
    assert float(prefill_computed_tokens(isl_tokens=1, prefix_cache_hit_frac=0.9)) == 1.0
    assert float(prefill_computed_tokens(isl_tokens=100, prefix_cache_hit_frac=0.999)) == \
        pytest.approx(1.0)
    assert float(prefill_mean_context_tokens(isl_tokens=100, prefix_cache_hit_frac=0.999)) \
        == pytest.approx(99.5)
    eng = None if engine is None else load_engine(engine)
    m, h = catalog.load_model("llama-3.1-70b"), catalog.load_hardware("h200")
    f = np.array([0.0, 0.5, 0.9, 0.99, 0.999])[:, None]
    r = serve_workload(m, h, eng, isl=np.array([1, 3, 17, 100]), osl=128, concurrency=1024,
                       tp=8, queue_beyond_kv=True, prefix_cache_hit_frac=f, **DT)
    assert np.all(r.ttft_s[:, 0] == r.ttft_s[0, 0])
    assert np.all(np.diff(r.ttft_s, axis=0) <= 0) and np.all(np.diff(r.prefill_s, axis=0) <= 0)
    pre = [float(prefill_piece(v3, h800, eng, isl_tokens=1, layout=PRE, prefix_cache_hit_frac=x,
                               **DT).time_s) for x in (0.0, 0.5)]
    assert pre[0] == pre[1]


def _flat_attention_table(hardware, *, prompt_tokens):
    """``hardware`` with its measured prefill attention tables flat at their value at
    ``prompt_tokens``: a model that reads the kernel at that length sees no difference."""
    from planner.calc.serving.efficiency import attention_prefill_flops_frac

    tables = {
        dtype: dataclasses.replace(table, frac=(float(attention_prefill_flops_frac(
            hardware, dtype=dtype, prompt_tokens=prompt_tokens)),) * len(table.rows))
        for dtype, table in hardware.efficiency.attention_by_isl.items()}
    return dataclasses.replace(hardware, efficiency=dataclasses.replace(
        hardware.efficiency, attention_by_isl=tables))


@pytest.mark.parametrize("engine", ["trtllm", "sglang", None])
def test_the_attention_kernel_is_read_at_the_whole_prompts_length(engine):
    """The tokens after a cached prefix are a late chunk of the prompt: AIConfigurator reads its
    context-attention table at full_s = prefix + new tokens (and scales the FLOPs), so the
    measured kernel is read at ISL, not at 2 x the mean context, ISL x (1 + F), a longer
    prompt than the request has (before: Llama-3.1-70B on 8 x H200, ISL 4,096, F = 0.5, TTFT
    425.3 ms, with the kernel at 6,144 tokens)."""
    eng = None if engine is None else load_engine(engine)
    m, h = catalog.load_model("llama-3.1-70b"), catalog.load_hardware("h200")
    flat = _flat_attention_table(h, prompt_tokens=4096)
    args = dict(isl=4096, osl=512, concurrency=32, tp=8, prefix_cache_hit_frac=np.array(
        [0.0, 0.3, 0.5, 0.9]), **DT)
    real, same = serve_workload(m, h, eng, **args), serve_workload(m, flat, eng, **args)
    np.testing.assert_allclose(real.prefill_s, same.prefill_s, rtol=1e-12)
    np.testing.assert_allclose(real.ttft_s, same.ttft_s, rtol=1e-12)
    lay = PoolLayout(workers=1, batch=2, tp=8)
    pre = [prefill_piece(m, hw, eng, isl_tokens=4096, layout=lay, prefix_cache_hit_frac=0.5,
                         **DT).time_s for hw in (h, flat)]
    assert float(pre[0]) == pytest.approx(float(pre[1]), rel=1e-12)


@pytest.mark.parametrize("engine", ["trtllm", "sglang", None])
@pytest.mark.parametrize("extra", [{}, {"overlap": True}, {"arrival_rate_per_s": 5.0}])
def test_more_cache_never_lengthens_ttft_nor_slows_the_prefill_pool(engine, extra, v3, h800):
    """Over F in [0, 0.995], prompts of 1 to 30,000 tokens and prefill batches of 1 to 8 per
    rank: TTFT never rises and the prefill pool's rate never falls as F grows (before the
    last-token floor: the rate fell 5.35% from F = 0.961 on 7-token prompts, Llama-3.1-70B on
    H200, idealised engine)."""
    eng = None if engine is None else load_engine(engine)
    f = np.linspace(0.0, 0.995, 41)[:, None, None]
    isl, batch = np.array([1, 7, 100, 4096, 30000])[:, None], np.array([1, 2, 8])
    llama, h200 = catalog.load_model("llama-3.1-70b"), catalog.load_hardware("h200")
    for m, h, lay in ((llama, h200, dict(tp=8)), (v3, h800, dict(attention_dp=16))):
        s = serve_disagg(m, h, eng, isl_tokens=isl, osl_tokens=512,
                         prefill=PoolLayout(workers=2, batch=batch, **lay),
                         decode=PoolLayout(workers=1, batch=32, **lay),
                         prefix_cache_hit_frac=f, **DT, **extra).state
        ttft = np.broadcast_to(s.ttft_s, (f.size, isl.size, batch.size))
        rate = np.broadcast_to(s.prefill_rate_per_s, ttft.shape)
        assert np.all(ttft[1:] <= ttft[:-1] * (1 + 1e-12)), m.name   # inf: over capacity
        assert np.all(rate[1:] >= rate[:-1] * (1 - 1e-12)), m.name
        assert np.isfinite(ttft).any() and np.isfinite(rate).all()
