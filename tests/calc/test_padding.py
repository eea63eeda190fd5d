"""Issue 18 item 10: the expected padded rows per expert in closed form (no loop whose length
grows with the rows or the tile), equal to the former Poisson-window sum wherever that sum ran."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from planner.calc.serving import MAX_TILE_ROWS, expected_padded_rows_per_expert as pad
from planner.specs import deployment


def window_sum(mean_rows: float, tile_rows: int) -> float:
    """The former implementation (a reference, not the formula): E[⌈X/B⌉·B] summed over the pmf
    of X ~ Poisson(r) on r ± (12σ + B), one term per count."""
    half = 12 * math.sqrt(mean_rows) + tile_rows
    total = 0.0
    for x in range(max(0, math.floor(mean_rows - half)), math.ceil(mean_rows + half) + 1):
        pmf = math.exp(x * math.log(mean_rows) - mean_rows - math.lgamma(x + 1))
        total += pmf * math.ceil(x / tile_rows) * tile_rows
    return total


# The window sum is itself exact to ~1e-11 here: small tiles need r >= 1 (its window is
# r + 12σ + B, short of the tail for r << 1), and past 1e5 its pmf's exponent x·log r loses
# digits (1e7: 6e-9).
GRID = ([(r, b) for b in (16, 32, 64, 100, 128, 256, MAX_TILE_ROWS)
         for r in np.geomspace(1e-4, 1e5, 37)]
        + [(r, b) for b in (1, 2, 3, 7) for r in np.geomspace(1, 1e5, 21)])


@pytest.mark.parametrize("mean_rows, tile_rows", GRID)
def test_closed_form_equals_the_window_sum(mean_rows, tile_rows):
    assert pad(mean_rows=float(mean_rows), tile_rows=tile_rows) == pytest.approx(
        window_sum(float(mean_rows), tile_rows), rel=1e-9)


@pytest.mark.parametrize("mean_rows", [1e-9, 1e-3, 0.5, 1.0, 1.5, 20.3, 1e3, 1e6, 1e9, 1e15])
def test_tiles_of_one_and_two_rows_by_hand(mean_rows):
    # B = 1 pads nothing: E = r. B = 2 pads the odd counts by one row:
    # E = r + P(X odd) = r + (1 − e^−2r)/2.
    assert pad(mean_rows=mean_rows, tile_rows=1) == pytest.approx(mean_rows, rel=1e-12)
    assert pad(mean_rows=mean_rows, tile_rows=2) == pytest.approx(
        mean_rows + (1 - math.exp(-2 * mean_rows)) / 2, rel=1e-12)


def test_small_means_by_hand():
    # r = 0.01, B = 64: almost every expert with a row holds one (P(X >= 1) = 1 − e^−0.01), and
    # computes one whole tile: 64 × 0.00995 = 0.6368 rows.
    assert pad(mean_rows=0.01, tile_rows=64) == pytest.approx(64 * (1 - math.exp(-0.01)),
                                                              rel=1e-12)
    assert pad(mean_rows=0.0, tile_rows=64) == 0.0
    assert pad(mean_rows=5.0, tile_rows=None) == 5.0


def test_arrays_equal_the_scalars():
    r = np.geomspace(1e-3, 1e9, 50)[:, None]
    b = np.array([1, 2, 7, 32, 64, 256, MAX_TILE_ROWS])[None, :]
    got = pad(mean_rows=r, tile_rows=b)
    assert got.shape == (50, 7)
    want = [[pad(mean_rows=float(x), tile_rows=int(t)) for t in b[0]] for x in r[:, 0]]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_array_equal(pad(mean_rows=np.array([0.0, -1.0]), tile_rows=64), [0, -1])


@pytest.mark.parametrize("mean_rows, tile_rows", [(1e15, 64), (1e15, MAX_TILE_ROWS),
                                                  (1e-300, MAX_TILE_ROWS), (2.0, MAX_TILE_ROWS)])
def test_huge_means_and_tiles_take_no_time(mean_rows, tile_rows):
    # The former window sum took 24σ terms: 7.6e8 at r = 1e15 (hours). Now at most B/2.
    start = time.perf_counter()
    got = pad(mean_rows=mean_rows, tile_rows=tile_rows)
    assert time.perf_counter() - start < 0.1
    assert mean_rows <= got < mean_rows + tile_rows


def test_tiles_past_the_bound_are_refused():
    assert deployment.MAX_TILE_ROWS == MAX_TILE_ROWS     # the spec's bound is the calculator's
    with pytest.raises(ValueError, match="tile_rows must be 1 .. 1024"):
        pad(mean_rows=10.0, tile_rows=MAX_TILE_ROWS + 1)
    with pytest.raises(ValueError, match="tile_rows"):
        pad(mean_rows=np.ones(3), tile_rows=np.array([64, 10**12, 64]))
