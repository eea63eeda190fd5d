"""Issue 22 round 14 (exp14): the routed experts' grouped rate under random routing, read from
AIConfigurator's balanced-routing tables at the experts hit and the rows per hit expert."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving import efficiency as eff
from planner.calc.serving.kernels import random_routing_expert_rate

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _parts():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("moe_routing_parts",
                                                  BENCH / "moe_routing_parts.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fp4(x):
    return eff.grouped_gemm_flops_frac(catalog.load_hardware("gb200-nvl72"), dtype="fp4", rows=x)


def test_every_expert_hit_reads_the_table_at_the_mean_rows():
    rows = np.array([2.0, 8.0, 64.0, 1024.0])
    got = random_routing_expert_rate(rate_at=_fp4, mean_rows=rows, hit_frac=np.ones(4))
    assert np.allclose(got, _fp4(rows), rtol=1e-12)


def test_one_row_per_hit_expert_reads_the_table_at_the_experts_hit():
    # few rows: h -> r, one row per hit expert: the balanced table at r
    r = np.array([0.0625, 0.125, 0.25])
    got = random_routing_expert_rate(rate_at=_fp4, mean_rows=r, hit_frac=r)
    assert np.allclose(got, _fp4(r), rtol=1e-12)


def test_kimi_one_row_per_expert_by_hand():
    # the docstring's example: r = 1, h = 1 - (1 - 8/384)^48
    h = 1 - (1 - 8 / 384) ** 48
    got = random_routing_expert_rate(rate_at=_fp4, mean_rows=1.0, hit_frac=h)
    assert got == pytest.approx(_fp4(h) * _fp4(1 / h) / _fp4(1.0), rel=1e-12)
    assert got == pytest.approx(0.00296, abs=5e-6)
    assert _fp4(1.0) / got == pytest.approx(0.78, abs=0.005)


def test_scalars_and_zero_rows():
    assert random_routing_expert_rate(rate_at=_fp4, mean_rows=0.0, hit_frac=0.0) == pytest.approx(
        _fp4(1e-9), rel=1e-9)


# AIConfigurator moe_perf, GB200 TensorRT-LLM 1.3.0rc20, NVFP4, MoE-TP 1, the fastest kernel
# (benchmarks/moe_routing_parts.py --dump; µs): (model, EP, tokens): (balanced, power_law_1.01)
TABLE_US = {("kimi-k2.5", 8, 48): (211.4, 137.6), ("kimi-k2.5", 8, 64): (216.4, 170.4),
            ("glm-5", 8, 32): (122.1, 79.9), ("glm-5", 8, 48): (135.6, 94.2)}


@pytest.mark.parametrize("case", sorted(TABLE_US))
def test_decode_routed_experts_near_one_row_per_expert_follow_routed_table(case):
    """Near one row per expert the planner's routed experts sit within 15% of the table's
    power-law routing; read as every local expert hit (before) they were 13-34% over it."""
    name, ep, tokens = case
    parts = _parts()
    model, hw = catalog.load_model(name), catalog.load_hardware("gb200-nvl72")
    new = parts.routed_us(model, hw, weights="nvfp4", ep=ep, batch=tokens, all_hit=False)
    old = parts.routed_us(model, hw, weights="nvfp4", ep=ep, batch=tokens, all_hit=True)
    balanced, power_law = TABLE_US[case]
    assert abs(new / power_law - 1) < 0.15
    # what the planner read before (every local expert hit): further from the table
    assert abs(old / power_law - 1) > abs(new / power_law - 1) + 0.08
    assert new < balanced


def test_many_rows_per_expert_unchanged():
    parts = _parts()
    model, hw = catalog.load_model("kimi-k2.5"), catalog.load_hardware("gb200-nvl72")
    new = parts.routed_us(model, hw, weights="nvfp4", ep=8, batch=1024, all_hit=False)
    old = parts.routed_us(model, hw, weights="nvfp4", ep=8, batch=1024, all_hit=True)
    assert new == pytest.approx(old, rel=1e-9)


def test_the_serving_fraction_is_the_random_routing_reading():
    from planner.calc.serving.efficiency import routed_grouped_gemm_flops_frac as routed

    hw = catalog.load_hardware("gb200-nvl72")
    r = np.array([0.0625, 1.0, 64.0, 4096.0])
    h = -np.expm1(-r)
    assert np.allclose(routed(hw, dtype="fp4", rows=r), _fp4(h) * _fp4(r / h) / _fp4(1.0))
    assert routed(hw, dtype="fp4", rows=1.0) == pytest.approx(0.00297, abs=5e-6)
    assert routed(hw, dtype="fp4", rows=64.0) == pytest.approx(_fp4(64.0), rel=1e-9)
    # no table (H800: DeepGEMM's scalars): unchanged
    h800 = catalog.load_hardware("h800")
    assert routed(h800, dtype="fp8", rows=4, phase="decode") == eff.grouped_gemm_flops_frac(
        h800, dtype="fp8", rows=4, phase="decode")


def test_serve_reads_the_experts_at_random_routing():
    from planner.calc.serving import serve
    from planner.specs.deployment import ServeConfig

    hw = catalog.load_hardware("gb200-nvl72")
    model = catalog.load_model("kimi-k2.5")
    config = ServeConfig(gpus=8, ep=8, tp=8, batch_per_gpu=6, context_tokens=1500,
                         overlap="none", expert_balance="exact", weights_dtype="nvfp4")
    parts = {p.name: p.time_s for p in serve(model, hw, config).parts}
    routed = eff.routed_grouped_gemm_flops_frac
    eff.routed_grouped_gemm_flops_frac = eff.grouped_gemm_flops_frac
    try:
        before = {p.name: p.time_s for p in serve(model, hw, config).parts}
    finally:
        eff.routed_grouped_gemm_flops_frac = routed
    # 48 tokens over 384 experts, top-8: one row per expert, 0.77x the all-hit time
    assert parts["routed experts"] / before["routed experts"] == pytest.approx(0.77, abs=0.02)
