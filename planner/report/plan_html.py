"""``planner plan --html``: one self-contained HTML page (the frontier as inline SVG written
here, the chosen layouts, the inputs); no script, no stylesheet or font from the network, no
matplotlib (``--plot`` draws with matplotlib, an optional extra; this page never needs it).
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.studies.plan_select import PlanResult

#: Plot size and margins (SVG user units, pixels at 100%).
WIDTH, HEIGHT = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 30, 55
#: One colour per hardware (colour-blind-safe Okabe-Ito palette), in order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Ticks per axis, about.
TICKS = 6


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """Round tick values covering ``low`` .. ``high`` (steps of 1, 2 or 5 x 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _points(result: PlanResult, hw: str) -> list[tuple[float, float]]:
    c = result.points.columns
    idx = result.frontier[hw]
    return list(zip(c["tokens_per_s_per_user"][idx].tolist(),
                    c["tokens_per_s_per_gpu"][idx].tolist()))


def frontier_svg(result: PlanResult) -> str:
    """The Pareto frontier of every hardware (output tokens/s per GPU against tokens/s per
    user), the TPOT limit as a dashed line, the best point ringed: an SVG document."""
    series = {hw: _points(result, hw) for hw in result.frontier}
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0, 1.0]
    xt, yt = nice_ticks(0, max(xs)), nice_ticks(0, max(ys))
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + pw * (x - xt[0]) / (xt[-1] - xt[0])

    def sy(y: float) -> float:
        return TOP + ph * (1 - (y - yt[0]) / (yt[-1] - yt[0]))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12" '
           f'role="img" aria-label="Pareto frontier">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for t in xt:
        out.append(f'<line x1="{sx(t):.1f}" y1="{TOP}" x2="{sx(t):.1f}" y2="{TOP + ph}" '
                   f'stroke="#ddd"/><text x="{sx(t):.1f}" y="{TOP + ph + 16}" '
                   f'text-anchor="middle">{t:,.4g}</text>')
    for t in yt:
        out.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{LEFT + pw}" y2="{sy(t):.1f}" '
                   f'stroke="#ddd"/><text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" '
                   f'text-anchor="end">{t:,.6g}</text>')
    out.append(f'<text x="{LEFT + pw / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
               'output tokens/s per user</text>')
    out.append(f'<text transform="translate(18 {TOP + ph / 2:.1f}) rotate(-90)" '
               'text-anchor="middle">output tokens/s per GPU</text>')
    q = result.query
    limit = (1 / q.tpot_s if q.tpot_s else q.min_tokens_per_s_per_user)
    if limit and xt[0] <= limit <= xt[-1]:
        out.append(f'<line x1="{sx(limit):.1f}" y1="{TOP}" x2="{sx(limit):.1f}" '
                   f'y2="{TOP + ph}" stroke="#555" stroke-dasharray="6 4"/>'
                   f'<text x="{sx(limit) + 4:.1f}" y="{TOP + 12}">TPOT limit</text>')
    for k, (hw, pts) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        if pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"/>')
            out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                       f'<title>{escape(hw)}: {x:,.1f} tokens/s per user, {y:,.1f} per GPU'
                       f'</title></circle>' for x, y in pts)
        ly = TOP + 14 + 18 * k
        out.append(f'<rect x="{LEFT + pw + 14}" y="{ly - 9}" width="12" height="12" '
                   f'fill="{colour}"/><text x="{LEFT + pw + 32}" y="{ly + 1}">'
                   f'{escape(hw)}</text>')
    if result.best is not None:
        c = result.points.columns
        bx, by = c["tokens_per_s_per_user"][result.best], c["tokens_per_s_per_gpu"][result.best]
        out.append(f'<circle cx="{sx(bx):.1f}" cy="{sy(by):.1f}" r="8" fill="none" '
                   f'stroke="black" stroke-width="2"/><text x="{sx(bx) + 10:.1f}" '
                   f'y="{sy(by) - 10:.1f}">best</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#333"/></svg>')
    return "\n".join(out)


_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:72em}"
          "table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}"
          "td:first-child,th:first-child{text-align:left}caption{text-align:left;"
          "font-weight:bold;padding:.5em 0}.notes{color:#444;font-size:.9em}")


def _table_html(table: object) -> str:
    from planner.report.table import Table

    assert isinstance(table, Table)
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    notes = "".join(f"<li>{escape(n)}</li>" for n in table.notes)
    return (f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>" + (f'<ul class="notes">{notes}</ul>' if notes
                                                 else ""))


def plan_html(result: PlanResult, band: tuple[Any, str, str | None] | None = None) -> str:
    """The HTML report: title, inputs, the frontier plot (inline SVG), the chosen layouts and
    the frontier tables, all in one file; with ``band`` (as :func:`planner.report.plan.
    plan_tables` takes it) the best point's error band, as the terminal table shows it."""
    from planner.report.plan import chosen_table, frontier_tables, limits_text

    q = result.query
    inputs = [("model", result.model), ("hardware", ", ".join(result.frontier)),
              ("prompt tokens (ISL)", f"{q.isl:,}"), ("output tokens (OSL)", f"{q.osl:,}"),
              ("limits", limits_text(result)),
              ("layouts evaluated", f"{result.evaluated:,} in {result.wall_s:.2f} s")]
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in inputs)
    tables = "".join(_table_html(t) for t in [chosen_table(result, band), *frontier_tables(result)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>planner plan: {escape(result.model)}</title><style>{_STYLE}</style>"
            f"</head><body><h1>planner plan: {escape(result.model)}</h1>"
            f"<table><caption>Inputs</caption>{rows}</table>"
            f"<figure>{frontier_svg(result)}<figcaption>Pareto frontier per hardware: output "
            "tokens/s per GPU against output tokens/s per user (each point a layout; hover "
            "for values)</figcaption></figure>"
            f"{tables}</body></html>\n")
