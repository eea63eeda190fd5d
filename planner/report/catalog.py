"""Tables of the catalog commands: ``planner models``, ``planner hardware``, ``planner show``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from planner.report.formats import (fmt_bytes, fmt_count_si, fmt_gflop, fmt_int, fmt_rate_bytes,
                                     fmt_seconds)
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.calc.flops import FlopsResult
    from planner.calc.kv_cache import KVCacheResult
    from planner.calc.params import ParamCounts
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import DenseFFN, HeadAttention, MLAttention, Model, MoEFFN


# ----------------------------------------------------------------------------- models
def catalog_models_table(models: list[Model], params: list[ParamCounts],
                         kv: list[KVCacheResult]) -> Table:
    t = Table("Models (built-in catalog)",
              ["name", "attention", "FFN", "layers", "hidden", "params total",
               "params activated", "KV cache / token (BF16)"], right_align_from=3)
    for m, p, k in zip(models, params, kv):
        rec: dict[str, Any] = {
            "model": m.name, "display_name": m.label, "attention": m.attention_label.lower(),
            "ffn": m.ffn.kind, "num_layers": m.num_layers, "hidden_size": m.hidden_size,
            "params_total": p.params_total, "params_activated": p.params_activated,
            "kv_cache_bytes_per_token": k.kv_cache_bytes_per_token, "source": m.source}
        moe = cast("MoEFFN", m.ffn)
        ffn = (f"MoE {moe.num_routed_experts}+{moe.num_shared_experts}, "
               f"top-{moe.num_experts_per_token}" if m.is_moe else "dense")
        t.add(rec, [rec["model"], rec["attention"].upper(), ffn, str(rec["num_layers"]),
                    f"{rec['hidden_size']:,}", fmt_count_si(rec["params_total"]),
                    fmt_count_si(rec["params_activated"]),
                    fmt_bytes(rec["kv_cache_bytes_per_token"])])
    patterned = [k for m, k in zip(models, kv) if m.has_attention_pattern]
    if patterned:
        t.notes.append(f"SWA (sliding window), DSA (sparse) and linear layers: KV cache per "
                       f"token at a {patterned[0].context_tokens:,}-token context (the cache of "
                       "one sequence / its tokens; linear layers' state included)")
    return t


def _model_record(m: Model, p: ParamCounts, kv: KVCacheResult, fl: FlopsResult
                  ) -> dict[str, Any]:
    from planner.calc.params import ACTIVATED_CONVENTION

    return {"model": m.name, "display_name": m.label, "source": m.source,
            "num_layers": m.num_layers, "hidden_size": m.hidden_size,
            "vocab_size": m.vocab_size, "attention": m.attention.kind, "ffn": m.ffn.kind,
            "params_total": p.params_total, "params_activated": p.params_activated,
            "params_activated_with_embedding": p.params_activated_with_embedding,
            "params_activated_convention": ACTIVATED_CONVENTION,
            "params_total_by_part": p.total.as_dict(),
            "params_activated_by_part": p.activated.as_dict(),
            "kv_cache_bytes_per_token": kv.kv_cache_bytes_per_token,
            "forward_flops_per_token": fl.forward_flops_per_token,
            "train_flops_per_token": fl.train_flops_per_token, "seq_len": fl.seq_len,
            "convention": fl.convention}


def model_detail_tables(m: Model, p: ParamCounts, kv: KVCacheResult,
                        fl: FlopsResult) -> list[Table]:
    rec = _model_record(m, p, kv, fl)
    kv_at = f", C = {kv.context_tokens:,}" if m.has_attention_pattern else ""
    spec = Table(f"{m.label} ({m.name})", ["field", "value"], right_align_from=2)
    spec.rows += [["source", rec["source"]], ["layers", str(rec["num_layers"])],
                  ["hidden size", f"{rec['hidden_size']:,}"],
                  ["vocabulary", f"{rec['vocab_size']:,}"],
                  ["tied embeddings", str(m.tie_word_embeddings).lower()],
                  ["attention", _attention_text(m.attention)], ["FFN", _ffn_text(m.ffn)],
                  ["MTP depth", str(m.mtp_depth)]]
    if m.has_attention_pattern:
        spec.rows.append(["attention layers", _layers_text(m)])
    spec.records = [rec]
    breakdown = Table("Parameters by part", ["part", "total", "activated per token"])
    active = rec["params_activated_by_part"]
    for name, total in rec["params_total_by_part"].items():
        breakdown.rows.append([name, fmt_int(total),
                               fmt_int(active[name]) if name in active else "lookup"])
    breakdown.rows.append(["total", fmt_int(rec["params_total"]),
                           fmt_int(rec["params_activated"])])
    breakdown.rows.append(["activated with the input embedding", "",
                           fmt_int(rec["params_activated_with_embedding"])])
    breakdown.notes.append(f"params_activated: {rec['params_activated_convention']}")
    derived = Table("Derived figures", ["metric", "value"])
    kv_bytes, at = rec["kv_cache_bytes_per_token"], f"s = {rec['seq_len']}, {rec['convention']}"
    derived.rows += [
        [f"kv_cache_bytes_per_token (BF16{kv_at})",
         f"{fmt_int(kv_bytes)} B ({fmt_bytes(kv_bytes)})"],
        [f"forward_flops_per_token ({at})", fmt_gflop(rec["forward_flops_per_token"])],
        [f"train_flops_per_token ({at})", fmt_gflop(rec["train_flops_per_token"])],
    ]
    return [spec, breakdown, derived]


def _layers_text(m: Model) -> str:
    words = {"full": lambda g: "full",
             "sliding_window": lambda g: f"sliding window {g.window}",
             "sparse": lambda g: (f"DSA top-{g.top_k}, indexer {g.indexer_num_heads} x "
                                  f"{g.indexer_head_dim}"),
             "linear": lambda g: (f"linear (Gated DeltaNet {g.num_value_heads} x "
                                  f"{g.key_head_dim} x {g.value_head_dim}, {g.state_dtype})")}
    return "; ".join(f"{g.count} {words[g.kind](g)}" for g in m.layer_groups)


def _attention_text(att: HeadAttention | MLAttention) -> str:
    if att.kind == "mla":
        return (f"MLA, {att.num_heads} heads, q_lora {att.q_lora_rank}, kv_lora "
                f"{att.kv_lora_rank}, rope {att.qk_rope_head_dim}, nope {att.qk_nope_head_dim}, "
                f"v {att.v_head_dim}")
    return (f"{att.kind.upper()}, {att.num_heads} heads, {att.num_kv_heads} KV heads, "
            f"head dim {att.head_dim}" + (", QKV bias" if att.qkv_bias else ""))


def _ffn_text(ffn: DenseFFN | MoEFFN) -> str:
    if ffn.kind == "dense":
        return f"dense, intermediate {ffn.intermediate_size:,}" + (" (gated)" if ffn.gated else "")
    text = (f"MoE, {ffn.num_routed_experts} routed + {ffn.num_shared_experts} shared, "
            f"top-{ffn.num_experts_per_token}, expert {ffn.expert_intermediate_size:,}")
    if ffn.num_dense_layers:
        text += f"; first {ffn.num_dense_layers} dense ({ffn.dense_intermediate_size:,})"
    if ffn.num_expert_groups > 1:
        text += f"; {ffn.num_expert_groups} groups, at most {ffn.num_limited_groups} per token"
    return text


# ----------------------------------------------------------------------------- hardware
def hardware_record(h: Hardware) -> dict[str, Any]:
    peaks = h.gpu.peak_dense_tflop_per_s

    def peak(dtype: str) -> float | None:
        v = getattr(peaks, dtype) if peaks else None
        return v * 1e12 if v else None

    return {
        "hardware": h.name, "display_name": h.label,
        "peak_dense_bf16_flop_per_s": peak("bf16"),
        "peak_dense_fp8_flop_per_s": peak("fp8"),
        "peak_dense_fp4_flop_per_s": peak("fp4"),
        "hbm_capacity_bytes": h.gpu.hbm_capacity_bytes,
        "hbm_usable_bytes": h.gpu.hbm_usable_bytes,
        "hbm_bandwidth_bytes_per_s": h.gpu.hbm_bandwidth_bytes_per_s,
        "scale_up_domain_gpus": h.scale_up_domain_gpus,
        "scale_up_bandwidth_bytes_per_s_unidirectional": (
            h.scale_up.bandwidth_bytes_per_s if h.scale_up else None),
        "scale_out_bandwidth_bytes_per_s_unidirectional": h.scale_out.bandwidth_bytes_per_s,
        "price_usd_per_gpu_hour": h.price_usd_per_gpu_hour,
        "source": h.source,
    }


def _capacity_text(h: Hardware) -> str:
    """The memory capacity in the datasheet's unit: '80 GiB' (binary) or '102 GB' (decimal)."""
    gpu = h.gpu
    return (f"{gpu.hbm_capacity_gib:g} GiB" if gpu.hbm_capacity_gib is not None
            else f"{gpu.hbm_capacity_gb:g} GB")


