"""Tables of ``planner plan``: the chosen layouts (best, runner-up, over the limits, fewest
GPUs), the Pareto frontier per hardware, and with ``--all`` every evaluated point (records made
as they are read, so CSV and JSON of a large search do not hold them all).

Every record carries ``role`` (best, runner_up, over_limits, fewest_gpus, frontier, point) and
the point's layout and metrics in base units under the vocabulary's names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from planner.report.formats import fmt_bytes, fmt_seconds, fmt_share_pct
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.studies.plan_select import PlanResult

#: Metrics of a point shown in every table, with their column headers.
METRIC_HEADERS = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"),
                  ("tokens_per_s_per_user", "tok/s/user"),
                  ("tokens_per_s_per_gpu", "tok/s/GPU"),
                  ("usd_per_million_tokens", "$/M tok"), ("joules_per_token", "J/tok"))
#: Frontier points a terminal table draws at most (JSON and CSV list every one).
FRONTIER_TABLE_ROWS = 40
#: Records made at once when every point is written (``--all``).
RECORD_CHUNK = 65_536


def layout_text(rec: dict[str, Any], moe: bool = True) -> str:
    """``tp1 pp1 dp8 moe 8x1 fp8 kv fp8``: TP, PP, attention DP, the experts' TP x EP (a MoE
    model), the weights (``fp8+fp4``: FP4 experts) and KV cache precisions, in one cell."""
    weights = rec["weights_dtype"]
    if rec["moe_weights_dtype"] != weights:
        weights = f"{weights}+{rec['moe_weights_dtype']}"
    experts = f"moe {rec['moe_tp']}x{rec['moe_ep']} " if moe else ""
    return (f"tp{rec['tp']} pp{rec['pp']} dp{rec['attention_dp']} {experts}{weights} "
            f"kv {rec['kv_dtype']}")


def _num(x: Any, spec: str) -> str:
    return "n/a" if x is None or x != x else format(x, spec)


def metric_cells(rec: dict[str, Any]) -> list[str]:
    return [fmt_seconds(rec["ttft_s"]), fmt_seconds(rec["tpot_s"]),
            _num(rec["tokens_per_s_per_user"], ",.1f"), _num(rec["tokens_per_s_per_gpu"], ",.1f"),
            _num(rec["usd_per_million_tokens"], ",.3f"), _num(rec["joules_per_token"], ".3f")]


def bound_text(result: PlanResult, rec: dict[str, Any]) -> str:
    """What binds the point's decode step and prefill (the workload model's bound names)."""
    names = result.points.bound_names
    if not names:
        return "n/a"
    return f"{names[rec['decode_bound']]} / {names[rec['prefill_bound']]}"


def _role_record(result: PlanResult, role: str, i: int) -> dict[str, Any]:
    rec = {"role": role, "model": result.model, "isl": result.query.isl,
           "osl": result.query.osl,
           "prefix_cache_hit_frac": result.query.prefix_cache_hit_frac, **result.record(i)}
    rec["binding_resource"] = bound_text(result, rec)
    return rec


def why_lost(result: PlanResult, winner: int, loser: int) -> str:
    """Why point ``loser`` lost to ``winner``: its deficit in tokens/s per GPU and how the two
    layouts differ."""
    from planner.studies.plan_select import TIE_BREAKS

    c = result.points.columns
    a, b = c["tokens_per_s_per_gpu"][winner], c["tokens_per_s_per_gpu"][loser]
    diffs = ", ".join(f"{k} {x} vs {y}" for k, x, y in result.differences(winner, loser))
    if b < a:
        why = f"{(1 - b / a) * 100:.2f}% fewer output tokens/s per GPU ({b:,.1f} vs {a:,.1f})"
    else:
        tie = next((k for k in TIE_BREAKS if c[k][loser] > c[k][winner]), None)
        why = (f"ties on output tokens/s per GPU ({b:,.1f}); loses on {tie} "
               f"({c[tie][loser]:.6g} vs {c[tie][winner]:.6g})" if tie else
               f"ties on output tokens/s per GPU ({b:,.1f}), GPUs, TPOT and TTFT: the model "
               "tells the two apart by nothing else (the first enumerated is shown as best)")
    return f"{why}; differs from the best in {diffs or 'nothing'}"


def why_out(result: PlanResult, i: int) -> str:
    """The limits point ``i`` breaks."""
    q, c = result.query, result.points.columns
    broken = []
    if q.ttft_s is not None and c["ttft_s"][i] > q.ttft_s:
        broken.append(f"TTFT {fmt_seconds(c['ttft_s'][i])} > {fmt_seconds(q.ttft_s)}")
    if q.tpot_s is not None and c["tpot_s"][i] > q.tpot_s:
        broken.append(f"TPOT {fmt_seconds(c['tpot_s'][i])} > {fmt_seconds(q.tpot_s)}")
    minimum = q.min_tokens_per_s_per_user
    if minimum is not None and c["tokens_per_s_per_user"][i] < minimum:
        broken.append(f"{c['tokens_per_s_per_user'][i]:,.1f} tokens/s per user < {minimum:g}")
    if not broken and q.request_rate_per_s is not None:
        broken.append(f"needs {c['total_gpus'][i]:,} GPUs for {q.request_rate_per_s:g} requests/s")
    return "breaks " + ("; ".join(broken) or "a limit")


def chosen_table(result: PlanResult, band: tuple[Any, str, str | None] | None = None) -> Table:
    """The best point under the limits, its runner-up, the best point over them and the fewest
    GPUs for the request rate, each with its layout, metrics and what binds it; with ``band``
    the best point's error band (record keys and a note)."""
    from planner.report.error_bands import error_band_record, error_band_text

    t = Table(f"Plan: {result.model}, ISL {result.query.isl:,} / OSL {result.query.osl:,}"
              f" - {limits_text(result)}",
              ["role", "hardware", "layout", "conc.", "GPUs", *(h for _, h in METRIC_HEADERS),
               "bound"], align="Lllrr" + "r" * len(METRIC_HEADERS) + "l")
    roles = [("best", result.best), ("runner_up", result.runner_up),
             ("over_limits", result.over_limits), ("fewest_gpus", result.fewest_gpus)]
    for role, i in roles:
        if i is None:
            continue
        rec = _role_record(result, role, i)
        if role == "runner_up" and result.best is not None:
            rec["why"] = why_lost(result, result.best, i)
        elif role == "over_limits":
            rec["why"] = why_out(result, i)
        elif role == "best" and band is not None:
            rec.update(error_band_record(band[0]))
        gpus = (f"{rec['total_gpus']:,} ({rec['replicas']:,} x {rec['gpus']})"
                if rec["replicas"] != 1 else f"{rec['gpus']}")
        mark = t.footnote(rec.get("why", ""))
        t.add(rec, [f"{role.replace('_', '-')}{mark and ' ' + mark}", rec["hardware"],
                    layout_text(rec, result.moe), f"{rec['concurrency']:,}", gpus,
                    *metric_cells(rec), rec["binding_resource"]])
    if result.disagg is not None:
        _disagg_row(t, result)
    elif result.query.disagg:
        t.notes.append("--disagg: no disaggregated split meets the limits")
    if result.best is None:
        t.notes.append("no layout fits and meets the limits: loosen a limit or allow more GPUs")
    elif band is not None:
        t.notes.append(f"best: {error_band_text(band[0], hardware=band[1], engine=band[2])}")
    t.notes.append("layout: attention TP, PP, attention DP (dp), the experts' TP x EP, weights "
                   "(+ the experts' when they differ) and KV cache precisions; bound: what "
                   "binds the decode step / the prefill")
    t.notes.extend(summary_notes(result))
    return t


