"""Measured serving runs in the column format of AIConfigurator's silicon accuracy set
(``planner/data/serving-runs.csv`` and its README; a user's own runs in the same columns).

:func:`read_runs` reads a CSV into a :class:`RunTable` of numpy columns, one entry per row, in
base units (seconds), or refuses it with one line naming the file, row and column.
:func:`resolve` says, per row, which catalog model, hardware and engine express it, at which
weight formats, or why the planner cannot express it yet (:data:`REASONS`: each reason once).

Layout convention of the data: one replica (a "worker") has ``tp * attention_dp * pp`` GPUs;
the MoE experts are split over ``moe_tp * moe_ep = tp * attention_dp`` GPUs; blank or 0 layout
fields mean 1. An aggregated row's ``batch_size`` is the concurrency per attention-DP rank, so
the requests in flight per replica are ``batch_size * attention_dp``; the source's
``silicon_concurrency=`` (in ``silicon_data_source``) is checked against it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np

from planner.catalog import HARDWARE_IDS
from planner.errors import SpecError
from planner.units import MS
from planner.specs.run_protocols import READ_AS_RUN, read_as_run
from planner.specs.yaml_reader import read_text_file

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware

#: Largest runs file read (bytes) and most rows: the shipped file is 1.3 MB and 3,702 rows.
MAX_RUNS_FILE_BYTES, MAX_RUNS_ROWS = 64 * 2**20, 1_000_000
#: Largest prompt or output length a run may give (tokens; the deployment specs' context bound).
MAX_RUN_TOKENS = 2**30
#: Largest layout size, batch or worker count a run may give: a product of four stays in int64.
MAX_RUN_SIZE = 2**15
#: Serving modes: aggregated (prefill and decode on the same workers) or disaggregated.
AGG, DISAGG = "agg", "disagg"
#: A layout as the data names it (``tp_size``...); prefixed ``prefill_``/``decode_`` in disagg.
LAYOUT_FIELDS = ("tp", "pp", "attention_dp", "moe_tp", "moe_ep")
ROLE_FIELDS = LAYOUT_FIELDS + ("batch_size", "num_workers")
TEXT_COLUMNS = ("id", "silicon_data_source", "backend", "backend_version", "model_path",
                "system", "precision", "mode", "gemm_quant_mode", "moe_quant_mode")
#: Every column the reader needs (others are ignored), as the data spells them.
COLUMNS = (TEXT_COLUMNS + ("isl", "osl", "batch_size")
           + tuple(f"{f}_size" for f in LAYOUT_FIELDS)
           + tuple(f"{role}_{f}" if f in ("batch_size", "num_workers") else f"{role}_{f}_size"
                   for role in ("prefill", "decode") for f in ROLE_FIELDS)
           + ("silicon_ttft_ms", "silicon_tpot_ms"))
_CONCURRENCY = re.compile(r"silicon_concurrency=(\d+)")

#: The data's ``system`` -> the catalog's hardware name (the catalog's own table).
SYSTEM_HARDWARE = HARDWARE_IDS
#: The data's ``backend`` -> the serving engine spec (``engines/<name>.yaml``).
BACKEND_ENGINE = {"trtllm": "trtllm", "vllm": "vllm", "sglang": "sglang"}
#: The data's ``gemm_quant_mode`` / ``moe_quant_mode`` -> the planner's weight format (blank:
#: the checkpoint's BF16). FP8 per-tensor and FP8 128x128 blocks are both FP8 weights.
QUANT_DTYPES = {"": "bf16", "bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8",
                "nvfp4": "nvfp4", "int4_wo": "int4"}
#: 4-bit weight formats: native FP4 where the device has an FP4 peak, else weight-only (4 bits
#: plus scales streamed, computed at BF16: planner.calc.serving.efficiency.kernel_precision).
FOUR_BIT = ("fp4", "nvfp4", "int4")

#: Why a row cannot be expressed: every reason's text, once (a ``{}`` takes the detail).
REASONS = {
    "attention": "attention kind not yet modelled: {}",
    "disagg": "disaggregated: not yet modelled",
    "model": "model not in the catalog: {}",
    "system": "hardware {} is not mapped to a catalog device",
    "hardware": "hardware {} is not in the catalog",
    "backend": "serving engine {} is not known",
    "quant": "precision {} is not known",
    "dtype": "precision {} is not yet representable",
    "no_peak": "{}: the hardware spec gives no {} peak",
    "layout": "layout: moe_tp x moe_ep = {} but tp x attention_dp = {}",
    "heads": "layout: tp {} does not divide the model's {} attention heads (a disaggregated "
             "or multi-replica deployment listed as one TP group)",
    "concurrency": "concurrency: batch_size x attention_dp = {} but silicon_concurrency = {}",
    "no_concurrency": "concurrency not recorded (no silicon_concurrency)",
}
#: Hugging Face ids (case-folded) whose attention needs a per-layer pattern (sliding windows,
#: sparse or linear layers) -> what it is. Such a row is refused until the catalog model that
#: lists the id states its pattern (``attention_layers``, helper ``attention``).
ATTENTION_PENDING = {
    "openai/gpt-oss-120b": "gpt-oss alternates sliding-window (128) and full layers",
    "qwen/qwen3.5-397b-a17b": "Qwen3.5 hybrid linear (Gated DeltaNet) and full attention",
    "zhipuai/glm-5": "GLM-5 DeepSeek sparse attention (DSA)",
    "zai-org/glm-5": "GLM-5 DeepSeek sparse attention (DSA)",
    "deepseek-ai/deepseek-v3.2": "DeepSeek sparse attention (DSA)",
}


def disagg_predictor() -> Callable[..., Any] | None:
    """The one hook for disaggregated rows: the function that predicts them (helper
    ``disagg``), or None while the planner has none; :func:`resolve` then gives those rows
    ``REASONS["disagg"]``. Set: :func:`planner.studies.disagg_runs.predict_disagg_rows`
    (``(table, resolution) -> DisaggPrediction``: per row TTFT and TPOT in s, NaN where not
    predicted, and the reason)."""
    from planner.studies.disagg_runs import predict_disagg_rows

    return predict_disagg_rows


@dataclass(frozen=True)
class RunTable:
    """Measured runs as numpy columns (one entry per row). Layout fields are >= 1 (blank or 0:
    1; a disaggregated row's pool sizes other than MoE's: blank or >= 1); counts a row lacks
    (an aggregated row's prefill_*, ``silicon_concurrency`` unsourced) are 0. Times in s."""

    path: str
    id: np.ndarray
    source: np.ndarray            # silicon_data_source
    backend: np.ndarray
    backend_version: np.ndarray
    model_path: np.ndarray
    system: np.ndarray
    precision: np.ndarray
    gemm_quant_mode: np.ndarray
    moe_quant_mode: np.ndarray
    mode: np.ndarray
    isl: np.ndarray
    osl: np.ndarray
    batch_size: np.ndarray
    concurrency: np.ndarray       # per replica: batch_size * attention_dp (agg rows)
    mean_isl: np.ndarray          # the mean input and output lengths the client sent (tokens):
    mean_osl: np.ndarray          # isl, osl unless the source draws them (run_protocols)
    layout_reread: np.ndarray     # True: the source's multiplied layout read as run
    recv_interval: np.ndarray     # the run's launch flags (run_protocols): SGLang's recv
    max_running: np.ndarray       # interval, max running requests; vLLM's FP8 KV (1) and
    kv_fp8: np.ndarray            # --max-num-batched-tokens (tokens); 0: the engine's defaults
    max_num_tokens: np.ndarray
    silicon_concurrency: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    attention_dp: np.ndarray
    moe_tp: np.ndarray
    moe_ep: np.ndarray
    prefill_batch_size: np.ndarray
    prefill_num_workers: np.ndarray
    prefill_tp: np.ndarray
    prefill_pp: np.ndarray
    prefill_attention_dp: np.ndarray
    prefill_moe_tp: np.ndarray
    prefill_moe_ep: np.ndarray
    decode_batch_size: np.ndarray
    decode_num_workers: np.ndarray
    decode_tp: np.ndarray
    decode_pp: np.ndarray
    decode_attention_dp: np.ndarray
    decode_moe_tp: np.ndarray
    decode_moe_ep: np.ndarray
    measured_ttft_s: np.ndarray
    measured_tpot_s: np.ndarray

    def __len__(self) -> int:
        return len(self.id)

    def take(self, index: Any) -> RunTable:
        """The rows at ``index`` (a boolean mask or integer indices), as a table."""
        return RunTable(self.path, **{f.name: getattr(self, f.name)[index]
                                      for f in fields(self) if f.name != "path"})


def _column_of(name: str) -> str:
    """The CSV column of a :class:`RunTable` field."""
    if name == "source":
        return "silicon_data_source"
    if name.startswith("measured_"):
        return f"silicon_{name.removeprefix('measured_').removesuffix('_s')}_ms"
    bare = name.split("_", 1)[1] if name.startswith(("prefill_", "decode_")) else name
    return f"{name}_size" if bare in LAYOUT_FIELDS else name


def _number(text: str, *, where: str, row: int, column: str, integer: bool,
            blank: float, low: float = 0.0, high: float = float("inf")) -> float:
    """``text`` as a finite number in ``low`` .. ``high`` (a measured time: above ``low``;
    blank: ``blank``), or a one-line SpecError."""
    text = text.strip()
    if not text:
        if blank < 0:
            raise SpecError("a number is required here (blank)", file=where,
                            field=f"row {row}, column {column}")
        return blank
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if (not np.isfinite(value) or value < low or value > high or (not integer and value <= low)
            or (integer and value != int(value))):
        kind = (f"a whole number in {low:,.0f} .. {high:,.0f}" if integer
                else f"a finite number > {low:g}")
        raise SpecError(f"expected {kind}, got {text[:40]!r}", file=where,
                        field=f"row {row}, column {column}")
    return value


def _parse_rows(text: str, where: str) -> tuple[list[str], list[list[str]]]:
    """(header, data rows) of the CSV ``text``; a SpecError for a missing column, a short row,
    too many rows, malformed CSV."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SpecError(f"not a valid CSV file ({exc})", file=where) from None
    if not rows:
        raise SpecError("file is empty, expected a header row of columns", file=where)
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if any(c.strip() for c in r)]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SpecError(f"missing column(s) {', '.join(missing)} (the format of "
                        "planner/data/serving-runs.csv)", file=where, field="header")
    if not body:
        raise SpecError("no runs: the file has only a header row", file=where)
    if len(body) > MAX_RUNS_ROWS:
        raise SpecError(f"more than {MAX_RUNS_ROWS:,} rows", file=where)
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise SpecError(f"{len(r)} fields, the header has {len(header)}", file=where,
                            field=f"row {n}")
    return header, body


def read_runs(path: str | Path) -> RunTable:
    """The measured runs of the CSV at ``path`` as a :class:`RunTable`; a one-line SpecError
    naming the file, row (the file's line) and column otherwise."""
    where = str(path)
    text, _ = read_text_file(Path(path), limit=MAX_RUNS_FILE_BYTES, what="a CSV file of runs")
    header, body = _parse_rows(text, where)
    col = {name: header.index(name) for name in COLUMNS}
    out: dict[str, Any] = {}
    disagg = [r[col["mode"]].strip() == DISAGG for r in body]    # their pools' sizes: >= 1
    for f in fields(RunTable):
        if f.name in ("path", "concurrency", "silicon_concurrency", *READ_AS_RUN):
            continue
        column = _column_of(f.name)
        cells = [r[col[column]] for r in body]
        if column in TEXT_COLUMNS:
            out[f.name] = np.array([c.strip() for c in cells], dtype=object)
            continue
        measured, layout = f.name.startswith("measured_"), column.endswith("_size")
        tokens = column in ("isl", "osl")
        pool = column.startswith(("prefill_", "decode_")) and "_moe_" not in column
        values = [_number(c, where=where, row=n, column=column, integer=not measured,
                          blank=-1.0 if measured or tokens else 0.0,
                          low=1.0 if tokens or (pool and disagg[n - 2]) else 0.0,
                          high=(MAX_RUN_TOKENS if tokens else float("inf") if measured
                                else MAX_RUN_SIZE))
                  for n, c in enumerate(cells, start=2)]
        array = np.array(values, dtype=float) * (MS if measured else 1)
        out[f.name] = array if measured else np.maximum(array, 1 if layout else 0).astype(np.int64)
    found = [_CONCURRENCY.search(s) for s in out["source"]]
    for n, m in enumerate(found, start=2):
        if m and int(m.group(1)) > MAX_RUN_SIZE**2:
            raise SpecError(f"silicon_concurrency above {MAX_RUN_SIZE**2:,}: "
                            f"{m.group(1)[:40]!r}", file=where,
                            field=f"row {n}, column silicon_data_source")
    out["silicon_concurrency"] = np.array([int(m.group(1)) if m else 0 for m in found],
                                          dtype=np.int64)
    out["concurrency"] = np.where(out["mode"] == AGG, out["batch_size"] * out["attention_dp"],
                                  out["silicon_concurrency"])
    read_as_run(out)
    return RunTable(where, **out)


class Resolution(NamedTuple):
    """Per row (object arrays): the catalog model, hardware and engine names, the weight
    formats (``moe_weights_dtype`` None for a dense model), the model family (the catalog
    model, else the Hugging Face id) and the reason the planner cannot express the row ("" where
    it can). Model and hardware are given wherever the catalog has them, whatever the reason;
    the engine and weight formats only where the row is otherwise expressible."""

    model: np.ndarray
    hardware: np.ndarray
    engine: np.ndarray
    weights_dtype: np.ndarray
    moe_weights_dtype: np.ndarray
    reason: np.ndarray
    family: np.ndarray


def _catalog_model(name: str) -> Any:
    """The catalog model ``name`` (its notes are printed only where its numbers are)."""
    from planner import catalog
    from planner.specs.load import load_model_file

    return load_model_file(catalog.catalog_dir("model") / f"{name}.yaml")


def _hardware(system: str) -> tuple[Hardware | None, str]:
    """(the catalog hardware of the data's ``system``, "") or (None, the reason)."""
    from planner import catalog

    name = SYSTEM_HARDWARE.get(system)
    if name is None:
        return None, REASONS["system"].format(repr(system))
    if catalog._catalog_file("hardware", name) is None:
        return None, REASONS["hardware"].format(name)
    return catalog.load_hardware(name), ""


def _dtype(mode: str, hw: Hardware) -> tuple[str | None, str]:
    """(the planner's weight format of the data's quant ``mode`` on ``hw``, "") or (None, the
    reason)."""
    from planner import vocab

    dtype = QUANT_DTYPES.get(mode)
    if dtype is None:
        return None, REASONS["quant"].format(repr(mode))
    if dtype not in vocab.SERVING_WEIGHT_DTYPES:
        return None, REASONS["dtype"].format(f"{mode} ({dtype} weights)")
    if dtype not in FOUR_BIT and getattr(hw.gpu.peak_dense_tflop_per_s, dtype, None) is None:
        return None, REASONS["no_peak"].format(f"{mode or 'bf16'} on {hw.name}", dtype.upper())
    return dtype, ""


def _resolve_key(model_path: str, system: str, backend: str, gemm: str,
                 moe: str) -> tuple[str | None, str | None, str | None, str | None, str | None,
                                    str, str]:
    """(model, hardware, engine, weights dtype, MoE weights dtype, reason, family) of one
    combination of the data's names."""
    from planner import catalog

    model = catalog.model_of_hf_id(model_path)
    family = model or model_path
    hw, hw_why = _hardware(system)
    hw_name = hw.name if hw is not None else None
    pending = ATTENTION_PENDING.get(model_path.casefold())
    if pending is not None and (model is None or
                                not getattr(_catalog_model(model), "attention_layers", None)):
        return model, hw_name, None, None, None, REASONS["attention"].format(pending), family
    if model is None:
        return None, hw_name, None, None, None, REASONS["model"].format(model_path), family
    if hw is None:
        return model, None, None, None, None, hw_why, family
    engine = BACKEND_ENGINE.get(backend)
    if engine is None:
        return model, hw.name, None, None, None, REASONS["backend"].format(repr(backend)), family
    weights, why = _dtype(gemm, hw)
    moe_weights: str | None = None
    if weights is not None and _catalog_model(model).is_moe:
        moe_weights, why = _dtype(moe, hw)
    if why:
        return model, hw.name, engine, None, None, why, family
    return model, hw.name, engine, weights, moe_weights, "", family


def _row_reasons(table: RunTable, is_moe: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Per row, the reason its layout or concurrency cannot be taken as the data states it ("" for
    none): an MoE split that does not cover the attention GPUs, a concurrency that disagrees
    with the source's, or none recorded; a disaggregated row, until :func:`disagg_predictor`."""
    agg = table.mode == AGG
    experts, attention = table.moe_tp * table.moe_ep, table.tp * table.attention_dp
    reasons = np.full(len(table), "", dtype=object)
    for i in np.flatnonzero(agg & (table.silicon_concurrency == 0)):
        reasons[i] = REASONS["no_concurrency"]
    for i in np.flatnonzero(agg & (table.silicon_concurrency > 0)
                            & (table.silicon_concurrency != table.concurrency)):
        reasons[i] = REASONS["concurrency"].format(table.concurrency[i],
                                                   table.silicon_concurrency[i])
    for i in np.flatnonzero(agg & is_moe & (experts != attention)):
        reasons[i] = REASONS["layout"].format(experts[i], attention[i])
    # TP splits the heads (GB200 TP 12..72: InferenceX launch_gb200-nv.sh, disaggregated runs)
    for i in np.flatnonzero(agg & (heads > 0) & (heads % np.maximum(table.tp, 1) != 0)):
        reasons[i] = REASONS["heads"].format(table.tp[i], heads[i])
    if disagg_predictor() is None:
        reasons[table.mode != AGG] = REASONS["disagg"]
    return reasons


def resolve(table: RunTable) -> Resolution:
    """Per row of ``table``: the catalog model (by Hugging Face id), hardware (by the data's
    system id), engine (by backend) and weight formats that express it, or the reason the
    planner cannot (model, hardware, engine and precision first, then layout and concurrency)."""
    keys = list(zip(table.model_path, table.system, table.backend, table.gemm_quant_mode,
                    table.moe_quant_mode))
    done = {key: _resolve_key(*key) for key in dict.fromkeys(keys)}
    cols = [np.array([done[k][j] for k in keys], dtype=object) for j in range(7)]
    model, reason = cols[0], cols[5]
    moe = {m: _catalog_model(m).is_moe for m in set(model) if m is not None}
    is_moe = np.array([moe.get(m, False) for m in model], dtype=bool)
    n_heads = {m: _catalog_model(m).attention.num_heads for m in set(model) if m is not None}
    heads = np.array([n_heads.get(m, 0) for m in model], dtype=np.int64)
    rows = _row_reasons(table, is_moe, heads)
    reason = np.where(reason == "", rows, reason)
    return Resolution(model=cols[0], hardware=cols[1], engine=cols[2], weights_dtype=cols[3],
                      moe_weights_dtype=cols[4], reason=reason, family=cols[6])


def concurrency_exceptions(table: RunTable) -> list[tuple[str, int, int, int]]:
    """The aggregated rows whose ``batch_size * attention_dp`` is not the source's
    ``silicon_concurrency`` (0 where the source gives none): (id, batch_size, attention_dp,
    silicon_concurrency)."""
    agg = table.mode == AGG
    odd = np.flatnonzero(agg & (table.silicon_concurrency != table.concurrency))
    return [(str(table.id[i]), int(table.batch_size[i]), int(table.attention_dp[i]),
             int(table.silicon_concurrency[i])) for i in odd]
