"""Rendering: results -> tables (rich), JSON, CSV or Markdown. The only module that formats.

Every command builds a list of :class:`Table` s: display rows (strings, human units) for the
terminal and Markdown, and records (base-unit numbers, metric names of the design vocabulary)
for JSON and CSV. JSON is always a list of records; a metric that does not apply is ``null``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, TextIO

#: Width of a rich table written to a pipe or a file (a terminal uses its own width).
PIPE_WIDTH = 160


# ----------------------------------------------------------------------------- number formats
def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def fmt_count_si(x: float) -> str:
    """1.2345e9 -> '1.23 B' (billions, as model cards write parameter counts)."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:,.2f} {suffix}"
    return f"{x:,.0f}"


def fmt_bytes(x: float) -> str:
    """Decimal units, as the paper: 70,272 -> '70.272 KB'."""
    for scale, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if abs(x) >= scale:
            return f"{x / scale:,.3f} {suffix}"
    return f"{x:,.0f} B"


def fmt_seconds(x: float) -> str:
    if x >= 1:
        return f"{x:,.3f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3f} ms"
    return f"{x * 1e6:.2f} µs"


def fmt_rate_bytes(x: float) -> str:
    return f"{x / 1e9:,.1f} GB/s"


def fmt_gflop(x: float) -> str:
    return f"{x / 1e9:,.2f} GFLOP"


def fmt_tokens_per_s(x: float) -> str:
    return f"{x:,.2f} tokens/s"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


def fmt_frac_pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


def fmt_value(x: Any, unit: str) -> str:
    """Format a base-unit value by its unit."""
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return {
        "bytes": fmt_bytes, "s": fmt_seconds, "FLOPs": fmt_gflop, "tokens/s": fmt_tokens_per_s,
        "x": fmt_ratio, "bytes/s": fmt_rate_bytes, "count": fmt_count_si,
        "fraction": lambda v: f"{v * 100:.2f}%", "USD": lambda v: f"{v:,.0f} USD",
        "h": lambda v: f"{v:,.0f} GPU-hours", "FLOP/s": lambda v: f"{v / 1e12:,.1f} TFLOP/s",
    }.get(unit, lambda v: f"{v:g}")(x)


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    """One table: display ``rows`` (strings) under ``headers``, the machine-readable ``records``,
    and ``notes`` printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    right_align_from: int = 1
    #: Per-column alignment, "l", "r", or "L" (left, never wrapped); overrides right_align_from.
    align: str | None = None

    def is_right(self, j: int) -> bool:
        if self.align is not None:
            return self.align[j] == "r"
        return j >= self.right_align_from

    def footnote(self, text: str) -> str:
        """Add ``text`` as a numbered note under the table (once) and return its marker."""
        if not text:
            return ""
        entry = f"[{len(self.notes) + 1}] {text}"
        for existing in self.notes:
            if existing.split("] ", 1)[-1] == text:
                return existing.split(" ", 1)[0]
        self.notes.append(entry)
        return entry.split(" ", 1)[0]


def clean(value: Any) -> Any:
    """JSON-safe value: NaN/inf become null, floats that are integers stay floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render(tables: list[Table], fmt: str, out: TextIO | None = None) -> None:
    """Write ``tables`` to ``out`` (stdout) in ``fmt``: table, json, csv or markdown."""
    out = out or sys.stdout
    if fmt == "json":
        import json

        records = [{k: clean(v) for k, v in r.items()} for t in tables for r in t.records]
        out.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _render_csv(tables, out)
    elif fmt == "markdown":
        _render_markdown(tables, out)
    else:
        _render_rich(tables, out)


def _render_csv(tables: list[Table], out: TextIO) -> None:
    import csv
    import io

    records = [r for t in tables for r in t.records]
    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: _csv_cell(r.get(k)) for k in keys})
    out.write(buf.getvalue())


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, ensure_ascii=False)
    return clean(v) if clean(v) is not None else ""


def _render_markdown(tables: list[Table], out: TextIO) -> None:
    for i, t in enumerate(tables):
        if i:
            out.write("\n")
        out.write(f"### {t.title}\n\n")
        out.write("| " + " | ".join(t.headers) + " |\n")
        out.write("|" + "|".join("---:" if t.is_right(j) else "---"
                                 for j in range(len(t.headers))) + "|\n")
        for row in t.rows:
            out.write("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |\n")
        for note in t.notes:
            out.write(f"\n{note}\n")


