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

    # A terminal gets its own width; a pipe or file a wide one, so logs do not wrap cells.
    width = None if out.isatty() else PIPE_WIDTH
    console = Console(file=out, highlight=False, soft_wrap=False, width=width)
    for i, t in enumerate(tables):
        if i:
            console.print()
        rt = RichTable(title=t.title, title_justify="left", title_style="bold")
        for j, h in enumerate(t.headers):
            rt.add_column(h, justify="right" if t.is_right(j) else "left",
                          overflow="fold", min_width=None if t.is_right(j) else 10,
                          no_wrap=t.is_right(j) or (t.align is not None and t.align[j] == "L"))
        for row in t.rows:
            rt.add_row(*row)
        console.print(rt)
        for note in t.notes:
            console.print(note, style="dim", markup=False)


def explain_table(title: str, formula: str, ref: str, inputs: Iterable[Any],
                  basis: str | None = None) -> Table:
    """An --explain table: the formula, every input with its origin, and the reference."""
    t = Table(title=f"explain: {title}", headers=["input", "value", "unit", "from"],
              align="lrll")
    for inp in inputs:
        value = inp.value if isinstance(inp.value, str) else f"{inp.value:,.6g}"
        t.rows.append([inp.name, value, inp.unit, inp.origin])
    t.notes = [f"Formula: {formula}", f"Ref: {ref}"] + ([f"Figures used: {basis}"] if basis else [])
    t.records = [{"explain": title, "formula": formula, "ref": ref,
                  "inputs": [{"name": i.name, "value": i.value, "unit": i.unit,
                              "from": i.origin} for i in inputs]}]
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
        fp8 = h.gpu.peak_dense_tflop_per_s.fp8
        t.rows.append([
            h.name, f"{h.gpu.peak_dense_tflop_per_s.bf16:,g} TFLOP/s",
            f"{fp8:,g} TFLOP/s" if fp8 else "n/a", f"{h.gpu.hbm_capacity_gb:g} GB",
            f"{h.gpu.hbm_bandwidth_tb_per_s:g} TB/s",
            fmt_rate_bytes(h.scale_up.bandwidth_bytes_per_s), f"{h.scale_up.domain_gpus} GPUs",
            fmt_rate_bytes(h.scale_out.bandwidth_bytes_per_s),
        ])
        t.records.append(hardware_record(h))
    return t


def hardware_record(h: Any) -> dict[str, Any]:
    peaks = h.gpu.peak_dense_tflop_per_s
    return {
        "hardware": h.name, "display_name": h.label,
        "peak_dense_bf16_flop_per_s": peaks.bf16 * 1e12,
        "peak_dense_fp8_flop_per_s": peaks.fp8 * 1e12 if peaks.fp8 else None,
        "peak_dense_fp4_flop_per_s": peaks.fp4 * 1e12 if peaks.fp4 else None,
        "hbm_capacity_bytes": h.gpu.hbm_capacity_bytes,
        "hbm_bandwidth_bytes_per_s": h.gpu.hbm_bandwidth_bytes_per_s,
        "scale_up_domain_gpus": h.scale_up.domain_gpus,
        "scale_up_bandwidth_bytes_per_s_unidirectional": h.scale_up.bandwidth_bytes_per_s,
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
        v = getattr(peaks, dtype)
        t.rows.append([f"peak dense {dtype.upper()}", f"{v:,g} TFLOP/s" if v else "n/a"])
    t.rows += [
        ["HBM", f"{h.gpu.hbm_capacity_gb:g} GB, {h.gpu.hbm_bandwidth_tb_per_s:g} TB/s"],
        ["scale-up", f"{h.scale_up.technology}: {h.scale_up.domain_gpus} GPUs, "
                     f"{fmt_rate_bytes(h.scale_up.bandwidth_bytes_per_s)} per GPU per direction"],
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
    for name in ("scale_up_bandwidth", "scale_out_bandwidth", "hbm_bandwidth", "matmul_flops"):
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
