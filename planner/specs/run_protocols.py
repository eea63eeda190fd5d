"""How the sources of the measured serving runs ran them (:mod:`planner.specs.runs` reads the
rows through :func:`read_as_run`): the lengths the benchmark client drew, layouts a source
listed multiplied, and the engine flags the benchmark scripts launched with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

AGG = "agg"
#: The KV cache dtype a run's ``kv_fp8`` flag asks for (``--kv-cache-dtype fp8``).
KV_FP8 = "fp8"
#: Sources whose client draws each request's input and output lengths at random, and its
#: --random-range-ratio r: SemiAnalysis InferenceMAX sweeps (``source_file=<date>.csv``;
#: github.com/SemiAnalysisAI/InferenceX, .github/workflows/benchmark-tmpl.yml and
#: benchmark-multinode-tmpl.yml: RANDOM_RANGE_RATIO 0.8; utils/bench_serving/
#: benchmark_serving.py ``sample_random_requests``: lengths uniform on the integers
#: int(L * r) .. L, ``--ignore-eos``). Other sources: every request at the nominal lengths.
#: InferenceMAX rows named ``..._tp<N>_ep<M>_...`` (N GPUs per replica, experts split EP M),
#: and AIConfigurator's own ``db-dump`` rows of the same sweeps, carry some layouts multiplied:
#: TP x attention-DP = N x M and MoE-TP x MoE-EP = N x M (e.g. ``tp8_ep8``: 64 GPUs, MoE 8 x 8,
#: or 1 x 64) where the run used N GPUs (one 8-GPU node). The same measurement appears in the
#: data under both readings (e.g. dsr1_b200_trtllm_fp4_agg_1024x8192_c256_cfg191, attention DP
#: 64, MoE 8 x 8, and 2026_03_25_deepseek_r1_b200_sxm_trtllm_fp4_agg_1024x8192_c256, attention
#: DP 8, MoE 1 x 8: TTFT 907 ms, TPOT 21.4 ms both); :func:`_physical_layouts` reads them as run.
_TP_EP_ID = re.compile(r"_tp(\d+)_ep(\d+)_")
_DB_DUMP = "db-dump/"
#: The AIConfigurator ``db-dump/`` rows are InferenceMAX's workflow runs too (each names its
#: ``workflow_run_id``; 182 of the 339 aggregated ones are the very measurements of a dated row,
#: same system, TTFT and TPOT to the nanosecond), and ``qwen3.5-397b-gap-analysis.csv`` and
#: ``kimi-k2.5-gap-analysis.csv`` copy those sweeps (62 of 65 and 36 of 41 rows are dated rows'
#: measurements rounded to 0.01 ms): their clients drew the same lengths.
LENGTH_RANGE_RATIOS = ((re.compile(r"source_file=\d{4}-\d{2}-\d{2}\.csv"), 0.8),
                       (re.compile(r"^db-dump/.*workflow_run_id="), 0.8),
                       (re.compile(r"source_file=(qwen3\.5-397b|kimi-k2\.5)-gap-analysis\.csv"),
                        0.8))


#: The columns :func:`read_as_run` adds.
READ_AS_RUN = ("mean_isl", "mean_osl", "layout_reread", "recv_interval", "max_running", "kv_fp8",
               "max_num_tokens")


def read_as_run(out: dict[str, Any]) -> None:
    """The columns ``mean_isl``, ``mean_osl``, ``layout_reread`` and the launch flags
    (``recv_interval``, ``max_running``, ``kv_fp8``, ``max_num_tokens``) of the runs' columns
    ``out`` (read in place; :func:`_physical_layouts` re-reads the layouts)."""
    _physical_layouts(out)
    out["recv_interval"], out["max_running"] = launch_flags(out)
    out["kv_fp8"], out["max_num_tokens"] = vllm_launch_flags(out)
    ratio = np.array([next((r for pattern, r in LENGTH_RANGE_RATIOS if pattern.search(src)), 1.0)
                      for src in out["source"]], dtype=float)
    out["mean_isl"], out["mean_osl"] = (mean_drawn_length(out[k], ratio) for k in ("isl", "osl"))


def _physical_layouts(out: dict[str, Any]) -> None:
    """Aggregated rows whose layout the source multiplied (see ``_TP_EP_ID``), read as run, in
    place: N GPUs per replica (attention DP N where the row has attention DP, else TP N), the
    experts split MoE-TP N / M x MoE-EP M; the concurrency (already taken) is unchanged.
    ``db-dump`` rows name no N, M: MoE-TP = MoE-EP = k > 1 with k² GPUs is read as k GPUs,
    EP k."""
    gpus = out["tp"] * out["attention_dp"]
    n, m = np.zeros_like(gpus), np.zeros_like(gpus)
    for i, (name, src) in enumerate(zip(out["id"], out["source"])):
        found = _TP_EP_ID.search(name)
        if found:
            n[i], m[i] = int(found.group(1)), int(found.group(2))
        elif src.startswith(_DB_DUMP) and out["moe_tp"][i] == out["moe_ep"][i] > 1:
            n[i] = m[i] = out["moe_tp"][i]
    fix = ((out["mode"] == AGG) & (m > 1) & (gpus == n * m) & (n * m != n)
           & (out["moe_tp"] * out["moe_ep"] == gpus) & (n % np.maximum(m, 1) == 0))
    adp = out["attention_dp"] > 1
    out["attention_dp"] = np.where(fix & adp, n, out["attention_dp"])
    out["tp"] = np.where(fix, np.where(adp, 1, n), out["tp"])
    out["moe_tp"] = np.where(fix, n // np.maximum(m, 1), out["moe_tp"])
    out["moe_ep"] = np.where(fix, m, out["moe_ep"])
    out["layout_reread"] = fix


def mean_drawn_length(nominal: Any, range_ratio: Any) -> Any:
    """The mean length (tokens) of requests whose lengths are drawn uniformly from the integers
    int(L · r) .. L (r = 1: every request L).

    Formula: (⌊L · r⌋ + L) / 2.
    Ref: SemiAnalysis InferenceX utils/bench_serving/benchmark_serving.py,
    ``sample_random_requests`` (np.random.randint(int(L * r), L + 1)).
    Convention: ``nominal`` L and ``range_ratio`` r broadcast together; r in (0, 1].
    Example: L = 1,024, r = 0.8: (819 + 1,024) / 2 = 921.5 tokens; L = 8,192: 7,372.5.
    """
    nominal = np.asarray(nominal, dtype=float)
    return (np.floor(nominal * np.asarray(range_ratio, dtype=float)) + nominal) / 2


@dataclass(frozen=True)
class LaunchFlags:
    """The SGLang flags an InferenceMAX single-node script passed (SemiAnalysisAI/InferenceX,
    the script at the commit in ``source``), for rows of ``system`` whose ``model_path``
    matches ``models``, at ``precision``, measured in ``measured`` (ISO dates, inclusive; an
    undated row of ``undated`` matches too), at ``gpus`` per replica (None: any):
    ``--scheduler-recv-interval`` ``recv_low`` below ``RECV_CONC`` requests, ``recv_high`` from
    it, and ``--max-running-requests``. A row above ``max_running`` keeps the engine's defaults:
    its measurement shows no such cap (its TPOT keeps rising past it), and it lies outside the
    script's search space in .github/configs/nvidia-master.yaml, so another launch ran it."""

    source: str
    system: str
    models: str
    precision: str
    measured: tuple[str, str]
    recv_low: int
    recv_high: int
    max_running: int
    gpus: int | None = None
    undated: str = "$^"


