"""``--overrides FILE`` (what `planner calibrate` writes) on plan, serve-disagg and validate
--runs, as on serve (tests/specs/test_overrides.py): the engine's values and the hardware's
scales apply, the output says so, and a bad file is one line and exit 2 on every command.
Also the error band of `planner plan`'s best point."""

from __future__ import annotations

import json

import pytest

from tests_support import REPO, cli_json, cli_run

OVERHEAD = 'created: "2026-11-30"\nruns: {file: my.csv, rows: 3}\nengines:\n  %s: {%s: %s}\n'
SLOW_HBM = ('created: "2026-11-30"\nruns: {file: my.csv, rows: 3}\n'
            "hardware:\n  %s:\n    efficiency: {hbm_bandwidth: 0.5}\n")
PLAN = ("plan", "llama-3.1-8b", "-H", "h100", "--isl", "1024", "--osl", "1024",
        "--concurrency", "64", "--tpot-ms", "50", "--engine", "vllm")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def engine_value(name, field):
    from planner.specs.load import load_engine

    return getattr(load_engine(name), field)


def points(records):
    key = ("hardware", "tp", "pp", "attention_dp", "weights_dtype", "kv_dtype", "concurrency")
    return {tuple(r[k] for k in key): r for r in records if r["role"] == "point"}


def test_plan_takes_an_override_file(tmp_path):
    """A per-request overhead adds to every point's TTFT (less the engine's default) and leaves
    TPOT; a slower HBM lowers the best throughput."""
    base = points(cli_json(*PLAN, "--all"))
    ov = write(tmp_path, "ov.yaml", OVERHEAD % ("vllm", "request_overhead_s", 0.5))
    over = points(cli_json(*PLAN, "--all", "--overrides", ov))
    assert over.keys() == base.keys() and len(base) > 10
    delta = 0.5 - engine_value("vllm", "request_overhead_s")
    fitting = [k for k, r in base.items() if r["fits"]]
    assert fitting
    for k in fitting:
        assert over[k]["ttft_s"] - base[k]["ttft_s"] == pytest.approx(delta, rel=1e-6)
        assert over[k]["tpot_s"] == base[k]["tpot_s"]
    slow = write(tmp_path, "slow.yaml", SLOW_HBM % "h100")
    best = lambda recs: next(r for r in recs if r["role"] == "best")  # noqa: E731
    assert (best(cli_json(*PLAN, "--overrides", slow))["tokens_per_s_per_gpu"]
            < best(cli_json(*PLAN))["tokens_per_s_per_gpu"])
    table = cli_run(*PLAN, "--overrides", ov)
    assert table.exit_code == 0
    assert "overrides applied: calibrated on 3 runs of my.csv" in " ".join(table.stdout.split())


def test_serve_disagg_takes_an_override_file(tmp_path):
    args = ("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
            "--kv-dtype", "fp8", "--prefill-workers", "2", "--prefill-dp", "16",
            "--decode-dp", "16", "--decode-batch", "32")
    (base,) = cli_json(*args)
    ov = write(tmp_path, "ov.yaml", OVERHEAD % ("trtllm", "request_overhead_s", 0.5))
    (over,) = cli_json(*args, "--overrides", ov)
    delta = 0.5 - engine_value("trtllm", "request_overhead_s")
    # closed loop: the overhead lengthens each request, so TTFT grows by at least it
    assert over["ttft_s"] - base["ttft_s"] >= delta * (1 - 1e-9)
    assert over["tpot_s"] == base["tpot_s"]
    assert over["overrides"].startswith("calibrated on 3 runs of my.csv") and \
        "overrides" not in base
    # the ratio solver reads the same specs
    solve = ("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
             "--kv-dtype", "fp8", "--disagg-ratio", "--gpus", "176")
    slow = write(tmp_path, "slow.yaml", SLOW_HBM % "h800")
    (a,), (b,) = cli_json(*solve), cli_json(*solve, "--overrides", slow)
    assert b["tokens_per_s_per_gpu"] < a["tokens_per_s_per_gpu"] and "overrides" in b


def test_validate_runs_takes_an_override_file(tmp_path):
    sample = str(REPO / "tests" / "runs" / "sample-runs.csv")
    args = ("validate", "--runs", sample, "--format", "json")
    runs = lambda out: {r["id"]: r for r in json.loads(out) if r.get("kind") == "run"}  # noqa: E731
    base = runs(cli_run(*args).stdout)
    ov = write(tmp_path, "ov.yaml", OVERHEAD % ("sglang", "request_overhead_s", 0.5))
    result = cli_run(*args, "--overrides", ov)
    assert result.exit_code == 0, result.stderr
    over = runs(result.stdout)
    assert over.keys() == base.keys()
    # the aggregated SGLang rows the model predicts, and those alone, move: TTFT by the
    # overhead less its default where every request runs at once, by c / n times it where the
    # KV cache caps the running batch at n and the rest queue (Little's law: each queued
    # round repeats the TTFT); TPOT not at all
    delta = 0.5 - engine_value("sglang", "request_overhead_s")
    sglang = sorted(i for i, r in base.items() if r["engine"] == "sglang" and r["mode"] == "agg"
                    and r["ttft_s"] is not None)
    changed = sorted(i for i in base if base[i]["ttft_s"] != over[i]["ttft_s"])
    assert sglang and changed == sglang
    moved = [(over[i]["ttft_s"] - base[i]["ttft_s"]) / delta for i in sglang]
    assert min(moved) == pytest.approx(1.0, rel=1e-6)
    assert all(m >= 1.0 - 1e-6 and m <= base[i]["concurrency"] for m, i in zip(moved, sglang))
    for i in sglang:
        assert over[i]["tpot_s"] == base[i]["tpot_s"]
    table = cli_run("validate", "--runs", sample, "--no-rows", "--overrides", ov)
    assert "overrides applied to the aggregated runs" in " ".join(table.stdout.split())


