"""Tiny hand-worked checks of each calculator; the arithmetic is in the comments."""

from __future__ import annotations

import pytest

from planner import units
from planner.calc import ep, flops, kv_cache, params
from planner.specs.model import DenseFFN, HeadAttention, MLAttention, Model, MoEFFN


def tiny(attention, ffn=None, layers=2, hidden=8, vocab=10) -> Model:
    return Model(source="test", num_layers=layers, hidden_size=hidden, vocab_size=vocab,
                 attention=attention, ffn=ffn or DenseFFN(kind="dense", intermediate_size=16),
                 name="tiny")


def test_units():
    assert units.gbit_per_s_to_bytes_per_s(400) == 50e9       # 400 / 8 = 50 GB/s
    assert units.gb_per_s_to_bytes_per_s(50) == 50e9
    assert units.tb_per_s_to_bytes_per_s(3.35) == 3.35e12
    assert units.tflop_per_s_to_flop_per_s(989) == 989e12
    assert units.dtype_bytes("fp8") == 1 and units.dtype_bytes("fp4") == 0.5


def test_gqa_kv_cache_tiny():
    # 2 layers × (2 tensors × 2 KV heads × 4 dims) × 2 bytes = 2 × 16 × 2 = 64 bytes per token
    m = tiny(HeadAttention(kind="gqa", num_heads=4, num_kv_heads=2, head_dim=4))
    r = kv_cache.model_kv_cache(m, dtype="bf16", context_tokens=10, batch=3)
    assert r.elements_per_token_per_layer == 16
    assert r.kv_cache_bytes_per_token == 64
    assert r.kv_cache_bytes == 64 * 10 * 3


def test_mla_kv_cache_tiny():
    # BF16: 2 layers × (d_c 6 + d_R 2) × 2 bytes = 32 bytes per token. FP8 in FlashMLA's layout:
    # 2 layers × (6 × 1 + ⌈6 / 128⌉ = 1 FP32 scale × 4 + 2 × 2 BF16 RoPE) = 2 × 14 = 28.
    m = tiny(MLAttention(kind="mla", num_heads=2, kv_lora_rank=6, qk_nope_head_dim=4,
                         qk_rope_head_dim=2, v_head_dim=4))
    assert kv_cache.model_kv_cache(m, dtype="bf16").kv_cache_bytes_per_token == 32
    assert kv_cache.model_kv_cache(m, dtype="fp8").kv_cache_bytes_per_token == 28


def test_mha_and_mqa_imply_kv_heads():
    assert HeadAttention(kind="mha", num_heads=4, head_dim=2).num_kv_heads == 4
    assert HeadAttention(kind="mqa", num_heads=4, head_dim=2).num_kv_heads == 1
    with pytest.raises(ValueError, match="num_kv_heads = 1"):
        HeadAttention(kind="mqa", num_heads=4, head_dim=2, num_kv_heads=2)


def test_head_attention_params_tiny():
    # Q, O: 2 × 8 × 4 × 2 = 128; K, V: 2 × 8 × 2 × 2 = 64 -> 192
    assert params.head_attention_params_per_layer(hidden_size=8, num_heads=4, num_kv_heads=2,
                                                  head_dim=2) == 192


def test_mla_params_tiny():
    # d 8, q_lora 4, n_h 2, nope 3, rope 1, kv_lora 5, v 2:
    # 8·4 + 4·2·4 + 8·(5+1) + 5·2·(3+2) + 2·2·8 = 32 + 32 + 48 + 50 + 32 = 194
    assert params.mla_params_per_layer(hidden_size=8, num_heads=2, q_lora_rank=4, kv_lora_rank=5,
                                       qk_nope_head_dim=3, qk_rope_head_dim=1,
                                       v_head_dim=2) == 194
    # no query compression: 8·2·4 = 64 replaces 32 + 32
    assert params.mla_params_per_layer(hidden_size=8, num_heads=2, q_lora_rank=None,
                                       kv_lora_rank=5, qk_nope_head_dim=3, qk_rope_head_dim=1,
                                       v_head_dim=2) == 194
    # The two cases above agree by coincidence (8·4 + 4·2·4 = 8·2·4 = 64): a rank that breaks
    # the tie needs the q_lora_rank branch. q_lora 3: 8·3 + 3·2·4 = 48 replaces 64, so 178;
    # q_lora 1: 8 + 8 = 16, so 146.
    for q_lora, want in ((3, 178), (1, 146)):
        assert params.mla_params_per_layer(hidden_size=8, num_heads=2, q_lora_rank=q_lora,
                                           kv_lora_rank=5, qk_nope_head_dim=3,
                                           qk_rope_head_dim=1, v_head_dim=2) == want


