"""Scenarios and their budgets: the CI check.

A scenario file (``specs/*.yaml``, :class:`planner.specs.scenario.Scenario`) names a model and a
hardware spec, a deployment and budgets. :func:`evaluate` computes every metric the scenario
defines; :func:`check` evaluates the budgets of every scenario under the given paths and returns a
:class:`CheckReport`: exit code 0 when every budget is met, 1 when one is violated, 2 when any
input is invalid.

It fails closed: an unknown metric, an unparseable bound or a unit of the wrong dimension, a
missing file, a directory without scenarios, a scenario without budgets, a metric that does not
apply to the scenario (``n/a``) or that evaluates to NaN or infinity are errors, never a pass.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from planner.errors import EXIT_INVALID, EXIT_OK, EXIT_VIOLATION, PlannerError, SpecError
from planner.metrics import METRICS, Metric, metric

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model
    from planner.specs.scenario import Scenario

#: File name endings of scenario files in a directory.
SCENARIO_SUFFIXES = (".yaml", ".yml")


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class ParsedBound:
    """One bound of a budget, its unit parsed: value <= limit (``max``) or >= limit (``min``)."""

    metric: Metric
    kind: str       # "max" or "min"
    limit: float    # base units
    text: str       # as written


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from, its parsed bounds, and the line of each
    budget bound."""

    scenario: Scenario
    file: str
    #: (metric, "max"/"min") -> 1-based line of the bound; (metric, "") -> line of the metric.
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    bounds: tuple[ParsedBound, ...] = ()

    @property
    def name(self) -> str:
        return self.scenario.name or Path(self.file).stem

    def line(self, metric_name: str, bound: str = "") -> int | None:
        return self.lines.get((metric_name, bound)) or self.lines.get((metric_name, ""))


def load_scenario(path: str | os.PathLike[str]) -> LoadedScenario:
    """Read and validate one scenario file, budgets included (metric names, units of the bounds,
    min <= max); a :class:`SpecError` naming the file and the field otherwise."""
    from planner.specs.load import build_spec, read_yaml_file
    from planner.specs.scenario import Scenario
    from planner.units import parse_quantity

    p = Path(path)
    data, raw = read_yaml_file(p)
    scenario = build_spec(Scenario, p, data, raw)
    lines = _budget_lines(raw)

    def fail(name: str, kind: str, message: str) -> SpecError:
        return SpecError(message, file=str(p),
                         field=f"budgets.{name}" + (f".{kind}" if kind else ""),
                         line=lines.get((name, kind)) or lines.get((name, "")))

    bounds: list[ParsedBound] = []
    for name, b in scenario.budgets.items():
        try:
            m = metric(name)
        except KeyError as exc:
            raise fail(name, "", exc.args[0]) from None
        limits: dict[str, float] = {}
        for kind in ("max", "min"):
            written = getattr(b, kind)
            if written is None:
                continue
            try:
                limits[kind] = parse_quantity(written, m.dimension)
            except ValueError as exc:
                raise fail(name, kind, str(exc)) from None
            bounds.append(ParsedBound(m, kind, limits[kind], str(written)))
        if len(limits) == 2 and limits["min"] > limits["max"]:
            raise fail(name, "", f"min ({b.min}) is above max ({b.max}): no value can pass")
    return LoadedScenario(scenario, str(p), lines, tuple(bounds))


def _budget_lines(raw: bytes) -> dict[tuple[str, str], int]:
    """Lines of ``budgets.<metric>`` and ``budgets.<metric>.max|min`` in the YAML text."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(raw.decode("utf-8"), Loader=loader)
    except yaml.YAMLError:  # already parsed once: cannot happen
        return {}
    lines: dict[tuple[str, str], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value != "budgets" or not isinstance(value, yaml.MappingNode):
            continue
        for mkey, mvalue in value.value:
            lines[(str(mkey.value), "")] = mkey.start_mark.line + 1
            if isinstance(mvalue, yaml.MappingNode):
                for bkey, _ in mvalue.value:
                    lines[(str(mkey.value), str(bkey.value))] = bkey.start_mark.line + 1
    return lines


def scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, directories searched recursively
    for ``*.yaml``/``*.yml`` (sorted). A missing path or a directory with no scenario is an
    error."""
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in SCENARIO_SUFFIXES
                           and f.is_file())
            if not found:
                raise SpecError("no scenario files (*.yaml, *.yml) in this directory",
                                file=str(p))
            files += found
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            raise SpecError("file not found", file=str(p))
    if not files:
        raise SpecError("no scenario files given")
    return files


