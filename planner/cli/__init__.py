"""The ``planner`` command line: thin typer commands that parse options, call the library and
render with :mod:`planner.report`. No arithmetic here.

One module per command group (``catalog``, ``model``, ``serving``, ``calibrate``, ``cluster``,
``explore``, ``budget``); shared options in :mod:`planner.cli.options`. A group module registers its commands
on :data:`app` when it is imported, and :func:`main` imports only the group of the command it
runs (see :data:`COMMANDS`). ``from planner.cli import app`` gives the app with every command.

Annotations here are evaluated when the functions are defined (no ``from __future__ import
annotations``): typer reads them at every call, and string annotations would have to be compiled
and evaluated each time.
"""


import contextlib
import functools
import importlib
import inspect
import os
import sys
from typing import Any, Callable, Iterator

import typer
import typer.core

from planner.errors import PlannerError
from planner.vocab import SOURCE_ABBREVIATIONS

#: Every command, in the order ``planner --help`` lists them, and its group module.
COMMANDS: dict[str, str] = {
    "models": "catalog", "hardware": "catalog", "engines": "catalog", "show": "catalog",
    "kv-cache": "model", "flops": "model", "ep": "model", "paper": "model",
    "import-hf": "catalog", "compare": "explore", "sweep": "explore",
    "serve": "serving", "plan": "plan", "validate": "serving", "fit": "serving",
    "calibrate": "calibrate", "schema": "catalog",
    "serve-disagg": "disagg", "validate-disagg": "disagg",
    "network": "cluster", "pipeline": "cluster", "train": "cluster", "routing": "cluster",
    "collective": "cluster", "numerics": "model", "evaluate": "budget", "check": "budget",
}