def _render_rich(tables: list[Table], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    # A terminal gets its own width; a pipe or file a wide one, so logs do not wrap cells.
    width = None if out.isatty() else PIPE_WIDTH
    console = Console(file=out, highlight=False, soft_wrap=False, width=width)
    for i, t in enumerate(tables):
        if i:
            console.print()
        # Text, not str: cells are never read as rich markup (a model named "[red]x" prints as
        # written), and markup parsing is skipped.
        rt = RichTable(title=Text(t.title), title_justify="left", title_style="bold")
        for j, h in enumerate(t.headers):
            rt.add_column(Text(h), justify="right" if t.is_right(j) else "left",
                          overflow="fold", min_width=None if t.is_right(j) else 10,
                          no_wrap=t.is_right(j) or (t.align is not None and t.align[j] == "L"))
        for row in t.rows:
            rt.add_row(*(Text(c) for c in row))
        console.print(rt)
        for note in t.notes:
            console.print(note, style="dim", markup=False)


def explain_table(title: str, formula: str, ref: str, inputs: Iterable[Any],
                  basis: str | None = None) -> Table:
    """An --explain table: the formula, every input with its origin, and the reference."""
    from planner.report.flags import cli_origin

    t = Table(title=f"explain: {title}", headers=["input", "value", "unit", "from"],
              align="lrll")
    for inp in inputs:
        value = inp.value if isinstance(inp.value, str) else f"{inp.value:,.6g}"
        t.rows.append([inp.name, value, inp.unit, cli_origin(inp.origin)])
    t.notes = [f"Formula: {formula}", f"Ref: {ref}"] + ([f"Figures used: {basis}"] if basis else [])
    t.records = [{"explain": title, "formula": formula, "ref": ref,
                  "inputs": [{"name": i.name, "value": i.value, "unit": i.unit,
                              "from": cli_origin(i.origin)} for i in inputs]}]
    return t


# ----------------------------------------------------------------------------- builders
def catalog_models_table(models: list[Any], params: list[Any], kv: list[Any]) -> Table:
    t = Table("Models (built-in catalog)",
              ["name", "attention", "FFN", "layers", "hidden", "params total",
               "params activated", "KV cache / token (BF16)"], right_align_from=3)
    for m, p, k in zip(models, params, kv):
        ffn = (f"MoE {m.ffn.num_routed_experts}+{m.ffn.num_shared_experts}, "
               f"top-{m.ffn.num_experts_per_token}" if m.is_moe else "dense")
        t.rows.append([m.name, m.attention.kind.upper(), ffn, str(m.num_layers),
                       f"{m.hidden_size:,}", fmt_count_si(p.params_total),
                       fmt_count_si(p.params_activated), fmt_bytes(k.kv_cache_bytes_per_token)])
        t.records.append({"model": m.name, "display_name": m.label, "attention": m.attention.kind,
                          "ffn": m.ffn.kind, "num_layers": m.num_layers,
                          "hidden_size": m.hidden_size, "params_total": p.params_total,
                          "params_activated": p.params_activated,
                          "kv_cache_bytes_per_token": k.kv_cache_bytes_per_token,
                          "source": m.source})
    return t


def catalog_hardware_table(hws: list[Any]) -> Table:
    t = Table("Hardware (built-in catalog; per GPU; dense peaks; unidirectional bandwidths)",
              ["name", "BF16 dense", "FP8 dense", "HBM", "HBM bandwidth",
               "scale-up (uni)", "domain", "scale-out (uni)"], right_align_from=1)
    for h in hws:
        peaks = h.gpu.peak_dense_tflop_per_s
        bf16, fp8 = (peaks.bf16, peaks.fp8) if peaks else (None, None)
        up = h.scale_up
        t.rows.append([
            h.name, f"{bf16:,g} TFLOP/s" if bf16 else "n/a",
            f"{fp8:,g} TFLOP/s" if fp8 else "n/a", f"{h.gpu.hbm_capacity_gb:g} GB",
            f"{h.gpu.hbm_bandwidth_tb_per_s:g} TB/s",
            fmt_rate_bytes(up.bandwidth_bytes_per_s) if up else "none",
            f"{up.domain_gpus} GPUs" if up else "1 GPU",
            fmt_rate_bytes(h.scale_out.bandwidth_bytes_per_s),
        ])
        t.records.append(hardware_record(h))
    return t


def hardware_record(h: Any) -> dict[str, Any]:
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
        "hbm_bandwidth_bytes_per_s": h.gpu.hbm_bandwidth_bytes_per_s,
        "scale_up_domain_gpus": h.scale_up_domain_gpus,
        "scale_up_bandwidth_bytes_per_s_unidirectional": (
            h.scale_up.bandwidth_bytes_per_s if h.scale_up else None),
        "scale_out_bandwidth_bytes_per_s_unidirectional": h.scale_out.bandwidth_bytes_per_s,
        "price_usd_per_gpu_hour": h.price_usd_per_gpu_hour,
        "source": h.source,
    }


def model_detail_tables(m: Any, p: Any, kv: Any, fl: Any) -> list[Table]:
    att = m.attention
    spec = Table(f"{m.label} ({m.name})", ["field", "value"], right_align_from=2)
    spec.rows += [["source", m.source], ["layers", str(m.num_layers)],
                  ["hidden size", f"{m.hidden_size:,}"], ["vocabulary", f"{m.vocab_size:,}"],
                  ["tied embeddings", str(m.tie_word_embeddings).lower()],
                  ["attention", _attention_text(att)], ["FFN", _ffn_text(m.ffn)],
                  ["MTP depth", str(m.mtp_depth)]]
    breakdown = Table("Parameters by part", ["part", "total", "activated per token"])
    for (name, total), (_, active) in zip(p.total.items, p.activated.items):
        breakdown.rows.append([name, fmt_int(total), fmt_int(active)])
    breakdown.rows.append(["total", fmt_int(p.params_total), fmt_int(p.params_activated)])
    derived = Table("Derived figures", ["metric", "value"])
    derived.rows += [
        ["kv_cache_bytes_per_token (BF16)", f"{fmt_int(kv.kv_cache_bytes_per_token)} B "
                                            f"({fmt_bytes(kv.kv_cache_bytes_per_token)})"],
        [f"forward_flops_per_token (s = {fl.seq_len}, {fl.convention})",
         fmt_gflop(fl.forward_flops_per_token)],
        [f"train_flops_per_token (s = {fl.seq_len}, {fl.convention})",
         fmt_gflop(fl.train_flops_per_token)],
    ]
    record = {"model": m.name, "display_name": m.label, "source": m.source,
              "num_layers": m.num_layers, "hidden_size": m.hidden_size,
              "vocab_size": m.vocab_size, "attention": att.kind, "ffn": m.ffn.kind,
              "params_total": p.params_total, "params_activated": p.params_activated,
              "params_total_by_part": p.total.as_dict(),
              "params_activated_by_part": p.activated.as_dict(),
              "kv_cache_bytes_per_token": kv.kv_cache_bytes_per_token,
              "forward_flops_per_token": fl.forward_flops_per_token,
              "train_flops_per_token": fl.train_flops_per_token, "seq_len": fl.seq_len,
              "convention": fl.convention}
    spec.records = [record]
    return [spec, breakdown, derived]


def hardware_detail_tables(h: Any) -> list[Table]:
    t = Table(f"{h.label} ({h.name})", ["field", "value"], right_align_from=2)
    peaks = h.gpu.peak_dense_tflop_per_s
    t.rows += [["source", h.source]]
    for dtype in ("bf16", "fp8", "fp4"):
        v = getattr(peaks, dtype) if peaks else None
        t.rows.append([f"peak dense {dtype.upper()}", f"{v:,g} TFLOP/s" if v else "n/a"])
    t.rows += [
        ["HBM", f"{h.gpu.hbm_capacity_gb:g} GB, {h.gpu.hbm_bandwidth_tb_per_s:g} TB/s"],
        ["scale-up", f"{h.scale_up.technology}: {h.scale_up.domain_gpus} GPUs, "
                     f"{fmt_rate_bytes(h.scale_up.bandwidth_bytes_per_s)} per GPU per direction"
                     if h.scale_up else "none (a single device)"],
        ["scale-out", f"{h.scale_out.technology}: {h.scale_out.nics_per_gpu:g} x "
                      f"{h.scale_out.nic_bandwidth_gbit_per_s:g} Gbit/s = "
                      f"{fmt_rate_bytes(h.scale_out.bandwidth_bytes_per_s)} per GPU per direction"],
        ["price", f"${h.price_usd_per_gpu_hour:g} per GPU-hour"
                  if h.price_usd_per_gpu_hour else "n/a"],
    ]
    eff = Table("Efficiency factors (achievable / peak; used only when asked for achievable)",
                ["factor", "fraction", "source"], right_align_from=1)
    record = hardware_record(h)
    record["efficiency"] = {}
    from dataclasses import fields

    for name in (f.name for f in fields(h.efficiency)):
        f = getattr(h.efficiency, name)
        eff.rows.append([name, f"{f.frac:g}" if f else "n/a", f.source if f else "not given"])
        record["efficiency"][name] = {"frac": f.frac, "source": f.source} if f else None
    t.records = [record]
    return [t, eff]


