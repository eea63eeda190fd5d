"""The number-format study of paper §3 at one tile size: quantize-dequantize errors of each
format, FP8 accumulation precision, and a token's bytes on the wire in each format.

``planner numerics`` calls it; the tile check and the per-format bytes were computed in that
command before.
"""

from __future__ import annotations

from typing import Any

from planner.calc import numerics


#: Most rows (tokens) of generated data: 4x the default 256. Each row is 7,168 values; the study
#: holds several copies (1,024 rows: ~0.75 GB peak, ~10 s), and more rows change the errors by
#: less than their printed rounding.
MAX_ROWS = 1024


def check_rows(rows: int) -> None:
    """``ValueError`` unless 1 <= ``rows`` <= :data:`MAX_ROWS`."""
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"must be 1 .. {MAX_ROWS:,} (got {rows:,})")


def check_tile(tile: int, *, hidden_size: int = numerics.DEFAULT_HIDDEN_SIZE) -> None:
    """``ValueError`` unless 1 x ``tile`` groups split a ``hidden_size`` row exactly."""
    if hidden_size % tile:
        raise ValueError(f"must divide the hidden size {hidden_size} (got {tile})")


def numerics_study(formats: list[str], *, tile: int, seed: int, rows: int, pow2_scale: bool,
                   hidden_size: int = numerics.DEFAULT_HIDDEN_SIZE,
                   ) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    """``(format errors, accumulation errors, bytes on the wire)`` of ``formats`` on ``rows``
    generated rows of ``hidden_size`` elements, scaled per 1 x ``tile``; the wire rows are
    ``{"format", "bytes"}`` of one token's hidden vector, metadata included (bytes)."""
    check_tile(tile, hidden_size=hidden_size)
    check_rows(rows)
    errors = numerics.format_errors(formats, tile=tile, seed=seed, rows=rows, cols=hidden_size,
                                    pow2_scale=pow2_scale)
    accumulation = numerics.accumulation_errors(seed=seed)
    comm = [{"format": f, "bytes": numerics.comm_bytes_per_token(f, hidden_size=hidden_size,
                                                                  tile=tile)} for f in formats]
    return errors, accumulation, comm
