"""Override files (planner/specs/overrides.py): read with the safe reader, one-line errors,
written and read back, applied to a hardware spec and an engine spec."""

from __future__ import annotations

import dataclasses

import pytest

from planner import catalog
from planner.errors import SpecError
from planner.specs.overrides import (Overrides, RunsProvenance, HardwareOverride,
                                     apply_engine_overrides, apply_hardware_overrides,
                                     load_overrides, overrides_yaml)

GOOD = """created: "2026-11-30"
runs: {file: my.csv, rows: 3, ids: [a, b, c]}
hardware:
  h800:
    efficiency: {hbm_bandwidth: 0.9, matmul_flops: 1.5}
engines:
  sglang: {decode_step_overhead_s: 0.002}
"""


def write(tmp_path, text):
    p = tmp_path / "ov.yaml"
    p.write_text(text)
    return p


def test_read_and_applied_to_hardware(tmp_path):
    ov = load_overrides(write(tmp_path, GOOD))
    assert ov.runs.ids == ["a", "b", "c"] and ov.created == "2026-11-30"
    # h800: a spec of single fractions (h200's GEMM factors are tables; see the table test)
    h200 = catalog.load_hardware("h800")
    hw = apply_hardware_overrides(h200, ov)
    # 0.9 x 0.9 = 0.81; 0.526 x 1.5 = 0.789; a fraction never above 1
    assert hw.efficiency.hbm_bandwidth.frac == pytest.approx(0.81)
    assert hw.efficiency.matmul_flops.frac == pytest.approx(0.789)
    assert "calibrated on 3 runs of my.csv on 2026-11-30" in hw.efficiency.hbm_bandwidth.source
    assert hw.efficiency.attention_flops == h200.efficiency.attention_flops
    # another hardware is unchanged
    h100 = catalog.load_hardware("h100")
    assert apply_hardware_overrides(h100, ov) is h100


def test_fraction_capped_at_one(tmp_path):
    ov = load_overrides(write(tmp_path, GOOD.replace("hbm_bandwidth: 0.9", "hbm_bandwidth: 2")))
    hw = apply_hardware_overrides(catalog.load_hardware("h800"), ov)
    assert hw.efficiency.hbm_bandwidth.frac == 1.0


def test_round_trip(tmp_path):
    ov = Overrides(created="2026-11-30", runs=RunsProvenance(file="r.csv", rows=2, ids=["x", "y"]),
                   hardware={"h200": HardwareOverride(efficiency={"hbm_bandwidth": 0.97})},
                   engines={"vllm": {"request_overhead_s": 0.01}},
                   fit={"loo_error_pct": 7.5})
    back = load_overrides(write(tmp_path, overrides_yaml(ov)))
    assert dataclasses.replace(back, path=None) == ov


@dataclasses.dataclass(frozen=True)
class FakeEngine:
    name: str
    decode_step_overhead_s: float = 0.0
    chunked_prefill: bool = True


def test_applied_to_an_engine(tmp_path):
    ov = load_overrides(write(tmp_path, GOOD))
    e = apply_engine_overrides(FakeEngine(name="sglang"), ov)
    assert e.decode_step_overhead_s == 0.002
    other = FakeEngine(name="vllm")
    assert apply_engine_overrides(other, ov) is other


@pytest.mark.parametrize("text, where", [
    (GOOD.replace("rows: 3", "rows: -3"), "runs.rows"),
    (GOOD.replace("0.002", "-0.002"), "engines.sglang.decode_step_overhead_s"),
    (GOOD.replace("hbm_bandwidth: 0.9", "hbm_bandwidth: 0"), "hardware.h800.efficiency"),
    (GOOD.replace("hbm_bandwidth: 0.9", "hbm_bandwidth: 1000"), "hardware.h800.efficiency"),
    (GOOD + "extra: 1\n", "extra"),
    (GOOD.replace('created: "2026-11-30"\n', ""), "created"),
    ("- a\n- b\n", "mapping"),
    (GOOD + "path: x\n", "path"),
])
def test_bad_files_one_line(tmp_path, text, where):
    with pytest.raises(SpecError) as info:
        load_overrides(write(tmp_path, text))
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "ov.yaml") in msg and where in msg


def test_unknown_factor_or_field_named(tmp_path):
    ov = load_overrides(write(tmp_path, GOOD.replace("matmul_flops", "warp_flops")))
    with pytest.raises(SpecError, match="hardware.h800.efficiency.warp_flops"):
        apply_hardware_overrides(catalog.load_hardware("h800"), ov)
    ov = load_overrides(write(tmp_path, GOOD.replace("decode_step_overhead_s",
                                                     "chunked_prefill")))
    with pytest.raises(SpecError, match="engines.sglang.chunked_prefill"):
        apply_engine_overrides(FakeEngine(name="sglang"), ov)


def test_serve_takes_an_override_file(tmp_path):
    """``planner serve --overrides FILE``: the engine's values and the hardware's scales apply."""
    from tests_support import cli_json, cli_run

    args = ["serve", "llama-3.1-8b", "-H", "h200", "--isl", "1000", "--osl", "500",
            "--concurrency", "64", "--tp", "2", "--engine", "sglang"]
    (base,) = cli_json(*args)
    p = write(tmp_path, 'created: "2026-11-30"\nruns: {file: my.csv, rows: 3}\n'
                        "engines:\n  sglang: {request_overhead_s: 0.25}\n")
    (over,) = cli_json(*args, "--overrides", str(p))
    default = load_engine_value("sglang", "request_overhead_s")
    # the per-request overhead adds to TTFT only: +0.25 s less the default
    assert over["ttft_s"] - base["ttft_s"] == pytest.approx(0.25 - default, rel=1e-6)
    assert over["tpot_s"] == base["tpot_s"]
    assert over["overrides"].startswith("calibrated on 3 runs of my.csv on 2026-11-30")
    assert "overrides" not in base
    p2 = write(tmp_path, 'created: "2026-11-30"\nruns: {file: my.csv, rows: 3}\n'
                         "hardware:\n  h200:\n    efficiency: {hbm_bandwidth: 0.5}\n")
    (slow,) = cli_json(*args, "--overrides", str(p2))
    assert slow["tpot_s"] > base["tpot_s"]
    bad = write(tmp_path, "created: x\n")
    result = cli_run(*args, "--overrides", str(bad))
    assert result.exit_code == 2 and "runs" in result.stderr


def load_engine_value(name, field):
    from planner.specs.load import load_engine

    return getattr(load_engine(name), field)


def test_measured_tables_scale_as_one(tmp_path):
    """h200's GEMM factors are tables over M per dtype: a `gemm` scale multiplies every point
    of every dtype's table (capped at 1) and names the calibration in each table's source."""
    text = GOOD.replace("h800:\n    efficiency: {hbm_bandwidth: 0.9, matmul_flops: 1.5}",
                        "h200:\n    efficiency: {gemm: 1.25}")
    ov = load_overrides(write(tmp_path, text))
    h200 = catalog.load_hardware("h200")
    hw = apply_hardware_overrides(h200, ov)
    for dtype, table in h200.efficiency.gemm.items():
        scaled = hw.efficiency.gemm[dtype]
        assert scaled.frac == tuple(min(1.0, f * 1.25) for f in table.frac)
        assert "calibrated on 3 runs" in scaled.source
    assert hw.efficiency.grouped_gemm == h200.efficiency.grouped_gemm
