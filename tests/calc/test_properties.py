"""Property tests (hypothesis): monotonicity, scaling, equivalences, conservation, vectorization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.calc import ep, flops, kv_cache, params
from planner.specs.model import DenseFFN, HeadAttention, MLAttention, Model, MoEFFN

small = st.integers(min_value=1, max_value=256)
layers_st = st.integers(min_value=1, max_value=200)
pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def model_with(attention, layers=4, hidden=64, ffn=None):
    return Model(source="prop", num_layers=layers, hidden_size=hidden, vocab_size=100,
                 attention=attention, ffn=ffn or DenseFFN(kind="dense", intermediate_size=128))


@given(heads=small, head_dim=small, layers=layers_st)
def test_mha_equals_gqa_with_all_kv_heads(heads, head_dim, layers):
    mha = model_with(HeadAttention(kind="mha", num_heads=heads, head_dim=head_dim), layers)
    gqa = model_with(HeadAttention(kind="gqa", num_heads=heads, num_kv_heads=heads,
                                   head_dim=head_dim), layers)
    assert (kv_cache.model_kv_cache(mha).kv_cache_bytes_per_token
            == kv_cache.model_kv_cache(gqa).kv_cache_bytes_per_token)
    assert params.model_params(mha).total == params.model_params(gqa).total


@given(heads=small, head_dim=small, layers=layers_st)
def test_mqa_equals_gqa_with_one_kv_head(heads, head_dim, layers):
    mqa = model_with(HeadAttention(kind="mqa", num_heads=heads, head_dim=head_dim), layers)
    gqa = model_with(HeadAttention(kind="gqa", num_heads=heads, num_kv_heads=1,
                                   head_dim=head_dim), layers)
    assert (kv_cache.model_kv_cache(mqa).kv_cache_bytes_per_token
            == kv_cache.model_kv_cache(gqa).kv_cache_bytes_per_token)


@given(d_c=small, d_r=small, heads=small)
def test_mla_cache_equals_gqa_with_equivalent_groups(d_c, d_r, heads):
    """MLA caches one latent of d_c + d_R elements per token and layer, whatever the heads:
    the same as GQA with (d_c + d_R) / 2 KV heads of one element, and additive in its two
    parts. Hand-worked: DeepSeek-V3, 512 + 64 = 576 (P Table 1: 70,272 / 61 / 2 bytes)."""
    def mla(c, r):
        return kv_cache.mla_kv_elements_per_token_per_layer(kv_lora_rank=c, qk_rope_head_dim=r)

    assert mla(512, 64) == 576
    one = mla(d_c, d_r)
    # Twice the latent is always even: it equals GQA with `one` KV heads of one element each.
    assert mla(2 * d_c, 2 * d_r) == 2 * one == kv_cache.gqa_kv_elements_per_token_per_layer(
        num_kv_heads=one, head_dim=1)
    assert one == mla(d_c + d_r, 0) == mla(d_r, d_c)
    # ...and the heads never enter it.
    att = MLAttention(kind="mla", num_heads=heads, kv_lora_rank=d_c, qk_nope_head_dim=16,
                      qk_rope_head_dim=d_r, v_head_dim=16)
    att1 = MLAttention(kind="mla", num_heads=1, kv_lora_rank=d_c, qk_nope_head_dim=16,
                       qk_rope_head_dim=d_r, v_head_dim=16)
    assert (kv_cache.model_kv_cache(model_with(att)).kv_cache_bytes_per_token
            == kv_cache.model_kv_cache(model_with(att1)).kv_cache_bytes_per_token)


@given(layers=layers_st, k=st.integers(min_value=2, max_value=5))
def test_k_times_the_layers_k_times_the_kv_cache(layers, k):
    att = MLAttention(kind="mla", num_heads=8, kv_lora_rank=32, qk_nope_head_dim=16,
                      qk_rope_head_dim=8, v_head_dim=16)
    one = kv_cache.model_kv_cache(model_with(att, layers)).kv_cache_bytes_per_token
    many = kv_cache.model_kv_cache(model_with(att, layers * k)).kv_cache_bytes_per_token
    assert many == k * one


@given(kv=st.integers(1, 16), extra=st.integers(1, 16), d_h=small, layers=layers_st)
def test_more_kv_heads_never_shrink_the_cache(kv, extra, d_h, layers):
    a = kv_cache.gqa_kv_elements_per_token_per_layer(num_kv_heads=kv, head_dim=d_h)
    b = kv_cache.gqa_kv_elements_per_token_per_layer(num_kv_heads=kv + extra, head_dim=d_h)
    assert b > a


@given(s1=st.integers(1, 1 << 20), s2=st.integers(1, 1 << 20))
def test_longer_sequences_never_cost_fewer_flops(s1, s2):
    m = model_with(HeadAttention(kind="gqa", num_heads=8, num_kv_heads=2, head_dim=16))
    lo, hi = sorted((s1, s2))
    for conv in ("exact-causal", "exact-full"):
        assert (flops.model_flops_per_token(m, seq_len=lo, convention=conv).train_flops_per_token
                <= flops.model_flops_per_token(m, seq_len=hi, convention=conv)
                .train_flops_per_token)


@given(routed=st.integers(1, 64), data=st.data(), shared=st.integers(0, 4),
       dense_layers=st.integers(0, 3))
@settings(max_examples=60)
def test_parts_sum_to_totals_and_activated_never_exceeds_total(routed, data, shared,
                                                               dense_layers):
    k = data.draw(st.integers(1, routed))
    moe = MoEFFN(kind="moe", num_routed_experts=routed, num_experts_per_token=k,
                 expert_intermediate_size=32, num_shared_experts=shared,
                 num_dense_layers=dense_layers,
                 dense_intermediate_size=128 if dense_layers else None)
    m = model_with(HeadAttention(kind="mha", num_heads=4, head_dim=16), layers=4, ffn=moe)
    p = params.model_params(m)
    assert p.params_total == sum(v for _, v in p.total.items)
    assert p.params_activated == sum(v for _, v in p.activated.items)
    assert p.params_activated <= p.params_total
    f = flops.model_flops_per_token(m, seq_len=128)
    assert f.forward_flops_per_token == sum(v for _, v in f.forward_parts.items)
    assert f.train_flops_per_token == flops.FWD_BWD_FACTOR * f.forward_flops_per_token


@given(bw1=pos, bw2=pos, tokens=st.integers(1, 512), k=st.integers(1, 16))
def test_more_bandwidth_never_means_more_time(bw1, bw2, tokens, k):
    lo, hi = sorted((bw1, bw2))
    t = [ep.ep_comm_time_per_layer_s(dispatch_bytes_per_token_expert=7408,
                                     combine_bytes_per_token_expert=14336,
                                     tokens_per_device=tokens, experts_per_token=k,
                                     bandwidth_bytes_per_s=b) for b in (lo, hi)]
    assert t[1] <= t[0]


@given(t=pos, layers=layers_st, m=st.integers(1, 4))
def test_tokens_per_s_is_the_inverse_of_tpot(t, layers, m):
    layer = ep.time_per_layer_s(ep_comm_time_per_layer_s=t, num_micro_batches=m)
    tpot = ep.ep_ceiling_tpot_s(time_per_layer_s=layer, num_layers=layers)
    assert abs(ep.ep_ceiling_tokens_per_s(ep_ceiling_tpot_s=tpot) * tpot - 1) < 1e-12


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50))
def test_vectorized_equals_scalar(hiddens):
    h = np.array(hiddens)
    vec = ep.fp8_dispatch_bytes_per_token_expert(hidden_size=h)
    assert list(vec) == [ep.fp8_dispatch_bytes_per_token_expert(hidden_size=x) for x in hiddens]
    bw = np.linspace(1e9, 1e12, len(hiddens))
    t = ep.ep_comm_time_per_layer_s(dispatch_bytes_per_token_expert=vec,
                                    combine_bytes_per_token_expert=2 * h,
                                    tokens_per_device=32, experts_per_token=9,
                                    bandwidth_bytes_per_s=bw)
    for i, x in enumerate(hiddens):
        assert t[i] == ep.ep_comm_time_per_layer_s(
            dispatch_bytes_per_token_expert=vec[i], combine_bytes_per_token_expert=2 * x,
            tokens_per_device=32, experts_per_token=9, bandwidth_bytes_per_s=bw[i])
    kv = kv_cache.kv_cache_bytes_per_token(num_layers=h, elements_per_token_per_layer=576,
                                           bytes_per_element=2)
    assert list(kv) == [kv_cache.kv_cache_bytes_per_token(
        num_layers=x, elements_per_token_per_layer=576, bytes_per_element=2) for x in hiddens]
    assert kv_cache.kv_cache_bytes_per_token(num_layers=61, elements_per_token_per_layer=576,
                                             bytes_per_element=2) == 70_272   # P Table 1


@given(gbit=pos)
def test_unit_round_trip(gbit):
    from planner import units

    b = units.gbit_per_s_to_bytes_per_s(gbit)
    assert abs(b * units.BITS_PER_BYTE / units.GB - gbit) <= 1e-9 * gbit


# ----------------------------------------------------------------------------- more properties
@given(l1=layers_st, l2=layers_st)
def test_more_layers_never_fewer_flops(l1, l2):
    lo, hi = sorted((l1, l2))
    att = HeadAttention(kind="gqa", num_heads=8, head_dim=16, num_kv_heads=2)
    f = [flops.model_flops_per_token(model_with(att, layers=n), seq_len=512).train_flops_per_token
         for n in (lo, hi)]
    assert f[0] <= f[1]


@given(s=st.integers(1, 1 << 16))
def test_full_attention_costs_at_least_causal(s):
    att = HeadAttention(kind="mha", num_heads=4, head_dim=16)
    m = model_with(att)
    full = flops.model_flops_per_token(m, seq_len=s, convention="exact-full")
    causal = flops.model_flops_per_token(m, seq_len=s, convention="exact-causal")
    assert causal.forward_flops_per_token <= full.forward_flops_per_token


@given(tokens=st.integers(1, 4096), k=st.integers(1, 64), scale=st.integers(2, 8), bw=pos)
def test_ep_time_is_linear_in_tokens_per_device(tokens, k, scale, bw):
    def t(n):
        return ep.ep_comm_time_per_layer_s(dispatch_bytes_per_token_expert=7408,
                                           combine_bytes_per_token_expert=14336,
                                           tokens_per_device=n, experts_per_token=k,
                                           bandwidth_bytes_per_s=bw * 1e9)
    assert abs(t(scale * tokens) - scale * t(tokens)) <= 1e-12 * t(scale * tokens)


@given(h1=st.integers(1, 100_000), h2=st.integers(1, 100_000))
def test_fp8_dispatch_bytes_cover_the_elements_and_grow_with_hidden(h1, h2):
    lo, hi = sorted((h1, h2))
    b = [ep.fp8_dispatch_bytes_per_token_expert(hidden_size=h) for h in (lo, hi)]
    assert b[0] >= lo and b[0] <= b[1]


@given(context=st.integers(1, 1 << 20), batch=st.integers(1, 1024), extra=st.integers(0, 1000),
       k=st.integers(2, 8))
def test_kv_cache_total_is_per_token_times_tokens_and_monotone(context, batch, extra, k):
    """Linear in the context and in the batch, the two interchangeable, monotone; hand-worked:
    70,272 bytes per token × 1,000 tokens × 2 sequences = 140,544,000 bytes."""
    per = 70_272

    def kv(c, b):
        return kv_cache.kv_cache_bytes(bytes_per_token=per, context_tokens=c, batch=b)

    assert kv(1000, 2) == 140_544_000
    total = kv(context, batch)
    assert kv(k * context, batch) == k * total == kv(context, k * batch)
    assert kv(batch, context) == total
    assert kv(context + extra, batch) >= total


@given(params_n=st.integers(1, 10**13), gpus=st.integers(1, 100_000))
def test_weight_bytes_split_evenly_sum_back_to_the_total(params_n, gpus):
    """Bytes per parameter: FP32 4, BF16 2, FP8 1, FP4 0.5, so each halving of the width halves
    the weights; hand-worked: 1e9 parameters in BF16 are 2e9 bytes. An even split over the
    GPUs sums back to the total."""
    from planner.calc import memory
    from planner.units import dtype_bytes

    assert memory.weight_bytes(num_params=1e9, bytes_per_param=dtype_bytes("bf16")) == 2e9
    w = {d: memory.weight_bytes(num_params=params_n, bytes_per_param=dtype_bytes(d))
         for d in ("fp32", "bf16", "fp8", "fp4")}
    assert w["fp32"] == 2 * w["bf16"] == 4 * w["fp8"] == 8 * w["fp4"]
    assert w["fp8"] == params_n
    for total in w.values():
        per = memory.bytes_per_gpu_even_split(total_bytes=total, num_gpus=gpus)
        assert abs(per * gpus - total) <= 1e-9 * total
        assert memory.bytes_per_gpu_even_split(total_bytes=total, num_gpus=1) == total


_DIMENSION_UNITS = st.sampled_from([
    ("bytes", "KB", 1e3), ("bytes", "GiB", 2.0**30), ("s", "ms", 1e-3), ("s", "µs", 1e-6),
    ("tokens/s", "tokens/s", 1.0), ("FLOPs", "GFLOP", 1e9), ("bytes/s", "Gbit/s", 1.25e8),
    ("count", "B", 1e9), ("fraction", "%", 1e-2), ("USD", "USD", 1.0),
])


@given(x=st.floats(min_value=0, max_value=1e12, allow_nan=False), du=_DIMENSION_UNITS,
       space=st.sampled_from(["", " "]))
def test_parse_quantity_round_trips_written_values(x, du, space):
    from planner.units import parse_quantity

    dimension, unit, factor = du
    assert parse_quantity(f"{x!r}{space}{unit}", dimension) == x * factor
    assert parse_quantity(x, dimension) == x           # plain numbers are base units


@pytest.mark.parametrize("kind, limit, passed", [
    # DeepSeek-V3's KV cache is 70,272 bytes per token: a max at, just above and just below it;
    # a min the same.
    ("max", 70272, True), ("max", 70273, True), ("max", 70271, False),
    ("min", 70272, True), ("min", 70271, True), ("min", 70273, False),
    ("max", "70.272 KB", True), ("max", "70.271 KB", False), ("min", "70.273 KB", False),
])
def test_budget_passes_exactly_when_headroom_is_not_negative(tmp_path, kind, limit, passed):
    """The verdict of `planner check` (planner/budget/checking.py) at hand-picked bounds, and
    the headroom's sign with it: >= 0 exactly when the bound is met."""
    from planner.budget import check_scenario, load_scenario

    path = tmp_path / "bound.yaml"
    path.write_text("name: bound\nmodel: deepseek-v3\nhardware: h800\n"
                    f"budgets:\n  kv_cache_bytes_per_token: {{{kind}: {limit}}}\n")
    (r,) = check_scenario(load_scenario(path))
    assert r.value == 70272 and r.bound == kind
    assert r.passed is passed
    assert (r.headroom_frac >= 0) is passed
    assert r.headroom_frac == (0 if r.limit == 70272 else pytest.approx(
        (r.limit - 70272) / r.limit if kind == "max" else (70272 - r.limit) / r.limit))


