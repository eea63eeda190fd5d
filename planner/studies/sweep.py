"""Design-space sweeps: vary one or two inputs of a model, hardware or deployment and compute a
metric at every point, vectorized with numpy (the calculators take arrays unchanged).

Variables (:data:`VARIABLES`) and metrics (:data:`SWEEP_METRICS`) are named as in the specs and
the metric vocabulary. A range is ``start:stop:linN`` (N points, linear), ``start:stop:logN`` (N
points, geometric) or a list ``a,b,c``; two ``--vary`` make a grid (every pair).

The EP metrics follow :func:`planner.calc.ep.ep_decode_limit` (FP8 dispatch with DeepEP scales,
BF16 combine, link = scale-up when the EP group fits in the domain, else scale-out, at peak);
the KV metrics :mod:`planner.calc.kv_cache` (BF16).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from planner.errors import UsageError
from planner.studies.sweep_workload import (WORKLOAD_CHUNK_POINTS, WORKLOAD_SWEEP_METRICS,
                                            WORKLOAD_VARIABLES, ZERO_ALLOWED,
                                            check_workload_vary, workload_sweep_metric)

if TYPE_CHECKING:
    import numpy as np

    from planner.specs.hardware import Hardware
    from planner.specs.model import Model


@dataclass(frozen=True)
class Variable:
    name: str
    unit: str           # for axis labels
    integer: bool
    description: str
    zero_ok: bool = False     # a sweep may start at 0 (else every value must be positive)


VARIABLES = {v.name: v for v in (
    Variable("num_layers", "layers", True, "model layers"),
    Variable("hidden_size", "", True, "model hidden size"),
    Variable("kv_lora_rank", "", True, "MLA latent dimension d_c (MLA models)"),
    Variable("qk_rope_head_dim", "", True, "MLA decoupled RoPE key dimension (MLA models)"),
    Variable("num_kv_heads", "heads", True, "KV heads (GQA models)"),
    Variable("head_dim", "", True, "head dimension (GQA models)"),
    Variable("experts_per_token", "experts", True, "experts each token is sent to (EP)"),
    Variable("tokens_per_device", "tokens", False, "tokens each GPU decodes at once (EP)"),
    Variable("ep_size", "GPUs", True, "EP group size"),
    Variable("micro_batches", "", True, "overlapped micro-batches"),
    Variable("context_tokens", "tokens", True, "tokens per sequence in the KV cache"),
    Variable("batch", "sequences", True, "sequences in the KV cache"),
    Variable("nic_bandwidth_gb_per_s", "GB/s", False,
             "scale-out bandwidth per GPU, unidirectional"),
    Variable("nvlink_bandwidth_gb_per_s", "GB/s", False,
             "scale-up bandwidth per GPU, unidirectional"),
)}

#: metric -> (unit, description)
SWEEP_METRICS = {
    "kv_cache_bytes_per_token": ("bytes", "KV cache per token, BF16"),
    "kv_cache_bytes": ("bytes", "KV cache of batch x context tokens, BF16"),
    "ep_comm_time_per_layer_s": ("s", "EP dispatch + combine per layer"),
    "time_per_layer_s": ("s", "decode time per layer (micro-batches x EP time)"),
    "ep_ceiling_tpot_s": ("s", "time per output token (EP ceiling)"),
    "ep_ceiling_tokens_per_s": ("tokens/s", "decode tokens/s per sequence (EP ceiling)"),
}

VARIABLES.update({name: Variable(name, unit, integer, description, name in ZERO_ALLOWED)
                  for name, (unit, integer, description, _) in WORKLOAD_VARIABLES.items()})
SWEEP_METRICS.update(WORKLOAD_SWEEP_METRICS)

_RANGE = re.compile(r"^(?P<a>[^:]+):(?P<b>[^:]+):(?P<kind>lin|log)(?P<n>\d+)$")


#: Most points of one ``--vary`` and of the whole grid: 10 million (80 MB of float64 values;
#: CSV and JSON are written as they are made, so their size is the only thing that grows).
MAX_AXIS_POINTS = 10_000_000
MAX_GRID_POINTS = 10_000_000


def _split_vary(text: str) -> tuple[Variable, str]:
    """``name=spec`` -> (the variable, spec); a UsageError for a missing ``=`` or name."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not spec.strip():
        raise UsageError(f"--vary {text!r}: expected name=start:stop:linN, "
                         "name=start:stop:logN or name=a,b,c")
    var = VARIABLES.get(name)
    if var is None:
        raise UsageError(f"--vary: unknown variable {name!r}; expected one of: "
                         f"{', '.join(VARIABLES)}")
    return var, spec


