"""One forward pass of a serving replica over a mixed batch (decode sequences and prefill tokens),
as numpy arrays over layouts and batches: the step the workload model
(:mod:`planner.calc.serving.workload`) strings together.

Every kernel is the roofline of :mod:`planner.calc.serving.blocks` (max of FLOPs at the
achievable rate and bytes at the achievable bandwidth), with the same FLOP and byte counts as
``serve``'s decode step (:func:`planner.calc.serving.serve`, overlap "none", exact expert
balance), written over arrays: no Python loop per configuration.

Ref: :mod:`planner.calc.serving.blocks`, :mod:`.communication`, :mod:`.kernels`, :mod:`.rates`;
V3R §3.4; Shoeybi et al. 2019 (Megatron-LM, TP); DeepEP README (all-to-all message sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.calc.attention import dsa_indexer_decode_s, dsa_indexer_prefill_s
from planner.calc.serving.blocks import (
    FLOPS_PER_MAC,
    activation_bytes_per_token_per_layer,
    attention_core_flops_per_token_per_layer,
    kv_read_fraction,
)
from planner.calc.serving.communication import (TP_ALL_REDUCES_PER_LAYER, ep_all_to_all_latency_s,
                                                ep_copy_bytes, tp_all_reduce_time_s)
from planner.calc.serving.kernels import hottest_rank_expert_rows, mla_decode_fixed_s, padded_rows
from planner.calc.serving.efficiency import mla_decode_flop_per_s
from planner.calc.serving.rates import (PROMPT_PER_MEAN_CONTEXT, prefill_attention_flop_per_s,
                                        with_mla_prefill)

if TYPE_CHECKING:
    from planner.calc.serving.rates import Rates
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Codes of the binding resource of a step (``WorkloadResult.decode_bound`` / ``prefill_bound``).
BOUND_NAMES = ("compute", "memory", "network", "host")


def _rates(hardware: Hardware, *, phase: str, weights_dtype: str) -> Rates:
    """The ONE adapter to the kernel efficiencies: today the spec's single fractions through
    :func:`~planner.calc.serving.rates.serving_rates`; the shape-dependent functions of
    ``planner.calc.serving.efficiency`` replace it when they land."""
    from planner.calc.serving.rates import serving_rates

    return serving_rates(hardware, phase=phase, weights_dtype=weights_dtype)


def _at_rows(hardware: Hardware, fig: ModelFigures, rates: Rates, *, rows: Any,
             expert_rows: Any = None) -> Rates:
    """``rates`` with the GEMM, head, expert and weight-stream rates of the measured tables at
    ``rows`` (M), ``expert_rows`` (per expert), arrays (else unchanged: gemm_rates_at_rows)."""
    from dataclasses import replace

    import numpy as np

    from planner.calc.serving.rates import gemm_rates_at_rows

    shaped = gemm_rates_at_rows(
        hardware, weights_dtype=fig.weights_dtype, moe_weights_dtype=fig.moe_weights_dtype,
        moe_kernel_table=fig.moe_kernel_table, rows=np.maximum(rows, 1.0),
        expert_rows=None if expert_rows is None else np.maximum(expert_rows, 1e-9))
    if shaped is None:
        return rates
    gemm, head, experts, weights = shaped
    return replace(rates, gemm=gemm, head=head, weight_stream=weights,
                   experts=experts if expert_rows is not None else rates.experts)


@dataclass(frozen=True)
class ModelFigures:
    """Per-layer parameters and bytes of one model at its precisions (scalars)."""

    layers: int
    dense_layers: int
    moe_layers: int
    hidden: int
    att_params: float          # activated attention parameters per layer
    rep_params: float          # of them, held whole by every TP rank (MLA's down-projections)
    att_bytes: float           # stored attention bytes per layer (all heads)
    rep_frac: float            # share of att_bytes held whole under TP
    ffn_params: float          # dense FFN per dense layer
    ffn_bytes: float
    shared_params: float       # shared experts per MoE layer
    shared_bytes: float
    router_params: float
    router_bytes: float
    expert_params: float       # one routed expert per MoE layer
    routed_bytes: float        # all routed experts per MoE layer
    experts: int
    top_k: int
    head_params: float
    head_bytes: float          # output head (the embedding when tied)
    embed_bytes: float
    norm_bytes: float
    kv_bytes_per_token: float  # all layers, one token, the whole (TP 1) cache
    kv_heads: int | None       # GQA KV heads (TP beyond them replicates); None: MLA
    bf16_parts: tuple[str, ...]
    dispatch_bytes: float
    combine_bytes: float
    kv_dtype: str = "bf16"     # the cache's element type (windowed / DSA / linear fractions)
    weights_dtype: str = "fp8"          # the matrices' format (kernel tables)
    moe_weights_dtype: str = "fp8"      # the routed experts' format
    moe_kernel_table: str | None = None  # the engine's weight-only expert table (efficiency)


def model_figures(model: Model, *, weights_dtype: str, moe_weights_dtype: str,
                  kv_dtype: str) -> ModelFigures:
    """The per-layer figures of ``model`` the step reads (see :class:`ModelFigures`).

    Formula: activated parameters per part / the layers that have it
    (:func:`~planner.calc.params.model_params`); stored bytes per part
    (:func:`~planner.calc.memory.weight_bytes_per_gpu_by_part` on one GPU), routed experts at
    ``moe_weights_dtype``; KV bytes per token (:func:`~planner.calc.memory.kv_bytes_per_token_per_gpu`).
    Ref: :mod:`planner.calc.memory`; :mod:`planner.calc.params`.
    Convention: a tied output head reads the embedding table.
    Example: DeepSeek-V3 FP8: 61 layers (3 dense, 58 MoE), 256 experts of 44.04e6 parameters,
    k = 8; KV 70,272 B per token in BF16.
    """
    from planner.calc.memory import kv_bytes_per_token_per_gpu, weight_bytes_per_gpu_by_part
    from planner.calc.params import attention_replicated_params_per_layer, model_params
    from planner.specs.model import MATRIX_PARTS, HeadAttention, MoEFFN

    act = model_params(model).activated.as_dict()
    total = model_params(model).total.as_dict()
    stored = weight_bytes_per_gpu_by_part(model, weights_dtype=weights_dtype).as_dict()
    moe_stored = weight_bytes_per_gpu_by_part(model, weights_dtype=moe_weights_dtype).as_dict()
    ffn = model.ffn
    moe = isinstance(ffn, MoEFFN)
    layers = model.num_layers
    dense = ffn.num_dense_layers if isinstance(ffn, MoEFFN) else layers
    moe_layers = layers - dense
    per_moe = max(moe_layers, 1)
    rep = attention_replicated_params_per_layer(model)
    experts = ffn.num_routed_experts if isinstance(ffn, MoEFFN) else 1
    top_k = ffn.num_experts_per_token if isinstance(ffn, MoEFFN) else 1
    head = "embedding" if model.tie_word_embeddings else "output_head"
    dispatch, combine = ep_copy_bytes(model)
    return ModelFigures(
        layers=layers, dense_layers=dense, moe_layers=moe_layers, hidden=model.hidden_size,
        att_params=act["attention"] / layers, rep_params=rep,
        att_bytes=stored["attention"] / layers,
        rep_frac=rep * layers / total["attention"] if total["attention"] else 0.0,
        ffn_params=act["dense_ffn"] / max(dense, 1), ffn_bytes=stored["dense_ffn"] / max(dense, 1),
        shared_params=act["shared_experts"] / per_moe,
        shared_bytes=stored["shared_experts"] / per_moe,
        router_params=act["router"] / per_moe, router_bytes=stored["router"] / per_moe,
        expert_params=(act["routed_experts"] / per_moe / top_k) if moe else 0.0,
        routed_bytes=moe_stored["routed_experts"] / per_moe, experts=experts, top_k=top_k,
        head_params=act["output_head"], head_bytes=stored[head],
        embed_bytes=stored["embedding"] if not model.tie_word_embeddings else 0.0,
        norm_bytes=stored["norms_biases"],
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=1),
        kv_heads=(model.attention.num_kv_heads if isinstance(model.attention, HeadAttention)
                  else None),
        bf16_parts=tuple(p for p in MATRIX_PARTS if weights_dtype != "bf16"
                         and model.part_weight_dtype(p, weights_dtype) == "bf16"),
        dispatch_bytes=dispatch, combine_bytes=combine, kv_dtype=kv_dtype,
        weights_dtype=weights_dtype, moe_weights_dtype=moe_weights_dtype)


def kv_bytes_per_token_per_gpu_array(fig: ModelFigures, *, tp: Any) -> Any:
    """KV bytes one token adds on one GPU of a TP group of ``tp``, all layers (bytes; arrays).

    Formula: MLA: the whole latent on every GPU; GQA: kv / min(TP, n_kv)
    (:func:`~planner.calc.memory.kv_bytes_per_token_per_gpu` over arrays).
    Ref: P §2.1.2.
    Convention: TP beyond n_kv replicates KV heads.
    Example: Llama-3.1-70B BF16 (327,680 B per token) at TP [1, 8, 16]: [327,680, 40,960, 40,960].
    """
    import numpy as np

    if fig.kv_heads is None:
        return fig.kv_bytes_per_token + 0 * np.asarray(tp)
    return fig.kv_bytes_per_token / np.minimum(tp, fig.kv_heads)


def weight_bytes_per_gpu_array(fig: ModelFigures, *, tp: Any, pp: Any, moe_tp: Any,
                               moe_ep: Any) -> Any:
    """Weight bytes one GPU holds under the layout (bytes; arrays).

    Formula: layers / PP of: attention (replicated share + the rest / TP), dense FFN and shared
    experts / TP, routed experts ⌈E / EP_moe⌉ / E / TP_moe of all, router and norms whole;
    embedding and head / TP, on the first and last stage (PP > 1: the larger of the two).
    Ref: :func:`~planner.calc.memory.weight_bytes_per_gpu_by_part` (the same split, over arrays,
    with MoE-TP × MoE-EP and PP).
    Convention: no redundant experts; PP stages split the layers evenly.
    Example: Llama-3.1-70B FP8 at TP 8, PP 1: about 70.6e9 / 8 + the BF16 head and embedding
    / 8 = 9.1e9 B.
    """
    import numpy as np

    local_experts = np.ceil(fig.experts / np.asarray(moe_ep))
    att = fig.att_bytes * (fig.rep_frac + (1 - fig.rep_frac) / tp)
    layer_bytes = (fig.layers * att + fig.dense_layers * fig.ffn_bytes / tp
                   + fig.moe_layers * (fig.shared_bytes / tp + fig.router_bytes
                                       + fig.routed_bytes * local_experts / fig.experts / moe_tp)
                   + fig.norm_bytes)
    ends = np.where(np.asarray(pp) > 1, np.maximum(fig.embed_bytes, fig.head_bytes),
                    fig.embed_bytes + fig.head_bytes) / tp
    return layer_bytes / pp + ends


class _Buckets:
    """Time of a pass by resource: kernels bound by compute, by memory, and the network."""

    def __init__(self) -> None:
        self.compute: Any = 0.0
        self.memory: Any = 0.0
        self.network: Any = 0.0

    def roof(self, flops: Any, flop_per_s: float, bytes_moved: Any, bytes_per_s: float,
             count: float) -> Any:
        """count × max(F / R, Q / B), added to the bucket of the longer side."""
        import numpy as np

        c, m = flops / flop_per_s, bytes_moved / bytes_per_s
        t = np.maximum(c, m) * count
        self.compute = self.compute + np.where(c >= m, t, 0.0)
        self.memory = self.memory + np.where(c >= m, 0.0, t)
        return t

    def kernel(self, time_s: Any, count: float, *, memory: Any) -> Any:
        """count × a measured kernel's time, to the memory bucket where ``memory``."""
        import numpy as np

        t = time_s * count
        self.compute = self.compute + np.where(memory, 0.0, t)
        self.memory = self.memory + np.where(memory, t, 0.0)
        return t

    def link(self, time_s: Any) -> Any:
        self.network = self.network + time_s
        return time_s


