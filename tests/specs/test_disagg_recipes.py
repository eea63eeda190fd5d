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
    assert Counter(r["status"] for r in recipes.values()) == {
        "resolved": 240, "twin": 51, "none": 139, "ambiguous": 128, "mtp": 106,
        "mtp_k_unknown": 8, "mtp_unknown": 108, "nodes": 10}
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
        "3": 80, "1": 18, "2": 8}
    # the TensorRT-LLM entries name their decode max_batch_size (recipe file ``_batch<N>_``)
    for rec in recipes.values():
        if rec["decode_max_batch"]:
            assert "dynamo-trt" in rec["entry"] and int(rec["decode_max_batch"]) >= 1
    filled = [r for r in recipes.values() if r["status"] in (RESOLVED, MTP)]
    assert sum(bool(r["decode_max_batch"]) for r in filled) == 146 + 104
    t, _ = shipped
    cap = decode_max_batch(t)
    # 250 rows the recipes fill + 35 recorded rows of the same measurements (disagg6)
    assert np.isfinite(cap).sum() == 285 and np.all(cap[np.isfinite(cap)] >= 1)


def test_resolved_rows_take_the_recipes_workers_and_keep_the_rows_own_layout(shipped):
    t, (f, filled, reason) = shipped
    recipes = read_recipes()
    assert filled.sum() == 240 + 51 + 106 and not reason[filled].any()
    for i in np.flatnonzero(filled):
        rec = recipes[str(t.id[i])]
        for role in ("prefill", "decode"):
            workers = int(rec[f"{role}_num_workers"])
            assert getattr(f, f"{role}_num_workers")[i] == workers >= 1
            # the row's tp_size is the recipe's GPUs per worker, whatever its attention DP
            gpus = getattr(f, f"{role}_tp")[i] * getattr(f, f"{role}_attention_dp")[i]
            assert gpus == int(rec[f"{role}_tp"])
            if rec["status"] == RESOLVED and "(GPUs from nodes)" not in rec["entry"]:
                # a twin may correct a node-sized "tp1" row, and so may the nodes
                assert gpus == getattr(t, f"{role}_tp")[i]
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
    some = next(k for k, r in recipes.items() if r["status"] == RESOLVED)
    assert re.fullmatch(r"resolved: \S+-dynamo-\S+ @ [0-9a-f]{9}", recipe_source(some))


def _write(tmp_path, rows):
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([",".join(COLUMNS)] + [",".join(r[c] for c in COLUMNS)
                                                   for r in rows]) + "\n")
    return read_runs(p)


def test_resolved_and_mtp_ids_are_predicted_an_mtp_one_without_k_is_not(shipped, tmp_path):
    """Without the recipes these rows were 'worker counts not recorded'; the MTP row decodes
    with the recipe's draft tokens (its TPOT below the same row's without them)."""
    t, _ = shipped
    recipes = read_recipes()

    def first(status, system=None):
        return next(i for i, x in enumerate(t.id) if recipes.get(str(x), {}).get("status")
                    == status and (system is None or t.system[i] == system))
    k_ok, k_mtp, k_unk = first(RESOLVED, "h200_sxm"), first(MTP, "b200_sxm"), first(
        "mtp_k_unknown")
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
    """84 recipe-resolved rows are also in the file as recorded rows (the same measurement:
    TTFT and TPOT equal): the recipe gives the recorded worker counts on all 84 and the
    recorded layouts on 82 (the other 2: the recipe's decode is attention DP 8, the record's
    attention TP 8, the same GPUs). Wrong recipe reading would fail here."""
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
    assert (pairs, workers, layouts) == (84, 84, 82)


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
    assert len(nodes) == 18 and {x["status"] for x in nodes} == {RESOLVED, "ambiguous"}
    assert all(x["entry"].startswith("dsr1-fp8-gb200-dynamo-sglang") for x in nodes)


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
        "config_id": 9, "copy": 5, "pair": 3}
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
    the same run and recipe: it takes that recipe's MTP drafts and decode max_batch_size (the
    db-dump row cfg423 repeats two k = 3 rows; 35 recorded rows get a decode cap)."""
    t, _ = shipped
    recipes = read_recipes()
    k, cap = mtp_draft_tokens(t), decode_max_batch(t)
    recorded = np.array([str(i) not in recipes for i in t.id])
    assert int(((k > 0) & recorded).sum()) == 1 and int((np.isfinite(cap) & recorded).sum()) == 35
    by_id = {str(x): i for i, x in enumerate(t.id)}
    for rid, rec in recipes.items():
        if rec["status"] in (RESOLVED, MTP):
            for twin in rec["twin"].split():
                j, i = by_id[twin], by_id[rid]
                assert k[j] == k[i]
                assert cap[j] == cap[i] or (np.isinf(cap[j]) and not rec["decode_max_batch"])
    cfg423 = next(i for i, x in enumerate(t.id) if str(x).endswith("_cfg423"))
    assert k[cfg423] == 3
