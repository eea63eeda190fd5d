"""Cold-start benchmark of the planner CLI (not a test: run it by hand).

Measures, in one run and interleaved so that both see the same machine load:
  baseline: python -c "import typer, pydantic, yaml"
  planner:  planner kv-cache deepseek-v3   (the console script of this environment)
and prints the median and minimum wall time of each and the ratio of the medians.

Usage: python benchmarks/bench_cli.py [--runs 40] [--command "kv-cache deepseek-v3"]
                                     [--repo TREE [--repo TREE2 ...]]
--repo runs the console script with PYTHONPATH=TREE, so that it imports TREE's own ``planner``
(give it twice to compare two checkouts, e.g. before and after a refactor, in one interleaved
run); without it the environment's installed ``planner`` runs.
The first planner call validates the catalog file and records it (see planner/specs/cache.py);
one warm-up call of each is made before timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def time_once(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--command", default="kv-cache deepseek-v3")
    parser.add_argument("--repo", action="append", default=[], metavar="TREE",
                        help="Checkout whose planner package to run (repeatable).")
    args = parser.parse_args()
    script = shutil.which("planner")
    planner = [script] if script else [sys.executable, "-m", "planner"]
    baseline = "baseline: import typer, pydantic, yaml"
    cases: dict[str, tuple[list[str], dict[str, str] | None]] = {
        baseline: ([sys.executable, "-c", "import typer, pydantic, yaml"], None),
    }
    for repo in args.repo or [None]:
        env = None if repo is None else dict(os.environ, PYTHONPATH=os.path.abspath(repo))
        label = f"planner {args.command}" + ("" if repo is None else f" [{repo}]")
        cases[label] = (planner + args.command.split(), env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv, env in cases.values():
        time_once(argv, env)  # warm-up: OS file cache, validation record
    for _ in range(args.runs):
        for name, (argv, env) in cases.items():
            times[name].append(time_once(argv, env))
    medians = {}
    width = max(45, *(len(name) for name in cases))
    print(f"{'case':<{width}} {'median':>9} {'min':>9}   ({args.runs} runs each, interleaved)")
    for name, ts in times.items():
        medians[name] = statistics.median(ts)
        print(f"{name:<{width}} {medians[name] * 1e3:7.1f} ms {min(ts) * 1e3:7.1f} ms")
    for name, median in medians.items():
        if name != baseline:
            print(f"ratio {name} / baseline (medians): {median / medians[baseline]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
