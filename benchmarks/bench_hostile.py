"""Hostile-input benchmark (not a test: run it by hand): how long and how much memory the planner
takes to refuse an alias bomb, a 100 MB file, deep nesting and a ``!!python`` tag.

For each input it runs ``planner kv-cache FILE`` as a subprocess (the whole CLI, start-up
included) and reports the wall time (a wrapper process included), the exit code, the CLI process's peak
resident memory, and the end of its one-line error. Compare with ``planner kv-cache deepseek-v3`` on the first line.

Usage: python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALIAS_BOMB = (b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [".encode()
                         + b",".join([f"*{chr(97 + i)}".encode()] * 9) + b"]\n"
                         for i in range(9)))


def inputs(folder: Path) -> dict[str, str]:
    files = {
        "alias bomb (10^9 nodes expanded)": ALIAS_BOMB,
        "deep nesting (400,000 levels)": b"[" * 400_000 + b"]" * 400_000,
        "!!python/object tag": b"a: !!python/object/apply:os.system ['echo pwned']\n",
    }
    out = {"(reference) kv-cache deepseek-v3": "deepseek-v3"}
    for name, raw in files.items():
        p = folder / f"{len(out)}.yaml"
        p.write_bytes(raw)
        out[name] = str(p)
    big = folder / "big.yaml"
    with open(big, "wb") as fh:
        fh.write(b"a: ")
        chunk = b"x" * 1_000_000
        for _ in range(100):
            fh.write(chunk)                 # a real (not sparse) 100 MB file
    out["100 MB file"] = str(big)
    return out


#: Runs the command, then prints its exit code and its peak resident memory (KiB) on stdout.
WRAPPER = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main() -> int:
    exe = shutil.which("planner") or sys.exit("planner is not installed in this environment")
    with tempfile.TemporaryDirectory() as tmp:
        cases = inputs(Path(tmp))
        print(f"{'input':36} {'wall':>9} {'exit':>5} {'peak RSS':>10}  stderr")
        for name, arg in cases.items():
            # A fresh wrapper per input, so that its children's peak RSS is this input's alone.
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", WRAPPER, exe, "kv-cache", arg],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - start
            code_rss = proc.stdout.strip().splitlines()[-1].split()
            code, rss_kib = int(code_rss[0]), int(code_rss[1])
            peak = f"{rss_kib / 1024:.0f} MiB"
            err = proc.stderr.strip().splitlines()
            print(f"{name:36} {wall * 1e3:7.1f} ms {code:5} {peak:>10}  "
                  f"{err[0][-90:] if err else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
