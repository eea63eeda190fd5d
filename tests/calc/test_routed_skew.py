"""Issue 22 round 15 (fp8ctx15): the routed experts at AIConfigurator's skewed (power-law)
routing, the time of the most-loaded EP rank, over its balanced runs (``efficiency.routed_skew``):
from 32 rows per expert, the prefill passes' regime."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving import workload_step as ws
from planner.calc.serving.kernels import (SKEW_MIN_ROWS_PER_EXPERT, hottest_rank_expert_rows,
                                          routed_skew_factor)
from planner.specs.kernel_times import SkewGrid

B200 = catalog.load_hardware("b200")
GRID = SkewGrid(ep=(2, 8), rows=(32, 512), factor=((0.8, 1.2), (1.0, 2.0)), source="s",
                reduction="r")


def test_the_grid_is_read_in_log_ep_and_log_rows_from_32_rows_per_expert():
    assert routed_skew_factor(GRID, ep=8, rows=512) == pytest.approx(2.0)
    assert routed_skew_factor(GRID, ep=4, rows=512) == pytest.approx(1.6)   # halfway in log EP
    assert routed_skew_factor(GRID, ep=8, rows=128) == pytest.approx(1.5)   # halfway in log r
    assert routed_skew_factor(GRID, ep=64, rows=4096) == pytest.approx(2.0)  # past the ends
    # below 32 rows per expert the random-routing reading stands; a ratio below 1 reads as 1
    assert routed_skew_factor(GRID, ep=8, rows=SKEW_MIN_ROWS_PER_EXPERT / 2) == 1.0
    assert routed_skew_factor(GRID, ep=2, rows=32) == 1.0
    assert routed_skew_factor(None, ep=8, rows=512) == 1.0
    got = routed_skew_factor(GRID, ep=np.array([8, 8, 2]), rows=np.array([512.0, 16.0, 512.0]))
    assert np.allclose(got, [2.0, 1.0, 1.2])


def test_a_grid_that_does_not_fit_its_axes_is_refused():
    with pytest.raises(ValueError, match="factor must hold 2 rows"):
        SkewGrid(ep=(2, 8), rows=(32, 512), factor=((1.0, 1.0),), source="s", reduction="r")
    with pytest.raises(ValueError, match="ep must increase"):
        SkewGrid(ep=(8, 2), rows=(32, 512), factor=((1.0, 1.0), (1.0, 1.0)), source="s",
                 reduction="r")


def test_b200s_fp8_block_experts_at_ep_8_take_the_power_law_runs_ratio():
    # hardware/b200.yaml routed_skew.fp8_block (benchmarks/extract_aic_kernels.py): EP 8 row
    assert hottest_rank_expert_rows(B200, "fp8", mean_rows=512.0, tile_rows=None,
                                    ep=8) == pytest.approx(512 * 1.637)
    assert hottest_rank_expert_rows(B200, "fp8", mean_rows=16.0, tile_rows=None, ep=8) == 16.0
    # NVFP4 at EP 4: the power-law runs are no slower than the balanced ones (0.91): as before
    assert hottest_rank_expert_rows(B200, "nvfp4", mean_rows=512.0, tile_rows=None,
                                    ep=4) == 512.0


def _pass_routed_ms(hardware, *, weights, adp, tokens_per_rank):
    model = catalog.load_model("deepseek-v3")
    fig = ws.model_figures(model, weights_dtype=weights, moe_weights_dtype=weights,
                           kv_dtype="fp8")
    lay = ws.Layout(tp=np.array(1), pp=np.array(1), adp=np.array(adp), moe_tp=np.array(1),
                    moe_ep=np.array(adp), tile=None)
    rates = replace(ws._rates(hardware, phase="prefill", weights_dtype=weights),
                    prefill_prompt_tokens=np.array(1024.0))
    seen = []
    roof = ws._Buckets.roof

    def recording(self, *a, **k):
        t = roof(self, *a, **k)
        seen.append(float(np.max(t)))
        return t

    ws._Buckets.roof = recording
    try:
        ws.forward_pass(model, hardware, fig, rates, lay, decode_seqs=np.array(0.0),
                        prefill_tokens=np.array(float(tokens_per_rank)),
                        decode_context=np.array(1.0), prefill_context=np.array(512.0),
                        prompts=np.array(tokens_per_rank / 1024))
    finally:
        ws._Buckets.roof = roof
    # roofs in order: attention (3), dense FFN (2), MoE router, shared, routed, ...
    return seen[7] / fig.moe_layers * 1e3


@pytest.mark.parametrize("hw,weights,adp,before,table", [
    # AIConfigurator moe_perf (TensorRT-LLM 1.3.0rc20), DeepSeek-V3's experts, 16,384 tokens
    # through the EP group: balanced / power_law_1.01 (benchmarks/deepseek_prefill_parts.py)
    ("b200", "fp8", 8, 0.950, (0.855, 1.399)),
    ("gb200-nvl72", "fp8", 8, 0.909, (0.818, 1.328)),
    ("h200", "fp8", 8, 2.814, (2.499, 4.010)),
])
def test_the_fp8_prefill_experts_move_to_the_power_law_runs(hw, weights, adp, before, table):
    hardware = catalog.load_hardware(hw)
    balanced = replace(hardware, efficiency=replace(hardware.efficiency, routed_skew=None))
    old = _pass_routed_ms(balanced, weights=weights, adp=adp, tokens_per_rank=16384 // adp)
    new = _pass_routed_ms(hardware, weights=weights, adp=adp, tokens_per_rank=16384 // adp)
    assert old == pytest.approx(before, abs=0.002)
    bal, power_law = table
    # before: near the balanced run (the table's reading); now: near the power-law run
    assert abs(old / bal - 1) < 0.15 and abs(old / power_law - 1) > 0.25
    assert abs(new / power_law - 1) < 0.15


def test_the_nvfp4_prefill_experts_at_ep_4_do_not_move():
    # B200 NVFP4, EP 4, 16,384 tokens: balanced 1.730, power-law 1.592 ms (no slower)
    balanced = replace(B200, efficiency=replace(B200.efficiency, routed_skew=None))
    assert _pass_routed_ms(B200, weights="nvfp4", adp=4, tokens_per_rank=4096) == pytest.approx(
        _pass_routed_ms(balanced, weights="nvfp4", adp=4, tokens_per_rank=4096), rel=1e-12)


def test_show_lists_the_skew_grids():
    from planner.report.catalog import hardware_detail_tables

    _, eff = hardware_detail_tables(B200)
    row = next(r for r in eff.rows if r[0] == "routed_skew")
    assert "fp8_block x0.948-2.158" in row[1] and "moe_perf" in row[2]
    rec = eff.rows and hardware_detail_tables(B200)[0].records[0]["efficiency"]["routed_skew"]
    assert rec["tables"]["fp8_block"]["ep"] == [1, 2, 4, 8, 16, 32]
