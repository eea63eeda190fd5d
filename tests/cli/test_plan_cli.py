"""planner plan on the command line: JSON roles and shape, CSV of every point, the HTML report,
the scenario file, the plot's missing-matplotlib error, usage errors (one line, exit 2)."""

from __future__ import annotations

import builtins
import csv
import json
import io
from html import escape

import pytest
import yaml

from tests_support import cli_json, cli_run

BASE = ("plan", "deepseek-v3", "-H", "h200", "--isl", "1024", "--osl", "1024",
        "--engine", "sglang")


@pytest.fixture(scope="module")
def records():
    return cli_json(*BASE, "--tpot-ms", "50", "--ttft-ms", "2000")


def test_json_has_the_best_point_its_runner_up_and_a_frontier(records):
    roles = [r["role"] for r in records]
    assert roles.count("best") == 1 and roles.count("runner_up") == 1
    assert roles.count("frontier") > 5
    best = next(r for r in records if r["role"] == "best")
    assert best["tpot_s"] <= 0.05 and best["ttft_s"] <= 2.0 and best["fits"]
    assert best["gpus"] == best["tp"] * best["attention_dp"] * best["pp"]
    assert best["moe_tp"] * best["moe_ep"] == best["tp"] * best["attention_dp"]
    frontier = [r for r in records if r["role"] == "frontier"]
    assert best["tokens_per_s_per_gpu"] == max(
        r["tokens_per_s_per_gpu"] for r in frontier if r["tpot_s"] <= 0.05)
    # $ and J per token from the spec's price and board power.
    assert best["usd_per_million_tokens"] == pytest.approx(
        4.54 / 3600 / best["tokens_per_s_per_gpu"] * 1e6)
    assert best["joules_per_token"] == pytest.approx(700 / best["tokens_per_s_per_gpu"])
    runner = next(r for r in records if r["role"] == "runner_up")
    assert "differs from the best in" in runner["why"]


def test_table_names_the_runner_up_and_the_search():
    out = cli_run(*BASE, "--tpot-ms", "50")
    assert out.exit_code == 0
    assert "runner-up" in out.stdout and "Pareto frontier on h200" in out.stdout
    assert "layouts evaluated in" in out.stdout and "MTP not searched" in out.stdout


def test_all_lists_every_point_in_csv():
    out = cli_run(*BASE, "--tpot-ms", "50", "--concurrency", "64", "--all", "--format", "csv")
    assert out.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    points = [r for r in rows if r["role"] == "point"]
    assert len(points) > 100 and all(r["concurrency"] == "64" for r in points)
    assert {"usd_per_million_tokens", "joules_per_token", "fits"} <= set(rows[0])


def test_request_rate_gives_the_fewest_gpus():
    recs = cli_json(*BASE, "--tpot-ms", "50", "--request-rate", "40")
    fewest = next(r for r in recs if r["role"] == "fewest_gpus")
    assert fewest["replicas"] * fewest["concurrency"] / fewest["e2e_latency_s"] >= 40
    assert fewest["total_gpus"] == fewest["replicas"] * fewest["gpus"]


def test_html_and_scenario_files(tmp_path):
    html, scenario = tmp_path / "plan.html", tmp_path / "best.yaml"
    out = cli_run(*BASE, "--tpot-ms", "50", "--html", str(html), "--write-scenario",
                  str(scenario))
    assert out.exit_code == 0, out.stderr
    assert "<svg" in html.read_text()
    # The HTML report carries the best point's error band, as the terminal table does.
    band = next(line for line in out.stdout.splitlines() if line.startswith("best: typical"))
    assert escape(band) in html.read_text()
    data = yaml.safe_load(scenario.read_text())
    assert data["workload"]["isl"] == 1024 and data["budgets"]["tpot_s"] == {"max": 0.05}
    assert data["workload"]["engine"] == "sglang"


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = cli_run(*BASE, "--concurrency", "8", "--plot", str(tmp_path / "f.png"))
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1 and "--plot needs matplotlib" in out.stderr
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("args, message", [
    (("--tpot-ms", "50", "--min-tokens-per-s-per-user", "20"), "not both"),
    (("--gpus", "8", "--max-gpus", "16"), "not both"),
    (("--plot", "f.pdf"), ".png or .svg"),
    (("--engine", "nosuch"), "nosuch"),
])
def test_usage_errors_are_one_line(args, message):
    out = cli_run(*BASE[:-2], *args)
    assert out.exit_code == 2 and message in out.stderr
    assert out.stderr.count("\n") == 1 and not out.stdout