def _disagg_row(t: Table, result: PlanResult) -> None:
    """The best disaggregated deployment: its two pools, GPUs, figures, and how it compares with
    the aggregated best."""
    d = dict(result.disagg or {})
    weights = d["weights_dtype"] + ("" if d["moe_weights_dtype"] == d["weights_dtype"]
                                    else f"+{d['moe_weights_dtype']}")
    pools = " + ".join(f"{side} {d[f'{side}_workers']}x(tp{d[f'{side}_tp']} "
                       f"dp{d[f'{side}_attention_dp']} b{d[f'{side}_batch']})"
                       for side in ("prefill", "decode"))
    note = f"disaggregated, {d['bound_side']} pool sets the rate"
    if result.best is not None:
        a = result.points.columns["tokens_per_s_per_gpu"][result.best]
        note += (f"; {(d['tokens_per_s_per_gpu'] / a - 1) * 100:+.1f}% output tokens/s per GPU "
                 "against the aggregated best")
    d["why"] = note
    mark = t.footnote(note)
    t.add({"model": result.model, "isl": result.query.isl, "osl": result.query.osl,
           "prefix_cache_hit_frac": result.query.prefix_cache_hit_frac, **d},
          [f"disagg-best {mark}", d["hardware"], f"{pools} {weights} kv {d['kv_dtype']}",
           "", f"{d['total_gpus']:,} ({d['prefill_gpus']:.0f} + {d['decode_gpus']:.0f})",
           *metric_cells(d), ""])


