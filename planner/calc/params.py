"""Parameter counts, total and activated per token, with a labelled breakdown.

Ref: DeepSeek-V2 report (arXiv 2405.04434) §2.1 for MLA's projections; the published config.json
(huggingface.co/deepseek-ai/DeepSeek-V3) for the derived totals (DeepSeek-V3 671.03e9 total,
36.625e9 activated matmul parameters, as in P Table 2, arXiv 2505.09343 §2.2.1).

Convention: every weight matrix of the published architecture; norms and biases are counted in
``norms_biases``; the input embedding and the output head are separate parts. With
``tie_word_embeddings`` they are one matrix: counted once in the total (as ``embedding``), but
the head is still computed and read for every token, so it is activated (``output_head``).
Activated parameters follow :data:`ACTIVATED_CONVENTION`: the input embedding (a lookup, not a
matmul) is left out, as DeepSeek (README_WEIGHTS.md: 36.6B activated, including 0.9B for the
output head) and OpenAI (gpt-oss model card, arXiv 2508.10925 Table 1: 5.13B active for
gpt-oss-120b) count them; ``params_activated_with_embedding`` adds it back (the figure Qwen and
Mistral publish). The MTP module (DeepSeek-V3: 11.5B extra) is not counted,
as the published 671B does not count it. MoE router bias terms (DeepSeek-V3's
e_score_correction_bias, 256 per layer) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.calc.common import Parts
from planner.calc.kv_cache import KV_TENSORS
from planner.specs.model import (HeadAttention, LinearLayers, MLAttention, Model, MoEFFN,
                                 SparseLayers)

#: Matrices of a gated (SwiGLU) MLP: gate, up, down; a plain MLP has up and down.
FFN_MATRICES_GATED = 3
FFN_MATRICES_PLAIN = 2
#: RMSNorm weight vectors per transformer layer: before attention and before the FFN.
NORMS_PER_LAYER = 2
#: How ``params_activated`` is counted (named in the metric table and in ``planner show``).
ACTIVATED_CONVENTION = ("input embedding excluded (a lookup, not a matmul), output head included "
                        "(tied or not), as DeepSeek and OpenAI count them")


def mla_params_per_layer(*, hidden_size, num_heads, q_lora_rank, kv_lora_rank,
                         qk_nope_head_dim, qk_rope_head_dim, v_head_dim):
    """Weight-matrix parameters of one MLA layer (count).

    Formula: d·d_c' + d_c'·n_h·(d_nope + d_R) + d·(d_c + d_R) + d_c·n_h·(d_nope + d_v) + n_h·d_v·d
    (query down/up, joint KV-latent + RoPE-key down, K-nope/V up, output); with no query
    compression (``q_lora_rank`` None) the query term is d·n_h·(d_nope + d_R).
    Ref: V2R §2.1.2-2.1.3, eq. 9-19; paper.md §2 "MLA parameters per layer".
    Convention: the two internal RMSNorms are not weight matrices (see ``norms_biases``).
    Example: DeepSeek-V3, d = 7168, d_c' = 1536, n_h = 128, d_nope = 128, d_R = 64, d_c = 512,
    d_v = 128: 11,010,048 + 37,748,736 + 4,128,768 + 16,777,216 + 117,440,512 = 187,105,280.
    """
    qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
    if q_lora_rank is None:
        query = hidden_size * num_heads * qk_head_dim
    else:
        query = hidden_size * q_lora_rank + q_lora_rank * num_heads * qk_head_dim
    kv_down = hidden_size * (kv_lora_rank + qk_rope_head_dim)
    kv_up = kv_lora_rank * num_heads * (qk_nope_head_dim + v_head_dim)
    output = num_heads * v_head_dim * hidden_size
    return query + kv_down + kv_up + output


def head_attention_params_per_layer(*, hidden_size, num_heads, num_kv_heads, head_dim):
    """Weight-matrix parameters of one MHA/GQA/MQA layer (count).

    Formula: d·n_h·d_h (Q) + 2·d·n_kv·d_h (K, V) + n_h·d_h·d (O).
    Ref: Ainslie et al., GQA (arXiv 2305.13245) §2.
    Convention: biases are not counted here (see ``norms_biases``).
    Example: Qwen2.5-72B, d = 8192, n_h = 64, n_kv = 8, d_h = 128:
    67,108,864 + 16,777,216 + 67,108,864 = 150,994,944.
    """
    q_and_o = 2 * hidden_size * num_heads * head_dim
    k_and_v = KV_TENSORS * hidden_size * num_kv_heads * head_dim
    return q_and_o + k_and_v


def ffn_params(*, hidden_size, intermediate_size, gated=True):
    """Parameters of one MLP (count). Formula: m·d·I with m = 3 gated (SwiGLU), 2 plain.
    Ref: Shazeer, GLU variants (arXiv 2002.05202). Convention: no biases.
    Example: DeepSeek-V3 expert, d = 7168, I = 2048, gated: 3 × 7168 × 2048 = 44,040,192."""
    matrices = FFN_MATRICES_GATED if gated else FFN_MATRICES_PLAIN
    return matrices * hidden_size * intermediate_size


def attention_params_per_layer(model: Model) -> int:
    """Attention weight-matrix parameters of one layer of ``model`` (count).

    Formula: MLA :func:`mla_params_per_layer`; MHA/GQA/MQA :func:`head_attention_params_per_layer`
    (d·n_h·d_h + 2·d·n_kv·d_h + n_h·d_h·d).
    Ref: V2R §2.1.2-2.1.3; Ainslie et al. (arXiv 2305.13245) §2.
    Convention: weight matrices only; norms and biases are in ``norms_biases``.
    Example: DeepSeek-V3 (MLA): 187,105,280; Qwen2.5-72B (GQA, d = 8192, n_h = 64, n_kv = 8,
    d_h = 128): 150,994,944.
    """
    att = model.attention
    if isinstance(att, MLAttention):
        return mla_params_per_layer(
            hidden_size=model.hidden_size, num_heads=att.num_heads, q_lora_rank=att.q_lora_rank,
            kv_lora_rank=att.kv_lora_rank, qk_nope_head_dim=att.qk_nope_head_dim,
            qk_rope_head_dim=att.qk_rope_head_dim, v_head_dim=att.v_head_dim,
        )
    gate = model.hidden_size * att.num_heads * att.head_dim if att.output_gate else 0
    return gate + head_attention_params_per_layer(
        hidden_size=model.hidden_size, num_heads=att.num_heads,
        num_kv_heads=att.num_kv_heads, head_dim=att.head_dim,
    )


def indexer_params_per_layer(*, hidden_size, q_lora_rank, indexer_num_heads, indexer_head_dim):
    """Weight-matrix parameters of one DSA lightning indexer (count).

    Formula: d_c'·n_I·d_I (its queries, from the query latent; d when the query is not
    compressed) + d·d_I (its one key) + d·n_I (the per-head weights).
    Ref: DeepSeek-V3.2-Exp inference/model.py, class Indexer (wq_b, wk, weights_proj).
    Convention: the key's LayerNorm is in ``norms_biases``.
    Example: DeepSeek-V3.2, d = 7,168, d_c' = 1,536, n_I = 64, d_I = 128: 12,582,912 +
    917,504 + 458,752 = 13,959,168.
    """
    return (q_lora_rank * indexer_num_heads * indexer_head_dim
            + hidden_size * indexer_head_dim + hidden_size * indexer_num_heads)


def gated_deltanet_params_per_layer(*, hidden_size, num_key_heads, num_value_heads,
                                    key_head_dim, value_head_dim, conv_kernel):
    """Weight-matrix parameters of one Gated DeltaNet layer (count).

    Formula: d·(2·h_k·d_k + 2·h_v·d_v) (q, k, v and the output gate z) + d·2·h_v (β and the
    decay α) + h_v·d_v·d (output) + K·(2·h_k·d_k + h_v·d_v) (the depthwise convolution).
    Ref: Qwen3-Next modeling code (in_proj_qkvz, in_proj_ba, conv1d, out_proj); Yang et al.
    arXiv 2412.06464.
    Convention: A_log, dt_bias and the gated norm are in ``norms_biases``.
    Example: Qwen3.5-397B-A17B, d = 4,096, h_k = 16, h_v = 64, d_k = d_v = 128, K = 4:
    83,886,080 + 524,288 + 33,554,432 + 49,152 = 118,013,952.
    """
    qk, v = num_key_heads * key_head_dim, num_value_heads * value_head_dim
    return (hidden_size * (2 * qk + 2 * v) + hidden_size * 2 * num_value_heads
            + v * hidden_size + conv_kernel * (2 * qk + v))


def attention_params_by_kind(model: Model) -> dict[str, int]:
    """Attention weight-matrix parameters of all layers, by layer kind (count): the KV layers
    (full, window, DSA core) at :func:`attention_params_per_layer`, DSA indexers and linear
    layers (:func:`indexer_params_per_layer`, :func:`gated_deltanet_params_per_layer`).

    Formula: Σ L_kind · P_kind. Ref: as the per-layer functions.
    Convention: every layer holds one kind; the MTP module is not counted.
    Example: DeepSeek-V3.2: kv 61 × 187,105,280; indexer 61 × 13,959,168 = 851,509,248.
    """
    out = {"kv": model.num_kv_layers * attention_params_per_layer(model), "indexer": 0,
           "linear": 0}
    d = model.hidden_size
    for g in model.layer_groups:
        if isinstance(g, SparseLayers):
            q_rank = getattr(model.attention, "q_lora_rank", None) or d
            out["indexer"] += g.count * indexer_params_per_layer(
                hidden_size=d, q_lora_rank=q_rank, indexer_num_heads=g.indexer_num_heads,
                indexer_head_dim=g.indexer_head_dim)
        elif isinstance(g, LinearLayers):
            out["linear"] += g.count * gated_deltanet_params_per_layer(
                hidden_size=d, num_key_heads=g.num_key_heads, num_value_heads=g.num_value_heads,
                key_head_dim=g.key_head_dim, value_head_dim=g.value_head_dim,
                conv_kernel=g.conv_kernel)
    return out


def attention_replicated_params_per_layer(model: Model) -> int:
    """Attention parameters of one layer that every GPU of a tensor-parallel group holds whole
    and runs on all of the group's tokens (count): MLA's down-projections.

    Formula: MLA d·d_c′ (q_a, when the query is compressed) + d·(d_c + d_R) (kv_a with the
    shared RoPE key); 0 for MHA/GQA/MQA (every projection is split by heads).
    Ref: vLLM model_executor/models/deepseek_v2.py and SGLang deepseek_v2.py: q_a_proj and
    kv_a_proj_with_mqa are ReplicatedLinear (the latents are not split by heads).
    Convention: weight matrices only (the latents' norms are in ``norms_biases``, replicated).
    Example: DeepSeek-V3: 7,168 × 1,536 + 7,168 × (512 + 64) = 11,010,048 + 4,128,768 =
    15,138,816 of the layer's 187,105,280.
    """
    att = model.attention
    if not isinstance(att, MLAttention):
        return 0
    d = model.hidden_size
    return d * (att.q_lora_rank or 0) + d * (att.kv_lora_rank + att.qk_rope_head_dim)


def _norms_biases(model: Model) -> int:
    att = model.attention
    kv_layer = 0
    if isinstance(att, MLAttention):
        kv_layer += att.kv_lora_rank + (att.q_lora_rank or 0)
    elif isinstance(att, HeadAttention):
        if att.qkv_bias:
            assert att.num_kv_heads is not None   # set by HeadAttention.__post_init__
            kv_layer += (att.num_heads + KV_TENSORS * att.num_kv_heads) * att.head_dim
        kv_layer += att.num_heads if att.sinks else 0
    extra = 0
    for g in model.layer_groups:
        if isinstance(g, SparseLayers):       # the indexer key's LayerNorm: weight and bias
            extra += g.count * 2 * g.indexer_head_dim
        elif isinstance(g, LinearLayers):     # A_log and dt_bias per value head, gated norm
            extra += g.count * (2 * g.num_value_heads + g.value_head_dim)
    return (model.num_layers * NORMS_PER_LAYER * model.hidden_size + model.num_kv_layers * kv_layer
            + extra + model.hidden_size)  # + final norm


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of a model: ``total`` and ``activated`` (per token) as labelled parts.

    Parts: attention, dense_ffn, shared_experts, routed_experts, router, embedding, output_head,
    norms_biases; ``activated`` has no ``embedding`` part (:data:`ACTIVATED_CONVENTION`) and
    its ``output_head`` is the head's V·d even when tied. ``embedding_lookup`` = the input
    embedding's V·d a token looks up (``params_activated_with_embedding`` adds it unless the
    head is that same matrix). ``matmul_activated`` = activated parameters that multiply a
    token's activations (all but norms/biases): the N of 2·N forward FLOPs.
    """

    total: Parts
    activated: Parts
    embedding_lookup: float = 0.0
    tied: bool = False

    @property
    def params_total(self) -> float:
        return self.total.total

    @property
    def params_activated(self) -> float:
        return self.activated.total

    @property
    def params_activated_with_embedding(self) -> float:
        """Activated parameters with the input embedding counted (Qwen's and Mistral's figure);
        a tied table is one matrix, counted once (as the head)."""
        return self.params_activated + (0.0 if self.tied else self.embedding_lookup)

    @property
    def matmul_activated(self) -> float:
        return self.params_activated - self.activated.as_dict()["norms_biases"]


def model_params(model: Model) -> ParamCounts:
    """Total and activated parameters of ``model``, by part.

    Formula: attention L·P_att; dense FFN L_dense·m·d·I; experts L_moe·E·m·d·I_e (activated:
    top-k of them); shared L_moe·S·m·d·I_s; router L_moe·E·d; embedding and output head V·d each
    (one matrix when tied: counted once in the total); activated: no embedding, the head V·d.
    Ref: paper.md §2 (DeepSeek-V3 671.03e9 total; 36.625e9 activated matmul parameters).
    Convention: see the module docstring.
    Example: DeepSeek-V3: attention 61 × 187,105,280 = 11.413e9; dense 3 × 3·7168·18432 =
    1.189e9; routed 58 × 256 × 44,040,192 = 653.9e9 (activated 58 × 8 × ... = 20.43e9);
    shared 2.554e9; router 0.106e9; embedding = head = 0.927e9 -> 671.03e9 total; activated
    36.63e9 (DeepSeek: 36.6B), 37.55e9 with the embedding.
    """
    d, layers = model.hidden_size, model.num_layers
    attention = sum(attention_params_by_kind(model).values())
    embedding = model.vocab_size * d
    head = model.vocab_size * d
    output_head = 0 if model.tie_word_embeddings else head
    norms = _norms_biases(model)
    ffn = model.ffn
    if isinstance(ffn, MoEFFN):
        moe_layers = layers - ffn.num_dense_layers
        dense = (
            ffn.num_dense_layers
            * ffn_params(hidden_size=d, intermediate_size=ffn.dense_intermediate_size,
                         gated=ffn.gated)
            if ffn.num_dense_layers else 0
        )
        expert = ffn_params(hidden_size=d, intermediate_size=ffn.expert_intermediate_size,
                            gated=ffn.gated)
        shared_one = ffn_params(hidden_size=d, intermediate_size=ffn.shared_expert_intermediate_size,
                                gated=ffn.gated)
        routed_total = moe_layers * ffn.num_routed_experts * expert
        routed_active = moe_layers * ffn.num_experts_per_token * expert
        shared = moe_layers * ffn.num_shared_experts * shared_one
        router = moe_layers * ffn.num_routed_experts * d
    else:
        dense = layers * ffn_params(hidden_size=d, intermediate_size=ffn.intermediate_size,
                                    gated=ffn.gated)
        routed_total = routed_active = shared = router = 0

    total = Parts((
        ("attention", attention), ("dense_ffn", dense), ("shared_experts", shared),
        ("routed_experts", routed_total), ("router", router), ("embedding", embedding),
        ("output_head", output_head), ("norms_biases", norms),
    ))
    activated = Parts((
        ("attention", attention), ("dense_ffn", dense), ("shared_experts", shared),
        ("routed_experts", routed_active), ("router", router), ("output_head", head),
        ("norms_biases", norms),
    ))
    return ParamCounts(total=total, activated=activated, embedding_lookup=embedding,
                       tied=model.tie_word_embeddings)