def test_disagg_adds_the_solvers_best_split():
    from planner.catalog import load_hardware, load_model
    from planner.specs.load import load_engine
    from planner.studies.disagg import scalar, solve_disagg
    from planner.studies.plan import precision_groups

    recs = cli_json(*BASE, "--tpot-ms", "50", "--ttft-ms", "2000", "--gpus", "64", "--disagg")
    d = next(r for r in recs if r["role"] == "disagg_best")
    assert d["total_gpus"] == d["prefill_gpus"] + d["decode_gpus"] <= 64
    assert d["ttft_s"] <= 2.0 and d["tpot_s"] <= 0.05
    # The best over the precision groups of the solver, called directly.
    model, hw, engine = load_model("deepseek-v3"), load_hardware("h200"), load_engine("sglang")
    best = max(scalar(p.result.state.tokens_per_s_per_gpu) for p in (
        solve_disagg(model, hw, engine, isl_tokens=1024, osl_tokens=1024, ttft_limit_s=2.0,
                     tpot_limit_s=0.05, total_gpus=64, weights_dtype=w, moe_weights_dtype=m,
                     kv_dtype=k) for w, m, k in precision_groups(model, hw)) if p.result)
    assert d["tokens_per_s_per_gpu"] == pytest.approx(best, rel=1e-12)
    assert "against the aggregated best" in d["why"]


