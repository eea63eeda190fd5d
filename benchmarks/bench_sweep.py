"""Sweep throughput benchmark (not a test: run it by hand): points per second of the vectorized
sweep against a Python loop over the scalar API, for the same metric and the same points.

  vectorized: planner.studies.sweep.run_sweep on a 1,000 x 1,000 grid (nic bandwidth x tokens per GPU)
  loop:       planner.calc.ep.ep_decode_limit called once per point, on a 100 x 20 sub-grid

It checks that both give the same values where they overlap, then prints points/s and the ratio.
Usage: python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import time

import numpy as np

from planner.calc.ep import ep_decode_limit
from planner.catalog import load_hardware, load_model
from planner.studies.sweep import run_sweep


def main() -> int:
    model, hw = load_model("deepseek-v3"), load_hardware("h800")
    varies = ["nic_bandwidth_gb_per_s=10:1000:log1000", "tokens_per_device=1:1000:lin1000"]
    run_sweep(model, hw, "ep_ceiling_tokens_per_s", varies)                 # warm-up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        result = run_sweep(model, hw, "ep_ceiling_tokens_per_s", varies)
        best = min(best, time.perf_counter() - start)
    points = result.values.size
    vec_rate = points / best

    rows, cols = result.axes[0][::10], result.axes[1][::50]
    start = time.perf_counter()
    loop = np.array([[ep_decode_limit(model, hw, tokens_per_device=float(t),
                                      bandwidth_bytes_per_s=float(b) * 1e9).ep_ceiling_tokens_per_s
                      for t in cols] for b in rows])
    loop_time = time.perf_counter() - start
    loop_rate = loop.size / loop_time
    same = np.allclose(loop, result.values[::10, ::50], rtol=1e-12)
    print(f"{'case':44} {'points':>10} {'time':>10} {'points/s':>14}")
    print(f"{'vectorized run_sweep (best of 5)':44} {points:>10,} {best * 1e3:>8.1f} ms "
          f"{vec_rate:>14,.0f}")
    print(f"{'python loop over ep_decode_limit':44} {loop.size:>10,} {loop_time * 1e3:>8.1f} ms "
          f"{loop_rate:>14,.0f}")
    print(f"speed-up: {vec_rate / loop_rate:,.0f}x; same values where both ran: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