def limits_text(result: PlanResult) -> str:
    q = result.query
    parts = [f"TTFT <= {fmt_seconds(q.ttft_s)}" if q.ttft_s is not None else "",
             f"TPOT <= {fmt_seconds(q.tpot_s)}" if q.tpot_s is not None else "",
             f">= {q.min_tokens_per_s_per_user:g} tokens/s per user"
             if q.min_tokens_per_s_per_user is not None else "",
             f"{q.request_rate_per_s:g} requests/s" if q.request_rate_per_s is not None else "",
             f"{q.gpus:,} GPUs" if q.gpus is not None else "",
             f"at most {q.max_gpus:,} GPUs" if q.max_gpus is not None else "",
             f"prefix cache {fmt_share_pct(q.prefix_cache_hit_frac)}"
             if q.prefix_cache_hit_frac else ""]
    return ", ".join(p for p in parts if p) or "no limits"


def summary_notes(result: PlanResult) -> list[str]:
    """The search's size and speed, the basis of the figures, prices and their sources."""
    from planner.report.serving import prefix_cache_notes

    notes = [f"{result.evaluated:,} layouts evaluated in {result.wall_s:.2f} s: "
             f"{result.fitting:,} fit in memory, {result.within_limits:,} meet the limits"]
    for hw, n in result.points.hardware_notes.items():
        price = n["usd_per_gpu_hour"]
        notes.append(f"{hw}: {n['basis']}; {n['efficiency_note']}; price "
                     + (f"${price:g} per GPU-hour from {n['price_source']}" if price is not None
                        else n["price_source"])
                     + (f"; energy at the board power, {n['board_power_w']:g} W (TDP)"
                        if n["board_power_w"] else "; no board power in the spec"))
    notes.extend(prefix_cache_notes({"prefix_cache_hit_frac": result.query.prefix_cache_hit_frac}))
    notes.extend(result.notes)
    return notes


