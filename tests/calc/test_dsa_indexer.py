"""DeepSeek Sparse Attention's lightning indexer in the decode step (issue 22, round 13): GB200's
TensorRT-LLM DSA module runs 28-86 µs a layer over the MLA module at the same shape
(AIConfigurator's tables, ``dsa_indexer_decode`` in hardware/gb200-nvl72.yaml), a time the
roofline of the indexer's FLOPs and FP8 keys (under 1 µs a layer) misses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.calc.attention import dsa_indexer_decode_s, dsa_indexer_prefill_s, time_grid_s
from planner.calc.serving.disagg_workload import PoolLayout, decode_piece, prefill_piece
from planner.specs.kernel_times import TimeGrid

US = 1e-6
NVFP4 = dict(weights_dtype="nvfp4", moe_weights_dtype=None, kv_dtype="fp8")


@pytest.fixture(scope="module")
def gb200():
    return catalog.load_hardware("gb200-nvl72")


@pytest.fixture(scope="module")
def glm5():
    return catalog.load_model("glm-5")


def _without_table(hardware):
    return dataclasses.replace(hardware, dsa_indexer_decode=None, dsa_indexer_prefill=None)


def test_the_grid_is_read_in_log_batch_and_log_context(gb200):
    grid = gb200.dsa_indexer_decode
    # on the points; halfway in log C between 1,024 and 4,096 (30.4, 66.8 µs); past the ends
    at = time_grid_s(grid, batch=8, context_tokens=np.array([8192, 2048, 1e6, 1]))
    assert at == pytest.approx(np.array([72.2, 48.6, 89.7, 30.4]) * US, abs=1e-9)
    # B = 12 at log2(12 / 8) = 0.585 between 72.2 (B 8) and 75.5 µs (B 16)
    assert float(time_grid_s(grid, batch=12, context_tokens=8192)) == pytest.approx(
        (72.2 + 0.585 * 3.3) * US, abs=0.01 * US)
    # below one sequence the B = 1 row, above the grid its last row
    assert time_grid_s(grid, batch=np.array([0.5, 4096]), context_tokens=8192) == pytest.approx(
        np.array([63.1, 437.7]) * US, abs=1e-9)


def test_every_dsa_layer_pays_it_and_nothing_else_does(gb200, glm5):
    assert glm5.num_layers == 78
    assert float(dsa_indexer_decode_s(glm5, gb200, seqs=8, context_tokens=8192)) == (
        pytest.approx(78 * 72.2 * US))
    assert dsa_indexer_decode_s(glm5, gb200, seqs=np.array([0, 8]), context_tokens=8192) == (
        pytest.approx(np.array([0.0, 78 * 72.2 * US])))
    v3 = catalog.load_model("deepseek-v3")
    assert float(dsa_indexer_decode_s(v3, gb200, seqs=8, context_tokens=8192)) == 0.0
    h200 = catalog.load_hardware("h200")
    assert float(dsa_indexer_decode_s(glm5, h200, seqs=8, context_tokens=8192)) == 0.0


def test_the_gb200_table_is_the_measured_one_with_its_source(gb200):
    grid = gb200.dsa_indexer_decode
    assert grid.batch[0] == 1 and grid.batch[-1] == 1024
    assert "dsa_generation_module_perf.parquet" in grid.source
    assert "mla_generation_module_perf.parquet" in grid.source
    assert "min(context, 2048)" in grid.reduction
    # not an efficiency factor: a device inheriting gb200's factors would not take it
    assert "dsa_indexer_decode" not in gb200.efficiency.given()


def test_a_glm5_decode_step_adds_the_indexer_time(gb200, glm5):
    """GLM-5 NVFP4 on a TEP4 decode worker of 8 requests (8K / 1K): the step gains 78 layers of
    the indexer's time at 8 sequences and the mean context 8,192 + 512; DeepSeek-V3 does not
    move."""
    tep4 = PoolLayout(workers=1, batch=8, tp=4, moe_tp=1, moe_ep=4)
    kw = dict(isl_tokens=8192, osl_tokens=1024, layout=tep4, **NVFP4)
    with_table = float(decode_piece(glm5, gb200, None, **kw).time_s)
    without = float(decode_piece(glm5, _without_table(gb200), None, **kw).time_s)
    expected = float(dsa_indexer_decode_s(glm5, gb200, seqs=8, context_tokens=8192 + 512))
    assert expected > 5e-3
    assert with_table - without == pytest.approx(expected, rel=1e-9)
    v3 = catalog.load_model("deepseek-v3")
    assert float(decode_piece(v3, gb200, None, **kw).time_s) == float(
        decode_piece(v3, _without_table(gb200), None, **kw).time_s)


def test_prefill_pays_the_prompts_share_of_the_measured_time(gb200, glm5):
    """One 8,192-token prompt: 78 layers × 2,604.2 µs; a 4,096-token chunk of it half of that;
    two prompts the B = 2 row (5,078.2 µs a layer); no prefill tokens, no model without DSA."""
    one = float(dsa_indexer_prefill_s(glm5, gb200, prefill_tokens=8192, prompt_tokens=8192))
    assert one == pytest.approx(78 * 2604.2 * US)
    assert float(dsa_indexer_prefill_s(glm5, gb200, prefill_tokens=4096,
                                       prompt_tokens=8192)) == pytest.approx(one / 2)
    assert float(dsa_indexer_prefill_s(glm5, gb200, prefill_tokens=16384,
                                       prompt_tokens=8192)) == pytest.approx(78 * 5078.2 * US)
    assert float(dsa_indexer_prefill_s(glm5, gb200, prefill_tokens=0, prompt_tokens=8192)) == 0
    v3 = catalog.load_model("deepseek-v3")
    assert float(dsa_indexer_prefill_s(v3, gb200, prefill_tokens=8192, prompt_tokens=8192)) == 0


def test_a_glm5_prefill_adds_the_indexer_time(gb200, glm5):
    """GLM-5 NVFP4, one 8,192-token prompt per rank of a DEP4 prefill worker: the pass gains
    the indexer's measured time at B = 1, S = 8,192 (203 ms); DeepSeek-V3 does not move."""
    dep4 = PoolLayout(workers=1, batch=1, attention_dp=4)
    kw = dict(isl_tokens=8192, layout=dep4, **NVFP4)
    with_table = float(prefill_piece(glm5, gb200, None, **kw).time_s)
    without = float(prefill_piece(glm5, _without_table(gb200), None, **kw).time_s)
    expected = float(dsa_indexer_prefill_s(glm5, gb200, prefill_tokens=8192, prompt_tokens=8192))
    assert with_table - without == pytest.approx(expected, rel=1e-9)
    v3 = catalog.load_model("deepseek-v3")
    assert float(prefill_piece(v3, gb200, None, **kw).time_s) == float(
        prefill_piece(v3, _without_table(gb200), None, **kw).time_s)


