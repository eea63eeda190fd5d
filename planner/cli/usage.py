"""typer's (click's) own usage errors (an option's value out of its range or not a number, an
unknown option or command, a missing value or argument) as one line on stderr naming the
option and the problem, exit code 2, instead of click's multi-line usage box. The app's
command group (:class:`planner.cli.PlannerGroup`) hands what it catches where click raises
them (the group's options, the command name, each command's parameters) to
:func:`usage_error`; this module is imported only then."""

import importlib
import sys
from typing import Any

import typer


def click_exceptions() -> Any:
    """The module of click's exceptions typer raises: typer's own copy of click (0.28), else
    click (0.12-0.27 depend on it)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def usage_line(exc: Any) -> str:
    """A usage error typer (click) raised while parsing, as one line naming the option and the
    problem: ``--gpus: -1 is not in the range x>=1 (planner serve --help)``."""
    errors = click_exceptions()
    param, ctx = getattr(exc, "param", None), getattr(exc, "ctx", None)
    if (isinstance(exc, errors.BadParameter) and not isinstance(exc, errors.MissingParameter)
            and param is not None):
        longs = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
        name = (longs or list(getattr(param, "opts", ())) or [""])[0]
        if param.param_type_name == "argument":
            name = (param.name or "argument").upper()
        text = f"{name}: {exc.message}"
    else:
        text = exc.format_message()
        text = f"{text[:1].lower()}{text[1:]}"
    text = " ".join(text.split()).rstrip(".")
    return f"{text} ({ctx.command_path if ctx is not None else 'planner'} --help)"


def usage_error(exc: Exception) -> None:
    """Re-raise ``exc`` unless it is a usage error of typer (click): then one line on stderr
    (:func:`usage_line`) and exit code 2. A bare ``planner`` (help for no arguments) is left to
    typer."""
    errors = click_exceptions()
    if isinstance(exc, errors.NoArgsIsHelpError) or not isinstance(exc, errors.ClickException):
        raise exc
    sys.stderr.write(f"error: {usage_line(exc)}\n")
    raise typer.Exit(2) from None