@pytest.mark.parametrize("args, message", [
    (("--disagg", "--tpot-ms", "50", "--gpus", "64"), "--ttft-ms and --tpot-ms"),
    (("--disagg", "--tpot-ms", "50", "--ttft-ms", "900"), "--gpus or --request-rate"),
])
def test_disagg_usage_errors(args, message):
    out = cli_run(*BASE, *args)
    assert out.exit_code == 2 and message in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_draws_the_frontier(tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"frontier{suffix}"
    out = cli_run(*BASE, "--tpot-ms", "50", "--concurrency", "64", "--plot", str(path))
    assert out.exit_code == 0 and path.read_bytes().startswith(magic)


def test_a_large_search_on_a_terminal_shows_a_progress_bar(monkeypatch):
    from planner.cli import plan as plan_cli
    from planner.studies import plan_output

    monkeypatch.setattr(plan_cli.sys.stderr, "isatty", lambda: True, raising=False)
    bar, progress = plan_cli._progress(plan_output.PROGRESS_MIN_POINTS + 1)
    try:
        assert bar is not None
        progress(1, 4)
        assert bar.tasks[0].completed == 1 and bar.tasks[0].total == 4
    finally:
        bar.stop()
    assert plan_cli._progress(plan_output.PROGRESS_MIN_POINTS) == (None, None)


def test_no_layout_meeting_the_limits_exits_1_with_the_best_over_them():
    """A violated limit is a budget violation (exit 1, as `planner check`), not a success: the
    tables still show the best point over the limits, and stderr says in one line which limit
    it breaks."""
    out = cli_run("plan", "llama-3.1-70b", "-H", "h100", "--isl", "1024", "--osl", "1024",
                  "--tpot-ms", "3", "--max-gpus", "8", "--format", "json")
    assert out.exit_code == 1
    records = json.loads(out.stdout)
    assert not [r for r in records if r["role"] == "best"]
    (over,) = [r for r in records if r["role"] == "over_limits"]
    assert over["tpot_s"] > 0.003 and over["why"].startswith("breaks TPOT")
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("violated: no layout of llama-3.1-70b meets")
    assert over["why"] in line and f"concurrency {over['concurrency']:,}" in line


def test_no_layout_fitting_in_memory_exits_1():
    out = cli_run("plan", "deepseek-v3", "-H", "h100", "--isl", "1024", "--osl", "1024",
                  "--tpot-ms", "50", "--max-gpus", "1")
    assert out.exit_code == 1
    assert out.stderr.count("\n") == 1 and "none fits in memory" in out.stderr
    assert "no layout fits and meets the limits" in out.stdout


def test_a_prefix_cache_shortens_ttft_at_every_layout_and_is_recorded(records):
    """--prefix-cache-hit F reaches every evaluated layout: at the same layout and concurrency
    TTFT is never longer than without a cache and shorter somewhere; the chosen records carry
    F (as their ISL and OSL; the --all "point" records carry neither), the title and the notes
    name it."""
    def by_layout(recs):
        keys = ("hardware", "tp", "pp", "attention_dp", "moe_tp", "moe_ep", "concurrency",
                "weights_dtype", "kv_dtype")
        return {tuple(r[k] for k in keys): r for r in recs if "concurrency" in r}

    cold = by_layout(cli_json(*BASE, "--tpot-ms", "50", "--concurrency", "64", "--all"))
    hot_records = cli_json(*BASE, "--tpot-ms", "50", "--concurrency", "64", "--all",
                           "--prefix-cache-hit", "0.5")
    hot = by_layout(hot_records)
    assert set(hot) == set(cold) and len(hot) > 10
    assert all(hot[k]["ttft_s"] <= cold[k]["ttft_s"] * (1 + 1e-12) for k in hot)
    assert any(hot[k]["ttft_s"] < 0.9 * cold[k]["ttft_s"] for k in hot)
    assert {r["prefix_cache_hit_frac"] for r in hot_records if r["role"] != "point"} == {0.5}
    assert {r["prefix_cache_hit_frac"] for r in records} == {0.0}
    text = cli_run(*BASE, "--tpot-ms", "50", "--concurrency", "64",
                   "--prefix-cache-hit", "0.5").stdout.replace("\n", " ")
    assert "prefix cache 50.0%" in text and "Prefix cache: 50.0% of each prompt" in text


@pytest.mark.parametrize("value, why", [("1", "must be at least 0 and below 1"),
                                        ("-0.2", "must be at least 0 and below 1"),
                                        ("nan", "expected a finite number")])
def test_a_bad_prefix_cache_share_is_one_line(value, why):
    out = cli_run(*BASE, "--tpot-ms", "50", "--prefix-cache-hit", value)
    assert out.exit_code == 2 and out.stderr.count("\n") == 1
    assert f"--prefix-cache-hit: {why}" in out.stderr


def test_a_share_that_rounds_to_100_percent_is_shown_whole():
    """0.9999999 (allowed: below 1) is not shown as 100.0% nor 1e-300 as 0.0%."""
    from planner.report.formats import fmt_share_pct

    assert fmt_share_pct(0.9999999) == "99.99999%" and fmt_share_pct(1e-300) == "1e-298%"
    assert fmt_share_pct(0.563) == "56.3%" and fmt_share_pct(0.5) == "50.0%"
    text = cli_run(*BASE, "--tpot-ms", "50", "--concurrency", "64",
                   "--prefix-cache-hit", "0.9999999").stdout.replace("\n", " ")
    assert "prefix cache 99.99999%" in text and "100.0%" not in text


def test_a_numpy_share_in_the_python_api_writes_a_scenario(tmp_path):
    """PlanQuery keeps F as a plain float (numpy's float64 cannot go into YAML safely)."""
    import numpy as np

    from planner import catalog
    from planner.studies import plan_output
    from planner.studies.plan import PlanQuery
    from planner.studies.plan_select import plan

    q = PlanQuery(isl=1024, osl=1024, tpot_s=0.05, concurrency=64,
                  prefix_cache_hit_frac=np.float64(0.5))
    assert type(q.prefix_cache_hit_frac) is float
    assert PlanQuery(isl=1, osl=1, prefix_cache_hit_frac=-0.0).prefix_cache_hit_frac == 0.0
    result = plan(catalog.load_model("llama-3.1-70b"), [catalog.load_hardware("h200")], None, q)
    text = plan_output.scenario_yaml(result, model="llama-3.1-70b", hardware_names=["h200"],
                                     engine=None)
    assert yaml.safe_load(text)["workload"]["prefix_cache_hit_frac"] == 0.5