def _attention_text(att: Any) -> str:
    if att.kind == "mla":
        return (f"MLA, {att.num_heads} heads, q_lora {att.q_lora_rank}, kv_lora "
                f"{att.kv_lora_rank}, rope {att.qk_rope_head_dim}, nope {att.qk_nope_head_dim}, "
                f"v {att.v_head_dim}")
    return (f"{att.kind.upper()}, {att.num_heads} heads, {att.num_kv_heads} KV heads, "
            f"head dim {att.head_dim}" + (", QKV bias" if att.qkv_bias else ""))


def _ffn_text(ffn: Any) -> str:
    if ffn.kind == "dense":
        return f"dense, intermediate {ffn.intermediate_size:,}" + (" (gated)" if ffn.gated else "")
    text = (f"MoE, {ffn.num_routed_experts} routed + {ffn.num_shared_experts} shared, "
            f"top-{ffn.num_experts_per_token}, expert {ffn.expert_intermediate_size:,}")
    if ffn.num_dense_layers:
        text += f"; first {ffn.num_dense_layers} dense ({ffn.dense_intermediate_size:,})"
    if ffn.num_expert_groups > 1:
        text += f"; {ffn.num_expert_groups} groups, at most {ffn.num_limited_groups} per token"
    return text


def kv_cache_table(results: list[Any]) -> Table:
    first = results[0]
    with_context = any(r.context_tokens != 1 or r.batch != 1 for r in results)
    headers = ["model", "attention", "dtype", "elements / layer", "bytes / token",
               "KB / token", f"vs {first.model}"]
    if with_context:
        headers.append(f"cache ({first.context_tokens:,} tokens x {first.batch})")
    t = Table("KV cache per token (paper Table 1)", headers, right_align_from=3)
    for r in results:
        row = [r.model, r.attention.upper(), r.dtype, f"{r.elements_per_token_per_layer:,}",
               fmt_int(r.kv_cache_bytes_per_token), f"{r.kv_cache_bytes_per_token / 1e3:,.3f}",
               fmt_ratio(r.multiplier_vs_first)]
        if with_context:
            row.append(fmt_bytes(r.kv_cache_bytes))
        t.rows.append(row)
        t.records.append({"model": r.model, "attention": r.attention, "dtype": r.dtype,
                          "elements_per_token_per_layer": r.elements_per_token_per_layer,
                          "kv_cache_bytes_per_token": r.kv_cache_bytes_per_token,
                          "kv_cache_multiplier_vs_first": r.multiplier_vs_first,
                          "context_tokens": r.context_tokens, "batch": r.batch,
                          "kv_cache_bytes": r.kv_cache_bytes})
    t.notes.append("Decimal units: 1 KB = 1000 bytes, as in the paper.")
    return t


def flops_table(results: list[Any]) -> Table:
    t = Table(f"Training compute per token (paper Table 2; s = {results[0].seq_len})",
              ["model", "convention", "params total", "params activated",
               "forward GFLOP / token", "train GFLOP / token"], right_align_from=2)
    for r in results:
        t.rows.append([r.model, r.convention, fmt_count_si(r.params_total),
                       fmt_count_si(r.params_activated), f"{r.forward_flops_per_token / 1e9:,.2f}",
                       f"{r.train_flops_per_token / 1e9:,.2f}"])
        t.records.append({"model": r.model, "convention": r.convention, "seq_len": r.seq_len,
                          "params_total": r.params_total, "params_activated": r.params_activated,
                          "forward_flops_per_token": r.forward_flops_per_token,
                          "train_flops_per_token": r.train_flops_per_token,
                          "forward_flops_per_token_by_part": r.forward_parts.as_dict()})
    t.notes.append("FLOPs are dense (no sparsity); 1 GFLOP = 1e9 FLOPs; training = 3 x forward.")
    return t


def flops_parts_table(r: Any) -> Table:
    t = Table(f"{r.model}: forward FLOPs per token by part ({r.convention})",
              ["part", "GFLOP / token", "share"])
    total = r.forward_flops_per_token
    for name, v in r.forward_parts.items:
        t.rows.append([name, f"{v / 1e9:,.3f}", f"{v / total * 100:.1f}%"])
    t.rows.append(["total", f"{total / 1e9:,.3f}", "100.0%"])
    return t


EP_METRICS = ("ep_comm_time_per_layer_s", "time_per_layer_s", "tpot_s", "decode_tokens_per_s")


def ep_table(r: Any) -> Table:
    t = Table(f"Expert-parallel decode ceiling: {r.model} on {r.hardware} (paper §2.3.2)",
              ["metric", "value"])
    t.rows += [
        ["link", f"{r.link} ({r.link_technology}), EP {r.ep_size}"],
        ["bandwidth (per GPU, unidirectional)",
         f"{fmt_rate_bytes(r.bandwidth_bytes_per_s)} ({r.bandwidth_basis})"],
        ["bytes per token and expert", f"dispatch {fmt_int(r.dispatch_bytes_per_token_expert)} + "
                                       f"combine {fmt_int(r.combine_bytes_per_token_expert)}"],
        ["tokens per device x experts per token",
         f"{r.tokens_per_device:g} x {r.experts_per_token}"],
        ["ep_comm_time_per_layer_s", fmt_seconds(r.ep_comm_time_per_layer_s)],
        [f"time_per_layer_s ({r.num_micro_batches} micro-batches)",
         fmt_seconds(r.time_per_layer_s)],
        [f"tpot_s ({r.num_layers} layers)", fmt_seconds(r.tpot_s)],
        ["decode_tokens_per_s", f"{r.decode_tokens_per_s:,.2f}"],
    ]
    t.records.append({
        "model": r.model, "hardware": r.hardware, "link": r.link,
        "link_technology": r.link_technology, "bandwidth_bytes_per_s": r.bandwidth_bytes_per_s,
        "bandwidth_basis": r.bandwidth_basis, "ep_size": r.ep_size,
        "tokens_per_device": r.tokens_per_device, "experts_per_token": r.experts_per_token,
        "hidden_size": r.hidden_size,
        "dispatch_bytes_per_token_expert": r.dispatch_bytes_per_token_expert,
        "combine_bytes_per_token_expert": r.combine_bytes_per_token_expert,
        "num_micro_batches": r.num_micro_batches, "num_layers": r.num_layers,
        **{k: getattr(r, k) for k in EP_METRICS},
    })
    t.notes.append("Communication-only ceiling: computation fully hidden, latency not counted; "
                   "TPOT excludes time to first token.")
    return t