#: The scripts' threshold: "if CONC >= 16, relax to ~30 requests between scheduler recv polls".
RECV_CONC = 16
_DSR1, _QWEN35 = r"deepseek-ai/DeepSeek-(R1|V3)", r"Qwen/Qwen3\.5-397B-A17B"
_GAP = r"source_file=qwen3\.5-397b-gap-analysis\.csv"   # the same runs, rounded, undated
#: InferenceMAX rows: a dated sweep file or the AIConfigurator db-dump of the same sweeps.
_INFERENCEMAX = re.compile(r"source_file=\d{4}-\d{2}-\d{2}\.csv|^db-dump/")
_MEASURED = re.compile(r"measured=(\d{4}-\d{2}-\d{2})")
#: Every B200 SGLang script of the runs passes these (H200's pass no recv interval, and
#: --max-running-requests 128-512 at concurrencies <= 64; GLM-5's pass neither).
SGLANG_LAUNCHES = (
    LaunchFlags("benchmarks/dsr1_fp4_b200_docker.sh @ e06929c7 and 7daaa8bb; "
                "benchmarks/single_node/dsr1_fp4_b200.sh @ 12ba0ae0", "b200_sxm", _DSR1, "fp4",
                ("2025-11-01", "2026-04-06"), 10, 30, 256),
    LaunchFlags("benchmarks/dsr1_fp8_b200_docker.sh @ 189ae51c", "b200_sxm", _DSR1, "fp8",
                ("2025-11-01", "2025-11-30"), 10, 30, 128),
    LaunchFlags("benchmarks/single_node/dsr1_fp8_b200.sh @ 12ba0ae0 (TP 8)", "b200_sxm", _DSR1,
                "fp8", ("2026-03-01", "2026-04-06"), 10, 30, 128, gpus=8),
    LaunchFlags("benchmarks/single_node/dsr1_fp8_b200.sh @ 12ba0ae0 (TP 4)", "b200_sxm", _DSR1,
                "fp8", ("2026-03-01", "2026-04-06"), 10, 10, 32, gpus=4),
    LaunchFlags("benchmarks/single_node/qwen3.5_bf16_b200.sh @ 9dc87a68", "b200_sxm", _QWEN35,
                "bf16", ("2026-02-20", "2026-03-31"), 10, 30, 128, undated=_GAP),
    LaunchFlags("benchmarks/single_node/qwen3.5_fp8_b200.sh @ efd49e50 and 6a5dad46", "b200_sxm",
                _QWEN35, "fp8", ("2026-03-01", "2026-03-31"), 10, 30, 128, undated=_GAP),
    LaunchFlags("benchmarks/single_node/qwen3.5_fp4_b200.sh @ 48d35c48", "b200_sxm", _QWEN35,
                "fp4", ("2026-04-01", "2026-04-30"), 10, 30, 128),
)


