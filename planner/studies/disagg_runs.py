"""The disaggregated rows of the measured runs (``mode = disagg``): each row's two pools as the
data states them, the planner's TTFT and TPOT for them (:func:`predict_disagg_rows`, the
function :func:`planner.specs.runs.disagg_predictor` hands out), and the error figures per
hardware (:func:`disagg_validation`).

How a row is read (the data's columns, blank or 0 fields 1):
- prefill pool: ``prefill_num_workers`` workers of ``prefill_tp * prefill_attention_dp *
  prefill_pp`` GPUs, ``prefill_batch_size`` prompts per attention rank;
- decode pool: ``decode_num_workers`` workers, ``decode_batch_size`` requests per attention
  rank (where the source records ``silicon_concurrency`` it equals decode batch x decode
  attention DP x decode workers on every such row: the benchmark's concurrency sits on the
  decode pool, spread over its workers and ranks);
- closed loop at the decode pool's requests in flight (the benchmark's concurrency);
- batches and worker counts blank (790 of the shipped 971 rows, all from the source's
  2026-03-25 / 2026-04-06 collections): filled from InferenceMAX's recipes where they
  determine them (planner.specs.disagg_recipes, MTP draft tokens included), else not
  predicted. Those rows give one worker's layout and
  the benchmark's concurrency, not how many workers share it; read as one prefill and one
  decode worker (as this module did) their measured TPOT falls as the concurrency rises
  (DeepSeek-R1, B200, TensorRT-LLM, "TP8 EP8", 1K/1K: 7.0 ms at c4, 3.5 ms at c8, 5.2 and
  11.0 ms at c32, 37.5 ms at c5,152), which no one worker at that batch does, and 293 of them
  do not fit one worker's memory: the rows hide several deployments and worker counts under
  one layout, and no reading of a single row recovers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.specs.run_protocols import LENGTH_RANGE_RATIOS

if TYPE_CHECKING:
    from planner.calc.serving.disagg_workload import PoolLayout
    from planner.specs.runs import Resolution, RunTable

#: Why a disaggregated row that resolves is still not predicted (one text each).
ROW_REASONS = {
    "unrecorded": "disaggregated: worker counts and batches not recorded (the concurrency's "
                  "split over workers unknown)",
    "layout": "{} pool: moe_tp x moe_ep = {} but tp x attention_dp = {}",
    "fit": "the planner's memory model says a {} worker does not fit (the run did: a miss)",
}
#: Prompts per unit of concurrency of the benchmark that measured the InferenceMAX rows (the
#: recipe-filled ones): srt-slurm's sa-bench runs ``--num-prompts $((concurrency * 5))`` at
#: ``--request-rate inf`` after a separate warm-up run (github.com/ishandhanani/srt-slurm,
#: src/srtctl/benchmarks/scripts/sa-bench/bench.sh, the branch InferenceMAX's runners check
#: out). Its first of 5 rounds of clients starts together: a burst share of 1 / 5. It applies
#: to the rows InferenceMAX's workflow measured (:func:`sa_bench_rows`); the other rows name
#: no client: the steady state for them.
SA_BENCH_PROMPTS_PER_CONCURRENCY = 5
#: Prompts per unit of concurrency of Dynamo's own TensorRT-LLM sweep client, which the
#: InferenceMAX GB200 ``dynamo-trt`` entries at :data:`DYNAMO_SWEEP_COMMITS` ran instead of
#: sa-bench: their benchmarks/{gptoss,dsr1}_fp4_gb200_dynamo-trt_slurm.sh clone ai-dynamo/dynamo
#: (release/0.5.1-rc0.20251105 for DeepSeek-R1, .20260105 for gpt-oss), sbatch
#: components/backends/trtllm/performance_sweeps/benchmark_disagg.slurm
#: (``MULTI_ROUND="${MULTI_ROUND:-8}"`` in the versions read, @ 0b6abc8 and 15418a7, not the
#: branches' own: the gpt-oss script passes 22 arguments where those take 2, so for the gpt-oss
#: rows the 8 is inferred, not read), whose scripts/bench.sh runs benchmark_serving.py with ``--num-prompts
#: $((concurrency * multi_round))`` at ``--max-concurrency $concurrency``: one request in eight
#: in the opening burst. Later commits launch srt-slurm's sa-bench (runners/launch_gb200-nv.sh,
#: srtctl).
DYNAMO_SWEEP_PROMPTS_PER_CONCURRENCY = 8
#: The InferenceX commits (nvidia-master.yaml) whose GB200 ``dynamo-trt`` entries ran the
#: Dynamo sweep client (645b97aa: gpt-oss-120b FP4, 2026-01-07; 25506e87:
#: DeepSeek-R1 FP4, 2025-12-05).
DYNAMO_SWEEP_COMMITS = ("645b97aa40b256be330175a649d66c358c685d82",
                        "25506e87c8e4ebce9e45494843e3498aa9f57307")
#: The InferenceMAX client's --random-range-ratio (planner.specs.run_protocols: InferenceX's
#: benchmark-multinode-tmpl.yml RANDOM_RANGE_RATIO 0.8), for the recorded copies of its rows.
INFERENCEMAX_RANGE_RATIO = LENGTH_RANGE_RATIOS[0][1]
#: The KV-cache dtype a run's recipe sets where the engine spec's default (the workload model's
#: rule) differs, by (hardware, engine, model): every stored version of InferenceMAX's B200
#: DeepSeek-R1 SGLang disaggregated recipes sets ``kv-cache-dtype: fp8_e4m3`` on both pools
#: (srt-slurm recipes/b200-fp4/1k1k.yaml @ 3b69129 and recipes/b200-fp8/8k1k.yaml @ 4bc1847;
#: the 13 InferenceX copies benchmarks/multi_node/srt-slurm-recipes/sglang/dsr1/b200-fp4/...),
#: while the SGLang spec keeps BF16 (its ``quantized_kv_cache: false``).
RECIPE_KV_DTYPE = {("b200", "sglang", "deepseek-v3"): "fp8"}
#: The SGLang groups whose attention-DP prefill workers exchange the MoE's tokens all-to-all
#: (DeepEP), by (hardware, engine, model, weights): GB200 FP8 DeepSeek-R1, every recipe read
#: (NVIDIA/srt-slurm recipes/gb200-fp8/{1k1k,8k1k}/{mid-curve,max-tpt,max_tpt}.yaml @ 5063eb43:
#: ``moe-a2a-backend: deepep``, ``deepep-mode: normal``; the earlier entries' launch script,
#: Elnifio/dynamo components/backends/sglang/slurm_jobs/scripts/gb200-fp8.sh:
#: ``--enable-deepep-moe --deepep-mode normal``). Every other SGLang prefill worker read (B200
#: FP8 / NVFP4 ``moe-runner-backend: flashinfer_trtllm``, GB200 NVFP4 ``flashinfer_cutlass``,
#: H200) sets no all-to-all backend, SGLang's default: its DP attention gathers the tokens by
#: all-reduce (:func:`~planner.calc.serving.disagg_context.all_reduce_gather_layout`).
RECIPE_PREFILL_DEEPEP = {("gb200-nvl72", "sglang", "deepseek-v3", "fp8")}
#: Hardware rows of the error table in this order, then "all".
ALL = "all"


@dataclass(frozen=True)
class DisaggPrediction:
    """Per row of the table (NaN / "" where the row is not a predicted disaggregated row)."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    reason: np.ndarray        # "" where predicted; why not otherwise (aggregated rows: "")
    predicted: np.ndarray     # bool: a disaggregated row with both figures