def paper_tables(rows: list[Any]) -> list[Table]:
    sections: dict[str, Table] = {}
    for r in rows:
        t = sections.get(r.section)
        if t is None:
            t = sections[r.section] = Table(
                r.section, ["figure", "model / hardware", "planner", "paper", "diff", "agrees",
                            "note"], align="lLrrrrl")
        diff = r.diff_frac
        agrees = {True: "yes", False: "NO", None: "-"}[r.agrees]
        where = r.model + (f" / {r.hardware}" if r.hardware else "")
        t.rows.append([r.quantity, where, _paper_value(r.value, r.unit),
                       r.paper_printed or "-", fmt_frac_pct(diff) if diff is not None else "-",
                       agrees, t.footnote(r.note)])
        t.records.append({"section": r.section, "quantity": r.quantity, "metric": r.metric,
                          "model": r.model, "hardware": r.hardware, "unit": r.unit,
                          "value": r.value, "paper_value": r.paper_value,
                          "paper_printed": r.paper_printed, "diff_frac": diff,
                          "agrees": r.agrees, "note": r.note})
    tables = list(sections.values())
    tables[-1].notes.append(
        "agrees: the planner's value, rounded the way the paper rounds it, equals the printed "
        "figure. diff: planner / paper - 1. Source: arXiv 2505.09343.")
    return tables


def _paper_value(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit == "count":
        return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    if unit == "USD":
        return f"{value / 1e6:,.1f} M$" if value >= 1e6 else f"{value / 1e3:,.2f} k$"
    if unit == "days":
        return f"{value:.2f} days"
    if unit == "FLOPs":
        return f"{value / 1e9:,.2f} GFLOP"
    if unit == "tokens/s":
        return f"{value:,.2f}"
    return fmt_value(value, unit)


# ----------------------------------------------------------------------------- scenarios
def evaluation_tables(evaluations: list[Any]) -> list[Table]:
    """One table per evaluated scenario: every metric with its value, basis and meaning; one
    JSON/CSV record per scenario whose keys are the metric names."""
    tables = []
    for e in evaluations:
        t = Table(f"Scenario {e.scenario}: {e.model} on {e.hardware}",
                  ["metric", "value", "basis", "meaning"], align="lrll")
        for name, mv in e.metrics.items():
            t.rows.append([name, fmt_value(mv.value, mv.metric.dimension),
                           mv.basis or ("" if mv.value is not None else mv.reason),
                           mv.metric.description])
        t.records.append(e.as_dict())
        t.notes.append(f"file: {e.file}. Values in base units in --format json/csv; "
                       "n/a: the metric does not apply. TPOT excludes time to first token.")
        tables.append(t)
    return tables


def check_table(report: Any) -> Table:
    """Every bound of every budget: scenario, metric, bound, value, headroom, pass/fail."""
    t = Table("Budget check", ["scenario", "metric", "bound", "value", "headroom", "result"],
              align="llrrrl")
    for r in report.results:
        op = "<=" if r.bound == "max" else ">="
        head = r.headroom_frac
        t.rows.append([r.scenario, r.metric, f"{r.bound} {op} {r.limit_text}",
                       fmt_value(r.value, r.dimension),
                       fmt_frac_pct(head) if head is not None else "n/a",
                       "pass" if r.passed else "FAIL"])
        t.records.append(r.as_dict())
    bad = len(report.violations)
    t.notes.append(f"{len(report.results)} bounds in {len(report.files)} scenario file(s): "
                   f"{len(report.results) - bad} met, {bad} violated. headroom: distance to the "
                   "bound as a fraction of the bound, negative when violated.")
    return t


def violation_message(r: Any) -> str:
    """One line: the metric, its value and the bound it breaks."""
    op = "above max" if r.bound == "max" else "below min"
    return (f"{r.scenario}: {r.metric} = {fmt_value(r.value, r.dimension)} is {op} "
            f"{r.limit_text} ({r.value:.6g} vs {r.limit:.6g} {r.dimension})")


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github_annotations(report: Any) -> list[str]:
    """GitHub Actions ``::error`` workflow commands, one per violated bound and per invalid
    input, pointing at the line of the budget in its YAML file."""
    import os

    def where(file: str | None, line: int | None) -> str:
        if not file:
            return ""
        rel = os.path.relpath(file) if not os.path.relpath(file).startswith("..") else file
        props = f"file={_gh_escape(rel, prop=True)}"
        return props + (f",line={line}" if line else "")

    lines = []
    for r in report.violations:
        props = where(r.file, r.line)
        title = _gh_escape(f"budget violated: {r.metric}", prop=True)
        lines.append(f"::error {props},title={title}::{_gh_escape(violation_message(r))}")
    for e in report.errors:
        props = where(e.file, e.line)
        sep = "," if props else ""
        lines.append(f"::error {props}{sep}title=invalid planner input::{_gh_escape(str(e))}")
    return lines


def junit_xml(report: Any) -> str:
    """JUnit XML: one ``<testsuite>`` per scenario file, one ``<testcase>`` per bound (a
    ``<failure>`` when violated); an invalid input is a test case with an ``<error>``."""
    import xml.etree.ElementTree as ET

    suites: dict[str, list[Any]] = {f: [] for f in report.files}
    for r in report.results:
        suites.setdefault(r.file, []).append(r)
    errors_by_file: dict[str, list[Any]] = {}
    for e in report.errors:
        errors_by_file.setdefault(e.file or "(input)", []).append(e)
        suites.setdefault(e.file or "(input)", [])
    root = ET.Element("testsuites", name="planner check", tests=str(
        len(report.results) + len(report.errors)), failures=str(len(report.violations)),
        errors=str(len(report.errors)))
    for file, results in suites.items():
        errs = errors_by_file.get(file, [])
        suite = ET.SubElement(root, "testsuite", name=file, tests=str(len(results) + len(errs)),
                              failures=str(sum(not r.passed for r in results)),
                              errors=str(len(errs)))
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"planner.{r.scenario}",
                                 name=f"{r.metric} {r.bound} {r.limit_text}", file=r.file,
                                 **({"line": str(r.line)} if r.line else {}))
            if not r.passed:
                ET.SubElement(case, "failure", message=violation_message(r),
                              type="BudgetViolation").text = violation_message(r)
            else:
                ET.SubElement(case, "system-out").text = (
                    f"{r.metric} = {fmt_value(r.value, r.dimension)} ({r.value:.6g} "
                    f"{r.dimension}); {r.bound} {r.limit_text}")
        for e in errs:
            case = ET.SubElement(suite, "testcase", classname="planner.input",
                                 name=e.field or "load", file=e.file or "",
                                 **({"line": str(e.line)} if e.line else {}))
            ET.SubElement(case, "error", message=str(e), type="InvalidInput").text = str(e)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ----------------------------------------------------------------------------- cluster
