"""Tables of the serving commands: ``planner serve``, ``planner validate``, ``planner fit``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.report.bottleneck import bottleneck_text
from planner.report.formats import fmt_bytes, fmt_seconds, fmt_share_pct
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.calc.memory import FitResult, MemoryResult
    from planner.calc.serving import ServeResult
    from planner.calc.serving.workload import WorkloadResult
    from planner.specs.error_bands import ErrorBand
    from planner.studies.validate import AblationRow, ValidationReport, ValidationRow

#: The line the table of the 15 published runs carries since the workload model (issue 20).
WHAT_CHANGED = ("What changed: these 15 runs check the single-step model (one decode step or "
                "prefill batch at a batch you set); its prefill attention now runs at the measured "
                "kernel's rate for the prompt's length, as the workload model's does (median "
                "|error| of the 15: 11.9% -> 14.2%), MLA's at TensorRT-LLM's context-MLA "
                "kernel (efficiency.mla_prefill: 14.2% -> 11.7%); the workload model (TTFT and TPOT "
                "at input/output lengths and a concurrency, with an engine) is checked on 3,702 "
                "measured serving runs: planner validate --runs.")
OVERLAP_LABELS = {"dual": "dual micro-batch overlap", "single": "single-batch overlap",
                  "none": "no overlap"}


# ----------------------------------------------------------------------------- serve
def _serve_record(r: ServeResult) -> dict[str, Any]:
    mem = r.memory
    return {
        "model": r.model, "hardware": r.hardware, "phase": r.phase, "basis": r.basis,
        "gpus": r.gpus, "ep": r.ep, "tp": r.tp, "tp_chosen": r.tp_chosen,
        "batch_per_gpu": r.batch_per_gpu,
        "context_tokens": r.context_tokens, "overlap": r.overlap,
        "overlap_chosen": "auto" if r.overlap_step_s else "given",
        "overlap_step_s": dict(r.overlap_step_s) or None,
        "gemm_tile_rows": r.gemm_tile_rows, "expert_tile_rows": r.expert_tile_rows,
        "shared_experts": r.shared_experts, "expert_balance": r.expert_balance,
        "hottest_rank_load": r.hottest_rank_load,
        "memory_bytes_per_gpu": mem.memory_bytes_per_gpu, "fits": mem.fits,
        "weight_bytes_per_gpu": mem.weight_bytes_per_gpu,
        "kv_cache_bytes_per_gpu": mem.kv_cache_bytes_per_gpu,
        "usable_bytes_per_gpu": mem.capacity_bytes_per_gpu,
        "mtp_weight_bytes_per_gpu": mem.weights.as_dict().get("mtp_modules", 0.0),
        "compute_s": r.compute_s, "communication_s": r.communication_s, "step_s": r.step_s,
        "tokens_per_step": r.tokens_per_step, "tpot_s": r.tpot_s, "ttft_s": r.ttft_s,
        "decode_tokens_per_s": r.decode_tokens_per_s,
        "tokens_per_s_per_gpu": r.tokens_per_s_per_gpu,
        "tokens_per_s_per_node": r.tokens_per_s_per_node,
        "bottleneck": bottleneck_text(r.bottleneck),
        "parts": [{"name": p.name, "flops": p.flops, "bytes": p.bytes_moved,
                   "time_s": p.time_s, "bound": p.bound} for p in r.parts],
    }


def _tp_text(r: ServeResult) -> str:
    """TP, and how it was chosen when the user did not give it."""
    if not r.tp_chosen:
        return f"TP {r.tp}"
    return (f"TP {r.tp}, the smallest that fits" if r.memory.fits
            else f"TP {r.tp}: does not fit at any TP")


def _overlap_text(r: ServeResult) -> str:
    """The schedule, and with auto the step time of each schedule it chose from."""
    label = OVERLAP_LABELS[r.overlap]
    if not r.overlap_step_s:
        return label
    tried = ", ".join(f"{o} {fmt_seconds(s)}" for o, s in r.overlap_step_s)
    return f"{label}, the fastest (auto; step {tried})"


def _step_table(r: ServeResult, rec: dict[str, Any]) -> Table:
    """The step broken into its parts (kernels and communication), from the record's parts."""
    t = Table(f"{r.phase.capitalize()}: {r.model} on {r.gpus} x {r.hardware} (EP {r.ep}, "
              f"{_tp_text(r)}; {OVERLAP_LABELS[r.overlap]}{' (auto)' if r.overlap_step_s else ''}; "
              f"{r.basis})",
              ["part (whole step, all layers)", "FLOPs", "bytes", "time", "bound"],
              align="lrrrl")
    for p in rec["parts"]:
        t.rows.append([p["name"], f"{p['flops'] / 1e9:,.1f} G" if p["flops"] else "-",
                       fmt_bytes(p["bytes"]) if p["bytes"] else "-",
                       fmt_seconds(p["time_s"]), p["bound"]])
    return t


