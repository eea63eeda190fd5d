"""Options and choices that several commands share, each declared once.

A ``typer.Option`` / ``typer.Argument`` object is only a declaration (default, names, help): one
object serves every command that uses it. Choices are ``str`` Enums built from the closed sets
of :mod:`planner.vocab`, never re-declared here. ``quantity`` parses an option's "14.8T" /
"1 GB" into base units; ``tokens_option`` declares an integer token option that takes "32k".
"""

from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from planner import vocab

if TYPE_CHECKING:
    from enum import EnumMeta
    from typing import TypeAlias

    class _ChoiceMeta(EnumMeta):
        def __getattr__(cls, name: str) -> "Choice": ...

    class Choice(str, Enum, metaclass=_ChoiceMeta):
        """What the type checker knows of an Enum that :func:`choices` builds: a ``str`` Enum
        whose ``value`` is a ``str``; its members, made at run time, are any attribute.

        A command annotates an option with the Enum itself (typer reads the annotation), and a
        type checker accepts only a class or an alias as a type, never a variable bound to a
        call: so each choice is declared ``Name: TypeAlias = Choice`` under ``TYPE_CHECKING``
        and ``Name = choices(...)`` otherwise."""

        _value_: str


def choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A ``str`` Enum of ``values`` (a closed set of :mod:`planner.vocab`) for typer's choices;
    a member's name is its value with ``-`` as ``_`` (``ExpertBalance.no_eplb``)."""
    # mypy types Enum's functional API with members it cannot read as an Enum instance.
    return Enum(name, {v.replace("-", "_"): v for v in values},  # type: ignore[return-value]
                type=str)


if TYPE_CHECKING:
    Format: TypeAlias = Choice
    Dtype: TypeAlias = Choice
    WeightsDtype: TypeAlias = Choice
    Convention: TypeAlias = Choice
else:
    Format = choices("Format", vocab.OUTPUT_FORMATS)
    #: Element types, as :data:`planner.units.DTYPE_BYTES` knows them.
    Dtype = choices("Dtype", vocab.DTYPES)
    WeightsDtype = choices("WeightsDtype", vocab.SERVING_WEIGHT_DTYPES)
    Convention = choices("Convention", vocab.FLOPS_CONVENTIONS)


FORMAT = typer.Option(Format.table, "--format", "-f", help="Output format.")
EXPLAIN = typer.Option(False, "--explain",
                       help="Also print the formula, every input with where it came from, and "
                            "the reference.")


