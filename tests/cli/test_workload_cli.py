"""``planner serve`` in workload mode, ``planner engines``, and the engine specs."""

from __future__ import annotations

import pytest
from tests_support import cli_json as run_json
from tests_support import cli_run as run

from planner.errors import UsageError
from planner.specs.load import load_engine

#: The JSON keys issue 20 item 5 names.
WORKLOAD_KEYS = ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
                 "total_tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_bytes_per_gpu")
MUST_SHOW = ("serve", "llama-3.1-70b", "-H", "h200", "--isl", "1024", "--osl", "1024",
             "--concurrency", "64", "--tp", "8", "--engine", "trtllm")


def test_the_must_show_command_gives_every_key():
    (rec,) = run_json(*MUST_SHOW)
    for key in WORKLOAD_KEYS:
        assert isinstance(rec[key], float) and rec[key] > 0, key
    assert rec["fits"] is True and rec["gpus"] == 8
    assert rec["e2e_latency_s"] == pytest.approx(rec["ttft_s"] + 1023 * rec["tpot_s"])
    assert rec["tokens_per_s_per_user"] == pytest.approx(1 / rec["tpot_s"])
    assert rec["decode_bound"] in ("compute", "memory", "network", "host")
    assert rec["engine"].startswith("TensorRT-LLM")


def test_the_table_names_every_figure():
    out = run(*MUST_SHOW).stdout
    for label in ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
                  "total_tokens_per_s_per_gpu", "tokens_per_s_per_user",
                  "memory_bytes_per_gpu", "decode step bound by", "prefill bound by"):
        assert label in out


def test_a_workload_that_does_not_fit_is_refused_with_its_figures():
    # Not one request fits beside the weights (405B FP8 on one H200): refused with the figures.
    result = run("serve", "llama-3.1-405b", "-H", "h200", "--isl", "8192", "--osl", "1024",
                 "--concurrency", "64", "--tp", "1")
    assert result.exit_code == 2 and result.stdout == ""
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "does not fit" in err and "KV cache" in err and "usable" in err
    assert "150.755 GB usable" in err


def test_requests_beyond_the_kv_cache_queue_for_a_slot():
    # Issue 20: the engine runs as many requests as its KV memory holds and queues the rest
    # (was refused: 640 x 9,216 tokens x 81,920 B of FP8 KV over TP 2 = 483.184 GB).
    rec = run_json("serve", "llama-3.1-70b", "-H", "h200", "--isl", "8192", "--osl", "1024",
                   "--concurrency", "640", "--tp", "2")[0]
    assert rec["fits"] and 1 <= rec["running_requests"] < 640
    assert rec["memory_bytes_per_gpu"] <= rec["usable_bytes_per_gpu"]
    out = run("serve", "llama-3.1-70b", "-H", "h200", "--isl", "8192", "--osl", "1024",
              "--concurrency", "640", "--tp", "2").stdout
    text = " ".join(out.split())
    assert f"{rec['running_requests']:,} of 640" in text
    # the regime's typical error is not claimed for a TTFT that is mostly queue; TPOT keeps it
    assert "the typical error does not cover it" in text
    assert "typical error on NVIDIA H200" in text
    calm = " ".join(run("serve", "llama-3.1-70b", "-H", "h200", "--isl", "1024", "--osl",
                        "1024", "--concurrency", "64", "--tp", "8").stdout.split())
    assert "does not cover it" not in calm


def test_workload_options_need_the_workload():
    result = run("serve", "llama-3.1-70b", "-H", "h200", "--isl", "1024")
    assert result.exit_code == 2 and "--osl" in result.stderr
    result = run("serve", "llama-3.1-70b", "-H", "h200", "--pp", "2")
    assert result.exit_code == 2 and "workload mode" in result.stderr


@pytest.mark.parametrize("extra", [("--mtp-acceptance", "0.8"), ("--mtp-depth", "1"),
                                   ("--batch-per-gpu", "32"), ("--phase", "prefill"),
                                   ("--bound",), ("--gpus", "8"), ("--overlap", "none")])
def test_single_step_options_are_refused_in_workload_mode(extra):
    # the workload model does not read them: refused in one line, never silently ignored
    result = run("serve", "deepseek-v3", "-H", "h200", "--isl", "1024", "--osl", "1024",
                 "--concurrency", "64", "--tp", "8", *extra)
    assert result.exit_code == 2 and result.stdout == ""
    assert extra[0] in result.stderr and "single-step mode" in result.stderr


def test_engines_choose_and_an_unknown_one_is_refused():
    recs = {e: run_json(*MUST_SHOW[:-1], e)[0] for e in ("trtllm", "vllm", "sglang", "none")}
    assert len({(r["ttft_s"], r["tpot_s"]) for r in recs.values()}) == 4
    assert recs["none"]["engine"] == "idealised engine"
    bad = run(*MUST_SHOW[:-1], "tensorrt")
    assert bad.exit_code == 2 and "trtllm" in bad.stderr


