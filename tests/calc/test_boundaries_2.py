"""Survivors of the mutation run on the merged tree (benchmarks/mutation.py, seed 0): each test
fails on the mutant it names. Hand-worked figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner.calc import kv_cache, memory, pipeline, routing, serving, training
from planner.calc.numerics import formats
from planner.catalog import load_hardware, load_model
from planner.errors import UsageError
from planner.specs.deployment import ServeConfig


@pytest.fixture(scope="module")
def v3():
    return load_model("deepseek-v3")


def test_decode_attention_reads_the_kv_of_its_whole_tp_group(v3):
    # TP 2, 16 sequences per GPU (32 per group), 4,096 tokens, BF16 MLA (1,152 B a token and
    # layer), no overlap, peak: 61 layers x 16 x 2 x 4,096 x 1,152 B (rows x TP, not / TP).
    r = serving.serve(v3, load_hardware("h800"), ServeConfig(
        gpus=8, ep=8, tp=2, batch_per_gpu=16, overlap="none", bound=True))
    core = {p.name: p for p in r.parts}["attention (core)"]
    assert core.bytes_moved == pytest.approx(61 * 16 * 2 * 4096 * 1152)


def test_ib_copies_without_forwarding_are_k_times_the_remote_share(v3):
    # EP 64 over 8 nodes, k = 8: 8 x 7/8 = 7 copies over the NIC per token.
    r = routing.node_limited_routing(v3, load_hardware("h800"), ep_size=64, num_nodes=8,
                                     tokens_per_gpu=4096)
    assert r.ib_copies_per_token_without_forwarding == pytest.approx(7.0)


def test_an_mfu_below_one_is_a_speed(v3):
    r = training.train_run(v3, load_hardware("h800"), tokens=1e12, num_gpus=2048, mfu=0.4)
    assert r.mfu_frac == pytest.approx(0.4)


def test_forwarded_traffic_scales_the_nvlink_leg_by_the_hottest_rank(v3):
    # The NVLink leg dominates (NIC at 1e30 B/s): dispatch = T x copies x load x b / B_up.
    h800 = load_hardware("h800")
    base = serving.ep_layer_comm_s(v3, h800, ep=32, tokens=100, copies=8, forwarding=True,
                                   up_bytes_per_s=1e9, out_bytes_per_s=1e30)
    hot = serving.ep_layer_comm_s(v3, h800, ep=32, tokens=100, copies=8, forwarding=True,
                                  up_bytes_per_s=1e9, out_bytes_per_s=1e30, rank_load=1.5)
    assert hot[0] == pytest.approx(1.5 * base[0]) and hot[1] == pytest.approx(1.5 * base[1])


def test_a_dense_models_mtp_module_has_one_layers_ffn():
    llama = load_model("llama-3.1-70b")
    from planner.calc.params import model_params

    dense = model_params(llama).total["dense_ffn"]
    assert memory.mtp_module_params(llama)["dense_ffn"] == pytest.approx(dense / 80)


def test_kv_cache_defaults_to_one_sequence_and_names_the_model(v3):
    r = kv_cache.model_kv_cache(v3, context_tokens=10)
    assert r.batch == 1 and r.kv_cache_bytes == 70_272 * 10
    named = dataclasses.replace(v3, name="short", display_name="A Long Display Name")
    assert kv_cache.model_kv_cache(named).model == "short"


def test_bf16_saturates_at_its_largest_finite_value():
    # BF16's largest finite: (2 - 2^-7) x 2^127 = 3.3895e38.
    largest = (2 - 2.0**-7) * 2.0**127
    assert formats.quantize_float(np.array([1e39]), formats.FLOAT_FORMATS["bf16"])[0] == largest


def test_wire_bytes_count_a_partial_tile_as_a_whole_group():
    # h = 7,000 over 128-wide tiles: 55 groups (54.7 rounded up), each with a 4-byte scale.
    assert formats.comm_bytes_per_token("e4m3", hidden_size=7000, tile=128) == 7000 + 55 * 4


def test_a_chunk_with_no_work_has_no_schedule():
    with pytest.raises(UsageError, match="F \\+ B must be > 0"):
        pipeline.pipeline_schedules(pp=4, f_s=0.0, b_s=0.0, w_s=0.0)


def test_kv_bytes_per_gpu_default_to_no_tensor_parallelism():
    # Llama-3.1-70B BF16: 80 layers x 2 x 8 KV heads x 128 x 2 B = 327,680 B on one GPU.
    llama = load_model("llama-3.1-70b")
    assert memory.kv_bytes_per_token_per_gpu(llama) == 327_680
    assert memory.kv_bytes_per_token_per_gpu(llama, tp=8) == 327_680 / 8


def test_the_error_study_defaults_to_plain_fp32_scales():
    from planner.calc.numerics.study import format_errors

    plain = format_errors(["e4m3"], rows=8)
    assert plain == format_errors(["e4m3"], rows=8, pow2_scale=False)
    assert plain != format_errors(["e4m3"], rows=8, pow2_scale=True)


def test_logfmt_rounds_a_value_below_the_clamped_minimum_up_from_half_of_it():
    # One tile: 1.0 and 0.75 x 2^-32; the minimum clamps to max / 2^32, so the small value,
    # above half of it, encodes as level 1 and decodes to 2^-32 (not to 0).
    x = np.zeros((1, 128))
    x[0, 0], x[0, 1] = 1.0, 0.75 * 2.0**-32
    y = formats.quantize_logfmt(x, bits=8, tile=128)
    assert y[0, 1] == pytest.approx(2.0**-32, rel=1e-9)
    x[0, 1] = 0.25 * 2.0**-32                       # below half of it: 0
    assert formats.quantize_logfmt(x, bits=8, tile=128)[0, 1] == 0


def test_training_zero_tokens_is_refused(v3):
    with pytest.raises(UsageError, match="must be > 0"):
        training.train_run(v3, load_hardware("h800"), tokens=0, num_gpus=8, mfu=0.4)


def test_padded_rows_for_small_means_agree_between_arrays_and_scalars():
    from planner.calc.serving.kernels import expected_padded_rows_per_expert

    means = np.array([0.01, 0.3, 0.7, 1.0])
    arrays = expected_padded_rows_per_expert(mean_rows=means, tile_rows=64)
    scalars = [expected_padded_rows_per_expert(mean_rows=float(m), tile_rows=64) for m in means]
    assert np.allclose(arrays, scalars, rtol=1e-12)
    # At a mean of 0.01 a tile is used with probability 1 - e^-0.01: 64 x 0.00995 = 0.6368.
    assert arrays[0] == pytest.approx(64 * (1 - np.exp(-0.01)), rel=1e-9)


def test_a_device_without_a_scale_up_domain_runs_at_achievable_rates():
    from planner.calc.serving.rates import serving_rates

    alone = dataclasses.replace(load_hardware("h800"), scale_up=None)
    rates = serving_rates(alone, phase="decode", weights_dtype="fp8")
    assert rates.scale_up == float("inf")
    assert rates.gemm == pytest.approx(load_hardware("h800").peak_dense_flop_per_s("fp8") * 0.526)


def test_decode_attention_core_flops_per_token_and_layer(v3):
    from planner.calc.serving.blocks import attention_core_flops_per_token_per_layer

    # Absorbed MLA: 2 x 128 heads x 4,096 positions x (512 + 64 + 512) = 1,140,850,688.
    assert attention_core_flops_per_token_per_layer(
        v3, context_tokens=4096, absorbed=True) == 2 * 128 * 4096 * 1088


def test_gqa_attention_core_flops_per_token_and_layer():
    from planner.calc.serving.blocks import attention_core_flops_per_token_per_layer

    # Qwen2.5-72B: 2 x 64 heads x 1,000 positions x (2 x 128) (QK^T and PV) = 32,768,000.
    qwen = load_model("qwen2.5-72b")
    assert attention_core_flops_per_token_per_layer(
        qwen, context_tokens=1000, absorbed=True) == 2 * 64 * 1000 * 2 * 128


def test_max_context_defaults_to_one_gpu_without_parallelism():
    qwen = load_model("qwen3-30b-a3b")
    h200 = load_hardware("h200")
    alone = memory.max_context_tokens(qwen, h200)
    assert alone == memory.max_context_tokens(qwen, h200, ep=1, tp=1)
    assert alone != memory.max_context_tokens(qwen, h200, ep=2)
    assert alone != memory.max_context_tokens(qwen, h200, tp=2)
