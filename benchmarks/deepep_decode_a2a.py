"""DeepEP's measured low-latency all-to-all beside the planner's decode all-to-all, and the
H100 disaggregated decode steps it would have to explain (issue 22: H100 TPOT -35.8%).

Source: deepseek-ai/DeepEP@dd758ca `docs/legacy.md`, "Low-latency kernels with pure RDMA": H800,
one CX7 400 Gb/s IB NIC per GPU, 128 tokens per rank, hidden 7,168, top-8, FP8 dispatch, BF16
combine; latency per kernel at EP 16-256 (EP 8 stays in one node and is left out of the fit).
Bytes as DeepEP's `tests/legacy/test_low_latency.py` counts them: every top-k selection,
(d + d/128·4 + 16) B dispatched and 2·d B combined.
Reduction: least squares of t = a + (1 - 8/EP) · 128 · 8 · b / B over EP 16-256 (uniform
routing: 8 / EP of the copies stay in the 8-GPU node), per kernel: a fixed latency a and the
rate B of the bytes that leave the node.

The same reduction of AIConfigurator's measured DeepEP low-latency table on H100 (SGLang 0.5.0
collection, 1-8 nodes of 8 GPUs, 1-2,048 tokens per rank, d = 7,168, top-8, 256 and 288
experts): ai-dynamo/aiconfigurator@095f58a51c4c, aic-core/src/aiconfigurator_core/systems/data/
h100_sxm/comm/sglang/0.5.6.post2/wideep_deepep_ll_perf.parquet; least squares per EP over
every token count of t = a + tokens · 8 · (1 - 8/EP) · b / B (needs pandas and pyarrow, which
the planner does not: run it in a separate environment with ``--aic FILE``); the normal
kernels' table beside it (``wideep_deepep_normal_perf.parquet``): transmit + notify µs at the
fastest SM count.

    PYTHONPATH=$PWD python benchmarks/deepep_decode_a2a.py
    /path/to/venv-with-pandas/bin/python benchmarks/deepep_decode_a2a.py --aic FILE
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

EP = np.array([16, 32, 64, 128, 256])
DISPATCH_S = np.array([118, 155, 173, 192, 194]) * 1e-6
COMBINE_S = np.array([195, 273, 314, 369, 360]) * 1e-6
TOKENS, TOP_K, HIDDEN, NODE_GPUS = 128, 8, 7168, 8
DISPATCH_B = HIDDEN + HIDDEN / 128 * 4 + 16
COMBINE_B = HIDDEN * 2
MOE_LAYERS = 58
#: H100 decode workers of the validate-disagg rows: (label, layout, ISL, OSL).
STEPS = (("DEP16, 16 per rank, 1K/1K", dict(batch=16, tp=1, attention_dp=16), 1024, 1024),
         ("DEP16, 1 per rank, 1K/1K", dict(batch=1, tp=1, attention_dp=16), 1024, 1024),
         ("TEP16, 2 per worker, 8K/1K", dict(batch=2, tp=16, attention_dp=1), 8192, 1024))


def fit() -> dict[str, tuple[float, float]]:
    out = {}
    remote = 1 - NODE_GPUS / EP
    for name, t, b in (("dispatch", DISPATCH_S, DISPATCH_B), ("combine", COMBINE_S, COMBINE_B)):
        a_mat = np.vstack([np.ones(len(EP)), remote * TOKENS * TOP_K * b]).T
        (lat, inv), *_ = np.linalg.lstsq(a_mat, t, rcond=None)
        out[name] = (float(lat), float(1 / inv))
        rate = TOKENS * TOP_K * b / t / 1e9
        print(f"DeepEP {name}: bytes of all copies / t at EP {EP.tolist()}: "
              f"{[round(float(x), 1) for x in rate]} GB/s; fit over EP 16-256: "
              f"{lat * 1e6:.1f} us + bytes leaving the node / {1 / inv / 1e9:.1f} GB/s")
    return out


def aic_table(path: str) -> None:
    """AIConfigurator's H100 DeepEP low-latency table, per EP: measured µs at some token counts
    and the fit (a + bytes leaving the node / B) per kernel."""
    import pandas as pd

    table = pd.read_parquet(path)
    table = table[(table.hidden_size == HIDDEN) & (table.num_topk == TOP_K)]
    if "dispatch_transmit_us" in table:      # the normal-kernel table: transmit + notify
        parts = ["dispatch_transmit_us", "dispatch_notify_us", "combine_transmit_us",
                 "combine_notify_us"]
        best = table.groupby(["node_num", "num_token"])[parts].min()   # fastest SM count
        for (nodes, tok), r in best.iterrows():
            if tok in (1, 16, 64, 128):
                print(f"AIConfigurator H100 DeepEP normal, EP {NODE_GPUS * int(nodes)}, {tok} "
                      f"tokens per rank: dispatch {r.iloc[0]:.1f} + {r.iloc[1]:.1f} notify, "
                      f"combine {r.iloc[2]:.1f} + {r.iloc[3]:.1f} notify = "
                      f"{float(r.sum()):.1f} us per layer (fastest SM count of each)")
        return
    for nodes in sorted(table.node_num.unique()):
        rows = table[table.node_num == nodes].sort_values("num_token")
        ep = NODE_GPUS * int(nodes)
        tokens = rows.num_token.to_numpy(dtype=float)
        remote = tokens * TOP_K * ((1 - NODE_GPUS / ep) if ep > NODE_GPUS else 1.0)
        fits = []
        for name, col, b in (("dispatch", "dispatch_avg_t_us", DISPATCH_B),
                             ("combine", "combine_avg_t_us", COMBINE_B)):
            a_mat = np.vstack([np.ones(len(tokens)), remote * b]).T
            (lat, inv), *_ = np.linalg.lstsq(a_mat, rows[col].to_numpy() * 1e-6, rcond=None)
            fits.append(f"{name} {lat * 1e6:.1f} us + {1 / inv / 1e9:.1f} GB/s")
        pick = rows[rows.num_token.isin([2, 16, 64, 128, 256])].groupby("num_token")[
            ["dispatch_avg_t_us", "combine_avg_t_us"]].mean()
        both = {int(t): round(float(r.dispatch_avg_t_us + r.combine_avg_t_us), 1)
                for t, r in pick.iterrows()}
        print(f"AIConfigurator H100 DeepEP LL, EP {ep} ({int(nodes)} node(s)): dispatch + "
              f"combine us by tokens per rank (mean over expert counts) {both}; fit: "
              + ", ".join(fits))


def main() -> None:
    import sys

    if "--aic" in sys.argv:
        aic_table(sys.argv[sys.argv.index("--aic") + 1])
        return
    from planner import catalog
    from planner.calc.serving.disagg_workload import PoolLayout, _setup, decode_piece
    from planner.calc.serving.workload_step import _rates, forward_pass
    from planner.specs.load import load_engine

    hw = catalog.load_hardware("h100")
    model, eng = catalog.load_model("deepseek-v3"), load_engine("trtllm")
    kernels = fit()
    rate = hw.scale_out.bandwidth_bytes_per_s * hw.efficiency_frac("scale_out_bandwidth").frac
    for tok in (1, 2, 4, 16, 64, 128, 256):
        ours = tok * TOP_K * (DISPATCH_B + COMBINE_B) / rate
        remote = tok * TOP_K * (1 - NODE_GPUS / 16)
        deepep = sum(lat + remote * b / r for (lat, r), b in
                     zip(kernels.values(), (DISPATCH_B, COMBINE_B)))
        print(f"EP 16, {tok:3d} tokens per rank, one MoE layer: planner {ours * 1e6:7.1f} us "
              f"(every copy over the NIC at {rate / 1e9:.0f} GB/s), DeepEP fit "
              f"{deepep * 1e6:6.1f} us")
    print(f"DeepEP measured, EP 16, 128 tokens: {(DISPATCH_S[0] + COMBINE_S[0]) * 1e6:.0f} us "
          f"per layer, x {MOE_LAYERS} MoE layers = "
          f"{(DISPATCH_S[0] + COMBINE_S[0]) * MOE_LAYERS * 1e3:.1f} ms")
    dtypes = dict(weights_dtype="fp8", moe_weights_dtype="fp8")
    for label, fields, isl, osl in STEPS:
        pool = PoolLayout(moe_tp=1, moe_ep=16, **fields)
        piece = decode_piece(model, hw, eng, isl_tokens=isl, osl_tokens=osl, layout=pool,
                             **dtypes)
        fig, lay, terms = _setup(model, hw, eng, pool, dtypes, piece.memory.kv_dtype)
        rates = _rates(hw, phase="decode", weights_dtype="fp8")
        shape = dict(decode_seqs=np.asarray(float(pool.batch)), prefill_tokens=0.0,
                     decode_context=isl + osl / 2, prefill_context=0.0, prompts=0.0)
        full, _ = forward_pass(model, hw, fig, rates, lay, **shape)
        quiet, _ = forward_pass(model, hw, fig, dataclasses.replace(rates, scale_out=math.inf),
                                lay, **shape)
        engine, _ = forward_pass(model, hw, fig, rates, lay, layer_overhead_s=terms.layer_s,
                                 peer_overhead_s=terms.peer_s, **shape)
        print(f"{label}: step {float(piece.time_s) * 1e3:.2f} ms = kernels and links "
              f"{float(full) * 1e3:.2f} ms (over the NIC {float(full - quiet) * 1e3:.2f} ms) + "
              f"engine per-layer / per-peer {float(engine - full) * 1e3:.2f} ms + host")


if __name__ == "__main__":
    main()
