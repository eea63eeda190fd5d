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
    assert Counter(r["status"] for r in recipes.values()) == {
        "resolved": 137, "twin": 76, "none": 209, "ambiguous": 144, "mtp": 89,
        "mtp_k_unknown": 5, "mtp_unknown": 91, "nodes": 39}
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
        "3": 69, "1": 14, "2": 6}
    # the TensorRT-LLM entries name their decode max_batch_size (recipe file ``_batch<N>_``)
    for rec in recipes.values():
        if rec["decode_max_batch"]:
            assert "dynamo-trt" in rec["entry"] and int(rec["decode_max_batch"]) >= 1
    filled = [r for r in recipes.values() if r["status"] in (RESOLVED, MTP)]
    assert sum(bool(r["decode_max_batch"]) for r in filled) == 97 + 89
    t, _ = shipped
    cap = decode_max_batch(t)
    assert np.isfinite(cap).sum() == 186 and np.all(cap[np.isfinite(cap)] >= 1)


def test_resolved_rows_take_the_recipes_workers_and_keep_the_rows_own_layout(shipped):
    t, (f, filled, reason) = shipped
    recipes = read_recipes()
    assert filled.sum() == 137 + 76 + 89 and not reason[filled].any()
    for i in np.flatnonzero(filled):
        rec = recipes[str(t.id[i])]
        for role in ("prefill", "decode"):
            workers = int(rec[f"{role}_num_workers"])
            assert getattr(f, f"{role}_num_workers")[i] == workers >= 1
            # the row's tp_size is the recipe's GPUs per worker, whatever its attention DP
            gpus = getattr(f, f"{role}_tp")[i] * getattr(f, f"{role}_attention_dp")[i]
            assert gpus == int(rec[f"{role}_tp"])
            if rec["status"] == RESOLVED:         # a twin may correct a node-sized "tp1" row
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
    """55 recipe-resolved rows are also in the file as recorded rows (the same measurement:
    TTFT and TPOT equal): the recipe gives the recorded worker counts on all 55 and the
    recorded layouts on 53 (the other 2: the recipe's decode is attention DP 8, the record's
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
    assert (pairs, workers, layouts) == (55, 55, 53)


def test_inferencemax_rows_are_the_listed_ones_and_their_recorded_copies(shipped):
    t, _ = shipped
    recipes = read_recipes()
    m = inferencemax_rows(t)
    twins = {x for r in recipes.values() for x in r["twin"].split()}
    assert m.sum() == 790 + len(twins) and len(twins) > 0
    assert all(str(i) in recipes or str(i) in twins for i in t.id[m])