# ----------------------------------------------------------------------------- evaluating
@dataclass(frozen=True)
class MetricValue:
    """One metric of a scenario: its value in base units, or ``None`` with the reason it does
    not apply; ``basis`` says what it used (peak or achievable bandwidth, a convention)."""

    metric: Metric
    value: float | None
    basis: str = ""
    reason: str = ""

    @property
    def name(self) -> str:
        return self.metric.name


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one scenario."""

    scenario: str
    file: str
    model: str
    hardware: str
    metrics: dict[str, MetricValue]

    def value(self, name: str) -> float | None:
        return self.metrics[name].value

    def as_dict(self) -> dict[str, Any]:
        """``{scenario, file, model, hardware, <metric>: value, ...}`` (base units)."""
        return {"scenario": self.scenario, "file": self.file, "model": self.model,
                "hardware": self.hardware,
                **{name: mv.value for name, mv in self.metrics.items()}}


def evaluate(path: str | os.PathLike[str] | LoadedScenario) -> Evaluation:
    """Every metric of the scenario at ``path`` (see :mod:`planner.metrics`). An error a
    calculator raises (a missing efficiency factor, an impossible EP size) names the scenario
    file."""
    loaded = path if isinstance(path, LoadedScenario) else load_scenario(path)
    try:
        return evaluate_scenario(loaded.scenario, file=loaded.file, name=loaded.name)
    except PlannerError as err:
        if err.file is None:
            raise SpecError(err.message, file=loaded.file, field="deployment") from None
        raise


def _load_ref(kind: str, ref: str, *, file: str) -> Model | Hardware:
    """A model/hardware named by a scenario: a catalog name, or a path relative to the scenario
    file's folder."""
    from planner import catalog
    from planner.errors import CatalogError

    if catalog.looks_like_path(ref):
        p = Path(ref)
        if not p.is_absolute():
            p = Path(os.path.normpath(Path(file).parent / p))
        if not p.exists():
            raise SpecError(f"{kind} file not found: {p}", file=file, field=kind)
        ref = str(p)
    try:
        return catalog.load_model(ref) if kind == "model" else catalog.load_hardware(ref)
    except CatalogError as exc:
        raise SpecError(exc.message, file=file, field=kind) from None


