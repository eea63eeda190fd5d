"""What an engine admits and when (planner.calc.serving.admission): SGLang's scheduler that
polls for new requests every N decode steps, and ``max_running_requests``; the launch flags of
the measured runs (planner.specs.run_protocols)."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving.admission import poll_wait_steps
from planner.calc.serving.workload import serve_workload
from planner.specs.load import load_engine

H200, B200 = catalog.load_hardware("h200"), catalog.load_hardware("b200")
LLAMA = catalog.load_model("llama-3.1-70b")


def test_poll_wait_is_half_the_interval_less_one():
    """A request arriving at a uniform phase j of 0..N-1 waits N-1-j steps: (N-1)/2."""
    got = poll_wait_steps(recv_interval=np.array([1, 10, 30]))
    assert got.tolist() == [0.0, 4.5, 14.5]
    n = 30
    assert np.mean([n - 1 - j for j in range(n)]) == pytest.approx(float(got[-1]))


def test_poll_interval_counts_the_counter_not_the_steps(monkeypatch):
    """N is the counter's threshold; each decode step adds DECODE_STEP_WEIGHT w to it, so the
    scheduler polls every N / w steps: were w = 2, N = 30 polls every 15 steps, (15 - 1) / 2 =
    7 steps of wait (not (60 - 1) / 2)."""
    from planner.calc.serving import admission

    monkeypatch.setattr(admission, "DECODE_STEP_WEIGHT", 2)
    assert float(admission.poll_wait_steps(recv_interval=30)) == 7.0


def _sglang(**kw):
    return serve_workload(LLAMA, H200, load_engine("sglang"), isl=1024, osl=1024,
                          concurrency=64, tp=8, weights_dtype="fp8", **kw)


def test_recv_interval_adds_its_decode_steps_to_ttft_only_through_the_wait():
    """TTFT grows by (N-1)/2 decode steps: linear in N - 1 (the wait), the prefill unchanged."""
    base, r11, r21 = (_sglang(recv_interval=np.array([n])) for n in (1, 11, 21))
    d11, d21 = float(r11.ttft_s[0] - base.ttft_s[0]), float(r21.ttft_s[0] - base.ttft_s[0])
    assert d11 > 0
    assert d21 == pytest.approx(2 * d11, rel=1e-12)
    assert float(r21.prefill_s[0]) == pytest.approx(float(base.prefill_s[0]), rel=1e-12)
    # 0 in an array and None both mean the engine's own (1: every step)
    assert float(_sglang(recv_interval=np.array([0])).ttft_s[0]) == float(base.ttft_s[0])
    assert float(_sglang().ttft_s) == float(base.ttft_s[0])


def test_recv_interval_batches_the_window_of_prompts():
    """Polling every N steps gathers N steps' arrivals into one prefill batch, so the prefill
    work per output token costs no more (larger batches are as or more efficient)."""
    one, many = _sglang(recv_interval=np.array([1])), _sglang(recv_interval=np.array([30]))
    # 64 running, ISL = OSL: 64 prompt tokens arrive per step; N = 30 steps' 1,920 tokens make
    # one batch instead of one 1,024-token prompt: strictly cheaper per output token
    assert float(many.tpot_s[0]) < float(one.tpot_s[0])


def test_max_running_requests_caps_the_batch_and_queues_the_rest():
    eng = load_engine("sglang")
    kw = dict(isl=1024, osl=1024, tp=8, weights_dtype="fp8")
    capped = serve_workload(LLAMA, H200, eng, concurrency=256, max_running=np.array([128]), **kw)
    at_cap = serve_workload(LLAMA, H200, eng, concurrency=128, **kw)
    free = serve_workload(LLAMA, H200, eng, concurrency=256, **kw)
    assert float(capped.running_requests[0]) == 128
    assert float(capped.tpot_s[0]) == pytest.approx(float(at_cap.tpot_s), rel=1e-12)
    # the other 128 wait one time in service each (Little's law): TTFT = 2 TTFT_n + (OSL-1) TPOT_n
    want = 2 * float(at_cap.ttft_s) + 1023 * float(at_cap.tpot_s)
    assert float(capped.ttft_s[0]) == pytest.approx(want, rel=1e-12)
    assert float(free.running_requests) == 256
    # the engine spec's own cap applies where the run names none
    spec_cap = eng.model_copy(update={"max_running_requests": 128})
    by_spec = serve_workload(LLAMA, H200, spec_cap, concurrency=256, **kw)
    assert float(by_spec.ttft_s) == pytest.approx(float(capped.ttft_s[0]), rel=1e-12)


def test_sglang_spec_polls_every_step_by_default():
    eng = load_engine("sglang")
    assert eng.scheduler_recv_interval == 1 and eng.max_running_requests is None
    assert load_engine("trtllm").scheduler_recv_interval == 1


@pytest.fixture(scope="module")
def table():
    from planner.specs.runs import read_runs

    return read_runs(catalog.SERVING_RUNS_CSV)


def _row(table, run_id):
    (i,) = np.flatnonzero(table.id == run_id)
    return int(table.recv_interval[i]), int(table.max_running[i])


@pytest.mark.parametrize("run_id,flags", [
    # InferenceMAX benchmarks/single_node/dsr1_fp8_b200.sh @ 12ba0ae0: TP 8, CONC < 16: 10
    ("2026_03_25_deepseek_r1_b200_sxm_sglang_fp8_agg_1024x1024_c8_tp8_0_ep1_0_249", (10, 128)),
    ("2026_04_06_deepseek_r1_b200_sxm_sglang_fp8_agg_1024x8192_c32_tp8_ep1_752", (30, 128)),
    # TP 4: recv 10 at every concurrency, max running 32
    ("2026_03_25_deepseek_r1_b200_sxm_sglang_fp8_agg_8192x1024_c8_tp4_0_ep1_0_277", (10, 32)),
    # dsr1_fp4_b200: 256; the db-dump copy of the same sweep
    ("dsr1_b200_sglang_fp4_agg_1024x8192_c128_cfg99", (30, 256)),
    # above the script's cap: its TPOT shows no cap, another launch ran it
    ("2026_04_06_deepseek_r1_b200_sxm_sglang_fp8_agg_8192x1024_c512_tp8_ep1_" , None),
    # H200's scripts pass no recv interval; GLM-5 on B200 neither
    ("2026_03_25_deepseek_r1_h200_sxm_sglang_fp8_agg_1024x1024_c4_tp8_0_ep1_0_289", (0, 0)),
    ("2026_03_25_glm_5_b200_sxm_sglang_fp8_agg_1024x1024_c16_tp8_0_ep1_0_484", (0, 0)),
    # the gap-analysis copy of the Qwen3.5 sweeps (undated)
    ("qwen3_5_397b_gap_analysis_qwen3_5_397b_gap_analysis_b200_sxm_sglang_fp8_agg_8192x1024_c8_"
     "tp8_ep1_44", (10, 128)),
])
def test_launch_flags_of_the_runs(table, run_id, flags):
    if flags is None:
        hits = [i for i in range(len(table)) if str(table.id[i]).startswith(run_id)]
        assert hits and all(table.recv_interval[i] == 0 == table.max_running[i] for i in hits)
        return
    assert _row(table, run_id) == flags


def test_only_sglang_rows_carry_launch_flags(table):
    flagged = table.recv_interval > 0
    assert flagged.sum() > 300
    assert set(table.backend[flagged]) == {"sglang"} and set(table.system[flagged]) == {"b200_sxm"}
    assert (table.max_running[flagged] >= table.concurrency[flagged]).all()


@pytest.mark.parametrize("run_id,kv_fp8,budget", [
    # Llama-3.1-70B scripts @ 2582bce40^ (config.yaml kv-cache-dtype: fp8), 2025-10-29 runs
    ("2026_04_06_llama_3_1_70b_h100_sxm_vllm_fp8_agg_1024x1024_c16_tp4_ep1_260", 1, 0),
    # gpt-oss B200 @ d2c2acb19 (v0.15.1): FP8 KV; H100 @ cec542a9a: the default
    ("2026_03_25_gpt_oss_120b_b200_sxm_vllm_fp4_agg_1024x8192_c4_tp4_0_ep1_0_612", 1, 0),
    ("2026_03_25_gpt_oss_120b_h100_sxm_vllm_fp4_agg_1024x1024_c64_tp4_0_ep1_0_185", 0, 0),
    # MiniMax-M2.5 B200 v0.19.0 @ bddbf4031: FP8 KV, --max-num-batched-tokens 2 x ISL
    ("minimaxm2_5_b200_vllm_fp8_agg_1024x1024_c256_cfg691", 1, 2048),
    # H200 (v0.16.0) and Kimi-K2.5 FP4 B200 (v0.17.0, 79a42e20a): the defaults
    ("minimaxm2_5_h200_vllm_fp8_agg_8192x1024_c8_cfg606", 0, 0),
    ("kimik2_5_b200_vllm_fp4_agg_1024x1024_c4_cfg636", 0, 0),
])
def test_vllm_launch_flags_of_the_runs(table, run_id, kv_fp8, budget):
    (i,) = np.flatnonzero(table.id == run_id)
    assert (int(table.kv_fp8[i]), float(table.max_num_tokens[i])) == (kv_fp8, budget)


def test_only_vllm_rows_carry_vllm_launch_flags(table):
    flagged = (table.kv_fp8 > 0) | (table.max_num_tokens > 0)
    assert flagged.sum() > 300
    assert set(table.backend[flagged]) == {"vllm"}
    assert ((table.max_num_tokens[flagged] == 0)
            | (table.max_num_tokens[flagged] == 2 * table.isl[flagged])).all()


def test_a_runs_token_budget_replaces_the_engines():
    model, hw, vllm = catalog.load_model("llama-3.1-70b"), catalog.load_hardware("b200"), \
        load_engine("vllm")
    kw = dict(isl=np.array([8192.0, 8192.0]), osl=1024, concurrency=64, tp=4)
    default = serve_workload(model, hw, vllm, **kw)
    given = serve_workload(model, hw, vllm, max_num_tokens=np.array([0, 16384]), **kw)
    assert given.ttft_s[0] == default.ttft_s[0]           # 0: the engine's 8,192
    # a 16,384-token budget takes the prompts in half the chunk steps
    assert given.ttft_s[1] < default.ttft_s[1]
    assert given.prefill_s[1] < default.prefill_s[1]