@dataclass(frozen=True)
class Layout:
    """One replica's layout, arrays broadcast together (counts)."""

    tp: Any
    pp: Any
    adp: Any
    moe_tp: Any
    moe_ep: Any
    tile: int | None


def _attention_layers(b: _Buckets, model: Model, hardware: Hardware, fig: ModelFigures,
                      r: Rates, lay: Layout, *,
                      dec: Any, pre: Any, dec_ctx: Any, pre_ctx: Any, count: float, queries: Any = 1) -> None:
    """Attention blocks of ``count`` layers: projections, core (decode and prefill), the rest."""
    n = dec * queries + pre
    rows = padded_rows(rows=n, tile_rows=lay.tile)
    tp = lay.tp
    gemm = r.head if "attention" in fig.bf16_parts else r.gemm
    b.roof(FLOPS_PER_MAC * ((fig.att_params - fig.rep_params) * rows / tp
                            + fig.rep_params * rows),
           gemm, fig.att_bytes * (fig.rep_frac + (1 - fig.rep_frac) / tp), r.weight_stream, count)
    kv_layer = kv_bytes_per_token_per_gpu_array(fig, tp=tp) / fig.layers
    core_dec = attention_core_flops_per_token_per_layer(
        model, context_tokens=dec_ctx, absorbed=True)   # the pattern's positions (DSA: top-k)
    core_pre = attention_core_flops_per_token_per_layer(model, context_tokens=pre_ctx, absorbed=False)
    kv_frac = kv_read_fraction(model, context_tokens=dec_ctx, kv_dtype=fig.kv_dtype)
    mla_rate = mla_decode_flop_per_s(model, hardware, kv_dtype=fig.kv_dtype, tp=tp)
    if mla_rate is None:
        b.roof(dec * queries / tp * core_dec, r.attention, dec * dec_ctx * kv_layer * kv_frac,
               r.kv_stream, count)
    else:   # the measured kernel: its FLOPs at its rate + its fixed time per call that decodes
        fixed = (dec > 0) * mla_decode_fixed_s(model, hardware, kv_dtype=fig.kv_dtype, tp=tp)
        b.kernel(dec * queries / tp * core_dec / mla_rate + fixed, count, memory=(
            dec * dec_ctx * kv_layer * kv_frac / hardware.gpu.hbm_bandwidth_bytes_per_s
            > dec * queries / tp * core_dec / hardware.peak_dense_flop_per_s("bf16")))
    if model.num_sparse_layers:   # DSA's indexer, measured (0 without the tables)
        prompt = PROMPT_PER_MEAN_CONTEXT * pre_ctx if r.prefill_prompt_tokens is None else r.prefill_prompt_tokens
        b.kernel(dsa_indexer_decode_s(model, hardware, seqs=dec * queries, context_tokens=dec_ctx)
                 + dsa_indexer_prefill_s(model, hardware, prefill_tokens=pre, prompt_tokens=prompt),
                 count / fig.layers, memory=True)
    mla_pre = with_mla_prefill(r, model, hardware, kv_dtype=fig.kv_dtype)   # MLA's own kernel
    b.roof(pre / tp * core_pre, prefill_attention_flop_per_s(mla_pre, prefill_context=pre_ctx),
           pre * kv_layer, r.kv_stream, count)
    b.roof(0.0, r.attention, n * activation_bytes_per_token_per_layer(
        model, block="attention", tp=tp), r.kv_stream, count)
    b.link(count * TP_ALL_REDUCES_PER_LAYER * tp_all_reduce_time_s(
        model, hardware, tp=tp, tokens=n, up_bytes_per_s=r.scale_up,
        out_bytes_per_s=r.scale_out, hierarchical=True))


