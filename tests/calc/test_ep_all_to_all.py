"""The MoE all-to-all's measured fixed time per layer over the scale-up domain (issue 22,
round 12): GB200's TensorRT-LLM all-to-all kernels take 36-52 µs per layer at a few tokens per
rank (AIConfigurator's table), where the bytes over NVLink take about 3 µs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving.communication import ep_all_to_all_latency_s
from planner.calc.serving.disagg_workload import PoolLayout, decode_piece

DT = dict(weights_dtype="fp8", moe_weights_dtype=None, kv_dtype="fp8")


@pytest.fixture(scope="module")
def gb200():
    return catalog.load_hardware("gb200-nvl72")


def _without_table(hardware):
    return dataclasses.replace(hardware, scale_up=dataclasses.replace(hardware.scale_up,
                                                                      ep_all_to_all=None))


def test_the_latency_is_read_from_the_table_in_log_ep(gb200):
    at = ep_all_to_all_latency_s(gb200, ep=np.array([1, 2, 4, 24, 32, 64, 128]))
    # EP 1 exchanges nothing; below and above the table its end points; EP 24 between 16 and 32
    # (44.1 and 42.1 µs) at log2(24 / 16) = 0.585 of the way
    assert at == pytest.approx(np.array([0.0, 36.2, 36.2, 42.93, 42.1, 52.4, 52.4]) * 1e-6,
                               abs=0.01e-6)
    assert float(ep_all_to_all_latency_s(catalog.load_hardware("h200"), ep=32)) == 0.0
    assert float(ep_all_to_all_latency_s(_without_table(gb200), ep=32)) == 0.0


def test_the_gb200_table_is_the_measured_one_with_its_source(gb200):
    table = gb200.scale_up.ep_all_to_all
    assert table.ep == (4.0, 8.0, 16.0, 32.0, 64.0)
    assert "trtllm_alltoall_perf.parquet" in table.source
    assert "alltoall_prepare + alltoall_dispatch + alltoall_combine" in table.reduction


def test_a_wide_attention_dp_decode_step_pays_it_once_per_moe_layer(gb200):
    """DeepSeek-V3 FP8 on a DEP32 decode worker at 8 requests per rank: each of the 58 MoE
    layers adds the EP 32 latency (42.1 µs), 2.44 ms per step; attention TP (no all-to-all)
    and a device without the table do not move."""
    v3 = catalog.load_model("deepseek-v3")
    dep32 = PoolLayout(workers=1, batch=8, attention_dp=32)
    kw = dict(isl_tokens=1024, osl_tokens=1024, **DT)
    with_table = decode_piece(v3, gb200, None, layout=dep32, **kw).time_s
    without = decode_piece(v3, _without_table(gb200), None, layout=dep32, **kw).time_s
    moe_layers = v3.num_layers - v3.ffn.num_dense_layers
    assert moe_layers == 58
    assert float(with_table - without) == pytest.approx(58 * 42.1e-6, rel=1e-9)
    tep8 = PoolLayout(workers=1, batch=8, tp=8, moe_tp=1, moe_ep=8)
    assert float(decode_piece(v3, gb200, None, layout=tep8, **kw).time_s) == float(
        decode_piece(v3, _without_table(gb200), None, layout=tep8, **kw).time_s)


def test_overlap_hides_the_latency_with_the_bytes(gb200):
    """Two micro-batches hide the all-to-all whole (its fixed time is communication too): with
    overlap the step is max(kernels, communication), and the kernels do not hold the table."""
    v3 = catalog.load_model("deepseek-v3")
    dep32 = PoolLayout(workers=1, batch=64, attention_dp=32)
    kw = dict(isl_tokens=1024, osl_tokens=1024, overlap=True, **DT)
    with_table = float(decode_piece(v3, gb200, None, layout=dep32, **kw).time_s)
    without = float(decode_piece(v3, _without_table(gb200), None, layout=dep32, **kw).time_s)
    plain = float(decode_piece(v3, gb200, None, layout=dep32, isl_tokens=1024,
                               osl_tokens=1024, **DT).time_s)
    assert without <= with_table < plain


@pytest.mark.parametrize("bad, message", [
    (dict(ep=[8, 4], latency_us=[1.0, 2.0]), "ep must increase"),
    (dict(ep=[4, 8], latency_us=[1.0]), "of one length"),
])
def test_a_malformed_table_is_refused(bad, message):
    from planner.specs.hardware import AllToAllLatency

    with pytest.raises(ValueError, match=message):
        AllToAllLatency(source="s", reduction="r", **bad)
