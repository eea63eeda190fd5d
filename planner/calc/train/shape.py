"""The per-layer quantities of a model that training needs: parameters by where they live,
activation bytes per token cached for the backward by recompute mode, and forward FLOPs per
token by part.

Ref: Korthikanti et al. 2022 (arXiv 2205.05198) §4.1: a GPT layer caches
s·b·h·(34 + 5·a·s/h) bytes (attention 11sbh + 5as²b, MLP 19sbh, two LayerNorms 4sbh); with
tensor and sequence parallelism all of it is divided by t, without sequence parallelism the
10sbh of LayerNorm inputs, GEMM inputs after them and dropout masks are not; V3R §3.3.2 (MLA
up-projections recomputed; FP8 caching of GEMM inputs).
Convention: elements are 2 bytes (BF16/FP16), dropout masks 1 byte, router probabilities 4;
FP8-cached GEMM inputs 1 + 4/128 (tile scales), the attention output 1.5 (E5M6) under the FP8
recipe; selective recompute on an MLA model recomputes every RMSNorm and the up-projections
(V3R §3.2.3: a norm caches its input only; the latents, not Q, K, V, are cached);
gated FFNs cache the gate and up outputs and the product fed to the down projection; a routed
token cached once per expert it reaches (top-k copies); attention without a fused (flash) kernel
keeps the softmax output (2 bytes), and with dropout its mask (1) and output (2), per head and
key, the 5as²b of Korthikanti et al.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.calc.train.kernels import KernelBytes, kernel_bytes
from planner.calc.train.recipe import RECIPES

if TYPE_CHECKING:
    from planner.specs.model import Model

#: Bytes of an activation element (BF16/FP16), of a dropout mask element, of a router
#: probability (FP32).
ACT_BYTES = 2
MASK_BYTES = 1
ROUTER_PROB_BYTES = 4
#: LayerNorms per layer (before attention, before the FFN).
NORMS_PER_LAYER = 2
#: Dropout masks of h elements per layer (after attention, after the FFN).
DROPOUTS_PER_LAYER = 2
#: Without a fused kernel, bytes per head per key per token: softmax output; with dropout
#: also the mask and the dropped-out probabilities (Korthikanti et al.: 2 + 1 + 2 = 5).
SOFTMAX_BYTES = 2
SOFTMAX_DROPOUT_BYTES = 3
#: Gated FFN outputs cached (gate, up, their product); ungated (GeLU input and output).
GATED_CACHED = 3
UNGATED_CACHED = 2
#: V3R §3.3.3: the input of the Linear after the attention operator is cached in a customized
#: E5M6 format (12 bits = 1.5 bytes per element) under the FP8 recipe.
E5M6_BYTES = 1.5


@dataclass(frozen=True)
class TrainShape:
    """Per-layer figures of one model for a training layout (counts, bytes per token, FLOPs
    per token); ``*_hsized`` activations are sequence-parallel (divided by t only with SP),
    the rest tensor-parallel."""

    num_layers: int
    hidden_size: int
    vocab_size: int
    num_heads: int
    mtp_depth: int
    kv_bytes_per_token: float          # K and V of one layer a CP ring passes (BF16)
    experts: int                        # routed experts per MoE layer (0: dense)
    experts_per_token: int
    expert_groups: int
    limited_groups: int
    moe_layer_share: float              # MoE layers / layers
    layer_params: float                 # non-expert parameters of an average layer
    expert_params: float                # routed-expert parameters of an average layer
    embedding_params: float
    head_params: float
    tied_head: bool                     # the output head is the input embedding
    mtp_params: float                   # MTP modules, non-expert (with the last stage)
    mtp_expert_params: float
    act_hsized: dict                    # recompute mode -> bytes per token per layer
    act_sharded: dict
    act_softmax_per_key: float          # bytes per token per key (divided by t), no flash
    dropout: bool                       # attention and hidden dropout on (Megatron 2022)
    forward_flops: dict                 # part -> forward FLOPs per token (all layers)
    mtp_forward_flops: dict             # part -> forward FLOPs per token of the MTP modules
    dispatch_bytes: float               # bytes of one routed token copy (dispatch)
    combine_bytes: float
    kernels: KernelBytes                # memory-bound kernels' HBM bytes (kernels.py)
    up_projection_flops: float          # MLA up-projections recomputed (selective), per token
    #: (all-MoE, all-dense) shapes of a MoE model with dense layers, for a device whose layers
    #: are not the model's average (:func:`with_moe_share`); None otherwise.
    ffn_variants: tuple | None = None


def _norms_recomputed(model: Model, recompute: str) -> bool:
    """V3R §3.2.3: selective recompute on an MLA model recomputes every RMSNorm and the MLA
    up-projections (DeepSeek-V3's recipe); a norm then caches only its input."""
    return recompute == "selective" and getattr(model.attention, "kind", "") == "mla"


def _attention_bytes(model: Model, recompute: str, *, recipe: str) -> tuple[float, float]:
    """(h-sized, sharded) cached bytes of one attention block per token."""
    att: Any = model.attention
    h = model.hidden_size
    heads = att.num_heads
    kv_heads = getattr(att, "num_kv_heads", heads)
    q = heads * att.qk_head_dim
    k = kv_heads * att.qk_head_dim
    v = kv_heads * att.v_head_dim
    out_in = heads * att.v_head_dim
    if _norms_recomputed(model, recompute):
        # V3R §3.2.3: norm input only (the QKV GEMM input is the recomputed norm's output);
        # the latents feed the recomputed up-projections (BF16, once: their norms are
        # recomputed too); q, k, v recomputed; the output projection's input in E5M6 (§3.3.3).
        latent = (att.q_lora_rank or 0) + att.kv_lora_rank + att.qk_rope_head_dim
        out_bytes = E5M6_BYTES if recipe == "fp8" else ACT_BYTES
        return float(ACT_BYTES * h), float(ACT_BYTES * latent + out_bytes * out_in)
    latent = 0.0
    if att.kind == "mla":
        latent = 2 * ((att.q_lora_rank or 0) + att.kv_lora_rank + att.qk_rope_head_dim)
    # norm input + QKV GEMM input; Q, K, V, the output projection's input, latents (+ norms)
    return ACT_BYTES * 2.0 * h, ACT_BYTES * float(q + k + v + out_in + latent)


def _ffn_elements(model: Model, *, moe: bool, gemm_input_bytes: float,
                  recompute: str) -> tuple[float, float]:
    """(h-sized bytes, sharded bytes) cached by one FFN block per token."""
    ffn: Any = model.ffn
    h = model.hidden_size
    cached = GATED_CACHED if ffn.gated else UNGATED_CACHED
    if ffn.gated and recompute == "selective":    # SwiGLU output recomputed (V3R §3.3.3)
        cached -= 1
    # norm input + FFN GEMM input; with V3R's recomputed norms the norm input only
    hsized = ACT_BYTES * h * (1 if _norms_recomputed(model, recompute) else 2)
    if not moe:
        inter = ffn.intermediate_size if ffn.kind == "dense" else ffn.dense_intermediate_size
        return hsized, ACT_BYTES * cached * inter
    k, e = ffn.num_experts_per_token, ffn.num_routed_experts
    # An FP8 recipe caches the SwiGLU inputs in FP8 too (V3R §3.3.3): GEMM-input bytes.
    routed = k * gemm_input_bytes * (h + cached * ffn.expert_intermediate_size)
    shared = gemm_input_bytes * cached * ffn.num_shared_experts * ffn.shared_expert_intermediate_size
    return hsized, routed + shared + ROUTER_PROB_BYTES * e


def _activation_bytes(model: Model, *, recipe: str, dropout: bool):
    """Per recompute mode, (h-sized, sharded) bytes per token of an average layer."""
    gin = RECIPES[recipe].activation_gemm_input_bytes
    moe_share = model.num_moe_layers / model.num_layers if model.is_moe else 0.0
    masks = DROPOUTS_PER_LAYER * MASK_BYTES * model.hidden_size if dropout else 0.0
    hsized, sharded = {}, {}
    for mode in ("none", "selective"):
        dense_h, dense_s = (_ffn_elements(model, moe=False, gemm_input_bytes=gin, recompute=mode)
                            if moe_share < 1 else (0.0, 0.0))
        moe_h, moe_s = (_ffn_elements(model, moe=True, gemm_input_bytes=gin, recompute=mode)
                        if moe_share > 0 else (0.0, 0.0))
        ffn_h = moe_share * moe_h + (1 - moe_share) * dense_h
        ffn_s = moe_share * moe_s + (1 - moe_share) * dense_s
        att_h, att_s = _attention_bytes(model, mode, recipe=recipe)
        hsized[mode] = att_h + ffn_h + masks
        sharded[mode] = att_s + ffn_s
    hsized["full"], sharded["full"] = float(ACT_BYTES * model.hidden_size), 0.0
    return hsized, sharded


def train_shape(model: Model, *, seq_len: int, recipe: str = "bf16",
                dropout: bool = False) -> TrainShape:
    """The per-layer quantities of ``model`` a training layout needs (counts, bytes, FLOPs).

    Formula: cached bytes per token per layer (none): norm inputs and GEMM inputs 2·(2h) + 2h
    (FFN), Q, K, V and the output projection's input, FFN intermediates (gated 3·I, else 2·I;
    MoE: k copies of the input and the intermediates, shared experts, router probabilities
    4·E), dropout masks 2·h; selective: MLA keeps only its latents and a gated FFN recomputes
    its product (2·I cached); full: the layer input 2h.
    Parameters: the model's per-part totals over the layers that have the part.
    Ref: Korthikanti et al. 2022 §4.1 (34 + 5as/h bytes per token per layer); V3R §3.3.2.
    Convention: see the module docstring; FLOPs from
    :func:`planner.calc.flops.model_flops_per_token` (exact-causal at ``seq_len``).
    Example: GPT-3 175B (h = 12,288, I = 4h ungated, MHA, dropout): h-sized 2·(2h + 2h) + 2h
    (masks) = 10h = 122,880 bytes; sharded 2·(4h) + 2·2·4h = 24h = 294,912 bytes: 34h in all,
    as Korthikanti et al.
    """
    from planner.calc.flops import model_flops_per_token
    from planner.calc.memory import mtp_module_params
    from planner.calc.params import model_params

    total = model_params(model).total.as_dict()
    layers = model.num_layers
    att: Any = model.attention
    kv_heads = getattr(att, "num_kv_heads", att.num_heads)
    if att.kind == "mla":
        kv_per_token = ACT_BYTES * (att.kv_lora_rank + att.qk_rope_head_dim)
    else:
        kv_per_token = ACT_BYTES * kv_heads * (att.qk_head_dim + att.v_head_dim)
    hsized, sharded = _activation_bytes(model, recipe=recipe, dropout=dropout)
    softmax = SOFTMAX_BYTES + (SOFTMAX_DROPOUT_BYTES if dropout else 0)
    flops = model_flops_per_token(model, seq_len=seq_len).forward_parts.as_dict()
    mtp = mtp_module_params(model).as_dict() if model.mtp_depth else {}
    mtp_experts = model.mtp_depth * mtp.get("routed_experts", 0.0)
    mtp_dense = model.mtp_depth * (sum(mtp.values()) - mtp.get("routed_experts", 0.0))
    mtp_flops = _mtp_forward_flops(model, flops)
    ffn: Any = model.ffn
    moe = model.is_moe
    non_expert = sum(v for k, v in total.items()
                     if k not in ("routed_experts", "embedding", "output_head"))
    return TrainShape(
        num_layers=layers, hidden_size=model.hidden_size, vocab_size=model.vocab_size,
        num_heads=att.num_heads, mtp_depth=model.mtp_depth, kv_bytes_per_token=float(kv_per_token),
        experts=ffn.num_routed_experts if moe else 0,
        experts_per_token=ffn.num_experts_per_token if moe else 0,
        expert_groups=ffn.num_expert_groups if moe else 1,
        limited_groups=(ffn.num_limited_groups or ffn.num_expert_groups) if moe else 1,
        moe_layer_share=model.num_moe_layers / layers if moe else 0.0,
        layer_params=non_expert / layers, expert_params=total["routed_experts"] / layers,
        embedding_params=total["embedding"],
        head_params=float(model.vocab_size * model.hidden_size),   # a tied head: a copy
        tied_head=bool(model.tie_word_embeddings),
        mtp_params=mtp_dense, mtp_expert_params=mtp_experts,
        act_hsized=hsized, act_sharded=sharded, act_softmax_per_key=softmax * att.num_heads,
        dropout=dropout,
        forward_flops=flops, mtp_forward_flops=mtp_flops,
        dispatch_bytes=(_fp8_dispatch(model.hidden_size) if recipe == "fp8"
                        else ACT_BYTES * model.hidden_size),
        combine_bytes=ACT_BYTES * model.hidden_size,
        kernels=kernel_bytes(model, recipe=recipe, dropout=dropout,
                             norms_recomputed=_norms_recomputed(model, "selective")),
        up_projection_flops=_up_projection_flops(model),
        ffn_variants=_ffn_variants(model, seq_len=seq_len, recipe=recipe, dropout=dropout),
    )


def _ffn_variants(model: Model, **kw):
    """(all-MoE, all-dense) training shapes of a MoE model whose first layers are dense (the
    same layers, attention and heads; every layer a MoE block, or every layer dense); None
    where its layers are all of one kind."""
    import dataclasses

    ffn: Any = model.ffn
    dense = getattr(ffn, "num_dense_layers", 0)
    if not model.is_moe or not 0 < dense < model.num_layers:
        return None
    all_moe = dataclasses.replace(model, ffn=dataclasses.replace(
        ffn, num_dense_layers=0, dense_intermediate_size=None))
    # every layer dense: the same layers and attention pattern (a model's attention_layers
    # count its num_layers), the dense FFN in each
    all_dense = dataclasses.replace(model, ffn=dataclasses.replace(
        ffn, num_dense_layers=model.num_layers))
    return train_shape(all_moe, **kw), train_shape(all_dense, **kw)


def with_moe_share(shape: TrainShape, moe_share) -> TrainShape:
    """The shape of a device whose layers are ``moe_share`` MoE blocks and the rest dense
    (per-layer quantities; array shares broadcast).

    Formula: per-layer FLOPs by part, memory-bound kernel bytes and the MoE share are
    q · (all-MoE layer) + (1 − q) · (all-dense layer), the model's totals over L layers.
    Ref: the model spec (``ffn.num_dense_layers``: the first layers dense, DeepSeek-V3's
    first_k_dense_replace 3); V3R §3.2.3 (DualPipe puts the shallowest layers with the
    embedding and the deepest with the head on one rank).
    Convention: the heads, MTP modules and attention are the model's; the shape itself where
    its layers are all of one kind.
    Example: DeepSeek-V3 (3 dense of 61 layers): q = 58/61 gives the model's average layer;
    its DualPipe end device at p = 16 (layers 0-2 and 59-60) q = 2/5.
    """
    import dataclasses

    if shape.ffn_variants is None:
        return shape
    moe, dense = shape.ffn_variants
    q, layers = moe_share, shape.num_layers

    def per_layer(key):
        return layers * (q * moe.forward_flops.get(key, 0.0) / moe.num_layers
                         + (1 - q) * dense.forward_flops.get(key, 0.0) / dense.num_layers)

    flops = {k: (v if k == "output_head" else per_layer(k)) for k, v in shape.forward_flops.items()}
    kernels = KernelBytes(**{f.name: q * getattr(moe.kernels, f.name)
                             + (1 - q) * getattr(dense.kernels, f.name)
                             for f in dataclasses.fields(KernelBytes)})
    return dataclasses.replace(shape, forward_flops=flops, kernels=kernels, moe_layer_share=q)


#: The MTP module's parts that are a MoE block's (per MoE layer), the rest per layer.
MOE_BLOCK_PARTS = ("shared_experts", "routed_experts", "router")


def _mtp_forward_flops(model: Model, flops: dict) -> dict:
    """Forward FLOPs per token of the MTP modules, by part (V3R §2.2: each module is one
    block of the model's last layer type (a MoE block on a MoE model) with the projection M
    (2d → d), and shares the model's output head, which §3.3.1 keeps in BF16); {} without
    MTP."""
    from planner.calc.flops import FLOPS_PER_MAC
    from planner.calc.memory import MTP_PROJECTION_INPUTS

    depth, layers = model.mtp_depth, model.num_layers
    if not depth:
        return {}
    moe_layers = model.num_moe_layers if model.is_moe else 0
    per = {k: v / layers for k, v in flops.items() if k != "output_head"}
    if moe_layers:
        per.update({k: flops[k] / moe_layers for k in MOE_BLOCK_PARTS})
        per["dense_ffn"] = 0.0
    per["attention_proj"] += FLOPS_PER_MAC * MTP_PROJECTION_INPUTS * model.hidden_size ** 2
    per["output_head"] = flops["output_head"]
    return {k: depth * v for k, v in per.items()}


def _up_projection_flops(model: Model) -> float:
    """Forward FLOPs per token of an average layer's MLA up-projections (the GEMMs V3R §3.2.3
    recomputes under selective recompute); 0 without MLA."""
    att: Any = model.attention
    if att.kind != "mla" or not _norms_recomputed(model, "selective"):
        return 0.0
    q = (att.q_lora_rank or 0) * att.num_heads * att.qk_head_dim
    kv = att.kv_lora_rank * att.num_heads * (att.qk_nope_head_dim + att.v_head_dim)
    return float(2 * (q + kv))


def _fp8_dispatch(hidden: int) -> float:
    from planner.calc.ep import fp8_dispatch_bytes_per_token_expert

    return float(fp8_dispatch_bytes_per_token_expert(hidden_size=hidden))