def network_table(costs: list[Any], paper: dict[str, tuple] | None = None) -> Table:
    """Topologies: endpoints, switches, links and cost, beside P Table 3 where it prints one."""
    t = Table("Network topologies (P Table 3)",
              ["topology", "parameters", "endpoints", "switches", "links", "cost",
               "cost / endpoint", "P: cost / endpoint", "diff"], align="llrrrrrrr")
    for c in costs:
        topo = c.topology
        printed = (paper or {}).get(topo.kind) if topo.params == _TABLE3_PARAMS.get(topo.kind) \
            else None
        p_end = float(printed[4]) * 1e3 if printed else None
        t.rows.append([topo.name, topo.params, fmt_int(topo.num_endpoints),
                       fmt_int(topo.num_switches), fmt_int(topo.num_links),
                       f"{c.cost_usd / 1e6:,.1f} M$", f"{c.cost_per_endpoint_usd / 1e3:,.2f} k$",
                       f"{printed[4]} k$" if printed else "-",
                       fmt_frac_pct(c.cost_per_endpoint_usd / p_end - 1) if p_end else "-"])
        t.records.append({
            "topology": topo.name, "kind": topo.kind, "parameters": topo.params,
            "num_endpoints": topo.num_endpoints, "num_switches": topo.num_switches,
            "num_links": topo.num_links, "num_endpoint_links": topo.num_endpoint_links,
            **{f"num_{k}_links": n for k, n in topo.links_by_kind},
            "cost_usd": c.cost_usd, "cost_per_endpoint_usd": c.cost_per_endpoint_usd,
            **{f"cost_{k.replace(' ', '_')}_usd": v for k, v in c.cost_parts.items},
            "paper_cost_per_endpoint_usd": p_end, "prices": c.prices,
        })
    t.notes.append("links: switch-to-switch only, as P counts them; every endpoint also has one "
                   "link to its switch (priced as an endpoint link). Layout: "
                   + "; ".join(f"{c.topology.name}: {c.topology.layout}" for c in costs) + ".")
    if costs:
        t.notes.append(f"Prices: {costs[0].prices} (assumptions calibrated to P Table 3, which "
                       "prints no prices; see its YAML). diff: planner / P - 1.")
    return t


#: Parameters of P Table 3's networks, so that a changed topology is not compared to P.
_TABLE3_PARAMS = {"ft2": "k = 64", "mpft": "k = 64, 8 planes", "ft3": "k = 64",
                  "sf": "q = 28, k' = 42", "df": "p = 16, a = 32, h = 16, g = 511"}


def pipeline_table(results: list[Any], *, f_s: float, b_s: float, w_s: float,
                   fb_s: float) -> Table:
    pp = results[0].pp
    t = Table(f"Pipeline schedules, PP = {pp} (F = {f_s:g} s, B = {b_s:g} s, W = {w_s:g} s, "
              f"F&B = {fb_s:g} s)",
              ["schedule", "devices", "bubble", "bubble share", "parameters / device",
               "activations / device"], align="lrrrrr")
    for r in results:
        params = f"{r.param_copies:g}x" + (f" ({fmt_bytes(r.param_bytes_per_device)})"
                                           if r.param_bytes_per_device is not None else "")
        acts = f"{r.activation_micro_batches} mb" + (
            f" ({fmt_bytes(r.activation_bytes_per_device)})"
            if r.activation_bytes_per_device is not None else "")
        t.rows.append([r.schedule, str(r.num_devices), fmt_seconds(r.bubble_s),
                       f"{r.bubble_frac * 100:.1f}%" if r.bubble_frac is not None else "n/a",
                       params, acts])
        t.records.append({"schedule": r.schedule, "pp": r.pp, "num_devices": r.num_devices,
                          "bubble_s": r.bubble_s, "bubble_frac": r.bubble_frac,
                          "param_copies": r.param_copies,
                          "activation_micro_batches": r.activation_micro_batches,
                          "param_bytes_per_device": r.param_bytes_per_device,
                          "activation_bytes_per_device": r.activation_bytes_per_device,
                          "f_s": f_s, "b_s": b_s, "w_s": w_s, "fb_s": fb_s})
    t.notes.append("Bubble formulas (V3R Table 2, DualPipe README): 1F1B (PP-1)(F+B); ZB1P "
                   "(PP-1)(F+B-2W); DualPipe and DualPipeV (PP/2-1)(F&B+B-3W), DualPipeV on PP/2 "
                   "devices. Parameters in units of one stage's, activations in micro-batches "
                   "(mb) of one stage. bubble share: bubble / (bubble + micro-batches x (F+B)).")
    return t


def train_table(r: Any) -> Table:
    t = Table(f"Training {r.model} on {r.num_gpus:,} x {r.hardware} ({r.convention}, "
              f"s = {r.seq_len})", ["metric", "value"])
    given = {"mfu": "given", "gpu_hours": "derived", "tokens_per_day": "derived"}
    t.rows += [
        ["tokens", fmt_count_si(r.tokens)],
        ["train FLOPs per token", fmt_gflop(r.train_flops_per_token)],
        ["tokens/s per GPU", f"{r.train_tokens_per_s_per_gpu:,.1f}"],
        ["tokens per day", fmt_count_si(r.tokens_per_day)],
        ["achieved FLOP/s per GPU", fmt_value(r.achieved_flop_per_s_per_gpu, "FLOP/s")],
        [f"mfu_frac ({given[r.basis] if r.basis == 'mfu' else 'derived'}; of the dense "
         "peak)", f"{r.mfu_frac * 100:.2f}% of {fmt_value(r.peak_flop_per_s_per_gpu, 'FLOP/s')}"],
        ["train_gpu_hours", f"{r.train_gpu_hours:,.0f}"],
        ["train days", f"{r.train_days:,.2f}"],
        ["train_cost_usd", f"{r.train_cost_usd:,.0f} USD at {r.usd_per_gpu_hour:g} USD/GPU-hour"
         if r.train_cost_usd is not None else "n/a (no price per GPU-hour in the spec)"],
    ]
    t.records.append({k: getattr(r, k) for k in (
        "model", "hardware", "convention", "seq_len", "tokens", "num_gpus", "basis",
        "train_flops_per_token", "peak_flop_per_s_per_gpu", "achieved_flop_per_s_per_gpu",
        "train_tokens_per_s_per_gpu", "tokens_per_day", "mfu_frac", "train_gpu_hours",
        "train_days", "usd_per_gpu_hour", "train_cost_usd")})
    t.notes.append(f"Speed fixed by --{r.basis.replace('_', '-')}; GPU-hours count every GPU for "
                   "the whole run; MFU against the dense peak (not 'with sparsity').")
    return t