def _moe_layers(b: _Buckets, model: Model, hardware: Hardware, fig: ModelFigures, r: Rates,
                lay: Layout, *, n: Any, group_tokens: Any, count: float) -> None:
    """FFN blocks of ``count`` MoE layers: router, shared experts, routed experts (MoE-TP ×
    MoE-EP over the replica's attention ranks), their other kernels and the all-to-all."""
    import numpy as np

    tp = lay.tp
    rows = padded_rows(rows=n, tile_rows=lay.tile)
    b.roof(FLOPS_PER_MAC * fig.router_params * rows, r.head, fig.router_bytes, r.weight_stream,
           count)
    if fig.shared_params:
        gemm = r.head if "shared_experts" in fig.bf16_parts else r.gemm
        b.roof(FLOPS_PER_MAC * fig.shared_params * rows / tp, gemm, fig.shared_bytes / tp,
               r.weight_stream, count)
    per_expert = group_tokens * fig.top_k / fig.experts
    r = _at_rows(hardware, fig, r, rows=n, expert_rows=per_expert)
    padded = hottest_rank_expert_rows(hardware, fig.moe_weights_dtype, mean_rows=np.maximum(
        per_expert, 1e-9), tile_rows=lay.tile, ep=lay.moe_ep, table=fig.moe_kernel_table)
    local = np.ceil(fig.experts / np.asarray(lay.moe_ep))
    hit = 1 - (1 - fig.top_k / fig.experts) ** group_tokens
    b.roof(FLOPS_PER_MAC * fig.expert_params / lay.moe_tp * local * padded, r.experts,
           fig.routed_bytes * local / fig.experts / lay.moe_tp * hit, r.weight_stream, count)
    b.roof(0.0, r.attention, n / tp * activation_bytes_per_token_per_layer(
        model, block="moe", phase="decode"), r.kv_stream, count)
    # All-to-all where attention runs data parallel: each GPU sends its share of its rank's
    # tokens once to each EP rank holding one of its experts, to every MoE-TP slice there; in
    # the scale-up domain every copy over it, + its measured fixed time; across nodes one copy
    # per EP rank over the network, the MoE-TP fan-out over NVLink at once (MoE-TP in a node).
    group = tp * lay.adp
    ranks = np.minimum(fig.top_k, lay.moe_ep)
    per_token = n / tp * (fig.dispatch_bytes + fig.combine_bytes)
    if hardware.scale_up is None:
        a2a = per_token * ranks * lay.moe_tp / r.scale_out
    else:
        inside = per_token * ranks * lay.moe_tp / r.scale_up + np.where(
            np.isfinite(r.scale_up), ep_all_to_all_latency_s(hardware, ep=lay.moe_ep), 0.0)
        across = np.maximum(per_token * ranks / r.scale_out, inside)
        a2a = np.where(group <= hardware.scale_up_domain_gpus, inside, across)
    b.link(count * np.where(np.asarray(lay.adp) > 1, a2a, 0.0))