def _capacity_detail(h: Hardware) -> str:
    """The capacity, its bytes, and what an engine can use where the spec gives it."""
    gpu = h.gpu
    text = f"{_capacity_text(h)} = {fmt_bytes(gpu.hbm_capacity_bytes)}"
    if gpu.hbm_usable_mib is not None:
        text += (f" (usable by engines: {gpu.hbm_usable_mib:,g} MiB = "
                 f"{fmt_bytes(gpu.hbm_usable_bytes)})")
    return text


def _peak_text(h: Hardware, dtype: str) -> str:
    """A dense peak as the datasheet writes it (TFLOP/s), or n/a."""
    peaks = h.gpu.peak_dense_tflop_per_s
    v = getattr(peaks, dtype) if peaks else None
    return f"{v:,g} TFLOP/s" if v else "n/a"


def catalog_hardware_table(hws: list[Hardware]) -> Table:
    t = Table("Hardware (built-in catalog; per GPU; dense peaks; unidirectional bandwidths)",
              ["name", "BF16 dense", "FP8 dense", "HBM", "HBM bandwidth",
               "scale-up (uni)", "domain", "scale-out (uni)"], right_align_from=1)
    for h in hws:
        rec = hardware_record(h)
        up = rec["scale_up_bandwidth_bytes_per_s_unidirectional"]
        t.add(rec, [
            rec["hardware"], _peak_text(h, "bf16"), _peak_text(h, "fp8"),
            _capacity_text(h), f"{h.gpu.hbm_bandwidth_tb_per_s:g} TB/s",
            fmt_rate_bytes(up) if h.scale_up else "none",
            f"{rec['scale_up_domain_gpus']} GPUs" if h.scale_up else "1 GPU",
            fmt_rate_bytes(rec["scale_out_bandwidth_bytes_per_s_unidirectional"]),
        ])
    return t