def routing_table(r: Any) -> Table:
    t = Table(f"Node-limited routing: {r.model} on {r.hardware}, {r.num_nodes} nodes "
              f"(P §4.3)", ["metric", "value"])
    t.rows += [
        ["experts per token / per node", f"{r.experts_per_token} / {r.experts_per_node:g}"],
        ["node limit M", str(r.node_limit)],
        ["expected distinct nodes (limited / unlimited)",
         f"{r.expected_distinct_nodes_limited:.3f} / {r.expected_distinct_nodes_unlimited:.3f}"],
        ["IB copies per token without forwarding (expected / worst)",
         f"{r.ib_copies_per_token_without_forwarding:.3f} / {r.ib_copies_worst_without}"],
        ["IB copies per token with NVLink forwarding (expected / worst)",
         f"{r.ib_copies_per_token_with_forwarding:.3f} / {r.ib_copies_worst_with}"],
        ["experts per node at no extra IB cost", f"{r.free_experts_per_node:.2f}"],
        ["most experts for the IB cost of M nodes", f"{r.max_experts_same_ib_cost:.1f}"],
        [f"IB time per layer ({r.tokens_per_gpu:g} tokens/GPU)",
         fmt_seconds(r.ib_time_per_layer_s)],
        ["NVLink forwarding time per layer", fmt_seconds(r.nvlink_time_per_layer_s)],
        ["ep_time_per_layer_s (bottleneck)",
         f"{fmt_seconds(r.ep_time_per_layer_s)} ({r.bottleneck})"],
    ]
    t.records.append({k: v for k, v in r.__dict__.items() if k != "inputs"})
    t.notes.append("Expected values assume uniform routing over the allowed nodes; worst cases "
                   "count every target node as P does. IB at nominal, NVLink at achievable "
                   "bandwidth (as V3R compares them); IB and NVLink overlap.")
    return t


def collective_table(rows: list[dict[str, Any]]) -> Table:
    t = Table("Collective times (alpha-beta model)",
              ["operation", "algorithm", "ranks", "bytes", "link", "alpha", "bandwidth",
               "time"], align="llrrlrrr")
    for r in rows:
        t.rows.append([r["operation"], r["algorithm"], str(r["num_ranks"]),
                       fmt_bytes(r["bytes_total"]), r["link"],
                       fmt_seconds(r["latency_s"]),
                       f"{fmt_rate_bytes(r['bandwidth_bytes_per_s'])} ({r['bandwidth_basis']})",
                       fmt_seconds(r["time_s"])])
        t.records.append(dict(r))
    t.notes.append("Ring: (p-1)a + (p-1)/p n/B per phase (all-reduce: 2 phases); tree: "
                   "2 ceil(log2 p)(a + n/B); all-to-all: (p-1)a + (p-1)/p n/B. n: the full "
                   "buffer; B: per-rank, one direction (Thakur et al. 2005).")
    return t


# ----------------------------------------------------------------------------- numerics
def numerics_tables(errors: list[Any], accumulation: list[Any], comm: list[dict[str, Any]],
                    *, seed: int) -> list[Table]:
    """The format error table, the accumulation study and the bytes on the wire."""
    t1 = Table(f"Quantize-dequantize error on activation-like data (seed {seed})",
               ["format", "data", "scaling", "rel. L2 error", "bits / element"], align="lllrr")
    for e in errors:
        t1.rows.append([e.format, e.dataset, e.scaling, f"{e.rel_l2_error:.3e}",
                        f"{e.bits_per_element:g}"])
        t1.records.append({"table": "format_error", "format": e.format, "dataset": e.dataset,
                           "tile": e.tile, "scaling": e.scaling, "rel_l2_error": e.rel_l2_error,
                           "bits_per_element": e.bits_per_element, "seed": seed})
    t1.notes.append("rel. L2 error: ||x - Q(x)|| / ||x|| over the tensor. Data: gaussian-outliers "
                    "= N(0,1) with 1% of channels x50; heavy-tailed = Student-t (3 dof). Bits "
                    "include FP32 scales (FP8) or FP32 min and max (LogFMT) per tile; BF16 is "
                    "unscaled. P: LogFMT-8 beats E4M3 and E5M2; LogFMT-10 is close to BF16.")
    t2 = Table(f"FP8 GEMM accumulation with 13 fraction bits (seed {seed})",
               ["data", "K", "limited precision", "promoted every 128", "FP32"], align="lrrrr")
    for a in accumulation:
        t2.rows.append([a.data, f"{a.k:,}", f"{a.limited_rel_error * 100:.3f}%",
                        f"{a.promoted_rel_error * 100:.3f}%", f"{a.fp32_rel_error * 100:.5f}%"])
        t2.records.append({"table": "accumulation", "data": a.data, "k": a.k,
                           "limited_rel_error": a.limited_rel_error,
                           "promoted_rel_error": a.promoted_rel_error,
                           "fp32_rel_error": a.fp32_rel_error, "seed": seed})
    t2.notes.append("Each 32-product tensor-core step aligns its products and the accumulator to "
                    "the largest exponent and keeps 13 fraction bits (truncation); promotion adds "
                    "the partial sum to an FP32 accumulator every 128 elements (V3R §3.3.2). "
                    "Error: ||c - exact|| / ||exact|| over 512 dot products of E4M3 inputs. P "
                    "reports up to about 2% at K = 4096 without promotion: between the mean-zero "
                    "and the positive (every product adds up) cases here.")
    t3 = Table("Bytes per token and expert on the wire (hidden 7168)",
               ["format", "bytes", "vs BF16"], align="lrr")
    bf16 = next((c["bytes"] for c in comm if c["format"] == "bf16"), None)
    for c in comm:
        t3.rows.append([c["format"], fmt_int(c["bytes"]),
                        f"{c['bytes'] / bf16:.3f}x" if bf16 else "-"])
        t3.records.append({"table": "comm_bytes", **c})
    t3.notes.append("Payload + per-1x128-tile metadata; `planner ep --dispatch-format F "
                    "--combine-format F` uses these (dispatch adds DeepEP's 16 B per token).")
    return [t1, t2, t3]


