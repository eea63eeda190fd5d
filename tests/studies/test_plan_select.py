"""planner plan's search, checked on its own (a small stand-in evaluator, plan_support.py): the
layout grid, the Pareto frontier against a brute-force definition, the best point and its
runner-up, the limits, the fewest GPUs for a request rate, $ and J per token."""

from __future__ import annotations

import numpy as np
import pytest
from plan_support import fake_workload

from planner.calc.cost import joules_per_token, usd_per_million_tokens
from planner.catalog import load_hardware, load_model
from planner.errors import UsageError
from planner.studies.plan import PlanQuery, layout_grid, precision_groups
from planner.studies.plan_select import LAYOUT_KEY, pareto_mask, plan


@pytest.fixture(scope="module")
def specs():
    return load_model("deepseek-v3"), [load_hardware("h200"), load_hardware("b200")]


def _plan(specs, **query):
    model, hws = specs
    return plan(model, hws, None, PlanQuery(isl=1024, osl=1024, **query), evaluate=fake_workload)


def dominated_brute_force(x, y):
    """Each point dominated by another (both axes maximized), by the definition, O(n^2)."""
    ge = (x[None, :] >= x[:, None]) & (y[None, :] >= y[:, None])
    gt = (x[None, :] > x[:, None]) | (y[None, :] > y[:, None])
    return (ge & gt).any(axis=1)


