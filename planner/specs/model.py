"""Model spec: what a user writes in ``models/*.yaml``.

All model dimensions are counts (no units). Field names follow the Hugging Face config.json
names where one exists (``kv_lora_rank``, ``qk_rope_head_dim`` ...), spelled out elsewhere.
Cross-field checks raise ``ValueError`` naming the fields and values; the loader turns them into
one-line :class:`planner.errors.SpecError` messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Dict, Literal, Optional, Tuple, Union

from planner import vocab
from planner.specs._types import SPEC_CONFIG, Bool, NonNegInt, Num, PosInt, Str, Tagged
from planner.specs.deployment import MAX_MTP_DEPTH

#: The weight-matrix parts a model's format can differ by (``Model.part_weight_dtypes``).
MATRIX_PARTS = ("attention", "dense_ffn", "shared_experts", "routed_experts")


@dataclass(frozen=True, kw_only=True)
class HeadAttention:
    """Multi-head (``mha``), grouped-query (``gqa``) or multi-query (``mqa``) attention.

    ``num_kv_heads`` is required for GQA; for MHA it defaults to ``num_heads`` and for MQA to 1.
    """

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["mha", "gqa", "mqa"]
    num_heads: PosInt
    head_dim: PosInt
    num_kv_heads: Optional[PosInt] = None
    qkv_bias: Bool = False
    #: Qwen3-Next / Qwen3.5 ``attn_output_gate``: the query projection also yields a sigmoid
    #: gate per head dimension (q_proj is d x 2·n_h·d_h), applied to the attention output.
    output_gate: Bool = False
    #: gpt-oss's learned attention sinks: one softmax-denominator logit per head and layer
    #: (``num_heads`` parameters a layer, counted with the norms; nothing cached).
    sinks: Bool = False

    def __post_init__(self) -> None:
        implied = {"mha": self.num_heads, "mqa": 1}.get(self.kind)
        kv_heads = self.num_kv_heads
        if kv_heads is None:
            if implied is None:
                raise ValueError("num_kv_heads is required for kind 'gqa'")
            kv_heads = implied
            object.__setattr__(self, "num_kv_heads", kv_heads)
        elif implied is not None and kv_heads != implied:
            raise ValueError(
                f"kind {self.kind!r} means num_kv_heads = {implied}, got {self.num_kv_heads}"
            )
        if self.num_heads % kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be divisible by "
                f"num_kv_heads ({self.num_kv_heads})"
            )

    @property
    def qk_head_dim(self) -> int:
        return self.head_dim

    @property
    def v_head_dim(self) -> int:
        return self.head_dim


@dataclass(frozen=True, kw_only=True)
class MLAttention:
    """Multi-head latent attention (DeepSeek-V2/V3; V2R §2.1).

    The KV cache holds the compressed latent (``kv_lora_rank`` = d_c) and the decoupled RoPE key
    (``qk_rope_head_dim`` = d_h^R) per layer, shared by all heads. ``q_lora_rank`` absent means
    the query is projected directly from the hidden state (DeepSeek-V2-Lite).
    """

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["mla"]
    num_heads: PosInt
    kv_lora_rank: PosInt
    qk_nope_head_dim: PosInt
    qk_rope_head_dim: PosInt
    v_head_dim: PosInt
    q_lora_rank: Optional[PosInt] = None

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim


Attention = Union[HeadAttention, MLAttention]


@dataclass(frozen=True, kw_only=True)
class DenseFFN:
    """A dense MLP; ``gated`` (SwiGLU: gate, up, down) has three matrices, else two."""

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["dense"]
    intermediate_size: PosInt
    gated: Bool = True


#: Most experts a token is routed to (top-k): 1,024; published models use 1 to 16, and
#: :func:`planner.calc.routing.expected_distinct_nodes` costs k big-integer products.
MAX_EXPERTS_PER_TOKEN = 1024


@dataclass(frozen=True, kw_only=True)
class MoEFFN:
    """A mixture-of-experts FFN (DeepSeekMoE, Mixtral, Qwen-MoE ...).

    The first ``num_dense_layers`` layers use a dense MLP of ``dense_intermediate_size``. Each
    token goes to ``num_experts_per_token`` (top-k) of ``num_routed_experts`` plus all
    ``num_shared_experts``. Node/device-limited routing: experts form ``num_expert_groups``
    groups and a token may use at most ``num_limited_groups`` of them.
    """

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["moe"]
    num_routed_experts: PosInt
    num_experts_per_token: Annotated[int, Num(int, gt=0, le=MAX_EXPERTS_PER_TOKEN)]
    expert_intermediate_size: PosInt
    num_shared_experts: NonNegInt = 0
    shared_expert_intermediate_size: Optional[PosInt] = None
    num_dense_layers: NonNegInt = 0
    dense_intermediate_size: Optional[PosInt] = None
    num_expert_groups: PosInt = 1
    num_limited_groups: Optional[PosInt] = None
    gated: Bool = True

    def __post_init__(self) -> None:
        if self.num_experts_per_token > self.num_routed_experts:
            raise ValueError(
                f"num_experts_per_token ({self.num_experts_per_token}) must be <= "
                f"num_routed_experts ({self.num_routed_experts})"
            )
        if self.num_routed_experts % self.num_expert_groups:
            raise ValueError(
                f"num_routed_experts ({self.num_routed_experts}) must be divisible by "
                f"num_expert_groups ({self.num_expert_groups})"
            )
        if self.num_limited_groups is None:
            object.__setattr__(self, "num_limited_groups", self.num_expert_groups)
        elif self.num_limited_groups > self.num_expert_groups:
            raise ValueError(
                f"num_limited_groups ({self.num_limited_groups}) must be <= "
                f"num_expert_groups ({self.num_expert_groups})"
            )
        if (self.num_dense_layers > 0) != (self.dense_intermediate_size is not None):
            raise ValueError(
                "dense_intermediate_size is required when num_dense_layers > 0 and only then "
                f"(num_dense_layers = {self.num_dense_layers}, "
                f"dense_intermediate_size = {self.dense_intermediate_size})"
            )
        if self.shared_expert_intermediate_size is None:
            object.__setattr__(self, "shared_expert_intermediate_size",
                               self.expert_intermediate_size)


FFN = Union[DenseFFN, MoEFFN]


# ----------------------------------------------------------------- attention pattern per layer
@dataclass(frozen=True, kw_only=True)
class FullLayers:
    """``count`` layers of full causal attention: each caches every token of the context with
    the model's ``attention`` block (MLA or MHA/GQA/MQA)."""

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["full"]
    count: PosInt


