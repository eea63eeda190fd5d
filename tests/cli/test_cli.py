"""CLI: exit codes, one-line errors on stderr, JSON shape, the issue's must-show commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests_support import MAIN_AND_MODULES, V3_TEXT
from tests_support import cli_json as run_json
from tests_support import cli_run as run

from planner.cli import app







def test_ep_json_matches_the_paper():
    records = run_json("ep", "deepseek-v3", "--hardware", "h800", "--tokens-per-device", "32",
                       "--hidden", "7000", "--dispatch-bytes", "1", "--combine-bytes", "2",
                       "--bandwidth-gb-per-s", "50")
    assert len(records) == 1
    r = records[0]
    assert r["model"] == "deepseek-v3" and r["hardware"] == "h800"
    assert r["ep_comm_time_per_layer_s"] == pytest.approx(1.2096e-4, rel=1e-12)
    assert round(r["ep_ceiling_tpot_s"], 7) == 0.0147571
    assert round(r["ep_ceiling_tokens_per_s"], 2) == 67.76
    assert r["bandwidth_basis"] == "given"
    for key in ("ep_comm_time_per_layer_s", "time_per_layer_s", "ep_ceiling_tpot_s",
                "ep_ceiling_tokens_per_s", "link", "bandwidth_bytes_per_s"):
        assert key in r


def test_ep_table_names_link_and_basis():
    out = run("ep", "deepseek-v3", "--hardware", "h800").stdout
    assert "scale_out" in out and "50.0 GB/s (peak)" in out
    out = run("ep", "deepseek-v3", "--hardware", "h800", "--achievable", "--explain").stdout
    assert "achievable (0.8 × peak)" in out and "Formula:" in out and "Ref:" in out


def test_kv_cache_json_shape():
    records = run_json("kv-cache", "deepseek-v3", "qwen2.5-72b", "llama-3.1-405b")
    assert [r["kv_cache_bytes_per_token"] for r in records] == [70272, 327680, 516096]
    assert [round(r["kv_cache_multiplier_vs_first"], 2) for r in records] == [1.0, 4.66, 7.34]
    assert set(records[0]) >= {"model", "attention", "dtype", "kv_cache_bytes_per_token",
                               "context_tokens", "batch", "kv_cache_bytes"}


def test_kv_cache_context_and_batch():
    r = run_json("kv-cache", "deepseek-v3", "--dtype", "fp8", "--context-tokens", "1000",
                 "--batch", "2")[0]
    # FP8 MLA in FlashMLA's layout: 61 × (512 × 1 + 4 scales × 4 + 64 × 2) = 61 × 656, not
    # 61 × 576 × 1 (issue 18: the scales and the BF16 RoPE key are stored too).
    assert r["kv_cache_bytes_per_token"] == 40016
    assert r["kv_cache_bytes"] == 40016 * 1000 * 2


def test_flops_json_shape():
    records = run_json("flops", "deepseek-v3", "qwen2.5-72b")
    assert round(records[0]["train_flops_per_token"] / 1e9, 2) == 250.45
    assert records[1]["convention"] == "exact-causal"
    for key in ("params_total", "params_activated", "forward_flops_per_token",
                "train_flops_per_token", "forward_flops_per_token_by_part"):
        assert key in records[0]
    approx = run_json("flops", "qwen2.5-72b", "--convention", "approx-12ld2")
    assert round(approx[0]["train_flops_per_token"] / 1e9) == 394


def test_paper_command_prints_the_papers_figures():
    out = run("paper").stdout
    for figure in ("70,272", "327,680", "516,096", "4.66x", "7.34x", "7.28x", "155.30",
                   "250.45", "394.02", "2,447.85", "120.96 µs", "241.92 µs", "14.757 ms",
                   "67.76", "6.72 µs", "819.84 µs", "1,219.75", "123.86 µs", "ERRATUM"):
        assert figure in out, figure
    records = run_json("paper")
    assert {r["section"] for r in records} >= {"Table 1: KV cache per token (BF16)"}
    assert all(set(r) >= {"metric", "model", "value", "paper_value", "agrees"} for r in records)


#: Each command with a figure it prints: (as table and markdown print it, as JSON and CSV do).
EVERY_FORMAT = {
    ("models",): ("70.272 KB", "70272"),                     # DeepSeek-V3's KV cache, P Table 1
    ("hardware",): ("989 TFLOP/s", "989000000000000"),       # H100 dense BF16
    ("show", "deepseek-v3"): ("671,026,404,352", "671026404352"),
    ("show", "gb200-nvl72"): ("2,500 TFLOP/s", "2500000000000000"),
    ("kv-cache", "llama-3.1-70b"): ("327,680", "327680"),   # 80 × 2 × 8 × 128 × 2 B
    ("flops", "deepseek-v2", "--parts"): ("155.30", "155303608320"),     # P Table 2: 155
    ("paper",): ("250.45", "250449887232"),                              # P Table 2: 250
    # 32 × 9 × (7,408 + 14,336) B / 900 GB/s = 6.958 µs
    ("ep", "deepseek-v3", "--hardware", "gb200-nvl72", "--ep", "72"): ("6.96 µs", "6.95808e-06"),
}


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
@pytest.mark.parametrize("cmd", list(EVERY_FORMAT), ids=" ".join)
def test_every_command_in_every_format(cmd, fmt):
    result = run(*cmd, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    pretty, raw = EVERY_FORMAT[cmd]
    assert (pretty if fmt in ("table", "markdown") else raw) in " ".join(result.stdout.split())
    if fmt == "json":
        data = json.loads(result.stdout)
        assert isinstance(data, list) and all(isinstance(r, dict) for r in data)


def test_csv_has_one_header_and_metric_columns():
    lines = run("kv-cache", "deepseek-v3", "qwen2.5-72b", "--format", "csv").stdout.splitlines()
    assert lines[0].split(",")[:2] == ["model", "attention"]
    assert "kv_cache_bytes_per_token" in lines[0] and len(lines) == 3


@pytest.mark.parametrize("mutation, field", [
    (("hidden_size: 7168", "hidden_size: -1"), "hidden_size"),
    (("hidden_size: 7168", "hidden_size: 7168\nbogus: 1"), "bogus"),
])
def test_bad_model_file_exits_2_with_one_line(write_yaml, mutation, field):
    path = write_yaml(V3_TEXT.replace(*mutation))
    result = run("kv-cache", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and field in lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["kv-cache", "no-such-model"], "unknown model 'no-such-model'; valid names"),
    (["kv-cache", "missing/model.yaml"], "missing/model.yaml: file not found"),
    (["ep", "deepseek-v3", "--hardware", "no-such-gpu"], "unknown hardware 'no-such-gpu'"),
    (["ep", "llama-3.1-70b", "--hardware", "h800"], "dense model"),
    (["ep", "deepseek-v3", "--hardware", "h800", "--achievable", "--bandwidth-gb-per-s", "9"],
     "not both"),
    (["show", "nothing-here"], "unknown name 'nothing-here'"),
])
def test_user_mistakes_exit_2_with_one_line(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_usage_errors_exit_2():
    assert run("kv-cache", "deepseek-v3", "--batch", "0").exit_code == 2
    assert run("kv-cache", "deepseek-v3", "--dtype", "int3").exit_code == 2
    assert run("flops", "deepseek-v3", "--convention", "nope").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_python_dash_m_and_no_traceback(write_yaml):
    path = write_yaml("a: [1, 2\n")
    proc = subprocess.run([sys.executable, "-m", "planner", "kv-cache", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {path}: invalid YAML: line 2, column 1: " \
                                  "did not find expected ',' or ']'"




# ----------------------------------------------------------------------------- structure
def test_every_command_is_in_the_map_of_its_group_module():
    """main() imports only the module that COMMANDS names: a command missing from the map, or
    mapped to the wrong module, would not be found there."""
    from planner.cli import COMMANDS

    names = [c.name for c in app.registered_commands]
    assert names == list(COMMANDS)   # also the order `planner --help` lists them in
    for c in app.registered_commands:
        assert c.callback.__module__ == f"planner.cli.{COMMANDS[c.name]}", c.name




@pytest.mark.parametrize("args, group", [
    (["kv-cache", "deepseek-v3"], "model"),
    (["serve", "deepseek-v3", "-H", "h800"], "serving"),
    (["collective", "all-reduce", "-H", "h800", "--size", "1 GB", "--ranks", "8"], "cluster"),
    (["check", "--help"], "budget"),
])
def test_main_imports_only_the_invoked_commands_group(args, group):
    """The cold start: a command imports its own group module, not the other five, nor numpy."""
    proc = subprocess.run([sys.executable, "-c", MAIN_AND_MODULES, *args],
                          capture_output=True, text=True)
    seen = json.loads(proc.stderr.strip().splitlines()[-1])
    assert seen["code"] in (0, None), proc.stderr
    assert seen["cli"] == sorted(["planner.cli", f"planner.cli.{group}", "planner.cli.options"])
    assert seen["numpy"] is False


def test_help_lists_every_command_with_its_help_line():
    from planner.cli import COMMANDS

    proc = subprocess.run([sys.executable, "-m", "planner", "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})
    assert proc.returncode == 0
    commands = proc.stdout.split("\nCommands:\n", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ")]
    assert [n for n in listed if n in COMMANDS] == list(COMMANDS)
    for c in app.registered_commands:
        first_line = c.callback.__doc__.splitlines()[0].strip()
        assert first_line[:60] in proc.stdout, c.name


@pytest.mark.parametrize("args", [
    ["kv-cache", "{cfg}"], ["flops", "{cfg}"], ["ep", "{cfg}", "-H", "h800"],
    ["routing", "{cfg}", "-H", "h800"],
    ["train", "{cfg}", "-H", "h800", "--tokens", "14.8T", "--gpus", "2048", "--mfu", "0.4"],
    ["serve", "{cfg}", "-H", "h800"], ["fit", "{cfg}", "-H", "h800"],
])
def test_every_model_argument_takes_a_config_json(tmp_path, args):
    """Each model argument's help says "YAML path or config.json" (options.MODEL and kin)."""
    from tests_support import DEEPSEEK_V3, write_config

    cfg = str(write_config(tmp_path, DEEPSEEK_V3, folder="hf-v3"))
    records = run_json(*[a.format(cfg=cfg) for a in args])
    assert records and all(r.get("model") in (None, "hf-v3") for r in records)
    assert any(r.get("model") == "hf-v3" for r in records)