# ----------------------------------------------------------------------------- compare
def compare_tables(rows: list[Any], hardware: list[str], *, context_tokens: int,
                   seq_len: int) -> list[Table]:
    """Memory, compute and communication side by side (see :mod:`planner.studies.compare`)."""
    mem = Table(f"Memory: KV cache (BF16) and decode reads at C = {context_tokens:,} "
                "(MLA vs GQA)",
                ["model", "attention", "KV / token", "vs first", "decode bytes / step",
                 *[f"max context: {h}" for h in hardware]], align="LLrrr" + "r" * len(hardware))
    comp = Table(f"Compute: parameters and FLOPs per token (s = {seq_len:,}, exact-causal)",
                 ["model", "FFN", "params total", "params activated", "forward FLOPs / token",
                  "train FLOPs / token"], align="LLrrrr")
    comm = Table("Communication: EP decode ceiling (peak bandwidth, paper §2.3.2 defaults)",
                 ["model", *[f"{h}: tokens/s (TPOT)" for h in hardware]],
                 align="L" + "r" * len(hardware))
    for r in rows:
        mem.rows.append([r.model, r.attention.upper(), fmt_bytes(r.kv_cache_bytes_per_token),
                         fmt_ratio(r.kv_multiplier_vs_first), fmt_bytes(r.decode_bytes_per_step),
                         *[f"{r.max_context_tokens_per_gpu[h]:,.0f}"
                           if r.max_context_tokens_per_gpu[h] else "weights do not fit"
                           for h in hardware]])
        comp.rows.append([r.model, r.ffn, fmt_count_si(r.params_total),
                          fmt_count_si(r.params_activated), fmt_gflop(r.forward_flops_per_token),
                          fmt_gflop(r.train_flops_per_token)])
        comm.rows.append([r.model, *[
            f"{r.ep[h].decode_tokens_per_s:,.1f} ({fmt_seconds(r.ep[h].tpot_s)})"
            if r.ep[h] is not None else "n/a (dense)" for h in hardware]])
        record = {
            "model": r.model, "attention": r.attention, "ffn": r.ffn,
            "params_total": r.params_total, "params_activated": r.params_activated,
            "kv_cache_bytes_per_token": r.kv_cache_bytes_per_token,
            "kv_multiplier_vs_first": r.kv_multiplier_vs_first,
            "decode_bytes_per_step": r.decode_bytes_per_step, "context_tokens": context_tokens,
            "forward_flops_per_token": r.forward_flops_per_token,
            "train_flops_per_token": r.train_flops_per_token, "seq_len": seq_len,
        }
        for h in hardware:
            record[f"max_context_tokens_per_gpu.{h}"] = r.max_context_tokens_per_gpu[h]
            record[f"decode_tokens_per_s.{h}"] = (r.ep[h].decode_tokens_per_s
                                                  if r.ep[h] is not None else None)
        mem.records.append(record)
    mem.notes.append("max context: tokens of KV cache one GPU holds, (HBM - FP8 weights split "
                     "over one scale-up domain) / KV per token"
                     "; no activations or workspace. Decode bytes: activated FP8 "
                     "weights + the whole KV cache, one sequence.")
    comm.notes.append("EP ceiling: one routed expert per GPU, 32 tokens per GPU, FP8 dispatch "
                      "with scales, BF16 combine, two micro-batches, computation hidden.")
    return [mem, comp, comm] if hardware else [mem, comp]


# ----------------------------------------------------------------------------- sweep
#: Rows a terminal table of a sweep shows (CSV and JSON carry every point).
SWEEP_TABLE_ROWS = 40


