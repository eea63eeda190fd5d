"""Issue 24, round seven: the rules a schedule's own code imposes (DualPipe's micro-batch
asserts), the rates every output names, and the monotone step (ZB1P at m < p, the pace-setting
device)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.calc.train.layout import (
    dualpipe_runnable_micro_batches, search_layouts, train_layout,
)
from planner.calc.train.recipe import TRAIN_SCHEDULES
from planner.errors import UsageError
from tests_support import cli_run

DSV3 = dict(gpus=2048, tokens=1e12, tp=1, pp=16, ep=64, micro_batch=1, global_batch=15360,
            seq_len=4096, recompute="selective", zero=1, schedule="dualpipe", recipe="fp8")
DUAL, DUALV = TRAIN_SCHEDULES.index("dualpipe"), TRAIN_SCHEDULES.index("dualpipev")


@pytest.fixture(scope="module")
def v3():
    return catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")


@pytest.mark.parametrize("schedule, batch, words", [
    ("dualpipe", 3072, "m >= 2p"),          # m = 24 < 32 (V3R's first batch on this layout)
    ("dualpipe", 4224, "even m"),           # m = 33
    ("dualpipev", 3072, "m >= 2p"),
])
def test_a_layout_dualpipes_step_cannot_run_is_refused(v3, schedule, batch, words):
    """DualPipe@3da1bbe `step()`: assert num_chunks % 2 == 0 and num_chunks >= num_ranks * 2
    (DualPipeV: num_chunks >= num_ranks * 2)."""
    with pytest.raises(UsageError, match=words):
        train_layout(*v3, **{**DSV3, "schedule": schedule, "global_batch": batch})


def test_dualpipev_runs_an_odd_m_and_dualpipe_its_smallest(v3):
    assert train_layout(*v3, **{**DSV3, "schedule": "dualpipev",
                                "global_batch": 33 * 128}).num_micro_batches == 33
    assert train_layout(*v3, **{**DSV3, "global_batch": 32 * 128}).num_micro_batches == 32


def test_the_cli_refuses_it_in_one_line_exit_2():
    result = cli_run("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                     "--pp", "16", "--ep", "64", "--global-batch", "3072", "--zero", "1",
                     "--schedule", "dualpipe", "--fp8")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "m = 24" in result.stderr and "m >= 2p" in result.stderr


def test_the_search_never_offers_a_layout_dualpipe_cannot_run(v3):
    e, order = search_layouts(*v3, gpus=2048, global_batch=15360, seq_len=4096, recipe="fp8",
                              top=100_000)
    g, m = e.grid, e.num_micro_batches
    dual = g.schedule >= DUAL
    assert np.any(dual[order])                              # DualPipe(V) layouts are offered
    assert np.all(m[order][dual[order]] >= 2 * g.pp[order][dual[order]])
    assert np.all(m[order][g.schedule[order] == DUAL] % 2 == 0)
    # round six offered 224 fitting DualPipe(V) layouts with m < 2p or an odd DualPipe m
    assert not np.any(e.fits & dual & (m < 2 * g.pp))


def test_runnable_micro_batches():
    got = dualpipe_runnable_micro_batches(np.array([27, 33, 39, 117, 27]), pp=16,
                                          schedule=np.array([DUAL, DUAL, DUAL, DUAL, DUALV]))
    assert got.tolist() == [32, 32, 38, 116, 32]
    assert int(dualpipe_runnable_micro_batches(27, pp=16, schedule=0)) == 27


def test_the_batch_ramp_runs_only_counts_dualpipe_runs(monkeypatch):
    """validate_whole_runs' ramp (3,072 -> 15,360 over 469B tokens, 16 slices) asks for m =
    27, 33, ... 117 on d = 128: each slice runs at the nearest count DualPipe's step() takes."""
    import planner.studies.train_validation as tv

    seen: list[int] = []
    real = tv._run_gpu_hours

    def spy(model, hardware, run, *, batch, tokens):
        seen.append(batch)
        return real(model, hardware, run, batch=batch, tokens=tokens)

    monkeypatch.setattr(tv, "_run_gpu_hours", spy)
    (row,) = tv.validate_whole_runs()
    ramp = [b // 128 for b in seen[:16]]
    assert ramp[:3] == [32, 32, 38] and ramp[-1] == 116
    assert all(m % 2 == 0 and m >= 32 for m in ramp)
    assert row.gpu_hours == pytest.approx(2_322_976, rel=1e-5)


def test_every_output_names_the_wgrad_rates(v3):
    r = train_layout(*v3, **DSV3)
    names = {i.name: i for i in r.inputs}
    assert names["weight-gradient GEMM rate"].value == pytest.approx(0.4704 * 1979e12, rel=1e-3)
    assert "wgrad_gemm_flops" in names["weight-gradient GEMM rate"].origin
    assert names["expert weight-gradient GEMM rate"].value == pytest.approx(1038.5e12, rel=1e-3)
    assert "grouped_wgrad_gemm_flops" in names["expert weight-gradient GEMM rate"].origin
    assert "wgrad_gemm_flops and grouped_wgrad_gemm_flops" in r.rates_note
    a100 = train_layout(catalog.load_model("llama-3.1-70b"), catalog.load_hardware("a100"),
                        gpus=64, tokens=1e12, tp=8, pp=8, global_batch=256)
    wg = {i.name: i for i in a100.inputs}["weight-gradient GEMM rate"]
    assert wg.value == {i.name: i for i in a100.inputs}["GEMM rate"].value
    assert "no efficiency.wgrad_gemm_flops" in wg.origin
    assert "forward GEMMs' rates" in a100.rates_note


def _zb_h1_greedy_bubble(p: int, m: int, f: float, bd: float, w: float) -> float:
    """A ZB-H1 schedule, simulated: each stage, when idle, starts the earliest-ready of its
    next B (input gradient; the last stage's after its F, else after the next stage's B), its
    next F (at most p - i in flight, 1F1B's memory) and a pending W, ties to B, F, W; the
    bubble is the last finish less a stage's busy time m·(F + B_d + W)."""
    f_done: dict = {}
    b_done: dict = {}
    free = [0.0] * p
    nf, nb, nw = [0] * p, [0] * p, [0] * p
    progressed = True
    while progressed:
        progressed = False
        for i in range(p):
            cands = []
            if nb[i] < nf[i]:
                dep = f_done[(i, nb[i])] if i == p - 1 else b_done.get((i + 1, nb[i]))
                if dep is not None:
                    cands.append((max(free[i], dep), 0))
            if nf[i] < m and nf[i] - nb[i] < p - i:
                dep = 0.0 if i == 0 else f_done.get((i - 1, nf[i]))
                if dep is not None:
                    cands.append((max(free[i], dep), 1))
            if nw[i] < nb[i]:
                cands.append((free[i], 2))
            if not cands:
                continue
            start, kind = min(cands)
            if kind == 0:
                free[i] = b_done[(i, nb[i])] = start + bd
                nb[i] += 1
            elif kind == 1:
                free[i] = f_done[(i, nf[i])] = start + f
                nf[i] += 1
            else:
                free[i] = start + w
                nw[i] += 1
            progressed = True
    assert nw == [m] * p
    return max(free) - m * (f + bd + w)


@pytest.mark.parametrize("f, bd, w", [(1.0, 1.0, 1.0), (1.0, 1.0, 0.5)])
@pytest.mark.parametrize("p", [4, 8, 16])
def test_zb1p_bubble_at_few_micro_batches_matches_a_simulated_schedule(p, f, bd, w):
    """ZB-H1's (p − 1)(F + B − 2W) (B the whole backward) holds for m >= p; below it the drain
    hides (m − 1)·W: the simulated schedule gives exactly the bubble the model takes for every
    m <= p (and beyond at F = B_d = W; with W < F and m > p the greedy schedule beats the
    paper's handcrafted figure, which the model keeps)."""
    from planner.calc.train.overlap import bubble_s

    zb1p = TRAIN_SCHEDULES.index("zb1p")
    for m in range(1, (p + 5) if w == f else (p + 1)):
        got = float(bubble_s(zb1p, pp=p, vpp=1, f_s=f, b_s=bd + w, w_s=w, m=m))
        assert got == pytest.approx(_zb_h1_greedy_bubble(p, m, f, bd, w)), m


def test_zb1p_step_at_m_below_p_grows_with_the_weight_gradient_time():
    """Llama-3.1-70B on 128 H800, FP8, t = 8, p = 16, m = 8, full recompute, ZB1P: DeepGEMM's
    slower wgrad kernels (hardware/h800.yaml) lengthen W; round six's bubble (p − 1)(F + B −
    2W) shrank faster than m·W grew (1.0781 s at the forward rate -> 1.0747 s)."""
    h800 = catalog.load_hardware("h800")
    forward_rate = dataclasses.replace(h800, efficiency=dataclasses.replace(
        h800.efficiency, wgrad_gemm_flops=None, grouped_wgrad_gemm_flops=None))
    kw = dict(gpus=128, tokens=1e12, tp=8, pp=16, micro_batch=1, global_batch=8,
              seq_len=4096, recompute="full", zero=1, schedule="zb1p", recipe="fp8")
    llama = catalog.load_model("llama-3.1-70b")
    slow_w, fast_w = (train_layout(llama, h, **kw) for h in (h800, forward_rate))
    assert slow_w.num_micro_batches == 8
    assert slow_w.step_time_s > fast_w.step_time_s


def test_the_pace_setting_device_is_the_slowest_on_all_of_its_step(v3, monkeypatch):
    """DualPipe(V)'s pace is set by the device with the most time in the step: its busy time,
    the chunks it runs alone, its own bubble (its F, B, W) and its exposed DP time (its own
    parameters behind its own windows). Round six chose on busy time alone: DeepSeek-V3, t = 1,
    p = 8, EP 64, b = 2, ZeRO-2, full recompute, DualPipeV, 2,048 H800: 20.770 s, where a
    device it passed over takes 20.844 s on all of its step."""
    import planner.calc.train.step as step_module

    kw = {**DSV3, "pp": 8, "micro_batch": 2, "zero": 2, "recompute": "full",
          "schedule": "dualpipev"}
    step = train_layout(*v3, **kw).step_time_s
    assert step == pytest.approx(20.844, abs=1e-3)
    real = step_module._device_s
    monkeypatch.setattr(step_module, "_device_s",                   # chosen on busy time
                        lambda *a, rest=None, **k: real(*a, **k))
    busy_only = train_layout(*v3, **kw).step_time_s
    assert busy_only == pytest.approx(20.770, abs=1e-3) and step > busy_only
