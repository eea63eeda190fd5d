"""Serving (issue 4, in progress): memory per GPU and fit, the roofline step, MTP, local decode.
The deployment-level validation against measured runs is not built yet."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.calc import serving
from planner.cli import WeightsDtype, app

runner = CliRunner()


def run_json(*args):
    result = runner.invoke(app, [*args, "-f", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_deepseek_v3_fp8_fits_8_h200_not_8_h100():
    v3 = catalog.load_model("deepseek-v3")
    h100, h200 = catalog.load_hardware("h100"), catalog.load_hardware("h200")
    # FP8 weights with 128x128 scales + BF16 embedding, head, router, norms: 673.15 GB; / 8 =
    # 84.3 GB > 80 GB before any KV cache.
    on_h100 = serving.memory_per_gpu(v3, h100, ep=8, tp=8)
    assert on_h100.weight_bytes_per_gpu > h100.gpu.hbm_capacity_bytes and not on_h100.fits
    assert serving.memory_per_gpu(v3, h200, ep=8, tp=8).fits
    records = run_json("fit", "deepseek-v3", "-H", "h100", "-H", "h200")
    assert [(r["hardware"], r["num_gpus"]) for r in records] == [("h100", 16), ("h200", 8)]


def test_weight_bytes_by_hand():
    v3 = catalog.load_model("deepseek-v3")
    w = serving.weight_bytes_per_gpu_by_part(v3, weights_dtype="fp8", ep=8, tp=1).as_dict()
    # Routed experts: 58 × 256 × 3 × 7168 × 2048 = 653,908,770,816 weights × (1 + 4/16384) / 8.
    assert w["routed_experts"] == pytest.approx(653_908_770_816 * (1 + 4 / 16384) / 8)
    # Embedding stays BF16 and is replicated under DP attention: 129,280 × 7,168 × 2 B.
    assert w["embedding"] == 129_280 * 7_168 * 2
    bf16 = serving.weight_bytes_per_gpu_by_part(v3, weights_dtype="bf16").as_dict()
    assert bf16["attention"] == 2 * 61 * 187_105_280


def test_kv_per_gpu_mla_not_split_by_tp_gqa_split():
    v3, llama = catalog.load_model("deepseek-v3"), catalog.load_model("llama-3.1-405b")
    assert serving.kv_bytes_per_token_per_gpu(v3, tp=8) == 70_272
    assert serving.kv_bytes_per_token_per_gpu(llama, tp=8) == 516_096 / 8
    assert serving.kv_bytes_per_token_per_gpu(llama, tp=16) == 516_096 / 8   # 8 KV heads


def test_mtp_tokens_per_step_and_the_papers_speedup():
    assert serving.mtp_tokens_per_step(acceptance=0.85, depth=1) == pytest.approx(1.85)
    assert serving.mtp_tokens_per_step(acceptance=0.5, depth=2) == pytest.approx(1.75)
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    base = serving.serve(v3, h800, gpus=320, batch_per_gpu=32)
    mtp = serving.serve(v3, h800, gpus=320, batch_per_gpu=32, mtp_acceptance=0.85)
    # 1.85 tokens per step, one more layer of 61 per step: 1.85 / (1 + 1/61) = 1.82x (P: 1.8x).
    assert base.tpot_s / mtp.tpot_s == pytest.approx(1.85 / (1 + 1 / 61))


def test_roofline_properties():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    ach = serving.serve(v3, h800, gpus=320, batch_per_gpu=64)
    peak = serving.serve(v3, h800, gpus=320, batch_per_gpu=64, bound=True)
    serial = serving.serve(v3, h800, gpus=320, batch_per_gpu=64, overlap=False)
    assert peak.step_s < ach.step_s < serial.step_s
    assert serial.step_s == pytest.approx(ach.compute_s + ach.communication_s)
    assert "peak" in peak.basis and "achievable" in ach.basis
    # Communication over IB at 0.8 × 50 GB/s: 58 MoE layers × 64 tokens × 9 × 21,744 B.
    assert ach.communication_s == pytest.approx(58 * 64 * 9 * 21_744 / 40e9)


def test_local_decode_figures_of_the_paper():
    # paper.md §4: V2 (21e9 activated) at 4 bits on 256 GB/s ≈ 24 tokens/s; a dense 70B ≈ 7.3.
    assert serving.local_decode_tokens_per_s(activated_params=21e9, bytes_per_param=0.5,
                                             memory_bytes_per_s=256e9) == pytest.approx(24.38,
                                                                                        abs=0.01)
    assert serving.local_decode_tokens_per_s(activated_params=70e9, bytes_per_param=0.5,
                                             memory_bytes_per_s=256e9) == pytest.approx(7.31,
                                                                                        abs=0.01)
    (v2,) = run_json("serve", "deepseek-v2", "-H", "dgx-spark", "--weights-dtype", "fp4",
                     "--batch-per-gpu", "1", "--bound")
    (l70,) = run_json("serve", "llama-3.1-70b", "-H", "dgx-spark", "--weights-dtype", "fp4",
                      "--batch-per-gpu", "1", "--bound")
    assert 15 < v2["decode_tokens_per_s"] < 30 and l70["decode_tokens_per_s"] < 10
    assert v2["gpus"] == 1 and v2["communication_s"] == 0


def test_prefill_reports_ttft_and_names_the_bottleneck():
    (r,) = run_json("serve", "deepseek-v3", "-H", "h800", "--phase", "prefill", "--gpus", "32",
                    "--tokens-per-gpu", "4096", "--context-tokens", "4096")
    assert r["ttft_s"] > 0 and r["tpot_s"] is None and r["bottleneck"]
    assert r["tokens_per_s_per_node"] == pytest.approx(8 * r["tokens_per_s_per_gpu"])


def test_serve_rejects_bad_parallelism():
    result = runner.invoke(app, ["serve", "deepseek-v3", "-H", "h800", "--gpus", "10",
                                 "--ep", "4"])
    assert result.exit_code == 2 and "must divide" in result.stderr


def test_weight_format_choices_match_the_calculator():
    assert {w.value for w in WeightsDtype} == set(serving.WEIGHT_BYTES)


def test_serving_metrics_in_scenarios(write_yaml):
    import planner

    path = write_yaml("model: deepseek-v3\nhardware: h200\ndeployment: {num_gpus: 8, ep: 8, "
                      "tp: 8, weight_dtype: fp8, batch_per_gpu: 16}\nbudgets:\n"
                      "  memory_bytes_per_gpu: {max: 141 GB}\n", "serve.yaml")
    report = planner.check(path)
    assert report.ok, report.errors
    ev = planner.evaluate(path)
    mem = serving.memory_per_gpu(catalog.load_model("deepseek-v3"),
                                 catalog.load_hardware("h200"), ep=8, tp=8, batch_per_gpu=16)
    assert ev.value("memory_bytes_per_gpu") == mem.memory_bytes_per_gpu
    gb = write_yaml("model: deepseek-v3\nhardware: gb200-nvl72\ndeployment: {num_gpus: 72, "
                    "ep: 72}\nbudgets:\n  ttft_s: {max: 1 s}\n", "gb.yaml")
    bad = planner.check(gb)
    assert not bad.ok and "efficiency.matmul_flops is not given" in str(bad.errors[0])


def test_memory_only_devices_say_compute_is_not_modelled():
    (r,) = run_json("serve", "deepseek-v2", "-H", "apple-m4-max", "--weights-dtype", "fp4",
                    "--batch-per-gpu", "1")
    assert "compute not modelled" in r["basis"]
    # Activated weights read once per token: 546 GB/s over the step's bytes.
    step_bytes = sum(p["bytes"] for p in r["parts"])
    assert r["step_s"] == pytest.approx(step_bytes / 546e9)
    assert 40 < r["decode_tokens_per_s"] < 50          # P: "nearly 20 ... or even twice that"


def test_kernel_efficiency_factors_per_part():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    dec = serving.serve(v3, h800, gpus=320, batch_per_gpu=256, context_tokens=128)
    parts = {p.name: p for p in dec.parts}
    # Routed experts in decode: grouped GEMM at FP8 peak × 0.52 (DeepGEMM masked grouped GEMM).
    experts = parts["routed experts"]
    assert experts.bound == "compute"
    assert experts.time_s == pytest.approx(experts.flops / (1979e12 * 0.52))
    pre = serving.serve(v3, h800, phase="prefill", gpus=32, batch_per_gpu=16384)
    att = {p.name: p for p in pre.parts}["attention"]
    # Attention in BF16 at 989 TFLOP/s × 0.63 (FlashMLA's compute-bound rate).
    assert att.bound == "compute" and att.time_s == pytest.approx(att.flops / (989e12 * 0.63))
    assert "experts x 0.73" in pre.basis and "experts x 0.52" in dec.basis