def catalog_engines_table(engines: list[Engine]) -> Table:
    """The serving engines with their scheduling defaults and host overheads (and sources)."""
    from planner.specs.engine import OVERHEAD_FIELDS

    t = Table("Serving engines (built-in catalog; host overheads with their sources: -f json)",
              ["name", "version", "mixed batching", "chunked prefill", "token budget",
               "overlap scheduling", "memory fraction",
               "step / prefill / request / per-layer / all-reduce-per-peer overhead",
               "burst share"],
              right_align_from=4)
    for e in engines:
        rec = {"engine": e.name, "display_name": e.label, "version": e.version,
               "mixed_batching": e.mixed_batching, "chunked_prefill": e.chunked_prefill,
               "max_num_tokens": e.max_num_tokens, "cuda_graphs": e.cuda_graphs,
               "overlap_scheduling": e.overlap_scheduling,
               "gpu_memory_fraction": e.gpu_memory_fraction,
               "attention_kernels": e.attention_kernels, "moe_kernels": e.moe_kernels,
               "source": e.source,
               **{name: getattr(e, name) for name in OVERHEAD_FIELDS},
               **{f"{name}_source": getattr(e.overheads, name).source
                  for name in OVERHEAD_FIELDS}}
        t.add(rec, [e.name or e.label, e.version, _yes(e.mixed_batching),
                    _yes(e.chunked_prefill), f"{e.max_num_tokens:,}",
                    _yes(e.overlap_scheduling), f"{e.gpu_memory_fraction:g}",
                    " / ".join(fmt_seconds(getattr(e, n)) for n in OVERHEAD_FIELDS
                               if n != "burst_share"), f"{e.burst_share:.3g}"])
    return t


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _hardware_rows(h: Hardware, rec: dict[str, Any]) -> list[list[str]]:
    up, out = h.scale_up, h.scale_out
    price = rec["price_usd_per_gpu_hour"]
    return [
        ["source", rec["source"]],
        *[[f"peak dense {dtype.upper()}", _peak_text(h, dtype)]
          for dtype in ("bf16", "fp8", "fp4")],
        ["HBM", f"{_capacity_detail(h)}, {h.gpu.hbm_bandwidth_tb_per_s:g} TB/s"],
        ["scale-up", f"{up.technology}: {up.domain_gpus} GPUs, "
                     f"{fmt_rate_bytes(up.bandwidth_bytes_per_s)} per GPU per direction"
                     if up else "none (a single device)"],
        ["scale-out", f"{out.technology}: {out.nics_per_gpu:g} x "
                      f"{out.nic_bandwidth_gbit_per_s:g} Gbit/s = "
                      f"{fmt_rate_bytes(out.bandwidth_bytes_per_s)} per GPU per direction"],
        ["price", f"${price:g} per GPU-hour" if price else "n/a"],
    ]


