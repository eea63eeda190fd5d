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
from tests_support import REPO, busiest_stage_forward, cli_json

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


def test_deepseek_v3_gpu_hours_against_the_papers_180k(v3):
    # 156,500 GPU-hours per 1T tokens at the final batch against V3R's 180K: -13.1%, inside
    # the 15% (round six: the weight-gradient GEMMs at DeepGEMM's measured wgrad
    # rates (PR 95), 16.615 -> 16.808 s, -15.6%; the overlapped pairs' FP8 GEMMs on the 112
    # SMs the all-to-all's 20 leave (profile-data launch grids), -> 17.308 s; round five: the MTP block's recomputed MLA
    # up-projections and TP collectives, 16.655 -> 16.684 s; the overlapped all-to-all's
    # kernels hold V3R §3.2.2's 20 SMs, not DeepEP's 24, -> 16.615 s; round four: the MTP module at its parts' rates,
    # its output head the model's BF16 head (V3R §2.2, §3.3.1), 15.10 -> 16.70 s; its MoE
    # block's all-to-all, -> 16.87 s; the all-to-all of the 23 chunks each way DualPipe's
    # step() runs alone on the end device, -> 17.64 s; the end device timed on its own layers,
    # 3 dense + 2 MoE (V3R §3.2.3), not the model's average, -> 16.59 s; review: the MTP block's memory-bound kernels a MoE
    # block's, not the end device's mix, -> 16.66 s). 136,548 (-24.1%)
    # before round four; 138,101 and -23.3% before
    # the overlapped all-to-all cost (1 − s)·T instead of (1/s − 1)·T and the router's
    # kernels were counted; 112,505 (-37.5%) before the memory-bound kernels were counted one
    # by one (FP8 casts and transposes, SwiGLU, permutes, norms, the loss), the flash
    # backward at FA3's backward rate, MLA's RoPE and Q/K copies, the MTP layer's kernels and
    # the MLA up-projections recomputed. docs/training.md.
    r = train_layout(*v3, **DSV3)
    assert r.train_gpu_hours == pytest.approx(156_500, rel=1e-3)
    assert r.train_gpu_hours / 180_000 - 1 == pytest.approx(-0.131, abs=1e-3)
    one_f_one_b = train_layout(*v3, **{**DSV3, "schedule": "1f1b"})
    assert one_f_one_b.step_time_s > 2 * r.step_time_s    # head + MTP every micro-batch, EP exposed


def test_the_end_device_sets_dualpipes_pace_with_half_the_ends(v3):
    from planner.calc.train.rates import train_rates

    model, hw = v3
    s = train_shape(model, seq_len=4096, recipe="fp8")
    rates = train_rates(hw, gemm_dtype="fp8")
    _comp, _, ends, layers, share = busiest_stage_forward(s, rates, pp=16, schedule=3)
    _, _, all_ends, _, _ = busiest_stage_forward(s, rates, pp=16, schedule=0)
    # 4 blocks per chunk: the embedding chunk 3 layers, the head chunk 2 + MTP + head
    assert float(layers) == 2.5 and float(ends) == pytest.approx(float(all_ends) / 2)
    assert float(share) == 0.5
    # DualPipeV: every micro-batch passes both chunks of device 0: 4 - 2 - 1 = 1 layer and all
    # of the head and MTP
    _, _, v_ends, v_layers, _ = busiest_stage_forward(s, rates, pp=16, schedule=4)
    assert float(v_layers) == 1.0 and float(v_ends) == pytest.approx(float(all_ends))


