"""Budget loading survivors of the mutation run (benchmarks/mutation.py, seed 0): each test fails
on the mutant it names."""

from __future__ import annotations

import pytest


def test_a_file_beyond_the_size_limit_is_not_taken_for_a_scenario(tmp_path):
    from planner.budget.loading import is_scenario_file
    from planner.specs.yaml_reader import MAX_SPEC_FILE_BYTES

    big = tmp_path / "data.yaml"
    big.write_text("budgets:\n" + "#" * MAX_SPEC_FILE_BYTES)
    assert not is_scenario_file(big)
    small = tmp_path / "s.yaml"
    small.write_text("budgets:\n  tpot_s: {max: 1}\n")
    assert is_scenario_file(small)


def test_an_unknown_budget_metric_names_its_line(tmp_path):
    from planner.budget.loading import load_scenario
    from planner.errors import SpecError

    path = tmp_path / "s.yaml"
    path.write_text("model: deepseek-v3\nhardware: h800\nbudgets:\n  no_such_metric: {max: 1}\n")
    with pytest.raises(SpecError) as err:
        load_scenario(path)
    assert err.value.line == 4 and err.value.field == "budgets.no_such_metric"


def test_the_directory_search_stops_past_its_entry_limit_not_at_it(tmp_path, monkeypatch):
    from planner.budget import loading
    from planner.errors import SpecError

    for i in range(3):
        (tmp_path / f"s{i}.yaml").write_text("budgets:\n  tpot_s: {max: 1}\n")
    monkeypatch.setattr(loading, "MAX_SCAN_ENTRIES", 3)
    assert len(loading.scenario_files([tmp_path])) == 3      # exactly at the limit: searched
    (tmp_path / "s3.yaml").write_text("budgets:\n  tpot_s: {max: 1}\n")
    with pytest.raises(SpecError, match="more than 3 files and folders"):
        loading.scenario_files([tmp_path])
