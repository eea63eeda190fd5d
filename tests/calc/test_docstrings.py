"""The calculators' house rules, checked by walking planner.calc: every public function documents
its Formula, Ref, Convention and an Example; calc never names a CLI flag and never imports the
front ends (yaml, rich, typer, the catalog, report, cli); an input taken from an argument names
a real parameter, and the CLI prints its flag."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import planner.calc
from tests_support import REPO

SECTIONS = ("Formula:", "Ref:", "Convention:", "Example:")
#: Modules of shared pieces, not calculators.
NOT_CALCULATORS = {"planner.calc.common"}
#: Public functions that still lack a section: empty; a public function without them fails
#: the walk (a step that is not a calculator of its own is private, ``_name``).
EXPECTED_GAPS: set[str] = set()
CALC_DIR = REPO / "planner" / "calc"


def calc_modules():
    yield planner.calc
    for info in pkgutil.walk_packages(planner.calc.__path__, "planner.calc."):
        yield importlib.import_module(info.name)


def public_functions():
    seen = {}
    for module in calc_modules():
        if module.__name__ in NOT_CALCULATORS:
            continue
        for name, obj in vars(module).items():
            if (not name.startswith("_") and inspect.isfunction(obj)
                    and obj.__module__ == module.__name__):
                seen[f"{module.__name__}.{name}"] = obj
    return seen


def missing_sections(func) -> list[str]:
    doc = inspect.getdoc(func) or ""
    return [s for s in SECTIONS if s not in doc]


def test_the_walk_finds_the_calculators():
    names = {qualified.rsplit(".", 1)[1] for qualified in public_functions()}
    for expected in ("ep_decode_limit", "model_kv_cache", "model_flops_per_token",
                     "model_params", "train_run", "node_limited_routing", "pipeline_schedules",
                     "collective_time_s", "topology_cost", "expert_imbalance_ratio",
                     "format_errors", "serve"):
        assert expected in names


def test_every_public_calculator_has_formula_ref_convention_example():
    gaps = {q: missing_sections(f) for q, f in public_functions().items() if missing_sections(f)}
    new = {q: m for q, m in gaps.items() if q.rsplit(".", 1)[1] not in EXPECTED_GAPS}
    assert not new, f"public calc functions missing docstring sections: {new}"


def test_expected_gaps_are_still_gaps():
    """Keeps EXPECTED_GAPS honest: an entry whose function now has every section (or is gone)
    must leave the list."""
    by_name = {q.rsplit(".", 1)[1]: f for q, f in public_functions().items()}
    stale = sorted(n for n in EXPECTED_GAPS if n not in by_name or not missing_sections(by_name[n]))
    assert not stale, f"remove from EXPECTED_GAPS: {stale}"


def test_calc_exports_resolve():
    for name in planner.calc.__all__:
        assert getattr(planner.calc, name) is not None


# ----------------------------------------------------------------------------- boundaries
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
FORBIDDEN_IMPORTS = ("yaml", "rich", "typer", "planner.catalog", "planner.cli", "planner.report",
                     "planner.studies", "planner.budget")


def calc_sources():
    return sorted(CALC_DIR.rglob("*.py"))


def test_calc_names_no_cli_flag():
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in calc_sources()
            for i, line in enumerate(p.read_text().splitlines(), 1) if FLAG.search(line)]
    assert not hits, "calc names CLI flags:\n" + "\n".join(hits)


def test_calc_imports_no_front_end():
    bad = []
    for path in calc_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            bad += [f"{path.relative_to(REPO)}: {n}" for n in names
                    if any(n == f or n.startswith(f + ".") for f in FORBIDDEN_IMPORTS)]
    assert not bad, bad


# ----------------------------------------------------------------------------- provenance
def _argument_inputs(result):
    from planner.calc.common import ARGUMENT_ORIGIN_PREFIX

    return [i.origin[len(ARGUMENT_ORIGIN_PREFIX):] for i in result.inputs
            if i.origin.startswith(ARGUMENT_ORIGIN_PREFIX)]


@pytest.mark.parametrize("call", ["kv", "flops", "ep"])
def test_argument_origins_name_real_parameters(call, v3, h800):
    from planner.calc import ep, flops, kv_cache

    func, result = {
        "kv": (kv_cache.model_kv_cache, lambda: kv_cache.model_kv_cache(v3)),
        "flops": (flops.model_flops_per_token, lambda: flops.model_flops_per_token(v3)),
        "ep": (ep.ep_decode_limit, lambda: ep.ep_decode_limit(v3, h800)),
    }[call]
    parameters = _argument_inputs(result())
    assert parameters, "expected inputs taken from arguments"
    assert set(parameters) <= set(inspect.signature(func).parameters)


def test_cli_flag_for_and_origin():
    from planner.report.flags import cli_flag_for, cli_origin

    assert cli_flag_for("seq_len") == "--seq-len"
    assert cli_flag_for("num_micro_batches") == "--micro-batches"
    assert cli_origin("argument context_tokens") == "--context-tokens"
    assert cli_origin("model spec num_layers") == "model spec num_layers"


def test_explain_prints_flags_not_parameters():
    from typer.testing import CliRunner

    from planner.cli import app

    out = CliRunner().invoke(app, ["ep", "deepseek-v3", "-H", "h800", "--explain"]).stdout
    assert "--micro-batches" in out and "--tokens-per-device" in out
    assert "argument " not in out and "num_micro_batches" not in out
