"""KV cache: bytes one token adds to the cache, and the cache of a batch at a context length.

Ref: paper Table 1 (70.272 KB / 327.680 KB / 516.096 KB per token, BF16); DeepSeek-V2 report
(arXiv 2405.04434) Table 1 for the elements cached per token per layer:
MHA 2·n_h·d_h, GQA 2·n_g·d_h, MQA 2·d_h, MLA d_c + d_h^R.

Convention: every layer of the main model caches unless the spec's ``attention_layers`` says
otherwise (sliding windows keep W tokens, DSA layers add the indexer's key cache, linear layers
hold a fixed state: :func:`kv_cache_bytes_per_sequence`); the MTP module is not modelled; decimal
units (1 KB = 1000 bytes) as in the paper; the element size is the cache
dtype's (BF16 = 2 bytes, FP8 = 1 byte) with no scale-factor overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.calc.attention import (  # noqa: F401 (re-exported: the workload model's names)
    attention_kv_read_bytes_per_query,
    attention_kv_read_parts_per_query,
    group_state_bytes,
    indexer_cache_bytes_per_token,
)
from planner.calc.common import Input, argument_origin
from planner.specs.model import LinearLayers, MLAttention, Model, SparseLayers, WindowLayers
from planner.units import dtype_bytes

FORMULA = "kv_cache_bytes_per_token = L · e · b;  kv_cache_bytes = kv_cache_bytes_per_token · C · B"
REF = ("paper Table 1 (arXiv 2505.09343); DeepSeek-V2 report (arXiv 2405.04434) Table 1: "
       "e = 2·n_kv·d_h (MHA/GQA/MQA), d_c + d_h^R (MLA)")

#: K and V are cached separately in MHA, GQA and MQA.
KV_TENSORS = 2


def gqa_kv_elements_per_token_per_layer(*, num_kv_heads, head_dim):
    """Elements one token caches in one layer under MHA/GQA/MQA (count).

    Formula: 2 · n_kv · d_h (K and V of every KV head; MHA has n_kv = n_h, MQA n_kv = 1).
    Ref: V2R Table 1. Convention: no padding, no quantization scales.
    Example: Qwen2.5-72B, n_kv = 8, d_h = 128: 2 × 8 × 128 = 2,048 elements.
    """
    return KV_TENSORS * num_kv_heads * head_dim


def mla_kv_elements_per_token_per_layer(*, kv_lora_rank, qk_rope_head_dim):
    """Elements one token caches in one MLA layer (count).

    Formula: d_c + d_h^R (the compressed KV latent and the decoupled RoPE key, shared by all
    heads). Ref: V2R §2.1.2-2.1.3 and Table 1; paper Table 1.
    Convention: the latent is cached once per layer, whatever the number of heads.
    Example: DeepSeek-V3, d_c = 512, d_h^R = 64: 512 + 64 = 576 elements.
    """
    return kv_lora_rank + qk_rope_head_dim


def kv_cache_bytes_per_token(*, num_layers, elements_per_token_per_layer, bytes_per_element):
    """KV cache one token adds, all layers (bytes).

    Formula: L · e · b. Ref: paper Table 1.
    Convention: every layer caches; decimal KB in the paper's printing (70,272 B = 70.272 KB).
    Example: DeepSeek-V3 in BF16: L = 61, e = 576, b = 2 -> 61 × 576 × 2 = 70,272 bytes.
    """
    return num_layers * elements_per_token_per_layer * bytes_per_element


def kv_cache_bytes(*, bytes_per_token, context_tokens, batch):
    """KV cache of ``batch`` sequences of ``context_tokens`` tokens each (bytes).

    Formula: bytes_per_token · C · B. Ref: paper §2.1.
    Convention: no paging slack, no prefix sharing.
    Example: DeepSeek-V3 BF16, C = 4096, B = 1: 70,272 × 4,096 = 287,834,112 bytes (287.8 MB).
    """
    return bytes_per_token * context_tokens * batch


def model_kv_elements_per_token_per_layer(model: Model) -> int:
    """Elements one token caches in one layer of ``model`` (count).

    Formula: MLA d_c + d_h^R (:func:`mla_kv_elements_per_token_per_layer`); MHA/GQA/MQA
    2 · n_kv · d_h (:func:`gqa_kv_elements_per_token_per_layer`).
    Ref: V2R Table 1; paper Table 1.
    Convention: read from the model spec's attention block; no padding, no scales.
    Example: DeepSeek-V3 (MLA, d_c = 512, d_h^R = 64): 576; Qwen2.5-72B (GQA, n_kv = 8,
    d_h = 128): 2 × 8 × 128 = 2,048.
    """
    att = model.attention
    if isinstance(att, MLAttention):
        return mla_kv_elements_per_token_per_layer(
            kv_lora_rank=att.kv_lora_rank, qk_rope_head_dim=att.qk_rope_head_dim
        )
    return gqa_kv_elements_per_token_per_layer(num_kv_heads=att.num_kv_heads,
                                               head_dim=att.head_dim)


@dataclass(frozen=True)
class KVCacheResult:
    """KV cache of one model: per token, and for ``batch`` × ``context_tokens``."""

    model: str
    attention: str
    dtype: str
    elements_per_token_per_layer: int
    kv_cache_bytes_per_token: float
    context_tokens: int
    batch: int
    kv_cache_bytes: float
    inputs: tuple[Input, ...]
    multiplier_vs_first: float | None = None
    #: One sequence's cache at ``context_tokens`` (bytes); per token = this / C.
    kv_cache_bytes_per_sequence: float = 0.0
    #: The formula the figures follow (:data:`FORMULA`, or :data:`PATTERN_FORMULA` for a model
    #: with windowed, sparse or linear layers).
    formula: str = FORMULA
    #: True when some layer is not full attention (the figures depend on the context).
    patterned: bool = False


#: FlashMLA's FP8 KV cache ("FP8 with scale", deepseek-ai/FlashMLA README, "FP8 KV Cache"):
#: per token and layer, the 512 NoPE latent values as float8_e4m3 (1 B each), one float32 scale
#: per 128 of them (4 × 4 B) and the 64 RoPE values unquantized in bfloat16 (64 × 2 B):
#: 512 + 16 + 128 = 656 B, not 576.
FP8_KV_SCALE_TILE = 128
FP8_KV_SCALE_BYTES = 4
FP8_KV_ROPE_BYTES = 2
FP8_KV_LATENT_BYTES = 1


def mla_fp8_kv_bytes_per_token_per_layer(*, kv_lora_rank, qk_rope_head_dim):
    """FP8 MLA cache bytes of one token in one layer, in FlashMLA's layout (bytes).

    Formula: d_c × 1 + ⌈d_c / 128⌉ × 4 + d_R × 2: the latent in FP8, an FP32 scale per 128
    latent values, the RoPE key in BF16.
    Ref: deepseek-ai/FlashMLA README, "FP8 KV Cache" ("FP8 with scale": 656 bytes per token).
    Convention: the layout FlashMLA's FP8 kernels read; an engine with one per-tensor scale
    stores 576 B.
    Example: DeepSeek-V3, d_c = 512, d_R = 64: 512 + 4 × 4 + 64 × 2 = 656 B.
    """
    scales = -(-kv_lora_rank // FP8_KV_SCALE_TILE)
    return (kv_lora_rank * FP8_KV_LATENT_BYTES + scales * FP8_KV_SCALE_BYTES
            + qk_rope_head_dim * FP8_KV_ROPE_BYTES)


def model_kv_cache(model: Model, *, dtype: str = "bf16", context_tokens: int = 1,
                   batch: int = 1) -> KVCacheResult:
    """KV cache of ``model`` at cache ``dtype`` for ``batch`` sequences of ``context_tokens``.

    Formula: kv_cache_bytes_per_token = L · e · b; kv_cache_bytes = kv_cache_bytes_per_token · C
    · B (:data:`FORMULA`).
    Ref: paper Table 1; V2R Table 1.
    Convention: see the module docstring (every layer caches, no scale-factor overhead, except
    an FP8 MLA cache, stored in FlashMLA's layout with its scales and a BF16 RoPE key:
    :func:`mla_fp8_kv_bytes_per_token_per_layer`); the inputs name their origin (model spec field or ``argument <parameter>``).
    Example: DeepSeek-V3, BF16: L = 61 × e = 576 × b = 2 = 70,272 bytes per token (P: 70.272
    KB); at C = 4,096 tokens × B = 8 sequences: 70,272 × 4,096 × 8 = 2,302,672,896 bytes.
    """
    elements = model_kv_elements_per_token_per_layer(model)
    b = dtype_bytes(dtype)
    att = model.attention
    b_origin = f"cache dtype {dtype}"
    per_token = kv_cache_bytes_per_token(
        num_layers=model.num_layers, elements_per_token_per_layer=elements, bytes_per_element=b
    )
    if isinstance(att, MLAttention) and dtype == "fp8":
        # FlashMLA's FP8 layout: a token's latent with its scales and the BF16 RoPE key
        # (656 B a layer for DeepSeek-V3, 656 / 576 bytes per element).
        per_layer = mla_fp8_kv_bytes_per_token_per_layer(
            kv_lora_rank=att.kv_lora_rank, qk_rope_head_dim=att.qk_rope_head_dim)
        per_token = kv_cache_bytes_per_token(num_layers=model.num_layers,
                                             elements_per_token_per_layer=1,
                                             bytes_per_element=per_layer)
        b = per_layer / elements
        b_origin = (f"FlashMLA's FP8 layout: {per_layer:g} B a layer = d_c × 1 + ⌈d_c / 128⌉ × 4 "
                    "(FP32 scales) + d_h^R × 2 (BF16 RoPE key)")
    if isinstance(att, MLAttention):
        elem_origin = f"d_c {att.kv_lora_rank} + d_h^R {att.qk_rope_head_dim} (model spec)"
    else:
        elem_origin = f"2 × n_kv {att.num_kv_heads} × d_h {att.head_dim} (model spec)"
    if model.has_attention_pattern:
        return _pattern_kv_cache(model, dtype=dtype, context_tokens=context_tokens, batch=batch,
                                 elements=elements, b=b, b_origin=b_origin,
                                 elem_origin=elem_origin)
    return KVCacheResult(
        model=model.name or model.label,
        attention=att.kind,
        dtype=dtype,
        elements_per_token_per_layer=elements,
        kv_cache_bytes_per_token=per_token,
        context_tokens=context_tokens,
        batch=batch,
        kv_cache_bytes=kv_cache_bytes(bytes_per_token=per_token, context_tokens=context_tokens,
                                      batch=batch),
        kv_cache_bytes_per_sequence=per_token * context_tokens,
        inputs=(
            Input("L (layers)", model.num_layers, "count", "model spec num_layers"),
            Input("e (elements per token per layer)", elements, "count", elem_origin),
            Input("b (bytes per element)", b, "bytes", b_origin),
            Input("C (context tokens)", context_tokens, "tokens",
                  argument_origin("context_tokens")),
            Input("B (batch)", batch, "sequences", argument_origin("batch")),
        ),
    )


def _group_text(g) -> str:
    """What one layer group caches, in words (an input's origin)."""
    if isinstance(g, WindowLayers):
        return f"window W = {g.window} tokens"
    if isinstance(g, SparseLayers):
        i = indexer_cache_bytes_per_token(indexer_head_dim=g.indexer_head_dim)
        return f"DSA: top-k {g.top_k}, indexer keys i = {i} B a token"
    if isinstance(g, LinearLayers):
        return f"linear: state S = {group_state_bytes(g):,.0f} B a sequence ({g.state_dtype})"
    return "full attention: every token"


def _pattern_kv_cache(model: Model, *, dtype: str, context_tokens: int, batch: int,
                      elements: int, b: float, b_origin: str, elem_origin: str) -> KVCacheResult:
    """:func:`model_kv_cache` of a model whose layers are not all full attention."""
    parts = kv_cache_parts_per_sequence(model, context_tokens=context_tokens, kv_dtype=dtype)
    per_sequence = float(sum(parts.values()))
    inputs = [Input("e (elements per token per KV layer)", elements, "count", elem_origin),
              Input("b (bytes per element)", b, "bytes", b_origin)]
    for g in model.layer_groups:
        inputs.append(Input(f"L {g.kind} layers", g.count, "count",
                            f"model spec attention_layers ({_group_text(g)})"))
    inputs += [Input("C (context tokens)", context_tokens, "tokens",
                     argument_origin("context_tokens")),
               Input("B (batch)", batch, "sequences", argument_origin("batch"))]
    inputs += [Input(f"cache of the {k} layers, one sequence", float(v), "bytes",
                     "Σ over its layers") for k, v in parts.items() if float(v)]
    return KVCacheResult(
        model=model.name or model.label, attention=model.attention_label.lower(), dtype=dtype,
        elements_per_token_per_layer=elements,
        kv_cache_bytes_per_token=per_sequence / context_tokens,
        context_tokens=context_tokens, batch=batch, kv_cache_bytes=per_sequence * batch,
        inputs=tuple(inputs), kv_cache_bytes_per_sequence=per_sequence,
        formula=PATTERN_FORMULA, patterned=True)


def kv_cache_for_models(models: list[Model], *, dtype: str = "bf16", context_tokens: int = 1,
                        batch: int = 1) -> list[KVCacheResult]:
    """:func:`model_kv_cache` of each model, with its ratio to the first model's bytes per token.

    Formula: multiplier_i = kv_cache_bytes_per_token_i / kv_cache_bytes_per_token_0.
    Ref: paper Table 1 (the multipliers against DeepSeek-V3).
    Convention: the first model is the reference (its multiplier is 1).
    Example: DeepSeek-V3, Qwen2.5-72B, Llama-3.1-405B in BF16: 70,272, 327,680 and 516,096
    bytes per token; multipliers 1, 327,680 / 70,272 = 4.66x and 516,096 / 70,272 = 7.34x.
    """
    results = [model_kv_cache(m, dtype=dtype, context_tokens=context_tokens, batch=batch)
               for m in models]
    first = results[0].kv_cache_bytes_per_token if results else 1
    return [replace(r, multiplier_vs_first=r.kv_cache_bytes_per_token / first) for r in results]


# ------------------------------------------------------------- attention patterns per layer
#: Context at which listings print a per-token figure for models whose cache is not linear in the
#: context (windows, DSA indexers, linear states): the cache per sequence / this many tokens.
LISTING_CONTEXT_TOKENS = 4096

PATTERN_FORMULA = ("kv_cache_bytes_per_sequence = Σ_full L·e·b·C + Σ_window L·e·b·min(C, W) + "
                   "Σ_sparse L·(e·b + i)·C + Σ_linear L·S;  kv_cache_bytes_per_token = "
                   "per_sequence / C;  kv_cache_bytes = per_sequence · B")
PATTERN_REF = ("gpt-oss config.json (layer_types, sliding_window); DeepSeek-V3.2-Exp "
               "inference/model.py (indexer cache); Gated DeltaNet, Yang et al. arXiv 2412.06464 "
               "(state S ∈ R^{d_k × d_v} per head)")


def kv_bytes_per_token_per_layer(model: Model, *, kv_dtype: str) -> float:
    """Bytes one token caches in one KV-caching layer of ``model`` (bytes).

    Formula: e · b (MLA at FP8: FlashMLA's layout, :func:`mla_fp8_kv_bytes_per_token_per_layer`).
    Ref: V2R Table 1; FlashMLA README. Convention: no padding; FP8 MHA/GQA without scales.
    Example: gpt-oss-120b (GQA, n_kv = 8, d_h = 64) in BF16: 2 × 8 × 64 × 2 = 2,048 B.
    """
    att = model.attention
    if isinstance(att, MLAttention) and kv_dtype == "fp8":
        return float(mla_fp8_kv_bytes_per_token_per_layer(
            kv_lora_rank=att.kv_lora_rank, qk_rope_head_dim=att.qk_rope_head_dim))
    return model_kv_elements_per_token_per_layer(model) * dtype_bytes(kv_dtype)


def kv_cache_parts_per_sequence(model: Model, *, context_tokens, kv_dtype: str) -> dict:
    """The cache one sequence of ``context_tokens`` holds, by layer kind (bytes, arrays).

    Parts: full, sliding_window, sparse (the core's KV), indexer (DSA keys), linear_state.
    Formula: :data:`PATTERN_FORMULA` (each part one of its sums).
    Ref: :data:`PATTERN_REF`.
    Convention: context_tokens may be a numpy array (the parts broadcast with it); every
    sequence is whole on one GPU (divide by the TP split yourself).
    Example: gpt-oss-120b BF16 at C = 4,096: full 18 × 2,048 × 4,096 = 150,994,944; window
    18 × 2,048 × 128 = 4,718,592 B.
    """
    import numpy as np

    c = np.asarray(context_tokens, dtype=float)
    eb = kv_bytes_per_token_per_layer(model, kv_dtype=kv_dtype)
    parts = {k: np.zeros_like(c) for k in ("full", "sliding_window", "sparse", "indexer",
                                           "linear_state")}
    for g in model.layer_groups:
        if g.kind == "full":
            parts["full"] = parts["full"] + g.count * eb * c
        elif g.kind == "sliding_window":
            parts["sliding_window"] = parts["sliding_window"] + g.count * eb * np.minimum(
                c, g.window)
        elif g.kind == "sparse":
            parts["sparse"] = parts["sparse"] + g.count * eb * c
            parts["indexer"] = parts["indexer"] + g.count * c * indexer_cache_bytes_per_token(
                indexer_head_dim=g.indexer_head_dim)
        else:
            parts["linear_state"] = parts["linear_state"] + g.count * group_state_bytes(g)
    return parts


def kv_cache_bytes_per_sequence(model: Model, *, context_tokens, kv_dtype: str):
    """KV cache (and linear-attention state) of one sequence of ``context_tokens`` (bytes).

    Formula: :data:`PATTERN_FORMULA`: full layers L·e·b·C; sliding-window layers cap at W
    tokens; DSA layers cache every token plus the indexer's i bytes; linear layers hold a
    constant state S.
    Ref: :data:`PATTERN_REF`; paper Table 1 for the full layers.
    Convention: vectorized over ``context_tokens`` (numpy array in, array out); the whole
    model on one GPU; no paging slack.
    Example: gpt-oss-120b BF16 at C = 4,096: 18 × 2,048 × 4,096 + 18 × 2,048 × 128 =
    155,713,536 B (38,016 B per token; all-full counting: 73,728 B per token).
    """
    parts = kv_cache_parts_per_sequence(model, context_tokens=context_tokens, kv_dtype=kv_dtype)
    return sum(parts.values())


