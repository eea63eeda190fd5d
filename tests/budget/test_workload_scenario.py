"""A scenario's workload: block (what planner plan --write-scenario writes) is evaluated by the
workload model, and planner check guards it: the plan's own file passes, a tighter budget fails
with exit 1, a bad field is one line with exit 2."""

from __future__ import annotations

import json

import pytest
import yaml

from planner.budget.evaluating import evaluate
from planner.calc.serving.workload import serve_workload
from planner.catalog import load_hardware, load_model
from planner.specs.load import load_engine
from tests_support import cli_run

PLAN = ("plan", "deepseek-v3", "-H", "h200", "--isl", "1024", "--osl", "1024",
        "--engine", "sglang", "--tpot-ms", "50")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "best.yaml"
    out = cli_run(*PLAN, "--write-scenario", str(path))
    assert out.exit_code == 0, out.stderr
    return path


def test_the_written_scenario_passes_check(scenario):
    out = cli_run("check", str(scenario))
    assert out.exit_code == 0, out.stdout
    assert "2 met, 0 violated" in out.stdout.replace("\n", " ")


def test_workload_metrics_are_the_workload_models(scenario):
    w = yaml.safe_load(scenario.read_text())["workload"]
    engine = load_engine(w.pop("engine"))
    r = serve_workload(load_model("deepseek-v3"), load_hardware("h200"), engine, **w)
    ev = evaluate(str(scenario))
    assert ev.value("tpot_s") == pytest.approx(float(r.tpot_s), rel=1e-12)
    assert ev.value("ttft_s") == pytest.approx(float(r.ttft_s), rel=1e-12)
    assert ev.value("tokens_per_s_per_gpu") == pytest.approx(float(r.tokens_per_s_per_gpu))
    assert ev.value("decode_tokens_per_s") == pytest.approx(float(r.tokens_per_s_per_user))
    assert ev.value("tokens_per_s_per_node") == pytest.approx(8 * float(r.tokens_per_s_per_gpu))


def test_a_tighter_budget_fails(scenario, tmp_path):
    data = yaml.safe_load(scenario.read_text())
    data["budgets"]["tpot_s"] = {"max": 0.001}
    tight = tmp_path / "tight.yaml"
    tight.write_text(yaml.safe_dump(data))
    assert cli_run("check", str(tight)).exit_code == 1


def test_a_workload_that_does_not_fit_is_not_applicable(scenario, tmp_path):
    data = yaml.safe_load(scenario.read_text())
    # one attention rank, the experts split by TP alone, 100,000 requests in flight
    data["workload"].update(concurrency=100000, attention_dp=1,
                            moe_tp=data["workload"].get("tp", 1), moe_ep=1)
    data["deployment"]["ep"] = 1
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump(data))
    ev = evaluate(str(big))
    assert ev.value("tpot_s") is None
    assert "does not fit" in ev.metrics["tpot_s"].reason


def test_a_bad_workload_field_is_one_line(scenario, tmp_path):
    data = yaml.safe_load(scenario.read_text())
    data["workload"]["concurrency"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = cli_run("check", str(bad))
    assert out.exit_code == 2 and "workload.concurrency" in out.stderr
    assert out.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def cached_scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "cached.yaml"
    out = cli_run(*PLAN, "--prefix-cache-hit", "0.5", "--write-scenario", str(path))
    assert out.exit_code == 0, out.stderr
    return path


def test_a_plan_with_a_prefix_cache_writes_it_and_check_reads_it(cached_scenario):
    """The plan's F goes into the scenario's workload block, `planner check` evaluates the
    workload with it (the plan's own budgets pass), and the metrics are the workload model's
    at that F, not at F = 0."""
    w = yaml.safe_load(cached_scenario.read_text())["workload"]
    assert w["prefix_cache_hit_frac"] == 0.5
    out = cli_run("check", str(cached_scenario), "-f", "json")
    assert out.exit_code == 0, out.stdout
    assert all(r["basis"].endswith("prefix cache 50.0%") for r in json.loads(out.stdout))
    engine = load_engine(w.pop("engine"))
    model, hw = load_model("deepseek-v3"), load_hardware("h200")
    cached = serve_workload(model, hw, engine, **w)
    w.pop("prefix_cache_hit_frac")
    cold = serve_workload(model, hw, engine, **w)
    ev = evaluate(str(cached_scenario))
    assert ev.value("ttft_s") == pytest.approx(float(cached.ttft_s), rel=1e-12)
    assert float(cached.ttft_s) < float(cold.ttft_s)


@pytest.mark.parametrize("value", [1.0, -0.1, ".nan", "'0.5'"])
def test_a_bad_prefix_cache_share_in_a_scenario_is_one_line(scenario, tmp_path, value):
    data = yaml.safe_load(scenario.read_text())
    text = yaml.safe_dump(data).replace("workload:\n", f"workload:\n  prefix_cache_hit_frac: "
                                                      f"{value}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = cli_run("check", str(bad))
    assert out.exit_code == 2 and "workload.prefix_cache_hit_frac" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1