@pytest.mark.parametrize("bad, message", [
    (dict(batch=[2, 1], context=[1], latency_us=[[1.0], [1.0]]), "batch must"),
    (dict(batch=[1], context=[4, 2], latency_us=[[1.0, 1.0]]), "context must"),
    (dict(batch=[1, 2], context=[1, 2], latency_us=[[1.0, 1.0]]), "2 rows"),
    (dict(batch=[1], context=[1, 2], latency_us=[[1.0]]), "of 2 values"),
])
def test_a_malformed_grid_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        TimeGrid(source="s", reduction="r", **bad)


def test_a_hardware_file_with_a_bad_grid_names_the_field(tmp_path):
    from planner.errors import PlannerError

    text = (catalog.resolve("hardware", "gb200-nvl72")).read_text()
    bad = text.replace("    - [28.4, 30.1, 27.2, 62.0, 63.1, 72.3, 75.2]\n",
                       "    - [28.4, 30.1, 27.2, 62.0, 63.1, 72.3]\n")
    assert bad != text
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(PlannerError, match="dsa_indexer_decode"):
        catalog.load_hardware(str(path))


def test_the_single_step_roofline_shows_the_indexer_as_a_part(gb200, glm5):
    """planner serve --phase decode: GLM-5 on a TEP4 decode step of 2 sequences per GPU at
    8,700 tokens: the step holds a "DSA indexer (measured)" part of the TP group's 8 rows over
    8,700 tokens (78 × 72.96 µs), and is that much longer than without the tables; prefill
    reads the prefill table; DeepSeek-V3 has no such part."""
    from planner.calc import serving
    from planner.calc.serving.step import DSA_INDEXER
    from planner.specs.deployment import ServeConfig

    cfg = ServeConfig(gpus=4, tp=4, ep=4, batch_per_gpu=2, context_tokens=8700,
                      weights_dtype="nvfp4", kv_dtype="fp8", overlap="none")
    got = serving.serve(glm5, gb200, cfg)
    part = {p.name: p for p in got.parts}[DSA_INDEXER]
    expected = float(dsa_indexer_decode_s(glm5, gb200, seqs=8, context_tokens=8700))
    assert part.time_s == pytest.approx(expected) and part.bound == "memory"
    assert expected == pytest.approx(78 * 72.96 * US, rel=1e-3)
    without = serving.serve(glm5, _without_table(gb200), cfg)
    assert DSA_INDEXER not in {p.name for p in without.parts}
    assert got.step_s - without.step_s == pytest.approx(expected, rel=1e-9)
    pre = dataclasses.replace(cfg, phase="prefill", batch_per_gpu=8192, context_tokens=8192)
    prefill = {p.name: p for p in serving.serve(glm5, gb200, pre).parts}[DSA_INDEXER]
    assert prefill.time_s == pytest.approx(float(dsa_indexer_prefill_s(
        glm5, gb200, prefill_tokens=4 * 8192, prompt_tokens=8192)))
    v3 = catalog.load_model("deepseek-v3")
    assert DSA_INDEXER not in {p.name for p in serving.serve(v3, gb200, cfg).parts}
