"""Every usage error typer (click) finds while parsing is one line on stderr naming the option
and the problem, exit code 2, nothing on stdout: never its multi-line usage box. Checked over
every command and each of its options: an unknown option, a value below an option's minimum,
a value that is not a number, a choice that is not one of the choices, a missing value."""

from __future__ import annotations

import pytest
import typer

from planner.cli import COMMANDS, app
from tests_support import cli_run


def _commands():
    group = typer.main.get_command(app)
    return [(name, group.commands[name]) for name in COMMANDS]


def _bad_values(param):
    """(value, words the error line must hold) for ``param``: each kind of mistake its type
    lets us make."""
    from planner.cli.usage import click_exceptions

    kind = type(param.type).__name__
    out = []
    if kind in ("IntRange", "FloatRange") and param.type.min is not None:
        out.append((str(param.type.min - 1), ["is not in the range"]))
    if kind in ("IntRange", "FloatRange", "IntParamType", "FloatParamType"):
        out.append(("abc", ["'abc'"]))
    if kind == "Choice":
        out.append(("no-such-choice", ["'no-such-choice' is not one of"]))
    if kind == "FuncParamType" and param.metavar == "TOKENS":      # tokens_option
        out.append(("abc", ["'abc'"]))
    assert click_exceptions() is not None
    return out


CASES = [(name, param.opts[0], value, words)
         for name, cmd in _commands() for param in cmd.params
         if param.param_type_name == "option" and not param.is_flag
         for value, words in _bad_values(param)]


def _one_line(result, *words):
    assert result.exit_code == 2, result.output
    assert not result.stdout
    line = result.stderr
    assert line.count("\n") == 1 and line.startswith("error: "), line
    for w in words:
        assert w in line, (w, line)
    assert "Usage:" not in line and "╭" not in line


def test_the_cases_cover_every_command_with_numeric_options():
    covered = {name for name, *_ in CASES}
    assert {"serve", "plan", "train", "serve-disagg", "kv-cache", "ep", "routing"} <= covered
    assert len(CASES) > 100, len(CASES)


@pytest.mark.parametrize("name, option, value, words", CASES,
                         ids=[f"{c[0]} {c[1]} {c[2]}" for c in CASES])
def test_a_bad_option_value_is_one_line(name, option, value, words):
    _one_line(cli_run(name, option, value), option, f"(planner {name} --help)", *words)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_unknown_option_is_one_line(name):
    _one_line(cli_run(name, "--no-such-option"), "no such option: --no-such-option",
              f"planner {name} --help")


@pytest.mark.parametrize("name, option", [
    (name, param.opts[0]) for name, cmd in _commands() for param in cmd.params
    if param.param_type_name == "option" and not param.is_flag and param.opts[0].startswith("--")
    and param.opts[0] not in ("--help",)])
def test_an_option_without_its_value_is_one_line(name, option):
    _one_line(cli_run(name, option), option, "requires an argument")


def test_the_examples_of_the_brief():
    _one_line(cli_run("serve", "llama-3.1-8b", "-H", "h100", "--gpus", "-1"),
              "--gpus: -1 is not in the range x>=1")
    _one_line(cli_run("plan", "llama-3.1-8b", "-H", "h100", "--isl", "abc", "--osl", "1"),
              "--isl: ")
    _one_line(cli_run("serve", "llama-3.1-8b", "-H", "h100", "--isl", "abc"), "--isl: ")
    _one_line(cli_run("train", "deepseek-v3", "-H", "h100"), "missing option '--tokens'")
    _one_line(cli_run("kv-cache"), "missing argument", "(planner kv-cache --help)")
    _one_line(cli_run("no-such-command"), "no such command 'no-such-command'")
    _one_line(cli_run("--no-such-option"), "no such option", "(planner --help)")


def test_help_and_a_bare_planner_are_untouched():
    assert cli_run("serve", "--help").exit_code == 0
    bare = cli_run()
    assert "Usage: planner" in bare.output and "error:" not in bare.output


def test_the_console_script_prints_one_line_too(capsys, monkeypatch):
    """`main()` (the console script, which registers only the command named) as a user runs it."""
    import sys

    from planner.cli import main

    monkeypatch.setattr(sys, "argv", ["planner", "serve", "llama-3.1-8b", "-H", "h100",
                                      "--batch-per-gpu", "0"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: --batch-per-gpu: 0.0 is not in the range x>=1 "
                   "(planner serve --help)\n")


@pytest.mark.parametrize("extra, named", [
    (["--mfu", "0.4", "--pp", "16", "--zero", "1"], "--pp, --zero"),
    (["--gpu-hours", "1M", "--global-batch", "256"], "--global-batch"),
    (["--tokens-per-day", "100B", "--fp8"], "--fp8"),
    (["--global-batch", "256", "--top", "3"], "--top"),
])
def test_train_refuses_options_its_mode_does_not_read(extra, named):
    """The accounting mode (speed given) reads no layout, and --top only counts --search's
    layouts: such an option is refused in one line, never silently ignored."""
    result = cli_run("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                     *extra)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and named in result.stderr


def test_train_accounting_and_layout_modes_still_run():
    assert cli_run("train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "2048",
                   "--mfu", "0.4").exit_code == 0
    assert cli_run("train", "llama-3.1-8b", "-H", "h100", "--tokens", "1T", "--gpus", "64",
                   "--global-batch", "256", "--search", "--top", "2").exit_code in (0, 1)
