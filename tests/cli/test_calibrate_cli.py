"""``planner calibrate`` (issue 25): before/after error per run, fitted vs default values,
leave-one-out error, the override file, the overfitting warning, one-line errors (exit 2)."""

from __future__ import annotations

import re

import csv
import json

import pytest

from planner.specs.overrides import load_overrides
from tests_support import REPO, cli_run

SHIPPED = REPO / "planner" / "data" / "serving-runs.csv"
#: Three H200 · SGLang runs of one layout (Llama-3.1-8B, TP 2).
THREE = [f"meta_llama_llama_3_1_8b_instruct_meta_llama_llama_3_1_8b_instruct_h200_sxm_sglang_agg_"
         f"{w}_tp2_epnone_{n}" for w, n in (("1000x100_c240", 2), ("1000x500_c512", 6),
                                            ("1000x1000_c512", 10))]


def shipped_rows():
    with open(SHIPPED, newline="") as fh:
        return list(csv.DictReader(fh))


def write_runs(path, rows, drop=()):
    fields = [c for c in rows[0] if c not in drop]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    rows = {r["id"]: r for r in shipped_rows()}
    return write_runs(tmp_path_factory.mktemp("runs") / "three.csv", [rows[i] for i in THREE])


def test_three_runs_of_one_layout_do_not_worsen_others_or_warn(three, tmp_path):
    out = tmp_path / "over.yaml"
    result = cli_run("calibrate", "--runs", three, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    for run_id in THREE:
        assert run_id in text
    assert "before (defaults)" in text and "after (in sample)" in text
    assert "leave-one-out" in text and "engine.request_overhead_s" in text
    # the check on the shipped runs of other layouts of H200 · SGLang
    check = [r for r in json.loads(cli_run("calibrate", "--runs", three, "-f", "json").stdout)
             if str(r.get("runs", "")).endswith("not fitted")][0]
    worse = check["error_after_pct"] > check["error_before_pct"] + 2
    assert worse == ("the calibration overfits" in text)
    ov = load_overrides(out)
    assert ov.runs.ids == THREE and ov.runs.rows == 3 and "sglang" in ov.engines
    assert ov.fit["in_sample_error_pct"] < ov.fit["in_sample_error_before_pct"]


def test_json_records_and_fitted_values(three):
    records = json.loads(cli_run("calibrate", "--runs", three, "-f", "json").stdout)
    params = {r["parameter"]: r for r in records if "parameter" in r}
    fitted = [p for p in params.values() if p["fitted"]]
    # 3 runs: 6 values measured, at most 3 parameters
    assert 1 <= len(fitted) <= 3
    assert all(p["lower"] <= p["value"] <= p["upper"] for p in params.values())
    kept = [p for p in params.values() if not p["fitted"]]
    assert all(p["reason"] for p in kept) and all(p["value"] == p["default"] for p in kept)
    runs = [r for r in records if r.get("metric") in ("ttft", "tpot")]
    assert len(runs) == 6


@pytest.mark.parametrize("edit, expected", [
    ("drop_tpot", "header: missing column(s) silicon_tpot_ms"),
    ("negative", "row 3, column silicon_ttft_ms"),
    ("unknown", "row 4, column model_path: model not in the catalog: acme/NoSuchModel-7B"),
])
def test_malformed_run_files_exit_2_naming_row_and_column(tmp_path, edit, expected):
    rows = {r["id"]: r for r in shipped_rows()}
    rows = [dict(rows[i]) for i in THREE]
    drop = ()
    if edit == "drop_tpot":
        drop = ("silicon_tpot_ms",)
    elif edit == "negative":
        rows[1]["silicon_ttft_ms"] = "-5"
    else:
        rows[2]["model_path"] = "acme/NoSuchModel-7B"
    path = write_runs(tmp_path / "bad.csv", rows, drop)
    result = cli_run("calibrate", "--runs", path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr and path in result.stderr


def test_runs_of_two_hardware_need_a_choice(tmp_path):
    rows = shipped_rows()
    pick = [r for r in rows if r["id"] == THREE[0]]
    pick += [r for r in rows if r["system"] == "h100_sxm" and r["backend"] == "sglang"
             and r["mode"] == "agg"][:1]
    result = cli_run("calibrate", "--runs", write_runs(tmp_path / "two.csv", pick))
    assert result.exit_code == 2 and "choose it with --hardware" in result.stderr


def test_no_run_it_can_express(tmp_path):
    rows = [r for r in shipped_rows() if r["mode"] == "disagg"][:2]
    result = cli_run("calibrate", "--runs", write_runs(tmp_path / "d.csv", rows))
    assert result.exit_code == 2
    assert "no run the planner can express (2 disaggregated" in result.stderr


def test_the_overfit_warning_is_printed(three, monkeypatch):
    # the shipped runs of other layouts made 10 points worse by the calibrated values
    monkeypatch.setattr("planner.studies.calibrate_runs.other_layout_check",
                        lambda values, defaults, others: (len(others), 20.0, 30.0))
    result = cli_run("calibrate", "--runs", three)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    # the count of other-layout runs follows the shipped runs the planner expresses
    assert re.search(r"warning: the calibration overfits: on the \d+ shipped h200 · sglang runs "
                     r"of other layouts not fitted the median error goes from 20\.0% to 30\.0%",
                     text)
    result = cli_run("calibrate", "--runs", three, "-f", "json")
    assert "warning: the calibration overfits" in result.stderr
