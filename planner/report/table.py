"""The :class:`Table` type and its renderers: rich (terminal), JSON, CSV and Markdown.

Every command builds a list of tables: display rows (strings, human units) for the terminal and
Markdown, and records (base-unit numbers, metric names of the design vocabulary) for JSON and
CSV. JSON is always a list of records; a metric that does not apply is ``null``. rich is
imported only when a table is drawn.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence, TextIO

if TYPE_CHECKING:
    from planner.calc.common import Input

#: Width of a rich table written to a pipe or a file (a terminal uses its own width).
PIPE_WIDTH = 160


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
    #: Records made as they are read (a large sweep), used by JSON and CSV instead of
    #: ``records``: both are written record by record, so memory does not grow with the number.
    streamed_records: Sequence[dict[str, Any]] | None = None
    #: The keys of every record, when known (CSV then reads the records once).
    columns: list[str] | None = None

    def all_records(self) -> Iterable[dict[str, Any]]:
        """``streamed_records`` when there are, else ``records``."""
        return self.records if self.streamed_records is None else self.streamed_records

    def is_right(self, j: int) -> bool:
        if self.align is not None:
            return self.align[j] == "r"
        return j >= self.right_align_from

    def add(self, record: dict[str, Any], cells: list[str]) -> None:
        """One record and the display row derived from it."""
        self.records.append(record)
        self.rows.append(cells)

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
        _render_json(tables, out)
    elif fmt == "csv":
        _render_csv(tables, out)
    elif fmt == "markdown":
        _render_markdown(tables, out)
        if legend := abbreviations(tables):
            out.write(f"\n{legend}\n")
    else:
        _render_rich(tables, out, legend=abbreviations(tables))


def abbreviations(tables: list[Table]) -> str:
    """What the sources the tables cite by abbreviation ("P Table 3", "V3R §3.3") stand for, to
    print once under them, or ""."""
    from planner.vocab import abbreviations_used

    return abbreviations_used("\n".join(
        "\n".join([t.title, *t.headers, *t.notes, *("\t".join(r) for r in t.rows)])
        for t in tables))


def _render_json(tables: list[Table], out: TextIO) -> None:
    """One JSON list of every record, written record by record (the bytes of
    ``json.dumps(records, indent=2)``)."""
    import json

    sep = "[\n  "
    for t in tables:
        for r in t.all_records():
            text = json.dumps({k: clean(v) for k, v in r.items()}, indent=2, ensure_ascii=False)
            out.write(sep + text.replace("\n", "\n  "))
            sep = ",\n  "
    out.write("[]\n" if sep.startswith("[") else "\n]\n")


def _render_csv(tables: list[Table], out: TextIO) -> None:
    """Every record under the union of their keys, written row by row."""
    import csv

    keys: list[str] = []
    for t in tables:
        for r in (t.all_records() if t.columns is None else [dict.fromkeys(t.columns)]):
            keys += [k for k in r if k not in keys]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for t in tables:
        for r in t.all_records():
            writer.writerow([_csv_cell(r.get(k)) for k in keys])


def _csv_cell(v: Any) -> Any:
    """A CSV cell: empty for None, NaN and infinity; JSON for a dict or list."""
    if v is None:
        return ""
    if isinstance(v, float):
        return v if math.isfinite(v) else ""
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, ensure_ascii=False)
    return v


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


def spec_notes_text(notes: list[tuple[str, str]], out: TextIO, *, wrap: bool) -> str:
    """``note: <spec>: <text>`` lines, one per spec, wrapped to :func:`terminal_width` when
    ``wrap`` (under a table: nothing printed wider than the terminal)."""
    import textwrap

    lines = [f"note: {name}: {text}" for name, text in notes]
    if wrap:
        width = terminal_width(out)
        lines = [textwrap.fill(line, width=width, subsequent_indent="  ",
                               break_long_words=False, break_on_hyphens=False) for line in lines]
    return "".join(f"{line}\n" for line in lines)


def terminal_width(out: TextIO) -> int:
    """The width tables are laid out in: ``COLUMNS`` when it is set, else the terminal's width,
    else (a pipe or a file) :data:`PIPE_WIDTH`."""
    import os
    import shutil

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if out.isatty():
        return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns
    return PIPE_WIDTH


def _render_rich(tables: list[Table], out: TextIO, width: int | None = None,
                 legend: str = "") -> None:
    """Draw ``tables`` within ``width`` columns (default :func:`terminal_width`), never cutting
    a cell: the widths come from :mod:`planner.report.layout`, which falls back to one
    ``header  value`` line per cell when the columns cannot fit side by side; then ``legend``
    (what the abbreviations stand for)."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    from planner.report.layout import column_widths, vertical_lines

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader of ``out`` went away (``| head``): raise, so that the command exits
            with its own code for it, not rich's exit 1 (a violated budget's code)."""
            self.quiet = True
            raise BrokenPipeError("the reader of the output closed it")

    width = width or terminal_width(out)
    console = _Console(file=out, highlight=False, soft_wrap=False, width=width)
    for i, t in enumerate(tables):
        if i:
            console.print()
        widths = column_widths(t, width)
        if widths is None:
            console.print(Text(t.title, style="bold"))
            for line in vertical_lines(t, width):
                console.print(Text(line), overflow="ignore", crop=False)
        else:
            # Text, not str: cells are never read as rich markup (a model named "[red]x" prints
            # as written), and markup parsing is skipped.
            rt = RichTable(title=Text(t.title), title_justify="left", title_style="bold")
            for j, h in enumerate(t.headers):
                rt.add_column(Text(h), justify="right" if t.is_right(j) else "left",
                              width=widths[j], overflow="fold")
            for row in t.rows:
                rt.add_row(*(Text(c) for c in row))
            console.print(rt)
        for note in t.notes:
            console.print(note, style="dim", markup=False)
    if legend:
        console.print()
        console.print(legend, style="dim", markup=False)


def explain_table(title: str, formula: str, ref: str, inputs: Iterable[Input],
                  basis: str | None = None) -> Table:
    """An --explain table: the formula, every input with its origin, and the reference."""
    from planner.report.flags import cli_origin

    inputs = list(inputs)
    t = Table(title=f"explain: {title}", headers=["input", "value", "unit", "from"],
              align="lrll")
    record_inputs = [{"name": i.name, "value": i.value, "unit": i.unit,
                      "from": cli_origin(i.origin)}
                     for i in inputs]
    for rec in record_inputs:
        value = rec["value"] if isinstance(rec["value"], str) else f"{rec['value']:,.6g}"
        t.rows.append([rec["name"], value, rec["unit"], rec["from"]])
    t.notes = [f"Formula: {formula}", f"Ref: {ref}"]
    if basis:
        t.notes.append(f"Figures used: {basis}")
    t.records = [{"explain": title, "formula": formula, "ref": ref, "inputs": record_inputs}]
    return t