def test_the_pace_setting_device_is_chosen_on_all_of_its_time(v3):
    # Memory-bound kernels per layer weigh on the middle device (4 layers) more than on the
    # end device (2.5 layers and half the ends); the loss weighs on the end device only.
    from planner.calc.train.rates import train_rates
    from planner.calc.train.shape import with_moe_share
    from planner.calc.train.step import _micro_batch_s, _pieces_s

    model, hw = v3
    s = train_shape(model, seq_len=4096, recipe="fp8")
    rates = train_rates(hw, gemm_dtype="fp8", rows=4096.0)
    args = dict(pp=16, schedule=3)
    *_, share = busiest_stage_forward(s, rates, **args)
    assert float(share) == 0.5                      # GEMMs alone: the end device
    *_, share = busiest_stage_forward(s, rates, **args, layer_other_s=1.0)
    assert float(share) == 0.0                      # heavy per-layer kernels: a middle one
    *_, share = busiest_stage_forward(s, rates, **args, layer_other_s=1.0,
                                      ends_other_s=10.0)
    assert float(share) == 0.5                      # and a heavy loss: the end device again
    # The step follows the slower device's whole forward + backward, with HBM slow or fast.
    kw = dict(recompute=1, tp=1, cp=1, ep=64, tokens=4096.0, seq_len=4096,
              sequence_parallel=True, flash=True, ep_overlap=True)
    # (a 32,000-entry vocabulary with HBM 20 x slower: GEMMs alone still pick the end
    # device, all of the time a middle one)
    for vocab, hbm in ((129_280, rates.hbm), (32_000, rates.hbm / 20)):
        r, s = dataclasses.replace(rates, hbm=hbm), dataclasses.replace(s, vocab_size=vocab)
        *_, gemm_share = busiest_stage_forward(s, r, **args)
        assert float(gemm_share) == 0.5

        def total(mb):
            return float(3 * mb["compute_f"] + mb["att_b"] + mb["elem_f"] + mb["elem_b"]
                         + mb["recompute"])

        def device(shape, layers, share, r=r):
            layer, scores, ends, ends_scores = step_per_layer(shape, r)
            return total(_pieces_s(shape, r, comp=layers * layer, scores=layers * scores,
                                   ends=share * ends, ends_scores=share * ends_scores,
                                   layers_dev=layers, share=share, **kw))

        # each device timed on its own layers (the end device's 3 dense + 2 MoE, a middle
        # device's 4 MoE) and the slower kept (round four chose at the model's average layer,
        # then timed the chosen one on its own: Kimi-K2's faster end device set the pace)
        middle, end = device(s, 4.0, 0.0), device(s, 2.5, 0.5)
        own = {True: device(with_moe_share(s, 1.0), 4.0, 0.0),
               False: device(with_moe_share(s, 0.4), 2.5, 0.5)}
        chosen = total(_micro_batch_s(s, r, pp=16, schedule=3, m=120.0, **kw))
        assert chosen == pytest.approx(max(own.values()))
        assert (middle > end) == (vocab == 32_000)


def test_overlapped_all_to_all_costs_the_sm_share_it_holds_for_its_duration(v3):
    # DualPipe: the all-to-all's kernels hold their SMs while the links take T; the compute W
    # beside them runs at the share s they leave: + (1 − s)·T when W > s·T, else + T − W.
    from planner.calc.train.rates import train_rates
    from planner.calc.train.overlap import ep_pass_s
    from planner.calc.train.step import _pieces_s

    model, hw = v3
    s = train_shape(model, seq_len=4096, recipe="fp8")
    rates = dataclasses.replace(train_rates(hw, gemm_dtype="fp8", rows=4096.0),
                                overlap_compute=0.8)
    # the spec's share counts DeepEP's 24 SMs; DeepSeek-V3's training kernels hold 20 of them
    # (V3R §3.2.2): 0.2 × 20/24 of the compute while the links take T (0.2 before round five)
    held = 0.2 * 20 / 24
    kw = dict(recompute=1, tp=1, cp=1, ep=64, tokens=4096.0, seq_len=4096,
              sequence_parallel=True, flash=True, ep_overlap=True, ends=0.0, ends_scores=0.0,
              layers_dev=4.0, share=0.0)
    t = 2 * float(ep_pass_s(s, rates, tokens=4096.0, tp=1, ep=64, layers_dev=4.0,
                            ends_share=0.0))
    # the pair's compute also holds the recomputed MLA up-projections (selective, V3R
    # §3.2.3), whose time hides T as the rest does (round-six review; W was 3 x forward only)
    up = s.up_projection_flops * 4096.0 * 4.0 / rates.gemm
    assert up > 0
    for w in (10 * t, 0.5 * t):                  # W / 3 forward compute, W = 3 x forward
        mb = _pieces_s(s, rates, comp=w / 3, scores=0.0, **kw)
        assert float(mb["ep"]) == pytest.approx(max(t - w - up, held * t))
    assert float(_pieces_s(s, rates, comp=10 * t / 3, scores=0.0, **kw)["ep"]) == \
        pytest.approx(held * t)                  # not (1/s − 1)·T = 0.25·T


