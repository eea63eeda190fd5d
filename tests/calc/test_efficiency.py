"""Kernel efficiency (issue 19): the measured tables over M, read vectorized and interpolated
in log M; the precision each weight format runs at per device; the step model on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving import efficiency as eff
from planner.calc.serving import serve
from planner.calc.serving.rates import serving_rates
from planner.specs.deployment import ServeConfig


@pytest.fixture(scope="module")
def h200():
    return catalog.load_hardware("h200")


def test_gemm_table_is_read_at_its_rows_and_between_them_in_log_m(h200):
    table = h200.efficiency.gemm["bf16"]
    assert eff.gemm_flops_frac(h200, dtype="bf16", rows=1) == table.frac[0] == 0.0041
    assert eff.gemm_flops_frac(h200, dtype="bf16", rows=4096) == 0.8079
    # Halfway in log M between 1,024 (0.7869) and 4,096 (0.8079), log η linear in log M:
    # the geometric mean (a linear-in-η reading, 0.7974, let time fall with M between points).
    assert eff.gemm_flops_frac(h200, dtype="bf16", rows=2048) == pytest.approx(
        (0.7869 * 0.8079) ** 0.5)
    # Past the ends: constant.
    assert eff.gemm_flops_frac(h200, dtype="bf16", rows=0.5) == 0.0041
    assert eff.gemm_flops_frac(h200, dtype="bf16", rows=1e6) == table.frac[-1]


def test_functions_are_vectorized_over_rows(h200):
    rows = np.array([[1, 16], [256, 4096]])
    out = eff.gemm_flops_frac(h200, dtype="fp8_block", rows=rows)
    assert out.shape == (2, 2)
    assert out[1, 1] == eff.gemm_flops_frac(h200, dtype="fp8_block", rows=4096)
    g = eff.grouped_gemm_flops_frac(h200, dtype="w4a16", rows=np.array([1.0, 16.0]))
    assert g.shape == (2,) and g[0] < g[1]
    assert eff.gemm_weight_bandwidth_frac(h200, rows=rows).shape == (2, 2)
    # The scalar fallback broadcasts too (H800: DeepGEMM's single figures).
    h800 = catalog.load_hardware("h800")
    assert np.all(eff.gemm_flops_frac(h800, dtype="fp8", rows=rows) == 0.526)
    both = eff.grouped_gemm_flops_frac(h800, dtype="fp8", rows=np.array([4, 4096]))
    assert list(both) == [0.469, 0.603]   # masked (decode) below 128 rows, contiguous above
    assert eff.grouped_gemm_flops_frac(h800, dtype="fp8", rows=4096, phase="decode") == 0.469


def test_every_fraction_is_in_0_1_and_grows_with_rows_for_compute_tables():
    for name in ("h100", "h200", "b200", "gb200-nvl72", "b300", "gb300-nvl72"):
        hw = catalog.load_hardware(name)
        for tables in (hw.efficiency.gemm, hw.efficiency.grouped_gemm):
            assert tables, name
            for key, t in tables.items():
                assert all(0 < f <= 1 for f in t.frac), (name, key)
                # Achieved FLOP/s rise with M over the measured range (more rows per weight).
                assert t.frac[-1] > 10 * t.frac[0], (name, key)


def test_weight_only_4bit_on_hopper_native_fp4_on_blackwell():
    h100, b200 = catalog.load_hardware("h100"), catalog.load_hardware("b200")
    wo = eff.kernel_precision(h100, weights_dtype="fp4")
    assert wo.weight_only and wo.compute_dtype == "bf16" and wo.grouped_table == "w4a16"
    native = eff.kernel_precision(b200, weights_dtype="fp4")
    assert not native.weight_only and native.compute_dtype == "fp4"
    assert native.grouped_table == "w4a8"     # MXFP4 experts as TensorRT-LLM runs them
    assert eff.kernel_precision(b200, weights_dtype="nvfp4").grouped_table == "fp4"
    # INT4 has no tensor-core path on Blackwell either: weight-only everywhere.
    assert eff.kernel_precision(b200, weights_dtype="int4").weight_only
    # Each rate is its table's fraction of the peak that table was measured against (the
    # experts' read at random routing, round 14: routed_grouped_gemm_flops_frac).
    r = serving_rates(b200, phase="decode", weights_dtype="fp4", rows=16, expert_rows=4)
    assert r.experts == pytest.approx(
        4500e12 * eff.routed_grouped_gemm_flops_frac(b200, dtype="w4a8", rows=4))
    assert r.gemm == pytest.approx(9000e12 * eff.gemm_flops_frac(b200, dtype="fp4", rows=16))
    r = serving_rates(h100, phase="decode", weights_dtype="fp4", rows=16, expert_rows=4)
    assert r.experts == pytest.approx(
        989e12 * eff.routed_grouped_gemm_flops_frac(h100, dtype="w4a16", rows=4))
    assert "weight-only FP4" in r.basis


def test_gpt_oss_on_h100_is_weight_only_and_on_b200_native():
    model = catalog.load_model("gpt-oss-120b")
    config = ServeConfig(gpus=1, batch_per_gpu=16, weights_dtype="fp4", context_tokens=1536)
    on_h100 = serve(model, catalog.load_hardware("h100"), config)
    on_b200 = serve(model, catalog.load_hardware("b200"), config)
    experts = {r.hardware: next(p for p in r.parts if p.name == "routed experts")
               for r in (on_h100, on_b200)}
    # The same 4-bit bytes are streamed on both (MXFP4 + E8M0 scales): only the compute differs.
    assert experts["h100"].bytes_moved == experts["b200"].bytes_moved
    assert experts["h100"].flops == experts["b200"].flops
    assert "weight-only FP4" in on_h100.basis and "weight-only" not in on_b200.basis
    # Dequantized BF16 compute at H100's measured W4A16 rate is slower than B200's native one.
    assert experts["h100"].time_s > 2 * experts["b200"].time_s
    # BF16 attention of the mixed checkpoint runs at the BF16 table on both.
    assert on_h100.basis.startswith("achievable (measured kernel tables, weight-only FP4")


def test_measured_tables_are_not_padded_again():
    model = catalog.load_model("qwen3-30b-a3b")
    r = serve(model, catalog.load_hardware("h200"), ServeConfig(gpus=1, batch_per_gpu=8))
    assert r.gemm_tile_rows is None
    # An explicit tile still pads.
    r = serve(model, catalog.load_hardware("h200"),
              ServeConfig(gpus=1, batch_per_gpu=8, gemm_tile_rows=64))
    assert r.gemm_tile_rows == 64
    assert serve(model, catalog.load_hardware("h800"),
                 ServeConfig(gpus=1, batch_per_gpu=8)).gemm_tile_rows == 64


def test_attention_and_bandwidth_fractions(h200):
    assert eff.attention_flops_frac(h200, phase="prefill") == 0.5087
    assert eff.attention_flops_frac(h200, phase="decode", dtype="fp8") == (
        h200.efficiency.attention_fp8_flops.frac)
    assert eff.hbm_bandwidth_frac(h200) == 0.7298
    assert math.isclose(eff.gemm_weight_bandwidth_frac(h200, rows=8), 0.8451)


def test_4bit_formats_count_their_scale_bytes():
    from planner.calc.memory import weight_bytes_per_gpu_by_part

    model = catalog.load_model("qwen3-30b-a3b")
    parts = {d: weight_bytes_per_gpu_by_part(model, weights_dtype=d).as_dict()["routed_experts"]
             for d in ("fp4", "nvfp4", "int4", "fp8")}
    # MXFP4: 0.5 + 1/32 B per weight; NVFP4: 0.5 + 1/16; INT4 groups of 128: 0.5 + 2.5/128.
    assert parts["nvfp4"] / parts["fp4"] == pytest.approx((0.5 + 1 / 16) / (0.5 + 1 / 32))
    assert parts["int4"] / parts["fp4"] == pytest.approx((0.5 + 2.5 / 128) / (0.5 + 1 / 32))
    assert parts["fp4"] < parts["fp8"] / 1.8


@pytest.mark.parametrize("dtype", ["nvfp4", "int4"])
def test_new_weight_formats_serve_from_the_cli(dtype):
    from tests_support import cli_json

    (r,) = cli_json("serve", "qwen3-30b-a3b", "-H", "h100", "--gpus", "1", "--batch-per-gpu",
                    "8", "--weights-dtype", dtype)
    assert f"weight-only {dtype.upper()}" in r["basis"]


def test_the_readme_device_table_is_the_scripts_output():
    import importlib.util

    from tests_support import REPO

    spec = importlib.util.spec_from_file_location(
        "device_compare", REPO / "benchmarks" / "device_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPO / "README.md").read_text()
    lines = module.rows()
    assert len(lines) == 2 + 2 * len(module.DEVICES)
    assert all(line in readme for line in lines), "regenerate the README's device table"


def test_a100_runs_int4_weight_only_on_its_measured_w4a16_gemms():
    a100 = catalog.load_hardware("a100")
    k = eff.kernel_precision(a100, weights_dtype="int4")
    # Dense: A100's measured INT4 weight-only GEMMs; grouped: no such table, so BF16's.
    assert (k.gemm_table, k.grouped_table, k.weight_only) == ("w4a16", "bf16", True)
    # At M = 1 the 4-bit GEMM runs about twice the BF16 one's FLOP/s (a quarter of the bytes).
    assert eff.gemm_flops_frac(a100, dtype="w4a16", rows=1) > 1.5 * eff.gemm_flops_frac(
        a100, dtype="bf16", rows=1)
    # The KV stream the A100 tables cannot give is H100's, assumed and printed so.
    assert "hbm_bandwidth" in a100.efficiency_inherited
    r = serve(catalog.load_model("llama-3.3-70b"), a100,
              ServeConfig(gpus=2, batch_per_gpu=8, weights_dtype="int4"))
    assert "weight-only INT4" in r.basis and "assumed (from h100)" in r.basis


def test_kernel_time_never_falls_as_rows_grow_on_any_table():
    """time ∝ M / η(M): non-decreasing in M for every table of every catalog device, measured
    noise included (the fractions are capped by the previous point's × the ratio of M)."""
    m = np.geomspace(0.5, 40000, 400)
    for name in catalog.names("hardware"):
        hw = catalog.load_hardware(name)
        for kind, fn in (("gemm", eff.gemm_flops_frac), ("grouped_gemm",
                                                         eff.grouped_gemm_flops_frac)):
            for dtype in (getattr(hw.efficiency, kind) or {}):
                time = m / fn(hw, dtype=dtype, rows=m)
                assert np.all(np.diff(time) >= -1e-12 * time[1:]), (name, kind, dtype)


def test_grouped_tables_are_read_below_one_row_per_expert():
    """Issue 20: a decode batch of few tokens gives each expert under one row (DeepSeek-V3 at
    4 tokens: 4 · 8 / 256 = 1/8). The MoE kernel then runs one row on each expert some token
    selects, plus its fixed latency: AIConfigurator's moe_perf tables time it, and the grouped
    tables now hold those rows (from 1/16) instead of holding the 1-row rate below it, which
    made the kernel time ∝ rows, 1/16 of the 1-row time at 1/16 row."""
    h200 = catalog.load_hardware("h200")
    table = h200.efficiency.grouped_gemm["fp8_block"]
    assert list(table.rows[:5]) == [0.0625, 0.125, 0.25, 0.5, 1]
    assert eff.grouped_gemm_flops_frac(h200, dtype="fp8_block", rows=0.25) == pytest.approx(
        table.frac[2])
    for name in ("h100", "h200", "b200", "gb200-nvl72", "b300", "gb300-nvl72"):
        hw = catalog.load_hardware(name)
        for dtype in hw.efficiency.grouped_gemm or {}:
            f = eff.grouped_gemm_flops_frac(hw, dtype=dtype, rows=np.array([0.0625, 1.0]))
            time = np.array([0.0625, 1.0]) / f
            # at least the share of experts 1/16 row touches, (1 - e^(-1/16)) / (1 - e^(-1))
            assert time[0] / time[1] > 0.09, (name, dtype)


def test_mla_decode_reads_the_measured_table_by_kv_dtype_and_heads_per_gpu():
    """Issue 19: MLA decode runs at TensorRT-LLM's generation-MLA kernel rate, read by KV dtype
    at n_h / TP heads per GPU, in the workload model and in serve's step alike."""
    from planner.calc.serving.workload import serve_workload

    b200, h800 = catalog.load_hardware("b200"), catalog.load_hardware("h800")
    v3 = catalog.load_model("deepseek-v3")
    fp8 = b200.efficiency.mla_decode["fp8"]
    assert eff.mla_decode_flops_frac(b200, kv_dtype="fp8", heads_per_gpu=16) == 0.1524
    # 128 heads as measured (not capped by the slower 32-head point): 0.9501.
    assert eff.mla_decode_flops_frac(b200, kv_dtype="fp8", heads_per_gpu=128) == 0.9501
    assert fp8.frac[-1] == 0.9501
    assert eff.mla_decode_flops_frac(b200, kv_dtype="bf16", heads_per_gpu=128) < 0.6
    heads = eff.mla_decode_flops_frac(b200, kv_dtype="fp8", heads_per_gpu=np.array([16, 128]))
    assert heads.shape == (2,)
    assert eff.mla_decode_flop_per_s(v3, b200, kv_dtype="fp8", tp=8) == pytest.approx(
        2250e12 * 0.1524)
    assert eff.mla_decode_flop_per_s(v3, h800, kv_dtype="fp8", tp=8) is None   # no table
    assert eff.mla_decode_flop_per_s(catalog.load_model("llama-3.1-70b"), b200, kv_dtype="fp8",
                                     tp=8) is None                              # not MLA
    # The table moves the workload's decode step: halve it and attention-DP TPOT rises.
    import dataclasses

    half = dataclasses.replace(fp8, frac=tuple(f / 2 for f in fp8.frac))
    slow = dataclasses.replace(b200, efficiency=dataclasses.replace(
        b200.efficiency, mla_decode={"fp8": half, "bf16": b200.efficiency.mla_decode["bf16"]}))
    kw = dict(isl=4096, osl=1024, concurrency=256, attention_dp=8, weights_dtype="fp4",
              kv_dtype="fp8", engine=None)
    base, halved = (serve_workload(v3, hw, **kw) for hw in (b200, slow))
    assert float(halved.tpot_s) > float(base.tpot_s) * 1.01
    # BF16 KV reads the BF16 table (slower per FLOP at 128 heads).
    assert float(serve_workload(v3, b200, **{**kw, "kv_dtype": "bf16"}).tpot_s) > float(
        base.tpot_s)
    # serve's single decode step reads the same table.
    config = ServeConfig(gpus=8, ep=8, tp=1, batch_per_gpu=32, context_tokens=4096,
                         overlap="none", kv_dtype="fp8", weights_dtype="fp4")
    assert serve(v3, slow, config).step_s > serve(v3, b200, config).step_s


def test_an_engine_reads_its_own_weight_only_expert_kernel_where_the_spec_has_it():
    """Issue 20: vLLM runs weight-only 4-bit experts (Kimi-K2.5's INT4, gpt-oss's MXFP4 on
    Hopper) on its Marlin MoE kernel (engines/vllm.yaml ``weight_only_moe_table``), timed by
    AIConfigurator's vllm_marlin_moe collection (H100, H200: ``w4a16_marlin``); TensorRT-LLM's
    W4A16 MXFP4 kernel (``w4a16``) had stood in for it. Where the spec has no Marlin table
    (B200: its Kimi-K2.5 INT4 script selects FlashInfer's kernel) the ``w4a16`` table holds;
    FP8 experts read the same tables for every engine."""
    from planner.calc.serving.workload import serve_workload
    from planner.specs.load import load_engine

    h200, b200 = catalog.load_hardware("h200"), catalog.load_hardware("b200")
    assert "w4a16_marlin" in h200.efficiency.grouped_gemm
    marlin = eff.kernel_precision(h200, weights_dtype="int4", weight_only_moe_table="w4a16_marlin")
    assert (marlin.grouped_table, marlin.weight_only) == ("w4a16_marlin", True)
    assert eff.kernel_precision(h200, weights_dtype="int4").grouped_table == "w4a16"
    assert eff.kernel_precision(b200, weights_dtype="int4",
                                weight_only_moe_table="w4a16_marlin").grouped_table == "w4a16"
    assert eff.kernel_precision(h200, weights_dtype="fp8",
                                weight_only_moe_table="w4a16_marlin").grouped_table == "fp8_block"
    vllm = load_engine("vllm")
    assert vllm.weight_only_moe_table == "w4a16_marlin"
    plain = vllm.model_copy(update={"weight_only_moe_table": None})
    kimi, qwen = catalog.load_model("kimi-k2.5"), catalog.load_model("qwen3-235b-a22b")
    kw = dict(isl=1024, osl=1024, concurrency=np.array([4.0, 64.0]), tp=8, moe_tp=8, moe_ep=1)
    own = serve_workload(kimi, h200, vllm, weights_dtype="bf16", moe_weights_dtype="int4", **kw)
    trt = serve_workload(kimi, h200, plain, weights_dtype="bf16", moe_weights_dtype="int4", **kw)
    assert np.all(own.tpot_s < trt.tpot_s)      # Marlin's table: faster at these rows
    same = [serve_workload(qwen, h200, e, weights_dtype="fp8", **kw).tpot_s for e in (vllm, plain)]
    np.testing.assert_array_equal(same[0], same[1])


def test_prefill_attention_is_read_at_the_prompts_length():
    """The context-attention kernel's rate rises with the prompt (AIConfigurator B200 BF16: 321
    TFLOP/s at 1,024 tokens, 983 at 8,192); the prefill core reads it at 2 x the mean attended
    position (the prompt), not at the scalar's long-prompt median (932.6 TFLOP/s) for all."""
    from dataclasses import replace

    from planner.calc.serving.disagg_workload import PoolLayout, prefill_piece
    from planner.calc.serving.rates import prefill_attention_flop_per_s

    b200 = catalog.load_hardware("b200")
    assert eff.attention_prefill_flops_frac(b200, prompt_tokens=1024) == pytest.approx(0.1426)
    got = eff.attention_prefill_flops_frac(b200, prompt_tokens=np.array([256.0, 8192.0, 1e6]))
    assert got == pytest.approx([0.0382, 0.437, 0.5027])         # constant past the ends
    r = serving_rates(b200, phase="prefill", weights_dtype="fp8")
    assert r.attention == pytest.approx(2250e12 * 0.4145)
    at = prefill_attention_flop_per_s(r, prefill_context=np.array([512.0, 4096.0]))
    assert at == pytest.approx([2250e12 * 0.1426, 2250e12 * 0.437])
    # a spec without the table keeps the scalar for every prompt
    bare = replace(b200, efficiency=replace(b200.efficiency, attention_by_isl=None))
    plain = serving_rates(bare, phase="prefill", weights_dtype="fp8")
    assert plain.attention_isl_scale is None
    assert prefill_attention_flop_per_s(plain, prefill_context=512.0) == plain.attention
    # DeepSeek-V3 FP8 prefill of one 1K prompt per rank on 8 B200s (DEP8): slower with the
    # table (attention at 1K runs at a third of the long-prompt rate), faster at 16K. (MLA
    # models read their own kernel, ``mla_prefill``, where the spec has it (issue 22, mla11):
    # both specs here drop it, so that the MHA table's effect is what is compared.)
    model = catalog.load_model("deepseek-v3")
    mha = replace(b200, efficiency=replace(b200.efficiency, mla_prefill=None))
    bare = replace(bare, efficiency=replace(bare.efficiency, mla_prefill=None))
    lay = PoolLayout(workers=1, batch=1, tp=1, attention_dp=8, moe_tp=1, moe_ep=8)
    for isl, slower in ((1024.0, True), (16384.0, False)):
        t = [float(prefill_piece(model, hw, None, isl_tokens=isl, layout=lay,
                                 weights_dtype="fp8", moe_weights_dtype="fp8").time_s)
             for hw in (mha, bare)]
        assert (t[0] > t[1]) == slower and t[0] != t[1]


def test_serves_single_step_prefill_reads_attention_at_the_prompts_length():
    """`planner serve --phase prefill` (the block model) ran the prefill attention core at the
    scalar long-prompt factor (B200 BF16 x 0.4145 = 932.6 TFLOP/s) for every prompt while the
    workload model reads the kernel's measured rate at the prompt's length (321 TFLOP/s at
    1,024 tokens): the two disagreed by 2.9x on the same prompt. Both now read it; a spec
    without the table (H800) keeps the scalar."""
    model = catalog.load_model("llama-3.1-70b")
    b200, h800 = catalog.load_hardware("b200"), catalog.load_hardware("h800")
    for hw, prompt, frac in ((b200, 1024, 0.1426), (b200, 8192, 0.437), (b200, 65536, 0.5027),
                             (h800, 1024, None)):
        r = serve(model, hw, ServeConfig(phase="prefill", gpus=8, tp=8, batch_per_gpu=1024,
                                         context_tokens=int(prompt), overlap="none"))
        core = next(p for p in r.parts if p.name == "attention (core)")
        rate = serving_rates(hw, phase="prefill", weights_dtype="fp8").attention
        want = rate if frac is None else hw.peak_dense_flop_per_s("bf16") * frac
        assert core.flops / core.time_s == pytest.approx(want, rel=1e-3), (hw.name, prompt)


def test_mla_prefill_reads_the_context_mla_kernel_by_kv_dtype_and_prompt_length():
    """Issue 22: MLA models' prefill core runs at TensorRT-LLM's context-MLA kernel rate
    (``efficiency.mla_prefill``, by KV dtype and ISL), not the MHA context kernel's
    (``attention_by_isl``); devices without the table, and other models, keep the MHA rate."""
    import dataclasses

    from planner.calc.serving import workload_step as ws
    from planner.calc.serving.rates import prefill_attention_flop_per_s, with_mla_prefill

    h200, h800 = catalog.load_hardware("h200"), catalog.load_hardware("h800")
    v3, llama = catalog.load_model("deepseek-v3"), catalog.load_model("llama-3.1-70b")
    assert eff.mla_prefill_flops_frac(h200, kv_dtype="fp8", prompt_tokens=1024) == pytest.approx(0.2436)
    assert eff.mla_prefill_flops_frac(h200, kv_dtype="fp8", prompt_tokens=8192) == pytest.approx(0.6138)
    assert eff.mla_prefill_flops_frac(h200, kv_dtype="bf16", prompt_tokens=1024) == pytest.approx(0.3082)
    assert eff.mla_prefill_flops_frac(h200, kv_dtype="fp8",
                                      prompt_tokens=np.array([1024, 8192])).shape == (2,)
    assert eff.mla_prefill_flop_per_s(v3, h200, kv_dtype="fp8", prompt_tokens=1024) == \
        pytest.approx(989e12 * 0.2436)
    assert eff.mla_prefill_flop_per_s(v3, h800, kv_dtype="fp8", prompt_tokens=1024) is None
    assert eff.mla_prefill_flop_per_s(llama, h200, kv_dtype="fp8", prompt_tokens=1024) is None
    r = ws._rates(h200, phase="prefill", weights_dtype="fp8")
    mha = prefill_attention_flop_per_s(r, prefill_context=512.0)
    assert mha == pytest.approx(989e12 * 0.2187)              # the MHA table at 1,024 tokens
    mla = prefill_attention_flop_per_s(with_mla_prefill(r, v3, h200, kv_dtype="fp8"),
                                       prefill_context=512.0)
    assert mla == pytest.approx(989e12 * 0.2436)
    assert with_mla_prefill(r, llama, h200, kv_dtype="fp8") is r
    # The forward pass of an 8,192-token DeepSeek-V3 prompt on one H200 (attention DP) moves by
    # exactly the core's time at the two rates; Llama's does not move.
    bare = dataclasses.replace(h200, efficiency=dataclasses.replace(h200.efficiency,
                                                                    mla_prefill=None))
    lay = ws.Layout(tp=np.array(1), pp=np.array(1), adp=np.array(8), moe_tp=np.array(1),
                    moe_ep=np.array(8), tile=None)

    def pass_s(model, hw):
        fig = ws.model_figures(model, weights_dtype="fp8", moe_weights_dtype="fp8",
                               kv_dtype="fp8")
        t, _ = ws.forward_pass(model, hw, fig, r, lay, decode_seqs=np.array(0.0),
                               prefill_tokens=np.array(8192.0), decode_context=np.array(1.0),
                               prefill_context=np.array(4096.0), prompts=np.array(1.0),
                               lone_prefill=True)
        return float(t)

    core_flops = 61 * 8192 * 128 * 4096 * 2 * (192 + 128)
    mha_rate = 989e12 * eff.attention_prefill_flops_frac(h200, dtype="bf16", prompt_tokens=8192)
    assert pass_s(v3, bare) - pass_s(v3, h200) == pytest.approx(
        core_flops / mha_rate - core_flops / (989e12 * 0.6138), rel=1e-6)
    lay = dataclasses.replace(lay, adp=np.array(1), tp=np.array(8), moe_ep=np.array(1),
                              moe_tp=np.array(8))
    assert pass_s(llama, bare) == pass_s(llama, h200)
    # serve's prefill reads the same kernel.
    config = ServeConfig(gpus=8, ep=8, tp=1, batch_per_gpu=8192, context_tokens=8192,
                         phase="prefill", overlap="none", kv_dtype="fp8")
    assert serve(v3, h200, config).step_s < serve(v3, bare, config).step_s
