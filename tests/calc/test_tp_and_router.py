"""Issue 18 item 7: the router GEMM is in the step; MLA's down-projections are held whole and
run on all of a TP group's tokens (engines' ReplicatedLinear); only the per-head activation
traffic splits by TP; EP beyond the expert count holds whole experts. Hand-worked figures."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.calc import memory, serving
from planner.calc.params import attention_replicated_params_per_layer
from planner.calc.serving.blocks import activation_bytes_per_token_per_layer
from planner.specs.deployment import ServeConfig
from tests_support import REPO

REPO_MODELS = REPO / "models"


@pytest.fixture(scope="module")
def v3():
    return catalog.load_model("deepseek-v3")


def test_mla_down_projections_are_held_whole_under_tp(v3):
    # 7,168 x 1,536 (q_a) + 7,168 x (512 + 64) (kv_a) = 15,138,816 per layer.
    assert attention_replicated_params_per_layer(v3) == 15_138_816
    assert attention_replicated_params_per_layer(catalog.load_model("qwen2.5-72b")) == 0
    fp8 = 1 + 4 / (128 * 128)
    tp1 = memory.weight_bytes_per_gpu_by_part(v3, ep=8, tp=1)["attention"]
    tp8 = memory.weight_bytes_per_gpu_by_part(v3, ep=8, tp=8)["attention"]
    replicated = 61 * 15_138_816 * fp8
    # TP 8 holds the replicated part whole and 1/8 of the rest.
    assert tp8 == pytest.approx(replicated + (tp1 - replicated) / 8)


def test_the_router_runs_on_every_row_of_the_group_in_bf16(v3):
    h800 = catalog.load_hardware("h800")
    for tp in (1, 8):
        r = serving.serve(v3, h800, ServeConfig(gpus=64, ep=64, tp=tp, batch_per_gpu=16,
                                                overlap="none", bound=True))
        router = {p.name: p for p in r.parts}["router"]
        # 58 MoE layers x 2 x (256 experts x 7,168) x (16 rows x TP padded to 64-row tiles
        # under TP: bound has no tiles) = 58 x 2 x 1,835,008 x 16 x TP FLOPs.
        assert router.flops == pytest.approx(58 * 2 * 1_835_008 * 16 * tp)
        # Its BF16 weights, 256 x 7,168 x 2 B per layer, read once per layer.
        assert router.bytes_moved == pytest.approx(58 * 256 * 7168 * 2)


def test_only_the_per_head_activation_traffic_splits_by_tp(v3):
    # MLA attention block per token of the group: norm 3d + latents 3 x (1,536 + 512 + 64) +
    # residual 6d replicated; RoPE 4 x 128 x 64 and the output 3 x 128 x 128 split by TP.
    d = 7168
    replicated = 3 * d + 3 * (1536 + 512 + 64) + 6 * d
    per_head = 4 * 128 * 64 + 3 * 128 * 128
    for tp in (1, 2, 8):
        assert activation_bytes_per_token_per_layer(v3, block="attention", tp=tp) == (
            replicated + per_head / tp)
    # Dense FFN: the SiLU·mul of the intermediate (5 x 18,432) splits; norm and residual do not.
    for tp in (1, 8):
        assert activation_bytes_per_token_per_layer(v3, block="dense_ffn", tp=tp) == (
            3 * d + 5 * 18_432 / tp + 6 * d)


def test_ep_beyond_the_experts_holds_one_whole_expert_per_gpu(v3):
    per_expert = memory.weight_bytes_per_gpu_by_part(v3, ep=256)["routed_experts"]
    # EP 320 over 256 experts: one whole expert per GPU (some replicated), not 256/320 of one.
    assert memory.weight_bytes_per_gpu_by_part(v3, ep=320)["routed_experts"] == per_expert
    # EP 96: 256 / 96 = 2.67 experts, so the fullest GPU holds 3.
    assert memory.weight_bytes_per_gpu_by_part(v3, ep=96)["routed_experts"] == pytest.approx(
        3 * per_expert)


def test_a_checkpoint_keeps_parts_at_their_own_format():
    """gpt-oss's MXFP4 checkpoint quantizes the experts only: at FP4 its attention is stored
    and computed in BF16; at FP8 (a user's own quantization) every matrix is FP8."""
    from planner.calc.params import model_params

    oss = catalog.load_model("gpt-oss-120b")
    attention = model_params(oss).total["attention"]
    fp4 = memory.weight_bytes_per_gpu_by_part(oss, weights_dtype="fp4")
    fp8 = memory.weight_bytes_per_gpu_by_part(oss, weights_dtype="fp8")
    assert fp4["attention"] == attention * 2                       # BF16, no scales
    assert fp8["attention"] == pytest.approx(attention * (1 + 4 / (128 * 128)))
    routed = model_params(oss).total["routed_experts"]
    assert fp4["routed_experts"] == pytest.approx(routed * (0.5 + 1 / 32))   # MXFP4 + scales
    h100 = catalog.load_hardware("h100")
    step = serving.serve(oss, h100, ServeConfig(gpus=1, weights_dtype="fp4", batch_per_gpu=8))
    projections = {p.name: p for p in step.parts}["attention projections"]
    assert projections.bytes_moved == pytest.approx(attention * 2)


def test_the_measured_runs_nvfp4_label_keeps_gpt_oss_attention_in_bf16():
    """The measured gpt-oss rows (model_path openai/gpt-oss-120b) label the MXFP4 checkpoint
    nvfp4; its config.json keeps self_attn out of the quantization, so attention is BF16 at
    that label too: its bytes are 2 per parameter and the serving pass reads them so."""
    from planner.calc.params import model_params

    oss = catalog.load_model("gpt-oss-120b")
    assert oss.part_weight_dtype("attention", "nvfp4") == "bf16"
    assert oss.part_weight_dtype("routed_experts", "nvfp4") == "nvfp4"
    attention = model_params(oss).total["attention"]
    nvfp4 = memory.weight_bytes_per_gpu_by_part(oss, weights_dtype="nvfp4")
    assert nvfp4["attention"] == attention * 2
    b200 = catalog.load_hardware("b200")
    step = serving.serve(oss, b200, ServeConfig(gpus=1, weights_dtype="nvfp4", batch_per_gpu=8))
    projections = {p.name: p for p in step.parts}["attention projections"]
    assert projections.bytes_moved == pytest.approx(attention * 2)


def test_part_weight_dtypes_are_checked(tmp_path):
    from planner.errors import SpecError
    from planner.specs.load import load_model_file

    text = (REPO_MODELS / "gpt-oss-120b.yaml").read_text()
    bad = tmp_path / "m.yaml"
    bad.write_text(text.replace("fp4: {attention: bf16}", "fp4: {attention: int3}"))
    with pytest.raises(SpecError, match=r"part_weight_dtypes.fp4.attention: 'int3'"):
        load_model_file(bad)
    bad.write_text(text.replace("fp4: {attention: bf16}", "fp4: {head: bf16}"))
    with pytest.raises(SpecError, match=r"unknown part\(s\) head"):
        load_model_file(bad)
