"""Kernel factors of one H200, measured (issue 19 item 5): BF16 and FP8 GEMMs over M on
DeepSeek-V3 and Llama-3.1-70B projection shapes, HBM streaming, GQA decode attention.

Not part of the planner (needs torch and a CUDA GPU). One call on the device machine:

    PYTHONUNBUFFERED=1 python3 benchmarks/kernels_h200.py --out $OUT/h200-kernels.json

``--dry-run`` (no torch) fills the same record with synthetic times and runs the reduction
and the table, to check this script's logic on a machine without a GPU.

Method: CUDA events around ``n`` back-to-back launches queued behind a ``torch.cuda._sleep``
(so the host's launch cost is off the timed span), ``n`` chosen so one span is >= 2 ms;
warm-ups first; ``REPEATS`` spans, the median per-launch time kept (all spans recorded).
Weights rotate over enough copies (>= 256 MiB) that no launch reads them from the 50 MB L2.
Random inputs (never zeros). FP8: ``torch._scaled_mm`` e4m3 x e4m3 -> bf16 with per-tensor
float32 scales. Attention: SDPA with the 8 query heads of each KV group as 8 query rows of
one KV head (exactly GQA decode with one query token; KV read once), and SDPA's own
``enable_gqa`` where it runs.

Reductions (``reduce_record``, also used by tests/specs/test_h200_measured.py's recomputation):
- GEMM TFLOP/s = 2·M·N·K / t; per dtype and M the median over the shapes; fraction of the
  datasheet dense peak (BF16 989, FP8 1979 TFLOP/s).
- HBM: device-to-device copy, (bytes read + written) / t, median over repeats; / 4.8 TB/s.
- Decode attention: KV bytes B·S·n_kv·d_h·2·2 / t; / 4.8 TB/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PEAK_TFLOP_PER_S = {"bf16": 989.0, "fp8": 1979.0}
PEAK_HBM_TB_PER_S = 4.8
ROWS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
# (model, projection, N, K): DeepSeek-V3 from models/deepseek-v3.yaml (hidden 7168, 128 heads,
# q_lora 1536, kv_lora 512, rope 64, nope 128, v 128, dense FFN 18432, expert FFN 2048);
# Llama-3.1-70B (hidden 8192, 64 q + 8 kv heads of 128, FFN 28672).
SHAPES = (
    ("deepseek-v3", "q_a+kv_a", 1536 + 512 + 64, 7168),
    ("deepseek-v3", "q_b", 128 * (128 + 64), 1536),
    ("deepseek-v3", "kv_b", 128 * (128 + 128), 512),
    ("deepseek-v3", "o", 7168, 128 * 128),
    ("deepseek-v3", "dense gate_up", 2 * 18432, 7168),
    ("deepseek-v3", "dense down", 7168, 18432),
    ("deepseek-v3", "shared gate_up", 2 * 2048, 7168),
    ("llama-3.1-70b", "qkv", 10240, 8192),
    ("llama-3.1-70b", "o", 8192, 8192),
    ("llama-3.1-70b", "gate_up", 57344, 8192),
    ("llama-3.1-70b", "down", 8192, 28672),
)
DTYPES = ("bf16", "fp8")
ATTN_BATCH = (32, 64, 128)
ATTN_CONTEXT = (1024, 2048, 4096, 8192)
ATTN_Q_HEADS, ATTN_KV_HEADS, ATTN_HEAD_DIM = 64, 8, 128
COPY_GIB = (1, 4)
REPEATS = 7
MIN_SPAN_MS = 2.0
MAX_LAUNCHES = 400
ROTATE_BYTES = 256 * 2**20


# ---------------------------------------------------------------- reduction (no torch)
def gemm_tflop_per_s(entry: dict) -> float:
    return 2.0 * entry["m"] * entry["n"] * entry["k"] / (entry["median_ms"] * 1e-3) / 1e12


def attention_kv_bytes(entry: dict) -> float:
    return float(entry["batch"] * entry["context"] * entry["kv_heads"] * entry["head_dim"] * 2 * 2)


def reduce_record(record: dict) -> dict:
    """Medians over shapes per dtype and M (GEMM), over repeats (copy), per config (attention)."""
    gemm: dict = {}
    for dtype in DTYPES:
        rows, tflops = [], []
        for m in ROWS:
            vals = [gemm_tflop_per_s(e) for e in record["gemm"] if e["dtype"] == dtype
                    and e["m"] == m and e.get("median_ms")]
            if vals:
                rows.append(m)
                tflops.append(statistics.median(vals))
        gemm[dtype] = {"rows": rows, "achieved_tflop_per_s": [round(t, 1) for t in tflops],
                       "frac": [round(t / PEAK_TFLOP_PER_S[dtype], 4) for t in tflops]}
    copy = [e["bytes"] / (e["median_ms"] * 1e-3) / 1e12 for e in record["hbm_copy"]]
    hbm = max(copy) if copy else float("nan")
    attn = {}
    for variant in sorted({e["variant"] for e in record["attention"]}):
        vals = [attention_kv_bytes(e) / (e["median_ms"] * 1e-3) / 1e12
                for e in record["attention"] if e["variant"] == variant and e.get("median_ms")]
        if vals:
            attn[variant] = {"median_tb_per_s": round(statistics.median(vals), 3),
                             "max_tb_per_s": round(max(vals), 3),
                             "frac": round(statistics.median(vals) / PEAK_HBM_TB_PER_S, 4)}
    return {"gemm": gemm,
            "hbm_copy": {"tb_per_s": round(hbm, 3), "frac": round(hbm / PEAK_HBM_TB_PER_S, 4)},
            "decode_attention": attn}


def print_tables(record: dict, reduced: dict) -> None:
    print(f"\n# {record['meta'].get('gpu_name')}  torch {record['meta'].get('torch')}")
    print("\nGEMM TFLOP/s per shape (N x K) over M")
    print(f"{'dtype':5} {'shape':30} " + " ".join(f"{m:>6}" for m in ROWS))
    for dtype in DTYPES:
        for model, proj, n, k in SHAPES:
            by_m = {e["m"]: gemm_tflop_per_s(e) for e in record["gemm"] if e["dtype"] == dtype
                    and e["n"] == n and e["k"] == k and e.get("median_ms")}
            label = f"{model[:8]} {proj} {n}x{k}"[:30]
            print(f"{dtype:5} {label:30} " + " ".join(
                f"{by_m[m]:6.0f}" if m in by_m else f"{'-':>6}" for m in ROWS))
    print("\nGEMM median over shapes: TFLOP/s (fraction of dense peak)")
    for dtype, g in reduced["gemm"].items():
        print(f"{dtype:5} " + "  ".join(f"M={m}: {t:.0f} ({f:.3f})" for m, t, f in
                                       zip(g["rows"], g["achieved_tflop_per_s"], g["frac"])))
    print("\nHBM copy (read + write):")
    for e in record["hbm_copy"]:
        print(f"  {e['bytes'] / 2**30:.0f} GiB moved: {e['median_ms']:.3f} ms, "
              f"{e['bytes'] / (e['median_ms'] * 1e-3) / 1e12:.3f} TB/s")
    print(f"  best {reduced['hbm_copy']['tb_per_s']} TB/s = {reduced['hbm_copy']['frac']} of 4.8")
    print("\nDecode attention (GQA 64q/8kv x 128, bf16): KV TB/s")
    for e in record["attention"]:
        if e.get("median_ms"):
            bw = attention_kv_bytes(e) / (e["median_ms"] * 1e-3) / 1e12
            print(f"  {e['variant']:10} B={e['batch']:4} S={e['context']:5}: "
                  f"{e['median_ms']:.3f} ms  {bw:.3f} TB/s")
        else:
            print(f"  {e['variant']:10} B={e['batch']:4} S={e['context']:5}: {e.get('error')}")
    for variant, a in reduced["decode_attention"].items():
        print(f"  {variant}: median {a['median_tb_per_s']} TB/s ({a['frac']} of 4.8), "
              f"max {a['max_tb_per_s']}")
    for c in record.get("checks", []):
        print("check:", c)


# ---------------------------------------------------------------- measurement (torch)
def _time_launches(torch, fn, n_warm: int = 3) -> dict:
    for _ in range(n_warm):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    est_ms = max((time.perf_counter() - t0) * 1e3, 1e-3)
    n = int(min(MAX_LAUNCHES, max(3, MIN_SPAN_MS / est_ms)))
    spans = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if hasattr(torch.cuda, "_sleep"):  # ~20 us per launch at ~2 GHz: covers the queueing
            torch.cuda._sleep(int(n * 40_000))
        start.record()
        for _ in range(n):
            fn()
        end.record()
        torch.cuda.synchronize()
        spans.append(start.elapsed_time(end) / n)
    return {"launches_per_repeat": n, "per_launch_ms": [round(s, 6) for s in spans],
            "median_ms": statistics.median(spans)}


def _gemm_fn(torch, dtype, m, n, k):
    copies = max(1, -(-ROTATE_BYTES // (n * k * (2 if dtype == "bf16" else 1))))
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
    state = {"i": 0}
    if dtype == "bf16":
        def fn():
            state["i"] += 1
            return torch.matmul(a, ws[state["i"] % copies].t())
        return fn, a, ws
    fa = (a * 0.5).to(torch.float8_e4m3fn)
    fws = [(w * 0.5).to(torch.float8_e4m3fn) for w in ws]
    del ws
    one = torch.tensor(1.0, device="cuda", dtype=torch.float32)

    def fn8():
        state["i"] += 1
        return torch._scaled_mm(fa, fws[state["i"] % copies].t(), scale_a=one, scale_b=one,
                                out_dtype=torch.bfloat16)
    return fn8, fa, fws


def measure_gemm(torch, record: dict) -> None:
    for dtype in DTYPES:
        for model, proj, n, k in SHAPES:
            for m in ROWS:
                entry = {"model": model, "projection": proj, "n": n, "k": k, "m": m,
                         "dtype": dtype}
                try:
                    fn, _, _ = _gemm_fn(torch, dtype, m, n, k)
                    entry.update(_time_launches(torch, fn))
                except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                    entry["error"] = repr(exc)[:300]
                record["gemm"].append(entry)
                torch.cuda.empty_cache()
            print(f"gemm {dtype} {model} {proj} done", flush=True)


def check_gemm(torch, record: dict) -> None:
    """Relative error against float64 at one shape (bf16 and fp8 on their own quantized inputs)."""
    m, n, k = 256, 7168, 2048
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    ref = a.double() @ w.double().t()
    out = torch.matmul(a, w.t()).double()
    record["checks"].append({"bf16_rel_err": float((out - ref).norm() / ref.norm())})
    fa, fw = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    one = torch.tensor(1.0, device="cuda", dtype=torch.float32)
    out8 = torch._scaled_mm(fa, fw.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    ref8 = fa.double() @ fw.double().t()
    record["checks"].append({"fp8_rel_err": float((out8.double() - ref8).norm() / ref8.norm()),
                             "finite": bool(torch.isfinite(out8).all())})


def measure_copy(torch, record: dict) -> None:
    for gib in COPY_GIB:
        src = torch.randn(gib * 2**30 // 4, device="cuda", dtype=torch.float32)
        dst = torch.empty_like(src)
        entry = {"gib_each": gib, "bytes": 2 * src.numel() * 4}
        entry.update(_time_launches(torch, lambda: dst.copy_(src)))
        record["hbm_copy"].append(entry)
        del src, dst
        torch.cuda.empty_cache()


def measure_attention(torch, record: dict) -> None:
    f = torch.nn.functional
    group = ATTN_Q_HEADS // ATTN_KV_HEADS
    for b in ATTN_BATCH:
        for s in ATTN_CONTEXT:
            k = torch.randn(b, ATTN_KV_HEADS, s, ATTN_HEAD_DIM, device="cuda",
                            dtype=torch.bfloat16)
            v = torch.randn_like(k)
            q_grouped = torch.randn(b, ATTN_KV_HEADS, group, ATTN_HEAD_DIM, device="cuda",
                                    dtype=torch.bfloat16)
            q_heads = q_grouped.reshape(b, ATTN_Q_HEADS, 1, ATTN_HEAD_DIM)
            variants = {
                "grouped": lambda: f.scaled_dot_product_attention(q_grouped, k, v),
                "enable_gqa": lambda: f.scaled_dot_product_attention(q_heads, k, v,
                                                                     enable_gqa=True),
            }
            for name, fn in variants.items():
                entry = {"variant": name, "batch": b, "context": s, "q_heads": ATTN_Q_HEADS,
                         "kv_heads": ATTN_KV_HEADS, "head_dim": ATTN_HEAD_DIM}
                try:
                    entry.update(_time_launches(torch, fn))
                except Exception as exc:  # noqa: BLE001
                    entry["error"] = repr(exc)[:300]
                record["attention"].append(entry)
            del k, v
            torch.cuda.empty_cache()


def _smi() -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=name,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,"
             "power.draw,power.limit,temperature.gpu,driver_version", "--format=csv"],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return repr(exc)


def measure() -> dict:
    import torch
    record: dict = {"meta": {}, "gemm": [], "hbm_copy": [], "attention": [], "checks": []}
    props = torch.cuda.get_device_properties(0)
    record["meta"] = {"gpu_name": props.name, "sm_count": props.multi_processor_count,
                      "memory_bytes": props.total_memory, "torch": torch.__version__,
                      "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d"),
                      "nvidia_smi_before": _smi(), "repeats": REPEATS,
                      "min_span_ms": MIN_SPAN_MS, "rotate_bytes": ROTATE_BYTES}
    t0 = time.perf_counter()
    for step in (check_gemm, measure_copy, measure_attention, measure_gemm):
        try:
            step(torch, record)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            record["checks"].append({step.__name__: repr(exc)[:300]})
        print(f"{step.__name__} done {time.perf_counter() - t0:.0f} s", flush=True)
    record["meta"]["nvidia_smi_after"] = _smi()
    record["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    return record


def synthetic() -> dict:
    """A record shaped like measure()'s, from a roofline with made-up ceilings (dry run)."""
    record: dict = {"meta": {"gpu_name": "dry-run", "torch": None}, "gemm": [], "hbm_copy": [],
                    "attention": [], "checks": []}
    for dtype in DTYPES:
        for model, proj, n, k in SHAPES:
            for m in ROWS:
                wbytes = n * k * (2 if dtype == "bf16" else 1)
                t = max(2 * m * n * k / (0.7 * PEAK_TFLOP_PER_S[dtype] * 1e12), wbytes / 4e12)
                record["gemm"].append({"model": model, "projection": proj, "n": n, "k": k,
                                       "m": m, "dtype": dtype, "median_ms": t * 1e3,
                                       "per_launch_ms": [t * 1e3] * REPEATS})
    for gib in COPY_GIB:
        record["hbm_copy"].append({"gib_each": gib, "bytes": 2 * gib * 2**30,
                                   "median_ms": 2 * gib * 2**30 / 4e12 * 1e3})
    for b in ATTN_BATCH:
        for s in ATTN_CONTEXT:
            e = {"variant": "grouped", "batch": b, "context": s, "q_heads": ATTN_Q_HEADS,
                 "kv_heads": ATTN_KV_HEADS, "head_dim": ATTN_HEAD_DIM}
            e["median_ms"] = attention_kv_bytes(e) / 3.5e12 * 1e3
            record["attention"].append(e)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--dry-run", action="store_true", help="synthetic times, no torch")
    args = parser.parse_args(argv)
    record = synthetic() if args.dry_run else measure()
    record["reduced"] = reduce_record(record)
    with open(args.out, "w") as fh:
        json.dump(record, fh, indent=1)
    print_tables(record, record["reduced"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