def frontier_tables(result: PlanResult) -> list[Table]:
    """One table per hardware: its Pareto frontier of tokens/s per GPU against tokens/s per
    user, slowest user first, every point with its layout."""
    tables = []
    for hw, idx in result.frontier.items():
        t = Table(f"Pareto frontier on {hw}: output tokens/s per GPU vs tokens/s per user",
                  ["layout", "conc.", "GPUs", "memory/GPU", *(h for _, h in METRIC_HEADERS)],
                  align="lrrr" + "r" * len(METRIC_HEADERS))
        shown = set(shown_rows(len(idx)))
        for k, i in enumerate(idx.tolist()):
            rec = _role_record(result, "frontier", i)
            if k not in shown:
                t.records.append(rec)
                continue
            t.add(rec, [layout_text(rec, result.moe), f"{rec['concurrency']:,}",
                        f"{rec['gpus']}", fmt_bytes(rec["memory_bytes_per_gpu"]),
                        *metric_cells(rec)])
        if not len(idx):
            t.notes.append("no layout fits within the TTFT limit and the GPUs")
        elif len(t.rows) < len(idx):
            t.notes.append(f"{len(t.rows)} of the {len(idx)} frontier points shown, evenly "
                           "spaced; --format json or csv gives all")
        tables.append(t)
    return tables


def shown_rows(n: int) -> list[int]:
    """Which of ``n`` frontier rows a table draws: all up to :data:`FRONTIER_TABLE_ROWS`, else
    that many evenly spaced, the first and the last among them."""
    if n <= FRONTIER_TABLE_ROWS:
        return list(range(n))
    step = (n - 1) / (FRONTIER_TABLE_ROWS - 1)
    return sorted({round(k * step) for k in range(FRONTIER_TABLE_ROWS)})


class PointRecords(Sequence[dict[str, Any]]):
    """Every evaluated point as a record (role "point"), made :data:`RECORD_CHUNK` at a time as
    they are read."""

    def __init__(self, result: PlanResult) -> None:
        self.result = result
        self.columns = ["role", *result.points.columns]

    def __len__(self) -> int:
        return len(self.result.points)

    def _make(self, start: int, stop: int) -> list[dict[str, Any]]:
        cols = {k: v[start:stop].tolist() for k, v in self.result.points.columns.items()}
        return [{"role": "point", **dict(zip(cols, row))} for row in zip(*cols.values())]

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return self._make(start, stop)[::step]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self._make(i, i + 1)[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), RECORD_CHUNK):
            yield from self._make(start, min(len(self), start + RECORD_CHUNK))


def all_points_table(result: PlanResult) -> Table:
    """Every evaluated point (``--all``), for JSON and CSV; the terminal shows the count."""
    t = Table(f"All {result.evaluated:,} evaluated points (JSON or CSV lists them)",
              ["points", "fit", "meet the limits"], align="rrr")
    t.rows.append([f"{result.evaluated:,}", f"{result.fitting:,}", f"{result.within_limits:,}"])
    records = PointRecords(result)
    t.streamed_records, t.columns = records, records.columns
    return t


def violation(result: PlanResult) -> str | None:
    """One line saying that no deployment meets the limits, what was searched and, for the best
    point over them, which limit it breaks; None when a deployment meets them (the aggregated
    best, else with ``--disagg`` the disaggregated best). ``planner plan`` prints it and exits
    1, as ``planner check`` does for a violated budget."""
    if result.best is not None or result.disagg is not None:
        return None
    searched = (f"no layout of {result.model} meets {limits_text(result)} "
                f"({result.evaluated:,} evaluated, {result.fitting:,} fit in memory)")
    if result.over_limits is None:
        return f"{searched}; none fits in memory: allow more GPUs or a smaller precision"
    rec = _role_record(result, "over_limits", result.over_limits)
    return (f"{searched}; the best over them, {rec['hardware']} {layout_text(rec, result.moe)} "
            f"at concurrency {rec['concurrency']:,}, {why_out(result, result.over_limits)}")


def plan_tables(result: PlanResult, *, every_point: bool = False,
                band: tuple[Any, str, str | None] | None = None) -> list[Table]:
    """The tables of ``planner plan``: chosen points, frontiers, and (``every_point``) all;
    with ``band`` (the best point's regime's error band or None, its hardware and engine
    labels) the validation error beside the best point, as ``planner serve`` shows it."""
    tables = [chosen_table(result, band), *frontier_tables(result)]
    return [*tables, all_points_table(result)] if every_point else tables