def _serve_metric_rows(rec: dict[str, Any], mem: MemoryResult) -> list[list[str]]:
    rows = [
        ["memory_bytes_per_gpu", f"{fmt_bytes(rec['memory_bytes_per_gpu'])} of "
                                 f"{fmt_bytes(rec['usable_bytes_per_gpu'])} usable "
                                 f"({'fits' if rec['fits'] else 'DOES NOT FIT'})"],
        ["  weights / KV cache / workspace", f"{fmt_bytes(rec['weight_bytes_per_gpu'])} / "
                                             f"{fmt_bytes(rec['kv_cache_bytes_per_gpu'])} / "
                                             f"{fmt_bytes(mem.workspace_bytes_per_gpu)}"
                                             + (f" (weights incl. MTP modules "
                                                f"{fmt_bytes(rec['mtp_weight_bytes_per_gpu'])})"
                                                if rec["mtp_weight_bytes_per_gpu"] else "")],
        ["compute / communication per step", f"{fmt_seconds(rec['compute_s'])} / "
                                             f"{fmt_seconds(rec['communication_s'])}"],
        ["step time", fmt_seconds(rec["step_s"])],
    ]
    if rec["expert_balance"] != "none":
        rows.append(["hottest EP rank (expert rows)",
                     f"{rec['hottest_rank_load']:.3f} x the mean ({rec['expert_balance']})"])
    if rec["phase"] == "decode":
        rows += [["tokens per step (MTP)", f"{rec['tokens_per_step']:.3g}"],
                 ["tpot_s", fmt_seconds(rec["tpot_s"])],
                 ["decode_tokens_per_s (per sequence)", f"{rec['decode_tokens_per_s']:,.1f}"]]
    else:
        rows += [["ttft_s", fmt_seconds(rec["ttft_s"])]]
    rows += [["tokens_per_s_per_gpu", f"{rec['tokens_per_s_per_gpu']:,.0f}"],
             ["tokens_per_s_per_node", f"{rec['tokens_per_s_per_node']:,.0f}"],
             ["bottleneck", rec["bottleneck"]]]
    return rows


def _tp_note(r: ServeResult) -> str:
    if not r.tp_chosen:
        return ""
    return (f"TP {r.tp} was chosen as the smallest TP that fits in memory (--tp to set it). "
            if r.memory.fits else
            f"No TP up to the scale-up domain fits in memory; TP {r.tp}, the largest, shown. ")


def _serve_note(r: ServeResult) -> str:
    from planner.calc.serving import WORKSPACE_FRAC

    tiles = (f"GEMM rows padded to tiles of {r.gemm_tile_rows}" if r.gemm_tile_rows
             else "no GEMM tile padding")
    if r.expert_tile_rows and r.expert_tile_rows != r.gemm_tile_rows:
        tiles += f" (the routed experts' to {r.expert_tile_rows})"
    return ("Roofline per kernel (compute at the dense peak x efficiency, memory at HBM x "
            "efficiency, non-GEMM activation traffic included); EP traffic on the link "
            f"the group needs; {_overlap_text(r)} ({r.micro_batches} "
            f"micro-batch(es)); {tiles}; shared experts "
            f"{r.shared_experts}; expert balance {r.expert_balance} (the hottest EP rank "
            "sets the MoE pace: its expert rows, EP buffers and traffic); workspace = "
            f"{WORKSPACE_FRAC:.0%} of the memory an engine can use. {_tp_note(r)}TPOT excludes "
            "TTFT. Checked against measured runs: planner validate.")


def serve_tables(r: ServeResult) -> list[Table]:
    """The step broken into parts, and the serving metrics."""
    rec = _serve_record(r)
    m = Table("Serving metrics", ["metric", "value"])
    m.rows += _serve_metric_rows(rec, r.memory)
    m.records.append(rec)
    m.notes.append(_serve_note(r))
    return [_step_table(r, rec), m]


