"""The blank disaggregated rows filled from the InferenceMAX recipes (planner/data/disagg-
recipes.csv): which rows, with what, and why the others stay unexpressed."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from planner import catalog
from planner.specs.disagg_recipes import (FILLS, MTP, RESOLVED, STATUS_REASONS, TWIN,
                                          decode_max_batch, fill_from_recipes,
                                          inferencemax_rows, mtp_draft_tokens, read_recipes,
                                          recipe_source)
from planner.specs.runs import COLUMNS, read_runs
from planner.studies.disagg_runs import predict_disagg_rows


@pytest.fixture(scope="module")
def shipped():
    t = read_runs(catalog.SERVING_RUNS_CSV)
    return t, fill_from_recipes(t)


def test_every_blank_row_is_listed_once_with_its_status(shipped):
    t, _ = shipped
    recipes = read_recipes()
    blank = (t.mode == "disagg") & (t.decode_num_workers == 0)
    assert set(recipes) == {str(i) for i in t.id[blank]} and len(recipes) == 790
    # issue 22 round 8 (disagg6): day-only stamps read to the day's end, SGLang rows' EP
    # compared, node-sized FP8 SGLang and gpt-oss entries read, MTP settled by config/copy/pair
    # (was resolved 137, twin 76, none 209, ambiguous 144, mtp 89, mtp_k_unknown 5,
    # mtp_unknown 91, nodes 39)
    # issue 22 round 11 (express11): GB200 "tpN" rows read as the deployment's GPUs
    # (total_gpus), recipe files' concurrencies (recipe_file_concurrency), Dynamo's sweep
    # concurrency per decode worker (sweep_concurrency), the GB200 launch script
    # (launch_script), the GLM-5 / Kimi-K2.5 srt-slurm recipes committed after the run
    # (recipe_committed_after), the push run's perf-changelog keys (changelog), SGLang recipe
    # files' speculative-num-steps (k), FP4 node-sized entries with their EP (nodes_fp4), an
    # ambiguous row's dated settled copy (copy) (was
    # resolved 240, twin 51, none 139, ambiguous 128, mtp 106, mtp_k_unknown 8,
    # mtp_unknown 108, nodes 10)
    assert Counter(r["status"] for r in recipes.values()) == {
        "resolved": 349, "twin": 29, "ambiguous": 121, "mtp": 167, "mtp_unknown": 121,
        "nodes": 3}
    ids = {str(i) for i in t.id}
    for rec in recipes.values():
        if rec["status"] not in ("none", TWIN):   # the source: an entry at a commit
            assert re.fullmatch(r"[0-9a-f]{40}", rec["commit"]) and rec["entry"]
        if rec["status"] == TWIN:                 # the source: a recorded row of the file
            assert rec["twin"] and set(rec["twin"].split()) <= ids
        if rec["status"] == RESOLVED:
            assert rec["spec_decoding"] == "none" and rec["mtp_k"] == ""
        if rec["status"] == MTP:      # the draft tokens the recipe file's name states
            assert rec["spec_decoding"] == "mtp" and int(rec["mtp_k"]) in (1, 2, 3)
    assert Counter(r["mtp_k"] for r in recipes.values() if r["status"] == MTP) == {
        "3": 104, "1": 21, "2": 42}
    # the TensorRT-LLM entries name their decode max_batch_size (recipe file ``_batch<N>_``)
    # (or the srt-slurm TensorRT-LLM recipe file's decode max_batch_size)
    for rec in recipes.values():
        if rec["decode_max_batch"]:
            assert ("dynamo-trt" in rec["entry"] or "trtllm_dynamo" in rec["entry"]) and int(
                rec["decode_max_batch"]) >= 1
    filled = [r for r in recipes.values() if r["status"] in (RESOLVED, MTP)]
    assert sum(bool(r["decode_max_batch"]) for r in filled) == 221 + 137
    t, _ = shipped
    cap = decode_max_batch(t)
    # 358 rows the recipes fill + 47 recorded rows of the same measurements (express11; was
    # 250 + 35)
    assert np.isfinite(cap).sum() == 405 and np.all(cap[np.isfinite(cap)] >= 1)


def test_resolved_rows_take_the_recipes_workers_and_keep_the_rows_own_layout(shipped):
    t, (f, filled, reason) = shipped
    recipes = read_recipes()
    assert filled.sum() == 349 + 29 + 167 and not reason[filled].any()
    for i in np.flatnonzero(filled):
        rec = recipes[str(t.id[i])]
        for role in ("prefill", "decode"):
            workers = int(rec[f"{role}_num_workers"])
            assert getattr(f, f"{role}_num_workers")[i] == workers >= 1
            # the row's tp_size is the recipe's GPUs per worker, whatever its attention DP
            gpus = getattr(f, f"{role}_tp")[i] * getattr(f, f"{role}_attention_dp")[i]
            assert gpus == int(rec[f"{role}_tp"])
            if rec["status"] == RESOLVED and "(GPUs from nodes)" not in rec["entry"]:
                # a twin may correct a node-sized "tp1" row, and so may the nodes; a
                # "tpN" row read as the deployment's N GPUs (rule total_gpus) holds them all
                total = sum(int(rec[f"{r}_num_workers"]) * int(rec[f"{r}_tp"])
                            for r in ("prefill", "decode"))
                assert gpus == getattr(t, f"{role}_tp")[i] or (
                    "total_gpus" in rec["rule"] and total == getattr(t, f"{role}_tp")[i])
            assert (getattr(f, f"{role}_attention_dp")[i] > 1) == (
                rec[f"{role}_dp_attn"] == "1" and int(rec[f"{role}_tp"]) > 1)
            assert getattr(f, f"{role}_moe_ep")[i] == int(rec[f"{role}_ep"])
        # the benchmark's concurrency sits on the decode pool, as on every recorded row
        assert (f.decode_batch_size[i] * f.decode_attention_dp[i] * f.decode_num_workers[i]
                == pytest.approx(t.silicon_concurrency[i]))
    # TensorRT-LLM rows carry the recipe's prefill EP in both pools; the decode EP is the
    # recipe's own (e.g. TP8 EP8 decode under a TP4 EP4 prefill, the row saying decode EP 4)
    moved = filled & (f.decode_moe_ep != t.decode_moe_ep) & (t.prefill_tp > 1)
    assert moved.any() and np.all(t.decode_moe_ep[moved] == t.prefill_moe_ep[moved])


def test_rows_the_recipes_leave_open_say_why(shipped):
    t, (_, filled, reason) = shipped
    recipes = read_recipes()
    for i in np.flatnonzero((t.mode == "disagg") & (t.decode_num_workers == 0) & ~filled):
        assert reason[i] == STATUS_REASONS[recipes[str(t.id[i])]["status"]]
    # the node-sized recipes state tp 1 for DeepSeek-R1 workers, which one GPU cannot hold
    for rec in recipes.values():
        if rec["status"] == "nodes":
            assert rec["prefill_tp"] == "1"
        assert (rec["status"] in FILLS) == (rec["status"] in (RESOLVED, TWIN, MTP))
    assert recipe_source("not-a-row") == ""
    some = next(k for k, r in recipes.items() if r["status"] == RESOLVED and not r["rule"])
    assert re.fullmatch(r"resolved: \S+-dynamo-\S+ @ [0-9a-f]{9}", recipe_source(some))


def _write(tmp_path, rows):
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([",".join(COLUMNS)] + [",".join(r[c] for c in COLUMNS)
                                                   for r in rows]) + "\n")
    return read_runs(p)


def test_resolved_and_mtp_ids_are_predicted_an_mtp_one_without_k_is_not(shipped, tmp_path,
                                                                         monkeypatch):
    """Without the recipes these rows were 'worker counts not recorded'; the MTP row decodes
    with the recipe's draft tokens (its TPOT below the same row's without them). An MTP row
    whose recipe names no k is not predicted (express11 read every such shipped row's k from
    its SGLang recipe file, so the status is set here on a copy of an MTP row's record)."""
    import planner.specs.disagg_recipes as dr

    t, _ = shipped
    recipes = read_recipes()

    def first(status, system=None):
        return next(i for i, x in enumerate(t.id) if recipes.get(str(x), {}).get("status")
                    == status and (system is None or t.system[i] == system))
    k_ok, k_mtp = first(RESOLVED, "h200_sxm"), first(MTP, "b200_sxm")
    k_unk = next(i for i, x in enumerate(t.id) if recipes.get(str(x), {}).get("status") == MTP
                 and i != k_mtp)
    assert not any(r["status"] == "mtp_k_unknown" for r in recipes.values())
    patched = dict(recipes)
    patched[str(t.id[k_unk])] = {**recipes[str(t.id[k_unk])], "status": "mtp_k_unknown",
                                 "mtp_k": ""}
    monkeypatch.setattr(dr, "read_recipes", lambda: patched)
    monkeypatch.setattr(dr, "_recipes_with_twins", lambda: patched)
    ids = {str(t.id[k]) for k in (k_ok, k_mtp, k_unk)}
    table = _write(tmp_path, [dict(zip(COLUMNS, row))
                              for row in _rows(catalog.SERVING_RUNS_CSV, ids)])
    pred = predict_disagg_rows(table)
    by_id = dict(zip(table.id, range(len(table))))
    for k in (k_ok, k_mtp):
        assert pred.predicted[by_id[t.id[k]]] and pred.reason[by_id[t.id[k]]] == ""
        assert np.isfinite(pred.tpot_s[by_id[t.id[k]]])
    assert pred.reason[by_id[t.id[k_unk]]] == STATUS_REASONS["mtp_k_unknown"]
    drafts = mtp_draft_tokens(table)
    assert drafts[by_id[t.id[k_mtp]]] == int(recipes[str(t.id[k_mtp])]["mtp_k"]) > 0
    assert drafts[by_id[t.id[k_ok]]] == drafts[by_id[t.id[k_unk]]] == 0


def _rows(path, ids):
    import csv

    with open(path, newline="") as f:
        return [[r[c] for c in COLUMNS] for r in csv.DictReader(f) if r["id"] in ids]


def test_the_recipes_agree_with_the_recorded_copies_of_the_same_measurements(shipped):
    """106 recipe-resolved rows are also in the file as recorded rows (the same measurement:
    TTFT and TPOT equal): the recipe gives the recorded worker counts on all 106 and the
    recorded layouts on 99 (the other 7: attention DP 8 against attention TP 8 over the same
    GPUs and EP, in one pool). Wrong recipe reading would fail here."""
    t, (f, _filled, _) = shipped
    recipes = read_recipes()
    by_id = {str(x): i for i, x in enumerate(t.id)}
    workers = layouts = pairs = 0
    for rid, rec in recipes.items():
        if rec["status"] != RESOLVED or not rec["twin"]:
            continue
        j = by_id[rid]
        for twin in rec["twin"].split():
            i = by_id[twin]
            pairs += 1
            w = all(getattr(f, f"{r}_num_workers")[j] == getattr(t, f"{r}_num_workers")[i]
                    for r in ("prefill", "decode"))
            lay = all(getattr(f, f"{r}_{k}")[j] == getattr(t, f"{r}_{k}")[i]
                      for r in ("prefill", "decode")
                      for k in ("tp", "attention_dp", "moe_tp", "moe_ep"))
            workers, layouts = workers + w, layouts + (w and lay)
    # issue 22 round 8 (disagg6): 84 pairs now (the resolver reads more rows), 84 agree on
    # workers, 82 on layouts (the same 2 as before: attention DP 8 against TP 8)
    # express11: 106 pairs (22 more: rows the recipe files' concurrencies and the sweep's
    # per-decode-worker concurrency now resolve, which the twins alone had given), all 106
    # agree on workers; 5 more differ in one pool's attention DP / TP: H200 rows stamped
    # 2026-03-23 (day only) read at the version before that day, whose prefill is TP8, where
    # the run's own version (f316a0ef6, 13:00 UTC) made it attention DP 8
    assert (pairs, workers, layouts) == (106, 106, 99)


def test_inferencemax_rows_are_the_listed_ones_and_their_recorded_copies(shipped):
    t, _ = shipped
    recipes = read_recipes()
    m = inferencemax_rows(t)
    twins = {x for r in recipes.values() for x in r["twin"].split()}
    assert m.sum() == 790 + len(twins) and len(twins) > 0
    assert all(str(i) in recipes or str(i) in twins for i in t.id[m])


def _resolver():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "resolve_disagg_recipes.py"
    spec = importlib.util.spec_from_file_location("resolve_disagg_recipes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_day_only_stamps_and_node_sized_entries_are_read_as_their_sources_say():
    """A ``measured=`` stamp with no time reads that day's recipe versions; an FP8 entry that
    sizes attention-DP workers in nodes gives nodes / workers x 4 GPUs per worker (Dynamo's
    submit_disagg.sh, GPUS_PER_NODE=4), EP and attention DP over all of them."""
    r = _resolver()
    assert r.DATE_ONLY.fullmatch("2026-01-29T00:00:00.000Z") and r.DATE_ONLY.fullmatch("2026-03-23")
    assert not r.DATE_ONLY.fullmatch("2026-01-29T15:52:16Z")
    ss = {"spec-decoding": "none",
          "prefill": {"num-worker": 3, "tp": 1, "dp-attn": True,
                      "additional-settings": ["PREFILL_NODES=6"]},
          "decode": {"num-worker": 1, "tp": 1, "dp-attn": True,
                     "additional-settings": ["DECODE_NODES=12"]}}
    assert r._nodes_signature(ss) == (3, 8, 8, True, 1, 48, 48, True, "none")
    ss["decode"]["dp-attn"] = False                       # a TP worker's EP is not stated
    assert r._nodes_signature(ss) is None
    ss["decode"]["dp-attn"], ss["prefill"]["num-worker"] = True, 4    # 6 nodes over 4 workers
    assert r._nodes_signature(ss) is None
    recipes = read_recipes()
    nodes = [x for x in recipes.values() if "(GPUs from nodes)" in x["entry"]]
    # express11: + 25 GB200 FP8 SGLang "tp20/48/72" rows (rule total_gpus, launch_script)
    # and 12 FP4 ones read with the entry's EP (nodes_fp4; 7 keep their twin's layout)
    assert len(nodes) == 55 and {x["status"] for x in nodes} == {RESOLVED, TWIN, "ambiguous"}
    assert all("gb200-dynamo-sglang" in x["entry"] for x in nodes)
    fp4 = [x for x in nodes if "(FP4: the entry's EP)" in x["entry"]]
    assert len(fp4) == 12 and all(x["rule"] == "nodes_fp4" for x in fp4)
    assert all(x["prefill_ep"] == x["decode_ep"] == "1" for x in fp4 if x["status"] == RESOLVED)
    ss["prefill"]["num-worker"] = 3       # FP4: the entry's own EP (1) on each worker
    assert r._nodes_signature(ss, deepep=False) == (3, 8, 1, True, 1, 48, 1, True, "none")


def _row(i, conc="8", ttft="100", tpot="10", cfg=None, stamp="2026-02-08T01:24:15Z"):
    src = (f"db-dump/2026-04-27; config_id={cfg}; silicon_concurrency={conc}" if cfg else
           f"source_file=2026-03-25.csv; model=DeepSeek-R1; silicon_concurrency={conc}; "
           f"measured={stamp}; wip=False")
    return {"id": i, "silicon_data_source": src, "system": "h100_sxm", "backend": "trtllm",
            "isl": "1024", "osl": "1024", "silicon_ttft_ms": ttft, "silicon_tpot_ms": tpot}


def test_mtp_unknown_rows_are_settled_only_by_a_stored_record():
    """config: a recorded twin's InferenceX config also holds a twin of a settled row; copy:
    the same measurement settled elsewhere; pair: the same run measured the two entries, the
    other row settled. A row with none of these stays mtp_unknown."""
    r = _resolver()
    rows = [_row("a", ttft="100"), _row("b", ttft="200", tpot="20"), _row("c", ttft="300"),
            _row("d", conc="9", ttft="400"), _row("e", conc="10", ttft="500"),
            _row("f", ttft="100", stamp="2026-02-09T00:00:00.000Z")]
    recorded = [_row("R1", ttft="100", cfg="7"), _row("R2", conc="9", ttft="400", cfg="7"),
                _row("R3", conc="10", ttft="500", cfg="8")]
    recs = [{"id": "a", "status": "mtp_unknown", "entry": "E", "twin": "R1", "_mtp_ks": {3}},
            {"id": "b", "status": "mtp_unknown", "entry": "E", "twin": "", "_mtp_ks": {3}},
            {"id": "c", "status": "mtp_unknown", "entry": "X", "twin": "", "_mtp_ks": {3}},
            {"id": "d", "status": "resolved", "entry": "F", "twin": "R2", "mtp_k": ""},
            {"id": "e", "status": "mtp_unknown", "entry": "G", "twin": "R3", "_mtp_ks": {3}},
            {"id": "f", "status": "mtp_unknown", "entry": "E", "twin": "", "_mtp_ks": {3}}]
    r._settle_mtp(recs, rows, recorded)
    got = {x["id"]: (x["status"], x.get("mtp_k", ""), x.get("spec_from", "")) for x in recs}
    assert got["a"] == ("resolved", "", "config_id=7")        # config 7 holds d's twin
    assert got["b"] == ("mtp", 3, "pair of a")                # a and b: one run, two entries
    assert got["c"] == ("mtp_unknown", "", "")                # another entry, no record
    assert got["e"] == ("mtp_unknown", "", "")                # config 8 holds no settled row
    assert got["f"][0] == "resolved" and got["f"][2] == "copy of a"   # a's measurement
    assert not any("_mtp_ks" in x for x in recs)


def test_the_shipped_mtp_settlements_name_their_record():
    recipes = read_recipes()
    settled = {k: x for k, x in recipes.items() if x["spec_from"]}
    assert Counter(x["spec_from"].split()[0].split("=")[0] for x in settled.values()) == {
        "config_id": 11, "copy": 12, "pair": 3}
    for k, x in settled.items():
        assert x["status"] in (RESOLVED, MTP)
        how, _, other = x["spec_from"].partition(" of ")
        if how.startswith("config_id="):
            assert any(f"cfg{how.split('=')[1]}" in tw for tw in x["twin"].split())
        else:
            assert other in recipes and recipes[other]["status"] in (RESOLVED, MTP)
            if how == "pair":          # the other entry: one of the two ran MTP
                assert (recipes[other]["status"] == MTP) != (x["status"] == MTP)


def test_recorded_rows_of_a_settled_measurement_take_its_recipe(shipped):
    """A recorded row that a recipe-settled row names as its twin is the same measurement, so
    the same run and recipe: it takes that recipe's MTP drafts and decode max_batch_size (47
    recorded rows get a decode cap; the db-dump row cfg423 repeated two rows read as k = 3
    until express11: their concurrency 7 is also what the STP entry's recipe file runs,
    ``recipes/trtllm/gb200-fp4/1k8k/stp/ctx1_gen7_tep8_batch1_eplb0_mtp0.yaml``
    ``concurrencies: ['7']`` under ``conc-list [5]``, so they are mtp_unknown now)."""
    t, _ = shipped
    recipes = read_recipes()
    k, cap = mtp_draft_tokens(t), decode_max_batch(t)
    recorded = np.array([str(i) not in recipes for i in t.id])
    assert int(((k > 0) & recorded).sum()) == 0 and int((np.isfinite(cap) & recorded).sum()) == 47
    by_id = {str(x): i for i, x in enumerate(t.id)}
    for rid, rec in recipes.items():
        if rec["status"] in (RESOLVED, MTP):
            for twin in rec["twin"].split():
                j, i = by_id[twin], by_id[rid]
                assert k[j] == k[i]
                assert cap[j] == cap[i] or (np.isinf(cap[j]) and not rec["decode_max_batch"])
    cfg423 = next(i for i, x in enumerate(t.id) if str(x).endswith("_cfg423"))
    assert k[cfg423] == 0


def _shipped_row(run_id):
    import csv

    with open(catalog.SERVING_RUNS_CSV, newline="") as f:
        return next(r for r in csv.DictReader(f) if r["id"] == run_id)


def _search_space(text):
    import yaml

    return yaml.safe_load(text)


# InferenceX nvidia-master.yaml @ 93e1b3ca1 (2025-12-05), dsr1-fp4-gb200-dynamo-trt 1K/1K, the
# search-space entries [5] and [8] (additional settings trimmed to the ones read here)
TEP8_X4 = """
conc-list: [ 1, 2, 4, 8, 16, 32, 64, 141 ]
prefill: {num-worker: 1, tp: 4, ep: 4, dp-attn: false,
          additional-settings: ["PREFILL_MAX_BATCH_SIZE=4"]}
decode: {num-worker: 4, tp: 8, ep: 8, dp-attn: false,
         additional-settings: ["DECODE_MAX_BATCH_SIZE=128", "DECODE_MTP_SIZE=0"]}
"""
DEP16_2P = """
conc-list: [ 2048, 4300 ]
prefill: {num-worker: 2, tp: 4, ep: 4, dp-attn: true,
          additional-settings: ["PREFILL_MAX_BATCH_SIZE=4"]}
decode: {num-worker: 1, tp: 16, ep: 16, dp-attn: true,
         additional-settings: ["DECODE_MAX_BATCH_SIZE=256", "DECODE_MTP_SIZE=0"]}
"""


def _entries(name, isl, osl, *spaces):
    return {name: {"seq-len-configs": [{"isl": isl, "osl": osl,
                                        "search-space": [_search_space(x) for x in spaces]}]}}


def test_total_gpus_rows_read_the_recipe_as_the_source_states_it():
    """Rule total_gpus: the 2025-12-05 GB200 row "c2048 tp24" (EP 1) is the whole
    deployment's 24 GPUs, 2 prefill workers of TP4 and one DEP16 decode worker (the entry
    whose conc-list holds 2048); its own layout matches no entry."""
    r = _resolver()
    row = _shipped_row("2026_04_06_deepseek_r1_gb200_trtllm_fp4_disagg_1024x1024_c2048_tp24_ep1_1086")
    ss = _search_space(DEP16_2P)
    assert r._entry_gpus(ss) == 2 * 4 + 16 and r._same_total_gpus(row, ss)
    assert not r._same_layout(row, ss)
    got = r._matches(row, _entries("dsr1-fp4-gb200-dynamo-trt", 1024, 1024, TEP8_X4, DEP16_2P),
                     fits=r._same_total_gpus)
    assert [(ref, sig) for ref, sig, _, _ in got] == [
        ("dsr1-fp4-gb200-dynamo-trt[isl=1024,osl=1024][1]",
         (2, 4, 4, True, 1, 16, 16, True, "none", False))]
    rec = read_recipes()[row["id"]]
    assert (rec["status"], rec["rule"], rec["commit"][:9]) == (RESOLVED, "total_gpus", "25506e87c")
    assert [rec[k] for k in ("prefill_num_workers", "prefill_tp", "decode_num_workers",
                             "decode_tp", "decode_dp_attn")] == ["2", "4", "1", "16", "1"]
    # a node-sized entry counts its nodes' GPUs (4 a GB200 node)
    nodes = {"prefill": {"num-worker": 3, "tp": 1, "additional-settings": ["PREFILL_NODES=6"]},
             "decode": {"num-worker": 1, "tp": 1, "additional-settings": ["DECODE_NODES=12"]}}
    assert r._entry_gpus(nodes) == 72


def test_sweep_concurrency_is_per_decode_worker():
    """Rule sweep_concurrency: Dynamo's TensorRT-LLM sweep (``scripts/bench.sh``:
    ``concurrency=$((concurrency * num_gen_servers))``) ran conc-list 141 on 4 decode workers
    as 564: the row "c564 tp36" is the TEP8 x 4 entry, which no listed value names."""
    r = _resolver()
    row = _shipped_row("2026_04_06_deepseek_r1_gb200_trtllm_fp4_disagg_1024x1024_c564_tp36_ep1_1088")
    entries = _entries("dsr1-fp4-gb200-dynamo-trt", 1024, 1024, TEP8_X4, DEP16_2P)
    assert not r._matches(row, entries, fits=r._same_total_gpus)
    got = r._matches(row, entries, fits=r._same_total_gpus, per_decode_worker=lambda _: True)
    assert [ref for ref, *_ in got] == [
        "dsr1-fp4-gb200-dynamo-trt[isl=1024,osl=1024][0] (concurrency x decode workers)"]
    rec = read_recipes()[row["id"]]
    assert rec["rule"] == "total_gpus sweep_concurrency" and rec["status"] == RESOLVED
    assert [rec[k] for k in ("prefill_num_workers", "prefill_tp", "decode_num_workers",
                             "decode_tp", "decode_dp_attn")] == ["1", "4", "4", "8", "0"]
    # only the Dynamo ref whose rows show it (not the gpt-oss script's 20260105 branch)
    assert r.SWEEP_PER_DECODE_WORKER_REFS == ("release/0.5.1-rc0.20251105",)


# InferenceX nvidia-master.yaml @ f316a0ef6, dsr1-fp8-h200-dynamo-trt 1K/1K entry [1], and
# NVIDIA/srt-slurm @ 75f6e32a recipes/trtllm/h200/1k1k/mtp/c4_ctx1_gen11_tep8_batch128_eplb0_mtp3.yaml
# (its benchmark section)
H200_C4 = """
spec-decoding: "mtp"
conc-list: [ 4 ]
prefill: {num-worker: 1, tp: 8, ep: 8, dp-attn: true, additional-settings: [
  "CONFIG_FILE=recipes/trtllm/h200/1k1k/mtp/c4_ctx1_gen11_tep8_batch128_eplb0_mtp3.yaml"]}
decode: {num-worker: 11, tp: 8, ep: 8, dp-attn: false}
"""
C4_FILE = """name: "c4_ctx1_gen11_tep8_batch128_eplb0_mtp3"
benchmark:
  type: "sa-bench"
  isl: 1024
  osl: 1024
  concurrencies: "44"
  req_rate: "inf"
"""


def test_recipe_file_concurrency_is_what_the_file_runs():
    """Rule recipe_file_concurrency: srtctl runs the entry's recipe file, whose
    ``benchmark.concurrencies`` is 44 (4 per decode worker x 11) under ``conc-list [4]``: the
    row "c44" is that MTP entry (k = 3 from the file's name)."""
    r = _resolver()
    assert r._recipe_concurrencies(C4_FILE) == {44}
    for text, want in (('benchmark: {concurrencies: "4 192 360 668"}', {4, 192, 360, 668}),
                       ('benchmark: {concurrencies: "1024x2048"}', {1024, 2048}),
                       ("benchmark: {concurrencies: ['7']}", {7}), ("", None),
                       ("benchmark: {isl: 1024}", None)):
        assert r._recipe_concurrencies(text) == want
    row = _shipped_row("2026_03_25_deepseek_r1_h200_sxm_trtllm_fp8_disagg_1024x1024_c44_tp8_0_ep8_0_367")
    entries = _entries("dsr1-fp8-h200-dynamo-trt", 1024, 1024, H200_C4)
    assert not r._matches(row, entries)
    got = r._matches(row, entries, file_concs=lambda _: r._recipe_concurrencies(C4_FILE))
    assert [(ref, k) for ref, _, k, _ in got] == [
        ("dsr1-fp8-h200-dynamo-trt[isl=1024,osl=1024][0] (concurrency from recipe file)", 3)]
    rec = read_recipes()[row["id"]]
    assert (rec["status"], rec["mtp_k"], rec["rule"]) == (MTP, "3", "recipe_file_concurrency")
    assert (rec["decode_num_workers"], rec["decode_tp"], rec["decode_dp_attn"]) == ("11", "8", "0")


# InferenceX runners/launch_gb200-nv.sh @ 450d834a9, its SGLang jobs
LAUNCH = """
    if [ "$ISL" = "1024" ] && [ "$OSL" = "1024" ]; then
        concurrency_list="1024x2048x4096x4608x4864x4992x5120x5376x5632x6144x8192"
        bash ./submit_disagg.sh 6 3 12 1 8 $ISL $OSL $concurrency_list inf
    elif [ "$ISL" = "8192" ] && [ "$OSL" = "1024" ]; then
        concurrency_list="128x256x384x448x512x576x1024x2048x4096"
        bash ./submit_disagg.sh 12 6 6 1 8 $ISL $OSL $concurrency_list inf
"""


def test_launch_script_jobs_read_as_the_yaml_that_replaced_them():
    """Rule launch_script: the 2025-12-01 row "c5632 tp72" is ``submit_disagg.sh 6 3 12 1``:
    3 prefill workers over 6 nodes, one decode worker over 12, 4 GPUs a node, all DEP."""
    r = _resolver()
    entries = r._launch_script_entries(LAUNCH)
    space = entries["dsr1-fp8-gb200-dynamo-sglang"]["seq-len-configs"]
    assert [(x["isl"], x["osl"], len(x["search-space"])) for x in space] == [
        (1024, 1024, 1), (8192, 1024, 1)]
    row = _shipped_row("2026_04_06_deepseek_r1_gb200_sglang_fp8_disagg_1024x1024_c5632_tp72_ep1_1091")
    got = r._matches(row, entries, fits=r._same_total_gpus)
    assert [sig for _, sig, _, _ in got] == [(3, 8, 8, True, 1, 48, 48, True, "none", False)]
    rec = read_recipes()[row["id"]]
    assert (rec["status"], rec["rule"], rec["commit"][:9]) == (
        RESOLVED, "launch_script total_gpus", "450d834a9")
    assert [rec[k] for k in ("prefill_num_workers", "prefill_tp", "decode_num_workers",
                             "decode_tp")] == ["3", "8", "1", "48"]


# NVIDIA/srt-slurm @ ed40e8ec recipes/kimi2.5/trtllm_dynamo/disagg/gb200Nvfp4/ISL1K_OSL1K/STP/
# ctx1dep4_gen4tep8_batch128_allconc_eplb0_mtp0.yaml (the keys read here)
KIMI_FILE = """
resources: {prefill_workers: 1, gpus_per_prefill: 4, decode_workers: 4, gpus_per_decode: 8}
backend:
  trtllm_config:
    prefill: {tensor_parallel_size: 4, moe_expert_parallel_size: 4, enable_attention_dp: true}
    decode: {tensor_parallel_size: 8, moe_expert_parallel_size: 8, enable_attention_dp: false,
             max_batch_size: 128}
benchmark: {isl: 1024, osl: 1024, concurrencies: "4 192 360 668"}
"""


def test_recipe_committed_after_reads_the_runs_recipe_file():
    """Rule recipe_committed_after: the Kimi-K2.5 row "c360" (wip, 2026-04-02 05:29 UTC)
    precedes every InferenceX entry of its own; the recipe file its engineer committed 26.5 h
    later lists 360 at its layout (1 DEP4 prefill worker, 4 TEP8 decode workers)."""
    r = _resolver()
    assert r._recipe_file_layout(KIMI_FILE) == (
        1024, 1024, {4, 192, 360, 668}, [1, 4, 4, True, 4, 8, 8, False], 128)
    assert r._recipe_file_layout("benchmark: {isl: 1024}") is None
    rec = read_recipes()["2026_03_25_kimi_k2_5_gb200_trtllm_fp4_disagg_1024x1024_c360_tp8_0_ep_177"]
    assert (rec["status"], rec["rule"]) == (RESOLVED, "recipe_committed_after")
    assert rec["entry"].endswith("STP/ctx1dep4_gen4tep8_batch128_allconc_eplb0_mtp0.yaml")
    assert [rec[k] for k in ("prefill_num_workers", "prefill_tp", "prefill_dp_attn",
                             "decode_num_workers", "decode_tp", "decode_dp_attn",
                             "decode_max_batch")] == ["1", "4", "1", "4", "8", "0", "128"]
    later = [x for x in read_recipes().values() if x["rule"] == "recipe_committed_after"]
    assert len(later) == 40 and all(("kimi2.5" in x["entry"]) or ("GLM5" in x["entry"])
                                   for x in later)
    assert r.LATER_RECIPE_WINDOW.days == 2


# InferenceX perf-changelog.yaml, the lines 84b7df683 (2026-02-11, PR #683) adds
CHANGELOG_DIFF = """--- a/perf-changelog.yaml
+++ b/perf-changelog.yaml
@@ -525,3 +527,11 @@
   pr-link: https://github.com/InferenceMAX/InferenceMAX/pull/674
+
+- config-keys:
+    - dsr1-fp4-b200-dynamo-sglang-mtp
+  description:
+    - "Add B200 configs for DSR1 FP4 SGLANG MTP mode for 1k1k and 8k1k"
+  pr-link: https://github.com/InferenceMAX/InferenceMAX/pull/683
"""


def test_a_push_run_benchmarks_only_its_changelog_keys():
    """Rule changelog: a row stamped seconds after a commit is that commit's push run, which
    benchmarks only the config keys the commit adds to perf-changelog.yaml; 84b7df683 adds
    only the MTP key, so its run's rows drop the STP entry that lists the same workers."""
    import datetime as dt

    r = _resolver()
    assert r._changelog_keys(CHANGELOG_DIFF) == ["dsr1-fp4-b200-dynamo-sglang-mtp"]
    assert r._changelog_keys("") == []
    t0 = dt.datetime(2026, 2, 11, 22, 38, 17, tzinfo=dt.timezone.utc)
    cache = {"c": ["k"]}
    assert r._push_run_keys("", "c", t0, "2026-02-11T22:38:20Z",
                            t0 + dt.timedelta(seconds=3), cache) == ["k"]
    assert r._push_run_keys("", "c", t0, "2026-02-11", t0, cache) is None       # day only
    assert r._push_run_keys("", "c", t0, "x", t0 + dt.timedelta(minutes=5), cache) is None
    recipes = read_recipes()
    ruled = [x for x in recipes.values() if "changelog" in x["rule"]]
    assert Counter(x["status"] for x in ruled) == {MTP: 13, "ambiguous": 6}
    for x in ruled:       # only the keys' entries are left: every one an MTP entry
        assert all(e.split("[")[0].endswith("-mtp") for e in x["entry"].split(" | "))


# NVIDIA/srt-slurm @ 5063eb43 recipes/b200-fp4/1k1k/mtp/low-latency-dep4-1p-tep8-5d.yaml
# (its MTP settings)
SGLANG_MTP = """
      # MTP settings
      speculative-algorithm: "EAGLE"
      speculative-num-steps: 2
      speculative-eagle-topk: 1
      speculative-num-draft-tokens: 3
"""


def test_sglang_recipe_files_name_their_draft_tokens():
    """Rule recipe_file_mtp: an SGLang MTP recipe file's ``speculative-num-steps`` (EAGLE,
    top-k 1) is the draft tokens per decode step; the 8 rows the brief listed as
    mtp_k_unknown (and 13 the changelog rule settles, 3 their copies) decode with k = 2 or
    1."""
    r = _resolver()
    assert r._recipe_mtp_steps(SGLANG_MTP) == 2
    assert r._recipe_mtp_steps(SGLANG_MTP.replace("topk: 1", "topk: 4")) is None
    assert r._recipe_mtp_steps(SGLANG_MTP + "\n  speculative-num-steps: 3\n") is None
    assert r._recipe_mtp_steps("") is None
    recipes = read_recipes()
    sglang = [x for x in recipes.values() if x["status"] == MTP and "sglang" in x["entry"]]
    assert len(sglang) == 28 and {x["mtp_k"] for x in sglang} <= {"1", "2"}


def test_an_ambiguous_row_takes_its_dated_copys_record():
    """Rule copy: the 2026-04-06 file's day-only copy of a dated 2026-03-25 row reads the
    recipe versions before that day and finds several entries; the dated row, settled (here
    by the push run's changelog keys), is the same measurement, so the copy takes its record.
    A day-only settled row does not settle a dated ambiguous one."""
    r = _resolver()
    rows = [_row("dated", ttft="100", stamp="2026-02-13T03:10:06Z"),
            _row("dayonly", ttft="100", stamp="2026-02-13T00:00:00.000Z"),
            _row("dated2", ttft="300", stamp="2026-02-13T03:10:06Z"),
            _row("dayonly2", ttft="300", stamp="2026-02-13T00:00:00.000Z")]
    recs = [{"id": "dated", "status": MTP, "prefill_num_workers": 1, "mtp_k": 2, "entry": "E",
             "commit": "c", "rule": "changelog"},
            {"id": "dayonly", "status": "ambiguous", "entry": "E | F", "rule": ""},
            {"id": "dated2", "status": "ambiguous", "entry": "E | F", "rule": ""},
            {"id": "dayonly2", "status": RESOLVED, "prefill_num_workers": 3, "entry": "F"}]
    r._settle_ambiguous_copies(recs, rows)
    got = {x["id"]: x for x in recs}
    assert (got["dayonly"]["status"], got["dayonly"]["mtp_k"], got["dayonly"]["entry"],
            got["dayonly"]["spec_from"], got["dayonly"]["rule"]) == (
        MTP, 2, "E", "copy of dated", "copy")
    assert got["dated2"]["status"] == "ambiguous"
    shipped = [x for x in read_recipes().values() if "copy" in x["rule"].split()]
    assert len(shipped) == 3 and all(x["status"] == MTP for x in shipped)


def test_an_sglang_prefill_rank_takes_its_share_of_the_chunk_and_the_running_requests():
    """SGLang divides --chunked-prefill-size and --max-running-requests by the attention DP
    size (server_args / model_runner); --max-prefill-tokens (16,384 when unset) also bounds an
    iteration's tokens. B200 FP8 DEP8 (32,768 / 32,768 / 1,024): 4,096 tokens (one 8K prompt in
    two chunks), 128 requests a rank; GB200 FP8 DEP8 (131,072, unset, 30,000): 16,384 and
    3,750; a TP worker keeps its chunk, capped by max-prefill-tokens (GB200 8K low-latency
    24,576, unset: 16,384)."""
    from planner.specs.disagg_recipes import (SGLANG_DEFAULT_MAX_PREFILL_TOKENS,
                                              SGLANG_PREFILL_FILES, sglang_prefill_budget)

    def budget(name):
        c, p, m, d = SGLANG_PREFILL_FILES[name]
        return sglang_prefill_budget(chunked_prefill_size=c, max_prefill_tokens=p,
                                     max_running_requests=m, attention_dp=d)

    assert budget("b200-fp8/8k1k/stp/max-tpt-dep8-1p1d") == (4096, 128)
    assert budget("gb200-fp8/1k1k/max-tpt") == (16384, 3750)
    assert budget("b200-fp8/8k1k/mtp/low-latency-tep8-1p1d") == (32768, 512)
    assert budget("gb200-fp8/8k1k/low-latency") == (SGLANG_DEFAULT_MAX_PREFILL_TOKENS, 512)
    assert budget("gb200-fp4/1k1k/max-tpt") == (16384, 7500)


def test_sglang_rows_read_the_prefill_settings_of_the_file_their_entry_names():
    """Every SGLang B200 / GB200 DeepSeek-R1 row filled from an InferenceX entry that names a
    CONFIG_FILE (commits 8a02464b, ee032b37, 593fb431, 5e2c705d, 46e0b5ff, 84b7df68, 2767db50,
    37f353be) takes that file's budget; entries that name a launch script's mode instead
    (25506e87, c040b5cf, 450d834a) and rows no recipe fills keep the engine's (NaN)."""
    from planner.specs.disagg_recipes import (SGLANG_PREFILL_ENTRIES, SGLANG_PREFILL_FILES,
                                              prefill_budget, recipe_commit, recipe_entry)
    from planner.specs.runs import resolve

    assert set(SGLANG_PREFILL_ENTRIES.values()) <= set(SGLANG_PREFILL_FILES)
    t = read_runs(catalog.SERVING_RUNS_CSV)
    res = resolve(t)
    tokens, cap = prefill_budget(t, res)
    commit = np.array([c[:8] for c in recipe_commit(t)])
    listed = np.array([(c, e) in SGLANG_PREFILL_ENTRIES for c, e in zip(commit, recipe_entry(t))])
    sgl = (res.engine == "sglang") & np.isin(res.hardware, ["b200", "gb200-nvl72"])
    assert (sgl & listed).sum() == 106 and not (listed & ~sgl).any()
    assert not np.isnan(tokens[sgl & listed]).any() and not np.isnan(cap[sgl & listed]).any()
    assert np.isnan(tokens[sgl & ~listed]).all()
    dep8 = sgl & listed & (commit == "8a02464b") & (t.isl == 8192)
    assert dep8.any() and set(tokens[dep8]) == {4096.0} and set(cap[dep8]) == {128.0}
    old = sgl & np.isin(commit, ["25506e87", "c040b5cf", "450d834a"])
    assert old.any() and np.isnan(tokens[old]).all()