def _pool(table: RunTable, role: str, requests: np.ndarray, moe: np.ndarray) -> PoolLayout:
    from planner.calc.serving.disagg_workload import PoolLayout

    col = {f: getattr(table, f"{role}_{f}") for f in ("tp", "pp", "attention_dp", "moe_tp",
                                                       "moe_ep")}
    workers = np.maximum(getattr(table, f"{role}_num_workers"), 1)
    return PoolLayout(workers=workers, batch=requests / col["attention_dp"], tp=col["tp"],
                      pp=col["pp"], attention_dp=col["attention_dp"],
                      moe_tp=np.where(moe, col["moe_tp"], col["tp"] * col["attention_dp"]),
                      moe_ep=np.where(moe, col["moe_ep"], 1))


def disagg_row_pools(table: RunTable, *, is_moe: np.ndarray) -> tuple[Any, Any, np.ndarray]:
    """(prefill pool, decode pool, reason per row) of every row, read as the module docstring
    says; the reason is "" where both pools are readable."""
    from planner.specs.disagg_recipes import fill_from_recipes

    table, _, recipe_reason = fill_from_recipes(table)
    adp_p, adp_d = table.prefill_attention_dp, table.decode_attention_dp
    pre_requests = np.maximum(table.prefill_batch_size, 1) * adp_p
    # the reader gives a blank batch as 1 and a blank worker count as 0: the data leaves both
    # blank together, so the worker count says whether the row records its pools (or the
    # InferenceMAX recipes filled them: planner.specs.disagg_recipes)
    given = (table.decode_num_workers > 0) & (table.prefill_num_workers > 0)
    dec_requests = table.decode_batch_size * adp_d
    reason = np.full(len(table), "", dtype=object)
    reason[~given] = np.where(recipe_reason[~given] != "", recipe_reason[~given],
                              ROW_REASONS["unrecorded"])
    for role in ("prefill", "decode"):
        experts = getattr(table, f"{role}_moe_tp") * getattr(table, f"{role}_moe_ep")
        attention = getattr(table, f"{role}_tp") * getattr(table, f"{role}_attention_dp")
        for i in np.flatnonzero(is_moe & (experts != attention) & (reason == "")):
            reason[i] = ROW_REASONS["layout"].format(role, experts[i], attention[i])
    ok = reason == ""
    dec_requests = np.where(ok, np.maximum(dec_requests, 1), 1)
    return (_pool(table, "prefill", pre_requests, is_moe),
            _pool(table, "decode", dec_requests, is_moe), reason)