def step_per_layer(s, rates):
    from planner.calc.train.step import _per_layer_forward_s

    return _per_layer_forward_s(s, rates, tokens=4096.0, tp=1, flash=True, seq_len=4096)


def test_deepseek_v3_fits_with_the_papers_choices_and_not_without_zero1_or_with_pp8(v3):
    # V3R §3.2: PP 16 DualPipe, EP 64, ZeRO-1, FP8; one 4,096-token sequence per micro-batch
    # (deepseek-ai/profile-data train.json: per-token kernels over 4,096 rows, flash attention
    # over 32 blocks of 128 queries), 4 blocks per stage (61 layers + MTP + 2 ends = 64 / 16).
    # The busiest device is a middle one (8 blocks' states, 17 micro-batches of 4 blocks).
    r = train_layout(*v3, **DSV3)
    assert r.fits and r.memory_bytes_per_gpu == pytest.approx(74.13e9, rel=1e-3)
    assert r.memory_parts["activations"] == pytest.approx(43.02e9, rel=1e-3)
    assert r.memory_parts["logits"] == 0.0          # a middle stage binds
    no_zero = train_layout(*v3, **{**DSV3, "zero": 0})
    pp8 = train_layout(*v3, **{**DSV3, "pp": 8})
    assert not no_zero.fits and no_zero.largest_memory_part == "optimizer"
    assert no_zero.memory_bytes_per_gpu == pytest.approx(103.72e9, rel=1e-3)
    assert not pp8.fits and pp8.memory_bytes_per_gpu == pytest.approx(100.45e9, rel=1e-3)
    assert no_zero.memory_parts["optimizer"] > 5 * r.memory_parts["optimizer"]


def test_deepseek_v3_selective_recompute_caches_what_v3r_says(v3):
    # V3R §3.2.3 / §3.3.3, per token per MoE-average layer with the FP8 recipe: two RMSNorm
    # inputs (BF16, 2·2h; the norms recomputed), MLA latents (1,536 + 512 + 64, BF16), the
    # output projection's input in E5M6 (128·128·1.5), 8 routed copies of the FP8 dispatch
    # input and SwiGLU inputs (7,168 + 2·2,048 elements, 1 + 4/128 bytes), the shared expert's
    # SwiGLU inputs, 256 FP32 router scores; 3 of 61 layers dense (SwiGLU 3·18,432 in BF16).
    model, _ = v3
    s = train_shape(model, seq_len=4096, recipe="fp8")
    attention = 2 * 2 * 7168 + 2 * (1536 + 512 + 64) + 1.5 * 128 * 128
    gin = 1 + 4 / 128
    moe = 8 * gin * (7168 + 2 * 2048) + gin * 2 * 2048 + 4 * 256
    dense = 2 * 2 * 18432
    per_layer = attention + (58 * moe + 3 * dense) / 61
    assert s.act_hsized["selective"] + s.act_sharded["selective"] == pytest.approx(per_layer)


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
    "korthikanti-22b-full": (1.35, -0.048), "korthikanti-22b-seqsel": (1.03, -0.067),
    "korthikanti-175b-full": (16.56, -0.086), "korthikanti-175b-seqsel": (12.32, -0.104),
    "korthikanti-530b-full": (45.7, -0.068), "korthikanti-530b-seqsel": (34.03, -0.1),
    "korthikanti-1t-full": (88.79, -0.06), "korthikanti-1t-seqsel": (66.86, -0.065),
    "narayanan-175b-384": (70.69, -0.079), "narayanan-175b-768": (36.72, -0.068),
    "narayanan-175b-1536": (19.74, -0.052), "narayanan-530b-560": (190.77, -0.075),
    "narayanan-530b-1120": (98.62, -0.066), "narayanan-530b-2240": (52.54, -0.052),
    "deepseek-v3-pretrain": (17.31, -0.131),
}


