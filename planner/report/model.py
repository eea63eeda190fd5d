"""Tables of the per-model commands: ``planner kv-cache``, ``flops``, ``ep`` and ``paper``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.report.formats import (fmt_bytes, fmt_count_si, fmt_frac_pct, fmt_int, fmt_rate_bytes,
                                    fmt_ratio, fmt_seconds, fmt_value)
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.calc.ep import EPResult
    from planner.calc.flops import FlopsResult
    from planner.calc.kv_cache import KVCacheResult
    from planner.studies.paper import PaperRow


def kv_cache_table(results: list[KVCacheResult]) -> Table:
    first = results[0]
    with_context = any(r.context_tokens != 1 or r.batch != 1 for r in results)
    headers = ["model", "attention", "dtype", "elements / layer", "bytes / token",
               "KB / token", f"vs {first.model}"]
    patterned = any(r.patterned for r in results)
    if patterned:
        headers.append(f"bytes / sequence ({first.context_tokens:,} tokens)")
    if with_context:
        headers.append(f"cache ({first.context_tokens:,} tokens x {first.batch})")
    t = Table("KV cache per token (paper Table 1)", headers, right_align_from=3)
    for r in results:
        rec: dict[str, Any] = {
            "model": r.model, "attention": r.attention, "dtype": r.dtype,
            "elements_per_token_per_layer": r.elements_per_token_per_layer,
            "kv_cache_bytes_per_token": r.kv_cache_bytes_per_token,
            "kv_cache_multiplier_vs_first": r.multiplier_vs_first,
            "context_tokens": r.context_tokens, "batch": r.batch,
            "kv_cache_bytes": r.kv_cache_bytes}
        per_token = rec["kv_cache_bytes_per_token"]
        row = [rec["model"], rec["attention"].upper(), rec["dtype"],
               f"{rec['elements_per_token_per_layer']:,}", fmt_int(per_token),
               f"{per_token / 1e3:,.3f}", fmt_ratio(rec["kv_cache_multiplier_vs_first"])]
        if patterned:
            rec["kv_cache_bytes_per_sequence"] = r.kv_cache_bytes_per_sequence
            row.append(fmt_bytes(r.kv_cache_bytes_per_sequence))
        if with_context:
            row.append(fmt_bytes(rec["kv_cache_bytes"]))
        t.add(rec, row)
    t.notes.append("Decimal units: 1 KB = 1000 bytes, as in the paper.")
    if patterned:
        t.notes.append(f"Per token at C = {first.context_tokens:,}: sliding windows hold at "
                       "most W tokens, DSA layers add the indexer's keys, linear layers a "
                       "fixed state per sequence (bytes / token = bytes / sequence / C).")
    return t


def flops_table(results: list[FlopsResult]) -> Table:
    from planner.calc.flops import FWD_BWD_FACTOR

    t = Table(f"Training compute per token (paper Table 2; s = {results[0].seq_len})",
              ["model", "convention", "params total", "params activated",
               "forward GFLOP / token", "train GFLOP / token"], right_align_from=2)
    for r in results:
        rec: dict[str, Any] = {
            "model": r.model, "convention": r.convention, "seq_len": r.seq_len,
            "params_total": r.params_total, "params_activated": r.params_activated,
            "forward_flops_per_token": r.forward_flops_per_token,
            "train_flops_per_token": r.train_flops_per_token,
            "forward_flops_per_token_by_part": r.forward_parts.as_dict()}
        t.add(rec, [rec["model"], rec["convention"], fmt_count_si(rec["params_total"]),
                    fmt_count_si(rec["params_activated"]),
                    f"{rec['forward_flops_per_token'] / 1e9:,.2f}",
                    f"{rec['train_flops_per_token'] / 1e9:,.2f}"])
    t.notes.append("FLOPs are dense (no sparsity); 1 GFLOP = 1e9 FLOPs; training = "
                   f"{FWD_BWD_FACTOR} x forward.")
    return t


def flops_parts_table(r: FlopsResult) -> Table:
    t = Table(f"{r.model}: forward FLOPs per token by part ({r.convention})",
              ["part", "GFLOP / token", "share"])
    total = r.forward_flops_per_token
    for name, v in r.forward_parts.items:
        t.rows.append([name, f"{v / 1e9:,.3f}", f"{v / total * 100:.1f}%"])
    t.rows.append(["total", f"{total / 1e9:,.3f}", "100.0%"])
    return t


EP_METRICS = ("ep_comm_time_per_layer_s", "time_per_layer_s", "ep_ceiling_tpot_s",
              "ep_ceiling_tokens_per_s")


def _ep_record(r: EPResult) -> dict[str, Any]:
    return {
        "model": r.model, "hardware": r.hardware, "link": r.link,
        "link_technology": r.link_technology, "bandwidth_bytes_per_s": r.bandwidth_bytes_per_s,
        "bandwidth_basis": r.bandwidth_basis, "ep_size": r.ep_size,
        "tokens_per_device": r.tokens_per_device, "experts_per_token": r.experts_per_token,
        "hidden_size": r.hidden_size,
        "dispatch_bytes_per_token_expert": r.dispatch_bytes_per_token_expert,
        "combine_bytes_per_token_expert": r.combine_bytes_per_token_expert,
        "num_micro_batches": r.num_micro_batches, "num_layers": r.num_layers,
        **{k: getattr(r, k) for k in EP_METRICS},
    }


def ep_table(r: EPResult) -> Table:
    t = Table(f"Expert-parallel decode ceiling: {r.model} on {r.hardware} (paper §2.3.2)",
              ["metric", "value"])
    rec = _ep_record(r)
    t.rows += [
        ["link", f"{rec['link']} ({rec['link_technology']}), EP {rec['ep_size']}"],
        ["bandwidth (per GPU, unidirectional)",
         f"{fmt_rate_bytes(rec['bandwidth_bytes_per_s'])} ({rec['bandwidth_basis']})"],
        ["bytes per token and expert",
         f"dispatch {fmt_int(rec['dispatch_bytes_per_token_expert'])} + "
         f"combine {fmt_int(rec['combine_bytes_per_token_expert'])}"],
        ["tokens per device x experts per token",
         f"{rec['tokens_per_device']:g} x {rec['experts_per_token']}"],
        ["ep_comm_time_per_layer_s", fmt_seconds(rec["ep_comm_time_per_layer_s"])],
        [f"time_per_layer_s ({rec['num_micro_batches']} micro-batches)",
         fmt_seconds(rec["time_per_layer_s"])],
        [f"ep_ceiling_tpot_s ({rec['num_layers']} layers)",
         fmt_seconds(rec["ep_ceiling_tpot_s"])],
        ["ep_ceiling_tokens_per_s", f"{rec['ep_ceiling_tokens_per_s']:,.2f}"],
    ]
    t.records.append(rec)
    t.notes.append("Communication-only ceiling: computation fully hidden, latency not counted; "
                   "TPOT excludes time to first token.")
    return t


# ----------------------------------------------------------------------------- paper
def _paper_record(r: PaperRow) -> dict[str, Any]:
    return {"section": r.section, "quantity": r.quantity, "metric": r.metric,
            "model": r.model, "hardware": r.hardware, "unit": r.unit, "value": r.value,
            "paper_value": r.paper_value, "paper_printed": r.paper_printed,
            "diff_frac": r.diff_frac, "agrees": r.agrees, "note": r.note}


def paper_tables(rows: list[PaperRow]) -> list[Table]:
    sections: dict[str, Table] = {}
    for r in rows:
        t = sections.get(r.section)
        if t is None:
            t = sections[r.section] = Table(
                r.section, ["figure", "model / hardware", "planner", "paper", "diff", "agrees",
                            "note"], align="lLrrrrl")
        rec = _paper_record(r)
        diff = rec["diff_frac"]
        where = rec["model"] + (f" / {rec['hardware']}" if rec["hardware"] else "")
        t.add(rec, [rec["quantity"], where, _paper_value(rec["value"], rec["unit"]),
                    rec["paper_printed"] or "-",
                    fmt_frac_pct(diff) if diff is not None else "-",
                    {True: "yes", False: "NO", None: "-"}[rec["agrees"]],
                    t.footnote(rec["note"])])
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
        return f"{value / 1e6:,.3f} M$" if value >= 1e6 else f"{value / 1e3:,.2f} k$"
    if unit == "days":
        return f"{value:.2f} days"
    if unit == "FLOPs":
        return f"{value / 1e9:,.2f} GFLOP"
    if unit == "tokens/s":
        return f"{value:,.2f}"
    return fmt_value(value, unit)
