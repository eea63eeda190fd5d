"""One-off reader of AIConfigurator's DeepSeek Sparse Attention tables: reduces them to the time
the DSA lightning indexer adds to one decode layer, ``dsa_indexer_decode`` in
``hardware/<device>.yaml``.

Not part of the planner (it needs pandas and pyarrow, which the planner never imports). Run it
in a separate environment on a snapshot of github.com/ai-dynamo/aiconfigurator (Apache-2.0):

    git -C <snapshot> show HEAD:<prefix>/<system>/<path>.parquet > <dir>/<name>.parquet
    <venv with pandas, pyarrow>/bin/python benchmarks/extract_aic_dsa.py --dsa <dir>/dsa.parquet \
        --mla <dir>/mla.parquet --source-dsa <path> --source-mla <path> --commit <sha>

Tables (TensorRT-LLM 1.3.0rc20 on GB200): sparse_attention/trtllm/1.3.0rc20/
dsa_generation_module_perf (the whole DSA attention module of one layer: projections, the
indexer, top-k, the sparse MLA core) and mla/trtllm/1.3.0rc20/mla_generation_module_perf (the
MLA module of DeepSeek-V3, the same geometry without the indexer). ``num_heads`` is the heads on
one GPU, ``batch_size`` the sequences, ``step`` the context; latencies in milliseconds.

Reduction: for DeepSeek-V3.2's rows (the same MLA dimensions as DeepSeek-V3), indexer time at
(B, C) = DSA module(B, C) - MLA module(B, min(C, top-k)) at the same heads per GPU, GEMM type and
KV dtype (the sparse core attends top-k = 2,048 positions, what the MLA module costs at that
context; the rest is the indexer: its projections, its FP8 key cache, the logits over C, the
top-k), median over heads per GPU (8-128), GEMM types (bf16, fp8_block, nvfp4) and KV dtypes
(bf16, fp8: the indexer's keys are FP8 either way). The rows at C = 2,048 (= top-k) are left
out: at fp8_block and bf16 GEMMs they run 3-10x slower than both neighbours (another code path
at C = top-k), at nvfp4 they lie between them; the planner reads that context between 1,024
and 4,096.

``--prefill`` (``dsa_indexer_prefill``): sparse_attention/.../dsa_context_module_perf (step 0)
against mla/.../mla_context_module_perf, B prompts of S tokens: indexer time = DSA context
module(B, S) - MLA context module(B, S) for S <= top-k, else MLA context module(B * S / k, k)
(the same tokens as prompts of k tokens: each query attends at most k positions; the core's
mean attended position is k/2 there against the sparse core's k(1 - k/2S), an under-count of
the core that the indexer's time takes, 0.1-0.2 ms a layer at 8K), FP8 KV only (the runs'
cache; the BF16-KV module runs 1.5-2x slower), median over heads per GPU (8-128) and GEMM types.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

TOP_K = 2048
KEYS = ["kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "step"]
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
CONTEXTS = [16, 256, 1024, 4096, 8192, 16384, 32768]


def indexer_us(dsa: pd.DataFrame, mla: pd.DataFrame) -> pd.DataFrame:
    """Indexer microseconds per (batch, context), the module difference's median."""
    a = dsa[dsa.model == "deepseek-ai/DeepSeek-V3.2"].groupby(KEYS).latency.median().reset_index()
    m = mla.groupby(KEYS).latency.median().rename("mla").reset_index().rename(
        columns={"step": "ref"})
    a["ref"] = np.minimum(a.step, TOP_K)
    x = a.merge(m, on=["kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "ref"])
    x = x[x.step != TOP_K]
    x["us"] = (x.latency - x.mla) * 1000.0
    return x.groupby(["batch_size", "step"]).us.agg(["median", "count"]).reset_index()


PREFILL_BATCHES = [1, 2, 4, 8]
PREFILL_ISL = [256, 1024, 2048, 4096, 8192, 16384]


def prefill_indexer_us(dsa: pd.DataFrame, mla: pd.DataFrame) -> pd.DataFrame:
    """Indexer microseconds per (prompts, prompt tokens), the context modules' difference."""
    keys = ["kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "isl"]
    a = dsa[(dsa.model == "deepseek-ai/DeepSeek-V3.2") & (dsa.step == 0)
            & (dsa.kv_cache_dtype == "fp8")].groupby(keys).latency.median().reset_index()
    m = mla.groupby(keys).latency.median().rename("mla").reset_index().rename(
        columns={"batch_size": "rb", "isl": "ri"})
    a["rb"] = np.where(a.isl > TOP_K, a.batch_size * a.isl // TOP_K, a.batch_size)
    a["ri"] = np.minimum(a.isl, TOP_K)
    x = a.merge(m, on=["kv_cache_dtype", "gemm_type", "num_heads", "rb", "ri"])
    x["us"] = (x.latency - x.mla) * 1000.0
    return x.groupby(["batch_size", "isl"]).us.agg(["median", "count"]).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsa", required=True)
    ap.add_argument("--mla", required=True)
    ap.add_argument("--source-dsa", required=True)
    ap.add_argument("--source-mla", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--prefill", action="store_true", help="the context modules' grid")
    args = ap.parse_args()
    dsa, mla = pd.read_parquet(args.dsa), pd.read_parquet(args.mla)
    if args.prefill:
        red, col, name = prefill_indexer_us(dsa, mla), "isl", "dsa_indexer_prefill"
        rows, cols = PREFILL_BATCHES, PREFILL_ISL
    else:
        red, col, name = indexer_us(dsa, mla), "step", "dsa_indexer_decode"
        rows, cols = BATCHES, CONTEXTS
    grid = red.pivot_table(index="batch_size", columns=col, values="median")
    counts = red.pivot_table(index="batch_size", columns=col, values="count")
    print(f"# runs per cell: {int(counts.loc[rows, cols].min().min())}-"
          f"{int(counts.loc[rows, cols].max().max())}")
    print(f"{name}:")
    print(f"  batch: {rows}")
    print(f"  context: {cols}")
    print("  latency_us:")
    for b in rows:
        print(f"    - {[round(float(grid.loc[b, c]), 1) for c in cols]}")
    print(f'  source: "ai-dynamo/aiconfigurator@{args.commit[:12]} (Apache-2.0), '
          f'{args.source_dsa} minus {args.source_mla}"')


if __name__ == "__main__":
    main()