def test_validation_table_is_pinned_and_in_the_docs():
    from planner.studies.train_validation import validate_training

    rows = validate_training()
    assert {r.id: (round(r.step_time_s, 2), round(r.error_frac, 3)) for r in rows} == VALIDATION
    errors = [abs(r.error_frac) for r in rows]
    korthikanti = [abs(r.error_frac) for r in rows if r.id.startswith("korthikanti")]
    narayanan = [abs(r.error_frac) for r in rows if r.id.startswith("narayanan")]
    # Issue 24 asks median <= 10% and none beyond 25%: both met (15 runs: median 6.8%;
    # 10.4% before round three counted Megatron-LM 2021's unfused gradient accumulation);
    # the largest, DeepSeek-V3 -13.1% (-15.6% with round six's wgrad rates alone, -16.5%
    # before them, -16.3% after round four's review, -16.7% at round four, -24.1% before),
    # is inside its own 15% from round six.
    # Korthikanti 2022's eight: median 6.8%, largest 10.4%; Narayanan 2021's six: median 6.7%,
    # largest 7.9% (was 13.2% / 14.5%); all still fast.
    assert round(statistics.median(errors), 3) == 0.068 and round(max(errors), 3) == 0.131
    assert round(statistics.median(korthikanti), 3) == 0.068 and max(korthikanti) <= 0.25
    assert round(statistics.median(narayanan), 3) == 0.067 and max(narayanan) <= 0.25
    docs = (REPO / "docs/training.md").read_text()
    for r in rows:
        line = next(x for x in docs.splitlines() if x.startswith(f"| {r.id} "))
        assert f"{r.step_time_s:.2f}" in line and f"{r.error_frac * 100:+.1f}%" in line


