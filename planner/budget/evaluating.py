"""Evaluating a scenario: every metric of the vocabulary, or the reason it does not apply."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from planner.budget.loading import LoadedScenario, load_scenario
from planner.budget.workload import workload_metrics
from planner.errors import PlannerError, SpecError
from planner.metrics import METRICS, Metric

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model
    from planner.specs.scenario import Deployment, Scenario


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


@overload
def _load_ref(kind: Literal["model"], ref: str, *, file: str) -> Model: ...
@overload
def _load_ref(kind: Literal["hardware"], ref: str, *, file: str) -> Hardware: ...


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


#: A metric's value in base units (None: does not apply), what it used, why it does not apply.
Value = tuple["float | None", str, str]


def evaluate_scenario(scenario: Scenario, *, file: str, name: str | None = None) -> Evaluation:
    """Every metric of ``scenario`` (read from ``file``, which anchors relative paths): the
    model's own figures, the paper's EP ceiling, the serving roofline and the training run,
    each group computed by its own step below."""
    model = _load_ref("model", scenario.model, file=file)
    hardware = _load_ref("hardware", scenario.hardware, file=file)
    values: dict[str, Value] = {
        **_model_metrics(model, scenario.deployment),
        **_ep_metrics(model, hardware, scenario.deployment, file=file),
        **(_serving_metrics(model, hardware, scenario.deployment) if scenario.workload is None
           else workload_metrics(model, hardware, scenario.workload, file=file)),
        **_training_metrics(model, hardware, scenario, file=file),
    }
    metrics = {n: MetricValue(METRICS[n], *values[n]) for n in METRICS}
    return Evaluation(scenario=name or scenario.name or Path(file).stem, file=file,
                      model=model.label, hardware=hardware.label, metrics=metrics)


def _model_metrics(model: Model, d: Deployment) -> dict[str, Value]:
    """Parameters, KV cache, FLOPs per token and weight bytes."""
    from planner.calc.flops import model_flops_per_token
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.memory import bytes_per_gpu_even_split, weight_bytes
    from planner.calc.params import model_params
    from planner.units import dtype_bytes

    values: dict[str, Value] = {}
    params = model_params(model)
    values["params_total"] = (params.total.total, "", "")
    values["params_activated"] = (params.params_activated, "input embedding excluded", "")
    values["params_activated_with_embedding"] = (params.params_activated_with_embedding,
                                                 "input embedding included", "")
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
    return values


EP_METRICS = ("ep_comm_time_per_layer_s", "time_per_layer_s", "ep_ceiling_tpot_s",
              "ep_ceiling_tokens_per_s")


def _ep_metrics(model: Model, hardware: Hardware, d: Deployment, *,
                file: str) -> dict[str, Value]:
    """The paper's expert-parallel decode ceiling (n/a for a dense model)."""
    from planner.calc.ep import ep_decode_limit
    from planner.specs.model import MoEFFN
    from planner.units import dtype_bytes

    if not isinstance(model.ffn, MoEFFN):
        return {n: (None, "", f"{model.label} is a dense model (no expert parallelism)")
                for n in EP_METRICS}
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
    return {n: (getattr(ep, n), basis, "") for n in EP_METRICS}


SERVING_METRICS = ("memory_bytes_per_gpu", "tpot_s", "decode_tokens_per_s",
                   "tokens_per_s_per_gpu", "tokens_per_s_per_node", "ttft_s")


def _serving_metrics(model: Model, hardware: Hardware, d: Deployment) -> dict[str, Value]:
    """The serving roofline at achievable figures: decode memory and tokens/s, prefill TTFT
    (n/a with the reason when the deployment or the hardware spec cannot give them)."""
    if d.num_gpus is None:
        return {n: (None, "", "deployment.num_gpus is not given") for n in SERVING_METRICS}
    from planner.calc.serving import serve

    try:   # achievable figures: a spec without efficiency factors leaves these n/a
        dec = serve(model, hardware, d.serve_config("decode", moe=model.is_moe))
        pre = serve(model, hardware, d.serve_config("prefill", moe=model.is_moe))
    except PlannerError as err:
        return {n: (None, "", err.message) for n in SERVING_METRICS}
    basis = f"serving roofline, {dec.basis}"
    dec_basis = f"{basis}, overlap {dec.overlap}"
    return {
        "memory_bytes_per_gpu": (
            dec.memory.memory_bytes_per_gpu,
            f"{d.batch_per_gpu:g} x {d.context_tokens} tokens, {d.weight_dtype}", ""),
        "tpot_s": (dec.tpot_s, dec_basis, ""),
        "decode_tokens_per_s": (dec.decode_tokens_per_s, dec_basis, ""),
        "tokens_per_s_per_gpu": (dec.tokens_per_s_per_gpu, dec_basis, ""),
        "tokens_per_s_per_node": (dec.tokens_per_s_per_node, dec_basis, ""),
        "ttft_s": (pre.ttft_s, basis, ""),
    }


TRAINING_METRICS = ("train_gpu_hours", "train_cost_usd", "mfu_frac")


def _training_metrics(model: Model, hardware: Hardware, scenario: Scenario, *,
                      file: str) -> dict[str, Value]:
    """GPU-hours, cost and MFU of the scenario's training run (n/a without one)."""
    t = scenario.training
    if t is None:
        return {n: (None, "", "the scenario has no training: section") for n in TRAINING_METRICS}
    from planner.calc.training import train_run

    gpus = t.num_gpus if t.num_gpus is not None else scenario.deployment.num_gpus
    if gpus is None:
        raise SpecError("training needs num_gpus (here or in deployment)", file=file,
                        field="training.num_gpus")
    r = train_run(model, hardware, tokens=t.tokens, num_gpus=gpus, mfu=t.mfu,
                  gpu_hours=t.gpu_hours, tokens_per_day=t.tokens_per_day,
                  convention=t.convention, seq_len=t.seq_len,
                  usd_per_gpu_hour=t.usd_per_gpu_hour)
    basis = f"{t.convention}, speed from {r.basis}, {gpus} GPUs"
    return {
        "train_gpu_hours": (r.train_gpu_hours, basis, ""),
        "train_cost_usd": (
            (r.train_cost_usd, f"{r.usd_per_gpu_hour:g} USD/GPU-hour", "")
            if r.train_cost_usd is not None
            else (None, "", "no price: set training.usd_per_gpu_hour or the hardware's "
                            "price_usd_per_gpu_hour")),
        "mfu_frac": (r.mfu_frac, basis, ""),
    }