@pytest.mark.parametrize("seed", range(20))
def test_pareto_mask_is_the_set_no_point_dominates(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    # Few distinct values: ties on an axis and duplicate points are common.
    x = rng.integers(0, 12, n).astype(float)
    y = rng.integers(0, 12, n).astype(float)
    mask = pareto_mask(x, y)
    assert not dominated_brute_force(x, y)[mask].any()
    # Every point off the frontier is dominated by, or equal to, a frontier point.
    fx, fy = x[mask], y[mask]
    for i in np.flatnonzero(~mask):
        assert ((fx >= x[i]) & (fy >= y[i])).any()
    # One of each set of equal frontier points.
    assert len(set(zip(fx, fy))) == mask.sum()


def test_pareto_mask_hand_example():
    # (1,5) (2,4) (2,3) (3,1) (1,4): (2,3) is dominated by (2,4), (1,4) by (1,5) and (2,4).
    x = np.array([1, 2, 2, 3, 1.0])
    y = np.array([5, 4, 3, 1, 4.0])
    assert pareto_mask(x, y).tolist() == [True, True, False, True, False]


def test_layout_grid_follows_the_data_convention(specs):
    model, (h200, _) = specs
    g = layout_grid(model, h200, PlanQuery(isl=1, osl=1))
    assert (g["gpus"] == g["tp"] * g["attention_dp"] * g["pp"]).all()
    assert (g["moe_tp"] * g["moe_ep"] == g["tp"] * g["attention_dp"]).all()
    assert g["tp"].max() == 8 and g["gpus"].max() <= 128 and g["moe_ep"].max() <= 256
    assert (g["concurrency"] % g["attention_dp"] == 0).all()
    # All distinct (no layout twice).
    rows = np.stack([g[k] for k in ("tp", "pp", "attention_dp", "moe_ep", "concurrency")])
    assert np.unique(rows, axis=1).shape[1] == rows.shape[1]


def test_layout_grid_dense_model_and_given_gpus():
    dense, h200 = load_model("llama-3.1-70b"), load_hardware("h200")
    g = layout_grid(dense, h200, PlanQuery(isl=1, osl=1, gpus=24, concurrency=16))
    assert (g["attention_dp"] == 1).all() and (g["moe_ep"] == 1).all()
    assert (24 % g["gpus"] == 0).all() and (g["concurrency"] == 16).all()
    assert set(g["gpus"].tolist()) == {1, 2, 4, 8}


def test_precision_groups_follow_the_hardware(specs):
    model, (h200, b200) = specs
    assert {w for w, _, _ in precision_groups(model, h200)} == {"fp8", "bf16"}
    assert ("fp8", "fp4", "fp8") in precision_groups(model, b200)
    assert ("fp8", "fp4", "fp8") not in precision_groups(model, h200)


def test_best_meets_the_limits_and_beats_every_point_that_does(specs):
    r = _plan(specs, tpot_s=0.02, ttft_s=5.0)
    c = r.points.columns
    ok = c["fits"] & (c["tpot_s"] <= 0.02) & (c["ttft_s"] <= 5.0)
    assert ok.sum() == r.within_limits > 0
    assert c["tokens_per_s_per_gpu"][r.best] == c["tokens_per_s_per_gpu"][ok].max()
    # The runner-up is another layout, and the best of the others.
    differs = np.zeros(len(r.points), dtype=bool)
    for k in LAYOUT_KEY:
        differs |= c[k] != c[k][r.best]
    assert differs[r.runner_up]
    assert c["tokens_per_s_per_gpu"][r.runner_up] == c["tokens_per_s_per_gpu"][ok & differs].max()
    # The best point over the limits breaks one and makes more tokens/s per GPU.
    o = r.over_limits
    assert not ok[o] and c["fits"][o]
    assert c["tokens_per_s_per_gpu"][o] > c["tokens_per_s_per_gpu"][r.best]


def test_the_best_point_is_on_its_hardware_frontier(specs):
    r = _plan(specs, tpot_s=0.02)
    hw = r.points.columns["hardware"][r.best]
    assert r.best in r.frontier[hw].tolist()


@pytest.mark.parametrize("loose, tight", [(0.05, 0.03), (0.03, 0.02), (0.02, 0.012),
                                          (0.012, 0.008)])
def test_a_tighter_tpot_never_raises_the_best_tokens_per_gpu(specs, loose, tight):
    a, b = _plan(specs, tpot_s=loose), _plan(specs, tpot_s=tight)
    best = [r.points.columns["tokens_per_s_per_gpu"][r.best] if r.best is not None else 0
            for r in (a, b)]
    assert best[1] <= best[0]
    assert b.best is None or b.points.columns["tpot_s"][b.best] <= tight


def test_fewest_gpus_for_a_request_rate(specs):
    r = _plan(specs, tpot_s=0.03, request_rate_per_s=50.0)
    c = r.points.columns
    ok = c["fits"] & (c["tpot_s"] <= 0.03)
    # Enough replicas: each sustains concurrency / e2e latency requests/s (Little's law).
    sustained = c["replicas"] * c["concurrency"] / c["e2e_latency_s"]
    assert (sustained[ok] >= 50.0 * (1 - 1e-12)).all()
    assert ((c["replicas"][ok] - 1) * c["concurrency"][ok] / c["e2e_latency_s"][ok]
            < 50.0).all()
    assert c["total_gpus"][r.fewest_gpus] == c["total_gpus"][ok].min()


def test_cost_and_energy_per_token(specs):
    r = _plan(specs)
    c = r.points.columns
    on = c["hardware"] == "h200"
    x = c["tokens_per_s_per_gpu"][on]
    np.testing.assert_allclose(c["usd_per_million_tokens"][on], 4.54 / 3600 / x * 1e6)
    np.testing.assert_allclose(c["joules_per_token"][on], 700 / x)
    assert usd_per_million_tokens(usd_per_gpu_hour=4.54, tokens_per_s_per_gpu=1000) == \
        pytest.approx(1.26111, rel=1e-5)
    assert joules_per_token(board_power_w=700, tokens_per_s_per_gpu=1000) == 0.7
    cheap = _plan(specs, usd_per_gpu_hour=1.0).points.columns
    np.testing.assert_allclose(cheap["usd_per_million_tokens"][on], 1.0 / 3600 / x * 1e6)


def test_contradictory_options_are_usage_errors():
    with pytest.raises(UsageError, match="--tpot-ms or --min-tokens"):
        PlanQuery(isl=1, osl=1, tpot_s=0.1, min_tokens_per_s_per_user=10)
    with pytest.raises(UsageError, match="--gpus or --max-gpus"):
        PlanQuery(isl=1, osl=1, gpus=8, max_gpus=16)
