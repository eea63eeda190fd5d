"""Exploration commands: models side by side, and sweeps over one or two inputs."""

import sys
from typing import List, Optional

import typer

from planner import __distribution__
from planner.cli import command, replace_file, show_tables
from planner.cli.options import (FORMAT, MODEL, MODELS, SEQ_LEN, Format, hardware_option,
                                 tokens_option)


@command("compare")
def compare_cmd(
    models: List[str] = MODELS,
    hardware: Optional[List[str]] = hardware_option(
        None, "Hardware to compare on (repeatable) [default: h800]."),
    context_tokens: int = tokens_option(4096, "--context-tokens",
                                        "Context for the decode bytes per step"),
    seq_len: int = SEQ_LEN,
    plot: Optional[str] = typer.Option(
        None, "--plot", help="Draw KV cache per sequence and decode reads against context to "
                             "this .png or .svg file (needs matplotlib)."),
    fmt: Format = FORMAT,
) -> None:
    """Models side by side: KV cache and context (MLA vs GQA), FLOPs (dense vs MoE), EP ceiling,
    and KV bytes against context (where a windowed, sparse or hybrid design beats the first)."""
    from planner import catalog, report
    from planner.studies.compare import compare_models, context_curves, plot_context_curves

    hws = [catalog.load_hardware(h) for h in (hardware or ["h800"])]
    ms = [catalog.load_model(m) for m in models]
    rows = compare_models(ms, hws, context_tokens=context_tokens, seq_len=seq_len)
    curves = context_curves(ms)
    if plot:
        plot_context_curves(curves, plot)
    show_tables([*report.compare_tables(rows, [h.name or h.label for h in hws],
                                        context_tokens=context_tokens, seq_len=seq_len),
                 *report.context_tables(curves)], fmt)


@command("sweep")
def sweep_cmd(
    model: str = MODEL,
    hardware: str = hardware_option("h800"),
    metric: str = typer.Option("ep_ceiling_tokens_per_s", "--metric", "-m",
                               help="kv_cache_bytes_per_token, kv_cache_bytes, "
                                    "ep_comm_time_per_layer_s, time_per_layer_s, "
                                    "ep_ceiling_tpot_s or "
                                    "ep_ceiling_tokens_per_s; the workload model's ttft_s, "
                                    "tpot_s, e2e_latency_s, tokens_per_s_per_gpu, "
                                    "total_tokens_per_s_per_gpu, tokens_per_s_per_user, "
                                    "memory_bytes_per_gpu."),
    vary: List[str] = typer.Option(..., "--vary",
                                   help="name=start:stop:linN | logN | a,b,c (once or twice); "
                                        "see `planner sweep --help` for names."),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|FILE.svg",
                                       help="Also draw the sweep (needs matplotlib: pip install "
                                            f"'{__distribution__}[plot]')."),
    engine: Optional[str] = typer.Option(
        None, "--engine", help="Serving engine of the workload metrics [default: idealised]."),
    fmt: Format = FORMAT,
) -> None:
    """Vary one or two inputs (model, hardware, deployment) and compute a metric, vectorized.

    Variables: num_layers, hidden_size, kv_lora_rank, qk_rope_head_dim, num_kv_heads, head_dim,
    experts_per_token, tokens_per_device, ep_size, micro_batches, context_tokens, batch,
    nic_bandwidth_gb_per_s, nvlink_bandwidth_gb_per_s; with a workload metric: isl, osl,
    concurrency, tp, pp, attention_dp, prefix_cache_hit_frac (the others at 1,024 / 1,024 / 32 /
    1 / 1 / 1 / 0; prefix_cache_hit_frac from 0, below 1).
    """
    from planner import catalog, report
    from planner.errors import UsageError
    from planner.studies import sweep as sw
    from planner.studies.plan_output import load_engine_or_none

    if plot is not None and not plot.endswith((".png", ".svg")):
        raise UsageError(f"--plot {plot!r}: expected a .png or .svg file")
    m, h = catalog.load_model(model), catalog.load_hardware(hardware)
    points, rows = sw.grid_size(vary)
    bar = None
    if points > sw.PROGRESS_MIN_POINTS and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("sweeping", total=rows)
        bar.start()
    try:
        result = sw.run_sweep(m, h, metric, vary, progress=None if bar is None else (
            lambda done, _rows: bar.update(task, completed=done)),
            engine=load_engine_or_none(engine))
    finally:
        if bar is not None:
            bar.stop()
    if plot is not None:
        with replace_file(plot, "the plot") as tmp:    # whole or not at all
            sw.plot(result, tmp)
        sys.stderr.write(f"wrote {plot}\n")
    show_tables([report.sweep_table(result, sw.records(result), sw.SWEEP_METRICS[metric][0])],
                fmt)
