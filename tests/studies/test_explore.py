"""Issue 6: Hugging Face config import, the larger catalog, compare, sweep (vectorized, plots),
JSON Schema."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.calc.ep import ep_decode_limit
from planner.calc.kv_cache import model_kv_cache
from planner.calc.params import model_params
from planner.cli import app
from planner.specs.hf import ARCHITECTURES, spec_from_hf_config
from tests_support import DEEPSEEK_V3, write_config

runner = CliRunner()

# The published config.json of DeepSeek-V3 (the fields the planner reads, as published).
LLAMA_405B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16384,
    "intermediate_size": 53248, "num_attention_heads": 128, "num_hidden_layers": 126,
    "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False,
    "attention_bias": False, "mlp_bias": False,
}


def run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


# ----------------------------------------------------------------------------- import-hf
def test_deepseek_v3_config_gives_the_catalog_figures(tmp_path):
    path = write_config(tmp_path, DEEPSEEK_V3, "DeepSeek-V3")
    imported, cat = catalog.load_model(str(path)), catalog.load_model("deepseek-v3")
    assert model_kv_cache(imported).kv_cache_bytes_per_token == 70_272
    p1, p2 = model_params(imported), model_params(cat)
    assert p1.total.items == p2.total.items and p1.activated.items == p2.activated.items
    assert imported.name == "deepseek-v3"


def test_llama_405b_config_gives_516096(tmp_path):
    path = write_config(tmp_path, LLAMA_405B, "Llama-3.1-405B")
    (rec,) = json.loads(run("kv-cache", str(path), "-f", "json").stdout)
    assert rec["kv_cache_bytes_per_token"] == 516_096


def test_import_hf_writes_a_spec_that_loads_back(tmp_path):
    path = write_config(tmp_path, DEEPSEEK_V3, "DeepSeek-V3")
    out = tmp_path / "v3.yaml"
    result = run("import-hf", str(path), "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    again = catalog.load_model(str(out))
    assert model_params(again).total.total == model_params(
        catalog.load_model("deepseek-v3")).total.total


@pytest.mark.parametrize("config, kind, ffn", [
    ({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 10,
      "intermediate_size": 128}, "gqa", "dense"),
    ({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 4, "head_dim": 32, "num_hidden_layers": 2, "vocab_size": 10,
      "intermediate_size": 128}, "mha", "dense"),
    ({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 1, "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 10,
      "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32}, "mqa", "moe"),
    ({"architectures": ["MistralForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 10,
      "intermediate_size": 128, "sliding_window": 4096}, "gqa", "dense"),
    ({"architectures": ["MixtralForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 10,
      "intermediate_size": 128, "num_local_experts": 8, "num_experts_per_tok": 2}, "gqa", "moe"),
    ({"architectures": ["GptOssForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 10,
      "intermediate_size": 64, "num_local_experts": 8, "experts_per_token": 2,
      "sliding_window": 128}, "gqa", "moe"),
    ({"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
      "num_hidden_layers": 2, "vocab_size": 10, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
      "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 4, "num_experts_per_tok": 2,
      "moe_intermediate_size": 16, "n_shared_experts": 1}, "mla", "moe"),
])
def test_every_supported_architecture_converts(tmp_path, config, kind, ffn):
    m = catalog.load_model(str(write_config(tmp_path, config)))
    assert m.attention.kind == kind and m.ffn.kind == ffn
    if "sliding_window" in config:
        assert "sliding_window" in m.notes


def test_gqa_kv_by_hand_from_a_tiny_config(tmp_path):
    # 2 layers × 2 KV heads × 16 head dim × 2 (K and V) × 2 B = 256 B per token.
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
           "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 10,
           "intermediate_size": 128}
    m = catalog.load_model(str(write_config(tmp_path, cfg)))
    assert model_kv_cache(m).kv_cache_bytes_per_token == 2 * 2 * 16 * 2 * 2


@pytest.mark.parametrize("config, message", [
    ({"architectures": ["Llama4ForConditionalGeneration"]},
     "unsupported architecture 'Llama4ForConditionalGeneration'; supported:"),
    ({"architectures": ["LlamaForCausalLM"], "hidden_size": 64},
     "config.json field 'num_attention_heads' is missing"),
    ([1, 2], "expected a JSON object"),
    ({"architectures": ["DeepseekV3ForCausalLM"], **{k: v for k, v in DEEPSEEK_V3.items()
                                                    if k != "architectures"},
      "moe_layer_freq": 2}, "moe_layer_freq"),
])
def test_bad_configs_exit_2_with_one_line(tmp_path, config, message):
    path = write_config(tmp_path, config)
    result = run("import-hf", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_broken_json_and_missing_file(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"a": 1,')
    for path, message in ((bad, "invalid JSON: line 1"),
                          (tmp_path / "none" / "config.json", "file not found")):
        result = run("kv-cache", str(path))
        assert result.exit_code == 2 and message in result.stderr


def test_architecture_table_lists_the_issue_families():
    for arch in ("DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "Qwen2ForCausalLM",
                 "Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "LlamaForCausalLM",
                 "MixtralForCausalLM", "MistralForCausalLM", "GptOssForCausalLM"):
        assert arch in ARCHITECTURES
    assert spec_from_hf_config(DEEPSEEK_V3, file="x", name="v3")["mtp_depth"] == 1


# ----------------------------------------------------------------------------- catalog
def test_catalog_sizes_and_sources():
    models, hardware = catalog.names("model"), catalog.names("hardware")
    assert len(models) >= 12 and len(hardware) >= 10
    for n in models:
        assert catalog.load_model(n).source
    for n in hardware:
        assert catalog.load_hardware(n).source


# Each vendor's activated figure in its own convention: Qwen and Mistral count the input
# embedding (params_activated_with_embedding), Moonshot leaves it out (params_activated).
# gpt-oss-120b and DeepSeek-V3 are pinned tighter below.
@pytest.mark.parametrize("name, total, activated, with_embedding", [
    ("qwen3-235b-a22b", 235e9, 22e9, True), ("qwen3-30b-a3b", 30.5e9, 3.3e9, True),
    ("qwen3-32b", 32.8e9, 32.8e9, True), ("kimi-k2", 1.03e12, 32e9, False),
    ("mixtral-8x7b", 46.7e9, 12.9e9, True), ("gpt-oss-120b", 116.8e9, 5.13e9, False),
])
def test_new_models_match_their_published_sizes(name, total, activated, with_embedding):
    p = model_params(catalog.load_model(name))
    assert p.total.total == pytest.approx(total, rel=0.01)
    got = p.params_activated_with_embedding if with_embedding else p.params_activated
    assert got == pytest.approx(activated, rel=0.02)


@pytest.mark.parametrize("name, vendor", [
    # OpenAI, gpt-oss model card (arXiv 2508.10925) Table 1: 5.13B active parameters per token.
    ("gpt-oss-120b", 5.13e9),
    # DeepSeek-V3 README_WEIGHTS.md: "Activation parameters: 36.6B (including 0.9B for the
    # output Head)"; the 0.9B input embedding is not in it.
    ("deepseek-v3", 36.6e9),
])
def test_params_activated_leave_out_the_input_embedding_as_the_vendors_count(name, vendor):
    """The input embedding is a lookup, not a matmul: 5.71B / 37.55B with it (1.1x / 2.6% high)."""
    p = model_params(catalog.load_model(name))
    assert p.params_activated == pytest.approx(vendor, rel=0.01)
    embedding = p.total.as_dict()["embedding"]
    assert p.params_activated_with_embedding == p.params_activated + embedding


# ----------------------------------------------------------------------------- compare
def test_compare_json_and_hand_worked_context():
    records = json.loads(run("compare", "deepseek-v3", "qwen2.5-72b", "-H", "h800", "-H", "h200",
                             "-f", "json").stdout)
    v3, qwen = records[0], records[1]
    assert v3["kv_multiplier_vs_first"] == 1 and round(qwen["kv_multiplier_vs_first"], 2) == 4.66
    # The one memory model at EP = TP = 8. H800: 85.14 GB of stored FP8 weights per GPU + 10%
    # workspace of the 81,559 MiB usable > 81,559 MiB: the weights do not fit (null, not -0.0).
    assert v3["max_context_tokens_per_gpu.h800"] is None
    # H200: (143,771 MiB x 0.9 - 85,140,064,624 B) // 70,272 (MLA: the latent whole per GPU;
    # its down-projections, 61 x 15,138,816 weights, whole on every GPU of the TP group).
    assert v3["max_context_tokens_per_gpu.h200"] == (
        (143_771 * 2**20 * 0.9 - 85_140_064_624) // 70_272) == 719_195
    # GQA's KV heads split over TP 8 (8 KV heads): 327,680 / 8 B per token per GPU.
    qwen_w = 9_405_854_208   # Qwen2.5-72B stored FP8 weights per GPU at TP 8 (memory model)
    assert qwen["max_context_tokens_per_gpu.h800"] == (
        (81_559 * 2**20 * 0.9 - qwen_w) // (327_680 / 8))
    assert qwen["ep_ceiling_tokens_per_s.h800"] is None
    # Decode bytes: 36,625,603,584 activated params (input embedding excluded: a lookup reads
    # one row, not the table) × 1 B + 4,096 × 70,272.
    assert v3["decode_bytes_per_step"] == 36_625_603_584 + 4096 * 70_272


# ----------------------------------------------------------------------------- sweep
def test_sweep_vectorized_equals_the_scalar_api():
    from planner.studies.sweep import run_sweep

    m, h = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    r = run_sweep(m, h, "ep_ceiling_tpot_s", ["nic_bandwidth_gb_per_s=10:400:log7",
                                   "tokens_per_device=8,32,128"])
    for i, bw in enumerate(r.axes[0]):
        for j, t in enumerate(r.axes[1]):
            scalar = ep_decode_limit(m, h, tokens_per_device=float(t),
                                     bandwidth_bytes_per_s=float(bw) * 1e9).ep_ceiling_tpot_s
            assert r.values[i, j] == pytest.approx(scalar, rel=1e-12)


def test_sweep_kv_by_hand_and_ep_in_domain():
    from planner.studies.sweep import run_sweep

    m, h = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    kv = run_sweep(m, h, "kv_cache_bytes_per_token", ["kv_lora_rank=256,512"])
    assert list(kv.values) == [61 * (256 + 64) * 2, 61 * (512 + 64) * 2]
    ep = run_sweep(m, h, "ep_comm_time_per_layer_s", ["ep_size=8,16"])
    # EP 8 fits the NVLink domain (200 GB/s), EP 16 goes over IB (50 GB/s): 4x the time.
    assert ep.values[1] == pytest.approx(4 * ep.values[0])


@pytest.mark.parametrize("args, message", [
    (["--vary", "bogus=1,2"], "unknown variable 'bogus'"),
    (["--vary", "tokens_per_device=1:10"], "expected start:stop:linN"),
    (["--vary", "tokens_per_device=0:10:log5"], "a log range needs positive ends"),
    (["--vary", "kv_lora_rank=1,2", "--metric", "nope"], "unknown sweep metric"),
    (["--vary", "num_kv_heads=1,2"], "does not apply to DeepSeek-V3"),
    (["--vary", "a=1", "--vary", "b=1", "--vary", "c=1"], "unknown variable"),
])
def test_sweep_bad_input_exits_2(args, message):
    result = run("sweep", "deepseek-v3", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_sweep_csv_has_every_point():
    result = run("sweep", "deepseek-v3", "--vary", "tokens_per_device=1:100:lin100",
                 "--vary", "micro_batches=1,2", "-f", "csv")
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "tokens_per_device,micro_batches,ep_ceiling_tokens_per_s"
    assert len(lines) == 1 + 200


def test_sweep_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "s.png"
    result = run("sweep", "deepseek-v3", "--vary", "nic_bandwidth_gb_per_s=25:900:log20",
                 "--vary", "tokens_per_device=8,16,32,64", "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("sweep", "deepseek-v3", "--vary", "tokens_per_device=8,16", "--plot",
                 str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "pip install 'llm-capacity-planner[plot]'" in result.stderr


# ----------------------------------------------------------------------------- schema
@pytest.mark.parametrize("kind, folder", [("model", "models"), ("hardware", "hardware"),
                                          ("scenario", "specs")])
def test_schema_accepts_the_repository_files_and_rejects_bad_ones(kind, folder):
    import jsonschema
    import yaml

    from tests_support import REPO

    schema = json.loads(run("schema", kind).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((REPO / folder).glob("*.yaml"))
    assert files
    for f in files:
        data = yaml.safe_load(f.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (f, errors[0].message)
    data["bogus_field"] = 1
    assert list(validator.iter_errors(data))



def test_a_device_without_scale_up_uses_its_nic_and_says_what_it_lacks():
    (rec,) = json.loads(run("ep", "deepseek-v3", "-H", "dgx-spark", "--ep", "2", "-f",
                            "json").stdout)
    assert rec["link"] == "scale_out" and rec["bandwidth_bytes_per_s"] == 25e9
    for args, message in ((["routing", "deepseek-v3", "-H", "dgx-spark"], "no scale-up domain"),
                          (["train", "deepseek-v3", "-H", "dgx-spark", "--tokens", "1T",
                            "--gpus", "2", "--mfu", "0.4"], "peak_dense_tflop_per_s.bf16")):
        result = run(*args)
        assert result.exit_code == 2 and message in result.stderr