def launch_flags(out: dict[str, Any]) -> tuple[Any, Any]:
    """Per row of the runs' columns ``out``: the ``--scheduler-recv-interval`` and
    ``--max-running-requests`` its script launched SGLang with (:data:`SGLANG_LAUNCHES`), 0
    where the engine's defaults hold (int arrays)."""
    recv, cap = np.zeros(len(out["id"]), dtype=np.int64), np.zeros(len(out["id"]), dtype=np.int64)
    gpus = out["tp"] * out["attention_dp"] * out["pp"]
    for i, src in enumerate(out["source"]):
        if out["backend"][i] != "sglang" or out["mode"][i] != AGG:
            continue
        day = _MEASURED.search(src)
        for f in SGLANG_LAUNCHES:
            dated = bool(_INFERENCEMAX.search(src) and day
                         and f.measured[0] <= day.group(1) <= f.measured[1])
            if ((dated or re.search(f.undated, src)) and out["system"][i] == f.system
                    and re.fullmatch(f.models, out["model_path"][i])
                    and out["precision"][i] == f.precision
                    and f.gpus in (None, gpus[i]) and out["concurrency"][i] <= f.max_running):
                recv[i] = f.recv_high if out["concurrency"][i] >= RECV_CONC else f.recv_low
                cap[i] = f.max_running
                break
    return recv, cap


