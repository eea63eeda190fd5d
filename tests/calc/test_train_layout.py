"""Training from a layout (issue 24): memory by part and fit, step time by part, the property
tests, DeepSeek-V3's layout, the validation table (pinned, misses reported as misses), the CLI's
JSON keys and the search."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest

from planner import catalog
from planner.calc.train.layout import evaluate_layouts, grid_of, train_layout
from planner.calc.train.memory import train_memory_per_gpu
from planner.calc.train.shape import train_shape
from tests_support import REPO, cli_json

DSV3 = dict(gpus=2048, tokens=1e12, tp=1, pp=16, ep=64, micro_batch=1, global_batch=15360,
            seq_len=4096, recompute="selective", zero=1, schedule="dualpipe", recipe="fp8")


@pytest.fixture(scope="module")
def v3():
    return catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")


def test_gpt_175b_activations_match_korthikanti():
    # 34·h bytes per token per layer with dropout (Korthikanti et al. eq. 1): 10h + 24h.
    m = catalog.load_model(str(REPO / "validation/training-specs/gpt-175b.yaml"))
    s = train_shape(m, seq_len=2048, dropout=True)
    assert s.act_hsized["none"] + s.act_sharded["none"] == 34 * 12288
    assert s.act_softmax_per_key == 5 * 96


def test_deepseek_v3_gpu_hours_within_15_percent(v3):
    r = train_layout(*v3, **DSV3)
    assert abs(r.train_gpu_hours / 180_000 - 1) <= 0.15        # V3R: 180K per 1T tokens
    assert r.train_gpu_hours == pytest.approx(191_522, rel=1e-3)


def test_deepseek_v3_memory_is_reported_with_its_overflowing_part(v3):
    # The model says the paper's layout does NOT fit 80 GiB with one 4,096-token sequence per
    # micro-batch (a miss against the paper, reported): activations are the largest part.
    r = train_layout(*v3, **DSV3)
    assert not r.fits and r.largest_memory_part == "activations"
    assert r.memory_bytes_per_gpu == pytest.approx(117.43e9, rel=1e-3)
    no_zero = train_layout(*v3, **{**DSV3, "zero": 0})
    pp8 = train_layout(*v3, **{**DSV3, "pp": 8})
    assert no_zero.memory_parts["optimizer"] > 5 * r.memory_parts["optimizer"]
    assert pp8.memory_bytes_per_gpu > r.memory_bytes_per_gpu


def _grid(**over):
    base = dict(tp=8, pp=8, dp=2, cp=1, ep=1, vpp=1, micro_batch=1, zero=1,
                recompute="selective", schedule="1f1b")
    base.update(over)
    return grid_of(**base)


def test_more_recompute_never_raises_activation_memory():
    for name in ("llama-3.1-70b", "deepseek-v3", "qwen3-30b-a3b"):
        s = train_shape(catalog.load_model(name), seq_len=4096)
        mem = train_memory_per_gpu(s, capacity_bytes=80e9, recipe="bf16", tp=np.array([1, 2, 8]),
                                   pp=4, dp=1, cp=1, ep=1, vpp=1, micro_batch=2, seq_len=4096,
                                   num_micro_batches=8, recompute=np.array([[0], [1], [2]]),
                                   zero=0, schedule=0)
        act = mem.parts["activations"]
        assert np.all(act[0] >= act[1]) and np.all(act[1] >= act[2]) and np.all(act[0] > act[2])


def test_more_zero_sharding_never_raises_optimizer_memory():
    s = train_shape(catalog.load_model("deepseek-v3"), seq_len=4096)
    mem = train_memory_per_gpu(s, capacity_bytes=80e9, recipe="bf16", tp=1, pp=16,
                               dp=np.array([[1], [8], [128]]), cp=1, ep=8, vpp=1, micro_batch=1,
                               seq_len=4096, num_micro_batches=16,
                               recompute=1, zero=np.array([0, 1, 2, 3]), schedule=0)
    for part in ("optimizer", "gradients", "weights"):
        v = np.broadcast_to(mem.parts[part], (3, 4))
        assert np.all(np.diff(v, axis=1) <= 0)
    assert np.all(mem.parts["optimizer"][1:, 1] < mem.parts["optimizer"][1:, 0])


def test_a_faster_link_never_lengthens_the_step(v3):
    model, hw = v3
    grid = _grid(tp=np.array([1, 8, 8]), pp=np.array([16, 8, 4]), dp=np.array([128, 32, 64]),
                 ep=np.array([64, 8, 16]), schedule=np.array([3, 0, 1]), vpp=np.array([1, 1, 2]))
    base = evaluate_layouts(model, hw, grid, gpus=2048, global_batch=15360, seq_len=4096)
    for tier in ("scale_up", "scale_out"):
        link = getattr(hw, tier)
        faster = dataclasses.replace(
            hw, **{tier: dataclasses.replace(
                link, **({"bandwidth_gb_per_s_unidirectional": 2 * link.bandwidth_gb_per_s_unidirectional}
                         if tier == "scale_up" else
                         {"nic_bandwidth_gbit_per_s": 2 * link.nic_bandwidth_gbit_per_s}))})
        quick = evaluate_layouts(model, faster, grid, gpus=2048, global_batch=15360, seq_len=4096)
        assert np.all(quick.step_time_s <= base.step_time_s)
        assert np.any(quick.step_time_s < base.step_time_s)


def test_invalid_layouts_are_masked_with_a_reason(v3):
    e = evaluate_layouts(*v3, _grid(tp=np.array([8, 3]), dp=np.array([32, 32])), gpus=2048,
                         global_batch=15360, seq_len=4096)
    assert list(e.valid) == [True, False] and "t·p·c·d" in e.reason[1]


VALIDATION = {   # id: (predicted step s, error) at the pinned model; misses stay misses
    "korthikanti-22b-full": (1.11, -0.219), "korthikanti-22b-seqsel": (0.85, -0.227),
    "korthikanti-175b-full": (14.55, -0.197), "korthikanti-175b-seqsel": (10.96, -0.203),
    "korthikanti-530b-full": (41.34, -0.157), "korthikanti-530b-seqsel": (31.06, -0.179),
    "korthikanti-1t-full": (82.39, -0.127), "korthikanti-1t-seqsel": (62.59, -0.124),
    "deepseek-v3-pretrain": (21.18, 0.064),
}


def test_validation_table_is_pinned_and_in_the_docs():
    from planner.studies.train_validation import validate_training

    rows = validate_training()
    assert {r.id: (round(r.step_time_s, 2), round(r.error_frac, 3)) for r in rows} == VALIDATION
    errors = [abs(r.error_frac) for r in rows]
    # Issue 24 asks median <= 10%: the model misses it (17.9%); none beyond 25% (max 22.7%).
    assert round(statistics.median(errors), 3) == 0.179 and max(errors) <= 0.25
    docs = (REPO / "docs/training.md").read_text()
    for r in rows:
        line = next(x for x in docs.splitlines() if x.startswith(f"| {r.id} "))
        assert f"{r.step_time_s:.2f}" in line and f"{r.error_frac * 100:+.1f}%" in line


def test_cli_layout_json_keys_and_search():
    recs = cli_json("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                    "--pp", "16", "--ep", "64", "--global-batch", "15360", "--zero", "1",
                    "--schedule", "dualpipe", "--fp8")
    first = recs[0]
    for key in ("memory_bytes_per_gpu", "step_time_s", "tokens_per_s_per_gpu", "mfu_frac",
                "train_gpu_hours"):
        assert key in first
    assert first["train_gpu_hours"] == pytest.approx(191_522, rel=1e-3)
    found = cli_json("train", "llama-3.1-70b", "-H", "h100", "--tokens", "1T", "--gpus", "64",
                     "--global-batch", "256", "--search", "--top", "3")
    times = [r["step_time_s"] for r in found]
    assert len(times) == 3 and times == sorted(times)
    assert all(r["memory_bytes_per_gpu"] <= 81559 * 2**20 for r in found)


def test_korthikanti_figure1_memory_reproduced_and_in_the_docs():
    from planner.studies.train_validation import validate_training_memory

    rows = validate_training_memory()
    assert len(rows) == 8
    docs = (REPO / "docs/training.md").read_text()
    for r in rows:
        # Activations: the paper's formula (34 + 5as/h, SP, interleaving) to 0.1%.
        assert r.predicted_act_gib == pytest.approx(r.act_gib, rel=1e-3)
        # Parameters + optimizer: 18 B per parameter, the embedding on the first stage on top.
        assert 0 < r.predicted_par_opt_gib / r.par_opt_gib - 1 < 0.09
        assert f"| {r.id} | {r.recompute} | {r.par_opt_gib:.2f} GiB | " \
               f"{r.predicted_par_opt_gib:.2f} GiB" in docs


def test_cli_layout_explain_names_the_rates_and_a_bad_layout_exits_2():
    from tests_support import cli_run

    out = cli_run("train", "llama-3.1-70b", "-H", "h100", "--tokens", "1T", "--gpus", "64",
                  "--tp", "8", "--pp", "4", "--global-batch", "64", "--explain")
    assert out.exit_code == 0 and "efficiency.matmul_flops" in out.stdout
    bad = cli_run("train", "llama-3.1-70b", "-H", "h100", "--tokens", "1T", "--gpus", "64",
                  "--tp", "3", "--global-batch", "64")
    assert bad.exit_code == 2 and "t·p·c·d != GPUs" in bad.stderr


# Property tests over random layouts (hypothesis): the three, and vectorization.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MODELS = ("llama-3.1-70b", "deepseek-v3", "qwen3-30b-a3b", "mixtral-8x7b")
layouts = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS), "tp": st.sampled_from([1, 2, 4, 8]),
    "pp": st.sampled_from([1, 2, 4, 8, 16]), "dp": st.sampled_from([1, 2, 8, 32]),
    "cp": st.sampled_from([1, 2]), "ep": st.sampled_from([1, 2, 8, 64]),
    "micro_batch": st.sampled_from([1, 2, 4]), "schedule": st.integers(0, 4),
    "zero": st.integers(0, 3), "recompute": st.integers(0, 2),
    "flash": st.booleans(), "sp": st.booleans(), "recipe": st.sampled_from(["bf16", "fp8"]),
})


def _eval(lay, hardware, **over):
    lay = {**lay, **over}
    model = catalog.load_model(lay["model"])
    sched = lay["schedule"]
    grid = grid_of(tp=lay["tp"], pp=lay["pp"], dp=lay["dp"], cp=lay["cp"], ep=lay["ep"],
                   vpp=2 if sched == 1 else 1, micro_batch=lay["micro_batch"], zero=lay["zero"],
                   recompute=lay["recompute"], schedule=sched)
    gpus = lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"]
    return evaluate_layouts(model, hardware, grid, gpus=gpus,
                            global_batch=8 * lay["micro_batch"] * lay["dp"], seq_len=4096,
                            recipe=lay["recipe"], sequence_parallel=lay["sp"],
                            flash_attention=lay["flash"])


@settings(max_examples=60, deadline=None)
@given(layouts, st.floats(1.01, 8.0), st.sampled_from(["scale_up", "scale_out"]))
def test_property_a_faster_link_never_lengthens_the_step(lay, factor, tier):
    hw = catalog.load_hardware("h800")
    link = getattr(hw, tier)
    field = ("bandwidth_gb_per_s_unidirectional" if tier == "scale_up"
             else "nic_bandwidth_gbit_per_s")
    faster = dataclasses.replace(hw, **{tier: dataclasses.replace(
        link, **{field: factor * getattr(link, field)})})
    assert _eval(lay, faster).step_time_s <= _eval(lay, hw).step_time_s * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(layouts)
def test_property_more_recompute_and_more_zero_never_raise_memory(lay):
    hw = catalog.load_hardware("h800")
    acts = [float(_eval(lay, hw, recompute=r).memory_parts["activations"]) for r in (0, 1, 2)]
    assert acts[0] >= acts[1] >= acts[2]
    opt = [float(_eval(lay, hw, zero=z).memory_parts["optimizer"]) for z in (0, 1, 2, 3)]
    assert all(a >= b for a, b in zip(opt, opt[1:]))


def test_grid_evaluation_equals_one_layout_at_a_time():
    model, hw = catalog.load_model("qwen3-30b-a3b"), catalog.load_hardware("h100")
    tp, pp = np.array([1, 2, 4, 8]), np.array([8, 4, 2, 1])
    grid = grid_of(tp=tp, pp=pp, dp=4, cp=1, ep=4, vpp=1, micro_batch=2, zero=1,
                   recompute="selective", schedule="1f1b")
    whole = evaluate_layouts(model, hw, grid, gpus=32, global_batch=64, seq_len=4096)
    for i in range(4):
        one = evaluate_layouts(model, hw, grid_of(tp=tp[i], pp=pp[i], dp=4, cp=1, ep=4, vpp=1,
                                                  micro_batch=2, zero=1, recompute="selective",
                                                  schedule="1f1b"),
                               gpus=32, global_batch=64, seq_len=4096)
        assert float(one.step_time_s) == whole.step_time_s[i]
        assert float(one.memory_bytes_per_gpu) == whole.memory_bytes_per_gpu[i]


def test_search_grid_is_bounded_and_counts_what_it_keeps():
    from planner.calc.train import layout
    from planner.errors import UsageError

    model = catalog.load_model("llama-3.1-70b")
    grid = layout.search_grid(model, gpus=64)
    assert grid.tp.size == 5_544                     # docstring's count
    assert np.all((grid.vpp == 1) | (grid.schedule == 1))
    assert np.all(grid.tp * grid.pp * grid.cp * grid.dp == 64)
    with pytest.raises(UsageError, match="more than 2,000,000"):
        layout.search_grid(model, gpus=64, micro_batches=tuple(range(1, 400)))
