"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
V3_TEXT = (REPO / "models" / "deepseek-v3.yaml").read_text()
H800_TEXT = (REPO / "hardware" / "h800.yaml").read_text()

#: DeepSeek-V3's config.json (the fields the importer reads), for config.json tests.
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512,
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
    "n_shared_experts": 1, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "first_k_dense_replace": 3, "topk_group": 4, "tie_word_embeddings": False,
    "vocab_size": 129280, "rope_theta": 10000, "torch_dtype": "bfloat16",
}


def write_config(tmp_path, data, folder="Model"):
    """Write ``data`` as ``<tmp_path>/<folder>/config.json`` and return its path."""
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    p = d / "config.json"
    p.write_text(json.dumps(data))
    return p
