"""planner plan through the real workload model: every frontier point re-run on its own through
serve_workload with its layout gives the same numbers; no frontier point is dominated; a
tighter TPOT never raises the best tokens/s per GPU."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.calc.serving.workload import serve_workload
from planner.catalog import load_hardware, load_model
from planner.specs.load import load_engine
from planner.studies.plan import PlanQuery
from planner.studies.plan_select import plan

#: Hardware with every efficiency factor the workload model needs.
HARDWARE = ("h200", "h100")


@pytest.fixture(scope="module")
def specs():
    return load_model("deepseek-v3"), [load_hardware(h) for h in HARDWARE], load_engine("sglang")


@pytest.fixture(scope="module")
def result(specs):
    model, hws, engine = specs
    return plan(model, hws, engine, PlanQuery(isl=1024, osl=1024, tpot_s=0.05, ttft_s=2.0))


FIELDS = ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
          "total_tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_bytes_per_gpu")


def test_every_frontier_point_rerun_alone_gives_the_same_numbers(specs, result):
    model, hws, engine = specs
    by_name = {h.name: h for h in hws}
    c = result.points.columns
    checked = 0
    for hw, idx in result.frontier.items():
        assert len(idx) > 3
        for i in idx.tolist():
            one = serve_workload(
                model, by_name[hw], engine, isl=1024, osl=1024,
                concurrency=int(c["concurrency"][i]), tp=int(c["tp"][i]), pp=int(c["pp"][i]),
                attention_dp=int(c["attention_dp"][i]), moe_tp=int(c["moe_tp"][i]),
                moe_ep=int(c["moe_ep"][i]), weights_dtype=str(c["weights_dtype"][i]),
                moe_weights_dtype=str(c["moe_weights_dtype"][i]), kv_dtype=str(c["kv_dtype"][i]))
            assert bool(one.fits)
            for f in FIELDS:
                assert float(getattr(one, f)) == pytest.approx(float(c[f][i]), rel=1e-9), f
            checked += 1
    assert checked >= 10


def test_no_frontier_point_is_dominated(result):
    c = result.points.columns
    fits = c["fits"] & (c["ttft_s"] <= 2.0)
    for hw, idx in result.frontier.items():
        pool = np.flatnonzero(fits & (c["hardware"] == hw))
        x, y = c["tokens_per_s_per_user"][pool], c["tokens_per_s_per_gpu"][pool]
        for i in idx.tolist():
            xi, yi = c["tokens_per_s_per_user"][i], c["tokens_per_s_per_gpu"][i]
            assert not (((x >= xi) & (y >= yi) & ((x > xi) | (y > yi))).any())
        # Sorted by tokens/s per user; tokens/s per GPU falls as it rises.
        assert (np.diff(c["tokens_per_s_per_user"][idx]) > 0).all()
        assert (np.diff(c["tokens_per_s_per_gpu"][idx]) < 0).all()


def test_the_best_point_is_the_frontier_point_with_most_tokens_per_gpu_within_the_limits(
        result):
    c = result.points.columns
    on = np.concatenate(list(result.frontier.values()))
    within = on[c["tpot_s"][on] <= 0.05]
    assert c["tokens_per_s_per_gpu"][result.best] == c["tokens_per_s_per_gpu"][within].max()
    assert c["tpot_s"][result.best] <= 0.05 and c["ttft_s"][result.best] <= 2.0


@settings(max_examples=8, deadline=None)
@given(st.floats(0.01, 0.2), st.floats(0.3, 1.0))
def test_a_tighter_tpot_never_raises_the_best_tokens_per_gpu(specs, tpot_s, shrink):
    model, hws, engine = specs
    hw = hws[:1]
    loose = plan(model, hw, engine, PlanQuery(isl=512, osl=256, tpot_s=tpot_s))
    tight = plan(model, hw, engine, PlanQuery(isl=512, osl=256, tpot_s=tpot_s * shrink))

    def best(r):
        return 0.0 if r.best is None else r.points.columns["tokens_per_s_per_gpu"][r.best]

    assert best(tight) <= best(loose)
