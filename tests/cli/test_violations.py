"""Searches where nothing meets the limits exit 1 (a violation, as `planner check`), show the
best point over the limits, and say in one line on stderr which limit binds. `planner plan`
and `serve-disagg --disagg-ratio` are tested beside their other options (test_plan_cli.py,
test_disagg_cli.py); `train --search` here."""

from __future__ import annotations

import json

import pytest

from tests_support import cli_json, cli_run

#: Usable HBM of an H100 SXM5 (hardware/h100.yaml gpu.hbm_usable_mib), bytes.
H100_USABLE_BYTES = 81559 * 2**20


def test_a_training_search_where_nothing_fits_shows_the_nearest_layout_and_exits_1():
    """DeepSeek-V3 on 8 H100: no layout fits; the table shows the valid layout with the least
    memory per GPU, and the command exits 1 with one line."""
    out = cli_run("train", "deepseek-v3", "-H", "h100", "--tokens", "1T", "--gpus", "8",
                  "--global-batch", "64", "--search", "--format", "json")
    assert out.exit_code == 1
    (rec,) = json.loads(out.stdout)
    assert rec["role"] == "over_limits" and rec["memory_bytes_per_gpu"] > H100_USABLE_BYTES
    # the README's figure: 1.571 TB per GPU at best
    assert rec["memory_bytes_per_gpu"] == pytest.approx(1.571e12, rel=5e-4)
    assert rec["why"].startswith("needs ") and rec["why"] in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("violated: no layout of")


def test_a_training_search_that_finds_layouts_exits_0_without_a_violation():
    found = cli_json("train", "llama-3.1-70b", "-H", "h100", "--tokens", "1T", "--gpus", "64",
                     "--global-batch", "256", "--search", "--top", "2")
    assert len(found) == 2 and all("role" not in r for r in found)
