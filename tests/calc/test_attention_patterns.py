"""Attention per layer (issue 21): sliding windows, DeepSeek Sparse Attention, linear layers."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.calc.flops import (attention_core_flops_parts_per_query,
                                attention_core_flops_per_query, model_flops_per_token)
from planner.calc.kv_cache import (attention_kv_read_bytes_per_query,
                                   attention_kv_read_parts_per_query, kv_cache_bytes_per_sequence,
                                   kv_cache_parts_per_sequence, model_kv_cache)
from planner.calc.params import model_params
from planner.calc.serving.blocks import attention_core_flops_per_token_per_layer
from planner.specs.load import validate
from planner.specs.model import Model


# ----------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name, published", [
    # DeepSeek-V3 README_WEIGHTS.md: 671B main model (the MTP module's 14B not counted).
    ("deepseek-v3", 671e9),
    # GLM-5 model card and technical report (arXiv 2602.15763): 744B total parameters.
    ("glm-5", 744e9),
    # Qwen3.5-397B-A17B model card: 397B total parameters.
    ("qwen3.5-397b-a17b", 397e9),
    # Qwen3-Next-80B-A3B model card: 80B total parameters.
    ("qwen3-next-80b-a3b", 80e9),
    # Qwen1.5-MoE-A2.7B model card: 14.3B total parameters.
    ("qwen1.5-moe-a2.7b", 14.3e9),
    # gpt-oss model card (arXiv 2508.10925) Table 1: 116.83B total parameters.
    ("gpt-oss-120b", 116.83e9),
])
def test_catalog_models_reproduce_their_published_parameter_counts(name, published):
    assert model_params(catalog.load_model(name)).params_total == pytest.approx(published,
                                                                                rel=0.005)


def test_deepseek_v32_with_its_mtp_module_is_the_published_685b():
    """DeepSeek-V3.2's Hugging Face checkpoint holds 685B parameters: the main model (V3's
    671.03B + 61 lightning indexers of 13.96M) + one MTP module with its own copies of the
    embedding and the output head (as V3's README_WEIGHTS.md counts 671B + 14B)."""
    from planner.calc.memory import mtp_module_params

    m = catalog.load_model("deepseek-v3.2")
    p = model_params(m)
    v3 = model_params(catalog.load_model("deepseek-v3")).params_total
    assert p.params_total - v3 == pytest.approx(61 * 13_959_168 + 61 * 2 * 128)
    copies = 2 * m.vocab_size * m.hidden_size
    assert p.params_total + mtp_module_params(m).total + copies == pytest.approx(685e9, rel=0.005)


def test_activated_parameters_near_the_vendors_figures():
    # Qwen counts the input embedding (17B, 2.7B); GLM-5: 40B active.
    assert model_params(catalog.load_model("qwen3.5-397b-a17b")) \
        .params_activated_with_embedding == pytest.approx(17e9, rel=0.03)
    assert model_params(catalog.load_model("qwen1.5-moe-a2.7b")) \
        .params_activated_with_embedding == pytest.approx(2.7e9, rel=0.01)
    assert model_params(catalog.load_model("glm-5")).params_activated == pytest.approx(
        40e9, rel=0.03)


# ----------------------------------------------------------------------------- gpt-oss windows
def test_gpt_oss_kv_per_token_at_4096_is_the_hand_count():
    """18 full layers × 2 × 8 KV heads × 64 × 2 B + 18 window layers holding 128 tokens."""
    oss = catalog.load_model("gpt-oss-120b")
    hand = (18 * 2 * 8 * 64 * 2 * 4096 + 18 * 2 * 8 * 64 * 2 * 128) / 4096
    assert hand == 38_016
    r = model_kv_cache(oss, dtype="bf16", context_tokens=4096)
    assert r.kv_cache_bytes_per_token == pytest.approx(hand, rel=0.01)
    assert r.kv_cache_bytes_per_sequence == hand * 4096
    # Below the window every layer holds every token: the all-full figure.
    assert model_kv_cache(oss, context_tokens=128).kv_cache_bytes_per_token == 36 * 2048


def test_calculators_are_vectorized_and_equal_the_scalar_calls():
    oss = catalog.load_model("gpt-oss-120b")
    c = np.array([1, 128, 4096, 131_072])
    for f in (kv_cache_bytes_per_sequence, attention_kv_read_bytes_per_query):
        got = f(oss, context_tokens=c, kv_dtype="bf16")
        assert got.shape == c.shape
        assert list(got) == [float(f(oss, context_tokens=int(x), kv_dtype="bf16")) for x in c]
    flops = attention_core_flops_per_query(oss, context_tokens=c)
    assert flops.shape == c.shape
    assert flops[2] == 18 * 64 * 256 * (4096 + 128)


def test_full_attention_models_are_unchanged():
    """Every figure of an all-full model is the old one: the paper's per-token bytes × C."""
    for name, per_token in (("deepseek-v3", 70_272), ("qwen2.5-72b", 327_680),
                            ("llama-3.1-405b", 516_096)):
        m = catalog.load_model(name)
        assert not m.has_attention_pattern
        c = np.array([1, 4096, 131_072])
        assert list(kv_cache_bytes_per_sequence(m, context_tokens=c, kv_dtype="bf16")) == \
            list(per_token * c)
        assert list(attention_kv_read_bytes_per_query(m, context_tokens=c, kv_dtype="bf16")) \
            == list(per_token * c)
        assert float(attention_core_flops_per_query(m, context_tokens=4096)) == pytest.approx(
            m.num_layers * attention_core_flops_per_token_per_layer(m, context_tokens=4096))


def test_gpt_oss_training_flops_follow_the_windows():
    """At s = 128K all-full counting overstates gpt-oss's forward FLOPs by ~65% (issue 21)."""
    oss = catalog.load_model("gpt-oss-120b")
    r = model_flops_per_token(oss, seq_len=131_072)
    scores_full = 2 * 36 * 65_536 * 64 * 128
    all_full = r.forward_flops_per_token - r.forward_parts["attention_scores"] + scores_full
    assert all_full / r.forward_flops_per_token == pytest.approx(1.65, abs=0.01)
    # The window layers attend to W − W² / (2s) positions on average.
    window = 128 - 128 ** 2 / (2 * 131_072)
    assert r.forward_parts["attention_scores"] == pytest.approx(
        2 * 64 * 128 * (18 * 65_536 + 18 * window))


# ----------------------------------------------------------------------------- DSA
def test_dsa_core_is_flat_beyond_top_k_and_the_indexer_linear():
    v32 = catalog.load_model("deepseek-v3.2")
    c = np.array([2048, 32_768, 131_072])
    flops = attention_core_flops_parts_per_query(v32, context_tokens=c)
    assert flops["core"][0] == flops["core"][1] == flops["core"][2] == 61 * 128 * 2048 * 2176
    assert flops["indexer"][2] == 4 * flops["indexer"][1] == 61 * 2 * 64 * 128 * 131_072
    read = attention_kv_read_parts_per_query(v32, context_tokens=c, kv_dtype="fp8")
    assert read["sparse"][2] == read["sparse"][0] == 61 * 656 * 2048
    assert read["indexer"][2] == 61 * 132 * 131_072
    # What DSA saves at 128K: V3's MLA reads every token in every layer.
    v3 = catalog.load_model("deepseek-v3")
    dense = attention_kv_read_bytes_per_query(v3, context_tokens=131_072, kv_dtype="fp8")
    assert dense == 61 * 656 * 131_072
    assert float(sum(read.values())[2]) < dense / 4
    # The cache still holds every token, plus the indexer's keys.
    kv = kv_cache_parts_per_sequence(v32, context_tokens=131_072, kv_dtype="fp8")
    assert float(kv["sparse"]) == dense and float(kv["indexer"]) == 61 * 132 * 131_072


# ----------------------------------------------------------------------------- linear layers
def test_qwen35_memory_per_sequence_counts_the_linear_state():
    """15 full layers × 2 × 2 KV heads × 256 × 2 B per token + 45 Gated DeltaNet states of
    64 × 128 × 128 FP32 values and 3 × (2 × 16 × 128 + 64 × 128) BF16 conv inputs."""
    q = catalog.load_model("qwen3.5-397b-a17b")
    state = 45 * (64 * 128 * 128 * 4 + 3 * (2 * 16 * 128 + 64 * 128) * 2)
    assert state == 192_061_440
    per_seq = kv_cache_bytes_per_sequence(q, context_tokens=np.array([32_768, 262_144]),
                                          kv_dtype="bf16")
    assert list(per_seq) == [15 * 2048 * 32_768 + state, 15 * 2048 * 262_144 + state]
    assert list(per_seq) == [1_198_694_400, 8_245_125_120]
    # A linear layer's state is read and written back once per decode token.
    read = attention_kv_read_parts_per_query(q, context_tokens=32_768, kv_dtype="bf16")
    assert float(read["linear_state"]) == 2 * state
    assert float(attention_core_flops_parts_per_query(q, context_tokens=10)["linear"]) == \
        45 * 2 * 3 * 64 * 128 * 128


# ----------------------------------------------------------------------------- the spec
def _spec(**over):
    base = {"name": "toy", "source": "test", "num_layers": 4, "hidden_size": 64,
            "vocab_size": 100, "attention": {"kind": "gqa", "num_heads": 4, "num_kv_heads": 2,
                                             "head_dim": 16},
            "ffn": {"kind": "dense", "intermediate_size": 128}}
    base.update(over)
    return base


def test_attention_layers_must_add_up_and_unknown_kinds_are_refused_by_name():
    from planner.errors import SpecError

    with pytest.raises(SpecError, match="add up to 3, num_layers is 4"):
        validate(Model, _spec(attention_layers=[{"kind": "full", "count": 3}]), file="toy.yaml")
    with pytest.raises(SpecError, match="mamba"):
        validate(Model, _spec(attention_layers=[{"kind": "mamba", "count": 4}]),
                 file="toy.yaml")
    with pytest.raises(SpecError, match="needs attention kind 'mla'"):
        validate(Model, _spec(attention_layers=[
            {"kind": "sparse", "count": 4, "top_k": 8, "indexer_num_heads": 2,
             "indexer_head_dim": 8}]), file="toy.yaml")
    ok = validate(Model, _spec(attention_layers=[{"kind": "full", "count": 1},
                                                 {"kind": "sliding_window", "count": 3,
                                                  "window": 8}]), file="toy.yaml")
    assert ok.num_kv_layers == 4 and ok.has_attention_pattern


# ----------------------------------------------------------------------------- import-hf
# The fields of each published config.json the converter reads (huggingface.co/<repo>/config.json).
_V3_FIELDS = {
    "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
    "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
    "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
    "first_k_dense_replace": 3, "moe_layer_freq": 1, "n_group": 8, "topk_group": 4,
    "vocab_size": 129280, "tie_word_embeddings": False, "num_nextn_predict_layers": 1}
CONFIGS = {
    # openai/gpt-oss-120b
    "gpt-oss-120b": {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880,
        "intermediate_size": 2880, "num_hidden_layers": 36, "num_attention_heads": 64,
        "num_key_value_heads": 8, "head_dim": 64, "num_local_experts": 128,
        "num_experts_per_tok": 4, "vocab_size": 201088, "sliding_window": 128,
        "tie_word_embeddings": False, "attention_bias": True,
        "layer_types": ["sliding_attention", "full_attention"] * 18},
    # deepseek-ai/DeepSeek-V3.2
    "deepseek-v3.2": {"architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
                      **_V3_FIELDS, "index_topk": 2048, "index_n_heads": 64,
                      "index_head_dim": 128},
    # zai-org/GLM-5
    "glm-5": {
        "architectures": ["GlmMoeDsaForCausalLM"], "model_type": "glm_moe_dsa",
        "hidden_size": 6144, "intermediate_size": 12288, "moe_intermediate_size": 2048,
        "num_hidden_layers": 78, "num_attention_heads": 64, "num_key_value_heads": 64,
        "q_lora_rank": 2048, "kv_lora_rank": 512, "qk_nope_head_dim": 192,
        "qk_rope_head_dim": 64, "v_head_dim": 256, "n_routed_experts": 256,
        "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
        "n_group": 1, "topk_group": 1, "vocab_size": 154880, "tie_word_embeddings": False,
        "num_nextn_predict_layers": 1, "index_topk": 2048, "index_n_heads": 32,
        "index_head_dim": 128},
    # moonshotai/Kimi-K2.5 (text_config, as nvidia/Kimi-K2.5-NVFP4's; DeepSeek-V3's layout)
    "kimi-k2.5": {
        "architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
        "tie_word_embeddings": False, "text_config": {
            **_V3_FIELDS, "num_attention_heads": 64, "num_key_value_heads": 64,
            "n_routed_experts": 384, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
            "vocab_size": 163840, "num_nextn_predict_layers": 0}},
    # Qwen/Qwen3.5-397B-A17B (the language model's fields are in text_config)
    "qwen3.5-397b-a17b": {
        "architectures": ["Qwen3_5MoeForConditionalGeneration"], "model_type": "qwen3_5_moe",
        "tie_word_embeddings": False, "text_config": {
            "hidden_size": 4096, "num_hidden_layers": 60, "num_attention_heads": 32,
            "num_key_value_heads": 2, "head_dim": 256, "attn_output_gate": True,
            "layer_types": (["linear_attention"] * 3 + ["full_attention"]) * 15,
            "linear_num_key_heads": 16, "linear_num_value_heads": 64,
            "linear_key_head_dim": 128, "linear_value_head_dim": 128,
            "linear_conv_kernel_dim": 4, "mamba_ssm_dtype": "float32", "num_experts": 512,
            "num_experts_per_tok": 10, "moe_intermediate_size": 1024,
            "shared_expert_intermediate_size": 1024, "vocab_size": 248320,
            "tie_word_embeddings": False, "mtp_num_hidden_layers": 1}},
    # Qwen/Qwen3-Next-80B-A3B-Instruct
    "qwen3-next-80b-a3b": {
        "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
        "hidden_size": 2048, "num_hidden_layers": 48, "num_attention_heads": 16,
        "num_key_value_heads": 2, "head_dim": 256, "full_attention_interval": 4,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
        "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4, "num_experts": 512,
        "num_experts_per_tok": 10, "moe_intermediate_size": 512,
        "shared_expert_intermediate_size": 512, "decoder_sparse_step": 1, "mlp_only_layers": [],
        "vocab_size": 151936, "tie_word_embeddings": False},
    # Qwen/Qwen1.5-MoE-A2.7B
    "qwen1.5-moe-a2.7b": {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
        "num_key_value_heads": 16, "num_experts": 60, "num_experts_per_tok": 4,
        "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 151936,
        "tie_word_embeddings": False},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_import_hf_gives_the_catalog_spec(name):
    from planner.specs.hf import spec_from_hf_config

    spec = spec_from_hf_config(CONFIGS[name], file="config.json", name=name)
    got = validate(Model, spec, file="config.json")
    want = catalog.load_model(name)
    assert got.layer_groups == want.layer_groups and got.attention == want.attention
    assert got.ffn == want.ffn
    assert model_params(got).params_total == model_params(want).params_total
    c = np.array([1, 4096, 262_144])
    assert list(kv_cache_bytes_per_sequence(got, context_tokens=c, kv_dtype="bf16")) == \
        list(kv_cache_bytes_per_sequence(want, context_tokens=c, kv_dtype="bf16"))


@pytest.mark.parametrize("config, field, words", [
    ({**CONFIGS["gpt-oss-120b"], "layer_types": ["chunked_attention"] * 36}, "layer_types",
     "chunked_attention"),
    ({**CONFIGS["glm-5"], "indexer_types": ["full", "shared"] * 39}, "indexer_types", "shared"),
    ({"architectures": ["MiniMaxM2ForCausalLM"], "attn_type_list": [0, 1]}, "attn_type_list",
     "lightning"),
])
def test_import_hf_refuses_unmodelled_layer_kinds_by_name(config, field, words):
    from planner.errors import SpecError
    from planner.specs.hf import spec_from_hf_config

    with pytest.raises(SpecError, match=words) as info:
        spec_from_hf_config(config, file="config.json", name="x")
    assert info.value.field == field


# ----------------------------------------------------------------------------- compare, fit
def test_compare_prints_the_crossover_against_context(tmp_path):
    import json

    from typer.testing import CliRunner

    from planner.cli import app

    plot = tmp_path / "kv.png"
    result = CliRunner().invoke(app, ["compare", "deepseek-v3", "qwen3.5-397b-a17b",
                                      "deepseek-v3.2", "gpt-oss-120b", "-f", "json",
                                      "--plot", str(plot)], catch_exceptions=False)
    assert result.exit_code == 0 and plot.stat().st_size > 10_000
    records = json.loads(result.stdout)
    cache = {r["model"]: r for r in records if "kv_bytes_per_sequence" in r}
    read = {r["model"]: r for r in records if "read_bytes_per_query" in r}
    # Qwen3.5's cache: 30,720 B a token + 192,061,440 B of state; V3's 70,272 B a token:
    # below V3's from 192,061,440 / (70,272 − 30,720) = 4,855.9 tokens.
    assert cache["qwen3.5-397b-a17b"]["cache_below_first_from"] == 4856
    # DSA caches more than MLA at every context (the indexer's keys) but reads less from
    # 1,152 × 2,048 / (1,152 − 132) = 2,313.0 tokens.
    assert cache["deepseek-v3.2"]["cache_below_first_from"] is None
    assert read["deepseek-v3.2"]["read_below_first_from"] == 2314
    # gpt-oss: 36 × 2,048 × C ≥ 70,272 × C below the window; 18 × 2,048 × (C + 128) after.
    assert cache["gpt-oss-120b"]["cache_below_first_from"] == 142
    parts = {(r["model"], r["part"]): r["values"] for r in records if "part" in r}
    core = parts[("deepseek-v3.2", "core FLOPs")]
    assert core[-1] == core[1] == 61 * 128 * 2048 * 2176           # flat beyond top-k
    idx = parts[("deepseek-v3.2", "indexer FLOPs")]
    assert idx[-1] == 1024 * idx[0]                                 # linear in C (1K -> 1M)


def test_fit_counts_the_windows_and_the_linear_state():
    from planner.calc.attention import kv_bytes_per_sequence_per_gpu
    from planner.calc.memory import max_context_tokens

    q = catalog.load_model("qwen3.5-397b-a17b")
    assert kv_bytes_per_sequence_per_gpu(q, kv_dtype="bf16", tp=8, context_tokens=32_768) == \
        15 * 2048 * 32_768 / 2 + 192_061_440 / 8
    h200 = catalog.load_hardware("h200")
    c = max_context_tokens(q, h200, ep=8, tp=8)
    assert c is not None
    free = lambda n: kv_bytes_per_sequence_per_gpu(q, kv_dtype="bf16", tp=8, context_tokens=n)
    v3 = catalog.load_model("deepseek-v3")
    assert max_context_tokens(v3, h200, ep=8, tp=8) == 719_195       # all-full: unchanged
    # The largest context fits and one more token does not.
    from planner.calc.memory import memory_per_gpu

    mem = memory_per_gpu(q, h200, ep=8, tp=8, batch_per_gpu=1 / 8, context_tokens=1)
    room = mem.capacity_bytes_per_gpu - mem.workspace_bytes_per_gpu - mem.weight_bytes_per_gpu
    assert free(c) <= room < free(c + 1)