def sweep_table(result: Any, records: list[dict[str, Any]], unit: str) -> Table:
    names = list(result.names)
    t = Table(f"Sweep of {result.metric} for {result.model} on {result.hardware} "
              f"({len(records):,} points)", [*names, result.metric], align="r" * (len(names) + 1))
    step = max(1, len(records) // SWEEP_TABLE_ROWS)
    for rec in records[::step]:
        t.rows.append([f"{rec[n]:,.6g}" for n in names] + [fmt_value(rec[result.metric], unit)])
    t.records = records
    if step > 1:
        t.notes.append(f"Every {step:,}th point shown; --format csv or json gives all "
                       f"{len(records):,}.")
    return t


# ----------------------------------------------------------------------------- serving
OVERLAP_LABELS = {"dual": "dual micro-batch overlap", "single": "single-batch overlap",
                  "none": "no overlap"}


def serve_tables(r: Any) -> list[Table]:
    """The step broken into parts, and the serving metrics."""
    from planner.report.bottleneck import bottleneck_text

    decode = r.phase == "decode"
    t = Table(f"{r.phase.capitalize()}: {r.model} on {r.gpus} x {r.hardware} (EP {r.ep}, "
              f"TP {r.tp}; {OVERLAP_LABELS[r.overlap]}; {r.basis})",
              ["part (whole step, all layers)", "FLOPs", "bytes", "time", "bound"],
              align="lrrrl")
    for p in r.parts:
        t.rows.append([p.name, f"{p.flops / 1e9:,.1f} G" if p.flops else "-",
                       fmt_bytes(p.bytes_moved) if p.bytes_moved else "-",
                       fmt_seconds(p.time_s), p.bound])
    m = Table("Serving metrics", ["metric", "value"])
    mem = r.memory
    m.rows += [
        ["memory_bytes_per_gpu", f"{fmt_bytes(mem.memory_bytes_per_gpu)} of "
                                 f"{fmt_bytes(mem.capacity_bytes_per_gpu)} "
                                 f"({'fits' if mem.fits else 'DOES NOT FIT'})"],
        ["  weights / KV cache / workspace", f"{fmt_bytes(mem.weight_bytes_per_gpu)} / "
                                             f"{fmt_bytes(mem.kv_cache_bytes_per_gpu)} / "
                                             f"{fmt_bytes(mem.workspace_bytes_per_gpu)}"],
        ["compute / communication per step", f"{fmt_seconds(r.compute_s)} / "
                                             f"{fmt_seconds(r.communication_s)}"],
        ["step time", fmt_seconds(r.step_s)],
    ]
    if r.expert_balance != "none":
        m.rows.append(["hottest EP rank (expert rows)",
                       f"{r.hottest_rank_load:.3f} x the mean ({r.expert_balance})"])
    if decode:
        m.rows += [["tokens per step (MTP)", f"{r.tokens_per_step:.3g}"],
                   ["tpot_s", fmt_seconds(r.tpot_s)],
                   ["decode_tokens_per_s (per sequence)", f"{r.decode_tokens_per_s:,.1f}"]]
    else:
        m.rows += [["ttft_s", fmt_seconds(r.ttft_s)]]
    m.rows += [["tokens_per_s_per_gpu", f"{r.tokens_per_s_per_gpu:,.0f}"],
               ["tokens_per_s_per_node", f"{r.tokens_per_s_per_node:,.0f}"],
               ["bottleneck", bottleneck_text(r.bottleneck)]]
    m.records.append({
        "model": r.model, "hardware": r.hardware, "phase": r.phase, "basis": r.basis,
        "gpus": r.gpus, "ep": r.ep, "tp": r.tp, "batch_per_gpu": r.batch_per_gpu,
        "context_tokens": r.context_tokens, "overlap": r.overlap,
        "gemm_tile_rows": r.gemm_tile_rows, "expert_tile_rows": r.expert_tile_rows,
        "shared_experts": r.shared_experts, "expert_balance": r.expert_balance,
        "hottest_rank_load": r.hottest_rank_load,
        "memory_bytes_per_gpu": mem.memory_bytes_per_gpu, "fits": mem.fits,
        "weight_bytes_per_gpu": mem.weight_bytes_per_gpu,
        "kv_cache_bytes_per_gpu": mem.kv_cache_bytes_per_gpu,
        "compute_s": r.compute_s, "communication_s": r.communication_s, "step_s": r.step_s,
        "tokens_per_step": r.tokens_per_step, "tpot_s": r.tpot_s, "ttft_s": r.ttft_s,
        "decode_tokens_per_s": r.decode_tokens_per_s,
        "tokens_per_s_per_gpu": r.tokens_per_s_per_gpu,
        "tokens_per_s_per_node": r.tokens_per_s_per_node,
        "bottleneck": bottleneck_text(r.bottleneck),
        "parts": [{"name": p.name, "flops": p.flops, "bytes": p.bytes_moved,
                   "time_s": p.time_s, "bound": p.bound} for p in r.parts],
    })
    tiles = (f"GEMM rows padded to tiles of {r.gemm_tile_rows}" if r.gemm_tile_rows
             else "no GEMM tile padding")
    if r.expert_tile_rows and r.expert_tile_rows != r.gemm_tile_rows:
        tiles += f" (the routed experts' to {r.expert_tile_rows})"
    m.notes.append("Roofline per kernel (compute at the dense peak x efficiency, memory at HBM x "
                   "efficiency, non-GEMM activation traffic included); EP traffic on the link "
                   f"the group needs; {OVERLAP_LABELS[r.overlap]} ({r.micro_batches} "
                   f"micro-batch(es)); {tiles}; shared experts "
                   f"{r.shared_experts}; expert balance {r.expert_balance} (the hottest EP rank "
                   "sets the MoE pace: its expert rows, EP buffers and traffic); workspace = 10% "
                   "of GPU memory. TPOT excludes TTFT. Checked against measured runs: planner "
                   "validate.")
    return [t, m]


def validation_table(rep: Any) -> list[Table]:
    """The serving model beside measured deployment runs, with the error statistics."""
    from planner.report.bottleneck import bottleneck_text
    from planner.studies.validate import CASE_LIMIT, MEDIAN_TARGET

    t = Table("Serving model vs measured deployment runs (tokens/s per node; default "
              "efficiency factors, nothing fitted)",
              ["run", "phase", "experts", "measured", "planner", "error", "step gap",
               "binding resource (planner)"],
              align="Lllrrrrl")
    for row in rep.rows:
        run = row.run
        mark = t.footnote(run.note)
        t.rows.append([run.id, run.serve.get("phase", "decode"), row.expert_balance,
                       f"{run.measured:,.0f}",
                       f"{row.predicted:,.0f}", f"{row.error * 100:+.1f}%" + (
                           f" {mark}" if mark else ""),
                       f"{row.step_gap_s * 1e3:+,.1f} ms",
                       bottleneck_text(row.bottleneck).split(":")[0]])
        t.records.append({"kind": "run", "id": run.id, "model": run.model,
                          "hardware": run.hardware,
                          "phase": run.serve.get("phase", "decode"),
                          "expert_balance": row.expert_balance, "setup": run.setup,
                          "assumed": run.assumed, "source": run.source,
                          "measured_tokens_per_s_per_node": run.measured,
                          "predicted_tokens_per_s_per_node": row.predicted,
                          "error": row.error, "predicted_step_s": row.step_s,
                          "measured_step_s": row.measured_step_s,
                          "step_gap_s": row.step_gap_s,
                          "bottleneck": bottleneck_text(row.bottleneck),
                          "basis": row.basis, "note": run.note})
    verdict = "met" if rep.meets_targets else "NOT met"
    t.notes.append(f"median |error| {rep.median_abs_error * 100:.1f}% (target <= "
                   f"{MEDIAN_TARGET * 100:.0f}%), largest {rep.max_abs_error * 100:.1f}%, beyond "
                   f"{CASE_LIMIT * 100:.0f}%: {', '.join(rep.beyond_limit) or 'none'}; targets "
                   f"{verdict}. Error = planner / measured - 1; step gap = the step (prefill: batch) "
                   "time the measured rate implies minus the planner's. Setups and sources: "
                   "-f json.")
    return [t, ablation_table(rep.ablations)] if rep.ablations else [t]


def _gain(lo: float, hi: float) -> str:
    return f"{lo * 100:+.1f}%" if lo == hi else f"{lo * 100:+.0f}% to {hi * 100:+.0f}%"


def ablation_table(rows: Any) -> Table:
    """The sources' own ablations: what one engine feature gains, measured and in the planner."""
    t = Table("The sources' own ablations: throughput gain of one feature (measured vs planner)",
              ["ablation", "hardware", "measured gain", "planner gain", "difference"],
              align="Llrrr")
    for row in rows:
        a = row.ablation
        t.rows.append([a.id, a.hardware, _gain(*a.measured), _gain(row.predicted, row.predicted),
                       f"{row.difference * 100:+.1f} pts"])
        t.records.append({"kind": "ablation", "id": a.id, "model": a.model,
                          "hardware": a.hardware, "setup": a.setup, "assumed": a.assumed,
                          "source": a.source, "measured_gain_low": a.measured[0],
                          "measured_gain_high": a.measured[1], "predicted_gain": row.predicted,
                          "difference": row.difference})
    t.notes.append("Gain = tokens/s per GPU with the feature / without - 1, each side predicted "
                   "from the same setup; difference = planner - measured gain, in percentage "
                   "points, from the nearer end of a measured range. Nothing fitted.")
    return t


def fit_table(fits: list[Any]) -> Table:
    t = Table("Fewest GPUs that hold the model and one sequence",
              ["model", "hardware", "weights", "weights total", "context", "GPUs",
               "memory / GPU", "largest batch / GPU (TP group)"], align="LLlrrrrr")
    for f in fits:
        mem = f.memory
        t.rows.append([f.model, f.hardware, f.weights_dtype, fmt_bytes(f.weight_bytes_total),
                       f"{f.context_tokens:,}", str(f.num_gpus) if f.num_gpus else "> 4096",
                       f"{fmt_bytes(mem.memory_bytes_per_gpu)} of "
                       f"{fmt_bytes(mem.capacity_bytes_per_gpu)}" if mem else "-",
                       (f"{mem.max_batch_per_gpu:,}" + (
                           f" ({mem.max_batch_per_tp_group:,} per TP {mem.tp})"
                           if mem.tp > 1 else "")) if mem else "-"])
        t.records.append({"model": f.model, "hardware": f.hardware,
                          "weights_dtype": f.weights_dtype, "context_tokens": f.context_tokens,
                          "weight_bytes_total": f.weight_bytes_total, "num_gpus": f.num_gpus,
                          "memory_bytes_per_gpu": mem.memory_bytes_per_gpu if mem else None,
                          "max_batch_per_gpu": mem.max_batch_per_gpu if mem else None,
                          "tp": mem.tp if mem else None,
                          "max_batch_per_tp_group": mem.max_batch_per_tp_group if mem else None,
                          "checked": [{"gpus": n, "fits": ok} for n, ok in f.checked]})
    t.notes.append("Experts split over all GPUs, the rest over up to one scale-up domain (TP); "
                   "a batch per GPU is each GPU's share of its TP group's sequences (MLA's "
                   "latent is whole on every GPU of the group); "
                   "FP8 weights carry their 128x128 block scales; embedding, head, router and "
                   "norms in BF16; 10% of memory kept for workspace.")
    return t
