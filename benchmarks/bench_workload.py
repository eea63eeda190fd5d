"""Speed of the workload model through the library (issue 20, "Must show": >= 100,000 predicted
configurations per second): one ``serve_workload`` call over a numpy grid of ISL x OSL x
concurrency x layout, per model, timed after a warm-up; the per-configuration scalar call beside
it for scale. A measurement by hand, not a timed test.

Usage: python benchmarks/bench_workload.py [--quick]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from planner import catalog
from planner.calc.serving.workload import serve_workload
from planner.specs.load import load_engine

TARGET_PER_S = 100_000


def grid(moe: bool):
    """ISL x OSL x concurrency x (TP, attention DP) layouts of one 8-GPU replica."""
    isl = np.array([128, 256, 512, 1024, 2048, 4096, 8192, 16384])
    osl = np.array([128, 256, 512, 1024, 2048, 4096, 8192])
    conc = np.array([1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024])
    layouts = [(1, 1), (2, 1), (4, 1), (8, 1)] + ([(1, 8), (2, 4), (4, 2)] if moe else [])
    tp = np.array([t for t, _ in layouts])
    adp = np.array([a for _, a in layouts])
    shape = (len(isl), len(osl), len(conc), len(layouts))
    return dict(isl=isl[:, None, None, None], osl=osl[None, :, None, None],
                concurrency=conc[None, None, :, None], tp=tp[None, None, None, :],
                attention_dp=adp[None, None, None, :]), int(np.prod(shape))


def main(quick: bool) -> int:
    hw = catalog.load_hardware("h200")
    engine = load_engine("trtllm")
    worst = float("inf")
    for name in ("llama-3.1-70b", "qwen3-32b", "deepseek-v3", "qwen3-235b-a22b",
                 "gpt-oss-120b"):
        model = catalog.load_model(name)
        from planner.specs.model import MoEFFN

        kw, n = grid(isinstance(model.ffn, MoEFFN))
        serve_workload(model, hw, engine, **kw)                 # warm-up
        repeats = 1 if quick else 3
        start = time.perf_counter()
        for _ in range(repeats):
            r = serve_workload(model, hw, engine, **kw)
        per_s = n * repeats / (time.perf_counter() - start)
        start = time.perf_counter()
        scalar_n = 20
        for c in range(1, scalar_n + 1):
            serve_workload(model, hw, engine, isl=1024, osl=1024, concurrency=c, tp=8)
        scalar_per_s = scalar_n / (time.perf_counter() - start)
        worst = min(worst, per_s)
        print(f"{name:16s} {n:7,} configurations: {per_s:12,.0f} per s in one call "
              f"({r.fits.mean():.0%} fit); scalar calls {scalar_per_s:8,.0f} per s")
    verdict = "met" if worst >= TARGET_PER_S else "NOT met"
    print(f"slowest model: {worst:,.0f} configurations per s (target >= {TARGET_PER_S:,}: "
          f"{verdict})")
    return 0 if worst >= TARGET_PER_S else 1


if __name__ == "__main__":
    sys.exit(main("--quick" in sys.argv))