@given(heads=st.sampled_from([8, 16, 32, 64]), groups=st.sampled_from([1, 2, 4, 8]),
       head_dim=st.sampled_from([64, 128]), layers=layers_st, hidden=st.integers(64, 8192),
       vocab=st.integers(1, 200_000), inter=st.integers(1, 50_000), gated=st.booleans(),
       tied=st.booleans())
@settings(max_examples=60, deadline=None)
def test_cached_construction_equals_validation_for_random_specs(heads, groups, head_dim, layers,
                                                                hidden, vocab, inter, gated, tied):
    """The validation-record fast path builds exactly what pydantic validation builds."""
    from planner.specs.load import _construct, validate

    data = {"source": "prop", "num_layers": layers, "hidden_size": hidden, "vocab_size": vocab,
            "tie_word_embeddings": tied,
            "attention": {"kind": "gqa", "num_heads": heads, "head_dim": head_dim,
                          "num_kv_heads": heads // groups},
            "ffn": {"kind": "dense", "intermediate_size": inter, "gated": gated}}
    assert _construct(Model, data) == validate(Model, data, file="prop.yaml")


@given(routed=st.sampled_from([8, 16, 64, 256]), top_k=st.integers(1, 8),
       shared=st.integers(0, 2), layers=st.integers(4, 64), dense=st.integers(0, 3),
       seq=st.integers(1, 1 << 17))
@settings(max_examples=60)
def test_random_moe_models_give_finite_positive_metrics(routed, top_k, shared, layers, dense,
                                                       seq):
    ffn = MoEFFN(kind="moe", num_routed_experts=routed, num_experts_per_token=top_k,
                 expert_intermediate_size=256, num_shared_experts=shared,
                 num_dense_layers=dense, dense_intermediate_size=1024 if dense else None)
    att = MLAttention(kind="mla", num_heads=8, kv_lora_rank=64, qk_nope_head_dim=32,
                      qk_rope_head_dim=16, v_head_dim=32, q_lora_rank=96)
    m = model_with(att, layers=layers, hidden=256, ffn=ffn)
    p = params.model_params(m)
    f = flops.model_flops_per_token(m, seq_len=seq)
    kv = kv_cache.model_kv_cache(m)
    values = [p.total.total, p.activated.total, f.forward_flops_per_token,
              f.train_flops_per_token, kv.kv_cache_bytes_per_token]
    assert all(np.isfinite(v) and v > 0 for v in values)
    assert p.activated.total <= p.total.total


# ----------------------------------------------------------------------------- serving step
@given(rows=st.floats(min_value=0.01, max_value=1e5), tile=st.sampled_from([8, 32, 64, 128]))
def test_padded_rows_whole_tiles_never_fewer(rows, tile):
    from planner.calc.serving import padded_rows

    padded = padded_rows(rows=rows, tile_rows=tile)
    assert rows <= padded < rows + tile
    assert padded % tile == 0


@settings(max_examples=60, deadline=None)
@given(mean=st.floats(min_value=0.05, max_value=5e3), tile=st.sampled_from([32, 64]))
def test_expected_padded_rows_bounded_by_a_tile(mean, tile):
    from planner.calc.serving import expected_padded_rows_per_expert

    padded = expected_padded_rows_per_expert(mean_rows=mean, tile_rows=tile)
    # At least the rows themselves, at most one tile more each (an idle expert computes none).
    assert mean * (1 - 1e-9) <= padded <= mean + tile


@given(a=st.floats(0, 1), s=st.floats(0, 1), e=st.floats(0, 1), r=st.floats(0, 1),
       d=st.floats(0, 1), c=st.floats(0, 1))
def test_single_batch_overlap_between_its_parts_and_their_sum(a, s, e, r, d, c):
    from planner.calc.serving import single_batch_overlap_layer_s

    t = single_batch_overlap_layer_s(attention_s=a, shared_s=s, experts_s=e, other_s=r,
                                     dispatch_s=d, combine_s=c)
    assert max(a + s + e + r, a + e * 2 / 3 + r + d + c) - 1e-12 <= t
    assert t <= a + s + e + r + d + c + 1e-12
