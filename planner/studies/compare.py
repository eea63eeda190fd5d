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
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.memory import max_context_tokens
    from planner.calc.params import model_params
    from planner.units import dtype_bytes

    rows: list[ModelRow] = []
    first_kv = None
    for m in models:
        p = model_params(m)
        kv = model_kv_cache(m, dtype=KV_DTYPE)
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
                context_tokens=context_tokens, kv_bytes_per_token=kv.kv_cache_bytes_per_token),
            forward_flops_per_token=fl.forward_flops_per_token,
            train_flops_per_token=fl.train_flops_per_token,
            max_context_tokens_per_gpu=ctx, ep=ep,
        ))
    return rows
