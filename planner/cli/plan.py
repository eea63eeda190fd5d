"""``planner plan``: every serving layout of a model on one or more hardware specs, the Pareto
frontier, the best layout under latency limits, the fewest GPUs for a load, $ and J per token."""

import sys
from typing import Any, List, Optional

import typer

from planner import __distribution__
from planner.cli import command, emit, replace_file, show_tables, violated
from planner.cli.options import (FORMAT, MODEL, OVERRIDES, PREFIX_CACHE_HIT, Format,
                                 checked_prefix_cache_hit, hardware_option, tokens_option,
                                 with_overrides)

ISL = tokens_option(..., "--isl", "Prompt (input) tokens per request")
OSL = tokens_option(..., "--osl", "Output tokens per request")
TTFT_MS = typer.Option(None, "--ttft-ms", min=0, help="Time to first token at most (ms).")
TPOT_MS = typer.Option(None, "--tpot-ms", min=0, help="Time per output token at most (ms).")
MIN_USER = typer.Option(None, "--min-tokens-per-s-per-user", min=0,
                        help="Output tokens/s per user at least (instead of --tpot-ms).")
GPUS = typer.Option(None, "--gpus", min=1,
                    help="Exactly this many GPUs: replicas of a layout that divides it.")
MAX_GPUS = typer.Option(None, "--max-gpus", min=1,
                        help="At most this many GPUs [default: 128 per replica].")
RATE = typer.Option(None, "--request-rate", min=0,
                    help="Requests per second to sustain: the fewest GPUs that do it.")
CONCURRENCY = typer.Option(None, "--concurrency", min=1,
                           help="Requests in flight per replica [default: a grid of 1 .. 1,024 "
                                "per attention-DP rank].")
ENGINE = typer.Option(None, "--engine",
                      help="Serving engine name or YAML path [default: an idealised engine, no "
                           "overheads].")
DISAGG = typer.Option(False, "--disagg/--no-disagg",
                      help="Also find the best disaggregated deployment (prefill and decode "
                           "pools; needs --ttft-ms, --tpot-ms and --gpus or --request-rate).")
PRICE = typer.Option(None, "--usd-per-gpu-hour", min=0,
                     help="Price of a GPU-hour [default: the hardware spec's cost block].")
ALL = typer.Option(False, "--all", help="Also list every evaluated point (JSON, CSV).")
PLOT = typer.Option(None, "--plot", metavar="FILE.png|FILE.svg",
                    help=f"Draw the frontier per hardware (needs matplotlib: pip install "
                         f"'{__distribution__}[plot]').")
HTML = typer.Option(None, "--html", metavar="FILE",
                    help="Write one self-contained HTML report (inline SVG, no network).")
SCENARIO = typer.Option(None, "--write-scenario", metavar="FILE",
                        help="Write the best layout as a scenario file for `planner check`.")


@command("plan")
def plan_cmd(
    model: str = MODEL,
    hardware: List[str] = hardware_option(text="Hardware (repeatable)."),
    isl: int = ISL,
    osl: int = OSL,
    ttft_ms: Optional[float] = TTFT_MS,
    tpot_ms: Optional[float] = TPOT_MS,
    min_tokens_per_s_per_user: Optional[float] = MIN_USER,
    gpus: Optional[int] = GPUS,
    max_gpus: Optional[int] = MAX_GPUS,
    request_rate: Optional[float] = RATE,
    concurrency: Optional[int] = CONCURRENCY,
    engine: Optional[str] = ENGINE,
    disagg: bool = DISAGG,
    prefix_cache_hit: Optional[float] = PREFIX_CACHE_HIT,
    usd_per_gpu_hour: Optional[float] = PRICE,
    every_point: bool = ALL,
    plot: Optional[str] = PLOT,
    html: Optional[str] = HTML,
    write_scenario: Optional[str] = SCENARIO,
    overrides: Optional[str] = OVERRIDES,
    fmt: Format = FORMAT,
) -> None:
    """What to deploy: every layout (TP, PP, attention DP, MoE TP x EP, concurrency,
    precisions) evaluated at once; the Pareto frontier of output tokens/s per GPU against
    tokens/s per user per hardware; the best layout under the limits, its runner-up and why it
    lost; the fewest GPUs for a request rate; $ per million output tokens and J per token.
    Exit code 1 when no layout meets the limits: the best point over them is still shown, and
    one line on stderr names the limit it breaks."""
    from planner import catalog
    from planner.errors import UsageError
    from planner.report.plan import plan_tables, violation
    from planner.studies import plan_output
    from planner.studies.plan import PlanQuery, grid_points
    from planner.studies.plan_select import plan

    if plot is not None and not plot.endswith((".png", ".svg")):
        raise UsageError(f"--plot {plot!r}: expected a .png or .svg file")
    query = PlanQuery.from_options(
        isl=isl, osl=osl, ttft_ms=ttft_ms, tpot_ms=tpot_ms,
        min_tokens_per_s_per_user=min_tokens_per_s_per_user, gpus=gpus, max_gpus=max_gpus,
        request_rate_per_s=request_rate, concurrency=concurrency,
        usd_per_gpu_hour=usd_per_gpu_hour, disagg=disagg,
        prefix_cache_hit_frac=checked_prefix_cache_hit(prefix_cache_hit))
    m = catalog.load_model(model)
    hws, eng, origin = with_overrides(
        overrides, [catalog.load_hardware(h) for h in dict.fromkeys(hardware)],
        plan_output.load_engine_or_none(engine))
    bar, progress = _progress(grid_points(m, hws, query))
    try:
        result = plan(m, hws, eng, query, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    if origin is not None:
        result.notes.append(f"overrides applied: {origin}")
    if plot is not None:
        with replace_file(plot, "the plot") as tmp:
            plan_output.plot_frontier(result, tmp)
        sys.stderr.write(f"wrote {plot}\n")
    band = _band(result, hws, eng)
    if html is not None:
        from planner.report.plan_html import plan_html

        emit(plan_html(result, band), html, "the HTML report")
    if write_scenario is not None:
        emit(plan_output.scenario_yaml(result, model=model, hardware_names=hardware,
                                       engine=engine), write_scenario, "the scenario")
    show_tables(plan_tables(result, every_point=every_point, band=band), fmt)
    over = violation(result)
    if over is not None:
        violated(over)


def _band(result: Any, hws: list[Any], eng: Any) -> Any:
    """The error band of the best point's regime (its hardware, the engine, aggregated) with
    the labels to print, as ``planner serve`` shows it; None without a best point."""
    from planner.specs.error_bands import error_band

    if result.best is None:
        return None
    hw = {h.name or h.label: h for h in hws}[result.record(result.best)["hardware"]]
    return (error_band(hw.name or "", None if eng is None else eng.name, "aggregated"),
            hw.label, None if eng is None else eng.label)


def _progress(points: int):
    """A progress bar on a terminal for a search of more points than
    :data:`planner.studies.plan_output.PROGRESS_MIN_POINTS` (a few seconds), else none."""
    from planner.studies.plan_output import PROGRESS_MIN_POINTS

    if points <= PROGRESS_MIN_POINTS or not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(f"planning ({points:,} layouts)", total=None)
    bar.start()
    return bar, lambda done, total: bar.update(task, completed=done, total=total)
