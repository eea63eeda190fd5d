"""What ``planner plan`` writes besides its tables: the frontier plot (matplotlib, an optional
extra) and the chosen layout as a scenario file for ``planner check``; and the engine spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.studies.plan_select import PlanResult

#: The plot's x axis is logarithmic when its largest value is this many times its smallest.
LOG_AXIS_RATIO = 20

#: Searches of more points than this show a progress bar on a terminal (a few seconds).
PROGRESS_MIN_POINTS = 1_000_000


def load_engine_or_none(name: str | None) -> Any:
    """The engine spec ``name`` (catalog name or YAML path), or None: the idealised engine."""
    if name is None:
        return None
    from planner.specs.load import load_engine

    return load_engine(name)


def plot_frontier(result: PlanResult, path: str) -> None:
    """Draw the frontier of every hardware (tokens/s per GPU against tokens/s per user), the
    TPOT limit and the best point to ``path`` (.png or .svg). Needs matplotlib."""
    import numpy as np

    from planner.report.explore import pyplot, save_plot

    plt = pyplot(path, hint="; --html needs nothing")

    c = result.points.columns
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for hw, idx in result.frontier.items():
        ax.plot(c["tokens_per_s_per_user"][idx], c["tokens_per_s_per_gpu"][idx], marker="o",
                ms=3, lw=2, label=hw)
    q = result.query
    limit = 1 / q.tpot_s if q.tpot_s else q.min_tokens_per_s_per_user
    if limit:
        ax.axvline(limit, color="0.4", ls="--", lw=1, label="TPOT limit")
    if result.best is not None:
        ax.plot([c["tokens_per_s_per_user"][result.best]], [c["tokens_per_s_per_gpu"][result.best]],
                "o", ms=12, mfc="none", mec="black", mew=2, label="best")
    xs = c["tokens_per_s_per_user"][np.concatenate([np.zeros(0, dtype=np.int64),
                                                    *result.frontier.values()])]
    if xs.size > 1 and xs.min() > 0 and xs.max() / xs.min() > LOG_AXIS_RATIO:
        ax.set_xscale("log")
    ax.set_xlabel("output tokens/s per user")
    ax.set_ylabel("output tokens/s per GPU")
    ax.set_title(f"{result.model}: ISL {q.isl:,} / OSL {q.osl:,}, Pareto frontier")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_plot(plt, fig, path)


def scenario_yaml(result: PlanResult, *, model: str, hardware_names: list[str],
                  engine: str | None) -> str:
    """The best layout as a scenario file (see :func:`scenario_dict`), YAML text."""
    import yaml

    return yaml.safe_dump(scenario_dict(result, model=model, hardware_names=hardware_names,
                                        engine=engine), sort_keys=False, width=100)


#: A scenario's floor on tokens/s per GPU: this share of the planned figure (a 5% margin for
#: model changes that are not regressions).
THROUGHPUT_FLOOR_FRAC = 0.95


def scenario_dict(result: PlanResult, *, model: str, hardware_names: list[str],
                  engine: str | None) -> dict[str, Any]:
    """The best point as a scenario: model, hardware, the ``workload`` block (layout, ISL, OSL,
    concurrency, precisions, engine) and budgets: the query's TTFT and TPOT limits as maxima,
    :data:`THROUGHPUT_FLOOR_FRAC` of the planned tokens/s per GPU as a minimum."""
    from planner.report.formats import fmt_share_pct

    if result.best is None:
        raise UsageError("--write-scenario: no layout fits and meets the limits, nothing to write")
    rec = result.record(result.best)
    names = [h for h in dict.fromkeys(hardware_names)]
    hw_name = next((h for h in names if h.lower() == rec["hardware"].lower()), rec["hardware"])
    q = result.query
    workload: dict[str, Any] = {
        "isl": q.isl, "osl": q.osl, "concurrency": rec["concurrency"], "tp": rec["tp"],
        "pp": rec["pp"], "attention_dp": rec["attention_dp"], "moe_tp": rec["moe_tp"],
        "moe_ep": rec["moe_ep"], "weights_dtype": rec["weights_dtype"],
        "moe_weights_dtype": rec["moe_weights_dtype"], "kv_dtype": rec["kv_dtype"]}
    if engine is not None:
        workload["engine"] = engine
    if q.prefix_cache_hit_frac:
        workload["prefix_cache_hit_frac"] = q.prefix_cache_hit_frac
    floor = float(f"{rec['tokens_per_s_per_gpu'] * THROUGHPUT_FLOOR_FRAC:.6g}")
    budgets: dict[str, Any] = {"tokens_per_s_per_gpu": {"min": floor}}
    if q.ttft_s is not None:
        budgets["ttft_s"] = {"max": q.ttft_s}
    if q.tpot_s is not None:
        budgets["tpot_s"] = {"max": q.tpot_s}
    if q.min_tokens_per_s_per_user is not None:
        budgets["decode_tokens_per_s"] = {"min": q.min_tokens_per_s_per_user}
    deployment = _deployment(rec)
    return {"name": f"{result.model}-{rec['hardware']}-plan",
            "description": f"planner plan's best layout for {result.model} on {rec['hardware']}, "
                           f"ISL {q.isl} / OSL {q.osl}" + (
                               f", prefix cache {fmt_share_pct(q.prefix_cache_hit_frac)}"
                               if q.prefix_cache_hit_frac else ""),
            "source": "planner plan --write-scenario", "model": model, "hardware": hw_name,
            "deployment": deployment, "workload": workload, "budgets": budgets}


def _deployment(rec: dict[str, Any]) -> dict[str, Any]:
    """The scenario's deployment block: the GPUs of one replica, the precisions, the EP group
    (the paper's EP ceiling, which a scenario also evaluates; a dense model ignores it)."""
    return {"num_gpus": rec["gpus"], "tp": rec["tp"], "pp": rec["pp"], "ep": rec["moe_ep"],
            "weight_dtype": rec["weights_dtype"], "kv_cache_dtype": rec["kv_dtype"]}
