"""Cold-start benchmark of the planner CLI (not a test: run it by hand).

Measures, in one run and interleaved so that both see the same machine load:
  baseline: python -c "import typer, pydantic, yaml"
  planner:  planner kv-cache deepseek-v3   (the console script of this environment)
and prints the median and minimum wall time and the minimum CPU time of each, and the ratios.

Usage: python benchmarks/bench_cli.py [--runs 40] [--command "kv-cache deepseek-v3"]
                                     [--repo TREE [--repo TREE2 ...]] [--no-bytecode]
--repo runs the console script with PYTHONPATH=TREE, so that it imports TREE's own ``planner``
(give it twice to compare two checkouts, e.g. before and after a refactor, in one interleaved
run); without it the environment's installed ``planner`` runs.
The first planner call validates the catalog file and records it (see planner/specs/cache.py);
one warm-up call of each is made before timing.

Bytecode: every case runs with its compiled modules cached (PYTHONPYCACHEPREFIX, a temporary
folder; PYTHONDONTWRITEBYTECODE dropped), as an installed wheel runs (pip compiles it). A source
tree without ``__pycache__`` under PYTHONDONTWRITEBYTECODE=1 (this project's build machine sets
it) otherwise compiles the planner's ~26 modules on every call while the baseline's site
packages have theirs: that, not an import, was most of the gap measured before.
``--no-bytecode`` measures that way (the environment as it is) instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def time_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU (user + system of the child) moves less than wall
    time with the load of a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--command", default="kv-cache deepseek-v3")
    parser.add_argument("--repo", action="append", default=[], metavar="TREE",
                        help="Checkout whose planner package to run (repeatable).")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="Run in the environment as it is (no bytecode cache forced).")
    args = parser.parse_args()
    base_env = dict(os.environ)
    if not args.no_bytecode:
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-cli-pyc-")
    script = shutil.which("planner")
    planner = [script] if script else [sys.executable, "-m", "planner"]
    baseline = "baseline: import typer, pydantic, yaml"
    cases: dict[str, tuple[list[str], dict[str, str] | None]] = {
        baseline: ([sys.executable, "-c", "import typer, pydantic, yaml"], base_env),
    }
    for repo in args.repo or [None]:
        env = base_env if repo is None else dict(base_env, PYTHONPATH=os.path.abspath(repo))
        label = f"planner {args.command}" + ("" if repo is None else f" [{repo}]")
        cases[label] = (planner + args.command.split(), env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for argv, env in cases.values():
        time_once(argv, env)  # warm-up: OS file cache, validation record, bytecode
    for _ in range(args.runs):
        for name, (argv, env) in cases.items():
            wall, used = time_once(argv, env)
            times[name].append(wall)
            cpu[name].append(used)
    medians = {}
    width = max(45, *(len(name) for name in cases))
    mode = "environment as is" if args.no_bytecode else "bytecode cached"
    print(f"{'case':<{width}} {'median':>9} {'min':>9} {'min CPU':>9}   ({args.runs} runs each, "
          f"interleaved, {mode})")
    for name, ts in times.items():
        medians[name] = statistics.median(ts)
        print(f"{name:<{width}} {medians[name] * 1e3:7.1f} ms {min(ts) * 1e3:7.1f} ms "
              f"{min(cpu[name]) * 1e3:7.1f} ms")
    for name, median in medians.items():
        if name != baseline:
            print(f"ratio {name} / baseline: medians {median / medians[baseline]:.2f}x, "
                  f"minima {min(times[name]) / min(times[baseline]):.2f}x, CPU minima "
                  f"{min(cpu[name]) / min(cpu[baseline]):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