@dataclass(frozen=True, kw_only=True)
class WindowLayers:
    """``count`` layers of sliding-window attention: a query attends to (and the layer keeps)
    only the last ``window`` tokens."""

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["sliding_window"]
    count: PosInt
    window: PosInt


@dataclass(frozen=True, kw_only=True)
class SparseLayers:
    """``count`` layers of DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5): a lightning
    indexer (``indexer_num_heads`` heads of ``indexer_head_dim``, its own key cache) scores
    every cached token and the core attention (the model's ``attention``, MLA) reads only the
    ``top_k`` best."""

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["sparse"]
    count: PosInt
    top_k: PosInt
    indexer_num_heads: PosInt
    indexer_head_dim: PosInt


@dataclass(frozen=True, kw_only=True)
class LinearLayers:
    """``count`` layers of linear attention (Gated DeltaNet, Qwen3-Next / Qwen3.5): no KV cache,
    a fixed state per sequence of ``num_value_heads`` × ``key_head_dim`` × ``value_head_dim``
    values at ``state_dtype`` plus a causal-convolution state of ``conv_kernel`` − 1 inputs."""

    __pydantic_config__ = SPEC_CONFIG
    kind: Literal["linear"]
    count: PosInt
    num_key_heads: PosInt
    num_value_heads: PosInt
    key_head_dim: PosInt
    value_head_dim: PosInt
    conv_kernel: PosInt = 4
    state_dtype: Str = "fp32"

    def __post_init__(self) -> None:
        if self.num_value_heads % self.num_key_heads:
            raise ValueError(f"num_value_heads ({self.num_value_heads}) must be divisible by "
                             f"num_key_heads ({self.num_key_heads})")


LayerGroup = Union[FullLayers, WindowLayers, SparseLayers, LinearLayers]
#: The layer kinds a model spec may list (anything else is refused by name).
LAYER_KINDS = ("full", "sliding_window", "sparse", "linear")
#: Short names of the non-full layer kinds, as listings print them after the attention kind.
PATTERN_LABELS = {"sliding_window": "SWA", "sparse": "DSA", "linear": "linear"}