def test_validate_disagg_takes_an_override_file(tmp_path):
    """A TensorRT-LLM per-request overhead from the override file raises the shipped
    disaggregated rows' TTFT (median signed error up), never their TPOT; the table says where
    the values came from."""
    def rows(*extra):
        out = cli_run("validate-disagg", "--format", "json", *extra)
        assert out.exit_code == 0, out.stderr
        return {r["hardware"]: r for r in json.loads(out.stdout) if r.get("hardware")}
    base = rows()
    ov = write(tmp_path, "ov.yaml", OVERHEAD % ("trtllm", "request_overhead_s", 0.5))
    over = rows("--overrides", ov)
    assert over["all"]["predicted"] == base["all"]["predicted"] > 0
    assert over["all"]["ttft_median"] > base["all"]["ttft_median"]
    assert over["all"]["tpot_median_abs"] == base["all"]["tpot_median_abs"]
    table = cli_run("validate-disagg", "--overrides", ov)
    assert "overrides applied: calibrated on 3 runs of my.csv" in " ".join(table.stdout.split())


@pytest.mark.parametrize("args", [
    ("validate-disagg",),
    ("plan", "llama-3.1-8b", "-H", "h100", "--isl", "1k", "--osl", "1k"),
    ("serve-disagg", "llama-3.1-8b", "-H", "h100", "--isl", "1k", "--osl", "1k"),
    ("validate", "--runs", str(REPO / "tests" / "runs" / "sample-runs.csv")),
    ("serve", "llama-3.1-8b", "-H", "h100", "--isl", "1024", "--osl", "1024", "--concurrency",
     "8"),
])
@pytest.mark.parametrize("text, message", [
    ("created: x\n", "runs: required field is missing"),
    ('created: "x"\nruns: {file: a, rows: 1}\nhardware:\n  h100:\n    efficiency: {warp: 2}\n',
     "hardware.h100.efficiency.warp"),
    # an engine value outside the engine's bounds: the file and the field path, not only the
    # engine's own message
    ('created: "x"\nruns: {file: a, rows: 1}\nengines:\n  vllm: {burst_share: 2}\n',
     "engines.vllm.burst_share: engine vLLM: burst_share = 2 is outside its bounds [0, 1]"),
    # an efficiency scale too small to be a calibration (it printed 300-digit figures)
    ('created: "x"\nruns: {file: a, rows: 1}\nhardware:\n  h100:\n'
     '    efficiency: {hbm_bandwidth: 1.0e-300}\n',
     "hardware.h100.efficiency.hbm_bandwidth: a scale from 0.001 to 100 (got 1e-300)"),
])
def test_a_bad_override_file_is_one_line_on_every_command(tmp_path, args, text, message):
    bad = write(tmp_path, "bad.yaml", text)
    result = cli_run(*args, "--overrides", bad)
    assert result.exit_code == 2 and not result.stdout
    assert result.stderr.count("\n") == 1 and message in result.stderr and bad in result.stderr


def test_plan_shows_the_error_band_of_its_best_point():
    from planner.specs.error_bands import error_band

    args = ("plan", "llama-3.1-8b", "-H", "h100", "-H", "h200", "--isl", "1024", "--osl",
            "1024", "--concurrency", "64", "--tpot-ms", "50", "--engine", "sglang")
    best = next(r for r in cli_json(*args) if r["role"] == "best")
    band = error_band(best["hardware"], "sglang", "aggregated")
    assert band is not None
    assert best["ttft_typical_error_pct"] == band.ttft_median_error_pct
    assert best["tpot_typical_error_pct"] == band.tpot_median_error_pct
    assert best["error_band_runs"] == band.runs
    text = " ".join(cli_run(*args).stdout.split())
    assert (f"best: typical error on {'NVIDIA H100 SXM5' if best['hardware'] == 'h100' else ''}"
            in text or "best: typical error on" in text)
    assert f"(median of {band.runs:,} runs)" in text
    # the idealised engine has no validation data, and says so
    ideal = " ".join(cli_run(*args[:-2]).stdout.split())
    assert "best: no validation data for" in ideal and "no engine · aggregated" in ideal
