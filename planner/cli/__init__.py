"""The ``planner`` command line: thin typer commands that parse options, call the library and
render with :mod:`planner.report`. No arithmetic here.

One module per command group (``catalog``, ``model``, ``serving``, ``cluster``, ``explore``,
``budget``); shared options in :mod:`planner.cli.options`. A group module registers its commands
on :data:`app` when it is imported, and :func:`main` imports only the group of the command it
runs (see :data:`COMMANDS`). ``from planner.cli import app`` gives the app with every command.

Annotations here are evaluated when the functions are defined (no ``from __future__ import
annotations``): typer reads them at every call, and string annotations would have to be compiled
and evaluated each time.
"""


import functools
import importlib
import inspect
import re
import sys
from typing import Any, Callable

import typer

from planner.errors import PlannerError
from planner.vocab import SOURCE_ABBREVIATIONS

#: Every command, in the order ``planner --help`` lists them, and its group module.
COMMANDS: dict[str, str] = {
    "models": "catalog", "hardware": "catalog", "show": "catalog",
    "kv-cache": "model", "flops": "model", "ep": "model", "paper": "model",
    "import-hf": "catalog", "compare": "explore", "sweep": "explore",
    "serve": "serving", "validate": "serving", "fit": "serving", "schema": "catalog",
    "network": "cluster", "pipeline": "cluster", "train": "cluster", "routing": "cluster",
    "collective": "cluster", "numerics": "model", "evaluate": "budget", "check": "budget",
}

_app = typer.Typer(
    name="planner",
    help="Closed-form LLM capacity planner: KV cache, FLOPs and expert-parallel communication "
         "for any model on any hardware, reproducing the DeepSeek-V3 ISCA 2025 paper.",
    no_args_is_help=True,
    # The commands' help cites the paper as "P" and the DeepSeek-V3 report as "V3R".
    epilog="; ".join(f"{short}: {meaning}" for short, meaning in SOURCE_ABBREVIATIONS),
    # --install-completion / --show-completion: bash, zsh, fish, PowerShell.
    add_completion=True,
    # Help is rich text in every typer version the project allows; see _escape_help_markup.
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(err: PlannerError) -> None:
    """One line on stderr, exit code 2 (invalid input)."""
    sys.stderr.write(f"error: {err}\n")
    raise typer.Exit(err.exit_code)


def command(name: str, **kw: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.command`` that turns a :class:`PlannerError` into one line and exit code 2."""

    def wrap(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except PlannerError as err:
                fail(err)
            except OverflowError:
                fail(PlannerError("a number given is too large to compute with"))

        return _app.command(name, **kw)(run)

    return wrap


def write_file(path: str, text: str, what: str = "the file") -> None:
    """Write ``text`` to ``path``, or a one-line error naming the file."""
    from planner.errors import SpecError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(f"cannot write {what} ({exc.strerror or exc})", file=path) from None


def emit(text: str, output: str | None) -> None:
    """``text`` to stdout, or to the file ``output`` (saying so on stderr)."""
    if output is None:
        sys.stdout.write(text)
        return
    write_file(output, text)
    sys.stderr.write(f"wrote {output}\n")


def show_tables(tables: list[Any], fmt: Any) -> None:
    """Render ``tables`` in ``fmt`` (an :data:`planner.cli.options.Format`) on stdout."""
    from planner.report import render

    render(tables, fmt.value)


def _print_version(value: bool) -> None:
    if value:
        from planner import __distribution__, __version__

        sys.stdout.write(f"planner {__version__} (distribution {__distribution__})\n")
        raise typer.Exit()


@_app.callback()
def _group(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
) -> None:
    """Closed-form LLM capacity planner (kept a command group even when one command is
    registered; see :func:`main`)."""


def _escape_help_markup(callback: Callable[..., Any]) -> None:
    """typer reads help as rich markup, where "[default: 1]" or "[plot]" is a tag and vanishes
    (leaving "Attention TP ."); escape every "[" of an option's or argument's help (once: the
    declarations are shared and the escape is idempotent)."""
    for param in inspect.signature(callback).parameters.values():
        info = param.default
        if isinstance(info, typer.models.ParameterInfo) and info.help:
            info.help = re.sub(r"(?<!\\)\[", r"\\[", info.help)


def _abbreviations(callback: Callable[..., Any]) -> str | None:
    """What the sources a command's help cites by abbreviation ("P Table 3") stand for, for the
    end of its help, or None."""
    from planner.vocab import abbreviations_used

    helps = [getattr(p.default, "help", None) or ""
             for p in inspect.signature(callback).parameters.values()]
    return abbreviations_used("\n".join([inspect.getdoc(callback) or "", *helps])) or None


def load_commands(names: Any = None) -> typer.Typer:
    """Import the group modules of ``names`` (default: every command), which register their
    commands on the app, keep the app's commands in :data:`COMMANDS` order, return the app."""
    for group in dict.fromkeys(COMMANDS[n] for n in (COMMANDS if names is None else names)):
        importlib.import_module(f"{__name__}.{group}")
    order: dict[str | None, int] = {n: i for i, n in enumerate(COMMANDS)}
    _app.registered_commands.sort(key=lambda c: order.get(c.name, len(order)))
    for registered in _app.registered_commands:
        if registered.callback is not None:
            _escape_help_markup(registered.callback)
            registered.epilog = registered.epilog or _abbreviations(registered.callback)
    return _app


def __getattr__(name: str) -> Any:
    """``app``: the typer app with every command registered (tests, ``typer.testing``)."""
    if name == "app":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point.

    typer builds the click parameters of every registered command at each call (about 0.2 ms
    per command); when the first argument names a command, only its group module is imported
    and only that command is registered, so a call pays for its own command. Help, completion
    and unknown names see them all.
    """
    name = sys.argv[1] if len(sys.argv) > 1 else None
    app = load_commands([name] if name in COMMANDS else None)
    everything = app.registered_commands
    chosen = [c for c in everything if c.name == name]
    try:
        if chosen:
            app.registered_commands = chosen
        app(prog_name="planner")
    finally:
        app.registered_commands = everything
