"""Cold-start benchmark of the planner CLI (not a test: run it by hand).

Measures, in one run and interleaved so that both see the same machine load:
  baseline: python -c "import typer, pydantic, yaml"
  planner:  planner kv-cache deepseek-v3   (the console script of this environment)
and prints the median and minimum wall time of each and the ratio of the medians.

Usage: python benchmarks/bench_cli.py [--runs 40] [--command "kv-cache deepseek-v3"]
The first planner call validates the catalog file and records it (see planner/specs/load.py);
one warm-up call of each is made before timing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--command", default="kv-cache deepseek-v3")
    args = parser.parse_args()
    script = shutil.which("planner")
    planner = [script] if script else [sys.executable, "-m", "planner"]
    cases = {
        "baseline: import typer, pydantic, yaml": [sys.executable, "-c",
                                                   "import typer, pydantic, yaml"],
        f"planner {args.command}": planner + args.command.split(),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():
        time_once(argv)  # warm-up: OS file cache, validation record
    for _ in range(args.runs):
        for name, argv in cases.items():
            times[name].append(time_once(argv))
    medians = {}
    print(f"{'case':<45} {'median':>9} {'min':>9}   ({args.runs} runs each, interleaved)")
    for name, ts in times.items():
        medians[name] = statistics.median(ts)
        print(f"{name:<45} {medians[name] * 1e3:7.1f} ms {min(ts) * 1e3:7.1f} ms")
    base, plan = medians.values()
    print(f"ratio planner / baseline (medians): {plan / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
