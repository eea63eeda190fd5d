"""The shipped validation data (validation/*.yaml): found in a checkout and in the wheel, read by
the one spec loader (the cached path builds what validation builds), and its mistakes reported
as one-line spec errors naming the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from planner.catalog import load_paper, load_runs, validation_dir
from planner.errors import SpecError
from planner.specs.deployment import ServeConfig
from tests_support import REPO
from planner.specs.load import _construct, load_spec_file, validate
from planner.specs.validation import PaperFile, RunsFile

ROOT = REPO


def test_validation_dir_in_the_checkout_and_the_wheel():
    import tomllib

    import planner

    # A checkout (or an editable install) reads the top-level folder; a regular install (CI)
    # reads the wheel's copy, which holds the same files byte for byte.
    wheel_copy = Path(planner.__file__).parent / "_catalog" / "validation"
    assert validation_dir() in (ROOT / "validation", wheel_copy)
    names = {p.name for p in validation_dir().glob("*.yaml")}
    assert names == {"paper.yaml", "runs.yaml", "training.yaml", "error-bands.yaml"}
    for name in names:
        assert (validation_dir() / name).read_bytes() == (ROOT / "validation" / name).read_bytes()
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    include = build["targets"]["wheel"]["force-include"]
    assert include["validation"] == "planner/_catalog/validation"


def _types(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _types(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _types(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_types(v) for v in obj])
    return type(obj).__name__


@pytest.mark.parametrize("cls, name", [(PaperFile, "paper.yaml"), (RunsFile, "runs.yaml")])
def test_cached_construction_builds_what_validation_builds(cls, name):
    path = validation_dir() / name
    data = yaml.safe_load(path.read_text())
    fast, slow = _construct(cls, data), validate(cls, data, file=str(path))
    assert fast == slow and _types(fast) == _types(slow)


def test_deployments_are_serve_configs_with_types_kept():
    runs = load_runs()
    tbo = runs.runs["sglang-h100-decode-tbo"]
    assert isinstance(tbo.deployment, ServeConfig)
    assert tbo.deployment == ServeConfig(phase="decode", overlap="dual", gpus=72,
                                         batch_per_gpu=256.0, context_tokens=2000,
                                         expert_balance="eplb")
    # An int stays an int where the paper prints one (70,272 bytes), a float a float.
    figures = load_paper().figures
    assert type(figures["table1.kv.deepseek-v3"].value) is int
    assert type(figures["table2.train_flops.deepseek-v3"].value) is float


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


RUN = """sources: {s: a source}
runs:
  r1:
    source: s
    setup: a setup
    model: deepseek-v3
    hardware: h800
    measured_tokens_per_s_per_node: 100
    deployment: {DEPLOYMENT}
"""


@pytest.mark.parametrize("deployment, message", [
    ("{phase: decode, gpu: 8}", "runs.r1.deployment: unknown deployment field 'gpu'"),
    ("{phase: decode, gpus: 8.5}", "runs.r1.deployment: gpus: expected Optional[int], got 8.5"),
    ("{intranode_nvlink: 1}", "intranode_nvlink: expected bool, got 1"),
    ("{phase: train}", "runs.r1.deployment: phase must be one of decode, prefill"),
    ("{batch_per_gpu: true}", "batch_per_gpu: expected float, got True"),
])
def test_a_wrong_deployment_names_the_field(tmp_path, deployment, message):
    path = _write(tmp_path, "runs.yaml", RUN.replace("{DEPLOYMENT}", deployment))
    with pytest.raises(SpecError) as err:
        load_spec_file(RunsFile, path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_runs_file_cross_references_are_checked(tmp_path):
    ok = RUN.replace("{DEPLOYMENT}", "{phase: decode}")
    assert load_spec_file(RunsFile, _write(tmp_path, "ok.yaml", ok)).runs["r1"].deployment \
        == ServeConfig()
    bad_source = ok.replace("    source: s\n", "    source: t\n")
    with pytest.raises(SpecError, match="runs.r1.source: unknown source 't'"):
        load_spec_file(RunsFile, _write(tmp_path, "a.yaml", bad_source))
    ablation = ok + ("ablations:\n  a1: {source: s, setup: x, model: deepseek-v3, hardware: h800, "
                     "before_run: r1, after_run: r2}\n")
    with pytest.raises(SpecError, match="ablations.a1.after_run: unknown run 'r2'"):
        load_spec_file(RunsFile, _write(tmp_path, "b.yaml", ablation))
    both = ablation.replace("after_run: r2", "after_run: r1, after: {phase: decode}")
    with pytest.raises(SpecError, match="give exactly one of after, after_run"):
        load_spec_file(RunsFile, _write(tmp_path, "c.yaml", both))


def test_paper_file_checks_sections_and_errata(tmp_path):
    text = """source: P
sections: {t1: Table 1}
inputs: {}
figures:
  f1: {section: t1, quantity: q, metric: m, model: x, value: 1, unit: bytes, printed: "1 B"}
"""
    assert load_spec_file(PaperFile, _write(tmp_path, "ok.yaml", text)).figures["f1"].value == 1
    with pytest.raises(SpecError, match="figures.f1.section: unknown section 't2'"):
        load_spec_file(PaperFile, _write(tmp_path, "a.yaml", text.replace("section: t1",
                                                                          "section: t2")))
    with pytest.raises(SpecError, match="an erratum needs both"):
        load_spec_file(PaperFile, _write(tmp_path, "b.yaml", text.replace(
            'printed: "1 B"', 'printed: "1 B", erratum: wrong')))
    with pytest.raises(SpecError, match="figures.f1.rounding.mode"):
        load_spec_file(PaperFile, _write(tmp_path, "c.yaml", text.replace(
            'printed: "1 B"', 'printed: "1 B", rounding: {mode: ceil, digits: 0}')))


def test_ablations_between_runs_restate_the_runs_ratio():
    from planner.studies.validate import measured_ablations, measured_runs

    data, runs = load_runs(), {r.id: r for r in measured_runs()}
    between = [k for k, a in data.ablations.items() if a.measured_gain is None]
    assert len(between) == 2
    for a in measured_ablations():
        entry = data.ablations[a.id]
        if entry.measured_gain is None:
            lo, hi = runs[entry.before_run], runs[entry.after_run]
            gain = hi.measured / lo.measured - 1
            assert a.measured == (gain, gain) and f"{gain * 100:+.1f}%" in a.setup
            assert (a.before, a.after) == (lo.deployment, hi.deployment)
