"""Side-by-side comparison of models (and hardware): one table per question the paper asks.

- Memory (MLA vs GQA): KV cache per token, the longest context one GPU holds, and the bytes one
  decode step reads per sequence.
- Compute (dense vs MoE): parameters and FLOPs per token.
- Communication (MoE): the EP decode ceiling on each hardware.

Conventions (stated in every table): BF16 KV cache; the longest context from the one memory model
(:mod:`planner.calc.memory`): FP8 weights as stored (scales, BF16 embeddings) with the experts
and everything else split over the hardware's scale-up domain (one node, EP = TP = its GPUs),
the KV cache split as TP splits it (GQA's KV heads; MLA's latent whole on every GPU), the
workspace allowance kept; a decode step of one sequence reads its activated weights once (1 byte
per parameter) and its whole KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.calc.ep import EPResult
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: Defaults of the comparison.
KV_DTYPE = "bf16"
WEIGHT_DTYPE = "fp8"
DEFAULT_CONTEXT_TOKENS = 4096
DEFAULT_SEQ_LEN = 4096


def decode_bytes_per_step(*, activated_params, bytes_per_param, context_tokens,
                          kv_bytes_per_token):
    """Bytes one decode step of one sequence reads (bytes).

    Formula: N_act · b + C · k.
    Ref: P §2.2.2 (memory-bound decode: tokens/s ≈ bandwidth / bytes per step).
    Convention: batch 1; activations and the output of the step not counted.
    Example: DeepSeek-V3, N_act = 36.63e9 (input embedding excluded: a lookup reads one row)
    at 1 B, C = 4,096, k = 70,272: 36.91 GB.
    """
    return activated_params * bytes_per_param + context_tokens * kv_bytes_per_token


@dataclass(frozen=True)
class ModelRow:
    model: str
    attention: str
    ffn: str
    params_total: float
    params_activated: float
    kv_cache_bytes_per_token: float
    kv_multiplier_vs_first: float
    decode_bytes_per_step: float
    forward_flops_per_token: float
    train_flops_per_token: float
    max_context_tokens_per_gpu: dict[str, int | None]   # None: the weights do not fit
    ep: dict[str, EPResult | None]   # by hardware; None for a dense model


def compare_models(models: list[Model], hardware: list[Hardware], *,
                   context_tokens: int = DEFAULT_CONTEXT_TOKENS,
                   seq_len: int = DEFAULT_SEQ_LEN) -> list[ModelRow]:
    """One row per model: memory, compute and (for MoE) EP figures on each hardware."""
    from planner.calc.ep import ep_decode_limit
    from planner.calc.flops import model_flops_per_token
    from planner.calc.kv_cache import attention_kv_read_bytes_per_query, model_kv_cache
    from planner.calc.memory import max_context_tokens
    from planner.calc.params import model_params
    from planner.units import dtype_bytes

    rows: list[ModelRow] = []
    first_kv = None
    for m in models:
        p = model_params(m)
        kv = model_kv_cache(m, dtype=KV_DTYPE, context_tokens=context_tokens)
        # A decode step reads C × per token of an all-full model, else what its layers read.
        read_per_token = (kv.kv_cache_bytes_per_token if not m.has_attention_pattern else
                          float(attention_kv_read_bytes_per_query(
                              m, context_tokens=context_tokens, kv_dtype=KV_DTYPE))
                          / context_tokens)
        first_kv = first_kv or kv.kv_cache_bytes_per_token
        fl = model_flops_per_token(m, seq_len=seq_len)
        ctx: dict[str, int | None] = {}
        ep = {}
        for h in hardware:
            node = h.scale_up_domain_gpus
            ctx[h.name or h.label] = max_context_tokens(
                m, h, weights_dtype=WEIGHT_DTYPE, kv_dtype=KV_DTYPE, ep=node if m.is_moe else 1,
                tp=node)
            ep[h.name or h.label] = ep_decode_limit(m, h) if m.is_moe else None
        rows.append(ModelRow(
            model=m.name or m.label, attention=kv.attention, ffn="MoE" if m.is_moe else "dense",
            params_total=p.total.total, params_activated=p.activated.total,
            kv_cache_bytes_per_token=kv.kv_cache_bytes_per_token,
            kv_multiplier_vs_first=kv.kv_cache_bytes_per_token / first_kv,
            decode_bytes_per_step=decode_bytes_per_step(
                activated_params=p.activated.total, bytes_per_param=dtype_bytes(WEIGHT_DTYPE),
                context_tokens=context_tokens, kv_bytes_per_token=read_per_token),
            forward_flops_per_token=fl.forward_flops_per_token,
            train_flops_per_token=fl.train_flops_per_token,
            max_context_tokens_per_gpu=ctx, ep=ep,
        ))
    return rows


# ------------------------------------------------------------ KV bytes against context
#: Contexts of the crossover table (tokens): 1K to 1M.
CROSSOVER_CONTEXTS = (1024, 4096, 16_384, 65_536, 131_072, 262_144, 1_048_576)
#: Largest context a crossover is searched to (tokens), and the search grid's points.
CROSSOVER_MAX_TOKENS = 2**24
CROSSOVER_GRID_POINTS = 4096


@dataclass(frozen=True)
class ContextCurve:
    """One model's cache and decode reads at each context, and where it crosses the first's."""

    model: str
    attention: str
    contexts: tuple[int, ...]
    kv_bytes_per_sequence: tuple[float, ...]
    read_bytes_per_query: tuple[float, ...]
    #: Parts of one decode query's attention at the largest context (FLOPs and bytes by kind).
    flops_parts: dict[str, tuple[float, ...]]
    #: First context (tokens) from which this model's cache / reads are below the first model's
    #: and stay below up to CROSSOVER_MAX_TOKENS; None: never; 1: from the start.
    cache_below_first_from: int | None
    read_below_first_from: int | None


def _first_context_below(f, g) -> int | None:
    """Smallest C ≤ CROSSOVER_MAX_TOKENS with f(c) < g(c) for every c in [C, max]: a geometric
    grid, then integer bisection between the last two grid points that differ."""
    import numpy as np

    grid = np.unique(np.geomspace(1, CROSSOVER_MAX_TOKENS, CROSSOVER_GRID_POINTS).round())
    below = f(grid) < g(grid)
    if not below[-1]:
        return None
    last_not = np.flatnonzero(~below)
    if last_not.size == 0:
        return 1
    lo, hi = int(grid[last_not[-1]]), int(grid[last_not[-1] + 1])   # f(lo) >= g(lo), f(hi) < g(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if float(f(mid)) >= float(g(mid)) else (lo, mid)
    return hi


def context_curves(models: list[Model], *, contexts=CROSSOVER_CONTEXTS,
                   kv_dtype: str = KV_DTYPE) -> list[ContextCurve]:
    """Each model's KV cache per sequence and decode reads per query at ``contexts`` (one
    vectorized call each), with the contexts from which it stays below the first model's."""
    import numpy as np

    from planner.calc.flops import attention_core_flops_parts_per_query
    from planner.calc.kv_cache import (attention_kv_read_bytes_per_query,
                                       attention_kv_read_parts_per_query,
                                       kv_cache_bytes_per_sequence)

    def cache(m):
        return lambda c: kv_cache_bytes_per_sequence(m, context_tokens=c, kv_dtype=kv_dtype)

    def read(m):
        return lambda c: attention_kv_read_bytes_per_query(m, context_tokens=c,
                                                           kv_dtype=kv_dtype)

    c = np.asarray(contexts, dtype=float)
    out = []
    for i, m in enumerate(models):
        flops = attention_core_flops_parts_per_query(m, context_tokens=c)
        reads = attention_kv_read_parts_per_query(m, context_tokens=c, kv_dtype=kv_dtype)
        parts = {f"{k} FLOPs": tuple(map(float, v)) for k, v in flops.items() if v.any()}
        parts.update({f"{k} bytes read": tuple(map(float, v)) for k, v in reads.items()
                      if v.any()})
        out.append(ContextCurve(
            model=m.name or m.label, attention=m.attention_label, contexts=tuple(contexts),
            kv_bytes_per_sequence=tuple(map(float, cache(m)(c))),
            read_bytes_per_query=tuple(map(float, read(m)(c))), flops_parts=parts,
            cache_below_first_from=None if i == 0 else _first_context_below(
                cache(m), cache(models[0])),
            read_below_first_from=None if i == 0 else _first_context_below(
                read(m), read(models[0]))))
    return out


def plot_context_curves(curves: list[ContextCurve], path: str) -> None:
    """Draw KV cache per sequence (solid) and decode bytes read per query (dashed) against the
    context, one colour per model, log-log. Needs matplotlib (the ``plot`` extra)."""
    from planner.report.explore import pyplot, save_plot

    plt = pyplot(path)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, cv in enumerate(curves):
        colour = f"C{i % 10}"
        ax.plot(cv.contexts, [b / 1e9 for b in cv.kv_bytes_per_sequence], lw=2, color=colour,
                marker="o", label=f"{cv.model} ({cv.attention}): cache")
        ax.plot(cv.contexts, [b / 1e9 for b in cv.read_bytes_per_query], lw=1.5, ls="--",
                color=colour, label=f"{cv.model}: read per decode token")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel(f"GB ({KV_DTYPE.upper()} cache)")
    ax.set_title("KV cache per sequence and decode reads against context")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(plt, fig, path)
