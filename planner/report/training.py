"""Tables of ``planner train`` in layout mode: memory per GPU by part (and the fit), step time by
part (and the binding part), the summary (tokens/s per GPU, MFU, GPU-hours, cost), and the
search's fastest layouts that fit."""

from __future__ import annotations

from typing import Any

from planner.report.formats import fmt_bytes, fmt_count_si, fmt_seconds
from planner.report.table import Table

#: The JSON keys the issue fixes (one record per layout).
LAYOUT_KEYS = ("memory_bytes_per_gpu", "step_time_s", "tokens_per_s_per_gpu", "mfu_frac",
               "train_gpu_hours")


def _layout_text(lay: dict) -> str:
    return (f"t={lay['tp']} p={lay['pp']} v={lay['vpp']} c={lay['cp']} d={lay['dp']} "
            f"EP={lay['ep']} b={lay['micro_batch']} ZeRO-{lay['zero']} {lay['recompute']} "
            f"{lay['schedule']} {lay['recipe']}")


def train_layout_tables(r: Any) -> list[Table]:
    """Summary, memory by part, step time by part of one layout (a TrainLayoutResult)."""
    title = (f"Training {r.model} on {r.layout['gpus']:,} x {r.hardware}: "
             f"{_layout_text(r.layout)}")
    s = Table(title, ["metric", "value"])
    rec: dict[str, Any] = {k: getattr(r, k) for k in LAYOUT_KEYS}
    rec.update(fits=r.fits, capacity_bytes=r.capacity_bytes, binding_part=r.binding_part,
               largest_memory_part=r.largest_memory_part, busiest_device=r.busiest_device,
               mfu_fp8_frac=r.mfu_fp8_frac,
               num_micro_batches=r.num_micro_batches, train_days=r.train_days,
               train_cost_usd=r.train_cost_usd, tokens=r.tokens, layout=r.layout,
               memory_parts=r.memory_parts, step_parts=r.step_parts)
    verdict = ("fits" if r.fits else
               f"DOES NOT FIT: {fmt_bytes(r.memory_bytes_per_gpu - r.capacity_bytes)} over; "
               f"largest part {r.largest_memory_part}")
    fp8 = ("n/a (no FP8 peak in the spec)" if r.mfu_fp8_frac is None
           else f"{r.mfu_fp8_frac * 100:.2f}%")
    s.rows += [
        ["memory_bytes_per_gpu", f"{fmt_bytes(r.memory_bytes_per_gpu)} of "
                                 f"{fmt_bytes(r.capacity_bytes)} usable: {verdict}"],
        ["step_time_s", f"{fmt_seconds(r.step_time_s)} (binding: {r.binding_part}; "
                        f"{r.num_micro_batches:g} micro-batches)"],
        ["tokens_per_s_per_gpu", f"{r.tokens_per_s_per_gpu:,.1f}"],
        ["mfu_frac (of the dense BF16 peak)", f"{r.mfu_frac * 100:.2f}%"],
        ["MFU of the dense FP8 peak", fp8],
        [f"train_gpu_hours for {fmt_count_si(r.tokens)} tokens", f"{r.train_gpu_hours:,.0f}"],
        ["train days", f"{r.train_days:,.2f}"],
        ["train_cost_usd", "n/a (no price per GPU-hour in the spec)" if r.train_cost_usd is None
         else f"{r.train_cost_usd:,.0f} USD at {r.usd_per_gpu_hour:g} USD/GPU-hour"],
    ]
    s.records.append(rec)
    s.notes.append("MFU: the model's training FLOPs per token (exact-causal, no recompute, no "
                   "MTP) x tokens/s per GPU / the dense peak. Overlap by schedule: DualPipe(V) "
                   "hides EP and PP communication and overlaps the DP reduction; 1F1B, "
                   f"interleaved and ZB1P expose them (Megatron-LM as published). {r.rates_note}.")
    mem = Table(f"Memory per GPU by part (busiest device: {r.busiest_device})",
                ["part", "bytes", "share"])
    for k, v in r.memory_parts.items():
        mem.rows.append([k, fmt_bytes(v), f"{v / r.memory_bytes_per_gpu * 100:.1f}%"])
        mem.records.append({"part": k, "bytes": v})
    mem.notes.append("buffers: an assumed 2 GiB workspace + 5% fragmentation allowance.")
    step = Table("Step time by part", ["part", "time", "share"])
    for k, v in r.step_parts.items():
        step.rows.append([k, fmt_seconds(v), f"{v / r.step_time_s * 100:.1f}%"])
        step.records.append({"part": k, "step_time_s": v})
    return [s, mem, step]