def evaluate_scenario(scenario: Scenario, *, file: str, name: str | None = None) -> Evaluation:
    """Every metric of ``scenario`` (read from ``file``, which anchors relative paths)."""
    from planner.calc.ep import ep_decode_limit
    from planner.calc.flops import model_flops_per_token
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.memory import bytes_per_gpu_even_split, weight_bytes
    from planner.calc.params import model_params
    from planner.units import dtype_bytes

    model = _load_ref("model", scenario.model, file=file)
    hardware = _load_ref("hardware", scenario.hardware, file=file)
    d = scenario.deployment
    values: dict[str, tuple[float | None, str, str]] = {}

    params = model_params(model)
    values["params_total"] = (params.total.total, "", "")
    values["params_activated"] = (params.activated.total, "", "")
    kv = model_kv_cache(model, dtype=d.kv_cache_dtype, context_tokens=d.context_tokens,
                        batch=d.batch)
    values["kv_cache_bytes_per_token"] = (kv.kv_cache_bytes_per_token, d.kv_cache_dtype, "")
    values["kv_cache_bytes"] = (kv.kv_cache_bytes,
                                f"{d.batch} × {d.context_tokens} tokens, {d.kv_cache_dtype}", "")
    fl = model_flops_per_token(model, seq_len=d.seq_len, convention=d.flops_convention)
    basis = f"{d.flops_convention}, seq_len {d.seq_len}"
    values["forward_flops_per_token"] = (fl.forward_flops_per_token, basis, "")
    values["train_flops_per_token"] = (fl.train_flops_per_token, basis, "")
    weights = weight_bytes(num_params=params.total.total,
                           bytes_per_param=dtype_bytes(d.weight_dtype))
    values["weight_bytes"] = (weights, d.weight_dtype, "")
    values["weight_bytes_per_gpu"] = (
        (bytes_per_gpu_even_split(total_bytes=weights, num_gpus=d.num_gpus),
         f"{d.weight_dtype}, even split over {d.num_gpus} GPUs", "")
        if d.num_gpus is not None else (None, "", "deployment.num_gpus is not given"))

    ep_names = ("ep_comm_time_per_layer_s", "time_per_layer_s", "tpot_s", "decode_tokens_per_s")
    if model.is_moe:
        ep_size = d.ep if d.ep is not None else model.ffn.num_routed_experts
        if d.num_gpus is not None and ep_size > d.num_gpus:
            raise SpecError(f"the EP group ({ep_size} GPUs, one routed expert per GPU unless "
                            f"deployment.ep is set) exceeds num_gpus ({d.num_gpus})",
                            file=file, field="deployment.ep")
        ep = ep_decode_limit(
            model, hardware, ep_size=ep_size, tokens_per_device=d.tokens_per_device,
            dispatch_bytes_per_element=None if d.dispatch_dtype == "fp8" else dtype_bytes("bf16"),
            combine_bytes_per_element=dtype_bytes(d.combine_dtype),
            num_micro_batches=d.micro_batches, achievable=d.bandwidth == "achievable",
        )
        basis = f"{ep.link} {ep.bandwidth_basis} bandwidth, EP {ep.ep_size}"
        for n in ep_names:
            values[n] = (getattr(ep, n), basis, "")
    else:
        for n in ep_names:
            values[n] = (None, "", f"{model.label} is a dense model (no expert parallelism)")

    serve_names = ("memory_bytes_per_gpu", "tokens_per_s_per_gpu", "tokens_per_s_per_node",
                   "ttft_s")
    if d.num_gpus is None:
        for n in serve_names:
            values[n] = (None, "", "deployment.num_gpus is not given")
    else:
        from planner.calc.serving import serve

        try:   # achievable figures: a spec without efficiency factors leaves these n/a
            dec = serve(model, hardware, d.serve_config("decode", moe=model.is_moe))
            pre = serve(model, hardware, d.serve_config("prefill", moe=model.is_moe))
        except PlannerError as err:
            for n in serve_names:
                values[n] = (None, "", err.message)
        else:
            basis = f"serving roofline, {dec.basis}"
            values["memory_bytes_per_gpu"] = (
                dec.memory.memory_bytes_per_gpu,
                f"{d.batch_per_gpu:g} x {d.context_tokens} tokens, {d.weight_dtype}",
                "")
            values["tokens_per_s_per_gpu"] = (dec.tokens_per_s_per_gpu, basis, "")
            values["tokens_per_s_per_node"] = (dec.tokens_per_s_per_node, basis, "")
            values["ttft_s"] = (pre.ttft_s, basis, "")

    train_names = ("train_gpu_hours", "train_cost_usd", "mfu_frac")
    t = scenario.training
    if t is None:
        for n in train_names:
            values[n] = (None, "", "the scenario has no training: section")
    else:
        from planner.calc.training import train_run

        gpus = t.num_gpus if t.num_gpus is not None else d.num_gpus
        if gpus is None:
            raise SpecError("training needs num_gpus (here or in deployment)", file=file,
                            field="training.num_gpus")
        r = train_run(model, hardware, tokens=t.tokens, num_gpus=gpus, mfu=t.mfu,
                      gpu_hours=t.gpu_hours, tokens_per_day=t.tokens_per_day,
                      convention=t.convention, seq_len=t.seq_len,
                      usd_per_gpu_hour=t.usd_per_gpu_hour)
        basis = f"{t.convention}, speed from {r.basis}, {gpus} GPUs"
        values["train_gpu_hours"] = (r.train_gpu_hours, basis, "")
        values["train_cost_usd"] = (
            (r.train_cost_usd, f"{r.usd_per_gpu_hour:g} USD/GPU-hour", "")
            if r.train_cost_usd is not None
            else (None, "", "no price: set training.usd_per_gpu_hour or the hardware's "
                            "price_usd_per_gpu_hour"))
        values["mfu_frac"] = (r.mfu_frac, basis, "")

    metrics = {n: MetricValue(METRICS[n], *values[n]) for n in METRICS}
    return Evaluation(scenario=name or scenario.name or Path(file).stem, file=file,
                      model=model.label, hardware=hardware.label, metrics=metrics)


