"""The worker counts and layouts of the disaggregated runs that leave them blank, from the
benchmark recipes that produced them (``planner/data/disagg-recipes.csv``, written by
``benchmarks/resolve_disagg_recipes.py``; provenance in ``planner/data/README.md``).

The blank rows are SemiAnalysis InferenceMAX sweeps. Their layout columns hold the recipe's
``tp`` (the GPUs of one worker) and ``ep`` (prefill's, repeated for decode), never its
``dp-attn`` nor its worker counts. A row the recipes determine (status ``resolved``) is filled
with the recipe's prefill and decode workers, TP, EP and attention DP (status ``twin``: those
of the row of the same file that records the same measurement), read in the data's
convention (a worker of ``tp`` GPUs: with ``dp-attn`` attention DP = ``tp`` and attention TP 1;
``moe_ep`` = ``ep``, ``moe_tp`` = ``tp / ep``); its decode pool holds the benchmark's
concurrency (``silicon_concurrency`` = decode batch x attention DP x decode workers, as on
every recorded row), its prefill pool one prompt per attention rank. A row whose recipe runs
MTP speculative decoding with a stated number of draft tokens per step (status ``mtp``,
column ``mtp_k``) is filled the same way and decodes with those drafts
(:func:`mtp_draft_tokens`). Any other status keeps the row unexpressed, with
:data:`STATUS_REASONS`' text. The prefill workers' token budget and batch cap under load, where
the recipes state them: :func:`prefill_budget`.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.catalog import SERVING_RUNS_CSV

if TYPE_CHECKING:
    from planner.specs.runs import Resolution, RunTable

#: The shipped recipe resolution, one line per blank disaggregated row of serving-runs.csv.
RECIPES_CSV = SERVING_RUNS_CSV.parent / "disagg-recipes.csv"
#: The statuses that fill a row: the recipes determine it, or a row of the same file that
#: records its pools is the same measurement (its "twin"); every other status is a reason.
RESOLVED, TWIN, MTP = "resolved", "twin", "mtp"
FILLS = (RESOLVED, TWIN, MTP)
STATUS_REASONS = {
    "mtp_k_unknown": "disaggregated: the InferenceMAX recipe runs MTP speculative decoding "
                     "but names no draft tokens per step (its recipe file is not stored here)",
    "mtp_unknown": "disaggregated: the InferenceMAX recipes give these workers with and without "
                   "MTP speculative decoding (which one ran is not recorded)",
    "ambiguous": "disaggregated: the InferenceMAX recipes give several worker counts or layouts "
                 "for this concurrency and layout",
    "nodes": "disaggregated: the InferenceMAX recipe sizes its workers in nodes (tp 1 is not "
             "the worker's GPUs; GPUs per worker not stated)",
    "none": "disaggregated: no InferenceMAX recipe at or before the measurement matches the "
            "row's concurrency and layout",
}
ROLES = ("prefill", "decode")

#: The prefill workers' own token budget and batch cap (``max_num_tokens``, ``max_batch_size``)
#: where every recipe a group's rows ran states the same, by (hardware, engine, model, nominal
#: ISL); chunked prefill off in all. gpt-oss-120b GB200: InferenceX nvidia-master.yaml @
#: 645b97aa, all 11 ``gptoss-fp4-gb200-dynamo-trt`` entries ``PREFILL_MAX_NUM_TOKENS=20000``,
#: ``PREFILL_MAX_BATCH_SIZE=32``. H200 DeepSeek-R1: NVIDIA/srt-slurm recipes/trtllm/h200/1k1k
#: (18 files) 8,192 / 8, 8k1k (18 files) 16,640 / 2, the same @ 75f6e32a, 5063eb43, 04ff0a0a.
#: GLM-5 GB200: srt-slurm recipes/GLM5/disagg/trtllm_dynamo/gb200_nvfp4 @ 10b37984 ISL1K_OSL1K
#: (7 files) 16,384 / 16, ISL8K_OSL1K (6) 16,640 / 2. Kimi-K2.5 GB200: recipes/kimi2.5/
#: trtllm_dynamo/disagg/gb200Nvfp4 @ 2009ede3 ISL1K (7) 16,384 / 16, ISL8K (7) 16,384 / 2. Other
#: groups keep the engine spec's ``max_num_tokens`` and no cap (their recipes differ by entry
#: or name srt-slurm files not read here), except the rows :data:`RECIPE_PREFILL_BUDGET_AT`
#: names by the commit of the recipe that filled them and the SGLang rows whose entry
#: :data:`SGLANG_PREFILL_ENTRIES` names.
RECIPE_PREFILL_BUDGET = {
    ("gb200-nvl72", "trtllm", "gpt-oss-120b", 1024): (20000, 32),
    ("gb200-nvl72", "trtllm", "gpt-oss-120b", 8192): (20000, 32),
    ("h200", "trtllm", "deepseek-v3", 1024): (8192, 8),
    ("h200", "trtllm", "deepseek-v3", 8192): (16640, 2),
    ("gb200-nvl72", "trtllm", "glm-5", 1024): (16384, 16),
    ("gb200-nvl72", "trtllm", "glm-5", 8192): (16640, 2),
    ("gb200-nvl72", "trtllm", "kimi-k2.5", 1024): (16384, 16),
    ("gb200-nvl72", "trtllm", "kimi-k2.5", 8192): (16384, 2),
}
#: As :data:`RECIPE_PREFILL_BUDGET`, for the rows whose recipe is an InferenceX commit where
#: every entry of the group states them, by (hardware, engine, model, ISL, commit's first 8
#: hex digits). DeepSeek-R1 GB200 at 25506e87: all 10 ``dsr1-fp4-gb200-dynamo-trt`` 1K
#: search-space entries set ``PREFILL_MAX_NUM_TOKENS=4608``, ``PREFILL_MAX_BATCH_SIZE=4``, all
#: 10 8K ones 8448 / 1 (nvidia-master.yaml). The other DeepSeek-R1 TensorRT-LLM rows: the
#: entry each row's recipe names at that commit sets ``CONFIG_FILE``, an NVIDIA/srt-slurm recipe
#: file whose prefill ``max_num_tokens`` / ``max_batch_size`` every stored version of it keeps,
#: and every row of the group reads the same (B200 8K at 84b7df68, 8cdf3578, f316a0ef: 8,320
#: tokens with caps 1 or 64, one 8K prompt either way: no cap kept, NaN).
_DSR1_TRT: dict[tuple[str, int], dict[tuple[str, ...], tuple[float, float]]] = {
    ("gb200-nvl72", 1024): {("25506e87",): (4608, 4),
                            ("35d4bb36", "c50fd355", "daa8239f", "f316a0ef"): (16384, 16)},
    ("gb200-nvl72", 8192): {("25506e87",): (8448, 1), ("35d4bb36", "f316a0ef"): (16640, 2),
                            ("c50fd355", "daa8239f"): (16384, 2)},
    ("b200", 1024): {("35d4bb36", "8cdf3578", "f316a0ef"): (16384, 16),
                     ("d7a6d4e7", "efe2f531"): (10240, 8)},
    ("b200", 8192): {("84b7df68", "8cdf3578", "f316a0ef"): (8320, float("nan")),
                     ("d7a6d4e7", "efe2f531"): (16896, 2)},
    ("h100", 1024): {("04b564b3", "66d6a351"): (2048, 2)},
    ("h100", 8192): {("04b564b3", "66d6a351"): (8224, 1)},
}
RECIPE_PREFILL_BUDGET_AT = {(hw, "trtllm", "deepseek-v3", isl, commit): budget
                            for (hw, isl), by in _DSR1_TRT.items()
                            for commits, budget in by.items() for commit in commits}
#: SGLang's default ``--max-prefill-tokens`` (server_args.py ``max_prefill_tokens: int =
#: 16384``), for the recipe files that leave it unset.
SGLANG_DEFAULT_MAX_PREFILL_TOKENS = 16384
#: The prefill workers' settings of InferenceX's B200 and GB200 DeepSeek-R1 SGLang recipe files
#: (NVIDIA/srt-slurm ``recipes/<file>.yaml`` as merged from the sa-submission-q1-2026 branch the
#: runs checked out, @ 5063eb43; the GB200 ones the same @ 686df21e): ``chunked-prefill-size``,
#: ``max-prefill-tokens`` (None: unset), ``max-running-requests``, attention DP (``dp-size``
#: with ``enable-dp-attention``, else 1). Chunked prefill on in all (no file disables it).
SGLANG_PREFILL_FILES: dict[str, tuple[int, int | None, int, int]] = {
    "b200-fp4/1k1k/mtp/low-latency-dep4-1p-tep8-5d": (32768, 32768, 512, 4),
    "b200-fp4/1k1k/mtp/low-latency-dep4-1p-tep8-6d": (32768, 32768, 512, 4),
    "b200-fp4/1k1k/mtp/max-tpt-dep4-1p-dep8-1d": (32768, 32768, 1024, 4),
    "b200-fp4/1k1k/stp/low-latency-dep4-1p-tep8-5d": (32768, 32768, 512, 4),
    "b200-fp4/1k1k/stp/low-latency-dep4-1p-tep8-6d": (32768, 32768, 512, 4),
    "b200-fp4/8k1k/mtp/low-latency-tp4-1p-tp8-1d": (32768, 32768, 512, 1),
    "b200-fp4/8k1k/stp/low-latency-dep4-1p-tep8-5d": (32768, 32768, 512, 4),
    "b200-fp4/8k1k/stp/low-latency-tp4-1p-tp8-1d": (32768, 32768, 512, 1),
    "b200-fp4/8k1k/stp/max-tpt-dep4-7p-dep8-2d": (65536, 65536, 1024, 4),
    "b200-fp8/1k1k/mtp/low-latency-tep8-1p1d": (32768, 32768, 512, 1),
    "b200-fp8/1k1k/mtp/low-latency-tep8-1p3d": (32768, 32768, 512, 1),
    "b200-fp8/1k1k/stp/low-latency-tep8-1p1d": (32768, 32768, 512, 1),
    "b200-fp8/1k1k/stp/low-latency-tep8-1p3d": (32768, 32768, 512, 1),
    "b200-fp8/1k1k/stp/max-tpt-dep8-1p5d": (32768, 32768, 1024, 8),
    "b200-fp8/1k1k/stp/max-tpt-dep8-2p5d": (32768, 32768, 1024, 8),
    "b200-fp8/8k1k/mtp/low-latency-tep8-1p1d": (32768, 32768, 512, 1),
    "b200-fp8/8k1k/mtp/low-latency-tep8-1p6d": (32768, 32768, 512, 1),
    "b200-fp8/8k1k/stp/max-tpt-dep8-1p1d": (32768, 32768, 1024, 8),
    "b200-fp8/8k1k/stp/max-tpt-dep8-2p1d": (32768, 32768, 1024, 8),
    "gb200-fp4/1k1k/low-latency": (8192, None, 512, 1),
    "gb200-fp4/1k1k/max-tpt": (65536, 32768, 30000, 4),
    "gb200-fp4/1k1k/mid-curve": (65536, 32768, 30000, 4),
    "gb200-fp4/8k1k/low-latency": (24576, None, 512, 1),
    "gb200-fp4/8k1k/max-tpt": (131072, 524288, 30000, 1),
    "gb200-fp4/8k1k/mid-curve": (131072, 524288, 30000, 1),
    "gb200-fp8/1k1k/low-latency": (8192, None, 512, 1),
    "gb200-fp8/1k1k/max-tpt": (131072, None, 30000, 8),
    "gb200-fp8/1k1k/mid-curve": (131072, None, 30000, 8),
    "gb200-fp8/8k1k/low-latency": (24576, None, 512, 1),
    "gb200-fp8/8k1k/max_tpt": (131072, None, 30000, 8),
    "gb200-fp8/8k1k/mid-curve": (131072, None, 30000, 8),
}
_SGL_B2 = "dsr1-{}-b200-dynamo-sglang{}[isl={},osl=1024][{}]"
_SGL_GB = "dsr1-{}-gb200-dynamo-sglang[isl={},osl=1024][{}]"
#: Which of :data:`SGLANG_PREFILL_FILES` each InferenceX entry (search-space item) names as its
#: ``CONFIG_FILE``, by (commit's first 8 hex digits, entry as disagg-recipes.csv spells it):
#: nvidia-master.yaml at that commit. GB200 entries before 37f353be / 2767db50 (25506e87,
#: c040b5cf, 450d834a) name a ``SCRIPT_MODE`` of a Dynamo fork's launch script instead, not
#: read here: those rows keep the engine's budget.
SGLANG_PREFILL_ENTRIES: dict[tuple[str, str], str] = {
    **{("2767db50", _SGL_GB.format("fp4", isl, k)): f"gb200-fp4/{d}/{f}"
       for isl, d in ((1024, "1k1k"), (8192, "8k1k"))
       for k, f in enumerate(("low-latency", "mid-curve", "max-tpt"))},
    **{("37f353be", _SGL_GB.format("fp8", isl, k)): f"gb200-fp8/{d}/{f}"
       for isl, d, last in ((1024, "1k1k", "max-tpt"), (8192, "8k1k", "max_tpt"))
       for k, f in enumerate(("low-latency", "mid-curve", last))},
    **{(c, _SGL_B2.format("fp4", m, isl, k)): f"b200-fp4/{f}"
       for c, m, isl, k, f in (
           ("46e0b5ff", "", 1024, 0, "1k1k/stp/low-latency-dep4-1p-tep8-5d"),
           ("46e0b5ff", "", 1024, 1, "1k1k/stp/low-latency-dep4-1p-tep8-6d"),
           ("46e0b5ff", "", 8192, 1, "8k1k/stp/low-latency-dep4-1p-tep8-5d"),
           ("46e0b5ff", "", 8192, 3, "8k1k/stp/low-latency-tp4-1p-tp8-1d"),
           ("46e0b5ff", "", 8192, 4, "8k1k/stp/max-tpt-dep4-7p-dep8-2d"),
           ("84b7df68", "-mtp", 1024, 0, "1k1k/mtp/low-latency-dep4-1p-tep8-5d"),
           ("84b7df68", "-mtp", 1024, 1, "1k1k/mtp/low-latency-dep4-1p-tep8-6d"),
           ("84b7df68", "-mtp", 1024, 2, "1k1k/mtp/max-tpt-dep4-1p-dep8-1d"),
           ("84b7df68", "-mtp", 8192, 3, "8k1k/mtp/low-latency-tp4-1p-tp8-1d"),
           ("84b7df68", "", 1024, 0, "1k1k/stp/low-latency-dep4-1p-tep8-5d"),
           ("84b7df68", "", 1024, 1, "1k1k/stp/low-latency-dep4-1p-tep8-6d"),
           ("84b7df68", "", 8192, 3, "8k1k/stp/low-latency-tp4-1p-tp8-1d"),
           ("84b7df68", "", 8192, 4, "8k1k/stp/max-tpt-dep4-7p-dep8-2d"))},
    **{(c, _SGL_B2.format("fp8", m, isl, k)): f"b200-fp8/{f}"
       for c, m, isl, k, f in (
           ("593fb431", "-mtp", 1024, 1, "1k1k/mtp/low-latency-tep8-1p3d"),
           ("5e2c705d", "-mtp", 1024, 1, "1k1k/mtp/low-latency-tep8-1p3d"),
           ("5e2c705d", "", 1024, 1, "1k1k/stp/low-latency-tep8-1p3d"),
           ("8a02464b", "", 1024, 0, "1k1k/stp/low-latency-tep8-1p1d"),
           ("8a02464b", "", 1024, 1, "1k1k/stp/low-latency-tep8-1p3d"),
           ("8a02464b", "", 1024, 2, "1k1k/stp/max-tpt-dep8-1p5d"),
           ("8a02464b", "", 1024, 3, "1k1k/stp/max-tpt-dep8-2p5d"),
           ("8a02464b", "", 8192, 3, "8k1k/stp/max-tpt-dep8-1p1d"),
           ("8a02464b", "", 8192, 4, "8k1k/stp/max-tpt-dep8-2p1d"),
           ("ee032b37", "-mtp", 1024, 0, "1k1k/mtp/low-latency-tep8-1p1d"),
           ("ee032b37", "-mtp", 1024, 1, "1k1k/mtp/low-latency-tep8-1p3d"),
           ("ee032b37", "-mtp", 8192, 0, "8k1k/mtp/low-latency-tep8-1p1d"),
           ("ee032b37", "-mtp", 8192, 2, "8k1k/mtp/low-latency-tep8-1p6d"))},
}


def sglang_prefill_budget(*, chunked_prefill_size, max_prefill_tokens, max_running_requests,
                          attention_dp):
    """(prompt tokens, requests) one attention-DP rank of an SGLang prefill worker takes into one
    iteration: its chunk and its share of the running requests.

    Formula: Q = min(⌊C / D⌋, P), B = ⌊M / D⌋ (D = 1 without DP attention), C the
    ``--chunked-prefill-size``, P ``--max-prefill-tokens``, M ``--max-running-requests``.
    Ref: SGLang server_args.py ``_handle_data_parallelism`` (``chunked_prefill_size //
    dp_size`` under DP attention); model_runner.py (``max_running_requests // dp_size``); the
    scheduler's PrefillAdder (an iteration takes requests while ``rem_input_tokens`` (P) and
    ``rem_chunk_tokens`` (the chunk) last; a longer prompt is chunked, one chunk a pass).
    Convention: P None: :data:`SGLANG_DEFAULT_MAX_PREFILL_TOKENS`; a Q below one prompt
    chunks it into ⌈ISL / Q⌉ passes of the same total work (the loaded pass keeps one whole
    prompt per rank: :func:`~planner.calc.serving.disagg_context.context_batch_per_rank`).
    Example: B200 FP8 DEP8 (32,768, 32,768, 1,024, 8): 4,096 tokens (four 1K prompts; an 8K
    prompt in two chunks), 128 requests; GB200 FP8 DEP8 (131,072, unset, 30,000, 8): 16,384 and
    3,750.
    """
    pmax = SGLANG_DEFAULT_MAX_PREFILL_TOKENS if max_prefill_tokens is None else max_prefill_tokens
    return (min(chunked_prefill_size // attention_dp, pmax),
            max_running_requests // attention_dp)


@functools.lru_cache(maxsize=1)
def read_recipes() -> dict[str, dict[str, str]]:
    """The shipped resolution, by run id (each record as the CSV spells it)."""
    with open(RECIPES_CSV, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def _layout(rec: dict[str, str], role: str) -> tuple[int, int, int, int, int]:
    """(workers, attention TP, attention DP, moe_tp, moe_ep) of one pool of a recipe."""
    tp, ep = int(rec[f"{role}_tp"]), int(rec[f"{role}_ep"])
    dp = rec[f"{role}_dp_attn"] == "1"
    return (int(rec[f"{role}_num_workers"]), 1 if dp else tp, tp if dp else 1, tp // ep, ep)


def fill_from_recipes(table: RunTable) -> tuple[RunTable, np.ndarray, np.ndarray]:
    """(table with the resolved blank rows filled, filled mask, reason per row): the reason is
    the recipe status' text on a blank disaggregated row the recipes do not determine, ""
    elsewhere. Rows that record their pools, and ids the file does not list, are untouched."""
    recipes = read_recipes()
    blank = (table.mode == "disagg") & ((table.decode_num_workers == 0)
                                        | (table.prefill_num_workers == 0))
    cols: dict[str, Any] = {f"{role}_{k}": np.array(getattr(table, f"{role}_{k}"),
                                    dtype=float if k == "batch_size" else np.int64)
            for role in ROLES for k in ("num_workers", "tp", "attention_dp", "moe_tp", "moe_ep",
                                        "batch_size")}
    filled = np.zeros(len(table), dtype=bool)
    reason = np.full(len(table), "", dtype=object)
    for i in np.flatnonzero(blank):
        rec = recipes.get(str(table.id[i]))
        if rec is None:
            continue
        if rec["status"] not in FILLS:
            reason[i] = STATUS_REASONS[rec["status"]]
            continue
        for role in ROLES:
            lay = _layout(rec, role)
            for k, v in zip(("num_workers", "tp", "attention_dp", "moe_tp", "moe_ep"), lay):
                cols[f"{role}_{k}"][i] = v
        cols["prefill_batch_size"][i] = 1
        cols["decode_batch_size"][i] = table.silicon_concurrency[i] / (
            cols["decode_num_workers"][i] * cols["decode_attention_dp"][i])
        filled[i] = True
    return replace(table, **cols), filled, reason


@functools.lru_cache(maxsize=1)
def _recipes_with_twins() -> dict[str, dict[str, str]]:
    """The recipe records by run id, and by the id of each recorded row that a recipe-settled
    row (``resolved`` or ``mtp``) names as its twin: the same measurement, so the same run and
    recipe (a recorded row two such rows name with different records is left out)."""
    recipes = read_recipes()
    out: dict[str, dict[str, str]] = dict(recipes)
    named: dict[str, list[dict[str, str]]] = {}
    for rec in recipes.values():
        if rec["status"] in (RESOLVED, MTP):
            for twin in (rec.get("twin") or "").split():
                named.setdefault(twin, []).append(rec)
    for twin, recs in named.items():
        if twin not in recipes and len({(r["status"], r["mtp_k"], r["decode_max_batch"])
                                        for r in recs}) == 1:
            out[twin] = recs[0]
    return out


def mtp_draft_tokens(table: RunTable) -> np.ndarray:
    """MTP draft tokens per decode step of every row (0: no speculative decoding): the
    recipe's ``mtp_k`` on the rows it fills with status ``mtp`` and on the recorded rows of
    the same measurements."""
    recipes = _recipes_with_twins()
    out = np.zeros(len(table))
    for i, run_id in enumerate(table.id):
        rec = recipes.get(str(run_id))
        if rec is not None and rec["status"] == MTP:
            out[i] = int(rec["mtp_k"])
    return out


def decode_max_batch(table: RunTable) -> np.ndarray:
    """The decode workers' max_batch_size (requests per attention rank an engine iteration
    runs) the recipe names on the rows it fills and on the recorded rows of the same
    measurements (column ``decode_max_batch``: TensorRT-LLM's recipe files); inf elsewhere
    (not stated: the whole concurrency runs)."""
    recipes = _recipes_with_twins()
    out = np.full(len(table), np.inf)
    for i, run_id in enumerate(table.id):
        rec = recipes.get(str(run_id))
        if rec is not None and rec["status"] in (RESOLVED, MTP) and rec["decode_max_batch"]:
            out[i] = int(rec["decode_max_batch"])
    return out


def recipe_commit(table: RunTable) -> np.ndarray:
    """The InferenceX commit of the recipe that filled each row (status ``resolved`` or
    ``mtp``), on those rows and on the recorded rows of the same measurements; "" elsewhere."""
    recipes = _recipes_with_twins()
    out = np.full(len(table), "", dtype=object)
    for i, run_id in enumerate(table.id):
        rec = recipes.get(str(run_id))
        if rec is not None and rec["status"] in (RESOLVED, MTP):
            out[i] = rec["commit"]
    return out


def recipe_entry(table: RunTable) -> np.ndarray:
    """The InferenceX entry (search-space item, as disagg-recipes.csv spells it, without its
    notes) of the recipe that filled each row, as :func:`recipe_commit`; "" elsewhere."""
    recipes = _recipes_with_twins()
    out = np.full(len(table), "", dtype=object)
    for i, run_id in enumerate(table.id):
        rec = recipes.get(str(run_id))
        if rec is not None and rec["status"] in (RESOLVED, MTP):
            out[i] = rec["entry"].split(" ")[0]
    return out


def prefill_budget(table: RunTable, res: Resolution) -> tuple[np.ndarray, np.ndarray]:
    """(max_num_tokens, max_batch_size) of every row's prefill workers from
    :data:`RECIPE_PREFILL_BUDGET_AT` (by the filling recipe's commit), else
    :data:`RECIPE_PREFILL_BUDGET`; on SGLang rows whose entry :data:`SGLANG_PREFILL_ENTRIES`
    names, its file's per-rank budget (:func:`sglang_prefill_budget`); NaN where the group's
    recipes are not read (the engine's budget, no cap)."""
    tokens, batch = np.full(len(table), np.nan), np.full(len(table), np.nan)
    keys = zip(res.hardware, res.engine, res.model, table.isl.astype(int), recipe_commit(table),
               recipe_entry(table))
    for i, (hw, name, model, isl, commit, entry) in enumerate(keys):
        got = RECIPE_PREFILL_BUDGET_AT.get((hw, name, model, isl, commit[:8]),
                                           RECIPE_PREFILL_BUDGET.get((hw, name, model, isl)))
        file = SGLANG_PREFILL_ENTRIES.get((commit[:8], entry)) if name == "sglang" else None
        if file is not None:
            c, p, m, d = SGLANG_PREFILL_FILES[file]
            got = sglang_prefill_budget(chunked_prefill_size=c, max_prefill_tokens=p,
                                        max_running_requests=m, attention_dp=d)
        if got is not None:
            tokens[i], batch[i] = got
    return tokens, batch


def inferencemax_rows(table: RunTable) -> np.ndarray:
    """Rows measured by InferenceMAX's benchmark: the blank rows the file lists, and the rows
    that record their pools but are the same measurement as one of them (its ``twin``)."""
    recipes = read_recipes()
    twins = {t for rec in recipes.values() for t in (rec.get("twin") or "").split()}
    return np.array([str(i) in recipes or str(i) in twins for i in table.id], dtype=bool)


def recipe_source(run_id: str) -> str:
    """Which recipe filled (or left) a row: entry, commit and status, "" if none listed."""
    rec = read_recipes().get(run_id)
    if rec is None:
        return ""
    if rec["status"] == TWIN:
        return f"twin: {rec['twin']}"
    return f"{rec['status']}: {rec['entry'] or '-'} @ {rec['commit'][:9] or '-'}"
