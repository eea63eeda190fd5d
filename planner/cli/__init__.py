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
import sys
from typing import Any, Callable

import typer

from planner.errors import PlannerError

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
    add_completion=False,
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
            _take_spec_notes()   # notes of specs an earlier command (in this process) loaded
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


def _take_spec_notes() -> list[tuple[str, str]]:
    """The notes of the specs loaded so far (none when the catalog was never imported)."""
    catalog = sys.modules.get("planner.catalog")
    return catalog.take_notes() if catalog is not None else []


def show_tables(tables: list[Any], fmt: Any) -> None:
    """Render ``tables`` in ``fmt`` (an :data:`planner.cli.options.Format`) on stdout, then the
    ``notes:`` of every spec behind them: on stdout under a table or Markdown, on stderr with
    JSON and CSV (which stay machine-readable)."""
    from planner.report import render

    render(tables, fmt.value)
    stream = sys.stdout if fmt.value in ("table", "markdown") else sys.stderr
    for name, text in _take_spec_notes():
        stream.write(f"note: {name}: {text}\n")


@_app.callback()
def _group() -> None:
    """Closed-form LLM capacity planner (kept a command group even when one command is
    registered; see :func:`main`)."""


def load_commands(names: Any = None) -> typer.Typer:
    """Import the group modules of ``names`` (default: every command), which register their
    commands on the app, keep the app's commands in :data:`COMMANDS` order, return the app."""
    for group in dict.fromkeys(COMMANDS[n] for n in (COMMANDS if names is None else names)):
        importlib.import_module(f"{__name__}.{group}")
    order: dict[str | None, int] = {n: i for i, n in enumerate(COMMANDS)}
    _app.registered_commands.sort(key=lambda c: order.get(c.name, len(order)))
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
