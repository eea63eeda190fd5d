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
def test_readme_example_runs(command, expected):
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    if expected and expected[0].startswith("error:"):
        assert result.exit_code == 2
        assert result.stderr.strip() == "\n".join(expected).strip()
    else:
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip()


def test_readme_python_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "70272.0"
    assert out[1].startswith("250.4")


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    install, test = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert install == "pip install . && planner paper"
    assert test == 'pip install ".[test]" && pytest'
    assert test in (REPO / ".ci" / "run").read_text()