def hardware_detail_tables(h: Hardware) -> list[Table]:
    from dataclasses import fields

    rec = hardware_record(h)
    rec["efficiency"] = {}
    for name in (f.name for f in fields(h.efficiency)):
        f = getattr(h.efficiency, name)
        assumed = (f" [assumed (from {h.efficiency_from})]"
                   if name in h.efficiency_inherited else "")
        if isinstance(f, dict) and name == "routed_skew":   # time ratios over EP and rows
            rec["efficiency"][name] = {
                "frac": ", ".join(f"{k} x{min(map(min, t.factor)):g}-{max(map(max, t.factor)):g}"
                                  for k, t in f.items()),
                "source": next(iter(f.values())).source + assumed,
                "tables": {k: {"ep": list(t.ep), "rows": list(t.rows),
                               "factor": [list(r) for r in t.factor],
                               "reduction": t.reduction} for k, t in f.items()}}
        elif isinstance(f, dict):   # measured tables over M, one per kernel precision
            rec["efficiency"][name] = {
                "frac": ", ".join(f"{k} {t.frac[0]:g}-{t.frac[-1]:g}" for k, t in f.items()),
                "source": next(iter(f.values())).source + assumed,
                "tables": {k: {"rows": list(t.rows), "frac": list(t.frac), "peak": t.peak,
                               "reduction": t.reduction} for k, t in f.items()}}
        else:
            rec["efficiency"][name] = ({"frac": f.frac, "source": f.source + assumed}
                                       if f else None)
    t = Table(f"{h.label} ({h.name})", ["field", "value"], right_align_from=2)
    t.rows += _hardware_rows(h, rec)
    t.records = [rec]
    eff = Table("Efficiency factors (achievable / peak; used only when asked for achievable)",
                ["factor", "fraction", "source"], align="lrl")
    for name, factor in rec["efficiency"].items():
        frac = factor and factor["frac"]
        eff.rows.append([name, (frac if isinstance(frac, str) else f"{frac:g}") if factor else "n/a",
                         factor["source"] if factor else "not given"])
    return [t, eff]
