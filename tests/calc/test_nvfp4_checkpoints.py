"""NVIDIA's NVFP4 checkpoints of GLM-5 and Kimi-K2.5 (the ones the GB200 runs serve) quantize the
FFN only: every layer's attention stays in BF16 (issue 22, round 13; sources in the model
files: nvidia/GLM-5-NVFP4 hf_quant_config.json exclude_modules, nvidia/Kimi-K2.5-NVFP4
config.json quantization_config.ignore)."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.calc.memory import weight_bytes_per_gpu_by_part
from planner.calc.params import model_params
from planner.calc.serving.workload_step import model_figures

NVFP4_BYTES_PER_PARAM = 0.5625    # 4 bits + one E4M3 scale per 16


@pytest.mark.parametrize("name", ["glm-5", "kimi-k2.5"])
def test_attention_stays_bf16_under_nvfp4_and_the_ffn_does_not(name):
    model = catalog.load_model(name)
    assert model.part_weight_dtype("attention", "nvfp4") == "bf16"
    for part in ("dense_ffn", "shared_experts", "routed_experts"):
        assert model.part_weight_dtype(part, "nvfp4") == "nvfp4"
    assert model.part_weight_dtype("attention", "fp8") == "fp8"   # the FP8 checkpoints: all FP8
    stored = weight_bytes_per_gpu_by_part(model, weights_dtype="nvfp4").as_dict()
    total = model_params(model).total.as_dict()
    assert stored["attention"] == 2 * total["attention"]
    assert stored["routed_experts"] == pytest.approx(
        NVFP4_BYTES_PER_PARAM * total["routed_experts"])
    fig = model_figures(model, weights_dtype="nvfp4", moe_weights_dtype="nvfp4", kv_dtype="fp8")
    assert fig.bf16_parts == ("attention",)


def test_glm5_attention_weights_at_bf16():
    """GLM-5's 78 attention layers (MLA + the DSA indexer): 13.60e9 parameters, 27.21 GB at BF16
    where NVFP4 would hold 7.65 GB."""
    model = catalog.load_model("glm-5")
    stored = weight_bytes_per_gpu_by_part(model, weights_dtype="nvfp4").as_dict()
    assert stored["attention"] == pytest.approx(27.21e9, rel=1e-3)


def test_the_nvfp4_checkpoint_ids_resolve_to_the_models():
    assert catalog.model_of_hf_id("nvidia/GLM-5-NVFP4") == "glm-5"
    assert catalog.model_of_hf_id("nvidia/Kimi-K2.5-NVFP4") == "kimi-k2.5"
