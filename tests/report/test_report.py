"""planner.report: the package stays cheap to import, every name it exports resolves to its
module, a builder's display rows come from its records, and notes read the calculators'
constants instead of retyping them."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from planner import catalog, report
from tests_support import REPO


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def test_importing_the_package_imports_no_submodule_nor_rich():
    out = _fresh("import sys, planner.report\n"
                 "print(sorted(m for m in sys.modules if m.startswith(('planner.report.', "
                 "'rich', 'numpy', 'pydantic', 'planner.calc'))))")
    assert out.strip() == "[]"


def test_json_rendering_does_not_import_rich_but_a_table_does():
    code = ("import io, sys\nfrom planner import report\n"
            "t = report.Table('t', ['a', 'b'])\nt.add({'a': 1}, ['1', '2'])\n"
            "report.render([t], 'json', io.StringIO())\nprint('rich' in sys.modules)\n"
            "report.render([t], 'table', io.StringIO())\nprint('rich' in sys.modules)")
    assert _fresh(code).split() == ["False", "True"]


def test_every_export_resolves_from_its_module():
    import importlib

    for name in report.__all__:
        module = importlib.import_module(f"planner.report.{report._EXPORTS[name]}")
        assert getattr(report, name) is getattr(module, name), name
    # a submodule never shadows an exported function of the same name
    assert callable(report.render) and report.render.__module__ == "planner.report.table"


def test_rows_and_records_come_in_pairs():
    from planner.calc.kv_cache import kv_cache_for_models

    models = ["deepseek-v3", "qwen2.5-72b"]
    results = kv_cache_for_models([catalog.load_model(m) for m in models])
    t = report.kv_cache_table(results)
    assert len(t.rows) == len(t.records) == 2
    for row, rec in zip(t.rows, t.records):
        assert row[0] == rec["model"]
        assert row[4] == f"{rec['kv_cache_bytes_per_token']:,.0f}"
    out = io.StringIO()
    report.render([t], "json", out)
    assert [r["model"] for r in json.loads(out.getvalue())] == models


def test_serve_and_fit_notes_read_the_workspace_fraction(monkeypatch):
    from planner.calc import serving
    from planner.specs.deployment import ServeConfig

    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    r = serving.serve(v3, h800, ServeConfig(gpus=320, batch_per_gpu=32))
    fit = serving.fewest_gpus(v3, h800)
    assert "workspace = 10% of the memory an engine" in report.serve_tables(r)[1].notes[0]
    assert "10% of it kept for workspace" in report.fit_table([fit]).notes[0]
    monkeypatch.setattr(serving, "WORKSPACE_FRAC", 0.25)
    assert "workspace = 25% of the memory an engine" in report.serve_tables(r)[1].notes[0]
    assert "25% of it kept for workspace" in report.fit_table([fit]).notes[0]


def test_numerics_and_flops_notes_read_the_calculators_constants(monkeypatch):
    from planner.calc import flops, numerics

    monkeypatch.setattr(numerics, "DEFAULT_HIDDEN_SIZE", 4096)
    monkeypatch.setattr(numerics, "ACCUM_FRACTION_BITS", 14)
    tables = report.numerics_tables([], [], [{"format": "bf16", "bytes": 8192}], seed=0)
    assert tables[2].title.endswith("(hidden 4096)")
    assert "14 fraction bits" in tables[1].title and "keeps 14 fraction bits" in tables[1].notes[0]
    monkeypatch.setattr(flops, "FWD_BWD_FACTOR", 4)
    fl = flops.model_flops_per_token(catalog.load_model("deepseek-v3"))
    assert report.flops_table([fl]).notes[0].endswith("training = 4 x forward.")


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_check_outputs_render_in_every_format(fmt):
    import planner

    result = planner.check(REPO / "specs")
    out = io.StringIO()
    report.render([report.check_table(result)], fmt, out)
    assert out.getvalue().strip()
    assert report.junit_xml(result).startswith("<?xml")