# ----------------------------------------------------------------------------- serve (workload)
def workload_record(r: WorkloadResult, setup: dict[str, Any]) -> dict[str, Any]:
    """One workload's record: ``setup`` (model, hardware, engine, lengths, layout) and the
    figures of ``r`` (a scalar workload) in base units."""
    from planner.calc.serving.workload import BOUND_NAMES

    figures = ("ttft_s", "tpot_s", "e2e_latency_s", "tokens_per_s_per_gpu",
               "total_tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_bytes_per_gpu",
               "weight_bytes_per_gpu", "kv_cache_bytes_per_gpu", "decode_step_s", "prefill_s")
    rec = dict(setup)
    moe = ("" if setup["moe_tp"] is None and setup["moe_ep"] is None
           else f", MoE TP {setup['moe_tp'] or '-'} x EP {setup['moe_ep'] or '-'}")
    rec["layout"] = (f"TP {setup['tp']}, PP {setup['pp']}, attention DP "
                     f"{setup['attention_dp']}{moe}")
    rec.update({name: float(getattr(r, name)) for name in figures})
    rec.update({"usable_bytes_per_gpu": float(r.capacity_bytes_per_gpu), "fits": bool(r.fits),
                "gpus": int(r.gpus), "decode_bound": BOUND_NAMES[int(r.decode_bound)],
                "prefill_bound": BOUND_NAMES[int(r.prefill_bound)], "basis": r.basis,
                "efficiency_note": r.efficiency_note,
                "running_requests": int(r.running_requests)})
    return rec


def _memory_text(rec: dict[str, Any]) -> str:
    return (f"{fmt_bytes(rec['memory_bytes_per_gpu'])} of {fmt_bytes(rec['usable_bytes_per_gpu'])}"
            f" usable (weights {fmt_bytes(rec['weight_bytes_per_gpu'])}, KV cache "
            f"{fmt_bytes(rec['kv_cache_bytes_per_gpu'])}, the rest the engine's reserve)")


def _running_text(rec: dict[str, Any]) -> str:
    run, c = rec["running_requests"], rec["concurrency"]
    return (f"{run:,} (all)" if run >= c else f"{run:,} of {c:,}: the KV cache holds no more; "
            "the rest queue for a slot (in TTFT)")


def workload_refusal(rec: dict[str, Any]) -> str:
    """The one-line refusal of a workload that does not fit, with its memory figures."""
    return (f"{rec['model']} on {rec['gpus']} x {rec['hardware']} ({rec['layout']}) does not fit "
            f"{rec['concurrency']:,} requests of {rec['isl']:,} + {rec['osl']:,} tokens: memory "
            f"per GPU {_memory_text(rec)}; lower --concurrency, or raise --tp / --pp")


def prefix_cache_notes(rec: dict[str, Any]) -> list[str]:
    """The note of a workload with a prefix cache (``prefix_cache_hit_frac`` above 0), else
    none: the tables of a workload without one are as before."""
    frac = rec.get("prefix_cache_hit_frac") or 0.0
    if not frac:
        return []
    return [f"Prefix cache: {fmt_share_pct(frac)} of each prompt's tokens found cached (their KV read, not "
            "recomputed): prefill computes only the rest, attending over the whole prompt; "
            "the KV cache held (and, disaggregated, moved to the decode pool) is the whole "
            "prompt's."]


