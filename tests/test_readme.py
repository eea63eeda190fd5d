"""Every README example runs: each `$ planner ...` line of a console block exits as shown (0, or
2 with the printed error line), and the set-up commands are the ones CI runs."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from planner.cli import app
from tests_support import REPO

README = (REPO / "README.md").read_text()


def console_examples() -> list[tuple[str, list[str]]]:
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ planner "):
                expected = []
                for follow in lines[i + 1:]:
                    if follow.startswith("$ "):
                        break
                    expected.append(follow)
                examples.append((line[2:], expected))
    return examples


EXAMPLES = console_examples()


def test_readme_has_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_runs(command, expected, monkeypatch, tmp_path):
    """Run from the repository (examples name `specs/`), writing files into a temporary copy."""
    monkeypatch.chdir(REPO)
    args = [str(tmp_path / a) if a.endswith(".xml") else a for a in shlex.split(command)[1:]]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    if expected and expected[0].startswith("error:"):
        assert result.exit_code == 2
        assert result.stderr.strip() == "\n".join(expected).strip()
    elif expected and expected[0].startswith("violated:"):
        assert result.exit_code == 1
        assert result.stderr.strip() == "\n".join(expected).strip()
        assert result.stdout.strip()
    else:
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip()


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"block{i}" for i in
                                                      range(len(PYTHON_BLOCKS))])
def test_readme_python_example_prints_what_its_comments_say(code, capsys, monkeypatch):
    """Each ``print(...)  # N`` prints N, to the precision N is written with."""
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    prints = [line for line in code.splitlines() if line.startswith("print(")]
    assert len(out) == len(prints)          # one line per print
    claims = [(i, line.split("#", 1)[1]) for i, line in enumerate(prints) if "#" in line]
    assert claims, "a README python block should show what it prints"
    for i, claim in claims:
        printed = out[i]
        for want, got in zip(_numbers(claim), _numbers(printed), strict=True):
            decimals = len(want.split(".")[1]) if "." in want else 0
            assert round(float(got), decimals) == float(want), (claim, printed)


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    install, test = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    # A fresh machine first: a virtual environment (Debian's and Ubuntu's system Python refuse
    # pip install outside one), then the install and the first command.
    assert install == ("python3 -m venv .venv && . .venv/bin/activate && pip install . "
                       "&& planner paper")
    assert test == 'pip install ".[test]" && pytest'
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and "pip install --quiet . " in ci and test in ci
