"""Hugging Face ``config.json`` -> model spec (no network: a local file).

Supported architectures (``architectures[0]``, else ``model_type``): DeepseekV3 (and Kimi-K2,
which uses it; Kimi-K2.5's text_config), DeepSeek-V3.2 and GLM-5 (DeepSeek Sparse Attention),
DeepseekV2, Qwen2 / Qwen2.5, Qwen2-MoE (Qwen1.5-MoE), Qwen3, Qwen3-MoE, Qwen3-Next and Qwen3.5-MoE
(Gated DeltaNet hybrids, from ``layer_types``), Llama 3.x, Mistral, Mixtral, MiniMax-M2 and
gpt-oss (sliding windows from ``layer_types``, attention sinks). A multimodal wrapper's
``text_config`` is read in place of the top level. The spec is validated like a hand-written one;
a layer kind the planner does not model is refused by name, never counted as another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from planner.errors import SpecError

#: Largest config.json read, in bytes.
MAX_CONFIG_BYTES = 1_000_000


class _Config:
    """Field access that names the missing field and the file."""

    def __init__(self, data: dict[str, Any], file: str) -> None:
        self.data, self.file = data, file

    def __call__(self, key: str, default: Any = ..., *, alt: tuple[str, ...] = ()) -> Any:
        for k in (key, *alt):
            if k in self.data and self.data[k] is not None:
                return self.data[k]
        if default is ...:
            raise SpecError(f"config.json field {key!r} is missing", file=self.file, field=key)
        return default

    def count(self, key: str, default: Any = ...) -> Any:
        """A whole number >= 1 that the converter computes with (``hidden_size // heads``):
        anything else is an error naming the field, before any arithmetic."""
        from planner.specs._types import MAX_SPEC_NUMBER

        value = self(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not \
                1 <= value <= MAX_SPEC_NUMBER:
            raise SpecError(f"config.json field {key!r} should be a whole number between 1 and "
                            f"{MAX_SPEC_NUMBER:.0e}, got {_short(value)}".replace("e+", "e"),
                            file=self.file, field=key)
        return value

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def boolean(self, key: str, default: bool) -> bool:
        """A true/false field: anything else is an error, never read as truthy."""
        value = self(key, default)
        if not isinstance(value, bool):
            raise SpecError(f"config.json field {key!r} should be true or false, got {value!r}",
                            file=self.file, field=key)
        return value

    def exactly(self, key: str, default: Any, expected: Any, what: str) -> None:
        """A field this converter supports only at one value (``moe_layer_freq: 1``)."""
        value = self(key, default)
        if type(value) is not type(expected) or value != expected:
            raise SpecError(f"{what} is not supported (config.json {key} = {value!r})",
                            file=self.file, field=key)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 4,000-digit number, a long list)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**limit else \
        f"a {len(str(abs(value)))}-digit number"
    return text if len(text) <= limit else text[:limit] + "..."


def _gqa(c: _Config, *, bias_default: bool) -> dict[str, Any]:
    heads = c.count("num_attention_heads")
    kv = c.count("num_key_value_heads", heads)
    head_dim = c.count("head_dim", None) or c.count("hidden_size") // heads
    kind = "mha" if kv == heads else ("mqa" if kv == 1 else "gqa")
    out = {"kind": kind, "num_heads": heads, "head_dim": head_dim}
    if kind == "gqa":
        out["num_kv_heads"] = kv
    if c.boolean("attention_bias", bias_default):
        out["qkv_bias"] = True
    return out


def _dense(c: _Config) -> dict[str, Any]:
    return {"kind": "dense", "intermediate_size": c("intermediate_size")}


def _deepseek(c: _Config) -> tuple[dict, dict, dict]:
    c.exactly("moe_layer_freq", 1, 1, "moe_layer_freq other than 1 (interleaved MoE layers)")
    attention = {"kind": "mla", "num_heads": c("num_attention_heads"),
                 "kv_lora_rank": c("kv_lora_rank"), "qk_nope_head_dim": c("qk_nope_head_dim"),
                 "qk_rope_head_dim": c("qk_rope_head_dim"), "v_head_dim": c("v_head_dim")}
    if c.has("q_lora_rank"):
        attention["q_lora_rank"] = c("q_lora_rank")
    dense_layers = c("first_k_dense_replace", 0)
    ffn = {"kind": "moe", "num_routed_experts": c("n_routed_experts"),
           "num_experts_per_token": c("num_experts_per_tok"),
           "expert_intermediate_size": c("moe_intermediate_size"),
           "num_shared_experts": c("n_shared_experts", 0), "num_dense_layers": dense_layers,
           "num_expert_groups": c("n_group", 1), "num_limited_groups": c("topk_group", 1)}
    if dense_layers:
        ffn["dense_intermediate_size"] = c("intermediate_size")
    return attention, ffn, {"mtp_depth": c("num_nextn_predict_layers", 0)}


def _qwen2(c: _Config) -> tuple[dict, dict, dict]:
    return _gqa(c, bias_default=True), _dense(c), {}      # Qwen2 projects Q, K, V with a bias


def _qwen3(c: _Config) -> tuple[dict, dict, dict]:
    return _gqa(c, bias_default=False), _dense(c), {}


def _qwen3_moe(c: _Config) -> tuple[dict, dict, dict]:
    c.exactly("decoder_sparse_step", 1, 1, "dense layers between MoE layers")
    c.exactly("mlp_only_layers", [], [], "dense layers between MoE layers")
    ffn = {"kind": "moe", "num_routed_experts": c("num_experts"),
           "num_experts_per_token": c("num_experts_per_tok"),
           "expert_intermediate_size": c("moe_intermediate_size")}
    return _gqa(c, bias_default=False), ffn, {}


def _llama(c: _Config) -> tuple[dict, dict, dict]:
    return _gqa(c, bias_default=False), _dense(c), {}


def _mixtral(c: _Config) -> tuple[dict, dict, dict]:
    ffn = {"kind": "moe", "num_routed_experts": c("num_local_experts"),
           "num_experts_per_token": c("num_experts_per_tok"),
           "expert_intermediate_size": c("intermediate_size")}
    return _gqa(c, bias_default=False), ffn, {}


def _layer_counts(c: _Config, known: dict[str, str]) -> dict[str, int]:
    """Layers of each planner kind from config.json's ``layer_types`` (one entry a layer);
    a type not in ``known`` is refused by name."""
    types = c("layer_types")
    layers = c.count("num_hidden_layers")
    if not isinstance(types, list) or len(types) != layers:
        raise SpecError(f"layer_types should list one type for each of the {layers} layers",
                        file=c.file, field="layer_types")
    counts: dict[str, int] = {}
    for t in types:
        if not isinstance(t, str) or t not in known:
            raise SpecError(f"layer type {_short(t)} is not supported (supported: "
                            f"{', '.join(known)})", file=c.file, field="layer_types")
        counts[known[t]] = counts.get(known[t], 0) + 1
    return counts


def _gpt_oss(c: _Config) -> tuple[dict, dict, dict]:
    ffn = {"kind": "moe", "num_routed_experts": c("num_local_experts"),
           "num_experts_per_token": c("num_experts_per_tok", alt=("experts_per_token",)),
           "expert_intermediate_size": c("intermediate_size")}
    attention = {**_gqa(c, bias_default=True), "sinks": True}   # every gpt-oss layer has sinks
    extra: dict[str, Any] = {}
    if c.has("layer_types"):
        counts = _layer_counts(c, {"sliding_attention": "sliding_window",
                                   "full_attention": "full"})
        groups: list[dict[str, Any]] = []
        if counts.get("sliding_window"):
            groups.append({"kind": "sliding_window", "count": counts["sliding_window"],
                           "window": c.count("sliding_window")})
        if counts.get("full"):
            groups.append({"kind": "full", "count": counts["full"]})
        extra["attention_layers"] = groups
    return attention, ffn, extra


def _dsa(c: _Config) -> tuple[dict, dict, dict]:
    """DeepSeek-V3.2 and GLM-5: DeepSeek-V3's layout with a lightning indexer in every layer."""
    types = c("indexer_types", None)
    if types is not None:
        if isinstance(types, list) and "shared" in types:
            raise SpecError("shared indexers (indexer_types 'shared', IndexShare) are not "
                            "supported", file=c.file, field="indexer_types")
        if not isinstance(types, list) or len(types) != c.count("num_hidden_layers") or \
                any(t != "full" for t in types):
            raise SpecError("indexer_types should list 'full' for each layer",
                            file=c.file, field="indexer_types")
    attention, ffn, extra = _deepseek(c)
    extra["attention_layers"] = [{
        "kind": "sparse", "count": c.count("num_hidden_layers"), "top_k": c.count("index_topk"),
        "indexer_num_heads": c.count("index_n_heads"),
        "indexer_head_dim": c.count("index_head_dim")}]
    return attention, ffn, extra


_SSM_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _qwen_next(c: _Config) -> tuple[dict, dict, dict]:
    """Qwen3-Next and Qwen3.5-MoE: gated full attention and Gated DeltaNet layers, MoE with one
    shared expert in every layer."""
    c.exactly("decoder_sparse_step", 1, 1, "dense layers between MoE layers")
    c.exactly("mlp_only_layers", [], [], "dense layers between MoE layers")
    attention = _gqa(c, bias_default=False)
    if c.boolean("attn_output_gate", True):
        attention["output_gate"] = True
    if c.has("layer_types"):
        counts = _layer_counts(c, {"linear_attention": "linear", "full_attention": "full"})
    else:
        every, layers = c.count("full_attention_interval"), c.count("num_hidden_layers")
        counts = {"full": layers // every, "linear": layers - layers // every}
    dtype = c("mamba_ssm_dtype", "float32")
    if not isinstance(dtype, str) or dtype not in _SSM_DTYPES:
        raise SpecError(f"mamba_ssm_dtype {_short(dtype)} is not supported (supported: "
                        f"{', '.join(_SSM_DTYPES)})", file=c.file, field="mamba_ssm_dtype")
    groups: list[dict[str, Any]] = []
    if counts.get("full"):
        groups.append({"kind": "full", "count": counts["full"]})
    if counts.get("linear"):
        groups.append({"kind": "linear", "count": counts["linear"],
                       "num_key_heads": c.count("linear_num_key_heads"),
                       "num_value_heads": c.count("linear_num_value_heads"),
                       "key_head_dim": c.count("linear_key_head_dim"),
                       "value_head_dim": c.count("linear_value_head_dim"),
                       "conv_kernel": c.count("linear_conv_kernel_dim", 4),
                       "state_dtype": _SSM_DTYPES[dtype]})
    ffn = _qwen_moe_ffn(c)
    return attention, ffn, {"attention_layers": groups,
                            "mtp_depth": c("mtp_num_hidden_layers", 0)}


def _qwen_moe_ffn(c: _Config) -> dict[str, Any]:
    ffn = {"kind": "moe", "num_routed_experts": c("num_experts"),
           "num_experts_per_token": c("num_experts_per_tok"),
           "expert_intermediate_size": c("moe_intermediate_size")}
    shared = c("shared_expert_intermediate_size", 0)
    if shared:
        ffn.update(num_shared_experts=1, shared_expert_intermediate_size=shared)
    return ffn


def _qwen2_moe(c: _Config) -> tuple[dict, dict, dict]:
    c.exactly("decoder_sparse_step", 1, 1, "dense layers between MoE layers")
    c.exactly("mlp_only_layers", [], [], "dense layers between MoE layers")
    return _gqa(c, bias_default=True), _qwen_moe_ffn(c), {}


def _minimax_m2(c: _Config) -> tuple[dict, dict, dict]:
    types = c("attn_type_list", None)
    if types is not None:
        if isinstance(types, list) and 0 in types and not any(t is False for t in types):
            raise SpecError("lightning (linear) attention layers (attn_type_list 0) are not "
                            "supported", file=c.file, field="attn_type_list")
        if not isinstance(types, list) or len(types) != c.count("num_hidden_layers") or \
                any(type(t) is not int or t != 1 for t in types):
            raise SpecError("attn_type_list should list 1 (softmax attention) for each layer",
                            file=c.file, field="attn_type_list")
    return _mixtral(c)


#: architecture (or model_type) -> converter.
ARCHITECTURES: dict[str, Callable[[_Config], tuple[dict, dict, dict]]] = {
    "DeepseekV3ForCausalLM": _deepseek, "deepseek_v3": _deepseek, "kimi_k2": _deepseek,
    "DeepseekV2ForCausalLM": _deepseek, "deepseek_v2": _deepseek,
    "Qwen2ForCausalLM": _qwen2, "qwen2": _qwen2,
    "Qwen3ForCausalLM": _qwen3, "qwen3": _qwen3,
    "Qwen3MoeForCausalLM": _qwen3_moe, "qwen3_moe": _qwen3_moe,
    "LlamaForCausalLM": _llama, "llama": _llama,
    "MistralForCausalLM": _llama, "mistral": _llama,
    "MixtralForCausalLM": _mixtral, "mixtral": _mixtral,
    "GptOssForCausalLM": _gpt_oss, "gpt_oss": _gpt_oss,
    "DeepseekV32ForCausalLM": _dsa, "deepseek_v32": _dsa,
    "GlmMoeDsaForCausalLM": _dsa, "glm_moe_dsa": _dsa,
    "Qwen2MoeForCausalLM": _qwen2_moe, "qwen2_moe": _qwen2_moe,
    "Qwen3NextForCausalLM": _qwen_next, "qwen3_next": _qwen_next,
    "Qwen3_5MoeForConditionalGeneration": _qwen_next, "Qwen3_5MoeForCausalLM": _qwen_next,
    "qwen3_5_moe": _qwen_next, "qwen3_5_moe_text": _qwen_next,
    "MiniMaxM2ForCausalLM": _minimax_m2, "minimax_m2": _minimax_m2,
    "KimiK25ForConditionalGeneration": _deepseek, "kimi_k25": _deepseek,
}


def spec_from_hf_config(data: dict[str, Any], *, file: str, name: str) -> dict[str, Any]:
    """The model-spec mapping (as a YAML file would hold it) of a parsed config.json."""
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object at the top level", file=file)
    text = data.get("text_config")
    # A multimodal wrapper (Qwen3.5, Kimi-K2.5) keeps the language model's fields in text_config.
    if text is not None and not (isinstance(text, dict) and "hidden_size" in text):
        raise SpecError("text_config should be an object with the language model's fields "
                        "(hidden_size, num_hidden_layers, ...)", file=file, field="text_config")
    c = _Config({**data, **text} if text is not None else data, file)
    archs = data.get("architectures") or []
    arch = next((a for a in archs if isinstance(a, str) and a in ARCHITECTURES), None) \
        if isinstance(archs, list) else None
    model_type = data.get("model_type")
    key = arch or (model_type if isinstance(model_type, str) and model_type in ARCHITECTURES
                   else None)
    if key is None:
        got = archs[0] if isinstance(archs, list) and archs else model_type
        supported = sorted({k for k in ARCHITECTURES if k[0].isupper()})
        raise SpecError(f"unsupported architecture {_short(got)}; supported: "
                        f"{', '.join(supported)}", file=file, field="architectures")
    attention, ffn, extra = ARCHITECTURES[key](c)
    notes = []
    if "attention_layers" not in extra and c("sliding_window", None) and \
            c.boolean("use_sliding_window", True):
        notes.append(f"sliding_window {c('sliding_window')} is not modelled: every layer is "
                     "counted with full attention (KV cache and attention FLOPs are upper "
                     "bounds)")
    spec = {
        "name": name,
        "source": f"converted by `planner import-hf` from {Path(file).name} (architecture {key})",
        "num_layers": c("num_hidden_layers"),
        "hidden_size": c("hidden_size"),
        "vocab_size": c("vocab_size"),
        "tie_word_embeddings": c.boolean("tie_word_embeddings", False),
        "attention": attention,
        "ffn": ffn,
        **extra,
    }
    if notes:
        spec["notes"] = "; ".join(notes)
    return spec


def read_hf_config(path: str | Path) -> tuple[dict[str, Any], str]:
    """The parsed config.json at ``path`` and its file name, or a one-line SpecError."""
    from planner.specs.load import read_text_file

    p = Path(path)
    where = str(p)
    text, _ = read_text_file(p, limit=MAX_CONFIG_BYTES, what="a config.json file")
    try:
        return json.loads(text), where
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                        file=where, line=exc.lineno) from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply", file=where) from None
    except ValueError as exc:   # an integer of more digits than Python converts (4,300)
        raise SpecError(f"invalid JSON: {' '.join(str(exc).split(':')[0].split())}",
                        file=where) from None


def hf_model_name(path: str | Path) -> str:
    """A model name for a config.json: its folder's name (``DeepSeek-V3/config.json`` ->
    ``deepseek-v3``), or the file stem when the folder says nothing."""
    p = Path(path)
    stem = p.stem if p.stem != "config" else (p.parent.name or "model")
    return stem.lower() or "model"


def load_hf_model(path: str | Path, *, name: str | None = None):
    """A validated :class:`~planner.specs.model.Model` from a config.json."""
    from planner.specs.load import validate
    from planner.specs.model import Model

    data, where = read_hf_config(path)
    spec = spec_from_hf_config(data, file=where, name=name or hf_model_name(path))
    return validate(Model, spec, file=where)


def hf_config_to_yaml(path: str | Path, *, name: str | None = None) -> str:
    """The model spec of a config.json as YAML text (validated first)."""
    import yaml

    data, where = read_hf_config(path)
    spec = spec_from_hf_config(data, file=where, name=name or hf_model_name(path))
    from planner.specs.load import validate
    from planner.specs.model import Model

    validate(Model, spec, file=where)
    header = (f"# Model spec converted from {where} by `planner import-hf`.\n"
              "# Check it against the model card; add display_name and a fuller source.\n")
    return header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
