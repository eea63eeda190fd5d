"""Terminal layout of a :class:`~planner.report.table.Table`: column widths that never cut a
word, or, when even that does not fit, a vertical layout (one ``header  value`` line per cell).

Nothing a table prints is cropped at any width. Left to itself, rich shrinks a table that is
wider than the terminal by cropping cells and collapsing whole columns to nothing (a GPU count
of 16 printed as "1", a name column gone); so the widths are chosen here and handed to rich:

1. every column at its natural width when the table fits;
2. else every column at least its longest word (a number, a name or a unit is one word and is
   never split; text wraps at spaces), right-aligned and never-wrapped columns kept whole while
   they can be, the rest of the width shared by the columns that wrap;
3. else the vertical layout: each row as a block of ``header  value`` lines, the values wrapped
   at spaces.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.report.table import Table

#: Characters a rich table with edges and one space of padding adds per column (the two padding
#: spaces and the rule on its right) and once (the rule on the left).
BORDER_PER_COLUMN = 3
BORDER_EDGE = 1
#: Spaces between a header and its value in the vertical layout.
VERTICAL_GAP = 2
#: The header column of the vertical layout takes at most this share of the width.
VERTICAL_LABEL_SHARE = 1 / 3


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def longest_word(text: str) -> int:
    """Width of the longest space-separated word of ``text`` (0 for an empty text)."""
    return max((_cell_len(w) for w in text.split()), default=0)


def natural_width(text: str) -> int:
    """Width of ``text`` on one line per line break."""
    return max((_cell_len(line) for line in text.splitlines()), default=0)


def _kept_whole(table: Table, j: int) -> bool:
    """A column whose cells are kept on one line while the width allows: numbers (right-aligned)
    and the columns marked "L"."""
    return table.is_right(j) or (table.align is not None and table.align[j] == "L")


def column_widths(table: Table, width: int) -> list[int] | None:
    """Content width of each column so that the table fits in ``width`` without cutting a word,
    or None when it cannot (then :func:`vertical_lines` lays it out)."""
    n = len(table.headers)
    columns = [[table.headers[j], *(row[j] for row in table.rows)] for j in range(n)]
    natural = [max(natural_width(c) for c in col) for col in columns]
    words = [max(longest_word(c) for c in col) for col in columns]
    whole = [max([longest_word(col[0]), *(natural_width(c) for c in col[1:])])
             for col in columns]
    room = width - BORDER_EDGE - BORDER_PER_COLUMN * n
    if sum(natural) <= room:
        return natural
    if sum(words) > room:
        return None
    # Every column at its longest word; then numbers and "L" columns kept whole, the cheapest
    # first, as far as the width allows; the rest of the width shared by all.
    widths = list(words)
    spare = room - sum(widths)
    for j in sorted((j for j in range(n) if _kept_whole(table, j)),
                    key=lambda k: whole[k] - words[k]):
        if whole[j] - widths[j] <= spare:
            spare -= whole[j] - widths[j]
            widths[j] = whole[j]
    return _share(widths, natural, room)


def _share(minimum: list[int], natural: list[int], room: int) -> list[int]:
    """Grow ``minimum`` towards ``natural`` with ``room - sum(minimum)`` spare characters by
    water-filling: a column that lacks no more than an even share of what is left gets all it
    lacks (the least lacking first, so short columns stop wrapping), the others share the rest
    in proportion to what they lack."""
    widths = list(minimum)
    spare = room - sum(widths)
    waiting = sorted((j for j in range(len(widths)) if widths[j] < natural[j]),
                     key=lambda k: natural[k] - widths[k])
    while waiting and natural[waiting[0]] - widths[waiting[0]] <= spare // len(waiting):
        j = waiting.pop(0)
        spare -= natural[j] - widths[j]
        widths[j] = natural[j]
    lack = {j: natural[j] - widths[j] for j in waiting}
    total = sum(lack.values())
    grant = {j: spare * lk // total for j, lk in lack.items()} if total else {}
    for j, g in grant.items():
        widths[j] += g
    spare -= sum(grant.values())
    for j in sorted(waiting, key=lambda k: grant[k] - lack[k]):
        if spare <= 0:
            break
        widths[j] += 1
        spare -= 1
    return widths


def _wrap(text: str, width: int) -> list[str]:
    """``text`` wrapped at spaces to ``width`` (a longer word stays whole on its own line)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width=max(width, 1), break_long_words=False,
                               break_on_hyphens=False) or [""]
    return lines


def vertical_lines(table: Table, width: int) -> list[str]:
    """The rows of ``table`` as blocks of ``header  value`` lines within ``width`` (a blank line
    between blocks); a header too wide for its share wraps, and a value too wide for the space
    beside its header goes on the lines below it, indented."""
    label = min(max(natural_width(h) for h in table.headers),
                max(int(width * VERTICAL_LABEL_SHARE), max(longest_word(h) for h in
                                                          table.headers)))
    room = width - label - VERTICAL_GAP
    lines: list[str] = []
    for i, row in enumerate(table.rows):
        if i:
            lines.append("")
        for header, cell in zip(table.headers, row):
            heads = _wrap(header, label)
            if longest_word(cell) <= room:
                values = _wrap(cell, room)
                for k in range(max(len(heads), len(values))):
                    head = heads[k] if k < len(heads) else ""
                    value = values[k] if k < len(values) else ""
                    pad = " " * (label - _cell_len(head) + VERTICAL_GAP)
                    lines.append((head + pad + value).rstrip())
            else:
                lines += heads
                lines += ["  " + v for v in _wrap(cell, width - VERTICAL_GAP)]
    return lines