def given_on_command_line(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """The options among the parameter ``names`` that the user wrote on the command line (not
    left at their defaults), as the user spells them (``--mtp-depth``)."""
    return [p.opts[0] for p in ctx.command.params if p.name in names
            and getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]


def refuse_unread(ctx: typer.Context, names: tuple[str, ...], why: str) -> None:
    """A usage error naming the options among ``names`` given on the command line that this
    call would not read (``why`` says which mode reads them), instead of ignoring them."""
    from planner.errors import UsageError

    given = given_on_command_line(ctx, names)
    if given:
        raise UsageError(f"{', '.join(given)}: {why}")


def hardware_option(default: Any = ..., text: str = "Hardware name or YAML path.") -> Any:
    """``--hardware`` / ``-H``, declared once, with the help ``text``: required and single
    unless ``default`` says otherwise (the annotation, ``str`` or ``List[str]``, decides
    repeatable)."""
    return typer.Option(default, "--hardware", "-H", help=text)


#: A required ``--hardware/-H``: a catalog name or a YAML path.
HARDWARE = hardware_option()

#: One model: catalog name, YAML path or Hugging Face config.json (``catalog.load_model``).
MODEL = typer.Argument(..., help="Model name, YAML path or config.json.")
#: One MoE model (the command refuses a dense one).
MOE_MODEL = typer.Argument(..., help="Model name, YAML path or config.json (an MoE model).")
#: Several models.
MODELS = typer.Argument(..., help="Model names, YAML paths or config.json.")

def _token_count(value: Any) -> int:
    """typer's parser of a token option: a whole count as people write it ("32768", "32k",
    "1.5M"), at least 1; a mistake is a usage error naming the option (exit 2)."""
    from planner.units import parse_count

    try:
        return parse_count(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def tokens_option(default: Any, name: str, text: str) -> Any:
    """An integer token option (``--context-tokens``, ``--seq-len``...) with the help ``text``,
    declared once: it takes the count suffixes of ``--tokens 14.8T`` too (``32k``, ``1.5M``)."""
    return typer.Option(default, name, parser=_token_count, metavar="TOKENS",
                        help=f"{text}; a count: 32768, 32k (32,000) or 32Ki (32,768).")


#: ``--prefix-cache-hit F`` of the workload commands (``serve --isl ...``, ``serve-disagg``,
#: ``plan``).
PREFIX_CACHE_HIT = typer.Option(
    None, "--prefix-cache-hit", metavar="F",
    help="Share of each prompt's tokens whose KV is already in a prefix cache (read, not "
         "recomputed: prefill computes the rest, over the whole prompt; KV memory and the "
         "disaggregated KV transfer unchanged), 0 <= F < 1; DeepSeek's service: 0.563 "
         "[default: 0].")


def checked_prefix_cache_hit(value: Any) -> float:
    """``--prefix-cache-hit`` as a float (0 when not given), or one usage line naming it."""
    from planner.calc.serving.prefix_cache import checked_prefix_cache_hit_frac

    return float(checked_prefix_cache_hit_frac(value, name="--prefix-cache-hit"))


SEQ_LEN = tokens_option(4096, "--seq-len", "Sequence length for FLOPs")
WEIGHTS_DTYPE = typer.Option(WeightsDtype.fp8, "--weights-dtype")
KV_DTYPE = typer.Option("bf16", "--kv-dtype")


def output_option(what: str) -> Any:
    """``--output`` / ``-o FILE``: write ``what`` there instead of stdout."""
    return typer.Option(None, "--output", "-o", metavar="FILE",
                        help=f"Write {what} here [default: stdout].")


def quantity(text: str, dimension: str, option: str) -> float:
    """A command-line quantity ("14.8T", "1 GB") in base units, or a usage error naming it."""
    from planner.errors import UsageError
    from planner.units import parse_quantity

    try:
        return parse_quantity(text, dimension)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


#: ``--overrides FILE``: the hardware and engine deltas ``planner calibrate`` wrote.
OVERRIDES = typer.Option(None, "--overrides", metavar="FILE",
                         help="Override file of planner calibrate: hardware efficiency scales "
                              "and engine values fitted to your runs.")


def with_overrides(path: str | None, hardware: list[Any], engine: Any
                   ) -> tuple[list[Any], Any, str | None]:
    """``hardware`` (specs) and ``engine`` (a spec or None) with the deltas of the override file
    at ``path`` (``--overrides``, read by :func:`checked_overrides`: a bad file is one line
    naming it and the field, exit 2), and where the values come from; unchanged, None, without
    a file."""
    if path is None:
        return hardware, engine, None
    from planner.specs.overrides import apply_engine_overrides, apply_hardware_overrides

    ov = checked_overrides(path)
    return ([apply_hardware_overrides(h, ov) for h in hardware],
            apply_engine_overrides(engine, ov), ov.origin)


def checked_overrides(path: str) -> Any:
    """The override file at ``path`` with every hardware and engine it names loaded from the
    catalog and its values applied once, so that a name or factor the catalog lacks is one line
    naming the file and the field (exit 2) even where the runs would not reach that spec."""
    from planner import catalog
    from planner.errors import PlannerError, SpecError
    from planner.specs.load import load_engine
    from planner.specs.overrides import (apply_engine_overrides, apply_hardware_overrides,
                                         load_overrides)

    ov = load_overrides(path)
    for kind, names, load, apply in (("hardware", ov.hardware, catalog.load_hardware,
                                      apply_hardware_overrides),
                                     ("engines", ov.engines, load_engine,
                                      apply_engine_overrides)):
        for name in names:
            try:
                spec = load(name)
            except PlannerError as err:
                raise SpecError(err.message, file=path, field=f"{kind}.{name}") from None
            apply(spec, ov)
    return ov
