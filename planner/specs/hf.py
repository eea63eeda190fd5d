"""Hugging Face ``config.json`` -> model spec (no network: a local file).

Supported architectures (``architectures[0]``, else ``model_type``): DeepseekV3 (and Kimi-K2,
which uses it), DeepseekV2, Qwen2 / Qwen2.5, Qwen3, Qwen3-MoE, Llama 3.x, Mistral, Mixtral and
gpt-oss. The spec is validated like a hand-written one. What the planner does not model is said
in the spec's ``notes`` (sliding-window attention is counted as full attention, so its KV cache is
an upper bound).
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


def _gpt_oss(c: _Config) -> tuple[dict, dict, dict]:
    ffn = {"kind": "moe", "num_routed_experts": c("num_local_experts"),
           "num_experts_per_token": c("num_experts_per_tok", alt=("experts_per_token",)),
           "expert_intermediate_size": c("intermediate_size")}
    return _gqa(c, bias_default=True), ffn, {}


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
}


def spec_from_hf_config(data: dict[str, Any], *, file: str, name: str) -> dict[str, Any]:
    """The model-spec mapping (as a YAML file would hold it) of a parsed config.json."""
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object at the top level", file=file)
    c = _Config(data, file)
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
    if c("sliding_window", None) and c.boolean("use_sliding_window", True):
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
