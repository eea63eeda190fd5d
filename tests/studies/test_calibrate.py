"""Calibration orchestration (planner/studies/calibrate.py) on a toy forward model whose true
parameters are known: recovery, the parameters the runs cannot see, cross-validation, the
override file, the overfitting warning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.studies import calibrate as cal


@dataclasses.dataclass(frozen=True)
class Bound:
    min: float
    max: float
    source: str


@dataclasses.dataclass(frozen=True)
class Overheads:
    decode_step_overhead_s: Bound
    prefill_overhead_s: Bound
    request_overhead_s: Bound


@dataclasses.dataclass(frozen=True)
class ToyEngine:
    name: str = "toy"
    decode_step_overhead_s: float = 0.0005
    prefill_overhead_s: float = 0.002
    request_overhead_s: float = 0.01
    overheads: Overheads = Overheads(Bound(0, 0.02, "d"), Bound(0, 0.1, "p"), Bound(0, 0.5, "r"))


#: 12 runs: GPU decode step 5..27 ms, prefill 50..600 ms
GPU_STEP_S = np.linspace(0.005, 0.027, 12)
GPU_PREFILL_S = np.linspace(0.05, 0.6, 12)


def toy_forward(values):
    ttft = GPU_PREFILL_S + values["engine.prefill_overhead_s"] + values["engine.request_overhead_s"]
    tpot = GPU_STEP_S + values["engine.decode_step_overhead_s"]
    return np.stack([ttft, tpot])


TRUTH = {"engine.decode_step_overhead_s": 0.003, "engine.prefill_overhead_s": 0.0,
         "engine.request_overhead_s": 0.04}


def test_engine_parameters_read_bounds_and_sources():
    params = cal.engine_parameters(ToyEngine())
    assert [(p.name, p.default, p.lower, p.upper, p.source) for p in params] == [
        ("engine.decode_step_overhead_s", 0.0005, 0, 0.02, "d"),
        ("engine.prefill_overhead_s", 0.002, 0, 0.1, "p"),
        ("engine.request_overhead_s", 0.01, 0, 0.5, "r")]


def test_hardware_parameters_are_scales_up_to_the_peak():
    params = {p.name: p for p in cal.hardware_parameters(catalog.load_hardware("h800"))}
    hbm = params["hardware.efficiency.hbm_bandwidth"]
    # default fraction 0.9: a scale of 1 by default, 0.5 at least, 1 / 0.9 = 1.111 at most
    assert (hbm.default, hbm.lower, hbm.upper, hbm.base) == (1.0, 0.5, pytest.approx(1 / 0.9),
                                                             0.9)
    # measured tables (h200) scale as one class per kind, up to the peak of the highest point
    h200 = catalog.load_hardware("h200")
    tables = {p.name: p for p in cal.hardware_parameters(h200)}
    top = max(max(t.frac) for t in h200.efficiency.gemm.values())
    assert tables["hardware.efficiency.gemm"].upper == pytest.approx(1 / top)


def test_recovers_the_overheads_and_names_the_one_it_cannot_see():
    measured = toy_forward(TRUTH)
    c = cal.calibrate(forward=toy_forward, parameters=cal.engine_parameters(ToyEngine()),
                      measured=measured)
    # prefill and request overheads add to TTFT alike: one of them is left at its default
    assert len(c.fitted) == 2 and "engine.decode_step_overhead_s" in c.fitted
    (name, why), = c.unseen
    assert name in ("engine.prefill_overhead_s", "engine.request_overhead_s")
    assert why.startswith("moves the runs as engine.")
    assert c.values["engine.decode_step_overhead_s"] == pytest.approx(0.003, rel=1e-4)
    kept = [n for n in c.fitted if n != "engine.decode_step_overhead_s"][0]
    # the TTFT overhead fitted absorbs both: 0.04 + 0 - (the default of the other)
    other_default = 0.002 if name == "engine.prefill_overhead_s" else 0.01
    assert c.values[kept] == pytest.approx(0.04 - other_default, rel=1e-4)
    assert c.median_error_pct("after") < 1e-3
    assert c.median_error_pct("before") > 5
    assert c.median_error_pct("loo") < 1e-2


def test_loo_shows_what_a_fit_cannot_generalise():
    # noise of +-20% on TPOT: in-sample error below leave-one-out error
    rng = np.random.default_rng(0)
    measured = toy_forward(TRUTH) * np.exp(rng.normal(0, 0.2, (2, 12)))
    c = cal.calibrate(forward=toy_forward, parameters=cal.engine_parameters(ToyEngine()),
                      measured=measured, groups=np.repeat([0, 1, 2], 4))
    assert c.median_error_pct("loo") >= c.median_error_pct("after")
    assert np.isfinite(c.median_error_pct("logo"))
    assert c.logo is not None and c.loo is not None


def test_rows_limit_the_fit_and_held_out_rows_are_predicted():
    measured = toy_forward(TRUTH)
    half = np.arange(12) < 6
    c = cal.calibrate(forward=toy_forward, parameters=cal.engine_parameters(ToyEngine()),
                      measured=measured, rows=half, loo=False)
    assert c.loo is None
    assert c.median_error_pct("after", rows=~half) < c.median_error_pct("before", rows=~half)


def test_overrides_file_of_the_fit(tmp_path):
    from planner.specs.overrides import load_overrides, overrides_yaml

    c = cal.calibrate(forward=toy_forward, parameters=cal.engine_parameters(ToyEngine()),
                      measured=toy_forward(TRUTH), loo=False)
    ov = cal.overrides_for(c, hardware="h200", engine="toy", runs_file="mine.csv",
                           ids=[f"r{i}" for i in range(12)], created="2026-11-30")
    assert {f"engine.{k}" for k in ov.engines["toy"]} == set(c.fitted)
    assert ov.hardware == {}
    p = tmp_path / "o.yaml"
    p.write_text(overrides_yaml(ov))
    back = load_overrides(p)
    assert back.engines["toy"]["decode_step_overhead_s"] == 0.003
    assert back.runs.rows == 12 and back.fit["in_sample_error_pct"] < 0.01


def test_overfit_warning_at_two_points():
    assert cal.overfit_warning(before_pct=10.0, after_pct=11.9, what="x") is None
    msg = cal.overfit_warning(before_pct=10.0, after_pct=12.5, what="9 other runs")
    assert msg is not None and "overfits" in msg and "10.0% to 12.5%" in msg
