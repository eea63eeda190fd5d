"""The one memory model (issue 18): capacities in GiB with the engine's usable total, the FP8 MLA
cache in FlashMLA's layout, MTP module weights, prefill's KV, the smallest TP that fits."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.calc import memory
from planner.calc.serving import serve
from planner.specs.deployment import ServeConfig


@pytest.fixture(scope="module")
def v3():
    return catalog.load_model("deepseek-v3")


def test_capacities_are_binary_and_the_engine_uses_the_driver_total():
    h100, h200 = catalog.load_hardware("h100"), catalog.load_hardware("h200")
    assert h100.gpu.hbm_capacity_bytes == 80 * 2**30
    assert h200.gpu.hbm_capacity_bytes == 141 * 2**30
    assert h200.gpu.hbm_usable_bytes == 143_771 * 2**20 < h200.gpu.hbm_capacity_bytes
    tpu = catalog.load_hardware("tpu-v5p")
    assert tpu.gpu.hbm_capacity_bytes == 95 * 2**30 == tpu.gpu.hbm_usable_bytes
    for name in catalog.names("hardware"):
        hw = catalog.load_hardware(name)
        assert hw.gpu.hbm_capacity_gib is not None, name   # every built-in datasheet is binary


def test_v3_fp8_on_8_h200_largest_batch_per_tp_group(v3):
    """The issue's figure: 147 on 141e9 B; on 143,771 MiB usable, ~178 per TP group with every
    attention weight split by TP, 175 with MLA's down-projections held whole (as engines do)."""
    h200 = catalog.load_hardware("h200")
    m = memory.memory_per_gpu(v3, h200, ep=8, tp=8, context_tokens=4096)
    free = 143_771 * 2**20 * 0.9 - m.weight_bytes_per_gpu
    assert m.max_batch_per_tp_group == int(free // (4096 * 70_272)) == 175
    assert m.capacity_bytes_per_gpu == h200.gpu.hbm_usable_bytes


def test_fp8_mla_kv_is_656_bytes_per_token_per_layer(v3):
    # FlashMLA README: 512 x FP8 + 4 x FP32 scales + 64 x BF16 = 512 + 16 + 128.
    assert memory.mla_fp8_kv_bytes_per_token_per_layer(kv_lora_rank=512,
                                                       qk_rope_head_dim=64) == 656
    assert memory.kv_bytes_per_token_per_gpu(v3, kv_dtype="fp8", tp=8) == 61 * 656
    assert memory.kv_bytes_per_token_per_gpu(v3, kv_dtype="bf16") == 61 * 576 * 2
    llama = catalog.load_model("llama-3.1-405b")   # GQA FP8: elements x 1 B, no layout change
    assert memory.kv_bytes_per_token_per_gpu(llama, kv_dtype="fp8", tp=8) == 516_096 / 2 / 8


def test_mtp_module_weights_by_hand(v3):
    p = memory.mtp_module_params(v3).as_dict()
    # One MoE block: attention 187,105,280 + projection 2 x 7,168^2; 256 experts x 3 x 7,168 x
    # 2,048; one shared expert; router 256 x 7,168; norms: the layer's 2 x 7,168 + 512 + 1,536
    # and the two of the MTP module.
    assert p["attention"] == 187_105_280 + 2 * 7168 * 7168
    assert p["routed_experts"] == 256 * 3 * 7168 * 2048
    assert p["shared_experts"] == 3 * 7168 * 2048 and p["router"] == 256 * 7168
    assert p["norms_biases"] == 2 * 7168 + 512 + 1536 + 2 * 7168
    without = memory.weight_bytes_per_gpu_by_part(v3, ep=8, tp=1)
    with_mtp = memory.weight_bytes_per_gpu_by_part(v3, ep=8, tp=1, mtp_modules=1)
    fp8 = 1 + 4 / 16384
    by_hand = ((p["attention"] + p["shared_experts"]) * fp8 + p["routed_experts"] * fp8 / 8
               + (p["router"] + p["norms_biases"]) * 2)
    assert with_mtp.total - without.total == pytest.approx(by_hand)
    assert with_mtp.as_dict()["mtp_modules"] == pytest.approx(1.747e9, rel=1e-3)


def test_serve_holds_mtp_weights_only_when_drafting(v3):
    h800 = catalog.load_hardware("h800")
    plain = serve(v3, h800, ServeConfig(gpus=320, batch_per_gpu=32))
    mtp = serve(v3, h800, ServeConfig(gpus=320, batch_per_gpu=32, mtp_acceptance=0.8))
    assert "mtp_modules" not in plain.memory.weights.as_dict()
    assert mtp.memory.weights.as_dict()["mtp_modules"] > 0
    assert mtp.memory.weight_bytes_per_gpu > plain.memory.weight_bytes_per_gpu


def test_prefill_holds_the_kv_of_its_whole_batch(v3):
    h800 = catalog.load_hardware("h800")
    # 16,384 prompt tokens per GPU in 4,096-token prompts: 4 prompts' KV per GPU at TP 1.
    r = serve(v3, h800, ServeConfig(phase="prefill", gpus=32, batch_per_gpu=16384,
                                    context_tokens=4096))
    assert r.memory.kv_cache_bytes_per_gpu == 16384 * 70_272
    big = serve(v3, h800, ServeConfig(phase="prefill", gpus=32, batch_per_gpu=65536,
                                      context_tokens=4096))
    assert big.memory.kv_cache_bytes_per_gpu == 4 * r.memory.kv_cache_bytes_per_gpu
    # A chunk shorter than its prompt still holds the one prompt (per TP group).
    assert memory.prefill_sequences_per_gpu(tokens_per_gpu=256, prompt_tokens=4096,
                                            tp=8) == 1 / 8


def test_tp_candidates_and_the_default_tp():
    assert memory.tp_candidates(gpus=8, domain_gpus=8) == (1, 2, 4, 8)
    assert memory.tp_candidates(gpus=12, domain_gpus=8) == (1, 2, 4)
    assert memory.tp_candidates(gpus=1, domain_gpus=1) == (1,)
    llama = catalog.load_model("llama-3.1-70b")
    h100 = catalog.load_hardware("h100")
    r = serve(llama, h100, ServeConfig(tp=None, batch_per_gpu=32))
    assert (r.tp, r.tp_chosen, r.memory.fits) == (4, True, True)
    smaller = serve(llama, h100, ServeConfig(tp=2, batch_per_gpu=32))
    assert not smaller.memory.fits
    # The API's default stays TP 1 (data-parallel attention), as scenarios and measured runs
    # write it; None asks for the smallest that fits.
    assert serve(llama, h100, ServeConfig(batch_per_gpu=32)).tp == 1


def test_stored_and_parameter_weight_bytes_are_named_apart(v3):
    assert memory.weight_bytes(num_params=671_026_404_352, bytes_per_param=1) == 671_026_404_352
    assert memory.stored_weight_bytes(v3) == pytest.approx(673.1505e9, rel=1e-6)


def test_max_context_tokens_none_when_the_weights_do_not_fit(v3):
    h800 = catalog.load_hardware("h800")
    assert memory.max_context_tokens(v3, h800, ep=8, tp=8) is None
    assert memory.max_context_tokens(v3, h800, ep=16, tp=1) > 0