def forward_pass(model: Model, hardware: Hardware, fig: ModelFigures, rates: Rates,
                 lay: Layout, *, decode_seqs: Any, prefill_tokens: Any, decode_context: Any,
                 prefill_context: Any, prompts: Any, layer_overhead_s: float = 0.0,
                 peer_overhead_s: float = 0.0, lone_prefill: bool = False, draft_tokens: Any = 0) -> tuple[Any, Any]:
    """Time of one forward pass of a replica through all its layers (s) for ``decode_seqs``
    sequences and ``prefill_tokens`` prompt tokens per attention rank, and the binding resource
    (:data:`BOUND_NAMES` code); arrays broadcast together.

    Formula: Σ over layers of the attention block (projections at ⌈n / tile⌉ · tile rows, the
    decode core over C_dec positions reading b · C_dec KV tokens, the prefill core over C_pre
    positions, DSA layers' measured indexer time (:func:`~planner.calc.attention.
    dsa_indexer_decode_s`, ``dsa_indexer_prefill_s``), the other kernels, 2 TP all-reduces of n
    tokens), the dense FFN or the MoE block
    (router, shared experts, routed experts at E[padded rows] per local expert over
    W · (1 − (1 − k/E)^N), N = n · DP_att, the all-to-all of n / TP tokens × min(k, EP_moe) ·
    TP_moe copies when DP_att > 1, across nodes min(k, EP_moe) of them over the network and the
    MoE-TP fan-out over the scale-up link at once), the head at ⌈(q·b + prompts) / tile⌉ · tile / TP rows, and
    PP − 1 activation transfers; n = q·b + p, q = 1 + ``draft_tokens`` (drafts verified, KV read once)
    (``lone_prefill``: only this rank carries the p prefill tokens, N = q·b · DP_att + p).
    Ref: :mod:`planner.calc.serving.blocks` (the same FLOPs and bytes), V3R §3.4.
    Convention: stages run in sequence (the pass is a token's latency through all of them);
    kernels do not overlap one another or communication; the engine's GPU time beside the
    rooflines adds L · ``layer_overhead_s`` (host bucket) and 2 · L · (TP − 1) ·
    ``peer_overhead_s`` (network bucket).
    Example: Llama-3.1-70B FP8 on H200 at TP 8, 64 decode sequences of 1,536 tokens: about
    9 ms per pass, memory bound.
    """
    import numpy as np

    b = _Buckets()
    queries = 1 + draft_tokens
    n = decode_seqs * queries + prefill_tokens
    rates = _at_rows(hardware, fig, rates, rows=n)
    _attention_layers(b, model, hardware, fig, rates, lay, dec=decode_seqs, pre=prefill_tokens,
                      dec_ctx=decode_context, pre_ctx=prefill_context, count=fig.layers,
                      queries=queries)
    if fig.dense_layers:
        rows = padded_rows(rows=n, tile_rows=lay.tile)
        gemm = rates.head if "dense_ffn" in fig.bf16_parts else rates.gemm
        b.roof(FLOPS_PER_MAC * fig.ffn_params * rows / lay.tp, gemm, fig.ffn_bytes / lay.tp,
               rates.weight_stream, fig.dense_layers)
        b.roof(0.0, rates.attention, n * activation_bytes_per_token_per_layer(
            model, block="dense_ffn", tp=lay.tp), rates.kv_stream, fig.dense_layers)
    if fig.moe_layers:
        group = (decode_seqs * queries * lay.adp + prefill_tokens if lone_prefill
                 else n * lay.adp)
        _moe_layers(b, model, hardware, fig, rates, lay, n=n, group_tokens=group,
                    count=fig.moe_layers)
    head_rows = padded_rows(rows=decode_seqs * queries + prompts, tile_rows=lay.tile) / lay.tp
    b.roof(FLOPS_PER_MAC * fig.head_params * head_rows, rates.head, fig.head_bytes / lay.tp,
           rates.weight_stream, 1)
    stage_link = rates.scale_up if hardware.scale_up is not None else rates.scale_out
    b.link((np.asarray(lay.pp) - 1) * n / lay.tp * fig.hidden * 2 / stage_link)
    b.link(fig.layers * TP_ALL_REDUCES_PER_LAYER * (np.asarray(lay.tp) - 1) * peer_overhead_s)
    host = fig.layers * layer_overhead_s + 0 * n
    total = b.compute + b.memory + b.network + host
    bound = np.argmax(np.stack(np.broadcast_arrays(b.compute, b.memory, b.network, host)),
                      axis=0)
    return total, bound


def _padded_tile(hardware: Hardware) -> int | None:
    """The GEMM tile rows of ``hardware`` (None: padding not modelled)."""
    from planner.calc.serving.efficiency import has_measured_tables

    tile = hardware.gpu.mma_tile_rows
    # measured kernel tables over M include the padding of small M: not padded again
    return None if tile is None or has_measured_tables(hardware) else int(tile)

