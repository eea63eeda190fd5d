"""Model calculators: KV cache, FLOPs, expert-parallel communication, the paper's figures, number
formats."""

from typing import TYPE_CHECKING, List, Optional

import typer

from planner import vocab
from planner.cli import command, show_tables
from planner.cli.options import (EXPLAIN, FORMAT, HARDWARE, MODELS, MOE_MODEL, Convention, Dtype,
                                 Format, choices, tokens_option)

if TYPE_CHECKING:   # a type alias for the checker, the Enum for typer (options.Choice)
    from typing import TypeAlias

    from planner.cli.options import Choice

    WireFormat: TypeAlias = Choice
else:
    WireFormat = choices("WireFormat", vocab.WIRE_FORMATS)


@command("kv-cache")
def kv_cache_cmd(
    models: List[str] = typer.Argument(..., help="Model names or YAML paths; multipliers are "
                                                 "relative to the first."),
    dtype: Dtype = typer.Option("bf16", "--dtype", help="KV cache element type."),
    context_tokens: int = tokens_option(1, "--context-tokens",
                                        "Tokens per sequence (for the total cache)"),
    batch: int = typer.Option(1, "--batch", min=1, help="Sequences (for the total cache)."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """KV cache bytes per token for MHA/GQA/MQA/MLA (paper Table 1), and for a batch at a context."""
    from planner import catalog, report
    from planner.calc import kv_cache

    results = kv_cache.kv_cache_for_models([catalog.load_model(m) for m in models],
                                           dtype=dtype.value, context_tokens=context_tokens,
                                           batch=batch)
    tables = [report.kv_cache_table(results)]
    if explain:
        tables += [report.explain_table(
            r.model, r.formula, kv_cache.REF if r.formula == kv_cache.FORMULA
            else kv_cache.PATTERN_REF, r.inputs) for r in results]
    show_tables(tables, fmt)


@command("flops")
def flops_cmd(
    models: List[str] = MODELS,
    seq_len: int = tokens_option(4096, "--seq-len", "Sequence length s"),
    convention: Convention = typer.Option(
        Convention.exact_causal, "--convention",
        help="exact-causal: activated matmul parameters + causal attention (default; paper's "
             "MoE rows). exact-full: full attention. approx-12ld2: 6·(12·L·d² + V·d), the "
             "paper's dense rows."),
    parts: bool = typer.Option(False, "--parts", help="Also show forward FLOPs by part."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Forward and training FLOPs per token and parameter counts (paper Table 2)."""
    from planner import catalog, report
    from planner.calc import flops

    results = [flops.model_flops_per_token(catalog.load_model(m), seq_len=seq_len,
                                           convention=convention.value) for m in models]
    tables = [report.flops_table(results)]
    if parts:
        tables += [report.flops_parts_table(r) for r in results]
    if explain:
        tables += [report.explain_table(r.model, flops.FORMULA[r.convention], flops.REF,
                                        r.inputs, basis=flops.CONVENTIONS[r.convention])
                   for r in results]
    show_tables(tables, fmt)


@command("ep")
def ep_cmd(
    model: str = MOE_MODEL,
    hardware: str = HARDWARE,
    ep: Optional[int] = typer.Option(None, "--ep", min=1,
                                     help="EP group size [default: one routed expert per GPU]."),
    tokens_per_device: float = typer.Option(32, "--tokens-per-device", min=0,
                                            help="Tokens each GPU decodes at a time."),
    experts_per_token: Optional[int] = typer.Option(
        None, "--experts-per-token", min=1, help="[default: top-k + shared experts]"),
    hidden: Optional[int] = typer.Option(None, "--hidden", min=1,
                                         help="Hidden size [default: the model's]."),
    dispatch_bytes: Optional[float] = typer.Option(
        None, "--dispatch-bytes", min=0,
        help="Bytes per element dispatched, no scales (the paper: 1) [default: FP8 with its "
             "1x128 scales and DeepEP metadata]."),
    combine_bytes: Optional[float] = typer.Option(
        None, "--combine-bytes", min=0, help="Bytes per element combined [default: 2, BF16]."),
    bandwidth_gb_per_s: Optional[float] = typer.Option(
        None, "--bandwidth-gb-per-s", min=0,
        help="Link bandwidth per GPU, unidirectional, GB/s [default: from the hardware spec]."),
    micro_batches: int = typer.Option(2, "--micro-batches", min=1,
                                      help="Micro-batches overlapped (computation hidden)."),
    layers: Optional[int] = typer.Option(None, "--layers", min=1,
                                         help="[default: the model's layers]"),
    achievable: bool = typer.Option(False, "--achievable",
                                    help="Use achievable bandwidth (peak x the spec's efficiency "
                                         "factor) instead of peak."),
    dispatch_format: Optional[WireFormat] = typer.Option(
        None, "--dispatch-format", help="Price dispatch in this format, per-tile metadata "
                                        "included (see `planner numerics`)."),
    combine_format: Optional[WireFormat] = typer.Option(
        None, "--combine-format", help="Price combine in this format."),
    fmt: Format = FORMAT,
    explain: bool = EXPLAIN,
) -> None:
    """Expert-parallel communication time per layer and the decode tokens/s ceiling (paper §2.3.2)."""
    from planner import catalog, report
    from planner.calc import ep as ep_calc
    from planner.units import gb_per_s_to_bytes_per_s

    result = ep_calc.ep_decode_limit(
        catalog.load_model(model), catalog.load_hardware(hardware), ep_size=ep,
        tokens_per_device=tokens_per_device, experts_per_token=experts_per_token,
        hidden_size=hidden, dispatch_bytes_per_element=dispatch_bytes,
        combine_bytes_per_element=combine_bytes,
        bandwidth_bytes_per_s=(None if bandwidth_gb_per_s is None
                               else gb_per_s_to_bytes_per_s(bandwidth_gb_per_s)),
        num_micro_batches=micro_batches, num_layers=layers, achievable=achievable,
        dispatch_format=None if dispatch_format is None else dispatch_format.value,
        combine_format=None if combine_format is None else combine_format.value,
    )
    tables = [report.ep_table(result)]
    if explain:
        tables.append(report.explain_table(f"{result.model} on {result.hardware}",
                                           ep_calc.FORMULA, ep_calc.REF, result.inputs,
                                           basis=result.bandwidth_basis))
    show_tables(tables, fmt)


@command("paper")
def paper_cmd(fmt: Format = FORMAT) -> None:
    """Reproduce the paper's closed-form figures from the catalog, beside the printed values."""
    from planner import report
    from planner.studies.paper import paper_rows

    show_tables(report.paper_tables(paper_rows()), fmt)


@command("numerics")
def numerics_cmd(
    formats: str = typer.Option("e4m3,e5m2,e5m6,logfmt8,logfmt10,bf16", "--formats",
                                help="Comma-separated: e4m3 e5m2 e5m6 logfmt8 logfmt10 bf16."),
    tile: int = typer.Option(128, "--tile", min=1, help="Scaling tile: 1 x tile elements."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the generated data."),
    rows: int = typer.Option(256, "--rows", min=1, help="Rows (tokens) of the test data."),
    pow2_scale: bool = typer.Option(False, "--pow2-scale",
                                    help="Round FP8 scales up to powers of two."),
    fmt: Format = FORMAT,
) -> None:
    """FP8, E5M6 and LogFMT errors, FP8 accumulation precision, bytes on the wire (paper §3)."""
    from planner import report
    from planner.calc.numerics import FORMATS
    from planner.errors import UsageError
    from planner.studies.numerics import check_rows, check_tile, numerics_study

    names = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise UsageError(f"--formats: unknown format(s) {', '.join(unknown) or '(none given)'}; "
                         f"expected: {', '.join(FORMATS)}")
    for flag, check, value in (("--tile", check_tile, tile), ("--rows", check_rows, rows)):
        try:
            check(value)
        except ValueError as exc:
            raise UsageError(f"{flag} {exc}") from None
    errors, accumulation, comm = numerics_study(names, tile=tile, seed=seed, rows=rows,
                                                pow2_scale=pow2_scale)
    show_tables(report.numerics_tables(errors, accumulation, comm, seed=seed), fmt)
