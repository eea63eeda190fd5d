"""Property tests (hypothesis): monotonicity, scaling, equivalences, conservation, vectorization."""

from __future__ import annotations

import numpy as np
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


@given(d_c=small, d_r=small, layers=layers_st)
def test_mla_cache_equals_gqa_with_equivalent_groups(d_c, d_r, layers):
    # MLA caches d_c + d_R elements: GQA with n_g = (d_c + d_R) / (2·d_h) groups, here d_h = 1
    # when d_c + d_R is even, else the element counts are compared directly.
    mla = kv_cache.mla_kv_elements_per_token_per_layer(kv_lora_rank=d_c, qk_rope_head_dim=d_r)
    total = d_c + d_r
    if total % 2 == 0:
        assert kv_cache.gqa_kv_elements_per_token_per_layer(num_kv_heads=total // 2,
                                                            head_dim=1) == mla
    assert mla == total


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
    assert list(kv) == [x * 576 * 2 for x in hiddens]


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


@given(context=st.integers(1, 1 << 20), batch=st.integers(1, 1024), extra=st.integers(0, 1000))
def test_kv_cache_total_is_per_token_times_tokens_and_monotone(context, batch, extra):
    per = 70_272
    total = kv_cache.kv_cache_bytes(bytes_per_token=per, context_tokens=context, batch=batch)
    assert total == per * context * batch
    assert kv_cache.kv_cache_bytes(bytes_per_token=per, context_tokens=context + extra,
                                   batch=batch) >= total


@given(params_n=st.integers(1, 10**13), gpus=st.integers(1, 100_000),
       dtype=st.sampled_from(["fp32", "bf16", "fp8", "fp4"]))
def test_weight_bytes_split_evenly_sum_back_to_the_total(params_n, gpus, dtype):
    from planner.calc import memory
    from planner.units import dtype_bytes

    w = memory.weight_bytes(num_params=params_n, bytes_per_param=dtype_bytes(dtype))
    assert w == params_n * dtype_bytes(dtype)
    per = memory.bytes_per_gpu_even_split(total_bytes=w, num_gpus=gpus)
    assert abs(per * gpus - w) <= 1e-9 * w


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


@given(value=st.floats(min_value=0, max_value=1e6), limit=st.floats(min_value=1e-6, max_value=1e6),
       kind=st.sampled_from(["max", "min"]))
def test_budget_passes_exactly_when_headroom_is_not_negative(value, limit, kind):
    from planner.budget import BudgetResult

    passed = value <= limit if kind == "max" else value >= limit
    r = BudgetResult(scenario="s", file="f", line=1, metric="tpot_s", dimension="s", bound=kind,
                     limit=limit, limit_text=str(limit), value=value, basis="", passed=passed)
    assert r.passed == (r.headroom_frac >= 0)


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
