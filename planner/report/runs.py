"""Tables of ``planner validate --runs``: every measured run beside the planner's prediction (or
the reason it has none), the error statistics per regime, and per hardware and overall against
the issue's targets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.report.formats import fmt_seconds
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.studies.validate_runs import ErrorStats, RunsValidation

ERROR_NOTE = ("Error = planner / measured - 1 (negative: the planner predicts less time than "
              "measured); statistics are of |error| over the rows the planner expresses.")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _signed(value: float) -> str:
    return "-" if value != value else f"{value * 100:+.1f}%"


def _time(value: float) -> str:
    return "-" if value != value else fmt_seconds(value)


#: Longest piece of a run id on one line of a table (ids run to 110 characters without a space).
ID_PIECE = 24


def _id_text(run_id: str) -> str:
    """``run_id`` with a space after an underscore wherever a piece would pass
    :data:`ID_PIECE` characters, so that a narrow table wraps it (JSON and CSV keep it whole)."""
    pieces = [""]
    for part in run_id.split("_"):
        if pieces[-1] and len(pieces[-1]) + len(part) + 1 > ID_PIECE:
            pieces.append("")
        pieces[-1] += part + "_"
    return " ".join(pieces)[:-1]


def _layout(v: RunsValidation, i: int) -> str:
    t = v.table
    if t.mode[i] != "agg":
        return (f"P {t.prefill_num_workers[i]}x TP{t.prefill_tp[i]}, "
                f"D {t.decode_num_workers[i]}x TP{t.decode_tp[i]}")
    text = f"TP{t.tp[i]}"
    for name, value in (("PP", t.pp[i]), ("ADP", t.attention_dp[i])):
        text += f" {name}{value}" if value > 1 else ""
    if v.resolution.moe_weights_dtype[i] is not None or t.moe_ep[i] > 1:
        text += f" MoE TP{t.moe_tp[i]}xEP{t.moe_ep[i]}"
    return text


def _row_record(v: RunsValidation, i: int) -> dict[str, Any]:
    t, r = v.table, v.resolution
    return {"kind": "run", "id": str(t.id[i]), "model_path": str(t.model_path[i]),
            "model": r.model[i], "hardware": r.hardware[i], "system": str(t.system[i]),
            "engine": r.engine[i], "backend_version": str(t.backend_version[i]),
            "mode": str(t.mode[i]), "weights_dtype": r.weights_dtype[i],
            "moe_weights_dtype": r.moe_weights_dtype[i], "isl": int(t.isl[i]),
            "osl": int(t.osl[i]), "concurrency": int(t.concurrency[i]), "tp": int(t.tp[i]),
            "pp": int(t.pp[i]), "attention_dp": int(t.attention_dp[i]),
            "moe_tp": int(t.moe_tp[i]), "moe_ep": int(t.moe_ep[i]),
            "ttft_s": float(v.ttft_s[i]), "tpot_s": float(v.tpot_s[i]),
            "measured_ttft_s": float(t.measured_ttft_s[i]),
            "measured_tpot_s": float(t.measured_tpot_s[i]),
            "ttft_error": float(v.ttft_error[i]), "tpot_error": float(v.tpot_error[i]),
            "reason": str(v.reason[i])}


def _pair(measured: float, planner: float, error: float) -> str:
    """"measured / planner (error)", or the measurement alone where there is no prediction."""
    if planner != planner:
        return f"{_time(measured)} / -"
    return f"{_time(measured)} / {_time(planner)} ({_signed(error)})"


def runs_table(v: RunsValidation) -> Table:
    """Every run: the measurement beside the prediction, or the reason there is none."""
    t = Table(f"Workload model vs measured serving runs ({v.path}): one row per run",
              ["run", "model, hardware, engine", "ISL/OSL", "conc.", "layout",
               "TTFT: measured / planner (error)", "TPOT: measured / planner (error)",
               "reason the planner has no prediction"],
              align="lllrlrrl")
    for i in range(len(v.table)):
        rec = _row_record(v, i)
        setup = (f"{rec['model'] or rec['model_path']}, {rec['hardware'] or rec['system']}, "
                 f"{rec['engine'] or str(v.table.backend[i])}")
        t.add(rec, [_id_text(rec["id"]), setup, f"{rec['isl']:,}/{rec['osl']:,}",
                    f"{rec['concurrency']:,}", _layout(v, i),
                    _pair(rec["measured_ttft_s"], rec["ttft_s"], rec["ttft_error"]),
                    _pair(rec["measured_tpot_s"], rec["tpot_s"], rec["tpot_error"]),
                    rec["reason"] or "-"])
    t.notes.append(ERROR_NOTE + " Concurrency = requests in flight per replica (batch_size x "
                   "attention_dp).")
    return t


def _stats_cells(s: ErrorStats) -> list[str]:
    return [f"{s.rows:,}", f"{s.expressed:,} ({s.share * 100:.0f}%)", _pct(s.ttft_median),
            _pct(s.ttft_p90), _pct(s.tpot_median), _pct(s.tpot_p90)]


def _distinct_cells(s: ErrorStats) -> list[str]:
    return [f"{s.distinct:,}", _pct(s.ttft_median_distinct), _pct(s.tpot_median_distinct)]


def _stats_record(kind: str, names: tuple[str, ...], s: ErrorStats) -> dict[str, Any]:
    return {"kind": kind, **dict(zip(names, s.key)), "rows": s.rows, "expressed": s.expressed,
            "expressible_share": s.share, "ttft_median_abs_error": s.ttft_median,
            "ttft_p90_abs_error": s.ttft_p90, "tpot_median_abs_error": s.tpot_median,
            "tpot_p90_abs_error": s.tpot_p90, "distinct": s.distinct,
            "ttft_median_abs_error_distinct": s.ttft_median_distinct,
            "tpot_median_abs_error_distinct": s.tpot_median_distinct}


STATS_HEADERS = ["rows", "expressed", "TTFT median", "TTFT p90", "TPOT median", "TPOT p90"]
#: Beside them (the summary): each measurement counted once.
DISTINCT_HEADERS = ["distinct", "TTFT median distinct", "TPOT median distinct"]


def regime_table(v: RunsValidation) -> Table:
    """|error| statistics per regime: hardware x engine x mode x model family."""
    names = ("hardware", "engine", "mode", "family")
    t = Table("Per regime (hardware x engine x mode x model family): |error| of the expressed "
              "rows", [*names, *STATS_HEADERS], align="LLLLrrrrrr")
    for s in v.regimes:
        t.add(_stats_record("regime", names, s), [*s.key, *_stats_cells(s)])
    t.notes.append(ERROR_NOTE)
    return t


def summary_table(v: RunsValidation) -> Table:
    """Per hardware and overall, on the aggregated rows whose model and hardware the catalog
    has, beside the issue's targets."""
    from planner.studies.validate_runs import (EXPRESSIBLE_TARGET, TPOT_MEDIAN_TARGET,
                                               TTFT_MEDIAN_TARGET)

    t = Table("Aggregated runs whose model and hardware the catalog has: per hardware and overall",
              ["hardware", *STATS_HEADERS, *DISTINCT_HEADERS], align="Lrrrrrrrrr")
    for s in (*v.by_hardware, v.overall):
        t.add(_stats_record("hardware" if s is not v.overall else "overall", ("hardware",), s),
              [s.key[0], *_stats_cells(s), *_distinct_cells(s)])
    verdict = "met" if v.meets_targets else "NOT met"
    t.notes.append(f"Targets (overall): expressed >= {EXPRESSIBLE_TARGET:.0%}, median |TPOT "
                   f"error| <= {TPOT_MEDIAN_TARGET:.0%}, median |TTFT error| <= "
                   f"{TTFT_MEDIAN_TARGET:.0%}: {verdict}.")
    t.notes.append("distinct: the expressed rows with each measurement counted once (the data "
                   "records some runs twice: same system, TTFT and TPOT), and their medians.")
    t.notes.append(_reasons_note(v))
    return t


def _reasons_note(v: RunsValidation) -> str:
    """How many covered rows each reason keeps from a prediction."""
    import re
    from collections import Counter

    counts = Counter(re.sub(r"(?<![\w.])\d[\d,.]*", "N", str(r)) for r in v.reason[v.covered] if r)
    listed = "; ".join(f"{n:,} {why}" for why, n in counts.most_common())
    return f"Covered rows without a prediction: {listed or 'none'} (each row's reason: the " \
           "table above, or -f json)."


def validate_runs_tables(v: RunsValidation, *, rows: bool = True) -> list[Table]:
    """The tables of ``planner validate --runs``: the rows (unless ``rows`` is False), the
    regimes, the summary."""
    return [*([runs_table(v)] if rows else []), regime_table(v), summary_table(v)]
