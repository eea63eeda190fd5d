"""typer's (click's) own usage errors (an option's value out of its range or not a number, an
unknown option or command, a missing value or argument) as one line on stderr naming the
option and the problem, exit code 2, instead of click's multi-line usage box: the command
group :class:`PlannerGroup` of the app catches them where click raises them (the group's options,
the command name, each command's parameters)."""

import contextlib
import importlib
import sys
from typing import Any, Iterator

import typer
import typer.core


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


@contextlib.contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """typer's (click's) usage errors as one line on stderr, exit code 2, instead of its usage
    box; a bare ``planner`` (help for no arguments) is left to typer."""
    errors = click_exceptions()
    try:
        yield
    except errors.NoArgsIsHelpError:
        raise
    except errors.ClickException as exc:
        sys.stderr.write(f"error: {usage_line(exc)}\n")
        raise typer.Exit(2) from None


class PlannerGroup(typer.core.TyperGroup):
    """The app's command group: parsing errors (the group's options, the command name, each
    command's options and arguments) become one line and exit code 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)
