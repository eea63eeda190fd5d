"""H200 kernel factors measured by benchmarks/kernels_h200.py (issue 19 item 5): every figure
docs/kernels-h200.md and the JSON's ``reduced`` block record is recomputed from the raw times in
benchmarks/results/h200-kernels.json (ours) and from hardware/h200.yaml (theirs). No GPU needed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics

import pytest
from tests_support import REPO

from planner import catalog
from planner.calc.serving.efficiency import (
    gemm_weight_bandwidth_frac,
    hbm_bandwidth_frac,
)

RESULT = REPO / "benchmarks" / "results" / "h200-kernels.json"
DOC = REPO / "docs" / "kernels-h200.md"
PEAK_TFLOPS = {"bf16": 989.0, "fp8": 1979.0}
PEAK_TB_PER_S = 4.8


@pytest.fixture(scope="module")
def record():
    return json.loads(RESULT.read_text())


@pytest.fixture(scope="module")
def doc():
    return DOC.read_text()


def _gemm_median_tflops(record, dtype, m):
    vals = [2 * e["m"] * e["n"] * e["k"] / (e["median_ms"] * 1e-3) / 1e12
            for e in record["gemm"] if e["dtype"] == dtype and e["m"] == m]
    assert len(vals) == 11, (dtype, m)
    return statistics.median(vals)


def test_record_is_one_h200_run_with_its_raw_times(record):
    assert record["meta"]["gpu_name"] == "NVIDIA H200"
    assert record["meta"]["torch"].startswith("2.11")
    for entry in record["gemm"] + record["hbm_copy"] + record["attention"]:
        assert "error" not in entry
        assert len(entry["per_launch_ms"]) == record["meta"]["repeats"]
        assert entry["median_ms"] == pytest.approx(statistics.median(entry["per_launch_ms"]),
                                                   abs=1e-6)
    for check in record["checks"]:
        for key, value in check.items():
            assert key.endswith("rel_err") and value < 1e-2 or key == "finite" and value


def test_reduced_block_is_recomputed_from_raw_times(record):
    for dtype in ("bf16", "fp8"):
        table = record["reduced"]["gemm"][dtype]
        for m, tflops, frac in zip(table["rows"], table["achieved_tflop_per_s"], table["frac"]):
            ours = _gemm_median_tflops(record, dtype, m)
            assert tflops == pytest.approx(ours, abs=0.05)
            assert frac == pytest.approx(ours / PEAK_TFLOPS[dtype], abs=5e-5)
    best = max(e["bytes"] / (e["median_ms"] * 1e-3) / 1e12 for e in record["hbm_copy"])
    assert record["reduced"]["hbm_copy"]["tb_per_s"] == pytest.approx(best, abs=5e-4)


_GEMM_ROW = re.compile(r"^\| (bf16|fp8) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                       re.MULTILINE)


def test_doc_gemm_table_ours_from_json_theirs_from_spec(record, doc):
    hw = catalog.load_hardware("h200")
    rows = _GEMM_ROW.findall(doc)
    assert len(rows) == 10
    for dtype, m, tflops, frac, theirs, ratio in rows:
        ours = _gemm_median_tflops(record, dtype, int(m))
        assert float(tflops) == pytest.approx(ours, abs=0.05)
        assert float(frac) == pytest.approx(ours / PEAK_TFLOPS[dtype], abs=5e-5)
        # the table's own points: the M of this row is one of the spec table's rows
        table = hw.efficiency.gemm[dtype]
        assert float(m) in table.rows
        # theirs: the table's measured point (the reading function may cap a noisy point so
        # that time never falls with M; the comparison is of measurements)
        assert float(theirs) == pytest.approx(table.frac[table.rows.index(float(m))],
                                              abs=5e-5)
        assert float(ratio) == pytest.approx(float(frac) / float(theirs), abs=0.005)


def _tb(doc, label):
    match = re.search(re.escape(label) + r"[^|]*\| ([\d.]+) TB/s \(([\d.]+)\) \| ([^|]+)\|", doc)
    assert match, label
    return float(match.group(1)), float(match.group(2)), match.group(3).strip()


def test_doc_memory_rows_from_json_and_spec(record, doc):
    hw = catalog.load_hardware("h200")
    copy_tb = max(e["bytes"] / (e["median_ms"] * 1e-3) / 1e12 for e in record["hbm_copy"])
    tb, frac, _ = _tb(doc, "| HBM copy")
    assert tb == pytest.approx(copy_tb, abs=5e-4)
    assert frac == pytest.approx(copy_tb / PEAK_TB_PER_S, abs=5e-5)

    kv = [e["batch"] * e["context"] * e["kv_heads"] * e["head_dim"] * 4
          / (e["median_ms"] * 1e-3) / 1e12 for e in record["attention"]
          if e["variant"] == "grouped"]
    tb, frac, theirs = _tb(doc, "| `hbm_bandwidth`")
    assert tb == pytest.approx(statistics.median(kv), abs=5e-4)
    assert frac == pytest.approx(statistics.median(kv) / PEAK_TB_PER_S, abs=5e-5)
    assert f"({hbm_bandwidth_frac(hw)})" in theirs

    stream = [(2 * e["n"] * e["k"] + 2 * e["m"] * (e["n"] + e["k"])) / (e["median_ms"] * 1e-3)
              / 1e12 for e in record["gemm"] if e["dtype"] == "bf16" and e["m"] == 16]
    tb, frac, theirs = _tb(doc, "| `gemm_weight_bandwidth`")
    assert tb == pytest.approx(statistics.median(stream), abs=5e-4)
    assert frac == pytest.approx(statistics.median(stream) / PEAK_TB_PER_S, abs=5e-5)
    assert f"({gemm_weight_bandwidth_frac(hw, rows=1)})" in theirs


def test_script_reduction_on_a_synthetic_roofline(tmp_path):
    """The script's dry run (no torch): a roofline at 0.7 of each peak and 4 TB/s of weights
    reduces to 0.7 at large M, 4/4.8 for the copy and 3.5/4.8 for the KV stream."""
    spec = importlib.util.spec_from_file_location("kernels_h200",
                                                  REPO / "benchmarks" / "kernels_h200.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "dry.json"
    assert module.main(["--dry-run", "--out", str(out)]) == 0
    reduced = json.loads(out.read_text())["reduced"]
    for dtype in ("bf16", "fp8"):
        assert reduced["gemm"][dtype]["frac"][-1] == pytest.approx(0.7, abs=1e-4)
        assert reduced["gemm"][dtype]["frac"][0] < 0.1
    assert reduced["hbm_copy"]["frac"] == pytest.approx(4 / 4.8, abs=1e-4)
    assert reduced["decode_attention"]["grouped"]["frac"] == pytest.approx(3.5 / 4.8, abs=1e-4)
