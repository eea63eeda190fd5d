"""FLOPs per token: forward, and training (forward + backward), at a sequence length.

Ref: P Table 2 (arXiv 2505.09343 §2.2.1: 155 / 250 / 394 / 2448 GFLOP per token at s = 4096),
which states no formula; two conventions reproduce its rows, each within 0.2% (reconstructed here;
the printed rows are in validation/paper.yaml):

- ``exact-causal`` (the planner's default; reproduces P's MoE rows): every activated matmul
  parameter costs 2 FLOPs forward, plus causal attention over an average context of s/2.
- ``exact-full``: the same with full (non-causal) attention over s (the convention of P Table 4's
  432 TFLOPS).
- ``approx-12ld2`` (reproduces P's dense rows): the classic 12·L·d² + V·d parameter estimate with no
  attention term (Kaplan et al., arXiv 2001.08361 §2.1).

Convention: a multiply-accumulate is 2 FLOPs; backward costs twice forward, so training is 3×
forward; embedding lookups, norms, softmax and activations are not counted; dense FLOPs (no
sparsity).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.calc.common import Input, Parts, argument_origin
from planner.calc.params import model_params
from planner.errors import UsageError
from planner.specs.model import Model

FLOPS_PER_MAC = 2
#: forward + backward (input gradients + weight gradients) = 3 × forward.
FWD_BWD_FACTOR = 3
#: Average fraction of the sequence a causal token attends to (s/2, as the paper counts it).
CAUSAL_CONTEXT_FRAC = 0.5
#: Gated DeltaNet's recurrence per token and value head: S·k, the rank-one update and S·q, three
#: d_k × d_v matrix-vector products (Yang et al., arXiv 2412.06464 eq. 10; decay not counted).
LINEAR_STATE_MATVECS = 3
#: 12·d² parameters per layer: 4·d² attention (Q, K, V, O) + 8·d² MLP (two d × 4d matrices).
APPROX_PARAMS_PER_LAYER_PER_D2 = 12

FORMULA = {
    "exact-causal": "forward = 2·N + 2·L·(s/2)·n_h·(d_qk + d_v);  train = 3 · forward",
    "exact-full": "forward = 2·N + 2·L·s·n_h·(d_qk + d_v);  train = 3 · forward",
    "approx-12ld2": "forward = 2·(12·L·d² + V·d);  train = 3 · forward",
}
REF = ("paper Table 2 (arXiv 2505.09343 §2.2.1), whose MoE rows exact-causal and dense rows "
       "approx-12ld2 reproduce; Kaplan et al. arXiv 2001.08361 §2.1")

CONVENTIONS: dict[str, str] = {
    "exact-causal": "2 FLOPs per activated matmul parameter + causal attention (average context "
                    "s/2); paper Table 2 MoE rows (convention A)",
    "exact-full": "2 FLOPs per activated matmul parameter + full attention over s (non-causal); "
                  "paper Table 4's 432 TFLOPS convention",
    "approx-12ld2": "2·(12·L·d² + V·d), no attention term; paper Table 2 dense rows "
                    "(convention B, Kaplan et al.)",
}


def attention_score_flops_per_token(*, num_layers, context_tokens, num_heads, qk_head_dim,
                                    v_head_dim):
    """Forward FLOPs of the attention scores and weighted values, one token, all layers.

    Formula: 2 · L · c · n_h · (d_qk + d_v) (QKᵀ then AV, c = context positions attended).
    Ref: paper.md §2 convention (A); Megatron-LM (Narayanan et al., arXiv 2104.04473) §5.1.
    Convention: causal attention passes c = s/2, full attention c = s.
    Example: DeepSeek-V3 causal at s = 4096: 2 × 61 × 2048 × 128 × (192 + 128) = 10.234e9
    (× 3 for training = 30.70e9).
    """
    return FLOPS_PER_MAC * num_layers * context_tokens * num_heads * (qk_head_dim + v_head_dim)


def matmul_flops_per_token(*, params):
    """Forward FLOPs of multiplying one token by ``params`` weights (FLOPs).

    Formula: 2 · N. Ref: Kaplan et al. (arXiv 2001.08361) §2.1.
    Convention: 1 multiply-accumulate = 2 FLOPs; dense (no sparsity).
    Example: DeepSeek-V3, N = 36.625e9 activated matmul parameters: 2 × 36.625e9 = 73.25e9 FLOPs.
    """
    return FLOPS_PER_MAC * params


def train_flops_per_token(*, forward_flops_per_token):
    """Training FLOPs per token (FLOPs).

    Formula: 3 · forward (backward = 2 × forward). Ref: Kaplan et al. §2.1; paper Table 2.
    Convention: no activation recomputation counted.
    Example: DeepSeek-V3 at s = 4096: 3 × 83.48e9 forward = 250.45e9 training FLOPs.
    """
    return FWD_BWD_FACTOR * forward_flops_per_token


def causal_mean_context(*, seq_len, window):
    """Average number of positions a causal token attends to when it sees at most ``window``
    (tokens; arrays broadcast).

    Formula: s/2 for s ≤ W, else W − W²/(2s) (the mean of min(i, W) over i ∈ (0, s]).
    Ref: arithmetic; s/2 is P Table 2's causal convention.
    Convention: continuous positions (s/2, not (s + 1)/2, as the paper counts).
    Example: gpt-oss window W = 128 at s = 4,096: 128 − 128² / 8,192 = 126 positions.
    """
    import numpy as np

    s = np.asarray(seq_len, dtype=float)
    w = np.asarray(window, dtype=float)
    return np.where(s <= w, s * CAUSAL_CONTEXT_FRAC, w - w * w / (2 * np.maximum(s, 1)))


def attention_core_flops_per_position(model: Model, *, absorbed: bool = True) -> int:
    """FLOPs of the attention core per query, head and attended position (FLOPs / n_h).

    Formula: 2·(d_qk + d_v); MLA absorbed (decode, FlashMLA) 2·(d_c + d_R + d_c).
    Ref: FlashMLA benchmark (h_q·(576 + 512)·2 per position); V2R §2.1.
    Convention: softmax and RoPE not counted.
    Example: DeepSeek-V3 absorbed: 2 × 1,088 = 2,176; expanded 2 × 320 = 640.
    """
    from planner.specs.model import MLAttention

    att = model.attention
    if isinstance(att, MLAttention):
        per_pos = (att.kv_lora_rank + att.qk_rope_head_dim + att.kv_lora_rank if absorbed
                   else att.qk_head_dim + att.v_head_dim)
    else:
        per_pos = 2 * att.head_dim
    return FLOPS_PER_MAC * per_pos


def attention_core_flops_parts_per_query(model: Model, *, context_tokens,
                                         absorbed: bool = True) -> dict:
    """FLOPs of one query's attention over ``context_tokens`` cached positions, all layers, by
    part (FLOPs, arrays): core (full, window and DSA top-k), indexer (DSA's scan), linear.

    Formula: core Σ L·n_h·c·f (c = C full, min(C, W) window, min(C, k) DSA; f per position,
    :func:`attention_core_flops_per_position`); indexer Σ L·2·n_I·d_I·C; linear
    Σ L·2·3·h_v·d_k·d_v (the state's three matrix-vector products).
    Ref: DeepSeek-V3.2-Exp report §2 (core O(L·k), indexer O(L²) with few heads);
    FlashMLA; Gated DeltaNet (arXiv 2412.06464).
    Convention: decode: the query sees all C positions (prefill callers pass the average);
    projections are not here (they are matmul FLOPs per parameter).
    Example: DeepSeek-V3.2 absorbed at C = 131,072: core 61 × 128 × 2,048 × 2,176 =
    34.80e9; indexer 61 × 2 × 64 × 128 × 131,072 = 131.0e9 FLOPs.
    """
    import numpy as np

    c = np.asarray(context_tokens, dtype=float)
    per_pos = model.attention.num_heads * attention_core_flops_per_position(model,
                                                                            absorbed=absorbed)
    core, indexer, linear = np.zeros_like(c), np.zeros_like(c), np.zeros_like(c)
    for g in model.layer_groups:
        if g.kind == "full":
            core = core + g.count * per_pos * c
        elif g.kind == "sliding_window":
            core = core + g.count * per_pos * np.minimum(c, g.window)
        elif g.kind == "sparse":
            core = core + g.count * per_pos * np.minimum(c, g.top_k)
            indexer = indexer + (g.count * FLOPS_PER_MAC * g.indexer_num_heads
                                 * g.indexer_head_dim * c)
        else:
            linear = linear + (g.count * FLOPS_PER_MAC * LINEAR_STATE_MATVECS
                               * g.num_value_heads * g.key_head_dim * g.value_head_dim)
    return {"core": core, "indexer": indexer, "linear": linear}


def attention_core_flops_per_query(model: Model, *, context_tokens, absorbed: bool = True):
    """FLOPs of one query's attention (scores and values, not the projections), all layers.

    Formula: the sum of :func:`attention_core_flops_parts_per_query`; an all-full model:
    L·n_h·C·2·(d_qk + d_v).
    Ref: see :func:`attention_core_flops_parts_per_query`.
    Convention: vectorized over ``context_tokens``; heads all on one GPU (divide by TP).
    Example: gpt-oss-120b at C = 4,096: 18 × 64 × 256 × (4,096 + 128) = 1.246e9 FLOPs
    (all-full counting: 36 × 64 × 256 × 4,096 = 2.416e9).
    """
    return sum(attention_core_flops_parts_per_query(model, context_tokens=context_tokens,
                                                    absorbed=absorbed).values())


def pattern_score_flops_per_token(model: Model, *, seq_len, causal: bool = True) -> dict:
    """Forward attention FLOPs per token of training at ``seq_len`` for a model with windowed,
    sparse or linear layers, by part (FLOPs): attention_scores, indexer_scores, linear_state.

    Formula: scores Σ 2·L·c·n_h·(d_qk + d_v) with c = s/2 full, mean min(i, W) window
    (:func:`causal_mean_context`), mean min(i, k) DSA; indexer Σ 2·L·n_I·d_I·s/2; linear
    Σ 2·3·L·h_v·d_k·d_v (non-causal: c = s, min(s, W), min(s, k); indexer s).
    Ref: P Table 2 convention A; DeepSeek-V3.2-Exp report; arXiv 2412.06464.
    Convention: the expanded (non-absorbed) MLA form, as in training.
    Example: gpt-oss-120b at s = 4,096, causal: 2 × 64 × 128 × (18 × 2,048 + 18 × 126) =
    0.641e9 FLOPs (all-full counting: 1.208e9).
    """
    s = float(seq_len)
    full = s * CAUSAL_CONTEXT_FRAC if causal else s

    def attended(g) -> float:
        if g.kind == "full":
            return full
        if g.kind == "linear":
            return 0.0
        cap = g.window if g.kind == "sliding_window" else g.top_k
        return float(causal_mean_context(seq_len=s, window=cap)) if causal else min(s, cap)

    c_core = sum(g.count * attended(g) for g in model.layer_groups)
    att = model.attention
    parts = attention_core_flops_parts_per_query(model, context_tokens=full, absorbed=False)
    return {"attention_scores": FLOPS_PER_MAC * c_core * att.num_heads
            * (att.qk_head_dim + att.v_head_dim),
            "indexer_scores": float(parts["indexer"]), "linear_state": float(parts["linear"])}


@dataclass(frozen=True)
class FlopsResult:
    """FLOPs per token of one model under one convention, forward by part."""

    model: str
    convention: str
    seq_len: int
    params_total: float
    params_activated: float
    forward_parts: Parts
    forward_flops_per_token: float
    train_flops_per_token: float
    inputs: tuple[Input, ...]


def model_flops_per_token(model: Model, *, seq_len: int = 4096,
                          convention: str = "exact-causal") -> FlopsResult:
    """Forward and training FLOPs per token of ``model`` at ``seq_len``, by part.

    Parts (forward): attention_proj, attention_scores, dense_ffn, shared_experts, routed_experts,
    router, output_head (``approx-12ld2``: layers_12ld2 and output_head).

    Formula: :data:`FORMULA` of the convention, e.g. exact-causal forward = 2·N +
    2·L·(s/2)·n_h·(d_qk + d_v); training = 3 · forward.
    Ref: paper Table 2; paper.md §2 conventions A and B; Kaplan et al. arXiv 2001.08361 §2.1.
    Convention: see the module docstring and :data:`CONVENTIONS`; N excludes the embedding
    lookup and norms (:attr:`~planner.calc.params.ParamCounts.matmul_activated`).
    Example: DeepSeek-V3, s = 4096, exact-causal: 2·N = 2 × 36.625e9 = 73.25e9 (attention
    projections 22.83e9, dense FFN 2.38e9, shared experts 5.11e9, routed experts 40.87e9, router
    0.21e9, output head 1.85e9) + scores 2 × L = 61 × c = 2,048 × n_h = 128 × (192 + 128) =
    10.23e9 = 83.48e9 forward; × 3 = 250.45e9 training FLOPs per token (P: 250). Qwen2.5-72B,
    approx-12ld2: 131.34e9 forward, 394.02e9 training (P: 394).
    """
    if convention not in CONVENTIONS:
        raise UsageError(
            f"unknown FLOP convention {convention!r}; expected one of: {', '.join(CONVENTIONS)}"
        )
    params = model_params(model)
    att = model.attention
    if convention == "approx-12ld2":
        d, layers = model.hidden_size, model.num_layers
        parts = Parts((
            ("layers_12ld2", FLOPS_PER_MAC * APPROX_PARAMS_PER_LAYER_PER_D2 * layers * d * d),
            ("output_head", FLOPS_PER_MAC * model.vocab_size * d),
        ))
        inputs: tuple[Input, ...] = (
            Input("L (layers)", layers, "count", "model spec num_layers"),
            Input("d (hidden size)", d, "count", "model spec hidden_size"),
            Input("V (vocabulary)", model.vocab_size, "count", "model spec vocab_size"),
        )
    else:
        context = seq_len * CAUSAL_CONTEXT_FRAC if convention == "exact-causal" else seq_len
        active = params.activated.as_dict()
        matmul = {k: matmul_flops_per_token(params=active[k]) for k in
                  ("attention", "dense_ffn", "shared_experts", "routed_experts", "router",
                   "output_head")}
        scores = attention_score_flops_per_token(
            num_layers=model.num_layers, context_tokens=context, num_heads=att.num_heads,
            qk_head_dim=att.qk_head_dim, v_head_dim=att.v_head_dim,
        )
        extra: tuple[tuple[str, float], ...] = ()
        if model.has_attention_pattern:
            pattern = pattern_score_flops_per_token(model, seq_len=seq_len,
                                                    causal=convention == "exact-causal")
            scores = pattern.pop("attention_scores")
            extra = tuple((k, v) for k, v in pattern.items() if v)
        parts = Parts((
            ("attention_proj", matmul["attention"]), ("attention_scores", scores), *extra,
            ("dense_ffn", matmul["dense_ffn"]), ("shared_experts", matmul["shared_experts"]),
            ("routed_experts", matmul["routed_experts"]), ("router", matmul["router"]),
            ("output_head", matmul["output_head"]),
        ))
        inputs = (
            Input("N (activated matmul parameters)", params.matmul_activated, "count",
                  "model spec, planner.calc.params (embedding lookup and norms excluded)"),
            Input("L (layers)", model.num_layers, "count", "model spec num_layers"),
            Input("s (sequence length)", seq_len, "tokens", argument_origin("seq_len")),
            Input("c (average context attended)", context, "tokens",
                  "s/2 (causal)" if convention == "exact-causal" else "s (full attention)"),
            Input("n_h (attention heads)", att.num_heads, "count", "model spec"),
            Input("d_qk + d_v (per-head dims)", att.qk_head_dim + att.v_head_dim, "count",
                  "model spec"),
        )
    forward = parts.total
    return FlopsResult(
        model=model.name or model.label,
        convention=convention,
        seq_len=seq_len,
        params_total=params.params_total,
        params_activated=params.params_activated,
        forward_parts=parts,
        forward_flops_per_token=forward,
        train_flops_per_token=train_flops_per_token(forward_flops_per_token=forward),
        inputs=inputs,
    )