def test_moe_params_tiny():
    # 3 layers, first 1 dense (I 16), then MoE: 4 routed (top-2) + 1 shared, expert I 4, d 8.
    moe = MoEFFN(kind="moe", num_routed_experts=4, num_experts_per_token=2,
                 expert_intermediate_size=4, num_shared_experts=1, num_dense_layers=1,
                 dense_intermediate_size=16)
    m = tiny(HeadAttention(kind="mha", num_heads=2, head_dim=4), ffn=moe, layers=3)
    p = params.model_params(m)
    expert = 3 * 8 * 4                      # 96
    assert p.total["dense_ffn"] == 3 * 8 * 16               # 384
    assert p.total["routed_experts"] == 2 * 4 * expert      # 768
    assert p.activated["routed_experts"] == 2 * 2 * expert  # 384
    assert p.total["shared_experts"] == 2 * 1 * expert      # 192
    assert p.total["router"] == 2 * 4 * 8                   # 64
    assert p.total["embedding"] == p.total["output_head"] == 10 * 8
    assert p.params_total == sum(v for _, v in p.total.items)


def test_tied_embeddings_have_no_separate_head():
    m = Model(source="t", num_layers=1, hidden_size=8, vocab_size=10, tie_word_embeddings=True,
              attention=HeadAttention(kind="mha", num_heads=2, head_dim=4),
              ffn=DenseFFN(kind="dense", intermediate_size=16))
    assert params.model_params(m).total["output_head"] == 0


def test_flops_tiny():
    # MHA 2 heads × 4 dims, d 8, 2 layers, dense I 16 gated, vocab 10, s = 6.
    m = tiny(HeadAttention(kind="mha", num_heads=2, head_dim=4))
    p = params.model_params(m)
    # matmul params: attention 2 × (2·8·8 + 2·8·8) = 512; FFN 2 × 3·8·16 = 768; head 80 -> 1360
    assert p.matmul_activated == 1360
    r = flops.model_flops_per_token(m, seq_len=6)
    # scores: 2 · L 2 · (s/2 = 3) · n_h 2 · (4 + 4) = 192; forward = 2 · 1360 + 192 = 2912
    assert r.forward_parts["attention_scores"] == 192
    assert r.forward_flops_per_token == 2912
    assert r.train_flops_per_token == 3 * 2912
    full = flops.model_flops_per_token(m, seq_len=6, convention="exact-full")
    assert full.forward_flops_per_token == 2 * 1360 + 384
    # approx: 2 · (12 · 2 · 64 + 10 · 8) = 2 · 1616 = 3232
    assert flops.model_flops_per_token(m, convention="approx-12ld2").forward_flops_per_token == 3232


def test_ep_formulas_tiny():
    # (1 + 2) bytes × 10 elements per token-expert × 4 tokens × 3 experts / 1000 B/s = 0.36 s
    t = ep.ep_comm_time_per_layer_s(dispatch_bytes_per_token_expert=10,
                                    combine_bytes_per_token_expert=20, tokens_per_device=4,
                                    experts_per_token=3, bandwidth_bytes_per_s=1000)
    assert t == pytest.approx(0.36)
    assert ep.time_per_layer_s(ep_comm_time_per_layer_s=t, num_micro_batches=2) == 0.72
    assert ep.ep_ceiling_tpot_s(time_per_layer_s=0.5, num_layers=4) == 2
    assert ep.ep_ceiling_tokens_per_s(ep_ceiling_tpot_s=0.5) == 2
    # 256 elements: 256 + 2 tiles × 4 + 16 = 280 bytes
    assert ep.fp8_dispatch_bytes_per_token_expert(hidden_size=256) == 280
    # 129 elements need 2 tiles: 129 + 8 + 16 = 153
    assert ep.fp8_dispatch_bytes_per_token_expert(hidden_size=129) == 153


def test_ep_link_choice(v3, h800):
    assert ep.ep_decode_limit(v3, h800, ep_size=8).link == "scale_up"
    assert ep.ep_decode_limit(v3, h800, ep_size=9).link == "scale_out"
    r = ep.ep_decode_limit(v3, h800, ep_size=8, achievable=True)
    assert r.bandwidth_bytes_per_s == pytest.approx(160e9)
    assert r.bandwidth_basis.startswith("achievable")


def test_ep_needs_moe_or_explicit_experts(h800):
    from planner.catalog import load_model
    from planner.errors import UsageError

    dense = load_model("llama-3.1-70b")
    with pytest.raises(UsageError, match="dense model"):
        ep.ep_decode_limit(dense, h800)
    r = ep.ep_decode_limit(dense, h800, experts_per_token=1, ep_size=8)
    assert r.experts_per_token == 1


def test_unknown_convention_and_dtype():
    from planner.errors import UsageError

    m = tiny(HeadAttention(kind="mha", num_heads=2, head_dim=4))
    with pytest.raises(UsageError, match="convention"):
        flops.model_flops_per_token(m, convention="nope")
    with pytest.raises(UsageError, match="dtype"):
        kv_cache.model_kv_cache(m, dtype="int3")


def test_hardware_base_units(h800):
    assert h800.scale_out.bandwidth_bytes_per_s == 50e9
    assert h800.scale_up.bandwidth_bytes_per_s == 200e9
    assert h800.gpu.hbm_capacity_bytes == 80 * 2**30          # "80 GB" HBM is 80 GiB
    assert h800.gpu.hbm_usable_bytes == 81_559 * 2**20        # what the driver leaves
    assert h800.gpu.hbm_bandwidth_bytes_per_s == 3.35e12
    assert h800.peak_dense_flop_per_s("bf16") == 989e12
    assert h800.efficiency_frac("scale_out_bandwidth").frac == 0.8
