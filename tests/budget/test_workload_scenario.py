"""A scenario's workload: block (what planner plan --write-scenario writes) is evaluated by the
workload model, and planner check guards it: the plan's own file passes, a tighter budget fails
with exit 1, a bad field is one line with exit 2."""

from __future__ import annotations

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
