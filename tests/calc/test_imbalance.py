"""Expert-load imbalance (issue 4): the hottest EP rank's load from sampling noise and measured
routing skew, and how it sets the pace of a serving step."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner import catalog
from planner.calc import imbalance, serving
from planner.cli import app
from planner.specs.deployment import ServeConfig
from planner.errors import UsageError

runner = CliRunner()


def test_expected_max_of_normals_by_hand():
    # Blom: Φ⁻¹(31.625 / 32.25) = Φ⁻¹(0.98062) = 2.067 (exact: 2.0697).
    assert imbalance.expected_max_standard_normal(32) == pytest.approx(2.067, abs=5e-4)
    assert imbalance.expected_max_standard_normal(1) == 0
    with pytest.raises(UsageError):
        imbalance.expected_max_standard_normal(0)


def test_docstring_examples():
    skew = imbalance.routing_skew_cv(imbalance_ratio=0.109, rows_per_rank=1024, ranks=32)
    assert skew == pytest.approx(0.0425, abs=5e-5)
    assert imbalance.expert_imbalance_ratio(rows_per_rank=1024, ranks=72,
                                            skew_cv=skew) == pytest.approx(0.126, abs=5e-4)
    rank, node = imbalance.hottest_rank_factors("eplb", rows_per_rank=65_536, ranks=32,
                                                ranks_per_node=8)
    assert (rank, node) == (pytest.approx(1.088, abs=5e-4), pytest.approx(1.016, abs=5e-4))


def test_measured_ratios_come_back_at_the_measured_load():
    # TRT-LLM Table 1: 1,024 rows per rank on 32 ranks, 0.109 with EPLB and 1.564 without.
    for name, ratio in (("eplb", 0.109), ("no-eplb", 1.564)):
        rank, _ = imbalance.hottest_rank_factors(name, rows_per_rank=1024, ranks=32,
                                                 ranks_per_node=8)
        assert rank == pytest.approx(1 + ratio)
    # Sampling noise alone at that load: 2.067 / sqrt(1,024) = 0.065.
    rank, _ = imbalance.hottest_rank_factors("uniform", rows_per_rank=1024, ranks=32,
                                             ranks_per_node=8)
    assert rank == pytest.approx(1 + 2.067 / 32, abs=5e-4)


def test_exact_and_a_single_rank_carry_no_imbalance():
    assert imbalance.hottest_rank_factors("exact", rows_per_rank=8, ranks=256,
                                          ranks_per_node=8) == (1.0, 1.0)
    for name in imbalance.EXPERT_BALANCES:
        assert imbalance.hottest_rank_factors(name, rows_per_rank=8, ranks=1,
                                              ranks_per_node=8) == (1.0, 1.0)
    with pytest.raises(UsageError, match="expected one of exact, uniform, eplb, no-eplb"):
        imbalance.expert_balance("perfect")


@settings(max_examples=200, deadline=None)
@given(rows=st.floats(min_value=1, max_value=1e7), ranks=st.integers(min_value=2, max_value=512),
       more=st.floats(min_value=1.01, max_value=100))
def test_imbalance_falls_with_load_and_rises_with_ranks_and_skew(rows, ranks, more):
    loads = [imbalance.hottest_rank_factors(name, rows_per_rank=rows, ranks=ranks,
                                            ranks_per_node=8)[0]
             for name in ("exact", "uniform", "eplb", "no-eplb")]
    assert loads == sorted(loads) and loads[0] == 1.0
    for name in ("uniform", "eplb"):
        f = imbalance.hottest_rank_factors
        assert f(name, rows_per_rank=rows * more, ranks=ranks, ranks_per_node=8)[0] < \
            f(name, rows_per_rank=rows, ranks=ranks, ranks_per_node=8)[0]
        assert f(name, rows_per_rank=rows, ranks=ranks * 2, ranks_per_node=8)[0] > \
            f(name, rows_per_rank=rows, ranks=ranks, ranks_per_node=8)[0]


def test_serve_runs_at_the_hottest_ranks_pace():
    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    steps = [serving.serve(v3, h800, ServeConfig(gpus=128, batch_per_gpu=128,
                                                expert_balance=name)).step_s
             for name in ("exact", "uniform", "eplb", "no-eplb")]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    # Prefill forwards over NVLink: the NIC legs carry the hottest node's load, the NVLink legs
    # the hottest rank's; each direction takes the longer.
    model, t, k = v3, 8192, 8
    ex = serving.ep_layer_comm_s(model, h800, ep=32, tokens=t, copies=k, forwarding=True,
                                 up_bytes_per_s=1.0, out_bytes_per_s=1.0)
    hot = serving.ep_layer_comm_s(model, h800, ep=32, tokens=t, copies=k, forwarding=True,
                                  up_bytes_per_s=1.0, out_bytes_per_s=1.0, rank_load=1.5,
                                  node_load=1.1)
    assert hot[2] == ex[2] == "scale_out + NVLink forwarding"
    assert ex[0] * 1.1 <= hot[0] <= ex[0] * 1.5
    # A dense model has no EP ranks to wait for.
    dense = serving.serve(catalog.load_model("llama-3.3-70b"), h800,
                          ServeConfig(gpus=8, tp=8, expert_balance="no-eplb"))
    assert dense.expert_balance == "none" and dense.hottest_rank_load == 1.0


def test_json_reports_the_balance():
    result = runner.invoke(app, ["serve", "deepseek-v3", "-H", "h800", "--gpus", "128",
                                 "--expert-balance", "no-eplb", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    (r,) = json.loads(result.stdout)
    assert r["expert_balance"] == "no-eplb" and r["hottest_rank_load"] > 2
    bad = runner.invoke(app, ["serve", "deepseek-v3", "-H", "h800", "--expert-balance", "x"])
    assert bad.exit_code == 2


def test_scenarios_take_the_expert_balance(write_yaml):
    import planner

    rates = {}
    for name in ("exact", "no-eplb"):
        path = write_yaml(f"model: deepseek-v3\nhardware: h800\ndeployment: {{num_gpus: 128, "
                          f"ep: 128, batch_per_gpu: 64, expert_balance: {name}}}\nbudgets:\n"
                          f"  tokens_per_s_per_gpu: {{min: 1}}\n", f"{name}.yaml")
        rates[name] = planner.evaluate(path).value("tokens_per_s_per_gpu")
    assert rates["exact"] > 1.2 * rates["no-eplb"]
    bad = write_yaml("model: deepseek-v3\nhardware: h800\ndeployment: {num_gpus: 128, "
                     "ep: 128, expert_balance: perfect}\nbudgets:\n  tokens_per_s_per_gpu: {min: 1}\n",
                     "bad.yaml")
    report = planner.check(bad)
    assert not report.ok and "expert_balance" in str(report.errors[0])
