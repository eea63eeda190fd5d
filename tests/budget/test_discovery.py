"""Scenario discovery in directories and CI annotations (issue 18, item 15): only scenarios are
checked, what was skipped is said, other file systems and symlinked folders are not entered,
and a YAML syntax error is annotated at its line."""

from __future__ import annotations

import shutil
import time

import pytest
from typer.testing import CliRunner

import planner.budget.loading as loading
from planner import budget
from planner.cli import app
from tests_support import REPO, SCENARIO_NO_EP

runner = CliRunner()

WORKFLOW = "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
EVALUATE_ONLY = "kind: scenario\nmodel: deepseek-v3\nhardware: h800\n"


def run(*args: str, **kw):
    return runner.invoke(app, list(args), catch_exceptions=False, **kw)


@pytest.fixture()
def project(tmp_path):
    """A project folder: a workflow, the catalog's specs, one scenario, one without budgets."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    shutil.copytree(REPO / "models", tmp_path / "models")
    (tmp_path / "budgets").mkdir()
    (tmp_path / "budgets" / "v3.yaml").write_text(SCENARIO_NO_EP)
    (tmp_path / "budgets" / "evaluate-only.yml").write_text(EVALUATE_ONLY)
    return tmp_path


def test_check_takes_only_scenarios_and_says_what_it_skipped(project):
    result = run("check", str(project), "-f", "json")
    # the scenario without budgets is a scenario: `check` says it needs budgets
    assert result.exit_code == 2
    assert "evaluate-only.yml: budgets: the scenario defines no budgets" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ci.yml" not in errors[0] and "models" not in errors[0]
    first = result.stderr.splitlines()[0]
    n = len(list((project / "models").glob("*.yaml"))) + 1
    assert first.startswith(f"skipped {n} YAML file(s) that are not scenarios (no top-level "
                            "`budgets:` or `kind: scenario`): ")
    assert f"{project}/.github/workflows/ci.yml" in first and first.endswith("more")
    (project / "budgets" / "evaluate-only.yml").unlink()
    result = run("check", str(project))
    assert result.exit_code == 0, result.stderr
    assert "v3" in result.stdout and "ci.yml" not in result.stdout


def test_evaluate_takes_a_kind_scenario_without_budgets(project):
    result = run("evaluate", str(project / "budgets"), "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == [
        "evaluate-only", "v3"]
    assert result.stderr == ""


def test_recognition():
    assert loading._SCENARIO_MARK.search("model: a\nbudgets:\n  tpot_s: {max: 1}\n")
    assert loading._SCENARIO_MARK.search("kind: scenario  # for evaluate\n")
    assert loading._SCENARIO_MARK.search("kind: 'scenario'\n")
    assert not loading._SCENARIO_MARK.search("deployment:\n  budgets: 3\n")    # not top level
    assert not loading._SCENARIO_MARK.search("kind: scenarios\n")
    assert not loading._SCENARIO_MARK.search(WORKFLOW)


def test_a_folder_of_no_scenarios_is_an_error_naming_what_it_skipped(tmp_path):
    (tmp_path / "ci.yml").write_text(WORKFLOW)
    result = run("check", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {tmp_path}: no scenario files (*.yaml, *.yml with a top-level `budgets:` or "
        "`kind: scenario`) in this directory; 1 other YAML file(s) skipped")


def test_a_broken_scenario_is_still_reported(tmp_path):
    (tmp_path / "broken.yaml").write_text("model: deepseek-v3\nbudgets:\n  tpot_s: {max: 1\n")
    result = run("check", str(tmp_path))
    assert result.exit_code == 2 and "invalid YAML: line 4" in result.stderr


def test_an_explicit_file_is_always_a_scenario(tmp_path):
    path = tmp_path / "ci.yml"
    path.write_text(WORKFLOW)
    result = run("check", str(path))
    assert result.exit_code == 2 and "model: required field is missing" in result.stderr


def test_symlinked_folders_are_not_followed(tmp_path):
    (tmp_path / "v3.yaml").write_text(SCENARIO_NO_EP)
    (tmp_path / "loop").symlink_to(tmp_path)
    assert budget.scenario_files([tmp_path]) == [tmp_path / "v3.yaml"]


def test_other_file_systems_are_not_entered(tmp_path, monkeypatch):
    """``planner check /`` must not walk into /proc: a folder on another device is skipped."""
    (tmp_path / "v3.yaml").write_text(SCENARIO_NO_EP)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "x.yaml").write_text(SCENARIO_NO_EP)

    class Entry:
        def __init__(self, entry):
            self._e = entry

        def __getattr__(self, name):
            return getattr(self._e, name)

        def stat(self, follow_symlinks=True):
            st = self._e.stat(follow_symlinks=follow_symlinks)
            if self._e.name == "proc":
                class Other:
                    st_dev = st.st_dev + 1
                return Other()
            return st

    real_scandir = loading.os.scandir

    class Scan:
        def __init__(self, path):
            self._it = real_scandir(path)

        def __enter__(self):
            return [Entry(e) for e in self._it.__enter__()]

        def __exit__(self, *exc):
            return self._it.__exit__(*exc)

    monkeypatch.setattr(loading.os, "scandir", Scan)
    assert budget.scenario_files([tmp_path]) == [tmp_path / "v3.yaml"]


def test_a_search_stops_at_its_entry_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "MAX_SCAN_ENTRIES", 10)
    for i in range(11):
        (tmp_path / f"f{i}.txt").write_text("")
    result = run("check", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path}: more than 10 files and folders below this "
                             "directory: name the folder that holds the scenarios\n")


def test_check_root_ends_quickly_without_a_traceback():
    start = time.perf_counter()
    result = run("check", "/")
    assert time.perf_counter() - start < 10
    assert result.exit_code in (1, 2) and "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_a_yaml_syntax_error_is_annotated_at_its_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: deepseek-v3\nhardware: h800\nbudgets:\n  tpot_s: {max: 1\n")
    result = run("check", str(path), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"::error file={str(path).replace(':', '%3A')},line=5,title=")
    assert "invalid YAML: line 5, column 1" in first


def test_a_field_error_is_annotated_at_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: deepseek-v3\nhardware: h800\ndeployment:\n  num_gpus: 8\n"
                    "  bogus: 1\nbudgets:\n  tpot_s: {max: 1}\n")
    result = run("check", str(path), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"::error file={path},line=5,title=invalid planner input::")