def test_each_run_states_its_data_parallel_overlap_and_it_is_used(tmp_path):
    # validation/training.yaml states per run whether its framework overlapped the gradient
    # reduction (Megatron-LM 2021-2022: after the backward; DualPipe: with it); the field
    # reaches the step model: overlapping a Megatron run's all-reduce shortens its step.
    import yaml

    from planner.studies.train_validation import validate_training

    src = REPO / "validation/training.yaml"
    data = yaml.safe_load(src.read_text())
    stated = {r["id"]: r["dp_overlap"] for r in data["runs"]}
    assert stated == {r["id"]: r["id"].startswith("deepseek") for r in data["runs"]}
    # gradient accumulation fused into the wgrad GEMMs: not in Megatron-LM 2021
    assert {r["id"]: r["grad_accumulation_fused"] for r in data["runs"]} == {
        r["id"]: not r["id"].startswith("narayanan") for r in data["runs"]}
    base = {r.id: r.step_time_s for r in validate_training()}
    for r in data["runs"]:
        r["dp_overlap"] = True
    (tmp_path / "training.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "training-specs").symlink_to(REPO / "validation/training-specs")
    hidden = {r.id: r.step_time_s for r in validate_training(tmp_path / "training.yaml")}
    assert hidden["narayanan-175b-384"] < base["narayanan-175b-384"] - 0.1
    assert hidden["deepseek-v3-pretrain"] == base["deepseek-v3-pretrain"]


def test_unfused_gradient_accumulation_adds_a_pass_per_parameter_and_micro_batch():
    # Megatron-LM before 2022-02-13 (gradient accumulation fusion) adds each micro-batch's
    # weight gradients to the accumulator in a kernel of its own: read the gradient (2 bytes),
    # read and write the FP32 accumulator (4 + 4), over the last stage's parameters (its
    # layers and the head), every micro-batch. Narayanan 2021's runs state it.
    from planner.calc.train.memory import _device_params
    from planner.calc.train.rates import train_rates

    m = catalog.load_model(str(REPO / "validation/training-specs/gpt-175b.yaml"))
    hw = catalog.load_hardware("a100")
    grid = grid_of(tp=8, pp=12, dp=4, cp=1, ep=1, vpp=1, micro_batch=1, zero=0,
                   recompute="full", schedule="1f1b")
    kw = dict(gpus=384, global_batch=1536, seq_len=2048, sequence_parallel=False,
              flash_attention=False, dropout=True, dp_overlap=False)
    fused = evaluate_layouts(m, hw, grid, **kw)
    unfused = evaluate_layouts(m, hw, grid, **kw, grad_accumulation_fused=False)
    s = train_shape(m, seq_len=2048, dropout=True)
    dense, experts = _device_params(s, tp=8, pp=12, ep=1, schedule=0)
    hbm = train_rates(hw, gemm_dtype="bf16").hbm
    added = 384 * float(dense + experts) * (2 + 4 + 4) / hbm      # m = 1536 / 4
    assert float(unfused.step_parts["elementwise"] - fused.step_parts["elementwise"]) == \
        pytest.approx(added)
    assert float(unfused.step_time_s - fused.step_time_s) > added      # and the bubble grows
    assert float(dense) == pytest.approx((8 * s.layer_params + s.head_params) / 8)


def test_cli_layout_json_keys_and_search():
    recs = cli_json("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                    "--pp", "16", "--ep", "64", "--global-batch", "15360", "--zero", "1",
                    "--schedule", "dualpipe", "--fp8")
    first = recs[0]
    for key in ("memory_bytes_per_gpu", "step_time_s", "tokens_per_s_per_gpu", "mfu_frac",
                "train_gpu_hours"):
        assert key in first
    assert first["train_gpu_hours"] == pytest.approx(156_500, rel=1e-3)
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
    # H100 has measured GEMM tables: the rate is the bf16 table at M = b·s = 4,096, named so;
    # H800 has DeepGEMM scalars: matmul_flops.
    assert out.exit_code == 0 and "efficiency.gemm.bf16 table at M = 4,096" in out.stdout
    h800 = cli_run("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                   "--pp", "16", "--ep", "64", "--global-batch", "15360", "--fp8", "--explain")
    assert h800.exit_code == 0 and "efficiency.matmul_flops (fp8)" in h800.stdout
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
    # Each device kind (the one holding the ends, a middle one) on its own, and the busiest
    # device's total: under DualPipe the busiest can change from an end device (more states)
    # to a middle one (more activation blocks) as recompute or ZeRO changes, so its part
    # alone is not the quantity the property is about.
    hw = catalog.load_hardware("h800")
    runs = [_eval(lay, hw, recompute=r) for r in (0, 1, 2)]
    zeros = [_eval(lay, hw, zero=z) for z in (0, 1, 2, 3)]
    for kind in ("end", "middle"):
        acts = [float(e.device_memory_parts[kind]["activations"]) for e in runs]
        assert acts[0] >= acts[1] >= acts[2]
        opt = [float(e.device_memory_parts[kind]["optimizer"]) for e in zeros]
        assert all(a >= b for a, b in zip(opt, opt[1:]))
    for seq in (runs, zeros):
        totals = [float(e.memory_bytes_per_gpu) for e in seq]
        assert all(a >= b for a, b in zip(totals, totals[1:]))


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


def test_a100_gemms_run_at_the_table_read_at_the_micro_batchs_tokens():
    # hardware/a100.yaml gemm.bf16: 0.8574 at M = 1,024, 0.8442 at 4,096; M = 2,048 halfway
    # in log M; a spec without tables keeps its scalar matmul_flops (H800: 0.526).
    from planner.calc.train.rates import train_rates

    a100, h800 = catalog.load_hardware("a100"), catalog.load_hardware("h800")
    r = train_rates(a100, gemm_dtype="bf16", rows=np.array([2048.0, 8192.0]))
    halfway = np.exp((np.log(0.8574) + np.log(0.8442)) / 2)
    assert r.gemm == pytest.approx(312e12 * np.array([halfway, 0.8442]), rel=1e-4)
    assert train_rates(h800, gemm_dtype="fp8", rows=4096.0).gemm == pytest.approx(1979e12 * 0.526)


def test_unfused_attention_traffic_pipeline_link_and_optimizer_are_counted():
    # GPT-3 175B on A100, t = 8, b = 1, s = 2,048, no fused attention, dropout (Megatron 2022).
    from planner.calc.train import step
    from planner.calc.train.rates import train_rates

    m = catalog.load_model(str(REPO / "validation/training-specs/gpt-175b.yaml"))
    hw = catalog.load_hardware("a100")
    s = train_shape(m, seq_len=2048, dropout=True)
    rates = train_rates(hw, gemm_dtype="bf16", rows=2048.0)
    elements = 2048 * 96 / 8 * 2048 * 12                  # b·s·(a/t)·s, 12 layers
    fwd, bwd = step._unfused_attention_s(s, rates, tokens=2048.0, tp=8, layers_dev=12.0,
                                         seq_len=2048, scores=0.0)
    # the output permute's copy (read + write h/t per token), backward that copy and the QKV
    # split's gradient concatenation (3h/t)
    copies = 2048 / 8 * 12 * 2 * 2 * m.hidden_size / rates.hbm
    # GEMM I/O, softmax, dropout
    assert fwd == pytest.approx((4 + 4 + 5) * elements / rates.hbm + copies)
    assert bwd == pytest.approx((8 + 6 + 5) * elements / rates.hbm + 4 * copies)
    # t·c·d = 8 fills a DGX node: stage neighbours talk over InfiniBand, 1/t of b·s·h each.
    e = evaluate_layouts(m, hw, grid_of(tp=8, pp=8, dp=1, cp=1, ep=1, vpp=3, micro_batch=1,
                                        zero=0, recompute="selective", schedule="interleaved"),
                         gpus=64, global_batch=64, seq_len=2048, flash_attention=False,
                         dropout=True)
    p2p = 2048 * 12288 * 2 / 8 / rates.scale_out
    assert float(e.step_parts["pp_comm"]) == pytest.approx(2 * (64 + 7) * 3 * p2p)
    # Optimizer: Adam 2·(4 + 8) + 4, copy to the working weight 4 + 2, gradient norm and
    # zeroing 2·4 bytes per parameter held, at HBM speed.
    from planner.calc.train.memory import _device_params

    dense, _ = _device_params(s, tp=8, pp=8, ep=1, schedule=1)
    assert float(e.step_parts["optimizer"]) == pytest.approx(float(dense) * 42 / rates.hbm)


def test_megatron_iteration_flops_turn_narayanans_tflops_into_a_step():
    # Narayanan et al. 2021 eq. 3; Table 2's 175B PTD-P row: 153 TFLOP/s on 384 GPUs.
    from planner.calc.train.layout import megatron_iteration_flops
    from planner.studies.train_validation import validate_training

    f = megatron_iteration_flops(num_layers=96, hidden_size=12288, vocab_size=51200,
                                 global_batch=1536, seq_len=2048)
    by_hand = 96 * 1536 * 2048 * 96 * 12288**2 * (1 + 2048 / (6 * 12288)
                                                   + 51200 / (16 * 96 * 12288))
    assert f == pytest.approx(by_hand) and f == pytest.approx(4.51e18, rel=1e-3)
    row = next(r for r in validate_training() if r.id == "narayanan-175b-384")
    assert row.measured_step_time_s == pytest.approx(f / (153e12 * 384))