# ----------------------------------------------------------------------------- checking
@dataclass(frozen=True)
class BudgetResult:
    """One bound of one budget, evaluated. ``passed``: value <= max, or value >= min."""

    scenario: str
    file: str
    line: int | None
    metric: str
    dimension: str
    bound: str          # "max" or "min"
    limit: float        # base units
    limit_text: str     # as written in the file
    value: float
    basis: str
    passed: bool

    @property
    def headroom_frac(self) -> float | None:
        """How far inside the bound the value is, as a fraction of the bound (negative when
        violated): (max - value) / max, or (value - min) / min; ``None`` for a bound of 0."""
        if self.limit == 0:
            return None
        gap = self.limit - self.value if self.bound == "max" else self.value - self.limit
        return gap / self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "file": self.file, "line": self.line,
                "metric": self.metric, "unit": self.dimension, "bound": self.bound,
                "limit": self.limit, "limit_text": self.limit_text, "value": self.value,
                "headroom_frac": self.headroom_frac, "basis": self.basis,
                "passed": self.passed}


@dataclass(frozen=True)
class CheckError:
    """An input that could not be checked: the file, the field, the line when known."""

    file: str | None
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return str(PlannerError(self.message, file=self.file, field=self.field))

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "field": self.field, "line": self.line,
                "message": self.message}


@dataclass
class CheckReport:
    """The outcome of :func:`check`: every budget result and every input error."""

    results: list[BudgetResult] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[BudgetResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        """True only when there was something to check, nothing failed and nothing was
        invalid."""
        return not self.errors and bool(self.results) and not self.violations

    @property
    def exit_code(self) -> int:
        if self.errors or not self.results:
            return EXIT_INVALID
        return EXIT_VIOLATION if self.violations else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "exit_code": self.exit_code,
                "results": [r.as_dict() for r in self.results],
                "errors": [e.as_dict() for e in self.errors]}


def check(*paths: str | os.PathLike[str]) -> CheckReport:
    """Evaluate the budgets of every scenario under ``paths`` (files or directories).

    Never raises for a user's mistake: invalid inputs are collected in ``report.errors``, and a
    report with errors is never ``ok``. Example (from pytest)::

        report = planner.check("specs/")
        assert report.ok, report.violations
    """
    report = CheckReport()
    try:
        files = scenario_files(paths)
    except PlannerError as err:
        report.errors.append(CheckError(err.file, err.field, err.message))
        return report
    for f in files:
        report.files.append(str(f))
        try:
            loaded = load_scenario(f)
            report.results += check_scenario(loaded)
        except _BudgetError as err:
            report.errors.append(err.error)
        except PlannerError as err:
            report.errors.append(CheckError(err.file, err.field, err.message, err.line))
    return report


class _BudgetError(Exception):
    def __init__(self, error: CheckError) -> None:
        super().__init__(str(error))
        self.error = error


def check_scenario(loaded: LoadedScenario) -> list[BudgetResult]:
    """The results of every bound of one scenario; a :class:`PlannerError` (or the internal
    ``_BudgetError``) when the scenario cannot be checked."""
    scenario, file = loaded.scenario, loaded.file
    if not scenario.budgets:
        raise SpecError("the scenario defines no budgets; `planner check` needs at least one "
                        "(use `planner evaluate` to see the metrics)", file=file,
                        field="budgets")

    def fail(name: str, message: str) -> _BudgetError:
        return _BudgetError(CheckError(file, f"budgets.{name}", message, loaded.line(name)))

    evaluation = evaluate(loaded)
    results = []
    for b in loaded.bounds:
        name = b.metric.name
        mv = evaluation.metrics[name]
        if mv.value is None:
            raise fail(name, f"metric does not apply to this scenario: {mv.reason}")
        value = float(mv.value)
        if not math.isfinite(value):
            raise fail(name, f"metric evaluates to {value} (not a finite number)")
        passed = value <= b.limit if b.kind == "max" else value >= b.limit
        results.append(BudgetResult(
            scenario=evaluation.scenario, file=file, line=loaded.line(name, b.kind), metric=name,
            dimension=b.metric.dimension, bound=b.kind, limit=b.limit, limit_text=b.text,
            value=value, basis=mv.basis, passed=passed))
    return results
