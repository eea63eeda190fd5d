"""The serving package's pieces: the kernel ledger that sums each kernel by name, the structured
bottleneck (numbers in calc, its text in report), the re-exports of planner.calc.serving and
the one memory model."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.calc import memory, serving
from planner.calc.serving.kernels import KernelLedger
from planner.report.bottleneck import bottleneck_text
from planner.specs.deployment import ServeConfig


def test_kernel_ledger_sums_each_kernel_by_name_in_first_run_order():
    ledger = KernelLedger()
    # 2e12 FLOPs at 1e15 FLOP/s = 2 ms; 3e9 B at 3e12 B/s = 1 ms: 2 ms, compute bound.
    t = ledger.add("gemm", flops=2e12, bytes_moved=3e9, flop_per_s=1e15, bytes_per_s=3e12,
                   count=10)
    assert t == pytest.approx(2e-3)
    # 0 FLOPs, 6e9 B at 3e12 B/s = 2 ms: memory bound.
    ledger.add("norms", flops=0.0, bytes_moved=6e9, flop_per_s=1e15, bytes_per_s=3e12, count=1)
    ledger.add("gemm", flops=1e12, bytes_moved=3e9, flop_per_s=1e15, bytes_per_s=3e12, count=2)
    gemm, norms = ledger.parts()
    assert [gemm.name, norms.name] == ["gemm", "norms"]
    # gemm: 10 runs of 2e12 + 2 runs of 1e12 FLOPs; 12 runs of 3e9 B; 10 × 2 ms + 2 × 1 ms.
    assert gemm.flops == pytest.approx(22e12)
    assert gemm.bytes_moved == pytest.approx(36e9)
    assert gemm.time_s == pytest.approx(22e-3)
    # compute 20 + 2 ms = 22 ms, memory 12 × 1 ms = 12 ms: compute bound.
    assert gemm.bound == "compute"
    assert norms.bound == "memory" and norms.time_s == pytest.approx(2e-3)


def test_serve_parts_are_the_ledger_kernels_then_the_network_and_sum_to_compute():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    r = serving.serve(v3, h800, ServeConfig(gpus=320, batch_per_gpu=64))
    kernels = [p for p in r.parts if p.bound != "network"]
    network = [p for p in r.parts if p.bound == "network"]
    assert [p.name for p in kernels] == [
        "attention (core)", "attention projections", "norms, RoPE, quantization, residuals",
        "dense FFN", "FFN activations, EP buffers, residuals", "shared experts", "router",
        "routed experts", "output head"]
    assert [p.name for p in network] == ["EP dispatch + combine (scale_out)"]
    assert r.compute_s == pytest.approx(sum(p.time_s for p in kernels))
    assert r.communication_s == pytest.approx(sum(p.time_s for p in network))


def test_bottleneck_is_numbers_and_labels_and_its_text_is_built_in_report():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    # 64 sequences per GPU: EP 19.7 ms < compute 26.7 ms; the attention projections (9.9 ms)
    # stream their weights: HBM bound.
    r = serving.serve(v3, h800, ServeConfig(gpus=320, batch_per_gpu=64))
    b = r.bottleneck
    assert (b.resource, b.part, b.ep_link, b.tp_link) == (
        "memory", "attention projections", "scale_out", None)
    assert (b.communication_s, b.compute_s) == (r.communication_s, r.compute_s)
    assert b.communication_s < b.compute_s
    assert bottleneck_text(b) == "HBM bandwidth in attention projections"
    # Prefill at TP 4 over 256 GPUs: EP forwarded over NVLink and TP all-reduces, both links
    # named, communication above compute.
    pre = serving.serve(v3, h800, ServeConfig(phase="prefill", batch_per_gpu=4096, tp=4))
    b = pre.bottleneck
    assert (b.resource, b.ep_link, b.tp_link) == (
        "network", "scale_out + NVLink forwarding", "scale_up")
    assert b.communication_s >= b.compute_s
    assert bottleneck_text(b) == (
        f"network (scale_out + NVLink forwarding; TP over scale_up): communication "
        f"{pre.communication_s * 1e3:,.1f} ms >= compute {pre.compute_s * 1e3:,.1f} ms per step")
    # A dense model at TP 16 over two 8-GPU nodes: the all-reduces cross the NIC, alone.
    llama = catalog.load_model("llama-3.1-405b")
    tp16 = serving.serve(llama, h800, ServeConfig(gpus=16, tp=16, batch_per_gpu=1,
                                                  context_tokens=128)).bottleneck
    assert (tp16.resource, tp16.ep_link, tp16.tp_link) == ("network", None, "scale_out")
    assert bottleneck_text(tp16).startswith("network (scale_out): communication ")
    # Same model at TP 8 and 64 sequences: the dense FFN's FLOPs bind.
    tp8 = serving.serve(llama, h800, ServeConfig(gpus=16, tp=8, batch_per_gpu=64,
                                                 context_tokens=128)).bottleneck
    assert bottleneck_text(tp8) == "compute (FLOP/s) in dense FFN"


def test_serve_json_carries_the_bottleneck_text_report_builds():
    import json

    from typer.testing import CliRunner

    from planner.cli import app

    result = CliRunner().invoke(app, ["serve", "deepseek-v3", "--hardware", "h800", "--gpus",
                                      "320", "--batch-per-gpu", "64", "-f", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["bottleneck"] == "HBM bandwidth in attention projections"


def test_serving_re_exports_the_one_memory_model():
    for name in ("weight_bytes_per_gpu_by_part", "kv_bytes_per_token_per_gpu",
                 "memory_per_gpu", "fewest_gpus", "MemoryResult", "FitResult", "WEIGHT_BYTES",
                 "SCALE_BYTES_PER_WEIGHT"):
        assert getattr(serving, name) is getattr(memory, name)
    for name in serving.__all__:
        assert hasattr(serving, name), name


def test_serve_checks_the_layout_against_the_model_not_the_config_again():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    from planner.errors import UsageError

    with pytest.raises(UsageError, match=r"EP \(3\) and TP \(1\) must divide the GPUs \(8\)"):
        serving.serve(v3, h800, ServeConfig(gpus=8, ep=3))
    # A dense model has no EP: EP 1 whatever the config says.
    dense = serving.serve(catalog.load_model("qwen2.5-72b"), h800, ServeConfig(gpus=8, ep=3))
    assert dense.ep == 1 and dense.expert_balance == "none"
