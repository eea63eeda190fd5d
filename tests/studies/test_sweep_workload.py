"""planner sweep with the workload model's metrics: the same numbers as serve_workload point by
point, NaN (n/a) where a point does not fit, workload variables only with workload metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.calc.serving.workload import serve_workload
from planner.catalog import load_hardware, load_model
from planner.errors import UsageError
from planner.specs.load import load_engine
from planner.studies.sweep import records, run_sweep
from tests_support import cli_json, cli_run


def test_sweep_gives_serve_workloads_numbers_point_by_point():
    model, hw, engine = load_model("deepseek-v3"), load_hardware("h200"), load_engine("sglang")
    r = run_sweep(model, hw, "tpot_s", ["concurrency=8,64,512,100000", "attention_dp=1,8"],
                  engine=engine)
    assert r.values.shape == (4, 2)
    for i, c in enumerate((8, 64, 512, 100000)):
        for j, a in enumerate((1, 8)):
            one = serve_workload(model, hw, engine, isl=1024, osl=1024, concurrency=c,
                                 attention_dp=a)
            if bool(one.fits):
                assert r.values[i, j] == pytest.approx(float(one.tpot_s), rel=1e-12)
            else:
                assert math.isnan(r.values[i, j])
    assert np.isnan(r.values).any() and np.isfinite(r.values).any()
    assert len(list(records(r))) == 8


def test_cli_sweep_of_a_workload_metric():
    recs = cli_json("sweep", "deepseek-v3", "-H", "h200", "-m", "tokens_per_s_per_gpu",
                    "--vary", "concurrency=1:1024:log5", "--vary", "attention_dp=8",
                    "--engine", "sglang")
    values = [r["tokens_per_s_per_gpu"] for r in recs]
    assert len(values) == 5 and values == sorted(values)
    table = cli_run("sweep", "deepseek-v3", "-H", "h200", "-m", "tpot_s", "--vary",
                    "concurrency=8,100000")
    assert table.exit_code == 0 and "n/a (does not fit)" in table.stdout


def test_workload_variables_need_a_workload_metric():
    model, hw = load_model("deepseek-v3"), load_hardware("h200")
    with pytest.raises(UsageError, match="workload variable"):
        run_sweep(model, hw, "ep_ceiling_tpot_s", ["isl=1,2"])
    with pytest.raises(UsageError, match="varies only"):
        run_sweep(model, hw, "tpot_s", ["num_layers=1,2"])


def test_a_sweep_over_the_prefix_cache_share_is_serve_workloads_at_each_share():
    """prefix_cache_hit_frac is a workload variable: F from 0 (allowed, unlike the others) to
    below 1, each point serve_workload's figure at that F; TTFT falls as F rises."""
    model, hw, engine = load_model("deepseek-v3"), load_hardware("h200"), load_engine("sglang")
    r = run_sweep(model, hw, "ttft_s", ["prefix_cache_hit_frac=0:0.9:lin4", "tp=8"],
                  engine=engine)
    ttft = r.values[:, 0]
    for f, got in zip((0.0, 0.3, 0.6, 0.9), ttft):
        one = serve_workload(model, hw, engine, isl=1024, osl=1024, concurrency=32, tp=8,
                             prefix_cache_hit_frac=f)
        assert got == pytest.approx(float(one.ttft_s), rel=1e-12)
    assert np.all(np.diff(ttft) < 0)


@pytest.mark.parametrize("spec, why", [("0,1", "must be at least 0 and below 1"),
                                       ("-0.1,0.5", "values must be finite and at least 0")])
def test_a_bad_prefix_cache_sweep_is_one_line(spec, why):
    out = cli_run("sweep", "deepseek-v3", "-H", "h200", "-m", "ttft_s", "--vary",
                  f"prefix_cache_hit_frac={spec}", "--vary", "tp=8")
    assert out.exit_code == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: --vary prefix_cache_hit_frac: ") and why in out.stderr


def test_a_prefix_cache_sweep_from_minus_zero_reads_zero():
    recs = cli_json("sweep", "deepseek-v3", "-H", "h200", "-m", "ttft_s", "--vary",
                    "prefix_cache_hit_frac=-0,0.5", "--vary", "tp=8")
    assert [r["prefix_cache_hit_frac"] for r in recs] == [0.0, 0.5]
    assert str(recs[0]["prefix_cache_hit_frac"]) == "0.0"
