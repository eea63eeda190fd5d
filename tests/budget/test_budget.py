"""Scenarios, budgets and `planner check`: exit codes 0/1/2, fail-closed, JUnit XML, GitHub
annotations, units in bounds, the Python API."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

import planner
from planner import budget
from planner.cli import app
from planner.metrics import METRICS
from planner.units import UNITS, parse_quantity
from tests_support import REPO

SPECS = REPO / "specs"
SCEN = REPO / "tests" / "scenarios"
TIGHT = SCEN / "deepseek-v3-kv-budget-too-tight.yaml"
V3_H800 = SPECS / "deepseek-v3-h800-ep-decode.yaml"

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), catch_exceptions=False, env=env)


def scenario(write_yaml, budgets: str, *, model: str = "deepseek-v3", extra: str = "",
             name: str = "s.yaml"):
    return write_yaml(f"model: {model}\nhardware: h800\n{extra}budgets:\n{budgets}", name)


# ----------------------------------------------------------------------------- the must-shows
def test_check_specs_dir_passes_on_the_repository():
    result = run("check", str(SPECS))
    assert result.exit_code == 0, result.stderr
    assert "FAIL" not in result.stdout
    report = planner.check(SPECS)
    assert report.ok and report.exit_code == 0
    assert len(report.files) >= 3 and all(r.passed for r in report.results)


def test_tightening_one_bound_exits_1_naming_metric_bound_and_value(tmp_path):
    text = V3_H800.read_text().replace("kv_cache_bytes_per_token: {max: 80 KB}",
                                       "kv_cache_bytes_per_token: {max: 1000}")
    assert "{max: 1000}" in text
    path = tmp_path / "tight.yaml"
    path.write_text(text)
    result = run("check", str(path))
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if "kv_cache_bytes_per_token" in line)
    assert "max <= 1000" in row and "70.272 KB" in row and "FAIL" in row
    assert ("kv_cache_bytes_per_token = 70.272 KB is above max 1000 (70272 vs 1000 bytes)"
            in result.stderr)


def test_malformed_scenario_exits_2_with_one_line_naming_file_and_field():
    result = run("check", str(SCEN / "wrong-unit.yaml"))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {SCEN / 'wrong-unit.yaml'}: budgets.tpot_s.max: ")
    assert "unit 'KB' is a size in bytes, but this metric is a time" in lines[0]


def test_junit_xml_parses_one_case_per_bound(tmp_path):
    out = tmp_path / "junit.xml"
    result = run("check", str(SPECS), str(TIGHT), "--junit", str(out))
    assert result.exit_code == 1
    root = ET.parse(out).getroot()
    cases = root.findall(".//testcase")
    report = planner.check(SPECS, TIGHT)
    assert root.tag == "testsuites"
    assert int(root.get("tests")) == len(cases) == len(report.results)
    assert int(root.get("failures")) == len(root.findall(".//failure")) == 1
    failed = next(c for c in cases if c.find("failure") is not None)
    assert failed.get("name") == "kv_cache_bytes_per_token max 1000"
    assert failed.get("line") == "9" and failed.get("file") == str(TIGHT)


def test_junit_records_invalid_inputs_as_errors(tmp_path):
    out = tmp_path / "junit.xml"
    result = run("check", str(SPECS), str(SCEN / "wrong-unit.yaml"), "--junit", str(out))
    assert result.exit_code == 2 and result.stdout == ""
    root = ET.parse(out).getroot()
    assert root.get("errors") == "1"
    err = root.find(".//error")
    assert "budgets.tpot_s.max" in err.get("message")


def test_github_annotations_point_at_the_budget_line():
    lines = TIGHT.read_text().splitlines()
    expected_line = next(i for i, s in enumerate(lines, 1) if "kv_cache_bytes_per_token" in s)
    result = run("check", str(TIGHT), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    ann = [s for s in result.stderr.splitlines() if s.startswith("::error ")]
    assert len(ann) == 1
    assert f",line={expected_line},title=budget violated%3A kv_cache_bytes_per_token::" in ann[0]
    assert "::" not in result.stdout
    quiet = run("check", str(TIGHT), env={"GITHUB_ACTIONS": ""})
    assert "::error" not in quiet.stderr


# ----------------------------------------------------------------------------- fail closed
@pytest.mark.parametrize("budgets, extra, model, message", [
    ("  tpot: {max: 15 ms}\n", "", "deepseek-v3",
     "budgets.tpot: unknown metric 'tpot'; did you mean 'tpot_s'?"),
    ("  tpot_s: {max: fifteen}\n", "", "deepseek-v3", "budgets.tpot_s.max: cannot read"),
    ("  tpot_s: {max: 15 parsecs}\n", "", "deepseek-v3", "unknown unit 'parsecs' for s"),
    ("  tpot_s: {max: .nan}\n", "", "deepseek-v3", "budgets.tpot_s.max: "),
    ("  tpot_s: {max: -1}\n", "", "deepseek-v3", "is negative"),
    ("  tpot_s: {}\n", "", "deepseek-v3", "a budget needs 'max' and/or 'min'"),
    ("  tpot_s: {max: 15 ms, min: 20 ms}\n", "", "deepseek-v3", "no value can pass"),
    ("  ep_ceiling_tpot_s: {max: 15 ms}\n", "", "llama-3.1-70b",
     "budgets.ep_ceiling_tpot_s: metric does not apply to this scenario: Llama-3.1-70B is a "
     "dense model"),
    ("  weight_bytes_per_gpu: {max: 80 GB}\n", "", "deepseek-v3",
     "deployment.num_gpus is not given"),
    ("  ep_ceiling_tpot_s: {max: 15 ms}\n", "deployment: {num_gpus: 8}\n", "deepseek-v3",
     "deployment.ep: the EP group (256 GPUs"),
    ("  tpot_s: {max: 15 ms}\n", "", "no-such-model", "model: unknown model 'no-such-model'"),
    ("  tpot_s: {max: 15 ms}\n", "", "../missing/model.yaml", "model: model file not found"),
    ("  nic_bandwidth: {max: 80 Gbps}\n", "", "deepseek-v3", "unknown metric"),
])
def test_check_fails_closed(write_yaml, budgets, extra, model, message):
    path = scenario(write_yaml, budgets, model=model, extra=extra)
    result = run("check", str(path))
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: {path}: ")
    assert message in result.stderr
    report = planner.check(path)
    assert not report.ok and report.exit_code == 2 and report.errors


def test_no_budgets_missing_file_and_empty_dir_are_errors(write_yaml, tmp_path):
    no_budgets = write_yaml("model: deepseek-v3\nhardware: h800\n", "nb.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in [(no_budgets, "budgets: the scenario defines no budgets"),
                          (tmp_path / "missing.yaml", "file not found"),
                          (empty, "no scenario files")]:
        result = run("check", str(path))
        assert result.exit_code == 2 and result.stdout == ""
        assert message in result.stderr


def test_a_metric_that_evaluates_to_infinity_is_an_error_not_a_pass(monkeypatch, write_yaml):
    path = scenario(write_yaml, "  tpot_s: {max: 1e300}\n")
    real = budget.evaluate_scenario

    def infinite(*args, **kwargs):
        ev = real(*args, **kwargs)
        ev.metrics["tpot_s"] = budget.MetricValue(METRICS["tpot_s"], float("inf"))
        return ev

    monkeypatch.setattr("planner.budget.evaluating.evaluate_scenario", infinite)
    report = planner.check(path)
    assert not report.ok and report.exit_code == 2
    assert "evaluates to inf" in str(report.errors[0])


def test_one_invalid_scenario_makes_the_whole_check_invalid():
    result = run("check", str(SPECS), str(SCEN / "wrong-unit.yaml"))
    assert result.exit_code == 2 and result.stdout == ""


def test_violation_and_pass_together_exit_1():
    report = planner.check(SPECS, TIGHT)
    assert report.exit_code == 1 and not report.ok
    assert [r.metric for r in report.violations] == ["kv_cache_bytes_per_token"]


# ----------------------------------------------------------------------------- outputs and API
def test_check_json_shape_matches_the_api():
    result = run("check", str(TIGHT), "--format", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    report = planner.check(TIGHT)
    assert records == json.loads(json.dumps([r.as_dict() for r in report.results]))
    assert set(records[0]) == {"scenario", "file", "line", "metric", "unit", "bound", "limit",
                               "limit_text", "value", "headroom_frac", "basis", "passed"}
    kv = records[0]
    assert kv["metric"] == "kv_cache_bytes_per_token" and kv["value"] == 70272.0
    assert kv["limit"] == 1000.0 and kv["passed"] is False
    assert kv["headroom_frac"] == pytest.approx((1000 - 70272) / 1000)


def test_headroom_of_min_and_max_bounds():
    report = planner.check(V3_H800)
    by = {r.metric: r for r in report.results}
    # 80,000 - 70,272 = 9,728 below the max: 12.16 % of 80,000.
    assert by["kv_cache_bytes_per_token"].headroom_frac == pytest.approx(0.1216)
    tps = by["ep_ceiling_tokens_per_s"]
    assert tps.bound == "min" and tps.headroom_frac == pytest.approx(tps.value / 60 - 1)


def test_evaluate_command_and_api_agree():
    result = run("evaluate", str(V3_H800), "--format", "json")
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    ev = planner.evaluate(V3_H800)
    assert record == json.loads(json.dumps(ev.as_dict()))
    assert set(METRICS) <= set(record)
    assert record["kv_cache_bytes_per_token"] == 70272
    # DeepEP FP8 dispatch (7,408 B) + BF16 combine (14,336 B) per token and expert, 32 tokens,
    # 9 experts, 50 GB/s: 21,744 × 288 / 5e10 = 125.245 µs.
    assert record["ep_comm_time_per_layer_s"] == pytest.approx(21_744 * 288 / 5e10)
    assert record["ep_ceiling_tpot_s"] == pytest.approx(61 * 2 * 21_744 * 288 / 5e10)


def test_evaluate_a_dense_model_shows_na_for_ep_metrics():
    ev = planner.evaluate(SPECS / "llama-3.1-405b-h800-fp8.yaml")
    assert ev.value("ep_ceiling_tpot_s") is None
    assert ev.value("kv_cache_bytes_per_token") == 516_096
    # 405,853,388,800 parameters at 1 byte over 8 GPUs.
    assert ev.value("weight_bytes_per_gpu") == pytest.approx(405_853_388_800 / 8)
    result = run("evaluate", str(SPECS / "llama-3.1-405b-h800-fp8.yaml"))
    assert result.exit_code == 0 and "n/a" in result.stdout


def test_relative_model_and_hardware_paths_resolve_from_the_scenario_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    report = planner.check(SCEN / "relative-paths.yaml")
    assert report.ok, report.errors
    assert [r.value for r in report.results] == [70272.0, 70272.0]


def test_achievable_bandwidth_scales_the_ep_time(write_yaml):
    peak = planner.evaluate(scenario(write_yaml, "  ep_ceiling_tpot_s: {max: 1 s}\n",
                                     name="a.yaml"))
    ach = planner.evaluate(scenario(write_yaml, "  ep_ceiling_tpot_s: {max: 1 s}\n",
                                    name="b.yaml", extra="deployment: {bandwidth: achievable}\n"))
    # H800 scale-out efficiency 0.8: the time grows by 1 / 0.8.
    assert ach.value("ep_ceiling_tpot_s") == pytest.approx(peak.value("ep_ceiling_tpot_s") / 0.8)
    assert "achievable" in ach.metrics["ep_ceiling_tpot_s"].basis


def test_scenario_validates_the_same_from_the_cache(write_yaml):
    path = scenario(write_yaml, "  tpot_s: {max: 16 ms}\n",
                    extra="deployment: {num_gpus: 2048, ep: 256, weight_dtype: fp8}\n")
    first = budget.load_scenario(path).scenario
    second = budget.load_scenario(path).scenario   # the second read is built from the cache
    assert first == second
    assert type(second.budgets["tpot_s"]).__name__ == "Bound"


def test_deployment_cross_field_checks(write_yaml):
    path = scenario(write_yaml, "  tpot_s: {max: 16 ms}\n",
                    extra="deployment: {num_gpus: 16, tp: 4, dp: 2}\n")
    result = run("check", str(path))
    assert result.exit_code == 2
    assert "deployment: tp × pp × dp (4 × 1 × 2) must equal num_gpus (16)" in result.stderr



# ----------------------------------------------------------------------------- units in bounds
@pytest.mark.parametrize("text, dimension, expected", [
    ("80 KB", "bytes", 80_000.0),                 # decimal kilo, as the paper
    ("80kB", "bytes", 80_000.0),
    ("1 GiB", "bytes", 2.0**30),
    (70272, "bytes", 70_272.0),                   # a plain number is in base units
    ("15 ms", "s", 0.015),
    ("120.96 µs", "s", 120.96e-6),
    ("130us", "s", 130e-6),
    ("60 tokens/s", "tokens/s", 60.0),
    ("1.2 k tokens/s", "tokens/s", 1200.0),
    ("250 GFLOP", "FLOPs", 250e9),
    ("671B", "count", 671e9),
    ("45%", "fraction", 0.45),
    ("400 Gbit/s", "bytes/s", 50e9),
    ("2.788 M GPU-hours", "h", 2.788e6),
    ("5.576 M USD", "USD", 5.576e6),
])
def test_parse_quantity(text, dimension, expected):
    assert parse_quantity(text, dimension) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text, dimension, message", [
    ("15 ms", "bytes", "unit 'ms' is a time, but this metric is a size in bytes"),
    ("80 Gbps", "bytes/s", "ambiguous"),
    ("80 kb", "bytes", "ambiguous"),
    ("80 KBs", "bytes", "unknown unit 'KBs'"),
    ("KB", "bytes", "cannot read"),
    ("1 M M USD", "USD", "unknown unit"),
    (True, "bytes", "expected a number"),
    ("-1 KB", "bytes", "negative"),
    (float("nan"), "s", "not a finite number"),
    ("1e999 s", "s", "not a finite number"),
])
def test_parse_quantity_rejects(text, dimension, message):
    with pytest.raises(ValueError, match=message):
        parse_quantity(text, dimension)


def test_every_metric_has_a_known_dimension():
    assert all(m.dimension in UNITS for m in METRICS.values())


def test_an_invalid_bound_is_annotated_at_its_line(write_yaml):
    path = scenario(write_yaml, "  kv_cache_bytes_per_token: {max: 80 KB}\n  tpot_s:\n"
                                "    max: 15 KB\n")
    result = run("check", str(path), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 2 and result.stdout == ""
    ann = [s for s in result.stderr.splitlines() if s.startswith("::error ")]
    assert len(ann) == 1 and ",line=6,title=invalid planner input::" in ann[0]


def test_evaluate_refuses_a_scenario_with_an_invalid_bound(write_yaml):
    path = scenario(write_yaml, "  tpot_s: {max: 15 parsecs}\n")
    result = run("evaluate", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert "budgets.tpot_s.max: unknown unit 'parsecs'" in result.stderr


def test_a_calculator_error_names_the_scenario_file(write_yaml):
    # A spec with no efficiency factors (MI300X's as it was before it took H200's, issue 19):
    # achievable EP bandwidth cannot be computed.
    from tests_support import REPO

    mi300x = (REPO / "hardware" / "mi300x.yaml").read_text()
    bare = write_yaml(mi300x[:mi300x.index("\nefficiency_from:")] + "\n", "bare-mi300x.yaml")
    path = write_yaml(f"model: deepseek-v3\nhardware: {bare}\ndeployment: {{num_gpus: 64, "
                      "ep: 64, bandwidth: achievable}\nbudgets:\n  ep_ceiling_tpot_s: {max: 1 s}\n",
                      "ach.yaml")
    result = run("check", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: deployment: ")
    assert "efficiency.scale_out_bandwidth is not given" in result.stderr


def test_a_weight_type_the_serving_model_cannot_run_is_refused_naming_the_field(tmp_path):
    """fp32 weights once fell back silently to BF16 for memory_bytes_per_gpu while weight_bytes
    doubled; now the serving metrics are refused, naming deployment.weight_dtype."""
    from typer.testing import CliRunner

    from planner.cli import app

    path = tmp_path / "fp32.yaml"
    path.write_text("model: deepseek-v3\nhardware: h800\n"
                    "deployment: {num_gpus: 320, weight_dtype: fp32}\n"
                    "budgets:\n  memory_bytes_per_gpu: {max: 80 GB}\n")
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert "deployment.weight_dtype" in result.stderr and "fp32" in result.stderr
    ok = tmp_path / "fp8.yaml"
    ok.write_text(path.read_text().replace("fp32", "fp8"))
    assert CliRunner().invoke(app, ["check", str(ok)]).exit_code == 0
