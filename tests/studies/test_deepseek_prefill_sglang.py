"""benchmarks/deepseek_prefill_sglang.py (issue 22, sgl13): the lookups that set the planner's
DeepSeek prefill parts beside SGLang's AIConfigurator tables. The tables themselves need
pyarrow (not a planner dependency); these tests read small hand-made tables."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sg = _module("deepseek_prefill_sglang")


def test_gemm_reads_the_nearest_shape_scaled_by_its_size():
    gemm = {"fp8_block|1024|1536|7168": 0.010, "fp8_block|1024|4096|512": 0.004,
            "fp8_block|8192|1536|7168": 0.060}
    # q_a at its own shape, kv_a (576 x 7168) from the nearest (1536 x 7168) scaled by N·K
    assert sg.gemm_ms(gemm, dtype="fp8_block", rows=1024, shapes=((1536, 7168),)) == 0.010
    got = sg.gemm_ms(gemm, dtype="fp8_block", rows=1024, shapes=((576, 7168),))
    assert got == pytest.approx(0.010 * 576 / 1536)
    assert sg.gemm_ms(gemm, dtype="fp8_block", rows=1024,
                      shapes=((1536, 7168), (4096, 512))) == pytest.approx(0.014)
    assert math.isnan(sg.gemm_ms(gemm, dtype="fp8_block", rows=2048, shapes=((1536, 7168),)))
    assert math.isnan(sg.gemm_ms(gemm, dtype="nvfp4", rows=1024, shapes=((1536, 7168),)))


def test_deepep_reads_tokens_per_rank_times_ep_and_bridges_a_missing_ep():
    # num_tokens is tokens per rank x EP (the DeepEP collector); EP 8 is not collected
    deepep = {"uniform|4|32768": 3.2, "uniform|16|131072": 3.6, "uniform|4|4096": 0.8,
              "uniform|2|16384": 3.3, "power_law_1.01|4|32768": 4.2}
    assert sg.deepep_moe_ms(deepep, dist="uniform", ep=4, rank_tokens=8192) == 3.2
    # halfway between EP 4 and EP 16 in log EP, at the same 8,192 tokens per rank
    assert sg.deepep_moe_ms(deepep, dist="uniform", ep=8, rank_tokens=8192) == pytest.approx(3.4)
    # no EP above 16 at 8,192 per rank, none at all at 2,048 per rank
    assert math.isnan(sg.deepep_moe_ms(deepep, dist="uniform", ep=32, rank_tokens=8192))
    assert math.isnan(sg.deepep_moe_ms(deepep, dist="uniform", ep=8, rank_tokens=2048))
    assert math.isnan(sg.deepep_moe_ms(deepep, dist="power_law_1.01", ep=8, rank_tokens=8192))


def test_projection_shapes_split_by_attention_tp():
    assert sg.proj_shapes(1)[2:] == ((24576, 1536), (32768, 512), (7168, 16384))
    assert sg.proj_shapes(8) == ((1536, 7168), (576, 7168), (3072, 1536), (4096, 512),
                                 (7168, 2048))


def _tab(isl: int) -> dict:
    return dict(mla={f"fp8|16|1|{isl}": 0.3, f"fp8|128|1|{isl}": 2.0},
                module={f"16|1|{isl}": 1.0, f"128|1|{isl}": 3.3},
                gemm={f"fp8_block|{isl}|2048|7168": 0.1},
                moe={f"fp8_block|{isl}|1|8|balanced": 1.9,
                     f"fp8_block|{isl * 8}|1|8|balanced": 9.0},
                deepep={f"uniform|4|{isl // 8 * 4}": 0.6, f"uniform|16|{isl // 8 * 16}": 0.8,
                        f"uniform|4|{isl * 4}": 3.0, f"uniform|16|{isl * 16}": 4.0},
                a2a={str(isl): 2.5})


def test_table_parts_route_the_worker_tokens():
    isl = 8192
    dep = sg.table_parts(_tab(isl), tp=1, adp=8, ep=8, isl=isl, weights="fp8")
    tep = sg.table_parts(_tab(isl), tp=8, adp=1, ep=8, isl=isl, weights="fp8")
    # attention DP 8: every rank routes its own prompt (8 x ISL over EP 8: ISL per rank), the
    # fused kernel at the 65,536 tokens the group routes, and DeepEP's all-to-all
    assert dep["deepep"] == pytest.approx(3.5)
    assert dep["moe"] == 9.0 and dep["a2a"] == 2.5
    # TP attention: one prompt over the worker (ISL / 8 per rank), no all-to-all
    assert tep["deepep"] == pytest.approx(0.7)
    assert tep["moe"] == 1.9 and tep["a2a"] == 0.0
    # heads per GPU pick the core and the module; the module adds the q_a + kv_a GEMM
    assert (dep["core"], tep["core"]) == (2.0, 0.3)
    assert dep["module"] == pytest.approx(3.3 + 0.1 * 2112 / 2048)
    assert math.isnan(sg.table_parts(_tab(isl), tp=1, adp=8, ep=8, isl=isl,
                                     weights="fp4")["deepep"])
    # attention DP over MoE-TP (EP 1): no DeepEP all-to-all to read
    assert math.isnan(sg.table_parts(_tab(isl), tp=1, adp=8, ep=1, isl=isl,
                                     weights="fp8")["a2a"])


def test_substituted_pass_replaces_only_the_measured_parts():
    planner = dict(proj=1.0, core=2.0, att_other=0.2, router=0.02, shared=0.3, routed=2.4,
                   moe_other=0.7, a2a=2.5, pass_ms=570.0)
    table = dict(module=3.5, shared=0.4, deepep=3.4, deepep_pl=5.4, moe=1.9, moe_pl=2.2,
                 a2a=2.6)
    got = sg.substituted_pass_ms(planner, table, layers=61, moe_layers=58, deepep=True)
    assert got == pytest.approx(570.0 + 61 * (3.5 - 3.2) + 58 * ((0.4 + 3.4 + 2.6) - 5.9))
    skew = sg.substituted_pass_ms(planner, table, layers=61, moe_layers=58, deepep=True,
                                  skew=True)
    assert skew - got == pytest.approx(58 * 2.0)
    fused = sg.substituted_pass_ms(planner, table, layers=61, moe_layers=58, deepep=False)
    assert fused == pytest.approx(570.0 + 61 * 0.3 + 58 * ((0.4 + 1.9 + 2.6) - 5.9))
    # no DeepEP table for the layout (NaN): the planner's all-to-all stays
    no_a2a = sg.substituted_pass_ms(planner, dict(table, a2a=math.nan), layers=61,
                                    moe_layers=58, deepep=False)
    assert no_a2a == pytest.approx(570.0 + 61 * 0.3 + 58 * ((0.4 + 1.9 + 2.5) - 5.9))


def test_planner_parts_of_a_prefill_worker_route_every_rank_tokens():
    """``lone=False`` (a prefill worker's batch, every attention-DP rank prefilling) gives
    the routed experts DP_att times the rows of ``lone`` at DP 8 (attention unchanged)."""
    from planner import catalog

    parts = _module("deepseek_prefill_parts")
    model, hw = catalog.load_model("deepseek-v3"), catalog.load_hardware("b200")
    lone = parts._parts(model, hw, tp=1, adp=8, ep=8, isl=8192, prompts=1)
    all_ranks = parts._parts(model, hw, tp=1, adp=8, ep=8, isl=8192, prompts=1, lone=False)
    assert all_ranks["core"] == lone["core"] and all_ranks["proj"] == lone["proj"]
    assert all_ranks["routed"] > 3 * lone["routed"]
    assert all_ranks["pass_ms"] > lone["pass_ms"]
    assert all_ranks["a2a"] > 0


def test_decode_parts_record_the_measured_mla_kernel_and_the_all_to_all():
    """The wide-EP decode step's parts: the attention block carries the MLA decode kernel
    (it grows with the context), the all-to-all is there under attention DP, and the parts
    sum to no more than the step."""
    from planner import catalog

    model, hw = catalog.load_model("deepseek-v3"), catalog.load_hardware("gb200-nvl72")
    short = sg.decode_parts(model, hw, ep=32, batch=64, context=1536)
    long = sg.decode_parts(model, hw, ep=32, batch=64, context=8704)
    assert long["attention"] > short["attention"]
    assert long["routed"] == short["routed"] and short["a2a"] > 0
    per_layer = 61 * short["attention"] + 58 * (short["shared"] + short["routed"] + short["a2a"])
    assert 0.5 * short["step_ms"] < per_layer <= short["step_ms"]
