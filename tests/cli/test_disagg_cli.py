"""planner serve-disagg and validate-disagg: JSON keys, refusals, the solver, exit codes."""

from __future__ import annotations

import json

import pytest

from tests_support import cli_json, cli_run

POOLS = ["deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024", "--kv-dtype", "fp8",
         "--prefill-workers", "2", "--prefill-dp", "16", "--decode-dp", "16",
         "--decode-batch", "32"]


def test_serve_disagg_json_has_the_aggregated_keys_and_its_own():
    (rec,) = cli_json("serve-disagg", *POOLS)
    (agg,) = cli_json("serve", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
                      "--concurrency", "512", "--attention-dp", "16", "--kv-dtype", "fp8")
    # running_requests: the aggregated engine's KV-capped batch (disaggregated pools hold all)
    assert set(agg) - {"decode_step_s", "prefill_s", "running_requests"} <= set(rec)
    assert {"prefill_gpus", "decode_gpus", "kv_transfer_s"} <= set(rec)
    assert (rec["prefill_gpus"], rec["decode_gpus"], rec["gpus"]) == (32, 16, 48)
    assert rec["concurrency"] == 512 and rec["kv_link"] == "scale_out"
    assert rec["kv_bytes_per_request"] == 40_016 * 4096
    assert rec["ttft_s"] > rec["prefill_s"] + rec["kv_transfer_s"]
    assert rec["tokens_per_s_per_user"] == pytest.approx(1 / rec["tpot_s"])


def test_serve_disagg_mtp_drafts_lower_tpot_and_say_tokens_per_step():
    (plain,) = cli_json("serve-disagg", *POOLS)
    (mtp,) = cli_json("serve-disagg", *POOLS, "--mtp", "1")
    (low,) = cli_json("serve-disagg", *POOLS, "--mtp", "1", "--mtp-acceptance", "0.5")
    assert plain["mtp_tokens_per_step"] == 1.0
    assert mtp["mtp_tokens_per_step"] == pytest.approx(1.85)     # DeepSeek-V3 §5.4.3's 0.85
    assert low["mtp_tokens_per_step"] == pytest.approx(1.5)
    assert mtp["decode_step_s"] > plain["decode_step_s"]
    assert mtp["tpot_s"] == pytest.approx(mtp["decode_step_s"] / 1.85)
    assert mtp["tpot_s"] < low["tpot_s"] < plain["tpot_s"]
    text = cli_run("serve-disagg", *POOLS, "--mtp", "1")
    assert "mtp_tokens_per_step" in text.stdout
    assert "mtp_tokens_per_step" not in cli_run("serve-disagg", *POOLS).stdout
    alone = cli_run("serve-disagg", *POOLS, "--mtp-acceptance", "0.5")
    assert alone.exit_code == 2 and "--mtp-acceptance needs --mtp" in alone.stderr


def test_serve_disagg_kv_bandwidth_moves_ttft_only():
    (slow,) = cli_json("serve-disagg", *POOLS, "--rate", "2", "--kv-bandwidth", "10 GB/s")
    (fast,) = cli_json("serve-disagg", *POOLS, "--rate", "2", "--kv-bandwidth", "400 GB/s")
    assert fast["ttft_s"] < slow["ttft_s"]
    assert fast["ttft_s"] == pytest.approx(slow["ttft_s"] - slow["kv_transfer_s"]
                                           + fast["kv_transfer_s"])
    assert fast["tpot_s"] == slow["tpot_s"]
    assert fast["tokens_per_s_per_gpu"] == slow["tokens_per_s_per_gpu"]


def test_a_pool_that_does_not_fit_is_refused_on_one_line():
    r = cli_run("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
                "--prefill-dp", "8")
    assert r.exit_code == 2
    line = r.stderr.strip()
    assert "\n" not in line and "prefill" in line and "do not fit" in line


def test_the_solver_answer_and_its_usage_errors():
    (rec,) = cli_json("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl",
                      "1024", "--kv-dtype", "fp8", "--disagg-ratio", "--gpus", "176",
                      "--max-ttft", "2 s", "--max-tpot", "50 ms")
    assert rec["prefill_gpus"] + rec["decode_gpus"] <= 176
    assert rec["ttft_s"] <= 2 and rec["tpot_s"] <= 0.05
    assert rec["binding_side"] in ("prefill", "decode")
    assert rec["feasible_splits"] >= 1
    both = cli_run("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
                   "--disagg-ratio")
    assert both.exit_code == 2 and "exactly one of --gpus and --rate" in both.stderr
    tight = cli_run("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl",
                    "1024", "--disagg-ratio", "--gpus", "16", "--max-tpot", "1 ms")
    # Nothing meets the limits: a violation (exit 1, as planner plan and check), not a usage
    # error; one line names it.
    assert tight.exit_code == 1 and tight.stderr.count("\n") == 1
    assert tight.stderr.startswith("violated: no prefill:decode split")