def test_single_step_serve_is_unchanged_by_the_workload_options():
    (rec,) = run_json("serve", "llama-3.1-70b", "-H", "h200", "--tp", "8")
    assert rec["phase"] == "decode" and "ttft_s" in rec and rec["tpot_s"] > 0


def test_planner_engines_lists_the_catalog():
    recs = run_json("engines")
    assert [r["engine"] for r in recs] == ["sglang", "trtllm", "vllm"]
    for r in recs:
        assert r["version"] and r["decode_step_overhead_s_source"]


def test_planner_engines_shows_burst_share_as_a_fraction(monkeypatch):
    """Review of issues 19-25: the table printed six values under a three-name header, the
    fraction burst_share among them as seconds (trtllm's 0.19997 as '199.970 ms')."""
    monkeypatch.setenv("COLUMNS", "250")
    out = run("engines").stdout
    assert "burst share" in out and "all-reduce-per-peer overhead" in out
    from planner.specs.load import load_engine

    share = load_engine("trtllm").burst_share       # the calibrated value of the spec
    line = next(ln for ln in out.splitlines() if "trtllm" in ln)
    assert f"{share * 1e3:.3f} ms" not in line
    assert line.rstrip(" │").endswith(f"{share:.3g}")


def test_engine_overheads_are_bounded():
    engine = load_engine("vllm")
    assert engine.model_copy(update={"decode_step_overhead_s": 0.002}).decode_step_overhead_s \
        == 0.002
    with pytest.raises(UsageError, match="outside its bounds"):
        engine.model_copy(update={"request_overhead_s": 5.0})
    with pytest.raises(UsageError, match="unknown"):
        engine.model_copy(update={"per_run_fudge": 1.0})


def test_an_engine_file_out_of_bounds_names_the_field(tmp_path):
    from planner.errors import SpecError
    from tests_support import REPO

    import re

    # whatever value the spec holds (calibrated values change it), 9 s is above its bound
    text, n = re.subn(r"(?m)^request_overhead_s: .*$", "request_overhead_s: 9.0",
                      (REPO / "engines" / "trtllm.yaml").read_text())
    assert n == 1
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="request_overhead_s"):
        load_engine(str(path))


def test_the_engines_ship_in_the_wheel_like_the_catalog():
    """A checkout reads engines/; the wheel carries them as planner/_catalog/engines."""
    import tomllib
    from pathlib import Path

    import planner
    from planner.catalog import catalog_dir, names
    from tests_support import REPO

    assert catalog_dir("engine") in (REPO / "engines",
                                     Path(planner.__file__).parent / "_catalog" / "engines")
    assert names("engine") == ["sglang", "trtllm", "vllm"]
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert build["targets"]["wheel"]["force-include"]["engines"] == "planner/_catalog/engines"
    assert "engines" in build["targets"]["sdist"]["include"]


def test_a_replica_over_the_gpu_bound_is_refused():
    """Review of issues 19-25: TP 99,999 x attention DP 99,999 printed a workload on
    9,999,800,001 GPUs."""
    result = run("serve", "llama-3.1-8b", "-H", "h200", "--isl", "1024", "--osl", "1024",
                 "--concurrency", "8", "--tp", "99999", "--attention-dp", "99999")
    assert result.exit_code == 2 and result.stdout == ""
    assert "at most 1,048,576 GPUs per replica" in result.stderr


def test_prefix_cache_hit_is_echoed_lowers_ttft_and_is_checked():
    (plain,) = run_json(*MUST_SHOW)
    (hit,) = run_json(*MUST_SHOW, "--prefix-cache-hit", "0.5")
    assert plain["prefix_cache_hit_frac"] == 0.0 and hit["prefix_cache_hit_frac"] == 0.5
    assert hit["ttft_s"] < plain["ttft_s"] and hit["tpot_s"] <= plain["tpot_s"]
    assert hit["kv_cache_bytes_per_gpu"] == plain["kv_cache_bytes_per_gpu"]
    text = run(*MUST_SHOW, "--prefix-cache-hit", "0.5").stdout
    assert "Prefix cache: 50.0% of each prompt's tokens found cached" in " ".join(text.split())
    assert "Prefix cache" not in run(*MUST_SHOW).stdout
    for bad in ("1", "-0.2", "1.5"):
        r = run(*MUST_SHOW, "--prefix-cache-hit", bad)
        assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
        assert "--prefix-cache-hit: must be at least 0 and below 1" in r.stderr
    word = run(*MUST_SHOW, "--prefix-cache-hit", "half")
    assert word.exit_code == 2 and word.stderr.count("\n") == 1
    alone = run("serve", "llama-3.1-70b", "-H", "h200", "--prefix-cache-hit", "0.5")
    assert alone.exit_code == 2 and "--prefix-cache-hit" in alone.stderr
    assert "--prefix-cache-hit" in run("serve", "--help").stdout
