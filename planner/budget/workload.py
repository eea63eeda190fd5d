"""A scenario's serving metrics from its ``workload:`` block, through the workload model
(:func:`planner.calc.serving.workload.serve_workload`), instead of the serving roofline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model
    from planner.specs.scenario import Workload

#: The serving metrics a workload gives (those of the roofline, the same names).
WORKLOAD_METRICS = ("memory_bytes_per_gpu", "tpot_s", "decode_tokens_per_s",
                    "tokens_per_s_per_gpu", "tokens_per_s_per_node", "ttft_s")


def _engine(name: str | None, *, file: str) -> Any:
    """The engine spec: a path relative to the scenario file when one is there, else a catalog
    name; None: the idealised engine."""
    if name is None:
        return None
    from planner.specs.load import load_engine

    beside = Path(file).parent / name
    return load_engine(beside if beside.is_file() else name)


def workload_metrics(model: Model, hardware: Hardware, w: Workload, *,
                     file: str) -> dict[str, tuple[Any, str, str]]:
    """(value, basis, reason) of each of :data:`WORKLOAD_METRICS`; n/a with the reason where the
    workload does not fit in memory or the hardware spec cannot give achievable figures."""
    from planner.calc.serving.workload import serve_workload
    from planner.report.formats import fmt_bytes, fmt_share_pct

    engine = _engine(w.engine, file=file)
    try:
        r = serve_workload(model, hardware, engine, isl=w.isl, osl=w.osl,
                           concurrency=w.concurrency, tp=w.tp, pp=w.pp,
                           attention_dp=w.attention_dp, moe_tp=w.moe_tp, moe_ep=w.moe_ep,
                           weights_dtype=w.weights_dtype,
                           moe_weights_dtype=w.moe_weights_dtype, kv_dtype=w.kv_dtype,
                           prefix_cache_hit_frac=w.prefix_cache_hit_frac)
    except PlannerError as err:
        return {n: (None, "", err.message) for n in WORKLOAD_METRICS}
    basis = (f"workload model ({r.basis}, engine {w.engine or 'idealised'}), ISL {w.isl}, "
             f"OSL {w.osl}, {w.concurrency} in flight per replica"
             + (f", prefix cache {fmt_share_pct(w.prefix_cache_hit_frac)}"
                if w.prefix_cache_hit_frac
                else ""))
    memory = float(r.memory_bytes_per_gpu)
    if not bool(r.fits):
        reason = (f"the workload does not fit: {fmt_bytes(memory)} per GPU > "
                  f"{fmt_bytes(hardware.gpu.hbm_usable_bytes)}")
        return {n: (None, "", reason) for n in WORKLOAD_METRICS}
    per_gpu = float(r.tokens_per_s_per_gpu)
    return {"memory_bytes_per_gpu": (memory, basis, ""), "tpot_s": (float(r.tpot_s), basis, ""),
            "decode_tokens_per_s": (float(r.tokens_per_s_per_user), basis, ""),
            "tokens_per_s_per_gpu": (per_gpu, basis, ""),
            "tokens_per_s_per_node": (per_gpu * hardware.scale_up_domain_gpus, basis, ""),
            "ttft_s": (float(r.ttft_s), basis, "")}