def _take(pool: PoolLayout, idx: np.ndarray) -> PoolLayout:
    from dataclasses import fields, replace

    return replace(pool, **{f.name: np.asarray(getattr(pool, f.name))[idx] for f in fields(pool)})


def client_lengths(table: RunTable) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) tokens per request the benchmark client sent on average, per row: the
    table's own (:mod:`planner.specs.run_protocols`: the InferenceMAX sweeps' drawn lengths),
    and on the recorded copies of the same measurements (``inferencemax_rows``, whose source
    names no client) the same client's mean drawn lengths
    (:func:`~planner.specs.run_protocols.mean_drawn_length` at :data:`INFERENCEMAX_RANGE_RATIO`)."""
    from planner.specs.disagg_recipes import inferencemax_rows
    from planner.specs.run_protocols import mean_drawn_length

    im = inferencemax_rows(table)
    return tuple(np.where(im, mean_drawn_length(getattr(table, k), INFERENCEMAX_RANGE_RATIO),
                          getattr(table, f"mean_{k}")) for k in ("isl", "osl"))


def sa_bench_rows(table: RunTable) -> np.ndarray:
    """Rows whose benchmark client is InferenceMAX's multi-node sa-bench: the recipe-listed
    rows and their recorded copies (:func:`~planner.specs.disagg_recipes.inferencemax_rows`)
    and every row whose source is one of InferenceMAX's sweeps
    (:data:`~planner.specs.run_protocols.LENGTH_RANGE_RATIOS`' sources: the dated sweep files
    and AIConfigurator's ``db-dump/`` rows, each naming its InferenceMAX ``workflow_run_id``).
    The db-dump rows are the same workflow's runs (67 of the shipped disaggregated rows are
    not copies of a listed row): the same client, so the same opening burst."""
    from planner.specs.disagg_recipes import inferencemax_rows
    from planner.specs.run_protocols import LENGTH_RANGE_RATIOS

    swept = np.array([any(p.search(str(s)) for p, _ in LENGTH_RANGE_RATIOS)
                      for s in table.source], dtype=bool)
    return inferencemax_rows(table) | swept


def client_prompts_per_concurrency(table: RunTable) -> np.ndarray:
    """Prompts the benchmark client sent per unit of concurrency, per row (the opening burst
    is one in that many): :data:`DYNAMO_SWEEP_PROMPTS_PER_CONCURRENCY` on the rows whose
    recipe (or the recipe of the measurement they copy) is a GB200 ``dynamo-trt`` entry at
    one of :data:`DYNAMO_SWEEP_COMMITS`, :data:`SA_BENCH_PROMPTS_PER_CONCURRENCY` elsewhere."""
    from planner.specs.disagg_recipes import read_recipes

    recipes = read_recipes()
    sweep = {k for k, r in recipes.items()
             if r["commit"] in DYNAMO_SWEEP_COMMITS and "-gb200-dynamo-trt[" in r["entry"]}
    sweep |= {t for k in sweep for t in (recipes[k].get("twin") or "").split()}
    return np.array([DYNAMO_SWEEP_PROMPTS_PER_CONCURRENCY if str(i) in sweep
                     else SA_BENCH_PROMPTS_PER_CONCURRENCY for i in table.id], dtype=float)


def mtp_acceptance(table: RunTable) -> np.ndarray:
    """Per-draft-token MTP acceptance of every row: on the InferenceMAX rows (the only ones
    with MTP) the rate on random prompts in the model's chat template, which their client
    (srt-slurm's sa-bench) applies (:func:`~planner.calc.serving.speculative.
    chat_template_mtp_acceptance`, InferenceX PR #649); DeepSeek-V3's own figure elsewhere.

    The client's template: sa-bench passes ``--use-chat-template`` unless a recipe's benchmark
    section sets ``use_chat_template: false``: InferenceX 792d8aa4b (2026-04-28) ports
    sa-bench to benchmarks/multi_node/srt_bench.sh with USE_CHAT_TEMPLATE defaulting to true
    and carries "false" over only where a recipe set it; the DeepSeek-R1 TensorRT-LLM recipes
    the MTP rows ran (upstreamed from srt-slurm in 80d98084f, e.g. trtllm/b200-fp8/1k1k/mtp/
    ctx1_gen8_tp8_batch1_eplb0_mtp3_8.yaml) set no such field (the six that do are DeepSeek-V4
    vLLM recipes). Those copies are of srt-slurm's q2 branch; the runs checked out its q1
    branch (sa-submission-q1-2026, not stored here)."""
    from planner.calc.serving.speculative import (DEFAULT_MTP_ACCEPTANCE,
                                                  chat_template_mtp_acceptance)
    from planner.specs.disagg_recipes import inferencemax_rows

    return np.where(inferencemax_rows(table), chat_template_mtp_acceptance(),
                    DEFAULT_MTP_ACCEPTANCE)


def predict_disagg_rows(table: RunTable, resolution: Resolution | None = None,
                        engine_update: dict[str, dict[str, float]] | None = None,
                        overrides: Any = None) -> DisaggPrediction:
    """TTFT and TPOT (s) of every disaggregated row the planner can express: one
    :func:`~planner.calc.serving.disagg_workload.serve_disagg` call per (model, hardware,
    engine, weight formats) group, at the client's mean lengths (:func:`client_lengths`), with
    the recipe's MTP draft tokens (:func:`~planner.specs.disagg_recipes.mtp_draft_tokens`)
    accepted at the rate of the client's prompts (:func:`mtp_acceptance`), the KV cache at the
    recipe's dtype where :data:`RECIPE_KV_DTYPE` names one (else the engine's), the prefill
    workers' budget and cap under load the recipe's
    (:func:`~planner.specs.disagg_recipes.prefill_budget`), SGLang's attention-DP prefill
    workers gathering their tokens by all-reduce unless :data:`RECIPE_PREFILL_DEEPEP` names
    the group;
    ``engine_update`` per engine name overrides engine fields (calibration); ``overrides`` (an
    :class:`~planner.specs.overrides.Overrides`) the hardware and engine deltas it names."""
    from planner import catalog
    from planner.calc.serving.disagg_workload import serve_disagg
    from planner.errors import PlannerError
    from dataclasses import replace

    from planner.specs.disagg_recipes import decode_max_batch, mtp_draft_tokens, prefill_budget
    from planner.specs.load import load_engine
    from planner.specs.overrides import apply_engine_overrides, apply_hardware_overrides
    from planner.specs.runs import DISAGG, resolve

    res = resolve(table) if resolution is None else resolution
    n = len(table)
    ttft, tpot = np.full(n, np.nan), np.full(n, np.nan)
    disagg = table.mode == DISAGG
    moe = np.array([m is not None and catalog.load_model(m).is_moe for m in res.model])
    pre, dec, why = disagg_row_pools(table, is_moe=moe)
    burst = np.where(sa_bench_rows(table), 1.0 / client_prompts_per_concurrency(table), 0.0)
    isl, osl = client_lengths(table)
    drafts, accept = mtp_draft_tokens(table), mtp_acceptance(table)
    pre_tokens, pre_cap = prefill_budget(table, res)
    # the decode engine runs at most its max_batch_size per rank; the other clients wait for
    # a slot (their TTFT holds the wait: the first token streams from the decode worker)
    clients = np.asarray(dec.workers) * np.asarray(dec.attention_dp) * np.asarray(dec.batch)
    dec = replace(dec, batch=np.minimum(dec.batch, decode_max_batch(table)))
    reason = np.where(disagg, np.where(res.reason == "", why, res.reason), "").astype(object)
    todo = disagg & (reason == "")
    keys = list(zip(res.model, res.hardware, res.engine, res.weights_dtype,
                    res.moe_weights_dtype))
    for key in dict.fromkeys(k for k, t in zip(keys, todo) if t):
        idx = np.flatnonzero(todo & np.array([k == key for k in keys]))
        model, hw, name, wd, mwd = key
        eng = apply_engine_overrides(load_engine(name), overrides)
        if engine_update and name in engine_update:
            eng = eng.model_copy(update=engine_update[name])
        try:
            r = serve_disagg(catalog.load_model(model),
                             apply_hardware_overrides(catalog.load_hardware(hw), overrides), eng,
                             isl_tokens=isl[idx], osl_tokens=osl[idx],
                             prefill=_take(pre, idx), decode=_take(dec, idx), weights_dtype=wd,
                             moe_weights_dtype=mwd, burst_share=burst[idx],
                             kv_dtype=RECIPE_KV_DTYPE.get((hw, name, model)),
                             mtp_draft_tokens=drafts[idx], mtp_acceptance=accept[idx],
                             clients=clients[idx], prefill_max_num_tokens=pre_tokens[idx],
                             prefill_max_batch_size=pre_cap[idx],
                             prefill_all_reduce_gather=name == "sglang"
                             and (hw, name, model, wd) not in RECIPE_PREFILL_DEEPEP)
        except PlannerError as exc:        # a spec that lacks what the model needs
            reason[idx] = str(exc)
            continue
        ttft[idx], tpot[idx] = r.state.ttft_s, r.state.tpot_s
        for role, piece in (("prefill", r.prefill), ("decode", r.decode)):
            for i in idx[~np.asarray(piece.memory.fits, dtype=bool)]:
                reason[i] = reason[i] or ROW_REASONS["fit"].format(role)
    predicted = todo & (reason == "")
    ttft[~predicted], tpot[~predicted] = np.nan, np.nan
    return DisaggPrediction(ttft_s=ttft, tpot_s=tpot, reason=reason, predicted=predicted)


@dataclass(frozen=True)
class DisaggErrors:
    """Error figures of one hardware's disaggregated rows (or all of them): counts, median
    |error| and median signed error of TTFT and TPOT (error = planner / measured - 1)."""

    hardware: str
    rows: int                 # disaggregated rows of this hardware
    covered: int              # of them, the catalog has the model and hardware
    expressible: int          # of those, readable layouts (the memory fit aside)
    predicted: int            # of those, both pools fit in the planner's memory model
    ttft_median_abs: float    # NaN without predicted rows
    tpot_median_abs: float
    ttft_median: float
    tpot_median: float
    distinct: int = 0                         # predicted rows, each measurement counted once
    ttft_median_abs_distinct: float = float("nan")
    tpot_median_abs_distinct: float = float("nan")


def first_of_each_measurement(table: RunTable, rows: np.ndarray) -> np.ndarray:
    """Of the rows ``rows`` (a boolean mask), the first of each measurement: the shipped data
    records some runs twice (an InferenceMAX row and the AIConfigurator db-dump copy of the
    same run: same system, TTFT and TPOT to the nanosecond), so a median over rows would weigh
    those runs double."""
    out = np.zeros_like(rows)
    seen: set[tuple[str, float, float]] = set()
    for i in np.flatnonzero(rows):
        key = (str(table.system[i]), round(float(table.measured_ttft_s[i]), 9),
               round(float(table.measured_tpot_s[i]), 9))
        if key not in seen:
            seen.add(key)
            out[i] = True
    return out


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def disagg_validation(table: RunTable, prediction: DisaggPrediction | None = None,
                      resolution: Resolution | None = None) -> list[DisaggErrors]:
    """The planner's disaggregated TTFT and TPOT beside the measured ones, per hardware and
    over all: the rows, the covered ones, the expressible ones, the predicted ones and the
    median errors (every predicted row counted: misses stay in)."""
    from planner.specs.runs import DISAGG, REASONS, resolve

    res = resolve(table) if resolution is None else resolution
    pred = predict_disagg_rows(table, res) if prediction is None else prediction
    disagg = table.mode == DISAGG
    uncovered = tuple(REASONS[k].split("{")[0] for k in ("model", "system", "hardware"))
    covered = disagg & np.array([not str(r).startswith(uncovered) for r in res.reason])
    readable = covered & np.array([not str(r).startswith(("disaggregated:", "prefill pool",
                                                          "decode pool"))
                                   and (r == "" or str(r).startswith("the planner's memory"))
                                   for r in pred.reason])
    err_t = pred.ttft_s / table.measured_ttft_s - 1
    err_p = pred.tpot_s / table.measured_tpot_s - 1
    once = first_of_each_measurement(table, disagg & pred.predicted)
    out = []
    names = [h for h in dict.fromkeys(res.hardware[covered]) if h is not None]
    for name in sorted(names) + [ALL]:
        on = disagg & (True if name == ALL else (res.hardware == name))
        p, d = on & pred.predicted, on & once
        out.append(DisaggErrors(
            hardware=name, rows=int(on.sum()), covered=int((on & covered).sum()),
            expressible=int((on & readable).sum()), predicted=int(p.sum()),
            ttft_median_abs=_median(np.abs(err_t[p])), tpot_median_abs=_median(np.abs(err_p[p])),
            ttft_median=_median(err_t[p]), tpot_median=_median(err_p[p]), distinct=int(d.sum()),
            ttft_median_abs_distinct=_median(np.abs(err_t[d])),
            tpot_median_abs_distinct=_median(np.abs(err_p[d]))))
    return out


def not_predicted(table: RunTable, prediction: DisaggPrediction) -> dict[str, int]:
    """Disaggregated rows not predicted, counted by reason."""
    from collections import Counter

    from planner.specs.runs import DISAGG

    left = (table.mode == DISAGG) & ~prediction.predicted
    return dict(Counter(str(r) for r in prediction.reason[left]))
