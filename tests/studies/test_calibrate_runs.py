"""Calibration through the workload model (planner/studies/calibrate_runs.py,
engine_calibration.py): the forward model of a set of runs, parameters that move it, the engine
YAML rewrite and the error bands' entries."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.specs.load import load_engine
from planner.studies import calibrate as cal
from planner.studies.calibrate_runs import RunSet, group_labels, run_forward, runs_not_fitted
from planner.studies.engine_calibration import engine_yaml_with, regime_bands

N = 6


def llama_runs(engine="sglang", hardware="h200"):
    return RunSet(
        ids=np.array([f"r{i}" for i in range(N)]),
        model=np.array(["llama-3.1-70b"] * N, dtype=object),
        hardware=np.array([hardware] * N, dtype=object),
        engine=np.array([engine] * N, dtype=object),
        weights_dtype=np.array(["fp8"] * N, dtype=object),
        moe_weights_dtype=np.array([None] * N, dtype=object),
        isl=np.array([1024, 1024, 4096, 4096, 8192, 1024]), osl=np.full(N, 1024),
        concurrency=np.array([1, 8, 16, 64, 4, 128]), tp=np.array([8, 8, 4, 4, 8, 8]),
        pp=np.ones(N, int), attention_dp=np.ones(N, int), moe_tp=np.array([8, 8, 4, 4, 8, 8]),
        moe_ep=np.ones(N, int), measured=np.ones((2, N)), recv_interval=np.zeros(N, int),
        max_running=np.zeros(N, int), kv_fp8=np.zeros(N, int), max_num_tokens=np.zeros(N))


def params():
    return (cal.engine_parameters(load_engine("sglang"))
            + cal.hardware_parameters(catalog.load_hardware("h200")))


def test_forward_moves_with_the_parameters():
    f = run_forward(llama_runs())
    base = {p.name: p.default for p in params()}
    y0 = f(base)
    assert y0.shape == (2, N) and np.all(np.isfinite(y0)) and np.all(y0 > 0)
    # 40 ms more per request: every TTFT 40 ms more, TPOT unchanged
    more = dict(base, **{"engine.request_overhead_s": base["engine.request_overhead_s"] + 0.04})
    y1 = f(more)
    np.testing.assert_allclose(y1[0] - y0[0], 0.04, rtol=1e-6)
    np.testing.assert_allclose(y1[1], y0[1])
    # HBM at 80% of its default efficiency: no prediction faster, the decode steps slower
    slow = dict(base, **{"hardware.efficiency.hbm_bandwidth": 0.8,
                         "hardware.efficiency.gemm_weight_bandwidth": 0.8})
    y2 = f(slow)
    assert np.all(y2 >= y0 - 1e-12) and np.all(y2[1] > y0[1])


def test_calibrating_on_its_own_predictions_scaled():
    # runs measured 30% slower in TTFT and 20% in TPOT than the defaults predict: errors
    # 1/1.3 - 1 = -23.1% (6 values) and 1/1.2 - 1 = -16.7% (6), median 19.9%; the calibration
    # brings it to a few percent, and names what it cannot see
    runs = llama_runs()
    f = run_forward(runs)
    p = params()
    measured = f({q.name: q.default for q in p}) * np.array([[1.3], [1.2]])
    c = cal.calibrate(forward=f, parameters=p, measured=measured)
    assert c.median_error_pct("before") == pytest.approx(50 * (0.3 / 1.3 + 0.2 / 1.2))
    assert c.median_error_pct("after") < 3
    assert c.median_error_pct("loo") < 10
    assert "engine.request_overhead_s" in c.fitted
    unseen = dict(c.unseen)
    # a dense model has no grouped GEMM; SGLang's overlap scheduler hides the per-step host time
    assert unseen["hardware.efficiency.grouped_gemm"] == "changes no prediction of these runs"


def test_runs_not_fitted_and_groups():
    shipped = llama_runs()
    fitted = shipped.subset(np.array([True, True, False, False, False, False]))
    others = runs_not_fitted(shipped, fitted)
    # r0, r1 are tp8; of the rest r2, r3 are tp4 (another layout), r4, r5 tp8 (the same)
    assert list(others.ids) == ["r2", "r3"]
    assert list(runs_not_fitted(shipped, fitted, layouts=False).ids) == ["r2", "r3", "r4", "r5"]
    assert group_labels(shipped, ("model",)) is None
    assert len(set(group_labels(shipped, ("layout",)))) == 2


def test_regime_bands():
    runs = llama_runs()
    pred = np.vstack([np.full(N, 1.1), np.array([1.0, 1.0, 1.2, 1.2, 1.5, 0.5])])
    (band,) = regime_bands(runs, pred, cv=pred * 1.0)
    assert band["hardware"] == "h200" and band["mode"] == "aggregated" and band["runs"] == N
    assert band["ttft_median_error_pct"] == 10.0
    # |errors| 0, 0, 20, 20, 50, 50: median 20
    assert band["tpot_median_error_pct"] == 20.0 and band["tpot_cv_median_error_pct"] == 20.0


ENGINE_YAML = """name: e
decode_step_overhead_s: 0.0005
request_overhead_s: 0.01
overheads:
  decode_step_overhead_s:
    min_s: 0.0
    source: uncalibrated
  request_overhead_s:
    min_s: 0.0
    source: >-
      two
      lines
"""


def test_engine_yaml_rewrite():
    out = engine_yaml_with(ENGINE_YAML, {"request_overhead_s": 0.0234567891}, "calibrated by x")
    assert "request_overhead_s: 0.0234568\n" in out
    assert out.endswith("    min_s: 0.0\n    source: >-\n      calibrated by x\n")
    assert "source: uncalibrated" in out      # the other field's source is kept
    with pytest.raises(ValueError):
        engine_yaml_with(ENGINE_YAML, {"prefill_overhead_s": 0.1}, "x")


def test_engine_yaml_rewrite_writes_numbers_yaml_reads_as_numbers():
    # a fit at its floor gives a round value: "2e-10" is text to YAML 1.1 (the engine spec
    # then refused it, exit 2); it is written 2.0e-10
    import yaml

    out = engine_yaml_with(ENGINE_YAML, {"decode_step_overhead_s": 2e-10,
                                         "request_overhead_s": 3e12}, "x")
    spec = yaml.safe_load(out)
    assert spec["decode_step_overhead_s"] == 2e-10
    assert spec["request_overhead_s"] == 3e12
    assert "decode_step_overhead_s: 2.0e-10\n" in out


def test_half_of_the_h200_sglang_runs_predicts_the_other_half_better():
    """Issue 25 must-show: calibrating on half of the H200 · SGLang rows lowers the median error
    on the other half (figures in the report: 32.1% -> 14.2% when written)."""
    from planner.specs.runs import read_runs
    from planner.studies.engine_calibration import half_split

    s = half_split(read_runs(catalog.SERVING_RUNS_CSV), hardware="h200", engine="sglang")
    assert s["runs_fitted"] >= 40 and s["runs_held_out"] >= 40
    # at least a fifth off (it was "5 points" while the uncalibrated half sat at 30-32%; the
    # model's own error on it is 22.0% since round 13, calibrated 17.0%); round 15 merged (the
    # MLA decode fixed time, the routed experts' skew, the engines recalibrated): 22.4% ->
    # 16.9% (hopdec15 alone had 20.5% -> 16.9%, 0.82 of it, and loosened this to 0.85; the
    # merged model clears 0.8 again, kept)
    assert s["held_out_after_pct"] < 0.8 * s["held_out_before_pct"]
    assert s["held_out_after_pct"] == pytest.approx(16.86, abs=0.05)