@dataclass(frozen=True)
class VllmLaunch:
    """The vLLM flags an InferenceMAX single-node script passed (SemiAnalysisAI/InferenceX, the
    script at the commit in ``source``, the newest at or before the run's ``measured=`` day),
    for rows of ``system`` whose ``model_path`` matches ``models``, at ``precision`` and
    ``version`` (the row's backend_version), measured in ``measured`` (ISO dates, inclusive):
    ``--kv-cache-dtype fp8`` (``kv_fp8``) and ``--max-num-batched-tokens`` as a multiple of
    the script's nominal ISL (0: the engine's default). Where the script changed on a run's day,
    the row's backend version tells which side of the change ran it (the commits that set
    these flags also moved the image: gpt-oss v0.13.0 -> v0.15.1, MiniMax-M2.5 -> v0.19.0);
    rows without a date keep the engine's defaults."""

    source: str
    system: str
    models: str
    precision: str
    version: str
    measured: tuple[str, str]
    kv_fp8: bool
    budget_isl_multiple: float = 0.0


_LLAMA70, _GPTOSS, _MINIMAX = (r"meta-llama/Llama-3\.1-70B", r"openai/gpt-oss-120b",
                               r"MiniMaxAI/MiniMax-M2\.5")
#: The vLLM scripts of the dated runs that set the KV cache to FP8 or the token budget (the
#: others, e.g. the Kimi-K2.5 INT4, gpt-oss H100/H200 and MiniMax-M2.5 H200 scripts at their
#: runs' dates, keep vLLM's BF16 KV and 8,192-token budget). The Llama-3.1-70B scripts' last
#: version (before "remove llama 70b", 2582bce40, 2025-10-29) also sets async-scheduling: it
#: is not modelled per run (vLLM's calibrated host time per step is ~0, so it moves nothing).
VLLM_LAUNCHES = (
    VllmLaunch("benchmarks/70b_fp8_b200_docker.sh, 70b_fp4_b200_docker.sh, "
               "70b_fp8_h200_slurm.sh, 70b_fp8_h100_docker.sh @ 2582bce40^ (config.yaml "
               "kv-cache-dtype: fp8, max-num-batched-tokens: 8192)",
               r"(b|h)[12]00_sxm", _LLAMA70, r"fp8|fp4", "", ("2025-10-29", "2025-10-29"), True),
    VllmLaunch("benchmarks/single_node/gptoss_fp4_b200.sh @ d2c2acb19 (config.yaml "
               "kv-cache-dtype: fp8)", "b200_sxm", _GPTOSS, "fp4", "0.15.1",
               ("2026-02-25", "2026-02-25"), True),
    VllmLaunch("benchmarks/single_node/minimaxm2.5_fp8_b200.sh @ bddbf4031 and 41ed82dc1 "
               "(--kv-cache-dtype fp8, --max-num-batched-tokens $((ISL * 2)); vLLM 0.19.0)",
               "b200_sxm", _MINIMAX, "fp8", "0.19.0", ("2026-04-03", "2026-04-30"), True, 2.0),
    VllmLaunch("benchmarks/single_node/minimaxm2.5_fp4_b200.sh @ 79bd988e9 and 13962fcfa "
               "(--kv-cache-dtype fp8, --max-num-batched-tokens $((ISL * 2)); vLLM 0.19.0)",
               "b200_sxm", _MINIMAX, "fp4", "0.19.0", ("2026-04-08", "2026-04-30"), True, 2.0),
)


def vllm_launch_flags(out: dict[str, Any]) -> tuple[Any, Any]:
    """Per row of the runs' columns ``out``: 1 where its script launched vLLM with an FP8 KV
    cache, and the ``--max-num-batched-tokens`` it passed (tokens; 0: the engine's default),
    from :data:`VLLM_LAUNCHES`."""
    kv, budget = np.zeros(len(out["id"]), dtype=np.int64), np.zeros(len(out["id"]))
    for i, src in enumerate(out["source"]):
        day = _MEASURED.search(src)
        if out["backend"][i] != "vllm" or out["mode"][i] != AGG or not day:
            continue
        for f in VLLM_LAUNCHES:
            if (_INFERENCEMAX.search(src) and f.measured[0] <= day.group(1) <= f.measured[1]
                    and re.fullmatch(f.system, out["system"][i])
                    and re.fullmatch(f.models, out["model_path"][i])
                    and re.fullmatch(f.precision, out["precision"][i])
                    and out["backend_version"][i] == f.version):
                kv[i], budget[i] = int(f.kv_fp8), f.budget_isl_multiple * out["isl"][i]
                break
    return kv, budget