def vary_points(text: str) -> int:
    """Points of one ``--vary`` text (``linN``/``logN``: N; a list: its length), counted
    without building its values (:func:`parse_vary` checks them)."""
    m = _RANGE.match(_split_vary(text)[1].strip())
    return int(m["n"]) if m else _split_vary(text)[1].count(",") + 1


def parse_vary(text: str) -> tuple[str, np.ndarray]:
    """``name=start:stop:linN|logN`` or ``name=a,b,c`` -> (name, values)."""
    import numpy as np

    var, spec = _split_vary(text)
    name = var.name
    try:
        m = _RANGE.match(spec.strip())
        if m:
            a, b, n = float(m["a"]), float(m["b"]), int(m["n"])
            if not 1 <= n <= MAX_AXIS_POINTS:
                raise ValueError(f"the number of points must be 1 .. {MAX_AXIS_POINTS:,}")
            if m["kind"] == "log":
                if a <= 0 or b <= 0:
                    raise ValueError("a log range needs positive ends")
                values = np.geomspace(a, b, n)
            else:
                values = np.linspace(a, b, n)
        else:
            if spec.count(",") >= MAX_AXIS_POINTS:
                raise ValueError(f"at most {MAX_AXIS_POINTS:,} values")
            try:
                values = np.array([float(x) for x in spec.split(",")])
            except ValueError:
                raise ValueError(f"cannot read {spec!r}: expected start:stop:linN, "
                                 "start:stop:logN or a,b,c") from None
    except ValueError as exc:
        raise UsageError(f"--vary {text!r}: {exc}") from None
    if not np.all(np.isfinite(values)) or np.any(values < 0 if var.zero_ok else values <= 0):
        raise UsageError(f"--vary {name}: values must be finite and "
                         + ("at least 0" if var.zero_ok else "positive"))
    values = values + 0.0   # -0 given: 0
    if var.integer:
        values = np.round(values)
        if np.any(values < 1):
            raise UsageError(f"--vary {name}: values must round to integers >= 1")
    return name, values


def _inputs(model: Model, hardware: Hardware) -> dict[str, Any]:
    """The scalar value of every variable from the specs (defaults of the EP estimate)."""
    from planner.calc.ep import DUAL_MICRO_BATCH, PAPER_TOKENS_PER_DEVICE
    from planner.specs.model import MLAttention, MoEFFN

    att = model.attention
    moe = model.ffn if isinstance(model.ffn, MoEFFN) else None
    return {
        "num_layers": model.num_layers, "hidden_size": model.hidden_size,
        "kv_lora_rank": getattr(att, "kv_lora_rank", None),
        "qk_rope_head_dim": getattr(att, "qk_rope_head_dim", None),
        "num_kv_heads": None if isinstance(att, MLAttention) else att.num_kv_heads,
        "head_dim": None if isinstance(att, MLAttention) else att.head_dim,
        "experts_per_token": (moe.num_experts_per_token + moe.num_shared_experts) if moe
        else None,
        "tokens_per_device": PAPER_TOKENS_PER_DEVICE,
        "ep_size": moe.num_routed_experts if moe else None,
        "micro_batches": DUAL_MICRO_BATCH, "context_tokens": 4096, "batch": 1,
        "nic_bandwidth_gb_per_s": hardware.scale_out.bandwidth_bytes_per_s / 1e9,
        "nvlink_bandwidth_gb_per_s": (None if hardware.scale_up is None
                                      else hardware.scale_up.bandwidth_bytes_per_s / 1e9),
    }


