"""A tied output head is one matrix with the input embedding: counted once in the total, but
computed and read for every token (issue 18 item 2)."""

from __future__ import annotations

import json

import pytest

from planner import catalog
from planner.calc.flops import model_flops_per_token
from planner.calc.params import model_params
from planner.calc.serving import serve
from planner.specs.deployment import ServeConfig

#: meta-llama/Llama-3.2-1B config.json as published (huggingface.co/meta-llama/Llama-3.2-1B).
LLAMA_32_1B = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256,
}


@pytest.fixture()
def llama_1b(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_32_1B))
    return catalog.load_model(str(path))


def test_a_tied_head_is_in_the_forward_flops(llama_1b):
    # d = 2048, L = 16, V = 128,256, n_h = 32, n_kv = 8, d_h = 64, I = 8192, s = 4096 causal:
    # attention projections per layer 2·2048·32·64 (Q, O) + 2·2048·8·64 (K, V) = 10,485,760:
    # 2 × (16 × 10,485,760 = 167,772,160 attention + 16 × 3·2048·8192 = 805,306,368 MLP
    #      + 128,256 × 2048 = 262,668,288 head) = 2,471,493,632
    # + scores 2 × 16 × 2,048 × 32 × (64 + 64) = 268,435,456 -> 2,739,929,088 FLOPs (the head
    # left out: 2,214,592,512).
    fl = model_flops_per_token(llama_1b, seq_len=4096)
    assert fl.forward_parts.as_dict()["output_head"] == 2 * 128_256 * 2048
    assert fl.forward_flops_per_token == 2_739_929_088
    p = model_params(llama_1b)
    # The table is held once: 1,235,814,400 parameters (Meta: 1.23B).
    assert p.params_total == 1_235_814_400
    assert p.total.as_dict()["output_head"] == 0
    assert p.activated.as_dict()["output_head"] == 128_256 * 2048
    # Tied: counting the embedding adds no second matrix.
    assert p.params_activated_with_embedding == p.params_activated


def test_a_tied_head_is_read_and_computed_in_the_serving_step(llama_1b):
    # H800 (scalar DeepGEMM factors, tiles padded by the step model; H100's measured kernel
    # tables carry their own padding since issue 19, so its step pads no rows).
    r = serve(llama_1b, catalog.load_hardware("h800"), ServeConfig(gpus=1, batch_per_gpu=8))
    head = next(p for p in r.parts if p.name == "output head")
    # 128,256 × 2048 BF16 weights = 525,336,576 B, 2 × 262.7e6 × 64 padded rows FLOPs.
    assert head.bytes_moved == 128_256 * 2048 * 2
    assert head.flops == 2 * 128_256 * 2048 * 64
    assert head.time_s > 0