def _search_record(e: Any, i: int) -> dict[str, Any]:
    """Layout ``i`` of a search's grid (a TrainEvaluation) as a record."""
    from planner.calc.train.recipe import RECOMPUTE_MODES, TRAIN_SCHEDULES

    g = e.grid
    lay = dict(tp=int(g.tp[i]), pp=int(g.pp[i]), vpp=int(g.vpp[i]), cp=int(g.cp[i]),
               dp=int(g.dp[i]), ep=int(g.ep[i]), micro_batch=int(g.micro_batch[i]),
               zero=int(g.zero[i]), recompute=RECOMPUTE_MODES[int(g.recompute[i])],
               schedule=TRAIN_SCHEDULES[int(g.schedule[i])], recipe="")
    return {"layout": lay, "memory_bytes_per_gpu": float(e.memory_bytes_per_gpu[i]),
            "step_time_s": float(e.step_time_s[i]),
            "tokens_per_s_per_gpu": float(e.tokens_per_s_per_gpu[i]),
            "mfu_frac": float(e.mfu_frac[i])}


def smallest_over_memory(e: Any) -> int | None:
    """When no valid layout of a search fits: the valid layout with the least memory per GPU
    (the nearest to fitting), else None (every layout fits somewhere, or none is valid)."""
    import numpy as np

    if e.fits.any():
        return None
    valid = np.flatnonzero(e.valid)
    return int(valid[np.argmin(e.memory_bytes_per_gpu[valid])]) if len(valid) else None


def train_search_table(e: Any, order: Any, *, gpus: int, model: str, hardware: str) -> Table:
    """The fastest layouts that fit, fastest first (TrainEvaluation and chosen indices); when
    none fits, the valid layout nearest to fitting, marked over the memory (record ``role``:
    ``over_limits``, ``why``)."""
    t = Table(f"Fastest layouts that fit: {model} on {gpus:,} x {hardware}",
              ["layout", "memory/GPU", "step", "tokens/s/GPU", "MFU"])
    over = smallest_over_memory(e)
    rows = [(i, _search_record(e, i)) for i in order]
    if over is not None:
        rec = _search_record(e, over)
        rec.update(role="over_limits", why=over_memory_text(e, over))
        rows.append((over, rec))
        t.title = (f"No layout fits: {model} on {gpus:,} x {hardware}; the one nearest to "
                   "fitting (least memory per GPU)")
    for _, rec in rows:
        t.rows.append([_layout_text(rec["layout"]).strip(),
                       fmt_bytes(rec["memory_bytes_per_gpu"]),
                       fmt_seconds(rec["step_time_s"]), f"{rec['tokens_per_s_per_gpu']:,.1f}",
                       f"{rec['mfu_frac'] * 100:.2f}%"])
        t.records.append(rec)
    t.notes.append(f"{int(e.valid.sum()):,} valid layouts of {e.valid.size:,} tried, "
                   f"{int(e.fits.sum()):,} fit; ranked by step time.")
    return t


def over_memory_text(e: Any, i: int) -> str:
    """``needs 95.000 GB per GPU of 85.521 GB usable``: layout ``i``'s memory against the
    capacity."""
    return (f"needs {fmt_bytes(float(e.memory_bytes_per_gpu[i]))} per GPU of "
            f"{fmt_bytes(e.capacity_bytes)} usable")


def train_search_violation(e: Any, *, gpus: int, model: str, hardware: str) -> str | None:
    """One line when no valid layout of the search fits in memory (the nearest one and its
    memory), else None."""
    over = smallest_over_memory(e)
    if over is None:
        return None
    lay = _search_record(e, over)["layout"]
    return (f"no layout of {model} on {gpus:,} x {hardware} fits in memory "
            f"({int(e.valid.sum()):,} valid of {e.valid.size:,} tried); the nearest, "
            f"{_layout_text(lay).strip()}, {over_memory_text(e, over)}")
