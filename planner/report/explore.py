"""Tables of the exploration commands: ``planner compare`` and ``planner sweep``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from planner.report.formats import (fmt_bytes, fmt_count_si, fmt_gflop, fmt_ratio, fmt_seconds,
                                    fmt_value)
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.studies.compare import ContextCurve, ModelRow
    from planner.studies.sweep import SweepResult


# ----------------------------------------------------------------------------- compare
def _compare_record(r: ModelRow, hardware: list[str], *, context_tokens: int,
                    seq_len: int) -> dict[str, Any]:
    record = {
        "model": r.model, "attention": r.attention, "ffn": r.ffn,
        "params_total": r.params_total, "params_activated": r.params_activated,
        "kv_cache_bytes_per_token": r.kv_cache_bytes_per_token,
        "kv_multiplier_vs_first": r.kv_multiplier_vs_first,
        "decode_bytes_per_step": r.decode_bytes_per_step, "context_tokens": context_tokens,
        "forward_flops_per_token": r.forward_flops_per_token,
        "train_flops_per_token": r.train_flops_per_token, "seq_len": seq_len,
    }
    for h in hardware:
        ep = r.ep[h]
        record[f"max_context_tokens_per_gpu.{h}"] = r.max_context_tokens_per_gpu[h]
        record[f"ep_ceiling_tokens_per_s.{h}"] = (ep.ep_ceiling_tokens_per_s if ep is not None
                                                  else None)
    return record


def _compare_table_heads(hardware: list[str], *, context_tokens: int,
                         seq_len: int) -> tuple[Table, Table, Table]:
    from planner.studies.compare import KV_DTYPE

    mem = Table(f"Memory: KV cache ({KV_DTYPE.upper()}) and decode reads at "
                f"C = {context_tokens:,} (MLA vs GQA)",
                ["model", "attention", "KV / token", "vs first", "decode bytes / step",
                 *[f"max context: {h}" for h in hardware]], align="LLrrr" + "r" * len(hardware))
    comp = Table(f"Compute: parameters and FLOPs per token (s = {seq_len:,}, exact-causal)",
                 ["model", "FFN", "params total", "params activated", "forward FLOPs / token",
                  "train FLOPs / token"], align="LLrrrr")
    comm = Table("Communication: EP decode ceiling (peak bandwidth, paper §2.3.2 defaults)",
                 ["model", *[f"{h}: tokens/s (TPOT)" for h in hardware]],
                 align="L" + "r" * len(hardware))
    return mem, comp, comm


def _ep_cell(rec: dict[str, Any], r: ModelRow, h: str) -> str:
    """The EP ceiling on ``h``: tokens/s (TPOT), or n/a for a dense model."""
    ep = r.ep[h]
    if ep is None:
        return "n/a (dense)"
    return f"{rec[f'ep_ceiling_tokens_per_s.{h}']:,.1f} ({fmt_seconds(ep.ep_ceiling_tpot_s)})"


def compare_tables(rows: list[ModelRow], hardware: list[str], *, context_tokens: int,
                   seq_len: int) -> list[Table]:
    """Memory, compute and communication side by side (see :mod:`planner.studies.compare`)."""
    from planner.calc.ep import PAPER_TOKENS_PER_DEVICE
    from planner.studies.compare import WEIGHT_DTYPE

    mem, comp, comm = _compare_table_heads(hardware, context_tokens=context_tokens,
                                           seq_len=seq_len)
    for r in rows:
        rec = _compare_record(r, hardware, context_tokens=context_tokens, seq_len=seq_len)
        ctx = [rec[f"max_context_tokens_per_gpu.{h}"] for h in hardware]
        mem.add(rec, [rec["model"], rec["attention"].upper(),
                      fmt_bytes(rec["kv_cache_bytes_per_token"]),
                      fmt_ratio(rec["kv_multiplier_vs_first"]),
                      fmt_bytes(rec["decode_bytes_per_step"]),
                      *["weights do not fit" if c is None else f"{c:,}" for c in ctx]])
        comp.rows.append([rec["model"], rec["ffn"], fmt_count_si(rec["params_total"]),
                          fmt_count_si(rec["params_activated"]),
                          fmt_gflop(rec["forward_flops_per_token"]),
                          fmt_gflop(rec["train_flops_per_token"])])
        comm.rows.append([rec["model"], *[_ep_cell(rec, r, h) for h in hardware]])
    weights = WEIGHT_DTYPE.upper()
    mem.notes.append("max context: tokens of one sequence's KV cache one scale-up domain holds "
                     "(EP = TP = its GPUs): (usable memory - 10% workspace - stored "
                     f"{weights} weights per GPU) / KV per token per GPU (GQA's split by TP, "
                     "MLA's latent whole on every GPU). Decode bytes: activated "
                     f"{weights} weights + the whole KV cache, one sequence.")
    comm.notes.append("EP ceiling: one routed expert per GPU, "
                      f"{PAPER_TOKENS_PER_DEVICE} tokens per GPU, FP8 dispatch "
                      "with scales, BF16 combine, two micro-batches, computation hidden.")
    return [mem, comp, comm] if hardware else [mem, comp]


# ----------------------------------------------------------------------------- sweep
#: Rows a terminal table of a sweep shows (CSV and JSON carry every point).
SWEEP_TABLE_ROWS = 40


def sweep_table(result: SweepResult, records: Sequence[dict[str, Any]], unit: str) -> Table:
    """The sweep's points, every ``len(records) // SWEEP_TABLE_ROWS``-th on the terminal; JSON
    and CSV read ``records`` one by one as they are written (it may make them as they are
    read)."""
    names = list(result.names)
    t = Table(f"Sweep of {result.metric} for {result.model} on {result.hardware} "
              f"({len(records):,} points)", [*names, result.metric], align="r" * (len(names) + 1))
    step = max(1, len(records) // SWEEP_TABLE_ROWS)
    for rec in records[::step]:
        value = rec[result.metric]
        t.rows.append([f"{rec[n]:,.6g}" for n in names]
                      + [fmt_value(value, unit) if value == value else "n/a (does not fit)"])
    t.streamed_records, t.columns = records, [*names, result.metric]
    if step > 1:
        t.notes.append(f"Every {step:,}th point shown; --format csv or json gives all "
                       f"{len(records):,}.")
    return t


# ----------------------------------------------------------------------------- compare: context
def context_tables(curves: list[ContextCurve]) -> list[Table]:
    """KV cache per sequence and decode reads per query against context (the crossover table
    where a windowed, sparse or hybrid design beats the first model), and one decode query's
    attention by part."""
    from planner.studies.compare import CROSSOVER_MAX_TOKENS, KV_DTYPE

    first = curves[0]
    heads = [f"C = {c:,}" for c in first.contexts]

    def since(c: int | None) -> str:
        return "-" if c is None else ("always" if c == 1 else f"C >= {c:,}")

    tables = []
    for title, key, cross in (
            (f"KV cache per sequence against context ({KV_DTYPE.upper()}; linear layers' state "
             "and DSA indexer keys included)", "kv_bytes_per_sequence", "cache_below_first_from"),
            ("Decode: cache bytes one query reads against context (windows cap at W, DSA reads "
             "top-k + the indexer's keys, linear layers read and write their state)",
             "read_bytes_per_query", "read_below_first_from")):
        t = Table(title, ["model", "attention", *heads, f"below {first.model}"],
                  align="LL" + "r" * (len(heads) + 1))
        for cv in curves:
            values = getattr(cv, key)
            rec: dict[str, Any] = {"model": cv.model, "attention": cv.attention,
                                   "contexts": list(cv.contexts), key: list(values),
                                   cross: getattr(cv, cross)}
            t.add(rec, [cv.model, cv.attention, *[fmt_bytes(v) for v in values],
                        "(reference)" if cv is first else since(getattr(cv, cross))])
        t.notes.append(f"below {first.model}: the contexts (searched to "
                       f"{CROSSOVER_MAX_TOKENS:,}) from which the model's figure stays below "
                       f"{first.model}'s; '-': never.")
        tables.append(t)
    parts = Table("Decode: one query's attention by part (all layers, one GPU)",
                  ["model", "part", *heads], align="LL" + "r" * len(heads))
    for cv in curves:
        for name, values in cv.flops_parts.items():
            fmt = fmt_bytes if name.endswith("bytes read") else fmt_gflop
            parts.add({"model": cv.model, "part": name, "contexts": list(cv.contexts),
                       "values": list(values)}, [cv.model, name, *[fmt(v) for v in values]])
    parts.notes.append("core: scores and values over the positions attended (all C, min(C, W) "
                       "in a window, min(C, top-k) under DSA); indexer: DSA's scan of every "
                       "cached key; linear: the Gated DeltaNet state's updates.")
    tables.append(parts)
    return tables


def pyplot(path: str, *, hint: str = "") -> Any:
    """matplotlib.pyplot on the Agg backend, for a ``--plot`` to ``path``; a one-line UsageError
    when matplotlib is missing (how to install it, then ``hint``) or ``path`` is not a .png or
    .svg file. The one import of matplotlib that compare, sweep and plan plots share."""
    from planner.errors import UsageError

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from planner import __distribution__

        raise UsageError(f"--plot needs matplotlib: pip install '{__distribution__}[plot]' (in a "
                         f"source checkout: pip install '.[plot]'){hint}") from None
    if not path.endswith((".png", ".svg")):
        raise UsageError(f"--plot {path!r}: expected a .png or .svg file")
    return plt


def save_plot(plt: Any, fig: Any, path: str) -> None:
    """Write ``fig`` to ``path`` (.png or .svg, as :func:`pyplot` checked) and close it; a
    one-line SpecError naming the file when it cannot be written. The one writer that compare,
    sweep and plan plots share."""
    try:
        fig.savefig(path, format="svg" if path.endswith(".svg") else "png")
    except OSError as exc:
        from planner.errors import SpecError

        raise SpecError(f"cannot write the plot ({exc.strerror or exc})", file=path) from None
    finally:
        plt.close(fig)
