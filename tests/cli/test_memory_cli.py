"""Issue 18, memory items at the command line: GiB capacities, the TP default, fit's TP, the two
weight totals named apart, compare's context column and its JSON."""

from __future__ import annotations

import json

import pytest
from tests_support import cli_json as run_json
from tests_support import cli_run as run







def test_show_h100_has_80_gib_of_hbm():
    """Must show: 85.9e9 bytes (80 GiB), and what the driver leaves (81,559 MiB)."""
    (rec,) = [r for r in run_json("show", "h100") if "hbm_capacity_bytes" in r]
    assert rec["hbm_capacity_bytes"] == 80 * 2**30 == pytest.approx(85.9e9, rel=1e-3)
    assert rec["hbm_usable_bytes"] == 81_559 * 2**20
    assert "80 GiB" in run("show", "h100").stdout


def test_fit_llama_70b_fp8_on_one_h800():
    """Must show: 1 GPU. Stored weights 72.67 GB + KV 4,096 x 327,680 B + 10% of 85.52 GB usable
    = 82.57 GB <= 85.52 GB (on 80e9 B it needed 2)."""
    (rec,) = run_json("fit", "llama-3.1-70b", "-H", "h800", "--weights-dtype", "fp8")
    assert (rec["num_gpus"], rec["tp"]) == (1, 1)
    assert rec["memory_bytes_per_gpu"] == pytest.approx(82.567e9, rel=1e-4)
    assert rec["checked"] == [{"gpus": 1, "tp": 1, "fits": True}]


def test_fit_reports_the_smallest_tp_that_fits():
    (rec,) = run_json("fit", "llama-3.1-70b", "-H", "h100", "--weights-dtype", "bf16")
    # BF16: 141.1 GB: no fit on 1; on 2 GPUs TP 1 replicates it, TP 2 halves it: 2 GPUs, TP 2.
    assert (rec["num_gpus"], rec["tp"]) == (2, 2)
    assert {"gpus": 2, "tp": 1, "fits": False} in rec["checked"]
    assert " TP " in run("fit", "llama-3.1-70b", "-H", "h100").stdout


def test_fit_names_both_weight_totals():
    """DeepSeek-V3 FP8: 671.03 GB of parameter bytes (P x b, evaluate's weight_bytes), 673.15 GB
    stored (scales, BF16 parts): two names, both in the JSON."""
    (rec,) = run_json("fit", "deepseek-v3", "-H", "h200")
    assert rec["weight_bytes"] == 671_026_404_352
    assert rec["stored_weight_bytes"] == pytest.approx(673.1505e9, rel=1e-6)
    assert "weight_bytes_total" not in rec


def test_serve_dense_without_tp_takes_the_smallest_tp_that_fits():
    """Llama-3.1-70B on 8 x H100, 32 sequences of 4,096: TP 1 needs 124 GB per GPU; the default
    is now the smallest TP that fits (TP 4), and the output says so."""
    default = run("serve", "llama-3.1-70b", "-H", "h100")
    assert default.exit_code == 0
    assert "TP 4, the smallest that fits" in default.stdout
    rec = run_json("serve", "llama-3.1-70b", "-H", "h100")[-1]
    assert (rec["tp"], rec["tp_chosen"], rec["fits"]) == (4, True, True)
    tp1 = run_json("serve", "llama-3.1-70b", "-H", "h100", "--tp", "1")[-1]
    assert (tp1["tp"], tp1["tp_chosen"], tp1["fits"]) == (1, False, False)
    assert run_json("serve", "llama-3.1-70b", "-H", "h100", "--dp-attention")[-1]["tp"] == 1
    assert run_json("serve", "llama-3.1-70b", "-H", "h100", "--no-dp-attention")[-1]["tp"] == 8


def test_serve_moe_default_keeps_dp_attention():
    """DeepSeek-V3 on 256 H800 fits at TP 1: the default stays data-parallel attention."""
    rec = run_json("serve", "deepseek-v3", "-H", "h800")[-1]
    assert (rec["gpus"], rec["tp"], rec["tp_chosen"], rec["fits"]) == (256, 1, True, True)


def test_serve_says_when_no_tp_fits():
    out = run("serve", "llama-3.1-405b", "-H", "h100", "--weights-dtype", "bf16").stdout
    assert "does not fit at any TP" in out and "DOES NOT FIT" in out


def test_compare_json_has_no_negative_zero_and_splits_gqa_kv():
    result = run("compare", "deepseek-v3", "llama-3.1-405b", "-H", "h800", "-f", "json")
    assert "-0.0" not in result.stdout
    # The first table's records (the context tables of issue 21 follow them).
    v3, llama = json.loads(result.stdout)[:2]
    assert v3["max_context_tokens_per_gpu.h800"] is None
    # Llama-3.1-405B at TP 8: 51.28e9 B of weights per GPU, KV 516,096 / 8 B per token per GPU:
    # (85.52e9 x 0.9 - 51.28e9) // 64,512 = 398,246 (the KV unsplit gave 56,711).
    assert llama["max_context_tokens_per_gpu.h800"] == 398_246
