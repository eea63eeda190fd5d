"""Attention layers that are not full attention: the DSA indexer's key cache, the linear layers'
state, and the bytes one decode query reads from a sequence's cache.

Ref: DeepSeek-V3.2-Exp report and inference/model.py (DeepSeek Sparse Attention: a lightning
indexer scans every cached key, the core reads the top-k); Yang et al., Gated Delta Networks
(arXiv 2412.06464); gpt-oss config.json (sliding windows).

Convention: one sequence, all layers, the whole model on one GPU (callers divide by the TP
split); vectorized over the context (numpy arrays in, arrays out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.specs.model import HeadAttention, LinearLayers, Model
from planner.units import US, dtype_bytes

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.kernel_times import TimeGrid

#: DeepSeek Sparse Attention's indexer key cache: per token and layer, the index key in FP8
#: (1 B a value) with one FP32 scale per 128 values, whatever the KV cache dtype
#: (DeepSeek-V3.2-Exp inference/model.py: ``index_k_cache`` float8_e4m3 + ``index_k_scale_cache``
#: float32 per block of 128; vLLM's indexer cache: head_dim + head_dim // 128 × 4 = 132 B).
INDEXER_KEY_BYTES = 1
INDEXER_SCALE_TILE = 128
INDEXER_SCALE_BYTES = 4
#: Gated DeltaNet's causal-convolution state is kept in the activations' dtype (BF16).
CONV_STATE_BYTES = 2
#: A linear layer reads its state and writes it back once per decode token.
STATE_READ_WRITE = 2

def indexer_cache_bytes_per_token(*, indexer_head_dim):
    """Bytes the DSA lightning indexer caches per token in one layer (bytes).

    Formula: d_I × 1 + ⌈d_I / 128⌉ × 4 (FP8 key, FP32 scale per 128 values).
    Ref: DeepSeek-V3.2-Exp inference/model.py (index_k_cache, index_k_scale_cache).
    Convention: FP8 whatever the main cache's dtype; one key per token (shared by the heads).
    Example: DeepSeek-V3.2, d_I = 128: 128 + 4 = 132 B.
    """
    return (indexer_head_dim * INDEXER_KEY_BYTES
            + -(-indexer_head_dim // INDEXER_SCALE_TILE) * INDEXER_SCALE_BYTES)


def linear_state_bytes_per_sequence_per_layer(*, num_key_heads, num_value_heads, key_head_dim,
                                              value_head_dim, conv_kernel, state_bytes):
    """Bytes of one sequence's state in one Gated DeltaNet layer (bytes), whatever its length.

    Formula: h_v·d_k·d_v·b_S (the recurrent state) + (K − 1)·(2·h_k·d_k + h_v·d_v)·2 (the
    causal convolution's last K − 1 inputs of q, k and v, in BF16).
    Ref: Yang et al., Gated Delta Networks (arXiv 2412.06464) §2-3; the Qwen3-Next
    modeling code (conv1d over the concatenated q, k, v; recurrent state per value head).
    Convention: the state dtype is the spec's ``state_dtype``; no padding.
    Example: Qwen3.5-397B-A17B, h_k = 16, h_v = 64, d_k = d_v = 128, K = 4, FP32 state:
    64·128·128·4 = 4,194,304 + 3·(4,096 + 8,192)·2 = 73,728 -> 4,268,032 B.
    """
    conv_dim = 2 * num_key_heads * key_head_dim + num_value_heads * value_head_dim
    return (num_value_heads * key_head_dim * value_head_dim * state_bytes
            + (conv_kernel - 1) * conv_dim * CONV_STATE_BYTES)


def group_state_bytes(group: LinearLayers) -> float:
    """State bytes of one sequence in one layer of a linear-attention ``group`` (bytes).

    Formula: :func:`linear_state_bytes_per_sequence_per_layer` of the group's fields.
    Ref: arXiv 2412.06464. Convention: the state at the group's ``state_dtype``.
    Example: Qwen3.5-397B-A17B's linear layers: 4,268,032 B.
    """
    return linear_state_bytes_per_sequence_per_layer(
        num_key_heads=group.num_key_heads, num_value_heads=group.num_value_heads,
        key_head_dim=group.key_head_dim, value_head_dim=group.value_head_dim,
        conv_kernel=group.conv_kernel, state_bytes=dtype_bytes(group.state_dtype))


def attention_kv_read_parts_per_query(model: Model, *, context_tokens, kv_dtype: str) -> dict:
    """Bytes one decode query reads from the cache, by layer kind (bytes, arrays).

    Parts: full, sliding_window, sparse (top-k of the core's KV), indexer (its scan of every
    cached key), linear_state (read and written back).
    Formula: full L·e·b·C; window L·e·b·min(C, W); sparse L·e·b·min(C, k) + L·i·C; linear
    2·L·S.
    Ref: DeepSeek-V3.2-Exp report (the indexer scans all tokens, the core reads top-k);
    FlashMLA sparse decode kernels; Gated DeltaNet recurrence (arXiv 2412.06464).
    Convention: each cached byte read once per query (no reuse across queries of a batch).
    Example: DeepSeek-V3.2 FP8 at C = 131,072: core 61 × 656 × 2,048 = 81,952,768 B;
    indexer 61 × 132 × 131,072 = 1,055,391,744 B.
    """
    import numpy as np

    from planner.calc.kv_cache import kv_bytes_per_token_per_layer, kv_cache_parts_per_sequence

    c = np.asarray(context_tokens, dtype=float)
    eb = kv_bytes_per_token_per_layer(model, kv_dtype=kv_dtype)
    parts = kv_cache_parts_per_sequence(model, context_tokens=c, kv_dtype=kv_dtype)
    sparse = np.zeros_like(c)
    for g in model.layer_groups:
        if g.kind == "sparse":
            sparse = sparse + g.count * eb * np.minimum(c, g.top_k)
    parts["sparse"] = sparse
    parts["linear_state"] = STATE_READ_WRITE * parts["linear_state"]
    return parts


def attention_kv_read_bytes_per_query(model: Model, *, context_tokens, kv_dtype: str):
    """Bytes one decode query reads from its sequence's cache, all layers (bytes).

    Formula: the sum of :func:`attention_kv_read_parts_per_query`: full L·e·b·C; window
    L·e·b·min(C, W); DSA L·(e·b·min(C, k) + i·C); linear 2·L·S (state read and written).
    Ref: see :func:`attention_kv_read_parts_per_query`.
    Convention: vectorized over ``context_tokens``; for an all-full model it equals
    :func:`~planner.calc.kv_cache.kv_cache_bytes_per_sequence`.
    Example: gpt-oss-120b BF16 at C = 4,096: 150,994,944 + 4,718,592 = 155,713,536 B.
    """
    return sum(attention_kv_read_parts_per_query(model, context_tokens=context_tokens,
                                                 kv_dtype=kv_dtype).values())


def kv_bytes_per_sequence_per_gpu(model: Model, *, kv_dtype: str = "bf16", tp: int = 1,
                                  context_tokens) -> float:
    """KV cache (and linear-attention state) one sequence of ``context_tokens`` keeps on one GPU
    of its TP group (bytes).

    Formula: all-full models C · kv_GPU (:func:`~planner.calc.memory.kv_bytes_per_token_per_gpu`); otherwise the
    parts of :func:`~planner.calc.kv_cache.kv_cache_parts_per_sequence` (windows cap at W, DSA
    indexer keys, linear states), the KV parts split as TP splits the KV heads (MLA's latent and
    the indexer keys whole on every GPU), the linear state by min(TP, h_v).
    Ref: :mod:`planner.calc.kv_cache`; P §2.1.2.
    Convention: the indexer's keys, like MLA's latent, are not split by heads.
    Example: Qwen3.5-397B-A17B BF16 at TP 8, C = 32,768: 15 × 2,048 × 32,768 / 2 (2 KV heads)
    + 192,061,440 / 8 = 527,347,200 B.
    """
    from planner.calc.kv_cache import kv_cache_parts_per_sequence
    from planner.calc.memory import kv_bytes_per_token_per_gpu

    if not model.has_attention_pattern:
        return context_tokens * kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=tp)

    parts = kv_cache_parts_per_sequence(model, context_tokens=context_tokens, kv_dtype=kv_dtype)
    att = model.attention
    kv_split = min(tp, att.num_kv_heads or 1) if isinstance(att, HeadAttention) else 1
    heads = min((g.num_value_heads for g in model.layer_groups if isinstance(g, LinearLayers)),
                default=1)
    return float((parts["full"] + parts["sliding_window"] + parts["sparse"]) / kv_split
                 + parts["indexer"] + parts["linear_state"] / min(tp, heads))


def time_grid_s(grid: TimeGrid, *, batch: Any, context_tokens: Any) -> Any:
    """A measured per-layer time read off ``grid`` at ``batch`` and ``context_tokens`` (s);
    scalars or arrays broadcast together.

    Formula: linear in log C along each of the grid's batch rows, then linear in log B between
    the two rows around B; constant past the ends (B, C below 1 read as 1).
    Ref: :class:`~planner.specs.kernel_times.TimeGrid`.
    Convention: the loop runs over the grid's rows (a few), never over configurations.
    Example: GB200's ``dsa_indexer_decode`` at B = 8: C = 8,192 -> 72.2 µs; C = 2,048 ->
    48.6 µs (halfway in log C between 30.4 and 66.8); B = 12, C = 8,192 -> 74.1 µs.
    """
    import numpy as np

    b = np.log(np.maximum(np.asarray(batch, dtype=float), 1.0))
    c = np.log(np.maximum(np.asarray(context_tokens, dtype=float), 1.0))
    b, c = np.broadcast_arrays(b, c)
    rows = np.stack([np.interp(c, np.log(grid.context), row) for row in grid.latency_us])
    lb = np.log(grid.batch)
    hi = np.clip(np.searchsorted(lb, b), 1, len(lb) - 1) if len(lb) > 1 else np.zeros_like(b, int)
    lo = np.maximum(hi - 1, 0)
    span = np.where(hi > lo, lb[hi] - lb[lo], 1.0)
    w = np.clip((b - lb[lo]) / span, 0.0, 1.0)
    at = np.take_along_axis(rows, lo[None], 0)[0] * (1 - w) + np.take_along_axis(
        rows, hi[None], 0)[0] * w
    return at * US


def dsa_indexer_decode_s(model: Model, hardware: Hardware, *, seqs: Any,
                         context_tokens: Any) -> Any:
    """Time DeepSeek Sparse Attention's lightning indexer adds to one decode pass on one GPU,
    over all the model's DSA layers (s); scalars or arrays.

    Formula: Σ_sparse L · t(B, C), t the spec's measured ``dsa_indexer_decode`` per layer
    (:func:`time_grid_s`), B = ``seqs`` (the query rows whose attention the GPU computes),
    C = ``context_tokens``; 0 without sparse layers, without the table, or at B = 0.
    Ref: AIConfigurator's GB200 TensorRT-LLM tables (DeepSeek-V3.2's DSA generation module minus
    DeepSeek-V3's MLA module at min(C, top-k); ``benchmarks/extract_aic_dsa.py``);
    DeepSeek-V3.2-Exp report (the indexer scores every cached token, the core reads top-k).
    Convention: the table measures DeepSeek-V3.2's indexer (64 heads of 128, top-k 2,048) and
    is read for any DSA model (GLM-5: 32 heads of 128, top-k 2,048): its time is mostly fixed
    kernels and the one FP8 key per token, not the heads. Every GPU of an attention-TP group
    runs the indexer on all the group's sequences (its projections are not split by heads). The
    attention core's roofline keeps the indexer's logit FLOPs (under 1 µs a layer here).
    Example: GLM-5 (78 DSA layers) on GB200, B = 8, C = 8,192: 78 × 72.2 µs = 5.632 ms;
    DeepSeek-V3 (no DSA layer) -> 0.
    """
    import numpy as np

    seqs = np.asarray(seqs, dtype=float)
    layers = model.num_sparse_layers
    grid = hardware.dsa_indexer_decode
    if not layers or grid is None:
        return 0.0 * seqs * np.asarray(context_tokens, dtype=float)
    per_layer = time_grid_s(grid, batch=seqs, context_tokens=context_tokens)
    return np.where(seqs > 0, layers * per_layer, 0.0)


def dsa_indexer_prefill_s(model: Model, hardware: Hardware, *, prefill_tokens: Any,
                          prompt_tokens: Any) -> Any:
    """Time DeepSeek Sparse Attention's lightning indexer adds to one prefill pass on one GPU,
    over all the model's DSA layers (s), for ``prefill_tokens`` of prompts of ``prompt_tokens``;
    scalars or arrays.

    Formula: Σ_sparse L · t(max(B, 1), S) · min(B, 1), B = n / S prompts (n = prefill_tokens,
    S = prompt_tokens), t the spec's measured ``dsa_indexer_prefill`` per layer
    (:func:`time_grid_s`); a chunk of under one prompt pays its share of one prompt's time; 0
    without sparse layers, without the table, or at n = 0.
    Ref: AIConfigurator's GB200 TensorRT-LLM tables (DeepSeek-V3.2's DSA context module minus
    DeepSeek-V3's MLA context module over the same tokens at most top-k positions apart;
    ``benchmarks/extract_aic_dsa.py``, its prefill grid); DeepSeek-V3.2-Exp report (the indexer is
    O(S²) with few heads).
    Convention: as :func:`dsa_indexer_decode_s` (DeepSeek-V3.2's indexer read for any DSA model;
    every GPU of an attention-TP group runs it on all the group's prompts).
    Example: GLM-5 on GB200, one 8,192-token prompt: 78 × 2,604.2 µs = 203.1 ms; half of it
    (4,096 tokens of the prompt) -> 101.6 ms.
    """
    import numpy as np

    n = np.asarray(prefill_tokens, dtype=float)
    s = np.maximum(np.asarray(prompt_tokens, dtype=float), 1.0)
    layers = model.num_sparse_layers
    grid = hardware.dsa_indexer_prefill
    if not layers or grid is None:
        return 0.0 * n * s
    prompts = n / s
    per_layer = time_grid_s(grid, batch=np.maximum(prompts, 1.0), context_tokens=s)
    return np.where(n > 0, layers * per_layer * np.minimum(prompts, 1.0), 0.0)