def test_the_solver_shows_the_best_split_over_the_limits_and_exits_1():
    args = ("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
            "--kv-dtype", "fp8", "--disagg-ratio", "--gpus", "176", "--max-ttft", "2 s")
    out = cli_run(*args, "--max-tpot", "1 ms", "--format", "json")
    assert out.exit_code == 1
    (rec,) = json.loads(out.stdout)
    assert rec["role"] == "over_limits" and rec["feasible_splits"] == 0
    assert rec["tpot_s"] > 0.001 and "TPOT" in rec["why"]
    assert rec["prefill_gpus"] + rec["decode_gpus"] <= 176
    # The best split without limits: at least as many tokens/s per GPU as under any limit.
    (met,) = cli_json(*args, "--max-tpot", "50 ms")
    assert rec["tokens_per_s_per_gpu"] >= met["tokens_per_s_per_gpu"]
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("violated: ") and rec["why"] in line


def test_validate_disagg_on_a_small_file(tmp_path):
    from planner.specs.runs import COLUMNS

    row = dict.fromkeys(COLUMNS, "")
    row.update(id="r1", silicon_data_source="x; silicon_concurrency=16", backend="sglang",
               model_path="deepseek-ai/DeepSeek-V3", system="h200_sxm", precision="fp8",
               mode="disagg", isl="1024", osl="1024", gemm_quant_mode="fp8",
               moe_quant_mode="fp8", prefill_tp_size="8", prefill_moe_ep_size="8",
               decode_tp_size="8", decode_moe_ep_size="8", prefill_batch_size="1",
               prefill_num_workers="1", decode_batch_size="16", decode_num_workers="1",
               silicon_ttft_ms="400",
               silicon_tpot_ms="10")
    p = tmp_path / "r.csv"
    p.write_text(",".join(COLUMNS) + "\n" + ",".join(row[c] for c in COLUMNS) + "\n")
    r = cli_run("validate-disagg", "--runs", str(p), "--format", "json")
    assert r.exit_code == 0, r.stderr
    recs = json.loads(r.stdout)
    h200 = next(x for x in recs if x.get("hardware") == "h200")
    assert (h200["rows"], h200["predicted"]) == (1, 1)


