"""Catalog commands: list and show the built-in specs, their JSON Schema, import a Hugging Face
config.json."""

from typing import TYPE_CHECKING, Optional

import typer

from planner import vocab
from planner.cli import command, emit, show_tables
from planner.cli.options import FORMAT, SEQ_LEN, Format, choices, output_option

if TYPE_CHECKING:   # a type alias for the checker, the Enum for typer (options.Choice)
    from typing import TypeAlias

    from planner.cli.options import Choice

    SpecKind: TypeAlias = Choice
else:
    SpecKind = choices("SpecKind", vocab.SPEC_KINDS)


@command("models")
def models_cmd(fmt: Format = FORMAT) -> None:
    """List the built-in models with their key figures."""
    from planner import catalog, report
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.params import model_params

    ms = [catalog.load_model(n) for n in catalog.names("model")]
    show_tables([report.catalog_models_table(ms, [model_params(m) for m in ms],
                                             [model_kv_cache(m) for m in ms])], fmt)


@command("hardware")
def hardware_cmd(fmt: Format = FORMAT) -> None:
    """List the built-in hardware with peak figures (dense FLOP/s, unidirectional bandwidths)."""
    from planner import catalog, report

    show_tables([report.catalog_hardware_table(
        [catalog.load_hardware(n) for n in catalog.names("hardware")])], fmt)


@command("engines")
def engines_cmd(fmt: Format = FORMAT) -> None:
    """List the built-in serving engines (engines/*.yaml): version, scheduling, overheads."""
    from planner import catalog, report
    from planner.specs.load import load_engine

    show_tables([report.catalog_engines_table(
        [load_engine(n) for n in catalog.names("engine")])], fmt)


@command("show")
def show_cmd(name: str = typer.Argument(..., help="Catalog name or path to a YAML spec."),
             seq_len: int = SEQ_LEN,
             fmt: Format = FORMAT) -> None:
    """Show one model or hardware spec with its derived figures."""
    from planner import catalog, report
    from planner.calc.flops import model_flops_per_token
    from planner.calc.kv_cache import model_kv_cache
    from planner.calc.params import model_params
    from planner.specs import Model

    spec = catalog.load_any(name)
    if isinstance(spec, Model):
        tables = report.model_detail_tables(spec, model_params(spec), model_kv_cache(spec),
                                            model_flops_per_token(spec, seq_len=seq_len))
    else:
        tables = report.hardware_detail_tables(spec)
    show_tables(tables, fmt)


@command("import-hf")
def import_hf_cmd(
    config: str = typer.Argument(..., help="A local Hugging Face config.json."),
    output: Optional[str] = output_option("the YAML spec"),
    name: Optional[str] = typer.Option(None, "--name",
                                       help="Model name [default: the config's folder name]."),
) -> None:
    """Convert a Hugging Face config.json into a model spec (no network)."""
    import os

    from planner.errors import UsageError
    from planner.specs.hf import hf_config_to_yaml

    text = hf_config_to_yaml(config, name=name)
    if output is not None and os.path.exists(output) and os.path.samefile(config, output):
        raise UsageError(f"-o {output} is the config.json being read: give another file for "
                         "the YAML spec")
    emit(text, output, "the YAML spec")


@command("schema")
def schema_cmd(
    kind: SpecKind = typer.Argument(..., help="model, hardware, scenario or network-prices."),
    output: Optional[str] = output_option("the schema"),
) -> None:
    """JSON Schema of a spec file, for editors (yaml-language-server) and other tools."""
    import json

    from planner.specs.schema import json_schema

    emit(f"{json.dumps(json_schema(kind.value), indent=2)}\n", output, "the schema")
