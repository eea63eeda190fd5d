"""The workload model (planner.calc.serving.workload): its decode step against ``serve``'s, array
broadcasting, monotonic properties, memory per GPU and fit, engines and layouts."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving import serve
from planner.calc.serving.workload import BOUND_NAMES, serve_workload
from planner.calc.serving.workload_step import (
    Layout,
    _padded_tile,
    _rates,
    forward_pass,
    model_figures,
)
from planner.errors import UsageError
from planner.specs.deployment import ServeConfig
from planner.specs.load import load_engine

H200 = catalog.load_hardware("h200")
ENGINES = [None, *(load_engine(n) for n in ("trtllm", "vllm", "sglang"))]

#: (model, TP, attention DP, decode sequences per attention rank): dense TP, MoE split by TP,
#: MoE with attention DP and EP over the node (k <= EP: serve's copies = top-k).
STEP_CASES = [("llama-3.1-70b", 8, 1, 64), ("qwen3-32b", 2, 1, 16), ("deepseek-v3", 1, 8, 32),
              ("deepseek-v3", 8, 1, 64), ("qwen3-235b-a22b", 4, 1, 64),
              ("gpt-oss-120b", 1, 8, 16)]


@pytest.mark.parametrize("name,tp,adp,seqs", STEP_CASES)
def test_decode_step_equals_serves_step(name, tp, adp, seqs):
    """A pure decode pass (no prefill tokens) is serve's decode step for the same deployment:
    overlap none (the workload model overlaps nothing), exact expert balance (no hottest-rank
    skew), shared experts local. Same FLOPs, bytes and rates, so equal to rounding (1e-12)."""
    from planner.specs.model import MoEFFN

    model = catalog.load_model(name)
    moe = isinstance(model.ffn, MoEFFN)
    gpus = tp * adp
    config = ServeConfig(gpus=gpus, ep=(gpus if adp > 1 else 1) if moe else None, tp=tp,
                         batch_per_gpu=seqs / tp, context_tokens=2048, overlap="none",
                         expert_balance="exact")
    step_s = serve(model, H200, config).step_s
    fig = model_figures(model, weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype="bf16")
    lay = Layout(tp=tp, pp=1, adp=adp, moe_tp=(1 if adp > 1 else tp) if moe else gpus,
                 moe_ep=(gpus if adp > 1 else 1) if moe else 1, tile=_padded_tile(H200))
    t, _ = forward_pass(model, H200, fig, _rates(H200, phase="decode", weights_dtype="fp8"),
                        lay, decode_seqs=seqs, prefill_tokens=0.0, decode_context=2048,
                        prefill_context=1, prompts=0.0)
    assert float(t) == pytest.approx(step_s, rel=1e-12)


def test_a_grid_gives_the_numbers_of_its_points_one_by_one():
    model = catalog.load_model("deepseek-v3")
    engine = load_engine("trtllm")
    isl = np.array([1024, 8192])[:, None, None]
    conc = np.array([1, 16, 256])[None, :, None]
    adp = np.array([1, 8])[None, None, :]
    grid = serve_workload(model, H200, engine, isl=isl, osl=1024, concurrency=conc, tp=8 // adp,
                          attention_dp=adp)
    assert grid.ttft_s.shape == (2, 3, 2)
    for i, j, k in itertools.product(range(2), range(3), range(2)):
        one = serve_workload(model, H200, engine, isl=int(isl[i, 0, 0]), osl=1024,
                             concurrency=int(conc[0, j, 0]), tp=8 // int(adp[0, 0, k]),
                             attention_dp=int(adp[0, 0, k]))
        for field in ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
                      "memory_bytes_per_gpu", "fits", "decode_bound", "prefill_bound"):
            assert getattr(grid, field)[i, j, k] == pytest.approx(getattr(one, field),
                                                                  rel=1e-12), field


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: "ideal" if e is None else e.name)
@pytest.mark.parametrize("name,tp,adp", [("llama-3.1-70b", 4, 1), ("deepseek-v3", 1, 8),
                                         ("qwen3-235b-a22b", 4, 1)])
def test_more_concurrency_never_lowers_tpot_and_longer_isl_never_lowers_ttft(engine, name,
                                                                             tp, adp):
    model = catalog.load_model(name)
    conc = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
    isl = np.array([128, 512, 1024, 2048, 4096, 8192, 16384])
    for osl in (128, 1024):
        by_c = serve_workload(model, H200, engine, isl=1024, osl=osl, concurrency=conc,
                              tp=tp, attention_dp=adp)
        assert np.all(np.diff(by_c.tpot_s) >= 0)
        by_isl = serve_workload(model, H200, engine, isl=isl, osl=osl, concurrency=32, tp=tp,
                                attention_dp=adp)
        assert np.all(np.diff(by_isl.ttft_s) > 0)


def test_the_figures_follow_from_ttft_tpot_and_the_layout():
    engine = load_engine("vllm")
    r = serve_workload(catalog.load_model("qwen3-32b"), H200, engine, isl=2048, osl=512,
                       concurrency=48, tp=2, pp=2)
    e2e = r.ttft_s + 511 * r.tpot_s
    assert r.e2e_latency_s == pytest.approx(e2e)
    assert r.gpus == 4
    assert r.tokens_per_s_per_gpu == pytest.approx(48 * 512 / e2e / 4)
    assert r.total_tokens_per_s_per_gpu == pytest.approx(48 * (2048 + 512) / e2e / 4)
    assert r.tokens_per_s_per_user == pytest.approx(1 / r.tpot_s)
    assert BOUND_NAMES[int(r.decode_bound)] in BOUND_NAMES


def test_memory_follows_the_layout_and_refuses_what_does_not_fit():
    model = catalog.load_model("llama-3.1-70b")
    r = serve_workload(model, H200, None, isl=1024, osl=1024, concurrency=[1, 64, 2048],
                       tp=[8, 8, 2])
    # KV: c x (ISL + OSL) x 2 x 8 KV heads x 128 x 2 B x 80 layers / min(TP, 8).
    kv = np.array([1, 64, 2048]) * 2048 * 327_680 / np.array([8, 8, 2])
    assert r.kv_cache_bytes_per_gpu == pytest.approx(kv)
    assert list(r.fits) == [True, True, False]
    pp2 = serve_workload(model, H200, None, isl=1024, osl=1024, concurrency=64, tp=4, pp=2)
    tp4 = serve_workload(model, H200, None, isl=1024, osl=1024, concurrency=64, tp=4)
    assert pp2.kv_cache_bytes_per_gpu == pytest.approx(tp4.kv_cache_bytes_per_gpu / 2)
    assert pp2.weight_bytes_per_gpu < 0.6 * tp4.weight_bytes_per_gpu
    assert np.all(np.isfinite(r.ttft_s)) and np.all(np.isfinite(r.tpot_s))


def test_moe_tp_times_ep_splits_the_experts():
    """Each GPU holds 1/8 of the experts either way; under attention DP the all-to-all sends a
    token to min(k, EP) EP ranks x every MoE-TP slice: gpt-oss (k = 4) at EP 8 sends 4 copies,
    at MoE-TP 2 x EP 4 sends 8, so its step is longer; the GEMM work per GPU is the same."""
    model = catalog.load_model("gpt-oss-120b")
    kw = dict(isl=1024, osl=1024, concurrency=64, tp=1, attention_dp=8, weights_dtype="fp4")
    ep8 = serve_workload(model, H200, None, moe_tp=1, moe_ep=8, **kw)
    tp2ep4 = serve_workload(model, H200, None, moe_tp=2, moe_ep=4, **kw)
    assert ep8.weight_bytes_per_gpu == pytest.approx(tp2ep4.weight_bytes_per_gpu, rel=1e-9)
    assert tp2ep4.tpot_s > ep8.tpot_s
    # Pure TP (no attention DP): no all-to-all, the same step under balanced routing (the
    # measured routing skew, efficiency.routed_skew, grows with the EP size: read apart).
    tp_only = dict(kw, tp=8, attention_dp=1)
    balanced = replace(H200, efficiency=replace(H200.efficiency, routed_skew=None))
    assert serve_workload(model, balanced, None, moe_tp=1, moe_ep=8, **tp_only).tpot_s == \
        pytest.approx(serve_workload(model, balanced, None, moe_tp=4, moe_ep=2, **tp_only).tpot_s)
    with pytest.raises(UsageError, match="moe_tp x moe_ep"):
        serve_workload(model, H200, None, isl=1024, osl=1024, concurrency=64, tp=8, moe_tp=2,
                       moe_ep=2)


def test_engine_overheads_and_schedule_move_the_figures():
    model = catalog.load_model("llama-3.1-70b")
    trt = load_engine("trtllm")
    kw = dict(isl=1024, osl=1024, concurrency=16, tp=8, kv_dtype="bf16")
    base = serve_workload(model, H200, trt, **kw)
    slower = serve_workload(model, H200, trt.model_copy(
        update={"request_overhead_s": 0.1}), **kw)
    assert slower.ttft_s - base.ttft_s == pytest.approx(0.1 - trt.request_overhead_s)
    # Host time per step hidden behind the GPU with overlap scheduling, added without it.
    host = trt.model_copy(update={"decode_step_overhead_s": 0.004, "prefill_overhead_s": 0.0,
                                  "layer_overhead_s": 0.0, "all_reduce_peer_overhead_s": 0.0})
    hidden = serve_workload(model, H200, host, **kw)
    added = serve_workload(model, H200, host.model_copy(update={"overlap_scheduling": False}),
                           **kw)
    gpu = serve_workload(model, H200, host.model_copy(update={"decode_step_overhead_s": 0.0}),
                         **kw)
    assert hidden.tpot_s == pytest.approx(max(gpu.tpot_s, 0.004))
    assert added.tpot_s == pytest.approx(gpu.tpot_s + 0.004)
    # Prefill batches between decode steps (SGLang's default) cost TPOT more than mixed steps.
    sep = serve_workload(model, H200, host.model_copy(update={"mixed_batching": False}), **kw)
    assert sep.tpot_s > hidden.tpot_s


def test_bad_inputs_are_usage_errors():
    model = catalog.load_model("qwen3-32b")
    for kw in ({"concurrency": 0}, {"tp": 0}, {"pp": 200}):
        args = dict(isl=128, osl=128, concurrency=1) | kw
        with pytest.raises(UsageError):
            serve_workload(model, H200, None, **args)


def test_queued_prefills_raise_ttft_with_concurrency_and_burst_share():
    """A new request waits behind burst_share x (c - 1) / 2 other prompts of its rank: with a
    share of 0 TTFT barely moves with concurrency, with 1 it grows about with c."""
    model = catalog.load_model("llama-3.1-70b")
    trt = load_engine("trtllm")
    conc = np.array([4, 64])
    spread = serve_workload(model, H200, trt.model_copy(update={"burst_share": 0.0}), isl=1024,
                            osl=1024, concurrency=conc, tp=8)
    burst = serve_workload(model, H200, trt.model_copy(update={"burst_share": 1.0}), isl=1024,
                           osl=1024, concurrency=conc, tp=8)
    assert spread.ttft_s[1] < 1.2 * spread.ttft_s[0]
    assert burst.ttft_s[1] > 3 * burst.ttft_s[0]


def test_the_engine_chooses_the_kv_dtype_only_where_the_caller_does_not():
    model = catalog.load_model("llama-3.1-70b")
    kw = dict(isl=1024, osl=1024, concurrency=64, tp=8)
    trt, vllm = load_engine("trtllm"), load_engine("vllm")
    fp8 = serve_workload(model, H200, trt, **kw)             # FP8 KV with the FP8 checkpoint
    bf16 = serve_workload(model, H200, vllm, **kw)           # kv_cache_dtype auto: BF16
    assert fp8.kv_cache_bytes_per_gpu == pytest.approx(bf16.kv_cache_bytes_per_gpu / 2)
    given = serve_workload(model, H200, trt, kv_dtype="bf16", **kw)
    assert given.kv_cache_bytes_per_gpu == pytest.approx(bf16.kv_cache_bytes_per_gpu)
    bf16_weights = serve_workload(model, H200, trt, weights_dtype="bf16", **kw)
    assert bf16_weights.kv_cache_bytes_per_gpu == pytest.approx(bf16.kv_cache_bytes_per_gpu)


def test_engine_gpu_overheads_add_per_layer_and_per_all_reduce_peer():
    model = catalog.load_model("llama-3.1-70b")                  # 80 layers
    kw = dict(isl=1024, osl=1024, concurrency=8)
    ideal = serve_workload(model, H200, None, tp=np.array([1, 8]), **kw)
    trt = load_engine("trtllm").model_copy(update={
        "decode_step_overhead_s": 0.0, "prefill_overhead_s": 0.0, "request_overhead_s": 0.0,
        "burst_share": 0.0, "layer_overhead_s": 1e-5, "all_reduce_peer_overhead_s": 2e-6})
    r = serve_workload(model, H200, trt, tp=np.array([1, 8]), kv_dtype="bf16", **kw)
    assert r.tpot_s - ideal.tpot_s == pytest.approx([80 * 1e-5, 80 * 1e-5 + 80 * 2 * 7 * 2e-6])


def test_a_tp_all_reduce_across_nodes_is_hierarchical_in_the_workload_model():
    """TP 64 over 8 H800 nodes, 256 tokens of d = 7,168: the two-shot all-reduce in the node
    (46.8 µs) + a ring over 8 nodes of 1/8 of the bytes (14 × 2.8 µs + 1.75 × 0.459 MB / 40
    GB/s = 59.3 µs) = 106.1 µs, where a 64-rank ring takes 533.4 µs; inside a node the same."""
    from planner.calc.serving.communication import tp_all_reduce_time_s

    model, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    kw = dict(tokens=256, up_bytes_per_s=160e9, out_bytes_per_s=40e9)
    hier = tp_all_reduce_time_s(model, h800, tp=np.array([1, 8, 64]), hierarchical=True, **kw)
    ring = tp_all_reduce_time_s(model, h800, tp=np.array([1, 8, 64]), **kw)
    assert hier == pytest.approx([0.0, 46.81e-6, 106.07e-6], rel=1e-3)
    assert ring == pytest.approx([0.0, 46.81e-6, 533.43e-6], rel=1e-3)


def test_attention_dp_balance_puts_the_ranks_prefill_lumps_in_the_same_steps():
    """Without balancing, a step carries a prefill lump when any of the DP_att ranks has one
    (1 - (1 - s)^DP of the steps); a balancing scheduler (TensorRT-LLM's enable_balance) puts
    the ranks' lumps together (s of the steps): lower TPOT, and the held request waits up to
    the timeout (higher TTFT). One attention rank: no difference."""
    from planner.calc.serving.workload import balance_wait_steps

    model = catalog.load_model("deepseek-v3")
    b200 = catalog.load_hardware("b200")
    trt = load_engine("trtllm")
    assert trt.attention_dp_balance and trt.attention_dp_timeout_steps == 60
    loose = trt.model_copy(update={"attention_dp_balance": False})
    kw = dict(isl=7372.5, osl=921.5, concurrency=256, moe_tp=1, weights_dtype="nvfp4")
    bal = serve_workload(model, b200, trt, tp=1, attention_dp=8, moe_ep=8, **kw)
    ind = serve_workload(model, b200, loose, tp=1, attention_dp=8, moe_ep=8, **kw)
    assert bal.tpot_s < 0.6 * ind.tpot_s and bal.ttft_s > ind.ttft_s
    one = [serve_workload(model, b200, e, tp=8, attention_dp=1, moe_ep=8, **kw)
           for e in (trt, loose)]
    assert one[0].tpot_s == pytest.approx(one[1].tpot_s, rel=1e-12)
    assert one[0].ttft_s == pytest.approx(one[1].ttft_s, rel=1e-12)
    # the held wait: the docstring's example, 0 for one rank, at most the timeout
    assert balance_wait_steps(adp=8, arrivals_per_step=32 / 921.5,
                              timeout_steps=60) == pytest.approx(53.7, abs=0.05)
    assert balance_wait_steps(adp=1, arrivals_per_step=0.1, timeout_steps=60) == 0
    waits = balance_wait_steps(adp=np.array([2, 8, 64]), arrivals_per_step=np.array([1.0, 0.01]
                                                                                   )[:, None],
                               timeout_steps=60)
    assert waits.shape == (2, 3) and (waits <= 60).all() and (np.diff(waits, axis=1) > 0).all()


def test_requests_beyond_the_kv_cache_run_capped_and_queue_by_littles_law():
    """Issue 20: an engine runs as many requests as its KV memory fraction holds; the rest wait
    for a slot, (c - run) / run of a request's time in service each (closed loop)."""
    from planner.calc.serving.workload import running_requests_cap

    model, eng = catalog.load_model("llama-3.1-70b"), load_engine("trtllm")
    kw = dict(isl=8192, osl=1024, tp=2, weights_dtype="fp8", queue_beyond_kv=True)
    over = serve_workload(model, H200, eng, concurrency=640, **kw)
    # Without queue_beyond_kv (the default: disaggregated pools) it does not fit, as before.
    assert not bool(serve_workload(model, H200, eng, concurrency=640, isl=8192, osl=1024,
                                   tp=2, weights_dtype="fp8").fits)
    fig = model_figures(model, weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype="fp8")
    lay = Layout(tp=2, pp=1, adp=1, moe_tp=2, moe_ep=1, tile=None)
    cap = float(running_requests_cap(fig, lay, H200, memory_frac=eng.gpu_memory_fraction,
                                     tokens=9216))
    # (0.9 x usable - weights) / (9,216 tokens x 81,920 B of FP8 KV over TP 2)
    assert cap == np.floor((eng.gpu_memory_fraction * H200.gpu.hbm_usable_bytes
                            - float(over.weight_bytes_per_gpu)) / (9216 * 81_920))
    assert float(over.running_requests) == cap and bool(over.fits)
    at_cap = serve_workload(model, H200, eng, concurrency=cap, **kw)
    assert float(over.tpot_s) == pytest.approx(float(at_cap.tpot_s))
    service = float(at_cap.ttft_s) + 1023 * float(at_cap.tpot_s)
    assert float(over.ttft_s) == pytest.approx(float(at_cap.ttft_s)
                                               + (640 - cap) / cap * service)
    assert float(over.tokens_per_s_per_gpu) == pytest.approx(
        float(at_cap.tokens_per_s_per_gpu))       # Little's law: the slots set the rate
    assert float(over.memory_bytes_per_gpu) == pytest.approx(float(at_cap.memory_bytes_per_gpu))
    # Below the cap nothing queues; the idealised engine still refuses what does not fit.
    assert float(at_cap.running_requests) == cap
    assert not bool(serve_workload(model, H200, None, concurrency=640, **kw).fits)
    # Not one request beside the weights: refused.
    big = serve_workload(catalog.load_model("llama-3.1-405b"), H200, eng, concurrency=8,
                         isl=8192, osl=1024, tp=1, queue_beyond_kv=True)
    assert not bool(big.fits)
