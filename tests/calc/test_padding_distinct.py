"""The expected padded rows of a large array are computed once per distinct (mean, tile) pair
(planner plan's speed); the values are those of every element computed on its own."""

import numpy as np

from planner.calc.serving import kernels
from planner.calc.serving.kernels import expected_padded_rows_per_expert


def test_distinct_pairs_give_the_elementwise_values():
    rng = np.random.default_rng(0)
    n = kernels.DISTINCT_PAIRS_MIN_SIZE * 3
    r = rng.choice(np.r_[0.0, np.linspace(0.01, 400, 300)], n)
    b = rng.choice([1, 2, 32, 64, 128], n)
    fast = expected_padded_rows_per_expert(mean_rows=r, tile_rows=b)
    direct = kernels._expected_padded_rows_terms(*np.broadcast_arrays(r, b))
    assert np.array_equal(fast, direct)
    # And each element as the scalar function gives it.
    for i in rng.integers(0, n, 40):
        scalar = expected_padded_rows_per_expert(mean_rows=float(r[i]), tile_rows=int(b[i]))
        assert np.isclose(fast[i], scalar, rtol=1e-12, atol=0)
    # A 2-D grid keeps its shape.
    grid = expected_padded_rows_per_expert(mean_rows=r[:, None][:5000], tile_rows=np.array([64]))
    assert grid.shape == (5000, 1)
