"""One-off reader of AMD's measured kernel timings: reduces AITER's tuned GEMM and fused-MoE
tables (and the few AMD system benchmarks quoted below) to the fractions of the datasheet's dense
peaks that ``hardware/mi300x.yaml`` and ``hardware/mi355x.yaml`` hold under ``efficiency:``.

Not part of the planner (standard library only; run by hand). Take a snapshot of
github.com/ROCm/aiter (MIT) and unpack its tuned tables:

    git -C <aiter> archive <commit> aiter/configs | tar -x -C <dir>
    python3 benchmarks/extract_amd_kernels.py --configs <dir>/aiter/configs --commit <sha>

AITER's tuners time every candidate kernel on one GPU per shape and keep the fastest: each row
of ``*tuned*.csv`` is (gfx, cu_num, M, N, K, ..., us) for GEMMs and (cu_num, token, model_dim,
inter_dim, expert, topk, dtypes, quant type, ..., us) for the fused MoE (both stages). Devices by
(gfx, cu_num): gfx942 with 304 CUs is MI300X or MI325X (same die and clocks; the tables do not
say which), gfx950 with 256 CUs is MI355X or MI350X (the tables do not say which; AMD's
inference results are MI355X's). Older files carry no ``gfx`` column: 304 CUs there are
gfx942, 256 CUs gfx950 (they predate gfx1250, the only other 256-CU part in the tables).

Reductions (each printed beside its value):
- GEMM by precision: per (N, K, M) the fastest time over the files of one kind; at each M of
  ``ROWS``, the median achieved FLOP/s (2·M·N·K / t; batched: 2·B·M·N·K) over the shapes with
  ``SHAPE_MIN <= N, K <= SHAPE_MAX`` and N·K >= ``GEMM_MIN_NK`` (layer-sized: AITER's kernels
  floor at about 3 µs at M = 1, N·K <= 2^20, under half the time from 2^25), / the dense peak of
  the precision the kernel computes in.
- Weight streaming: BF16 GEMMs at M = 1..8 whose weights (2·B·N·K bytes) fill at least the
  256 MiB Infinity Cache (smaller ones are re-read from it between the tuner's timed runs:
  MI355X FP8 GEMMs of 2^27 bytes "stream" at 10-12 TB/s, above the 8 TB/s HBM): median bytes
  B·(2·N·K + 2·M·(N + K)) / t, / the HBM peak.
- Grouped (MoE) GEMMs: gated experts (g1u1), per run (token, model_dim, inter_dim, expert,
  topk, precision) the fastest time, runs holding >= ``MOE_MIN_WEIGHTS`` expert weights
  (3·h·i·E); rows per expert r = T·topk / E; FLOPs = T·topk·6·h·i; median over the runs whose r
  lies within a factor sqrt(2) of each grid point of ``EXPERT_ROWS`` (>= ``MOE_MIN_RUNS``).
  AITER's tuner routes random scores (about balanced). No ``w4a16`` table: MI355X's BF16 x FP4
  runs reach 4 rows per expert only; weight-only 4-bit reads the bf16 table there.
- MI300X scale-up, HBM stream: Azure's AI-benchmarking-guide results for ND MI300X v5 (RCCL
  all-reduce bus bandwidth at 512 MiB; STREAM copy), quoted in ``AZURE_MI300X``.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

# The YAML writers are the NVIDIA reducer's (it imports pyarrow only inside its readers).
from extract_aic_kernels import _factor_yaml, _table_yaml

#: Dense peaks (TFLOP/s), HBM (TB/s) and Infinity Fabric (GB/s per direction) as hardware/*.yaml
#: give them: the reduction divides by these. ``match``: (gfx, cu_num) of the tables' rows.
DEVICES = {
    "mi300x": dict(gfx="gfx942", cu="304", bf16=1307.4, fp8=2614.9, hbm=5.3, xgmi=448),
    "mi355x": dict(gfx="gfx950", cu="256", bf16=2516.6, fp8=5033.2, fp4=10066.3, hbm=8.0,
                   xgmi=537.6),
}
ROWS = (1, 4, 16, 64, 256, 1024, 4096, 16384)
EXPERT_ROWS = (1, 2, 4, 16, 64, 256, 1024, 4096)
SHAPE_MIN, SHAPE_MAX = 1024, 65536
GEMM_MIN_NK = 2**25
#: Expert weights (3hi·E elements) a fused-MoE run must hold on its GPU to count, as
#: benchmarks/extract_aic_kernels.py's NVIDIA reduction (2^29): smaller runs sit on the
#: per-kernel floor, and the catalog's MoE models hold 2^28.2 (Qwen3-235B-A22B, EP 8) to 2^30.4
#: (DeepSeek-V3, EP 8) per GPU and layer. From 2^27 to 2^29 AITER's medians move little at
#: 1-16 rows per expert (+0-7%) but up to +30% at 64-1024 (MI355X BF16 0.1397 -> 0.1818 at
#: 256), where the dropped runs are the small TP-split tables; MI300X's BF16 table keeps 1 run.
MOE_MIN_WEIGHTS = 2**29
#: The Infinity Cache (MALL) of MI300X and MI355X: 256 MiB.
CACHE_BYTES = 256 * 2**20
#: Dense kinds: table key -> (file-name test, q_dtype_w values or None, peak precision).
GEMM_KINDS = {
    "bf16": (lambda name: "bf16" in name and "batched" not in name, None, "bf16"),
    "fp8": (lambda name: name.startswith(("a8w8_tuned", "a8w8_bpreshuffle_tuned",
                                          "a8w8_bpreshuffle_cktile_tuned")),
            ("torch.float8_e4m3fn", "torch.float8_e4m3fnuz"), "fp8"),
    "fp8_block": (lambda name: "a8w8_blockscale" in name and "batched" not in name, None, "fp8"),
    "fp4": (lambda name: "a4w4_blockscale" in name, None, "fp4"),
}
#: MoE kinds: key -> (q_type, q_dtype_a, q_dtype_w families, peak precision).
MOE_KINDS = {
    "bf16": ("QuantType.No", "bfloat16", "bfloat16", "bf16"),
    "fp8": ("QuantType.per_Token", "float8", "float8", "fp8"),
    "fp8_block": ("QuantType.per_1x128", "float8", "float8", "fp8"),
    "fp4": ("QuantType.per_1x32", "float4", "float4", "fp4"),
    "w4a8": ("QuantType.per_1x32", "float8", "float4", "fp8"),
}
#: Runs a grid point of a grouped table needs: AITER tunes a few models per device (BF16 MoE:
#: one model, Qwen3-235B, on each); the reduction prints how many each point has.
MOE_MIN_RUNS = 1
#: Azure/AI-benchmarking-guide, Azure_Results/ND_MI300X_v5_results.md (ROCm 6.2, RCCL
#: 2.22.3), as the file prints them: RCCL all-reduce bus bandwidth (GB/s, in place, 8 GPUs) at
#: 536,870,912 bytes ("536M", 512 MiB; 316.82 at 8 GiB), and the HBM stream "Copy" (TB/s).
AZURE_MI300X = dict(allreduce_512mib_busbw=308.89, stream_copy_tb_per_s=4.11)
AZURE_SOURCE = ("Azure AI-benchmarking-guide (github.com/Azure/AI-benchmarking-guide; stored "
                "copy samuel-bohman/AI-benchmarking-guide@3de0c294fd10), "
                "Azure_Results/ND_MI300X_v5_results.md")


def _device(row: dict) -> str | None:
    gfx, cu = row.get("gfx", ""), row.get("cu_num")
    for name, dev in DEVICES.items():
        if cu == dev["cu"] and gfx in (dev["gfx"], ""):
            return name
    return None


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _span(counts: list[int]) -> str:
    return f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def _csvs(root: Path, test) -> list[Path]:
    return sorted(p for p in root.rglob("*.csv")
                  if "tuned" in p.name and "untuned" not in p.name and test(p.name))


def _gemm_times(root: Path, device: str, test, dtypes) -> dict[tuple, tuple[float, list]]:
    """(B, M, N, K) -> (fastest µs, files) over the GEMM files ``test`` selects."""
    best: dict[tuple, tuple[float, list]] = {}
    for path in _csvs(root, lambda n: test(n) and "fmoe" not in n):
        for r in csv.DictReader(path.open()):
            if _device(r) != device or (dtypes and r.get("q_dtype_w") not in dtypes):
                continue
            try:
                key = (int(r.get("B") or 1), int(r["M"]), int(r["N"]), int(r["K"]))
                us = float(r["us"])
            except (KeyError, ValueError):
                continue
            if us > 0 and (key not in best or us < best[key][0]):
                best[key] = (us, [str(path.relative_to(root))])
    return best


def gemm_tables(root: Path, device: str) -> dict:
    peaks = DEVICES[device]
    out = {}
    for key, (test, dtypes, peak) in GEMM_KINDS.items():
        if peak not in peaks:
            continue
        times = {k: v for k, v in _gemm_times(root, device, test, dtypes).items()
                 if SHAPE_MIN <= k[2] <= SHAPE_MAX and SHAPE_MIN <= k[3] <= SHAPE_MAX
                 and k[0] * k[2] * k[3] >= GEMM_MIN_NK}
        batched = False
        if not times and key == "bf16":   # MI300X: AITER times BF16 only batched (B = 16)
            times = {k: v for k, v in _gemm_times(
                root, device, lambda n: "bf16_tuned_batched" in n, None).items()
                if k[0] * k[2] * k[3] >= GEMM_MIN_NK}
            batched = True
        grid, achieved, counts = [], [], []
        for m in ROWS:
            at = [2 * b * m * n * k / (us * 1e-6) / 1e12
                  for (b, mm, n, k), (us, _) in times.items() if mm == m]
            if len(at) >= 2:
                grid.append(m)
                achieved.append(round(_median(at), 1))
                counts.append(len(at))
        if len(grid) < 2:
            continue
        files = sorted({f for _, fs in times.values() for f in fs})
        what = ("B = 16 batched GEMMs (the only BF16 timings AITER has for this device), "
                "FLOPs 2BMNK" if batched else "FLOPs 2MNK")
        out[key] = dict(
            rows=grid, achieved_tflop_per_s=achieved, peak=peak, files=files,
            frac=[round(a / peaks[peak], 4) for a in achieved],
            reduction=f"median over {_span(counts)} (N, K) shapes with "
            f"{SHAPE_MIN} <= N, K <= {SHAPE_MAX} and {'B·' if batched else ''}N·K >= "
            f"2^{GEMM_MIN_NK.bit_length() - 1} at each M, the fastest tuned kernel per shape; "
            f"{what}; / {peaks[peak]} TFLOP/s dense {peak}")
    return out


def weight_stream(root: Path, device: str) -> dict:
    peaks = DEVICES[device]
    times = _gemm_times(root, device, lambda n: "bf16" in n, None)
    gbs = [b * (2 * n * k + 2 * m * (n + k)) / (us * 1e-6) / 1e9
           for (b, m, n, k), (us, _) in times.items()
           if m <= 8 and 2 * b * n * k >= CACHE_BYTES]
    achieved = round(_median(gbs), 1)
    batched = any(b > 1 for (b, m, n, k) in times if m <= 8 and 2 * b * n * k >= CACHE_BYTES)
    return dict(achieved_gb_per_s=achieved, frac=round(achieved / (peaks["hbm"] * 1e3), 4),
                reduction=f"median over {len(gbs)} BF16 {'batched (B = 16) ' if batched else ''}"
                "GEMMs at M = 1..8 whose weights fill the 256 MiB Infinity Cache (2·B·N·K >= "
                f"2^28 bytes): bytes B·(2NK + 2M(N + K)) / t; / {peaks['hbm']} TB/s")


def _family(dtype: str) -> str:
    for family in ("bfloat16", "float8", "float4", "int4"):
        if family in dtype:
            return family
    return dtype


def moe_tables(root: Path, device: str) -> dict:
    peaks = DEVICES[device]
    runs: dict[tuple, tuple[float, dict]] = {}
    for path in _csvs(root, lambda n: "fmoe" in n):
        for r in csv.DictReader(path.open()):
            if _device(r) != device or r.get("use_g1u1") not in ("1", "True"):
                continue
            try:
                t, h, i, e, k = (int(r[c]) for c in ("token", "model_dim", "inter_dim",
                                                     "expert", "topk"))
                us = float(r["us"])
            except (KeyError, ValueError):
                continue
            kind = (r["q_type"], _family(r["q_dtype_a"]), _family(r["q_dtype_w"]))
            config = (t, h, i, e, k) + kind
            if us > 0 and e * 3 * h * i >= MOE_MIN_WEIGHTS and (
                    config not in runs or us < runs[config][0]):
                runs[config] = (us, dict(t=t, h=h, i=i, e=e, k=k,
                                         file=str(path.relative_to(root))))
    out = {}
    for key, (q_type, act, weight, peak) in MOE_KINDS.items():
        if peak not in peaks:
            continue
        chosen = [(us, c) for config, (us, c) in runs.items()
                  if config[5:] == (q_type, act, weight)]
        points = [(c["t"] * c["k"] / c["e"],
                   c["t"] * c["k"] * 6 * c["h"] * c["i"] / (us * 1e-6) / 1e12)
                  for us, c in chosen]
        grid, achieved, counts = [], [], []
        for g in EXPERT_ROWS:
            at = [f for r, f in points if g / math.sqrt(2) <= r < g * math.sqrt(2)]
            if len(at) >= MOE_MIN_RUNS:
                grid.append(g)
                achieved.append(round(_median(at), 1))
                counts.append(len(at))
        if len(grid) < 2:
            continue
        out[key] = dict(
            rows=grid, achieved_tflop_per_s=achieved, peak=peak,
            files=sorted({c["file"] for _, c in chosen}),
            frac=[round(a / peaks[peak], 4) for a in achieved],
            reduction=f"median over {_span(counts)} fused-MoE runs ({q_type}, "
            f"{act} activations, {weight} weights, gated; the fastest tuned kernel per run) "
            f"holding >= 2^{MOE_MIN_WEIGHTS.bit_length() - 1} expert weights (3hi·E), with rows "
            "per expert T·topk/E within "
            f"sqrt(2) of each grid point; FLOPs T·topk·6hi; / {peaks[peak]} TFLOP/s dense {peak}")
    return out


def azure_mi300x() -> dict:
    peaks = DEVICES["mi300x"]
    bus, copy = AZURE_MI300X["allreduce_512mib_busbw"], AZURE_MI300X["stream_copy_tb_per_s"]
    return dict(
        scale_up=dict(achieved_gb_per_s=bus, frac=round(bus / peaks["xgmi"], 4),
                      reduction="RCCL all-reduce (in place), 8 GPUs, 512 MiB (\"536M\" row; "
                      "the only collective the source times): bus bandwidth as rccl-tests "
                      f"print it; / {peaks['xgmi']} GB/s per direction (7 x 64)"),
        hbm=dict(achieved_gb_per_s=copy * 1e3, frac=round(copy / peaks["hbm"], 4),
                 reduction="the HBM bandwidth benchmark's Copy kernel (read + write), not a "
                 f"decode-attention kernel (none timed for this device); / {peaks['hbm']} TB/s"))


def efficiency_yaml(root: Path, device: str, commit: str) -> str:
    """The ``efficiency:`` entries of one device, as YAML lines."""
    def aiter(files: str) -> str:
        return f"ROCm/aiter@{commit[:12]} (MIT), aiter/configs/{files}"

    gemm, moe = gemm_tables(root, device), moe_tables(root, device)
    key = "fp8_block" if "fp8_block" in gemm else "bf16"
    big = gemm[key]
    matmul = dict(frac=big["frac"][-1], achieved_tflop_per_s=big["achieved_tflop_per_s"][-1],
                  reduction=f"the gemm.{key} table at M = {big['rows'][-1]} (its last row)")
    lines: list[str] = []
    if device == "mi300x":
        azure = azure_mi300x()
        lines += _factor_yaml("scale_up_bandwidth", azure["scale_up"], AZURE_SOURCE)
        lines += _factor_yaml("hbm_bandwidth", azure["hbm"], AZURE_SOURCE)
    lines += _factor_yaml("gemm_weight_bandwidth", weight_stream(root, device),
                          aiter("*bf16*tuned*gemm*.csv"))
    lines += _factor_yaml("matmul_flops", matmul, aiter("*blockscale*tuned*gemm*.csv"))

    def files(t: dict) -> str:
        names = t.get("files", [])
        return aiter(names[0] if len(names) == 1 else f"{len(names)} files: "
                     + ", ".join(names)) if names else aiter("*tuned*fmoe*.csv")

    lines += _table_yaml("gemm", gemm, files)
    lines += _table_yaml("grouped_gemm", moe, files)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=Path, required=True, help="aiter/configs of a snapshot")
    ap.add_argument("--commit", required=True)
    ap.add_argument("--yaml", type=Path, help="write <device>.efficiency.yaml here")
    args = ap.parse_args()
    for device in DEVICES:
        text = efficiency_yaml(args.configs, device, args.commit)
        if args.yaml:
            args.yaml.mkdir(parents=True, exist_ok=True)
            (args.yaml / f"{device}.efficiency.yaml").write_text(text)
        else:
            print(f"### {device}\n{text}")


if __name__ == "__main__":
    main()
