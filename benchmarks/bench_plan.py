"""planner plan speed (not a test: run it by hand): the wall time of the whole command, as a
user runs it (a new Python process: imports, specs, the search, the tables), and the layouts it
evaluated (read from its JSON records' count line on stderr-free stdout).

  planner plan deepseek-v3 -H h200 -H b200 --isl 1024 --osl 1024 --tpot-ms 50

Usage: python benchmarks/bench_plan.py [--runs N] [-H HW ...] [extra plan options]
The issue asks for >= 100,000 layouts in <= 2 s of wall time on the build machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_S = 2.0
MIN_LAYOUTS = 100_000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-H", dest="hardware", action="append")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    hardware = args.hardware or ["h200", "b200"]
    cmd = [sys.executable, "-m", "planner", "plan", "deepseek-v3",
           *[a for h in hardware for a in ("-H", h)], "--isl", "1024", "--osl", "1024",
           "--tpot-ms", "50", *extra]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "COLUMNS": "200"}
    walls, cpus, out = [], [], ""
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode:
            print(f"planner plan failed (exit {proc.returncode}): {proc.stderr.strip()}")
            return 1
        out = proc.stdout
    m = re.search(r"([\d,]+) layouts evaluated in ([\d.]+) s: ([\d,]+) fit in memory, "
                  r"([\d,]+) meet the limits", out)
    assert m, "the plan's summary line is missing"
    layouts = int(m[1].replace(",", ""))
    print(f"command: planner {' '.join(cmd[3:])}")
    print(f"layouts evaluated: {layouts:,} ({m[3]} fit, {m[4]} meet the limits); "
          f"search {m[2]} s inside the last run")
    print(f"wall time of the whole command, {args.runs} runs: median "
          f"{statistics.median(walls):.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s")
    print(f"CPU time (user + system) of the command: median {statistics.median(cpus):.2f} s; "
          f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = layouts >= MIN_LAYOUTS and statistics.median(walls) <= LIMIT_S
    print(f"issue target (>= {MIN_LAYOUTS:,} layouts in <= {LIMIT_S:g} s): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