@dataclass(frozen=True, kw_only=True)
class Model:
    """A decoder-only transformer. ``name`` defaults to the file stem when loaded from a file."""

    __pydantic_config__ = SPEC_CONFIG
    source: Str
    num_layers: PosInt
    hidden_size: PosInt
    vocab_size: PosInt
    attention: Annotated[Attention, Tagged("kind")]
    ffn: Annotated[FFN, Tagged("kind")]
    name: Optional[Str] = None
    display_name: Optional[Str] = None
    tie_word_embeddings: Bool = False
    mtp_depth: Annotated[int, Num(int, ge=0, le=MAX_MTP_DEPTH)] = 0
    notes: Optional[Str] = None
    #: With the weights at a format (the key), the matrix parts the published checkpoint keeps
    #: at another: gpt-oss's MXFP4 checkpoint, ``{fp4: {attention: bf16}}`` (experts in FP4,
    #: attention in BF16). Parts: attention, dense_ffn, shared_experts, routed_experts.
    part_weight_dtypes: Optional[Dict[Str, Dict[Str, Str]]] = None
    #: The attention of each layer as groups of layers (order does not matter to the costs);
    #: absent: every layer is ``full``. The counts add up to ``num_layers``.
    attention_layers: Optional[Tuple[Annotated[LayerGroup, Tagged("kind")], ...]] = None
    #: Hugging Face ids of the checkpoints of this architecture (``deepseek-ai/DeepSeek-R1``,
    #: ``nvidia/DeepSeek-R1-NVFP4``): ``planner serve <id>`` and measured runs resolve to it.
    hf_ids: Tuple[Str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hf_ids", tuple(self.hf_ids))   # a YAML list, as a tuple
        self._check_attention_layers()
        if isinstance(self.ffn, MoEFFN) and self.ffn.num_dense_layers > self.num_layers:
            raise ValueError(
                f"ffn.num_dense_layers ({self.ffn.num_dense_layers}) must be <= "
                f"num_layers ({self.num_layers})"
            )
        for weights, parts in (self.part_weight_dtypes or {}).items():
            for name, value in ((weights, weights), *((f"{weights}.{k}", v)
                                                      for k, v in parts.items())):
                if value not in vocab.SERVING_WEIGHT_DTYPES:
                    raise ValueError(f"part_weight_dtypes.{name}: {value!r} is not one of "
                                     f"{', '.join(vocab.SERVING_WEIGHT_DTYPES)}")
            unknown = sorted(set(parts) - set(MATRIX_PARTS))
            if unknown:
                raise ValueError(f"part_weight_dtypes.{weights}: unknown part(s) "
                                 f"{', '.join(unknown)}; parts: {', '.join(MATRIX_PARTS)}")

    def _check_attention_layers(self) -> None:
        if self.attention_layers is None:
            return
        counted = sum(g.count for g in self.attention_layers)
        if counted != self.num_layers:
            raise ValueError(f"attention_layers: the counts add up to {counted}, "
                             f"num_layers is {self.num_layers}")
        for g in self.attention_layers:
            if isinstance(g, LinearLayers) and g.state_dtype not in vocab.DTYPES:
                raise ValueError(f"attention_layers: state_dtype {g.state_dtype!r} is not one "
                                 f"of {', '.join(vocab.DTYPES)}")
            if isinstance(g, SparseLayers) and not isinstance(self.attention, MLAttention):
                raise ValueError("attention_layers: kind 'sparse' (DeepSeek Sparse Attention) "
                                 "needs attention kind 'mla'")

    @property
    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """The attention pattern: ``attention_layers``, or one group of full layers."""
        return self.attention_layers or (FullLayers(kind="full", count=self.num_layers),)

    @property
    def has_attention_pattern(self) -> bool:
        """True when some layer is not full attention (windows, sparse, linear)."""
        return any(not isinstance(g, FullLayers) for g in self.layer_groups)

    @property
    def attention_label(self) -> str:
        """The attention kind with the model's other layer kinds: ``GQA+SWA``, ``MLA+DSA``."""
        extra = [PATTERN_LABELS[g.kind] for g in self.layer_groups if g.kind in PATTERN_LABELS]
        return "+".join([self.attention.kind.upper(), *dict.fromkeys(extra)])

    @property
    def num_sparse_layers(self) -> int:
        """Layers of DeepSeek Sparse Attention (a lightning indexer beside the core)."""
        return sum(g.count for g in self.layer_groups if isinstance(g, SparseLayers))

    @property
    def num_kv_layers(self) -> int:
        """Layers that cache keys and values with ``attention`` (all but the linear ones)."""
        return sum(g.count for g in self.layer_groups if not isinstance(g, LinearLayers))

    def part_weight_dtype(self, part: str, weights_dtype: str) -> str:
        """The format ``part`` is stored in when the weights are ``weights_dtype``."""
        return (self.part_weight_dtypes or {}).get(weights_dtype, {}).get(part, weights_dtype)

    @property
    def label(self) -> str:
        return self.display_name or self.name or "model"

    @property
    def is_moe(self) -> bool:
        return isinstance(self.ffn, MoEFFN)

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.ffn.num_dense_layers if isinstance(self.ffn, MoEFFN) else 0
