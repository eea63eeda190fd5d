"""A user's first minutes: --version, shell completion, help that says what it means (no text
lost to rich markup), the plot extra's install line, catalog names in any case with suggestions
for near misses, and token options that take "32k"."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from planner import __distribution__, __version__
from planner.catalog import load_hardware, load_model, resolve
from planner.cli import COMMANDS, app
from planner.errors import CatalogError
from planner.units import parse_count
from tests_support import REPO

runner = CliRunner()


def run(*args: str, **kw):
    return runner.invoke(app, list(args), catch_exceptions=False, **kw)


def test_version_prints_the_package_version_and_the_distribution():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"planner {__version__} (distribution {__distribution__})"


def test_the_distribution_is_named_in_pyproject_and_is_not_the_unrelated_planner():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'^name = "{re.escape(__distribution__)}"$', pyproject, flags=re.M)
    assert __distribution__ != "planner"


def test_help_offers_shell_completion_and_completion_answers():
    result = run("--help", env={"COLUMNS": "120"})
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
    env = dict(os.environ, _PLANNER_COMPLETE="complete_bash", COMP_WORDS="planner kv",
               COMP_CWORD="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "planner"], env=env, capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    assert done.stdout.split() == ["kv-cache"]




def _help_params(name: str) -> list:
    command = typer.main.get_command(app)
    return list(command.commands[name].params)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("columns", ["80", "200"])
def test_every_help_text_is_printed_whole(name, columns):
    """rich read "[default: 1]" and "[plot]" as markup tags and dropped them, leaving lines like
    "Attention TP ." (about 20 of them), and cropped option names to "--context-toke…" at 80
    columns: every option's name and every character of its help must be printed (the help
    wraps, so it is compared with the whitespace taken out)."""
    result = run(name, "--help", env={"COLUMNS": columns})
    assert result.exit_code == 0
    assert "…" not in result.stdout
    printed = "".join(result.stdout.split())
    for param in _help_params(name):
        options = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("-")]
        for opt in options:   # whole, never cropped or broken across lines
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", result.stdout), opt
        text = "".join((getattr(param, "help", None) or "").split())
        assert text in printed, param.name
    assert not re.search(r"\S \.\s*$", result.stdout, re.M), "a help line ends in a stray ' .'"


def test_serve_tp_help_says_its_default():
    result = run("serve", "--help", env={"COLUMNS": "200"})
    # The help wraps (at spaces and hyphens): compare without whitespace, the default included.
    assert "".join("Attention TP [default: the smallest TP that fits in memory, said in the "
                   "output; 1 with --dp-attention, the scale-up domain with "
                   "--no-dp-attention].".split()) in "".join(result.stdout.split())


def test_sweep_plot_help_names_the_install_command():
    result = run("sweep", "--help", env={"COLUMNS": "200"})
    assert f"pipinstall'{__distribution__}[plot]'" in "".join(result.stdout.split())


# ----------------------------------------------------------------------------- catalog names
@pytest.mark.parametrize("name, canonical", [("H100", "h100"), ("H800-RoCE", "h800-roce"),
                                             ("GB200-NVL72", "gb200-nvl72")])
def test_hardware_names_are_read_in_any_case(name, canonical):
    assert load_hardware(name).name == canonical


@pytest.mark.parametrize("name, canonical", [("Llama-3.1-70B", "llama-3.1-70b"),
                                             ("DeepSeek-V3", "deepseek-v3")])
def test_model_names_are_read_in_any_case(name, canonical):
    assert load_model(name).name == canonical
    assert resolve("model", name).stem == canonical


@pytest.mark.parametrize("kind, name, suggested", [
    ("model", "llama-3-70b", "llama-3.1-70b"),
    ("model", "deepseek-v4", "deepseek-v3"),
    ("model", "qwen3-235b", "qwen3-235b-a22b"),
    ("hardware", "h1000", "h100"),
    ("hardware", "B200X", "b200"),
])
def test_a_near_miss_is_answered_with_the_closest_names(kind, name, suggested):
    with pytest.raises(CatalogError, match=r"did you mean [^;]*" + re.escape(suggested)):
        resolve(kind, name)


def test_a_far_miss_lists_the_names_without_a_guess():
    with pytest.raises(CatalogError) as info:
        resolve("model", "no-such-model")
    assert "did you mean" not in str(info.value) and "valid names: deepseek-v2" in str(info.value)


def test_the_cli_takes_a_name_in_another_case_and_suggests_on_a_miss():
    assert run("fit", "Llama-3.1-70B", "-H", "H800", "-f", "json").exit_code == 0
    result = run("kv-cache", "llama-3-70b")
    assert result.exit_code == 2 and "did you mean llama-3.3-70b or llama-3.1-70b" in \
        result.stderr


# ----------------------------------------------------------------------------- token counts
@pytest.mark.parametrize("text, count", [("4096", 4096), (4096, 4096), ("32k", 32_000),
                                         ("32K", 32_000), ("32Ki", 32_768), ("1.5M", 1_500_000),
                                         ("128 k", 128_000), ("14.8T", 14_800_000_000_000)])
def test_parse_count(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["1.5", "0", "-3", "32 KB", "nan", "inf", "2e15", "1.5k7"])
def test_parse_count_refuses(text):
    with pytest.raises(ValueError):
        parse_count(text)


@pytest.mark.parametrize("args", [
    ["kv-cache", "deepseek-v3", "--context-tokens", "32k"],
    ["compare", "deepseek-v3", "--context-tokens", "32k"],
    ["fit", "deepseek-v3", "-H", "h200", "--context-tokens", "32k"],
    ["serve", "deepseek-v3", "-H", "h800", "--gpus", "32", "--context-tokens", "32k"],
])
def test_context_tokens_take_count_suffixes(args):
    result = run(*args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert '"context_tokens": 32000' in result.stdout


def test_seq_len_and_prompt_tokens_take_count_suffixes():
    flops = run("flops", "deepseek-v3", "--seq-len", "4Ki", "-f", "json")
    assert '"seq_len": 4096' in flops.stdout
    prefill = run("serve", "deepseek-v3", "-H", "h800", "--phase", "prefill", "--gpus", "32",
                  "--prompt-tokens", "8Ki", "-f", "json")
    assert prefill.exit_code == 0 and '"context_tokens": 8192' in prefill.stdout


def test_a_fractional_token_count_is_a_usage_error():
    result = run("kv-cache", "deepseek-v3", "--context-tokens", "1.5")
    assert result.exit_code == 2 and "not a whole number" in result.stderr


# ----------------------------------------------------------------------------- P and V3R
_P = re.compile(r"(?<![\w-])P(?![\w-])")


@pytest.mark.parametrize("args", [["network"], ["paper"], ["paper", "-f", "markdown"],
                                  ["pipeline"], ["numerics", "--formats", "e4m3"],
                                  ["routing", "deepseek-v3", "-H", "h800"]])
def test_an_output_that_cites_p_or_v3r_says_what_they_are(args):
    out = re.sub(r"\s+", " ", run(*args, env={"COLUMNS": "200"}).stdout)
    assert _P.search(out) or "V3R" in out
    if _P.search(out):
        assert "P: the paper: Zhao et al." in out and "arXiv 2505.09343" in out
    if "V3R" in out:
        assert "V3R: the DeepSeek-V3 Technical Report, arXiv 2412.19437" in out


def test_an_output_without_them_has_no_legend():
    assert "arXiv 2505.09343" not in run("kv-cache", "deepseek-v3").stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_help_that_cites_p_or_v3r_says_what_they_are(name):
    out = run(name, "--help", env={"COLUMNS": "200"}).stdout
    flat = re.sub(r"\s+", " ", out)
    if _P.search(out):
        assert "P: the paper: Zhao et al." in flat, name
    if "V3R" in out:
        assert "V3R: the DeepSeek-V3 Technical Report" in flat, name


def test_the_app_help_defines_p_and_v3r():
    flat = re.sub(r"\s+", " ", run("--help", env={"COLUMNS": "200"}).stdout)
    assert "P: the paper" in flat and "V3R: the DeepSeek-V3 Technical Report" in flat


def test_no_file_points_at_a_folder_outside_the_repository():
    """References went to a reference folder beside the checkout, which a user does not have."""
    outside = "../" + "shared/"
    hits = []
    for folder in ("planner", "hardware", "models", "validation", "specs", "docs", "tests",
                   "benchmarks"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".md", ".txt"}:
                if outside in path.read_text(encoding="utf-8", errors="replace"):
                    hits.append(str(path.relative_to(REPO)))
    for name in ("README.md", "pyproject.toml"):
        if outside in (REPO / name).read_text():
            hits.append(name)
    assert not hits, hits


def test_the_readme_defines_p_and_v3r_before_using_them():
    readme = (REPO / "README.md").read_text()
    first_p = _P.search(readme)
    assert first_p is not None
    definition = readme.index("**P** is that paper")
    assert definition <= first_p.start() + 2
    assert readme.index("**V3R**") < readme.index("V3R:")
    assert "## References" in readme and "arXiv 2412.19437" in readme
