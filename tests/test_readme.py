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

#: Figures a README example must print, for the examples the README shows without output: the
#: paper's figures or hand-worked ones (the command's docstring or test works each out).
KEY_FIGURES = {
    "planner kv-cache deepseek-v3 qwen2.5-72b llama-3.1-405b":
        ["70,272", "327,680", "516,096", "4.66x", "7.34x"],            # P Table 1
    "planner kv-cache deepseek-v3 llama-3.1-70b --dtype fp8 --context-tokens 32768 --batch 8":
        ["40,016", "163,840", "10.490 GB"],   # 61 × 656 B (FlashMLA's FP8); × 32,768 × 8 = 10.49e9
    "planner flops deepseek-v2 deepseek-v3 qwen2.5-72b llama-3.1-405b --seq-len 4096":
        ["155.30", "250.45"],                                           # P Table 2
    "planner flops qwen2.5-72b --convention approx-12ld2 --parts": ["394.02", "131.340"],
    # 32 tokens × 9 experts × (7,408 + 14,336) B / 900 GB/s = 6.96 µs
    "planner ep deepseek-v3 --hardware gb200-nvl72 --ep 72 --explain": ["6.96 µs", "7,408"],
    "planner network": ["32,928", "261,632", "384,272", "131,072"],     # P Table 3
    # Slim Fly q = 13 (δ = 1): 338 routers, k' = 19, 10 endpoints each: 3,380
    "planner network ft3 sf --radix 48 --q 13": ["27,648", "3,380", "3,211"],
    "planner routing deepseek-v3 --hardware h800 --ep 64 --nodes 8":
        ["3.629", "5.295", "5.594 ms"],                                 # P §4.3
    'planner collective all-reduce --hardware h800 --size "1 GB" --ranks 8 --link scale-up':
        ["8.797 ms"],                                                   # 14 α + 14/8 n/B
    "planner pipeline --pp 16 --f 1.13 --b 1.99 --w 0.48 --micro-batches 64":
        ["46.800 s", "32.400 s", "25.690 s", "19.0%"],                  # V3R Table 2
    "planner train deepseek-v3 --hardware h800 --tokens 14.8T --gpus 2048 "
    "--tokens-per-day 272.8B": ["2,666,604", "54.25"],      # 14.8T / 272.8B = 54.25 days
    "planner paper --format markdown": ["70,272", "250.45", "14.757 ms"],
    # V3R: 180K GPU-hours per 1T tokens; the model: -13.1% (inside 15% from round six: -15.6%
    # with its wgrad rates alone, -16.5% before them, -16.3% before round
    # five, -16.7% before the MTP block's kernels were a MoE block's, -24.1% before round
    # four), and a fit at 80 GiB
    # with the paper's choices (docs/training.md)
    "planner train deepseek-v3 --hardware h800 --tokens 1T --gpus 2048 --pp 16 --ep 64 "
    "--global-batch 15360 --zero 1 --schedule dualpipe --fp8": ["156,500", "74.129 GB",
                                                                "usable: fits"],
    "planner train llama-3.1-70b --hardware h100 --tokens 1T --gpus 64 --global-batch 256 "
    "--search --top 5": ["Fastest layouts that fit", "1,686 fit"],
    # The plan's best point and the size of its search (tests/studies/test_plan_workload.py
    # re-runs every frontier point through serve_workload). 5,524.0 at 49.087 ms, 96,453
    # meeting the limits before MLA's prefill read the context-MLA kernel and the engines'
    # recalibration on it (mla11); 5,487.0 at 49.508 ms (FP4 experts, DP 16), 96,873 meeting
    # them before the routed experts' measured routing skew (fp8ctx15, round 15: EP's hottest
    # rank slower, MoE-TP chosen) and the engines' recalibration on it (5,080.2 at 46.551 ms,
    # 96,218, before round 15's three branches were merged); Llama's 604.8 before it.
    "planner plan deepseek-v3 -H h200 -H b200 --isl 1024 --osl 1024 --tpot-ms 50 "
    "--engine sglang":
        ["5,025.8", "47.104 ms", "126,720 layouts evaluated", "95,915 meet the limits"],
    "planner plan llama-3.1-70b -H h100 --isl 2048 --osl 512 --ttft-ms 1000 --tpot-ms 30 "
    "--request-rate 20 --engine vllm": ["fewest-gpus", "20 (5 x 4)", "605.6"],
}


def test_every_key_figure_is_of_a_readme_example():
    commands = {c for c, _ in EXAMPLES}
    assert set(KEY_FIGURES) <= commands, set(KEY_FIGURES) - commands


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
        # What the README shows under the command is what it prints (each shown line, up to
        # the spaces around it); where it shows nothing, the command's key figures.
        printed = {line.strip() for line in result.stdout.splitlines()}
        for line in expected:
            if line.strip():
                assert line.strip() in printed, line
        text = " ".join(result.stdout.split())
        for figure in KEY_FIGURES.get(command, ()):
            assert figure in text, figure


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
