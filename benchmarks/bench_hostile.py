"""Hostile-input benchmark (not a test: run it by hand): how long and how much memory the planner
takes to refuse an alias bomb, a 100 MB file, deep nesting and a ``!!python`` tag, and every
crash, NaN, bound and file case of issue 18 (``hostile_corpus`` in tests/tests_support.py, which
tests/specs/test_fuzz.py runs in-process).

For each input it runs the CLI as a subprocess (start-up included) and reports the wall time (a
wrapper process included), the exit code, the CLI process's peak resident memory, and the end of
its last stderr line. Compare with ``planner kv-cache deepseek-v3`` on the first line. A case
that prints a traceback, exits 3 (internal error) or with a code it should not, runs over 10 s or
takes over 1 GB is marked ``FAIL`` and makes the script exit 1.

Usage: python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tests_support import hostile_corpus  # noqa: E402

#: Limits every case must stay within.
MAX_WALL_S = 10
MAX_RSS_KIB = 1024 * 1024

ALIAS_BOMB = (b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [".encode()
                         + b",".join([f"*{chr(97 + i)}".encode()] * 9) + b"]\n"
                         for i in range(9)))


def inputs(folder: Path) -> list[tuple[str, list[str], dict[str, str], set[int]]]:
    """(name, planner arguments, environment, allowed exit codes) of every case."""
    files = {
        "alias bomb (10^9 nodes expanded)": ALIAS_BOMB,
        "deep nesting (400,000 levels)": b"[" * 400_000 + b"]" * 400_000,
        "!!python/object tag": b"a: !!python/object/apply:os.system ['echo pwned']\n",
    }
    out: list[tuple[str, list[str], dict[str, str], set[int]]] = [
        ("(reference) kv-cache deepseek-v3", ["kv-cache", "deepseek-v3"], {}, {0})]
    for name, raw in files.items():
        p = folder / f"{len(out)}.yaml"
        p.write_bytes(raw)
        out.append((name, ["kv-cache", str(p)], {}, {2}))
    big = folder / "big.yaml"
    with open(big, "wb") as fh:
        fh.write(b"a: ")
        chunk = b"x" * 1_000_000
        for _ in range(100):
            fh.write(chunk)                 # a real (not sparse) 100 MB file
    out.append(("100 MB file", ["kv-cache", str(big)], {}, {2}))
    return out + hostile_corpus(folder / "corpus")


#: Runs the command, then prints its exit code and its peak resident memory (KiB) on stdout.
WRAPPER = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main() -> int:
    exe = shutil.which("planner") or sys.exit("planner is not installed in this environment")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = inputs(Path(tmp))
        print(f"{'input':44} {'wall':>9} {'exit':>5} {'peak RSS':>10}  stderr")
        for name, args, env, codes in cases:
            # A fresh wrapper per input, so that its children's peak RSS is this input's alone.
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", WRAPPER, exe, *args],
                                  capture_output=True, text=True, env={**os.environ, **env})
            wall = time.perf_counter() - start
            code_rss = proc.stdout.strip().splitlines()[-1].split()
            code, rss_kib = int(code_rss[0]), int(code_rss[1])
            peak = f"{rss_kib / 1024:.0f} MiB"
            err = proc.stderr.strip().splitlines()
            bad = (code not in codes or "Traceback" in proc.stderr or wall > MAX_WALL_S
                   or rss_kib > MAX_RSS_KIB)
            failed += bad
            print(f"{'FAIL ' if bad else ''}{name[:44]:44} {wall * 1e3:7.1f} ms {code:5} "
                  f"{peak:>10}  {err[-1][-90:] if err else ''}")
    print(f"{len(cases)} cases, {failed} over the limits ({MAX_WALL_S} s, 1 GiB, no traceback, "
          "the expected exit code)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