def workload_tables(r: WorkloadResult, setup: dict[str, Any],
                    band: tuple[ErrorBand | None, str, str | None] | None = None) -> list[Table]:
    """The workload's latency, throughput, memory and binding resources (one scalar workload);
    with ``band`` (the regime's error band or None, the hardware and engine labels) the
    validation error of the regime beside TTFT and TPOT (:mod:`planner.report.error_bands`)."""
    from planner.report.error_bands import error_band_record, error_band_text

    rec = workload_record(r, setup)
    typical = {"ttft": "", "tpot": ""}
    if band is not None:
        rec.update(error_band_record(band[0]))
        if band[0] is not None:
            typical = {m: " (" + error_band_text(band[0], hardware=band[1], engine=band[2],
                                                 metric=m) + ")" for m in typical}
    if rec["running_requests"] < rec["concurrency"]:
        # the regime's band is the median over runs; it does not speak for a queue
        typical["ttft"] = (" (most of it the queue beyond the KV cache: the typical error "
                           "does not cover it)")
    t = Table(f"Workload: {rec['model']} on {rec['gpus']} x {rec['hardware']} ({rec['layout']}; "
              f"{rec['engine']}), ISL {rec['isl']:,}, OSL {rec['osl']:,}, concurrency "
              f"{rec['concurrency']:,}", ["metric", "value"])
    t.rows += [["ttft_s", fmt_seconds(rec["ttft_s"]) + typical["ttft"]],
               ["tpot_s", fmt_seconds(rec["tpot_s"]) + typical["tpot"]],
               ["e2e_latency_s", fmt_seconds(rec["e2e_latency_s"])],
               ["tokens_per_s_per_gpu (output)", f"{rec['tokens_per_s_per_gpu']:,.1f}"],
               ["total_tokens_per_s_per_gpu (input + output)",
                f"{rec['total_tokens_per_s_per_gpu']:,.1f}"],
               ["tokens_per_s_per_user", f"{rec['tokens_per_s_per_user']:,.1f}"],
               ["memory_bytes_per_gpu", _memory_text(rec)],
               ["running requests", _running_text(rec)],
               ["decode step bound by", rec["decode_bound"]],
               ["prefill bound by", rec["prefill_bound"]]]
    t.records.append(rec)
    t.notes.append("Continuous batching in closed form (docs/workload.md): TPOT is the steady "
                   "step with the prefill work new requests bring; TTFT = half a step of wait + "
                   "the request's prefill chunks + the engine's per-request overhead. "
                   f"{rec['efficiency_note']}.")
    t.notes += prefix_cache_notes(rec)
    if band is not None:
        t.notes.append(error_band_text(band[0], hardware=band[1], engine=band[2]) + ".")
    if rec.get("overrides"):
        t.notes.append(f"overrides applied: {rec['overrides']}.")
    return [t]


# ----------------------------------------------------------------------------- validate
def _run_record(row: ValidationRow) -> dict[str, Any]:
    run = row.run
    return {"kind": "run", "id": run.id, "model": run.model, "hardware": run.hardware,
            "phase": run.deployment.phase, "expert_balance": row.expert_balance,
            "setup": run.setup, "assumed": run.assumed, "source": run.source,
            "measured_tokens_per_s_per_node": run.measured,
            "predicted_tokens_per_s_per_node": row.predicted, "error": row.error,
            "predicted_step_s": row.step_s, "measured_step_s": row.measured_step_s,
            "step_gap_s": row.step_gap_s, "bottleneck": bottleneck_text(row.bottleneck),
            "basis": row.basis,
            "note": run.note}


def validation_table(rep: ValidationReport) -> list[Table]:
    """The serving model beside measured deployment runs, with the error statistics."""
    from planner.studies.validate import CASE_LIMIT, MEDIAN_TARGET

    t = Table("Serving model vs measured deployment runs (tokens/s per node; default "
              "efficiency factors, nothing fitted)",
              ["run", "phase", "experts", "measured", "planner", "error", "step gap",
               "binding resource (planner)"],
              align="Lllrrrrl")
    for row in rep.rows:
        rec = _run_record(row)
        mark = t.footnote(rec["note"])
        t.add(rec, [rec["id"], rec["phase"], rec["expert_balance"],
                    f"{rec['measured_tokens_per_s_per_node']:,.0f}",
                    f"{rec['predicted_tokens_per_s_per_node']:,.0f}",
                    f"{rec['error'] * 100:+.1f}%" + (f" {mark}" if mark else ""),
                    f"{rec['step_gap_s'] * 1e3:+,.1f} ms", rec["bottleneck"].split(":")[0]])
    verdict = "met" if rep.meets_targets else "NOT met"
    t.notes.append(f"median |error| {rep.median_abs_error * 100:.1f}% (target <= "
                   f"{MEDIAN_TARGET * 100:.0f}%), largest {rep.max_abs_error * 100:.1f}%, beyond "
                   f"{CASE_LIMIT * 100:.0f}%: {', '.join(rep.beyond_limit) or 'none'}; targets "
                   f"{verdict}. Error = planner / measured - 1; step gap = the step (prefill: "
                   "batch) time the measured rate implies minus the planner's. Setups and "
                   "sources: -f json.")
    t.notes.append(WHAT_CHANGED)
    return [t, ablation_table(rep.ablations)] if rep.ablations else [t]


def _gain(lo: float, hi: float) -> str:
    return f"{lo * 100:+.1f}%" if lo == hi else f"{lo * 100:+.0f}% to {hi * 100:+.0f}%"