def sweep_metric(model: Model, hardware: Hardware, metric: str,
                 vary: dict[str, np.ndarray], *, engine: Any = None) -> np.ndarray:
    """``metric`` at every point of ``vary`` (arrays broadcast against each other), computed
    by the same formulas as the scalar calculators, on whole arrays at once."""
    import numpy as np

    from planner.calc import ep, kv_cache
    from planner.specs.model import MLAttention
    from planner.units import GB, dtype_bytes

    if metric not in SWEEP_METRICS:
        raise UsageError(f"unknown sweep metric {metric!r}; expected one of: "
                         f"{', '.join(SWEEP_METRICS)}")
    check_workload_vary(metric, list(vary))
    if metric in WORKLOAD_SWEEP_METRICS:
        return workload_sweep_metric(model, hardware, metric, vary, engine=engine)
    v = _inputs(model, hardware)
    for name, values in vary.items():
        if v[name] is None:
            raise UsageError(f"--vary {name}: does not apply to {model.label}")
        v[name] = values
    mla = isinstance(model.attention, MLAttention)
    if metric.startswith("kv_cache"):
        elements = (kv_cache.mla_kv_elements_per_token_per_layer(
            kv_lora_rank=v["kv_lora_rank"], qk_rope_head_dim=v["qk_rope_head_dim"]) if mla
            else kv_cache.gqa_kv_elements_per_token_per_layer(num_kv_heads=v["num_kv_heads"],
                                                              head_dim=v["head_dim"]))
        per_token = kv_cache.kv_cache_bytes_per_token(
            num_layers=v["num_layers"], elements_per_token_per_layer=elements,
            bytes_per_element=dtype_bytes("bf16"))
        out = per_token if metric == "kv_cache_bytes_per_token" else kv_cache.kv_cache_bytes(
            bytes_per_token=per_token, context_tokens=v["context_tokens"], batch=v["batch"])
    else:
        if v["experts_per_token"] is None:
            raise UsageError(f"{model.label} is a dense model: EP metrics need an MoE model")
        hidden = np.asarray(v["hidden_size"])
        dispatch = ep.fp8_dispatch_bytes_per_token_expert(hidden_size=hidden)
        combine = hidden * dtype_bytes("bf16")
        if hardware.scale_up is None:
            bandwidth = np.asarray(v["nic_bandwidth_gb_per_s"]) * GB
        else:
            in_domain = np.asarray(v["ep_size"]) <= hardware.scale_up.domain_gpus
            bandwidth = np.where(in_domain, np.asarray(v["nvlink_bandwidth_gb_per_s"]) * GB,
                                 np.asarray(v["nic_bandwidth_gb_per_s"]) * GB)
        comm = ep.ep_comm_time_per_layer_s(
            dispatch_bytes_per_token_expert=dispatch, combine_bytes_per_token_expert=combine,
            tokens_per_device=v["tokens_per_device"], experts_per_token=v["experts_per_token"],
            bandwidth_bytes_per_s=bandwidth)
        layer = ep.time_per_layer_s(ep_comm_time_per_layer_s=comm,
                                    num_micro_batches=v["micro_batches"])
        tpot = ep.ep_ceiling_tpot_s(time_per_layer_s=layer, num_layers=v["num_layers"])
        out = {"ep_comm_time_per_layer_s": comm, "time_per_layer_s": layer,
               "ep_ceiling_tpot_s": tpot,
               "ep_ceiling_tokens_per_s": ep.ep_ceiling_tokens_per_s(ep_ceiling_tpot_s=tpot),
               }[metric]
    shape = np.broadcast_shapes(*[np.shape(a) for a in vary.values()]) if vary else ()
    return np.broadcast_to(np.asarray(out, dtype=float), shape)


@dataclass(frozen=True)
class SweepResult:
    model: str
    hardware: str
    metric: str
    names: tuple[str, ...]
    axes: tuple[np.ndarray, ...]
    values: np.ndarray          # shape (len(axes[0]), len(axes[1]) ...)