class PlannerGroup(typer.core.TyperGroup):
    """The app's command group: an exception while parsing (the group's options, the command
    name, each command's parameters) goes to :func:`planner.cli.usage.usage_error`, which
    makes a usage error one line and exit code 2 (:func:`command` handles the rest)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except (typer.Exit, typer.Abort):   # --help, --version: done, not an error
            raise
        except Exception as exc:  # noqa: BLE001 - usage_error re-raises all but usage errors
            from planner.cli.usage import usage_error
            usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - as above
            from planner.cli.usage import usage_error
            usage_error(exc)


#: The options that print help (the app's ``help_option_names``).
HELP_OPTIONS = ("-h", "--help")

_app = typer.Typer(
    cls=PlannerGroup,
    name="planner",
    help="Closed-form LLM capacity planner: KV cache, FLOPs and expert-parallel communication "
         "for any model on any hardware, reproducing the DeepSeek-V3 ISCA 2025 paper.",
    no_args_is_help=True,
    # The commands' help cites the paper as "P" and the DeepSeek-V3 report as "V3R".
    epilog="; ".join(f"{short}: {meaning}" for short, meaning in SOURCE_ABBREVIATIONS),
    # --install-completion / --show-completion: bash, zsh, fish, PowerShell.
    add_completion=True,
    # Help is click's plain text, which wraps an option's name and help at any width; typer's
    # rich panels crop long option names to "--context-toke…" at 80 columns.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    # click caps help at 80 columns unless told; a wider terminal gets its width (to 200).
    context_settings={"help_option_names": list(HELP_OPTIONS), "max_content_width": 200},
)


def fail(err: PlannerError) -> None:
    """One line on stderr, exit code 2 (invalid input)."""
    sys.stderr.write(f"error: {err}\n")
    raise typer.Exit(err.exit_code)


def violated(reason: str) -> None:
    """A limit or budget no deployment meets: ``violated: <reason>`` on one line on stderr (the
    results are already on stdout), exit code 1 (:data:`planner.errors.EXIT_VIOLATION`), as
    ``planner check`` exits on a violated budget."""
    from planner.errors import EXIT_VIOLATION

    sys.stderr.write(f"violated: {' '.join(reason.split())}\n")
    raise typer.Exit(EXIT_VIOLATION)


#: Longest exception text an internal-error line repeats.
MAX_CRASH_TEXT = 300


def crash(name: str, exc: BaseException) -> None:
    """An unexpected exception in ``planner <name>``: one line on stderr naming the command and
    the exception, exit code :data:`planner.errors.EXIT_INTERNAL` (3); the traceback too when
    ``PLANNER_TRACEBACK=1``."""
    import os

    from planner.errors import EXIT_INTERNAL

    if os.environ.get("PLANNER_TRACEBACK") == "1":
        import traceback

        traceback.print_exception(exc)
    text = " ".join(str(exc).split())
    if len(text) > MAX_CRASH_TEXT:
        text = f"{text[:MAX_CRASH_TEXT]}..."
    sys.stderr.write(f"error: internal error in `planner {name}`: {type(exc).__name__}"
                     f"{f': {text}' if text else ''} (a bug in the planner, not in your input; "
                     "PLANNER_TRACEBACK=1 shows where)\n")
    raise typer.Exit(EXIT_INTERNAL)


#: Exit code of an interrupted command (128 + SIGINT, as shells report it), never 1.
EXIT_INTERRUPTED = 130
#: Exit code when the reader of stdout went away (``planner ... | head``): 128 + SIGPIPE, as
#: shells report a command a closed pipe stopped; nothing printed, not a crash.
EXIT_BROKEN_PIPE = 141


def _quiet_stdout() -> None:
    """Stdout to /dev/null after a broken pipe (Python's flush at exit would fail again)."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):     # stdout without a file descriptor
        pass


def _option_names(fn: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> how the user wrote it (``--usd-per-gpu-hour``, ``MODEL``)."""
    import inspect

    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        decls = getattr(param.default, "param_decls", None) or ()
        long = [d for d in decls if d.startswith("--")]
        out[name] = long[0].split("/")[0] if long else name.upper()
    return out


def check_numbers(values: dict[str, Any], names: dict[str, str]) -> None:
    """Refuse a NaN, an infinity or a number above the largest a spec file accepts
    (:data:`planner.specs._types.MAX_SPEC_NUMBER`) in any numeric option, as spec files do: a
    :class:`planner.errors.UsageError` naming the option."""
    import math

    from planner.errors import UsageError
    from planner.specs._types import MAX_SPEC_NUMBER

    for key, value in values.items():
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise UsageError(f"{names.get(key, key)}: expected a finite number (got {v})")
            if abs(v) > MAX_SPEC_NUMBER:
                shown = f"{v:,}" if isinstance(v, int) else f"{v:.6g}"
                raise UsageError(f"{names.get(key, key)}: {shown} is above the largest number "
                                 f"accepted, {MAX_SPEC_NUMBER:.0e}".replace("e+", "e"))


def command(name: str, **kw: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.command`` that checks the numbers given (:func:`check_numbers`), turns a
    :class:`PlannerError` into one line and exit code 2, and any other exception into one line
    and exit code 3 (:func:`crash`)."""

    def wrap(fn: Callable[..., Any]) -> Any:
        names = _option_names(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            _take_spec_notes()   # notes of specs an earlier command (in this process) loaded
            try:
                check_numbers(kwargs, names)
                return fn(*args, **kwargs)
            except PlannerError as err:
                fail(err)
            except OverflowError:
                fail(PlannerError("a number given is too large to compute with"))
            except (typer.Exit, typer.Abort):
                raise
            except KeyboardInterrupt:
                sys.stderr.write("interrupted\n")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            except BrokenPipeError:
                _quiet_stdout()
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
            except Exception as exc:  # noqa: BLE001 - every other exception is a crash
                crash(name, exc)

        return _app.command(name, **kw)(run)

    return wrap


def write_file(path: str, text: str, what: str = "the file") -> None:
    """Write ``text`` to ``path`` whole or not at all (:func:`replace_file`), or a one-line
    error naming the file."""
    with replace_file(path, what) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if tmp != path:         # a file to rename, not a stream: on disk before the rename
                os.fsync(fh.fileno())


@contextlib.contextmanager
def replace_file(path: str, what: str = "the file") -> Iterator[str]:
    """A temporary path in ``path``'s directory to write, renamed onto ``path`` when the block
    ends without an error (removed otherwise): a reader sees the old file or the whole new one,
    never part of it. A symbolic link at ``path`` is replaced by the file, never followed (its
    target is left as it was); a device or FIFO (``/dev/stdout``, a pipe) is written in place;
    a directory is an error. The new file gets the old file's permissions, else the umask's."""
    import stat
    import tempfile

    from planner.errors import SpecError

    def refuse(exc: OSError) -> SpecError:
        return SpecError(f"cannot write {what} ({exc.strerror or exc})", file=path)

    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode) and not os.path.islink(path):
        raise SpecError(f"is a directory, cannot write {what} here", file=path)
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        try:
            yield path      # a device, FIFO or socket: a stream, not a file to replace
        except OSError as exc:
            raise refuse(exc) from None
        return
    folder, base = os.path.split(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base[:100]}.",
                                   suffix=f".tmp{os.path.splitext(base)[1][:16]}", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise refuse(exc) from None
    try:
        yield tmp
        own = None if os.path.islink(path) or not os.path.isfile(path) else os.stat(path)
        os.chmod(tmp, stat.S_IMODE(own.st_mode) if own else 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise refuse(exc) from None
    except PlannerError as err:
        _remove(tmp)
        if err.file == tmp:         # name the file the user gave, not the temporary one
            err.file = path
        raise
    except BaseException:
        _remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def emit(text: str, output: str | None, what: str = "the file") -> None:
    """``text`` to stdout, or to the file ``output`` (saying so on stderr)."""
    if output is None:
        sys.stdout.write(text)
        return
    write_file(output, text, what)
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
    from planner.report.table import spec_notes_text

    render(tables, fmt.value)
    stream = sys.stdout if fmt.value in ("table", "markdown") else sys.stderr
    stream.write(spec_notes_text(_take_spec_notes(), stream, wrap=fmt.value == "table"))


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


def _first_sentence(callback: Callable[..., Any]) -> str | None:
    """A command's line in ``planner --help``: its docstring's first sentence, whole (click's
    default cuts it at ~45 characters with "..."); the help list wraps it at any width."""
    paragraph = " ".join((inspect.getdoc(callback) or "").split("\n\n", 1)[0].split())
    head, dot, _ = paragraph.partition(". ")
    return f"{head}{dot.strip()}" or None


def _abbreviations(callback: Callable[..., Any]) -> str | None:
    """What the sources a command's help cites by abbreviation ("P Table 3") stand for, for the
    end of its help, or None."""
    from planner.vocab import abbreviations_used

    helps = [getattr(p.default, "help", None) or ""
             for p in inspect.signature(callback).parameters.values()]
    return abbreviations_used("\n".join([inspect.getdoc(callback) or "", *helps])) or None


def load_commands(names: Any = None, *, for_help: bool = True) -> typer.Typer:
    """Import the group modules of ``names`` (default: every command), which register their
    commands on the app, keep the app's commands in :data:`COMMANDS` order, return the app;
    ``for_help`` also readies their help (the sources' abbreviations), which
    only help shows (:func:`main` skips it for a call that prints none)."""
    for group in dict.fromkeys(COMMANDS[n] for n in (COMMANDS if names is None else names)):
        importlib.import_module(f"{__name__}.{group}")
    order: dict[str | None, int] = {n: i for i, n in enumerate(COMMANDS)}
    _app.registered_commands.sort(key=lambda c: order.get(c.name, len(order)))
    for registered in _app.registered_commands if for_help else ():
        if registered.callback is not None:
            registered.short_help = registered.short_help or _first_sentence(registered.callback)
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
    and only that command is registered, so a call pays for its own command, and its help is
    readied only when asked for. Help, completion and unknown names see them all;
    ``planner --version`` none.
    """
    args = sys.argv[1:]
    name = args[0] if args else None
    if args == ["--version"]:
        app = load_commands([], for_help=False)
    else:
        helping = name not in COMMANDS or any(a in HELP_OPTIONS for a in args)
        app = load_commands([name] if name in COMMANDS else None, for_help=helping)
    everything = app.registered_commands
    chosen = [c for c in everything if c.name == name]
    try:
        if chosen:
            app.registered_commands = chosen
        app(prog_name="planner")
    finally:
        app.registered_commands = everything