def ablation_table(rows: tuple[AblationRow, ...]) -> Table:
    """The sources' own ablations: what one engine feature gains, measured and in the planner."""
    t = Table("The sources' own ablations: throughput gain of one feature (measured vs planner)",
              ["ablation", "hardware", "measured gain", "planner gain", "difference"],
              align="Llrrr")
    for row in rows:
        a = row.ablation
        rec: dict[str, Any] = {
            "kind": "ablation", "id": a.id, "model": a.model, "hardware": a.hardware,
            "setup": a.setup, "assumed": a.assumed, "source": a.source,
            "measured_gain_low": a.measured[0], "measured_gain_high": a.measured[1],
            "predicted_gain": row.predicted, "difference": row.difference}
        t.add(rec, [rec["id"], rec["hardware"],
                    _gain(rec["measured_gain_low"], rec["measured_gain_high"]),
                    _gain(rec["predicted_gain"], rec["predicted_gain"]),
                    f"{rec['difference'] * 100:+.1f} pts"])
    t.notes.append("Gain = tokens/s per GPU with the feature / without - 1, each side predicted "
                   "from the same setup; difference = planner - measured gain, in percentage "
                   "points, from the nearer end of a measured range. Nothing fitted.")
    return t


# ----------------------------------------------------------------------------- fit
def _fit_record(f: FitResult) -> dict[str, Any]:
    mem = f.memory
    return {"model": f.model, "hardware": f.hardware, "weights_dtype": f.weights_dtype,
            "context_tokens": f.context_tokens, "stored_weight_bytes": f.stored_weight_bytes,
            "weight_bytes": f.weight_bytes, "num_gpus": f.num_gpus,
            "tp": mem.tp if mem else None,
            "memory_bytes_per_gpu": mem.memory_bytes_per_gpu if mem else None,
            "usable_bytes_per_gpu": mem.capacity_bytes_per_gpu if mem else None,
            "max_batch_per_gpu": mem.max_batch_per_gpu if mem else None,
            "max_batch_per_tp_group": mem.max_batch_per_tp_group if mem else None,
            "checked": [{"gpus": n, "tp": tp, "fits": ok} for n, tp, ok in f.checked]}


def _fit_batch_text(rec: dict[str, Any]) -> str:
    text = f"{rec['max_batch_per_gpu']:,}"
    if rec["tp"] > 1:
        text += f" ({rec['max_batch_per_tp_group']:,} per TP {rec['tp']})"
    return text


def fit_table(fits: list[FitResult]) -> Table:
    from planner.calc.serving import FIT_GPU_COUNTS, WORKSPACE_FRAC

    t = Table("Fewest GPUs that hold the model and one sequence, at the smallest TP that does",
              ["model", "hardware", "weights", "stored weights", "context", "GPUs", "TP",
               "memory / GPU", "largest batch / GPU (TP group)"], align="LLlrrrrrr")
    for f in fits:
        rec, mem = _fit_record(f), f.memory
        t.add(rec, [rec["model"], rec["hardware"], rec["weights_dtype"],
                    fmt_bytes(rec["stored_weight_bytes"]), f"{rec['context_tokens']:,}",
                    str(rec["num_gpus"]) if rec["num_gpus"] else f"> {FIT_GPU_COUNTS[-1]}",
                    str(rec["tp"]) if mem else "-",
                    f"{fmt_bytes(rec['memory_bytes_per_gpu'])} of "
                    f"{fmt_bytes(rec['usable_bytes_per_gpu'])}" if mem else "-",
                    _fit_batch_text(rec) if mem else "-"])
    params = "; ".join(dict.fromkeys(f"{f.model} {f.weights_dtype} {fmt_bytes(f.weight_bytes)}"
                                     for f in fits))
    t.notes.append("Experts split over all GPUs, the rest replicated or split by TP within one "
                   "scale-up domain (the smallest TP that fits); a batch per GPU is each GPU's "
                   "share of its TP group's sequences (MLA's latent is whole on every GPU of "
                   "the group). Stored weights: FP8 matrices with their 128x128 block scales; "
                   "embedding, head, router and norms in BF16 (parameter bytes P x b, the "
                   f"budgets' weight_bytes: {params}). Memory 'of' what an engine can use "
                   f"(the driver's total); {WORKSPACE_FRAC:.0%} of it kept for workspace.")
    return t