def run_sweep(model: Model, hardware: Hardware, metric: str, varies: list[str],
              progress=None, engine: Any = None) -> SweepResult:
    """Parse ``--vary`` texts, build the grid (one or two variables) and compute ``metric``;
    ``progress(done, total)`` is called per chunk on grids of many points."""
    import numpy as np

    if not 1 <= len(varies) <= 2:
        raise UsageError("give one or two --vary")
    check_grid(varies)
    parsed = [parse_vary(t) for t in varies]
    names = tuple(n for n, _ in parsed)
    if len(set(names)) != len(names):
        raise UsageError("--vary the same variable only once")
    axes = tuple(a for _, a in parsed)
    rows, cols = len(axes[0]), len(axes[1]) if len(axes) == 2 else 1
    values = np.empty((rows, cols) if len(axes) == 2 else rows)
    per_chunk = WORKLOAD_CHUNK_POINTS if metric in WORKLOAD_SWEEP_METRICS else CHUNK_POINTS
    chunk = max(1, per_chunk // cols)          # temporaries of one chunk, whatever the grid
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        vary = ({names[0]: axes[0][start:stop]} if len(axes) == 1 else
                {names[0]: axes[0][start:stop, None], names[1]: axes[1][None, :]})
        values[start:stop] = sweep_metric(model, hardware, metric, vary, engine=engine)
        if progress is not None:
            progress(stop, rows)
    return SweepResult(model.name or model.label, hardware.name or hardware.label, metric,
                       names, axes, np.asarray(values, dtype=float))


def check_grid(varies: list[str]) -> None:
    """Refuse a grid of more than :data:`MAX_GRID_POINTS` points, before building it."""
    points = math.prod(vary_points(v) for v in varies)
    if points > MAX_GRID_POINTS:
        raise UsageError(f"--vary: the grid has {points:,} points ("
                         f"{' x '.join(f'{vary_points(v):,}' for v in varies)}); at most "
                         f"{MAX_GRID_POINTS:,}")


def grid_size(varies: list[str]) -> tuple[int, int]:
    """(points of the grid, rows of the first variable) of ``--vary`` texts."""
    sizes = [vary_points(v) for v in varies]
    return math.prod(sizes), sizes[0] if sizes else 0


#: Points computed per chunk of a two-variable grid (progress granularity).
CHUNK_POINTS = 1_000_000
#: Grids larger than this show a progress bar (on a terminal).
PROGRESS_MIN_POINTS = 2 * CHUNK_POINTS
#: Records made at once when the records of a sweep are read in order.
RECORD_CHUNK = 65_536


class SweepRecords(Sequence[dict[str, Any]]):
    """One record per point of a sweep (the variables and the metric, base units), made when
    read: iterating holds :data:`RECORD_CHUNK` records at a time, whatever the grid's size."""

    def __init__(self, result: SweepResult) -> None:
        self.result = result
        self.columns = [*result.names, result.metric]

    def __len__(self) -> int:
        return int(self.result.values.size)

    def _make(self, index: Any) -> list[dict[str, Any]]:
        """The records at ``index`` (an integer array of flat grid positions)."""
        import numpy as np

        r = self.result
        coords = np.unravel_index(index, r.values.shape)
        columns = [axis[c].tolist() for axis, c in zip(r.axes, coords)]
        columns.append(r.values.ravel()[index].tolist())
        return [dict(zip(self.columns, row)) for row in zip(*columns)]

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        import numpy as np

        if isinstance(i, slice):
            return self._make(np.arange(*i.indices(len(self))))
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._make(np.array([i % len(self)]))[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import numpy as np

        for start in range(0, len(self), RECORD_CHUNK):
            yield from self._make(np.arange(start, min(len(self), start + RECORD_CHUNK)))


def records(result: SweepResult) -> SweepRecords:
    """One record per point: the variables and the metric (base units), made as they are read."""
    return SweepRecords(result)


#: Points drawn per line of a plot (more than a figure has pixels; a 10-million-point line
#: took 1 GB to draw).
PLOT_POINTS_PER_LINE = 10_000


def plot(result: SweepResult, path: str) -> None:
    """Draw the sweep: the metric against the first variable, one line per value of the second
    (at most 12). Needs matplotlib (``pip install 'llm-capacity-planner[plot]'``)."""
    import numpy as np

    from planner.report.explore import pyplot, save_plot

    plt = pyplot(path)
    unit, label = SWEEP_METRICS[result.metric]
    scale, shown = {"s": (1e3, "ms"), "bytes": (1e-3, "KB"), "tokens/s": (1, "tokens/s")}[unit]
    xvar = VARIABLES[result.names[0]]
    # Every point up to PLOT_POINTS_PER_LINE, else evenly spaced ones and the last.
    n = len(result.axes[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, PLOT_POINTS_PER_LINE)).round().astype(int))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    if len(result.axes) == 1:
        ax.plot(result.axes[0][keep], result.values[keep] * scale,
                marker="o" if len(result.axes[0]) < 40 else None, lw=2)
    else:
        series = result.axes[1]
        if len(series) > 12:
            raise UsageError(f"--plot draws one line per value of {result.names[1]}: give at "
                             "most 12 values (or swap the two --vary)")
        svar = VARIABLES[result.names[1]]
        for j, s in enumerate(series):
            ax.plot(result.axes[0][keep], result.values[keep, j] * scale, lw=2,
                    label=f"{svar.name} = {s:g} {svar.unit}".strip())
        ax.legend(title=svar.description, fontsize=9)
    x = result.axes[0]
    if len(x) > 2 and np.allclose(x[1:] / x[:-1], x[1] / x[0]) and x[-1] / x[0] > 20:
        ax.set_xscale("log")
    y = result.values[np.isfinite(result.values)]
    if y.size and y.min() > 0 and y.max() / y.min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel(f"{xvar.name}" + (f" ({xvar.unit})" if xvar.unit else ""))
    ax.set_ylabel(f"{result.metric} ({shown})")
    ax.set_title(f"{label}: {result.model} on {result.hardware}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_plot(plt, fig, path)