@pytest.mark.parametrize("args, problem", [
    (["--kv-bandwidth", "0 GB/s"], "--kv-bandwidth: must be above 0"),
    (["--disagg-ratio", "--gpus", "16", "--max-ttft", "0 s"], "--max-ttft: must be above 0"),
    (["--decode-tp", "99999", "--decode-dp", "99999"], "at most 1,048,576 GPUs per replica"),
])
def test_serve_disagg_refuses_a_zero_limit_or_a_huge_pool_in_one_line(args, problem):
    """Review of issues 19-25: a zero KV bandwidth printed a NaN warning before its error; a
    zero limit searched for nothing; 10^10 GPUs per worker was evaluated."""
    result = cli_run("serve-disagg", "deepseek-v3", "-H", "h200", "--isl", "1k", "--osl", "1k",
                     *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and problem in result.stderr


@pytest.mark.parametrize("args, named", [
    (["--disagg-ratio", "--gpus", "16", "--prefill-tp", "4"], "--prefill-tp"),
    (["--disagg-ratio", "--gpus", "16", "--decode-batch", "8"], "--decode-batch"),
    (["--disagg-ratio", "--gpus", "16", "--kv-bandwidth", "50 GB/s"], "--kv-bandwidth"),
    (["--max-tpot", "30 ms"], "--max-tpot"),
    (["--decode-ep", "8", "--max-ttft", "1 s"], "--max-ttft"),
])
def test_serve_disagg_refuses_options_its_mode_does_not_read(args, named):
    """The solver chooses the pools itself, and the pools given have no limits to meet: an
    option the call would not read is refused in one line, never silently ignored."""
    result = cli_run("serve-disagg", "deepseek-v3", "-H", "h200", "--isl", "1k", "--osl", "1k",
                     *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and named in result.stderr


def test_a_rate_beyond_the_capped_search_is_not_called_a_memory_failure():
    # DeepSeek-V3 fits on H800 workers, but 100,000 requests/s is above what the most prefill
    # workers the search tries (MAX_PREFILL_WORKERS per layout pair) serve: every split that
    # fits queues without bound. The line says so, with the rate the search reaches.
    from planner.studies.disagg import MAX_PREFILL_WORKERS

    base = ("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
            "--kv-dtype", "fp8", "--disagg-ratio", "--max-ttft", "2s", "--max-tpot", "50ms")
    out = cli_run(*base, "--rate", "100000")
    line = out.stderr.strip()
    assert out.exit_code == 1 and "\n" not in line and "none fits in memory" not in line
    assert "the rate 100,000.0 requests/s is above what the search reaches" in line
    assert f"at most {MAX_PREFILL_WORKERS:,} prefill workers" in line
    reach = float(line.split("that fits serves ")[1].split(" requests/s")[0].replace(",", ""))
    assert 0 < reach < 100_000
    # Just under that rate the search does find splits (without limits at least).
    under = cli_run(*base, "--rate", f"{0.9 * reach:.1f}")
    assert "above what the search reaches" not in under.stderr
    # One GPU holds no prefill and decode pool: that one is the memory failure.
    none = cli_run(*base, "--gpus", "1")
    assert none.exit_code == 1 and "none fits in memory" in none.stderr


SOLVER = ("serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "4096", "--osl", "1024",
          "--kv-dtype", "fp8", "--disagg-ratio", "--gpus", "176", "--max-ttft", "2 s",
          "--max-tpot", "50 ms")


def test_the_solver_with_deepseeks_prefix_cache_hit_rate():
    """DeepSeek's day-6 overview: 56.3% of its input tokens hit its on-disk KV cache. With it
    the prefill pool shrinks from 112 GPUs (7 x 16) to 64 (one worker of attention DP 64)
    beside a decode pool of 64 at 64 per rank, and the prefill pool binds (README's
    serve-disagg section); without it, 112 + 64 with decode binding. The worker's stated batch
    is 1 prompt per rank: since round 13 the solver rates a prefill candidate's capacity at its
    loaded pass (its token budget's prompts per rank, as serve_disagg), the same at 1 and 2, and
    1 gives each request the shorter pass (it chose 2 before)."""
    (plain,) = cli_json(*SOLVER)
    (hit,) = cli_json(*SOLVER, "--prefix-cache-hit", "0.563")
    assert (plain["prefill_gpus"], plain["decode_gpus"], plain["binding_side"]) == \
        (112, 64, "decode")
    assert (hit["prefill_gpus"], hit["decode_gpus"], hit["binding_side"]) == \
        (64, 64, "prefill")
    assert hit["prefill_layout"] == "1 x (TP 1, PP 1, attention DP 64), batch 1 per rank"
    assert hit["decode_layout"] == "1 x (TP 1, PP 1, attention DP 64), batch 64 per rank"
    assert hit["prefix_cache_hit_frac"] == 0.563 and plain["prefix_cache_hit_frac"] == 0.0
    assert hit["kv_bytes_per_request"] == plain["kv_bytes_per_request"] == 40_016 * 4096
    assert hit["tokens_per_s_per_gpu"] > plain["tokens_per_s_per_gpu"]
    assert hit["ttft_s"] <= 2 and hit["tpot_s"] <= 0.05


def test_the_solver_runs_mtp_in_every_decode_candidate():
    (rec,) = cli_json(*SOLVER, "--mtp", "1")
    assert rec["mtp_tokens_per_step"] == pytest.approx(1.85)
    assert rec["tpot_s"] == pytest.approx(rec["decode_step_s"] / 1.85)
    assert rec["tpot_s"] <= 0.05 and rec["ttft_s"] <= 2


def test_serve_disagg_refuses_a_hit_fraction_outside_0_to_1_in_one_line():
    for args in (POOLS, SOLVER[1:]):
        r = cli_run("serve-disagg", *args, "--prefix-cache-hit", "1.0")
        assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
        assert "--prefix-cache-hit: must be at least 0 and below 1" in r.stderr
    assert "--prefix-cache-hit" in cli_run("serve-disagg", "--help").stdout
