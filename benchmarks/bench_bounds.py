"""Hangs and memory bombs of issue 18 (items 10-11), by hand (not a test): each input that ran
for hours or grew memory with its size, run through the whole CLI, with its wall time (start-up
included), exit code, peak resident memory and the end of its stderr. Every case must now
return in about a second, computed in closed form or refused at its bound (exit 2); the large
sweeps stream their CSV / JSON, so their peak memory does not grow with the grid.

Then the closed form of the expected padded rows per expert on its own: one call at the
largest means and tiles, and numpy arrays of configurations per second.

Usage: python benchmarks/bench_bounds.py [--quick]   (--quick skips the 10-million-point CSV)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Runs the command under a time limit, then prints its exit code and its peak RSS (KiB).
WRAPPER = """
import resource, subprocess, sys
try:
    code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1], "w"),
                          timeout=120).returncode
except subprocess.TimeoutExpired:
    code = "timeout"
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def spec_files(folder: Path) -> dict[str, str]:
    """Model and hardware files with the values that hung, beside the shipped ones."""
    v3 = (REPO / "models" / "deepseek-v3.yaml").read_text()
    h800 = (REPO / "hardware" / "h800.yaml").read_text()
    files = {
        "mtp": v3.replace("mtp_depth: 1 ", "mtp_depth: 100000000000 "),
        "topk": v3.replace("num_routed_experts: 256 ", "num_routed_experts: 1000000000000 ")
                  .replace("num_experts_per_token: 8 ", "num_experts_per_token: 1000000 "),
        "tile": h800.replace("mma_tile_rows: 64", "mma_tile_rows: 1000000000000"),
    }
    out = {}
    for name, text in files.items():
        path = folder / f"{name}.yaml"
        path.write_text(text)
        out[name] = str(path)
    return out


def cases(files: dict[str, str], quick: bool) -> list[tuple[str, list[str]]]:
    serve = ["serve", "deepseek-v3", "-H", "h800"]
    big = ["--vary", "tokens_per_device=1:1000:lin10000", "--vary",
           "nic_bandwidth_gb_per_s=10:1000:log1000"]
    out = [
        ("(reference) serve deepseek-v3 -H h800", serve),
        ("serve --batch-per-gpu 1e15", [*serve, "--batch-per-gpu", "1e15"]),
        ("serve --batch-per-gpu 2^30 (the bound)", [*serve, "--batch-per-gpu", str(2**30)]),
        ("serve --batch-per-gpu nan", [*serve, "--batch-per-gpu", "nan"]),
        ("serve --batch-per-gpu inf", [*serve, "--batch-per-gpu", "inf"]),
        ("serve --batch-per-gpu 1e308", [*serve, "--batch-per-gpu", "1e308"]),
        ("serve --gpus 2**63", [*serve, "--gpus", str(2**63)]),
        ("serve --gpus 2^20 --ep 2^20 (the bound)", [*serve, "--gpus", str(2**20), "--ep",
                                                     str(2**20)]),
        ("serve --gemm-tile-rows 1e12", [*serve, "--gemm-tile-rows", str(10**12)]),
        ("serve --expert-tile-rows 1e12", [*serve, "--expert-tile-rows", str(10**12)]),
        ("serve --*-tile-rows 1024 (the bound)", [*serve, "--gemm-tile-rows", "1024",
                                                  "--expert-tile-rows", "1024"]),
        ("serve --mtp-depth 1e11", [*serve, "--mtp-acceptance", "0.8", "--mtp-depth",
                                    str(10**11)]),
        ("serve --mtp-depth 16 (the bound)", [*serve, "--mtp-acceptance", "0.8", "--mtp-depth",
                                              "16"]),
        ("serve model with mtp_depth 1e11", ["serve", files["mtp"], "-H", "h800",
                                             "--mtp-acceptance", "0.8"]),
        ("routing model with top-k 1e6", ["routing", files["topk"], "-H", "h800"]),
        ("serve on hardware with a 1e12-row tile", ["serve", "deepseek-v3", "-H",
                                                    files["tile"]]),
        ("numerics --rows 1e11", ["numerics", "--rows", str(10**11)]),
        ("numerics --rows 1024 (the bound)", ["numerics", "--rows", "1024"]),
        ("sweep, 1e9-point grid", ["sweep", "deepseek-v3", "--vary",
                                   "tokens_per_device=1:1000:lin100000", "--vary",
                                   "nic_bandwidth_gb_per_s=10:1000:log10000"]),
        ("sweep, 1e7 points, table", ["sweep", "deepseek-v3", *big]),
        ("sweep, 1e7 points on one axis, table", ["sweep", "deepseek-v3", "--vary",
                                                  "tokens_per_device=1:1000:lin10000000"]),
        ("sweep, 1e6 points, csv", ["sweep", "deepseek-v3", *big[:1],
                                    "tokens_per_device=1:1000:lin1000", *big[2:], "-f", "csv"]),
        ("sweep, 1e6 points, json", ["sweep", "deepseek-v3", *big[:1],
                                     "tokens_per_device=1:1000:lin1000", *big[2:], "-f",
                                     "json"]),
    ]
    if not quick:
        out.append(("sweep, 1e7 points, csv", ["sweep", "deepseek-v3", *big, "-f", "csv"]))
    return out


def closed_form() -> None:
    import numpy as np

    from planner.calc.serving import expected_padded_rows_per_expert as pad

    for r, b in ((1e15, 64), (1e12, 1024), (2.0, 1024), (20.3, 64)):
        start = time.perf_counter()
        value = pad(mean_rows=r, tile_rows=b)
        print(f"  E[padded rows], r = {r:g}, B = {b}: {value:,.4f} in "
              f"{(time.perf_counter() - start) * 1e6:,.0f} µs")
    means = np.geomspace(1e-2, 1e6, 100_000)
    for b in (64, 256):
        start = time.perf_counter()
        pad(mean_rows=means, tile_rows=b)
        rate = means.size / (time.perf_counter() - start)
        print(f"  numpy, 100,000 means from 0.01 to 1e6, B = {b}: {rate:,.0f} per second")


def main() -> int:
    exe = shutil.which("planner") or sys.exit("planner is not installed in this environment")
    quick = "--quick" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        files = spec_files(Path(tmp))
        err = Path(tmp) / "stderr"
        print(f"{'input':42} {'wall':>9} {'exit':>7} {'peak RSS':>9}  stderr")
        for name, args in cases(files, quick):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", WRAPPER, str(err), exe, *args],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - start
            code, rss_kib = proc.stdout.split()
            lines = err.read_text().strip().splitlines()
            tail = lines[-1][-70:] if lines and code != "0" else ""
            print(f"{name:42} {wall:7.2f} s {code:>7} {int(rss_kib) / 1024:5.0f} MiB  {tail}")
    print("closed form of the expected padded rows per expert:")
    closed_form()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
