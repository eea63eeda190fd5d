"""One-off reader of AIConfigurator's measured kernel tables: reduces them to the fractions of
the datasheet's dense peaks that ``hardware/*.yaml`` hold under ``efficiency:``.

Not part of the planner (it needs pyarrow, which the planner never imports). Run it in a
separate environment on a snapshot of github.com/ai-dynamo/aiconfigurator (Apache-2.0):

    python3 -m venv /work/venv-aic && /work/venv-aic/bin/pip install pyarrow numpy
    git -C <snapshot> show HEAD:<path>.parquet > <dir>/<system>/<path>.parquet   (per table)
    /work/venv-aic/bin/python benchmarks/extract_aic_kernels.py --data <dir> --commit <sha>

Tables read per system (TensorRT-LLM 1.3.0rc20 collections, NCCL 2.29.2; A100: TensorRT-LLM 1.0.0,
NCCL 2.27.3, MoE runs with power_law_1.01 routing, the flattest it has):
gemm/trtllm/1.3.0rc20/gemm_perf, moe/trtllm/1.3.0rc20/moe_perf (H100, H200: also
moe/vllm/0.14.0/moe_perf, vLLM's Marlin kernel, ``w4a16_marlin``),
attention/trtllm/1.3.0rc20/{context,generation}_attention_perf, comm/nccl/2.29.2/nccl_perf.
Latencies in the tables are milliseconds; NCCL's ``message_size`` is elements (collector/
network/collect_nccl.py divides the bytes by the element size).

Reductions (each printed beside its value):
- GEMM by precision: at each M of ``ROWS``, the median achieved FLOP/s (2·M·N·K / t) over the
  (N, K) shapes with ``SHAPE_MIN <= N, K <= SHAPE_MAX`` and N·K >= ``STREAM_MIN_NK``
  (layer-sized matrices, not launch-bound), / the dense peak of the precision the kernel
  computes in.
- Weight streaming: the bf16 GEMMs at M = 1..8 over shapes with N·K >= ``STREAM_MIN_NK``: median
  bytes (2·N·K + 2·M·(N + K)) / t, / the HBM peak.
- Grouped (MoE) GEMMs: balanced routing, gated experts, the fastest kernel source per run, runs
  holding >= ``MOE_MIN_WEIGHTS``
  expert weights per GPU; rows per expert r = T·topk / E; FLOPs on
  one GPU = T·topk·6·h·i / (moe_tp·moe_ep); median over the rows whose r lies within a factor
  sqrt(2) of each grid point of ``EXPERT_ROWS``, from 1/16 row per expert (a decode batch of a
  few tokens: the kernel runs one row on each expert a token selects, plus its fixed latency;
  the planner reads those rows' time instead of extrapolating the 1-row rate).
- Prefill attention: context attention with isl >= 4,096: FLOPs = B·2·isl²·n_h·d_h (causal:
  half of 4·isl²·n_h·d_h), median over shapes, / the peak of the attention dtype; and by
  prompt length (``attention_by_isl``): the same median at each ISL of ``ATTENTION_ISL``.
- KV streaming (decode attention): generation attention, BF16 KV, B·(isl + step) >= 262,144
  tokens: bytes = B·(isl + step)·2·n_kv·d_h·2, median / the HBM peak.
- MLA decode attention (``mla_decode``, by KV dtype): TensorRT-LLM's generation MLA kernel
  (mla/trtllm/1.3.0rc20/generation_mla_perf; ``num_heads`` is the heads on one GPU, ``step`` + 1
  the context), B·(step + 1) >= 262,144 tokens as for the KV stream: FLOPs B·(step + 1)·2·n_h·
  (d_c + d_R + d_c) (absorbed: scores over the 576-wide latent and rope key, values from the
  512-wide latent; FlashMLA's count), median over the runs at each local head count, / the
  dense BF16 peak. The kernel's time whatever bounds it (few heads: the latent stream; 128
  heads: the tensor cores), so the fraction is a table over heads per GPU.
- MLA prefill attention (``mla_prefill``, by KV dtype): TensorRT-LLM's context MLA kernel
  (mla/trtllm/1.3.0rc20/context_mla_perf; ``num_heads`` the heads on one GPU; the op times the
  expanded, not absorbed, core: q and k of 192 = 128 + 64, v of 128, the latent written to the
  cache): FLOPs B·isl²·n_h·(192 + 128) (causal: half the full square's 2·B·isl²·n_h·(192 +
  128)), median over the runs at each ISL of ``ATTENTION_ISL`` with B·n_h >=
  ``MLA_PREFILL_MIN_PAIRS``, / the dense BF16 peak (as ``mla_decode``, whatever the KV dtype).
- Routed experts' skew (``routed_skew``, by grouped table; issue 22, fp8ctx15): the time of
  the power_law_1.01 run (AIConfigurator's default routing for DeepSeek-V3; its collector times
  the most-loaded EP rank, collector/helper.py ``_generate_power_law_distribution``) over the
  balanced run of the same (T, h, i, E, k) at MoE-TP 1, the fastest kernel source of each;
  median over the runs whose rows per expert T·topk/E lie within sqrt(2) of each grid point of
  ``SKEW_ROWS``, at each EP of ``SKEW_EP`` (no weights-per-GPU threshold: both runs share any
  launch floor).
- Scale-up: NCCL all-to-all on the most GPUs the table has, at the largest message: bus bandwidth
  S·(n−1)/n / t, / the datasheet's per-direction NVLink bandwidth.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

#: Dense peaks (TFLOP/s) and bandwidths (HBM TB/s, NVLink GB/s per direction) as hardware/*.yaml
#: give them: the reduction divides by these.
PEAKS = {
    "h100_sxm": dict(name="h100", bf16=989, fp8=1979, hbm=3.35, nvlink=450),
    "h200_sxm": dict(name="h200", bf16=989, fp8=1979, hbm=4.8, nvlink=450),
    "b200_sxm": dict(name="b200", bf16=2250, fp8=4500, fp4=9000, hbm=8.0, nvlink=900),
    "gb200": dict(name="gb200-nvl72", bf16=2500, fp8=5000, fp4=10000, hbm=8.0, nvlink=900),
    "b300_sxm": dict(name="b300", bf16=2250, fp8=4500, fp4=13500, hbm=8.0, nvlink=900),
    "gb300": dict(name="gb300-nvl72", bf16=2500, fp8=5000, fp4=15000, hbm=8.0, nvlink=900),
    "a100_sxm": dict(name="a100", bf16=312, hbm=2.039, nvlink=300),
}
#: Collections read where a system lacks TensorRT-LLM 1.3.0rc20's (A100: 1.0.0, NCCL 2.27.3).
TRT_VERSION = {"a100_sxm": "trtllm/1.0.0"}
NCCL_VERSION = {"a100_sxm": "2.27.3"}
ROWS = (1, 4, 16, 64, 256, 1024, 4096, 16384)
EXPERT_ROWS = (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 16, 64, 256, 1024, 4096)
SHAPE_MIN, SHAPE_MAX = 1024, 16384
STREAM_MIN_NK = 16 * 2**20
#: Dense GEMM tables and the weight stream read layer-sized matrices only: at M = 1 every
#: kernel of the tables takes a floor of about 10-16 µs (B200 NVFP4: 15.7 µs at N·K = 2^24,
#: 19.8 µs at 2^25, 26 µs at 2^26), a latency per kernel, not a rate; from N·K = 2^27 it is
#: under half the time, and the engine's per-layer GPU time (``layer_overhead_s``) carries it.
GEMM_MIN_NK = 2**27
#: Expert weights (elements) per GPU a MoE run must hold to count: smaller ones are bound by
#: launch latency, not by the kernel's rate. 2^27 (the dense threshold) still left the floor in
#: the small-M points: at one row per expert the median rose 25-45% from 2^27 to 2^29 for every
#: dtype (B200 FP8 0.0019 -> 0.0027, FP4 0.0018 -> 0.0024; H200 FP8 0.0031 -> 0.0039) and
#: 0-10% more from 2^29 to 2^30. The catalog's MoE models hold 2^28.2 (Qwen3-235B-A22B, EP 8)
#: to 2^30.4 (DeepSeek-V3, EP 8) per GPU and layer.
MOE_MIN_WEIGHTS = 2**29
#: Table dtype -> (the kernel table's dtype, kernel source, peak the kernel computes at).
GEMM_KINDS = {
    "bf16": ("bfloat16", ("torch_flow",), "bf16"),
    "fp8": ("fp8", ("torch_flow",), "fp8"),
    "fp8_block": ("fp8_block", ("torch_flow", "deepgemm"), "fp8"),
    "fp4": ("nvfp4", ("torch_flow",), "fp4"),
    "w4a16": ("int4_wo", ("trt_flow_",), "bf16"),
}
#: Gated MoE kernels (the ``nongated`` ones compute another FFN); per run the fastest of them.
GATED = ("moe_torch_flow_cutlass", "moe_torch_flow_min_latency", "deepgemm", "moe_torch_flow")
MOE_KINDS = {
    "bf16": ("bfloat16", GATED, "bf16"),
    "fp8": ("fp8", GATED, "fp8"),
    "fp8_block": ("fp8_block", GATED, "fp8"),
    "fp4": ("nvfp4", GATED, "fp4"),
    "w4a16": ("w4a16_mxfp4", ("moe_torch_flow",), "bf16"),
    "w4a8": ("w4a8_mxfp4_mxfp8", ("moe_torch_flow",), "fp8"),
}
#: vLLM's own weight-only expert kernel (Marlin: INT4 / MXFP4 weights, BF16 compute), read where
#: vLLM runs it for the measured runs: Hopper (compressed-tensors W4A16 MoE; the gpt-oss scripts'
#: VLLM_MXFP4_USE_MARLIN=1). Blackwell's runs select FlashInfer's (TensorRT-LLM's) INT4 kernel
#: (VLLM_USE_FLASHINFER_MOE_INT4=1): the ``w4a16`` table there. Earliest vLLM collection (0.14.0).
VLLM_MOE = {"h100_sxm": "vllm/0.14.0", "h200_sxm": "vllm/0.14.0"}
VLLM_MOE_KINDS = {"w4a16_marlin": ("int4_wo", ("vllm_marlin_moe",), "bf16")}
#: Rows per expert and EP sizes of the ``routed_skew`` grid (from 32 rows per expert: random
#: routing reaches every expert there, so the balanced table is the planner's reading).
SKEW_ROWS = (32, 64, 128, 256, 512)
SKEW_EP = (1, 2, 4, 8, 16, 32)
TRT = "trtllm/1.3.0rc20"
REPO_DIR = "aic-core/src/aiconfigurator_core/systems/data"
#: What makes one MoE run: the fastest kernel source per run counts (the engine picks it).
MOE_CONFIG = ("num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size",
              "moe_ep_size")


def _read(path: Path) -> dict:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


def _rows(table: dict):
    keys = list(table)
    return (dict(zip(keys, values)) for values in zip(*table.values()))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _trt(system: str) -> str:
    return TRT_VERSION.get(system, TRT)


def gemm_tables(system: str, root: Path, peaks: dict) -> dict:
    table = list(_rows(_read(root / system / "gemm" / _trt(system) / "gemm_perf.parquet")))
    out = {}
    for key, (dtype, sources, peak_dtype) in GEMM_KINDS.items():
        if peak_dtype not in peaks:
            continue
        rows = [r for r in table if r["gemm_dtype"] == dtype
                and r["kernel_source"].startswith(sources) and SHAPE_MIN <= r["n"] <= SHAPE_MAX and SHAPE_MIN <= r["k"] <= SHAPE_MAX
                and r["n"] * r["k"] >= GEMM_MIN_NK]
        if not rows:
            continue
        grid, achieved, shapes = [], [], set()
        for m in ROWS:
            at = [2 * m * r["n"] * r["k"] / (r["latency"] * 1e-3) / 1e12
                  for r in rows if r["m"] == m]
            if at:   # a collection without this M (A100's 1.0.0 grid) skips it
                grid.append(m)
                shapes.add(len(at))
                achieved.append(round(_median(at), 1))
        out[key] = dict(rows=grid, achieved_tflop_per_s=achieved, peak=peak_dtype,
                        frac=[round(a / peaks[peak_dtype], 4) for a in achieved],
                        reduction=f"median over {max(shapes)} (N, K) shapes with "
                        f"{SHAPE_MIN} <= N, K <= {SHAPE_MAX} and N·K >= 2^{GEMM_MIN_NK.bit_length() - 1} at each M; "
                        "FLOPs 2MNK; "
                        f"{dtype} kernels ({'/'.join(s + '*' for s in sources)}); / {peaks[peak_dtype]} "
                        f"TFLOP/s dense {peak_dtype}")
    return out


def weight_stream(system: str, root: Path, peaks: dict) -> dict:
    table = _rows(_read(root / system / "gemm" / _trt(system) / "gemm_perf.parquet"))
    gbs = [(2 * r["n"] * r["k"] + 2 * r["m"] * (r["n"] + r["k"])) / (r["latency"] * 1e-3) / 1e9
           for r in table if r["gemm_dtype"] == "bfloat16" and r["m"] <= 8
           and r["n"] * r["k"] >= GEMM_MIN_NK and r["n"] <= SHAPE_MAX and r["k"] <= SHAPE_MAX]
    achieved = round(_median(gbs), 1)
    return dict(achieved_gb_per_s=achieved, frac=round(achieved / (peaks["hbm"] * 1e3), 4),
                reduction=f"median over {len(gbs)} BF16 GEMMs at M = 1..8 with "
                f"N·K >= 2^{GEMM_MIN_NK.bit_length() - 1} "
                f"(N, K <= {SHAPE_MAX}): bytes 2NK + 2M(N + K) / t; / {peaks['hbm']} TB/s")


def moe_tables(system: str, root: Path, peaks: dict) -> dict:
    """TensorRT-LLM's grouped tables, and vLLM's Marlin one where ``VLLM_MOE`` names its
    collection (its own source path under the key ``path``)."""
    out = _moe_tables(root / system / "moe" / _trt(system) / "moe_perf.parquet", MOE_KINDS,
                      peaks)
    if system in VLLM_MOE:
        path = root / system / "moe" / VLLM_MOE[system] / "moe_perf.parquet"
        for key, t in _moe_tables(path, VLLM_MOE_KINDS, peaks).items():
            out[key] = dict(t, path=f"moe/{VLLM_MOE[system]}/moe_perf")
    return out


def _moe_tables(path: Path, kinds: dict, peaks: dict) -> dict:
    every = list(_rows(_read(path)))
    #: Balanced routing, else (A100's 1.0.0 collection has none) the flattest power law.
    spread = next(d for d in ("balanced", "power_law_1.01")
                  if any(r["distribution"] == d for r in every))
    table = [r for r in every if r["distribution"] == spread]
    out = {}
    for key, (dtype, sources, peak_dtype) in kinds.items():
        if peak_dtype not in peaks:
            continue
        fastest: dict[tuple, dict] = {}
        for r in table:
            if (r["moe_dtype"] == dtype and r["kernel_source"] in sources
                    and r["num_experts"] / r["moe_ep_size"] * 3 * r["hidden_size"]
                    * r["inter_size"] / r["moe_tp_size"] >= MOE_MIN_WEIGHTS):
                config = tuple(r[k] for k in MOE_CONFIG)
                if config not in fastest or r["latency"] < fastest[config]["latency"]:
                    fastest[config] = r
        rows = list(fastest.values())
        if not rows:
            continue
        points = [(r["num_tokens"] * r["topk"] / r["num_experts"],
                   r["num_tokens"] * r["topk"] * 6 * r["hidden_size"] * r["inter_size"]
                   / (r["moe_tp_size"] * r["moe_ep_size"]) / (r["latency"] * 1e-3) / 1e12)
                  for r in rows]
        grid, achieved, counts = [], [], []
        for g in EXPERT_ROWS:
            at = [f for r, f in points if g / math.sqrt(2) <= r < g * math.sqrt(2)]
            if len(at) >= 3:
                grid.append(g)
                achieved.append(round(_median(at), 1))
                counts.append(len(at))
        if len(grid) < 2:
            continue
        out[key] = dict(rows=grid, achieved_tflop_per_s=achieved, peak=peak_dtype,
                        frac=[round(a / peaks[peak_dtype], 4) for a in achieved],
                        reduction=f"median over {min(counts)}-{max(counts)} {spread}-routing "
                        f"MoE runs ({dtype}, the fastest of {'/'.join(sorted(set(r['kernel_source'] for r in rows)))} per run) holding >= 2^{int(math.log2(MOE_MIN_WEIGHTS))} expert "
                        "weights per GPU (3hi·E/(tp·ep)), with rows per expert "
                        f"T·topk/E within sqrt(2) of each grid point; FLOPs T·topk·6hi/"
                        f"(tp·ep); / {peaks[peak_dtype]} TFLOP/s dense {peak_dtype}")
    return out


def routed_skew(system: str, root: Path, peaks: dict) -> dict:
    """Per grouped table: the power_law_1.01 / balanced time ratio over (EP, rows per expert)
    (module docstring); tables whose every grid point has >= 3 runs at >= 2 EP sizes."""
    every = [r for r in _rows(_read(root / system / "moe" / _trt(system) / "moe_perf.parquet"))
             if r["moe_tp_size"] == 1 and r["distribution"] in ("balanced", "power_law_1.01")]
    out = {}
    for key, (dtype, sources, _) in MOE_KINDS.items():
        fastest: dict[tuple, float] = {}
        used = set()
        for r in every:
            if r["moe_dtype"] == dtype and r["kernel_source"] in sources:
                config = (r["distribution"], *(r[k] for k in MOE_CONFIG))
                fastest[config] = min(r["latency"], fastest.get(config, r["latency"]))
                used.add(r["kernel_source"])
        ratios: dict[int, list[tuple[float, float]]] = {}
        for (dist, *config), t in fastest.items():
            bal = fastest.get(("balanced", *config))
            if dist == "power_law_1.01" and bal:
                tokens, topk, experts, ep = config[0], config[3], config[4], config[6]
                ratios.setdefault(ep, []).append((tokens * topk / experts, t / bal))
        grid, counts = {}, []
        for ep in SKEW_EP:
            cells = [[q for r, q in ratios.get(ep, []) if g / math.sqrt(2) <= r < g * math.sqrt(2)]
                     for g in SKEW_ROWS]
            if all(len(c) >= 3 for c in cells):
                grid[ep] = [round(_median(c), 3) for c in cells]
                counts += [len(c) for c in cells]
        if len(grid) < 2:
            continue
        out[key] = dict(ep=list(grid), rows=list(SKEW_ROWS), factor=list(grid.values()),
                        reduction=f"median over {min(counts)}-{max(counts)} MoE configurations "
                        f"({dtype}, MoE-TP 1, the fastest of {'/'.join(sorted(used))} per "
                        "run) of t(power_law_1.01) / t(balanced) at the same (T, h, i, E, k, EP), "
                        "with rows per expert T·topk/E within sqrt(2) of each grid point "
                        "(rows), at each EP (ep)")
    return out


def attention(system: str, root: Path, peaks: dict) -> dict:
    base = root / system / "attention" / _trt(system)
    out = {}
    ctx = list(_rows(_read(base / "context_attention_perf.parquet")))
    for dtype, table_dtype in (("bf16", "bfloat16"), ("fp8", "fp8")):
        tf = [r["batch_size"] * 2 * r["isl"] ** 2 * r["num_heads"] * r["head_dim"]
              / (r["latency"] * 1e-3) / 1e12
              for r in ctx if r["attn_dtype"] == table_dtype and r["isl"] >= 4096
              and r["window_size"] == 0]
        if tf and dtype in peaks:
            a = round(_median(tf), 1)
            out[f"prefill_{dtype}"] = dict(
                achieved_tflop_per_s=a, frac=round(a / peaks[dtype], 4),
                reduction=f"median over {len(tf)} context-attention runs ({table_dtype}, isl >= "
                "4096, no window): FLOPs 2·B·isl²·n_h·d_h (causal); / "
                f"{peaks[dtype]} TFLOP/s dense {dtype}")
    gen = _rows(_read(base / "generation_attention_perf.parquet"))
    gbs = [r["batch_size"] * (r["isl"] + r["step"]) * 4 * r["num_key_value_heads"]
           * r["head_dim"] / (r["latency"] * 1e-3) / 1e9
           for r in gen if r["kv_cache_dtype"] == "bfloat16" and r["window_size"] == 0
           and r["batch_size"] * (r["isl"] + r["step"]) >= 262144]
    if gbs:
        a = round(_median(gbs), 1)
        out["kv_stream"] = dict(
            achieved_gb_per_s=a, frac=round(a / (peaks["hbm"] * 1e3), 4),
            reduction=f"median over {len(gbs)} generation-attention runs (BF16 KV, B·(isl + "
            f"step) >= 262,144 tokens): bytes B·(isl + step)·2·n_kv·d_h·2 / t; / "
            f"{peaks['hbm']} TB/s")
    return out


#: Prompt lengths at which the prefill attention kernel is read (``attention_by_isl``).
ATTENTION_ISL = (256, 512, 1024, 2048, 4096, 8192, 16384)


def attention_by_isl(system: str, root: Path, peaks: dict) -> dict:
    """Context attention by prompt length: at each ISL of ``ATTENTION_ISL``, the median achieved
    FLOP/s (2·B·isl²·n_h·d_h / t, causal) over the runs without a window, / the peak of the
    attention dtype."""
    base = root / system / "attention" / _trt(system)
    ctx = list(_rows(_read(base / "context_attention_perf.parquet")))
    out = {}
    for dtype, table_dtype in (("bf16", "bfloat16"), ("fp8", "fp8")):
        if dtype not in peaks:
            continue
        rows, frac, achieved, counts = [], [], [], []
        for isl in ATTENTION_ISL:
            tf = [r["batch_size"] * 2 * r["isl"] ** 2 * r["num_heads"] * r["head_dim"]
                  / (r["latency"] * 1e-3) / 1e12
                  for r in ctx if r["attn_dtype"] == table_dtype and r["isl"] == isl
                  and r["window_size"] == 0]
            if tf:
                a = round(_median(tf), 1)
                rows.append(isl), achieved.append(a), counts.append(len(tf))
                frac.append(round(a / peaks[dtype], 4))
        if rows:
            out[dtype] = dict(rows=rows, frac=frac, achieved_tflop_per_s=achieved, peak=dtype,
                              reduction=f"median over {_count_range(counts)} context-attention "
                              f"runs ({table_dtype}, no window) at each ISL (rows): FLOPs "
                              f"2·B·isl²·n_h·d_h (causal); / {peaks[dtype]} TFLOP/s dense "
                              f"{dtype}")
    return out


#: MLA's absorbed decode FLOPs per head and cached position: 2·(d_c + d_R + d_c) = 2·(576 + 512)
#: (DeepSeek-V2/V3 geometry, the only one the TensorRT-LLM collection measures).
MLA_FLOPS_PER_HEAD_POSITION = 2 * (576 + 512)
MLA_KV_DTYPES = {"bf16": "bfloat16", "fp8": "fp8"}


def _count_range(counts: list[int]) -> str:
    return f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def mla_decode(system: str, root: Path, peaks: dict) -> dict:
    """The generation MLA kernel's achieved fraction of the BF16 peak over heads per GPU, by
    KV dtype (one table each): median over runs with B·(step + 1) >= 262,144 tokens."""
    rows = list(_rows(_read(root / system / "mla" / _trt(system)
                            / "generation_mla_perf.parquet")))
    out = {}
    for key, table_dtype in MLA_KV_DTYPES.items():
        by_heads: dict[int, list[float]] = {}
        for r in rows:
            tokens = r["batch_size"] * (r["step"] + 1)
            if r["kv_cache_dtype"] != table_dtype or tokens < 262144:
                continue
            flops = tokens * r["num_heads"] * MLA_FLOPS_PER_HEAD_POSITION
            by_heads.setdefault(r["num_heads"], []).append(
                flops / (r["latency"] * 1e-3) / 1e12)
        if len(by_heads) < 2:
            continue
        heads = sorted(by_heads)
        achieved = [round(_median(by_heads[h]), 1) for h in heads]
        counts = [len(by_heads[h]) for h in heads]
        out[key] = _bf16_table(
            heads, achieved, peaks,
            f"median over {_count_range(counts)} generation-MLA runs ({table_dtype} KV, "
            "B·(step + 1) >= 262,144 tokens) at each count of heads per GPU (rows); FLOPs "
            "B·(step + 1)·n_h·2·(576 + 512) (absorbed)")
        out[key].update(mla_decode_fixed(rows, table_dtype, heads))
    return out


#: The MLA kernel's fixed time per call: its runs of one sequence over at most this many
#: cached positions (the FLOPs there take under 0.1 µs at the tables' rates).
MLA_FIXED_MAX_POSITIONS = 32


def mla_decode_fixed(rows: list, table_dtype: str, heads: list[int]) -> dict:
    """The generation MLA kernel's fixed time per call at each head count (µs): the median
    latency of its runs of batch 1 over at most :data:`MLA_FIXED_MAX_POSITIONS` positions
    (issue 22, round 15, hopdec15; ``benchmarks/hopper_decode_parts.py``)."""
    by_heads: dict[int, list[float]] = {}
    for r in rows:
        if (r["kv_cache_dtype"] == table_dtype and r["batch_size"] == 1
                and r["step"] + 1 <= MLA_FIXED_MAX_POSITIONS):
            by_heads.setdefault(r["num_heads"], []).append(r["latency"] * 1e3)
    if any(h not in by_heads for h in heads):
        return {}
    counts = [len(by_heads[h]) for h in heads]
    return dict(fixed_us=[round(_median(by_heads[h]), 1) for h in heads],
                fixed_reduction=f"fixed_us: median latency of {_count_range(counts)} runs of "
                f"batch 1 over at most {MLA_FIXED_MAX_POSITIONS} cached positions at each count "
                "of heads per GPU (the kernel's time per call before its FLOPs)")


def _bf16_table(rows: list, achieved: list, peaks: dict, reduction: str) -> dict:
    """A table of achieved TFLOP/s at ``rows`` as fractions of the dense BF16 peak."""
    return dict(rows=rows, achieved_tflop_per_s=achieved, peak="bf16",
                frac=[round(a / peaks["bf16"], 4) for a in achieved],
                reduction=f"{reduction}; / {peaks['bf16']} TFLOP/s dense bf16")


#: MLA's expanded prefill FLOPs per head and (query, key) pair, causal: 2·(d_qk + d_v) / 2 with
#: d_qk = 128 + 64 and d_v = 128 (DeepSeek-V2/V3 geometry, the only one the collection measures).
MLA_PREFILL_FLOPS_PER_HEAD_PAIR = 192 + 128
#: (sequence, head) pairs one context-MLA call must run to count: DeepSeek's 128 heads at TP 8
#: with one prompt (16), the fewest a served layout gives; smaller grids (TP >= 16, one prompt)
#: leave most SMs idle.
MLA_PREFILL_MIN_PAIRS = 16


def mla_prefill(system: str, root: Path, peaks: dict) -> dict:
    """The context MLA kernel's achieved fraction of the BF16 peak by prompt length, by KV dtype
    (one table each): median over the runs at each ISL of ``ATTENTION_ISL`` with B·n_h >=
    ``MLA_PREFILL_MIN_PAIRS``."""
    rows = list(_rows(_read(root / system / "mla" / _trt(system) / "context_mla_perf.parquet")))
    out = {}
    for key, table_dtype in MLA_KV_DTYPES.items():
        isls, achieved, counts = [], [], []
        for isl in ATTENTION_ISL:
            tf = [r["batch_size"] * isl ** 2 * r["num_heads"] * MLA_PREFILL_FLOPS_PER_HEAD_PAIR
                  / (r["latency"] * 1e-3) / 1e12 for r in rows
                  if r["kv_cache_dtype"] == table_dtype and r["isl"] == isl
                  and r["batch_size"] * r["num_heads"] >= MLA_PREFILL_MIN_PAIRS]
            if tf:
                isls.append(isl), achieved.append(round(_median(tf), 1)), counts.append(len(tf))
        if len(isls) < 2:
            continue
        out[key] = _bf16_table(
            isls, achieved, peaks,
            f"median over {_count_range(counts)} context-MLA runs ({table_dtype} KV, "
            f"B·n_h >= {MLA_PREFILL_MIN_PAIRS} (sequence, head) pairs per GPU) at each ISL "
            "(rows): FLOPs B·isl²·n_h·(192 + 128) (expanded, causal)")
    return out


def scale_up(system: str, root: Path, peaks: dict) -> dict:
    table = [r for r in _rows(_read(root / system / "comm" / "nccl"
                                    / NCCL_VERSION.get(system, "2.29.2") / "nccl_perf.parquet"))
             if r["op_name"] == "alltoall" and r["nccl_dtype"] == "half"]
    r = max(table, key=lambda r: (r["num_gpus"], r["message_size"]))
    n, size = r["num_gpus"], r["message_size"] * 2
    bus = size * (n - 1) / n / (r["latency"] * 1e-3) / 1e9
    return dict(achieved_gb_per_s=round(bus, 1), frac=round(bus / peaks["nvlink"], 4),
                reduction=f"NCCL all-to-all, {n} GPUs (the most the table has), "
                f"{size / 2**20:.0f} MiB (FP16): bus bandwidth S·(n - 1)/n / t; / "
                f"{peaks['nvlink']} GB/s per direction")


def moe_alltoall_by_ep(system: str, root: Path, peaks: dict) -> dict:
    """NVL72 scale-up above 4 GPUs (the NCCL tables stop at 4): TensorRT-LLM's MoE all-to-all
    (comm/trtllm/1.3.0rc10/trtllm_alltoall_perf, NVLinkTwoSided, BF16, balanced routing, EP
    2..64; gb200 only). Each rank sends each of its T tokens once to every other rank holding
    one of its top-k experts: remote copies per token r·(ep - 1)/ep with r = ep·(1 - C(E - E/ep,
    k) / C(E, k)) distinct ranks; GB/s per GPU = T·h·2·r·(ep - 1)/ep / t, median over T >= 16,384,
    / the per-direction NVLink bandwidth. At EP 4 this reads 488 GB/s, the NCCL 4-GPU
    all-to-all's 487.8: the payload model holds."""
    table = _rows(_read(root / system / "comm" / "trtllm" / "1.3.0rc10"
                        / "trtllm_alltoall_perf.parquet"))
    out: dict = {}
    for r in table:
        if (r["kernel_source"] != "NVLinkTwoSided" or r["moe_dtype"] != "bfloat16"
                or r["num_tokens"] < 16384):
            continue
        ep, e, k = r["moe_ep_size"], r["num_experts"], r["topk"]
        ranks = ep * (1 - math.comb(e - e // ep, k) / math.comb(e, k))
        gbs = r["num_tokens"] * r["hidden_size"] * 2 * ranks * (ep - 1) / ep / (
            r["latency"] * 1e-3) / 1e9
        out.setdefault(r["op_name"], {}).setdefault(ep, []).append(gbs)
    return {op: {ep: round(_median(v) / peaks["nvlink"], 4) for ep, v in sorted(by.items())}
            for op, by in out.items() if op in ("alltoall_dispatch", "alltoall_combine")}


def _source(system: str, table: str, commit: str) -> str:
    return (f"ai-dynamo/aiconfigurator@{commit[:12]} (Apache-2.0), {REPO_DIR}/{system}/"
            f"{table}.parquet")


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _flow(values: list) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _factor_yaml(name: str, fac: dict, source: str) -> list[str]:
    achieved = fac.get("achieved_tflop_per_s", fac.get("achieved_gb_per_s"))
    return [f"  {name}:", f"    frac: {fac['frac']:g}", f"    achieved: {achieved:g}",
            f"    source: {_q(source)}", f"    reduction: {_q(fac['reduction'])}"]


def _table_yaml(name: str, tables: dict, source) -> list[str]:
    """``source``: one string for every table, or a function of the table giving its own."""
    out = [f"  {name}:"]
    for key, t in tables.items():
        src = source(t) if callable(source) else source
        out += [f"    {key}:", f"      rows: {_flow(t['rows'])}", f"      frac: {_flow(t['frac'])}",
                f"      achieved_tflop_per_s: {_flow(t['achieved_tflop_per_s'])}",
                f"      peak: {t['peak']}", f"      source: {_q(src)}",
                f"      reduction: {_q(t['reduction'])}"]
        if "fixed_us" in t:
            out[-1] = f"      reduction: {_q(t['reduction'] + '; ' + t['fixed_reduction'])}"
            out.insert(-3, f"      fixed_us: {_flow(t['fixed_us'])}")
    return out


def _skew_yaml(tables: dict, source: str) -> list[str]:
    out = ["  routed_skew:"] if tables else []
    for key, t in tables.items():
        out += [f"    {key}:", f"      ep: {_flow(t['ep'])}", f"      rows: {_flow(t['rows'])}",
                "      factor:", *(f"        - {_flow(row)}" for row in t["factor"]),
                f"      source: {_q(source)}", f"      reduction: {_q(t['reduction'])}"]
    return out


def _mla_yaml(system: str, root: Path, peaks: dict, commit: str) -> list[str]:
    """The ``mla_decode`` and ``mla_prefill`` tables where the system has MLA collections."""
    out = []
    for name, fn, table in (("mla_decode", mla_decode, "generation_mla_perf"),
                            ("mla_prefill", mla_prefill, "context_mla_perf")):
        try:
            tables = fn(system, root, peaks)
        except FileNotFoundError:
            continue
        out += _table_yaml(name, tables, _source(
            system, f"mla/{_trt(system)}/{table}", commit)) if tables else []
    return out


def efficiency_yaml(system: str, root: Path, peaks: dict, commit: str) -> str:
    """The ``efficiency:`` entries of one system, as YAML lines."""
    gemm, moe = gemm_tables(system, root, peaks), moe_tables(system, root, peaks)
    att = attention(system, root, peaks)
    trt, nccl = _trt(system), NCCL_VERSION.get(system, "2.29.2")
    key = "fp8_block" if "fp8_block" in gemm else "bf16"
    big = gemm[key]
    matmul = dict(frac=big["frac"][-1], achieved_tflop_per_s=big["achieved_tflop_per_s"][-1],
                  reduction=f"the gemm.{key} table at M = {big['rows'][-1]} (its last row)")
    attention_src = _source(system, f"attention/{trt}/context_attention_perf", commit)
    lines = (_factor_yaml("scale_up_bandwidth", scale_up(system, root, peaks),
                          _source(system, f"comm/nccl/{nccl}/nccl_perf", commit))
             + _factor_yaml("hbm_bandwidth", att["kv_stream"], _source(
                 system, f"attention/{trt}/generation_attention_perf", commit))
             + _factor_yaml("gemm_weight_bandwidth", weight_stream(system, root, peaks),
                            _source(system, f"gemm/{trt}/gemm_perf", commit))
             + _factor_yaml("matmul_flops", matmul, _source(system, f"gemm/{trt}/gemm_perf",
                                                           commit))
             + _factor_yaml("attention_flops", att["prefill_bf16"], attention_src)
             + (_factor_yaml("attention_fp8_flops", att["prefill_fp8"], attention_src)
                if "prefill_fp8" in att else [])
             + _table_yaml("gemm", gemm, _source(system, f"gemm/{trt}/gemm_perf", commit))
             + _table_yaml("grouped_gemm", moe, lambda t: _source(
                 system, t.get("path", f"moe/{trt}/moe_perf"), commit))
             + _skew_yaml(routed_skew(system, root, peaks),
                          _source(system, f"moe/{trt}/moe_perf", commit))
             + _mla_yaml(system, root, peaks, commit)
             + _table_yaml("attention_by_isl", attention_by_isl(system, root, peaks),
                           attention_src))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--yaml", type=Path, help="write <name>.efficiency.yaml per system here")
    args = ap.parse_args()
    if args.yaml:
        args.yaml.mkdir(parents=True, exist_ok=True)
        for system, peaks in PEAKS.items():
            text = efficiency_yaml(system, args.data, peaks, args.commit)
            (args.yaml / f"{peaks['name']}.efficiency.yaml").write_text(text)
        return
    for system, peaks in PEAKS.items():
        print(f"### {peaks['name']} ({REPO_DIR}/{system}, commit {args.commit})")
        for what, fn in (("gemm", gemm_tables), ("weight_stream", weight_stream),
                         ("grouped_gemm", moe_tables), ("routed_skew", routed_skew),
                         ("attention", attention),
                         ("attention_by_isl", attention_by_isl),
                         ("mla_decode", mla_decode), ("mla_prefill", mla_prefill),
                         ("scale_up", scale_up), ("moe_alltoall_by_ep", moe_alltoall_by_ep)):
            try:
                print(what, fn(system, args.data, peaks))
            except FileNotFoundError as exc:
                print(what, "missing", exc.filename)


if __name__ == "__main__":
    main()
