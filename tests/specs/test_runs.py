"""Measured serving runs: reading the CSV (numpy columns, base units, one-line errors naming the
file, row and column) and resolving each row to catalog specs or a reason."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest

from planner import catalog
from planner.errors import CatalogError, SpecError
from planner.specs.runs import (AGG, COLUMNS, REASONS, RunTable, concurrency_exceptions,
                                read_runs, resolve)
from tests_support import REPO

SHARED = REPO.parent / "shared" / "data" / "serving-runs.csv"


@pytest.fixture(scope="module")
def table() -> RunTable:
    return read_runs(catalog.SERVING_RUNS_CSV)


@pytest.fixture(scope="module")
def resolved(table):
    return resolve(table)


def _row(table, run_id):
    (i,) = np.flatnonzero(table.id == run_id)
    return i


def test_shipped_copy_is_the_data_with_its_notice():
    assert catalog.SERVING_RUNS_CSV.is_file()
    notice = (catalog.SERVING_RUNS_CSV.parent / "README.md").read_text()
    assert "Apache License, Version 2.0" in notice and "0b077da5e017cb8ceac1ad14e91eb6e26c40207a" in notice
    assert "Apache License" in (catalog.SERVING_RUNS_CSV.parent / "LICENSE-serving-runs.txt").read_text()
    if SHARED.is_file():
        assert SHARED.read_bytes() == catalog.SERVING_RUNS_CSV.read_bytes()


def test_read_shipped_runs(table):
    assert len(table) == 3702
    assert (table.mode == AGG).sum() == 2731
    # kimik2_5 ... c192: a disagg row, TTFT 395.33 ms -> s; its decode layout tp 8 x 48 workers?
    i = _row(table, "kimik2_5_gb200_trtllm_fp4_disagg_1024x1024_c192_cfg759")
    assert table.measured_ttft_s[i] == pytest.approx(0.3953342926890855)
    assert table.measured_tpot_s[i] == pytest.approx(0.011703058552696522)
    assert (table.decode_batch_size[i], table.decode_num_workers[i], table.decode_tp[i],
            table.decode_moe_ep[i]) == (48, 4, 8, 8)
    assert table.silicon_concurrency[i] == 192 and table.concurrency[i] == 192
    assert table.tp[i] == 1                          # blank agg layout of a disagg row: 1
    # every layout field is at least 1, every time positive
    for name in ("tp", "pp", "attention_dp", "moe_tp", "moe_ep", "decode_tp", "prefill_tp"):
        assert getattr(table, name).min() >= 1
    assert (table.measured_ttft_s > 0).all() and (table.measured_tpot_s > 0).all()


def test_concurrency_per_replica_is_batch_times_attention_dp(table):
    agg = table.mode == AGG
    as_given = agg & ~table.layout_reread       # a re-read layout keeps the source's concurrency
    assert (table.concurrency[as_given]
            == table.batch_size[as_given] * table.attention_dp[as_given]).all()
    ok = agg & (table.silicon_concurrency > 0)
    agree = table.concurrency[ok] == table.silicon_concurrency[ok]
    assert agree.mean() > 0.98
    odd = concurrency_exceptions(table)
    # 9 rows without silicon_concurrency, 23 whose fields disagree with it (the gap-analysis
    # rows, whose batch_size is per GPU, and one DeepSeek-R1 row whose source gives attention
    # DP 64: 8 GPUs read as run, batch 32 x 8 ranks, silicon_concurrency 32)
    assert len(odd) == 32
    assert ("2026_04_06_deepseek_r1_b200_sxm_trtllm_fp4_agg_8192x1024_c32_tp8_ep8_1537",
            32, 8, 32) in odd
    assert sum(1 for *_, c in odd if c == 0) == 9


def test_resolve_known_rows(table, resolved):
    i = _row(table, "2026_04_06_deepseek_r1_b200_sxm_trtllm_fp4_agg_8192x1024_c32_tp8_ep8_1537")
    assert (resolved.model[i], resolved.hardware[i], resolved.engine[i],
            resolved.weights_dtype[i], resolved.moe_weights_dtype[i]) == (
        "deepseek-v3", "b200", "trtllm", "nvfp4", "nvfp4")
    assert resolved.reason[i].startswith("concurrency: batch_size x attention_dp = 2048")
    dense = (resolved.model == "llama-3.1-70b") & (resolved.reason == "")
    assert dense.sum() > 100 and all(m is None for m in resolved.moe_weights_dtype[dense])
    fp8_block = (table.gemm_quant_mode == "fp8_block") & (resolved.reason == "")
    assert set(resolved.weights_dtype[fp8_block]) == {"fp8"}
    blank = (table.gemm_quant_mode == "") & (resolved.reason == "")
    assert set(resolved.weights_dtype[blank]) == {"bf16"}
    assert set(resolved.hardware[resolved.reason == ""]) == {"h100", "h200", "b200",
                                                                  "gb200-nvl72"}
    assert set(resolved.family) >= {"deepseek-v3", "kimi-k2.5", "minimax-m2.5", "llama-3.1-8b",
                                    "qwen3-32b", "qwen3-235b-a22b", "llama-3.1-70b"}


def test_every_unexpressible_row_has_its_reason(table, resolved):
    reasons = resolved.reason
    assert all(isinstance(r, str) for r in reasons)
    disagg = table.mode != AGG
    # the disagg hook is set (issue 22): no disaggregated row is refused as "not yet
    # modelled"; their own layouts are checked by planner.studies.disagg_runs
    assert REASONS["disagg"] not in set(reasons[disagg])
    assert (reasons[disagg] == "").sum() == 971   # 916 + gpt-oss 37 + GLM-5 18 (issue 21)
    # Issue 21's per-layer attention (attention_layers) resolves gpt-oss, GLM-5 and Qwen3.5:
    # no row waits for its attention kind any more.
    assert not any(r.startswith("attention kind not yet modelled") for r in reasons)
    # INT4 weight-only (issue 19): Kimi-K2.5's int4_wo rows resolve to the int4 format
    int4 = table.gemm_quant_mode == "int4_wo"
    assert int4.sum() == 78
    assert not any(r.startswith(REASONS["dtype"].split("{")[0]) for r in reasons[int4])
    expressible = (reasons == "") & (table.mode == AGG)
    # 1,976 before issue 21; its attention patterns add gpt-oss-120b's, Qwen3.5-397B-A17B's
    # and GLM-5's aggregated rows that precision and layout permit (431); issue 19's INT4
    # weight-only and FP4-on-Hopper formats 278 more. 41 GB200 rows whose TP (12 .. 72) does
    # not divide DeepSeek's 128 heads are refused (disaggregated runs recorded as TP groups).
    assert expressible.sum() == 2644
    heads = np.array([r.startswith("layout: tp ") for r in reasons])
    assert heads.sum() == 41 and set(table.system[heads]) == {"gb200"}


def test_resolve_user_rows(tmp_path):
    head = ",".join(COLUMNS)
    base = dict.fromkeys(COLUMNS, "")
    base.update(id="r", silicon_data_source="mine; silicon_concurrency=8", backend="vllm",
                model_path="meta-llama/Llama-3.1-8B-Instruct", system="h100_sxm", mode="agg",
                isl="1024", osl="128", batch_size="8", tp_size="1", silicon_ttft_ms="50",
                silicon_tpot_ms="10")
    rows = [base, {**base, "id": "b300", "system": "b300_sxm"},
            {**base, "id": "tpu", "system": "tpu_v5"},
            {**base, "id": "fp4", "gemm_quant_mode": "nvfp4"},
            {**base, "id": "mx", "gemm_quant_mode": "mxfp6"},
            {**base, "id": "tgi", "backend": "tgi"},
            {**base, "id": "new", "model_path": "acme/New-1"}]
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([head] + [",".join(r[c] for c in COLUMNS) for r in rows]) + "\n")
    t = read_runs(p)
    got = dict(zip(t.id, resolve(t).reason))
    assert got["r"] == ""
    assert got["b300"] in (REASONS["hardware"].format("b300"), "")
    assert got["tpu"] == REASONS["system"].format("'tpu_v5'")
    # NVFP4 on Hopper is weight-only (issue 19): expressible
    assert got["fp4"] == ""
    assert got["mx"] == REASONS["quant"].format("'mxfp6'")
    assert got["tgi"] == REASONS["backend"].format("'tgi'")
    assert got["new"] == REASONS["model"].format("acme/New-1")


@pytest.mark.parametrize("edit, where, problem", [
    (lambda t: t.replace("silicon_tpot_ms", "tpot"), "header", "missing column(s) silicon_tpot_ms"),
    (lambda t: t.replace(",8192,1024,", ",8192x,1024,", 1), "row 2, column isl", "whole number"),
    (lambda t: t.replace(",8192,1024,", ",-5,1024,", 1), "row 2, column isl", "whole number"),
    (lambda t: t.replace(",324.69235197495436,", ",nan,", 1), "row 2, column silicon_ttft_ms",
     "finite number"),
    (lambda t: t.replace(",324.69235197495436,", ",,", 1), "row 2, column silicon_ttft_ms",
     "required"),
    (lambda t: t.replace(",4,1,4,1,4,8,", ",4.5,1,4,1,4,8,", 1), "row 2, column prefill_attention_dp_size",
     "whole number"),
    (lambda t: t.replace("\n", ",extra\n", 2).replace(",extra", "", 1), "row 2", "fields"),
    (lambda t: "", None, "empty"),
    # Hostile values (review of issues 19-25): each refused with its row and column, never a
    # NaN error, an int64 overflow or an internal error further on.
    (lambda t: t.replace(",8192,1024,", ",0,1024,", 1), "row 2, column isl",
     "whole number in 1 .. 1,073,741,824"),
    (lambda t: t.replace(",8192,1024,", ",1e30,1024,", 1), "row 2, column isl", "1e30"),
    (lambda t: t.replace(",324.69235197495436,", ",0,", 1), "row 2, column silicon_ttft_ms",
     "finite number > 0"),
    (lambda t: t.replace(",4,1,4,1,4,8,", ",99999999999999999999,1,4,1,4,8,", 1),
     # (row 2 is disaggregated: its pool sizes are 1 .. 32,768 since a 0 there is refused)
     "row 2, column prefill_attention_dp_size", "whole number in 1 .. 32,768"),
    (lambda t: t.replace("silicon_concurrency=4;", f"silicon_concurrency={'9' * 30};", 1),
     "row 2, column silicon_data_source", "silicon_concurrency above"),
    (lambda t: t.splitlines()[0] + "\n", None, "only a header row"),
])
def test_read_errors_name_file_row_and_column(tmp_path, edit, where, problem):
    text = catalog.SERVING_RUNS_CSV.read_text()
    p = tmp_path / "bad.csv"
    p.write_text(edit(text))
    with pytest.raises(SpecError) as info:
        read_runs(p)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(p))
    if where:
        assert f": {where}: " in msg
    assert problem in msg


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        read_runs(tmp_path / "none.csv")


# ----------------------------------------------------------------------------- Hugging Face ids
@pytest.mark.parametrize("hf_id, name", [
    ("deepseek-ai/DeepSeek-R1", "deepseek-v3"), ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-V3.1", "deepseek-v3"), ("nvidia/DeepSeek-R1-NVFP4", "deepseek-v3"),
    ("nvidia/deepseek-v3.1-nvfp4", "deepseek-v3"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("nvidia/Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
    ("meta-llama/Llama-3.1-70B", "llama-3.1-70b"), ("moonshotai/Kimi-K2.5", "kimi-k2.5"),
    ("MiniMaxAI/MiniMax-M2.5", "minimax-m2.5"), ("Qwen/Qwen3-235B-A22B-FP8", "qwen3-235b-a22b"),
    ("nvidia/Qwen3-32B-NVFP4", "qwen3-32b"), ("Qwen/Qwen3-32B", "qwen3-32b"),
])
def test_models_by_hugging_face_id(hf_id, name):
    assert catalog.load_model(hf_id).name == name
    assert catalog.load_any(hf_id).name == name


def test_hugging_face_ids_are_unique_and_every_data_model_is_accounted_for(table):
    listed = [i.casefold() for n in catalog.names("model") for i in catalog.load_model(n).hf_ids]
    assert len(listed) == len(set(listed))
    from planner.specs.runs import ATTENTION_PENDING
    for model_path in set(table.model_path):
        assert (catalog.model_of_hf_id(model_path) is not None
                or model_path.casefold() in ATTENTION_PENDING), model_path


def test_unknown_hugging_face_id_is_refused_with_suggestions():
    with pytest.raises(CatalogError) as info:
        catalog.load_model("deepseek-ai/DeepSeek-R2")
    assert "hf_ids" in str(info.value) and "deepseek-ai/DeepSeek-R1" in str(info.value)


def test_a_file_named_like_an_id_is_still_read_as_a_file(tmp_path, monkeypatch):
    (tmp_path / "deepseek-ai").mkdir()
    text = (REPO / "models" / "llama-3.1-8b.yaml").read_text().replace(
        "name: llama-3.1-8b", "name: mine")
    (tmp_path / "deepseek-ai" / "DeepSeek-R1").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert catalog.load_model("deepseek-ai/DeepSeek-R1").name == "mine"


# ----------------------------------------------------------------------------- new model specs
def test_new_model_specs_match_their_published_sizes():
    from planner.calc.params import model_params

    # Llama-3.1-8B: 8.03 B (model card: 8B); MiniMax-M2.5: 229 B (model card: 230B total,
    # 10B activated); Kimi-K2.5's language model: Kimi-K2's (1.03 T total, 32B activated).
    p8 = model_params(catalog.load_model("llama-3.1-8b"))
    assert p8.params_total == pytest.approx(8.03e9, rel=0.005)
    mm = model_params(catalog.load_model("minimax-m2.5"))
    assert mm.params_total == pytest.approx(229e9, rel=0.01) and mm.params_activated == pytest.approx(10.4e9, rel=0.02)
    k25, k2 = (model_params(catalog.load_model(n)) for n in ("kimi-k2.5", "kimi-k2"))
    assert (k25.params_total, k25.params_activated) == (k2.params_total, k2.params_activated)
    m = catalog.load_model("minimax-m2.5")
    assert (m.attention.kind, m.attention.num_heads, m.attention.num_kv_heads,
            m.attention.head_dim) == ("gqa", 48, 8, 128)


def test_the_runs_ship_inside_the_package():
    """planner/data/ is inside the one wheel package (pyproject: packages = ["planner"]), so an
    installed planner finds its default runs file (checked by building the wheel: the three
    files are in it as planner/data/...)."""
    import planner

    assert catalog.SERVING_RUNS_CSV.parent.parent == Path(planner.__file__).resolve().parent
    assert 'packages = ["planner"]' in (REPO / "pyproject.toml").read_text()
    assert not any(part in (REPO / ".gitignore").read_text() for part in ("*.csv", "data/"))


@pytest.mark.parametrize("system, name", [("h100_sxm", "h100"), ("h200_sxm", "h200"),
                                          ("b200_sxm", "b200"), ("GB200", "gb200-nvl72")])
def test_hardware_by_the_datas_id(system, name):
    assert catalog.load_hardware(system).name == name


def test_serve_by_hugging_face_id_and_data_hardware_id():
    from typer.testing import CliRunner

    from planner.cli import app

    args = ["serve", "deepseek-ai/DeepSeek-R1", "-H", "h200_sxm", "--isl", "1024", "--osl",
            "1024", "--concurrency", "64", "--tp", "8", "--engine", "sglang", "-f", "json"]
    out = CliRunner().invoke(app, args, catch_exceptions=False)
    assert out.exit_code == 0, out.stderr
    import json

    rec = json.loads(out.stdout)[0]
    assert (rec["model"], rec["hardware"]) == ("deepseek-v3", "h200") and rec["tpot_s"] > 0


def test_the_docs_list_the_concurrency_exceptions(table):
    doc = (REPO / "docs" / "validation.md").read_text()
    listed = re.findall(r"^\| (\S+) \| \d+ \| (\d+) \| (\d+) \| \d+ \| (\d+|-) \|$", doc, re.M)
    assert [(i, int(b), int(a), int(c) if c != "-" else 0) for i, b, a, c in listed] == \
        concurrency_exceptions(table)


def test_a_pending_attention_resolves_once_its_model_states_its_layers(table, monkeypatch):
    """gpt-oss-120b's rows wait for its per-layer pattern (attention_layers): the catalog spec
    states one (issue 21) and they resolve; a spec without it makes them wait again."""
    import dataclasses

    from planner.specs import runs

    gpt = table.model_path == "openai/gpt-oss-120b"
    reasons = runs.resolve(table.take(gpt)).reason
    assert not any(r.startswith("attention kind") for r in reasons)
    assert (reasons == "").sum() > 100     # the B200 NVFP4 and Hopper FP8 rows
    spec = runs._catalog_model("gpt-oss-120b")
    without = types.SimpleNamespace(**{**{f.name: getattr(spec, f.name)
                                          for f in dataclasses.fields(spec)},
                                       "attention_layers": None}, is_moe=True)
    real = runs._catalog_model
    monkeypatch.setattr(runs, "_catalog_model",
                        lambda name: without if name == "gpt-oss-120b" else real(name))
    reasons = runs.resolve(table.take(gpt)).reason
    assert all(r.startswith("attention kind") for r in reasons)


def test_drawn_lengths_have_the_clients_mean(table):
    """InferenceMAX's client draws each length uniformly from int(0.8 L) .. L (its
    RANDOM_RANGE_RATIO 0.8); other sources send the nominal lengths."""
    from planner.specs.run_protocols import mean_drawn_length

    assert mean_drawn_length(1024, 0.8) == pytest.approx(921.5)
    assert mean_drawn_length(8192, 0.8) == pytest.approx(7372.5)
    assert mean_drawn_length(1000, 1.0) == 1000
    i = _row(table, "2026_04_06_deepseek_r1_b200_sxm_trtllm_fp4_agg_8192x1024_c32_tp8_ep8_1537")
    assert (table.mean_isl[i], table.mean_osl[i]) == (7372.5, 921.5)
    # db-dump: InferenceMAX's workflow runs too (this one is a 2026_03_25 row's measurement)
    j = _row(table, "dsr1_b200_trtllm_fp4_agg_1024x8192_c256_cfg191")
    assert (table.mean_isl[j], table.mean_osl[j]) == (921.5, 7372.5)
    k = _row(table, "meta_llama_llama_3_1_8b_instruct_meta_llama_llama_3_1_8b_instruct_h200_"
                    "sxm_sglang_agg_1000x100_c352_tp4_epnone_3")     # AIConfigurator's harness
    assert (table.mean_isl[k], table.mean_osl[k]) == (1000, 100)


def test_each_measurement_is_read_at_one_pair_of_lengths(table):
    """A run the data records twice (a dated InferenceMAX row and its db-dump or gap-analysis
    copy) is predicted at the same mean lengths under both ids."""
    seen: dict[tuple, tuple] = {}
    twins = 0
    for i in range(len(table)):
        key = (table.system[i], table.isl[i], table.osl[i],
               round(float(table.measured_ttft_s[i]) * 1e3, 1),
               round(float(table.measured_tpot_s[i]) * 1e3, 1))
        lengths = (float(table.mean_isl[i]), float(table.mean_osl[i]))
        if key in seen:
            twins += 1
            assert seen[key] == lengths, table.id[i]
        seen.setdefault(key, lengths)
    assert twins > 300


def test_a_multiplied_layout_is_read_as_run(table):
    """The same measurement (TTFT 907 ms, TPOT 21.4 ms) is in the data as attention DP 64 x
    MoE 8 x 8 (db-dump) and attention DP 8 x MoE-EP 8 (2026_03_25): one 8-GPU B200 node. Both
    now read 8 GPUs, attention DP 8, experts EP 8, 256 requests; a tp4_ep4 row: 4 GPUs."""
    a = _row(table, "dsr1_b200_trtllm_fp4_agg_1024x8192_c256_cfg191")
    b = np.flatnonzero((table.measured_ttft_s == table.measured_ttft_s[a]) & (table.id != table.id[a])
                       & np.array([s.startswith("2026_03_25") for s in table.id]))[0]
    for i in (a, b):
        assert (table.tp[i], table.attention_dp[i], table.moe_tp[i], table.moe_ep[i],
                table.concurrency[i]) == (1, 8, 1, 8, 256)
    assert table.layout_reread[a] and not table.layout_reread[b]
    k = _row(table, "2026_04_06_deepseek_r1_b200_sxm_trtllm_fp4_agg_1024x1024_c64_tp4_ep4_935")
    assert (table.tp[k], table.attention_dp[k], table.moe_tp[k], table.moe_ep[k]) == (4, 1, 1, 4)
    # a layout the source states as run stays: MoE-TP 2 x EP 2 on TP 4 (gap-analysis rows)
    gap = np.array(["aic-auto-gap" in s for s in table.source]) & (table.moe_tp == 2)
    assert gap.any() and not table.layout_reread[gap].any()


@pytest.mark.parametrize("column", ["decode_batch_size", "decode_attention_dp_size",
                                    "prefill_num_workers", "decode_tp_size"])
def test_a_disaggregated_pool_size_of_zero_is_refused_not_read_as_one(tmp_path, column):
    # Blank still means 1 (the data leaves sizes out), but a written 0 in a disaggregated row's
    # pool is a mistake: it was read as 1 like a blank; now it is refused like a negative, with
    # its row and column. An aggregated row's 0 (attention_dp_size, the MoE sizes: the data
    # has them) is still read as 1.
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(catalog.SERVING_RUNS_CSV.read_text())))
    n = next(i for i, r in enumerate(rows) if r["mode"] == "disagg")
    for value, refused in (("0", True), ("", False), ("-1", True)):
        edited = [dict(r) for r in rows]
        edited[n][column] = value
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(edited)
        p = tmp_path / "runs.csv"
        p.write_text(out.getvalue())
        if not refused:    # a blank size reads as 1 (a blank count, num_workers, as 0)
            if not column.endswith("_size"):
                continue
            field = column if column.endswith("batch_size") else column.removesuffix("_size")
            assert getattr(read_runs(p), field)[n] == 1
            continue
        with pytest.raises(SpecError) as info:
            read_runs(p)
        msg = str(info.value)
        assert "\n" not in msg and f": row {n + 2}, column {column}: " in msg
        assert "whole number in 1 .. " in msg
