"""Hardware efficiency factors (issue 19): each measured value recomputed from the figures its
source prints (achieved / the datasheet peak its reduction names), per device family; explicit
inheritance (``efficiency_from``) printed as assumed; every catalog device serves."""

from __future__ import annotations

import re

import pytest
from tests_support import REPO, cli_run

from planner import catalog
from planner.errors import PlannerError

#: Device families with measured kernel tables (AIConfigurator; AMD: AITER), one test run each.
FAMILIES = {"ampere": ("a100",), "hopper": ("h100", "h200"),
            "blackwell": ("b200", "gb200-nvl72"), "blackwell-ultra": ("b300", "gb300-nvl72"),
            "cdna3": ("mi300x",), "cdna4": ("mi355x",)}
#: The factors each family's own sources give (no AMD source times prefill attention).
OWN = {"cdna3": {"matmul_flops", "gemm", "grouped_gemm", "gemm_weight_bandwidth",
                 "hbm_bandwidth", "scale_up_bandwidth"},
       "cdna4": {"matmul_flops", "gemm", "grouped_gemm", "gemm_weight_bandwidth"}}
NVIDIA_OWN = {"matmul_flops", "attention_flops", "gemm", "grouped_gemm"}
#: Where each family's tables come from (repository@commit, then the file).
TABLE_SOURCE = {"cdna3": ("ROCm/aiter@", ".csv"), "cdna4": ("ROCm/aiter@", ".csv")}
#: The peak each scalar factor's ``achieved`` figure is a fraction of.
FLOP_FACTORS = {"matmul_flops": "fp8", "attention_flops": "bf16", "attention_fp8_flops": "fp8"}
BANDWIDTH_FACTORS = ("hbm_bandwidth", "gemm_weight_bandwidth")


def _close(frac: float, achieved: float, peak: float) -> bool:
    """frac == achieved / peak, to the rounding of both (4 decimals; 0.1 of the achieved)."""
    return abs(frac - achieved / peak) <= 1e-4 + 0.05 / peak


def _peak_tflops(hw, dtype: str) -> float:
    return getattr(hw.gpu.peak_dense_tflop_per_s, dtype)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_measured_factor_is_achieved_over_the_datasheet_peak(family):
    for name in FAMILIES[family]:
        hw = catalog.load_hardware(name)
        eff = hw.efficiency
        own = [name for name in eff.given() if name not in hw.efficiency_inherited]
        assert OWN.get(family, NVIDIA_OWN) <= set(own), name
        for factor, dtype in FLOP_FACTORS.items():
            if factor not in own:
                continue
            f = getattr(eff, factor)
            if factor == "matmul_flops" and "fp8_block" not in eff.gemm:
                dtype = "bf16"   # no FP8 (A100): the BF16 table's last row
            assert _close(f.frac, f.achieved, _peak_tflops(hw, dtype)), (name, factor)
        for factor in (f for f in BANDWIDTH_FACTORS if f in own):
            f = getattr(eff, factor)
            assert _close(f.frac, f.achieved, hw.gpu.hbm_bandwidth_tb_per_s * 1e3), (name, factor)
        up = eff.scale_up_bandwidth
        if "scale_up_bandwidth" in own:
            assert _close(up.frac, up.achieved, hw.scale_up.bandwidth_gb_per_s_unidirectional), name
        else:   # assumed: printed so, and only where the family's sources time no collective
            assert family in OWN and "scale_up_bandwidth" in hw.efficiency_inherited, name
        if family in ("hopper", "blackwell", "blackwell-ultra"):
            assert set(eff.mla_decode) == {"bf16", "fp8"}, name   # issue 19: MLA decode tables
            assert set(eff.mla_prefill) == {"bf16", "fp8"}, name  # issue 22: MLA prefill tables
        own_mla = eff.mla_decode if "mla_decode" in own else {}
        own_mla_prefill = eff.mla_prefill if "mla_prefill" in own else {}
        for tables in (eff.gemm, eff.grouped_gemm, own_mla, own_mla_prefill):
            for key, t in tables.items():
                peak = _peak_tflops(hw, t.peak)
                for frac, achieved in zip(t.frac, t.achieved_tflop_per_s):
                    assert _close(frac, achieved, peak), (name, key)
                # The reduction divided by the peak the spec gives (the script's copy of it).
                stated = re.search(r"/ ([\d.]+) TFLOP/s dense (\w+)", t.reduction)
                assert stated and float(stated[1]) == peak and stated[2] == t.peak, (name, key)
                repo, suffix = TABLE_SOURCE.get(family, ("aiconfigurator@", ".parquet"))
                assert repo in t.source and t.source.endswith(suffix), (name, key)


def test_inherited_factors_are_named_and_printed_as_assumed():
    b200 = catalog.load_hardware("b200")
    assert b200.efficiency_from == "h800"
    assert b200.efficiency_inherited == ("overlap_compute_share",)   # its tables cover the rest
    assert b200.efficiency.overlap_compute_share == catalog.load_hardware(
        "h800").efficiency.overlap_compute_share
    tpu = catalog.load_hardware("tpu-v5p")
    assert tpu.efficiency.gemm == catalog.load_hardware("h100").efficiency.gemm
    assert "scale_up_bandwidth" in tpu.efficiency_inherited
    # A device with its own factors inherits none.
    assert catalog.load_hardware("h200").efficiency_inherited == ()


@pytest.mark.parametrize("name", catalog.names("hardware"))
def test_serve_runs_on_every_catalog_device_and_says_what_is_assumed(name):
    result = cli_run("serve", "qwen3-30b-a3b", "-H", name, "--gpus", "1", "--batch-per-gpu", "8")
    assert result.exit_code == 0, result.stderr
    hw = catalog.load_hardware(name)
    header = " ".join(result.stdout.split())
    if hw.gpu.peak_dense_tflop_per_s is None:
        assert "compute not modelled" in header
    elif hw.efficiency_inherited:
        assert f"assumed (from {hw.efficiency_from})" in header
    if hw.efficiency.gemm and not hw.efficiency_inherited:
        assert "measured kernel tables" in header


def test_efficiency_from_mistakes_are_one_line_errors(tmp_path):
    base = (REPO / "hardware" / "a100.yaml").read_text()
    unknown = tmp_path / "x.yaml"
    unknown.write_text(base.replace("efficiency_from: h100", "efficiency_from: h1000"))
    with pytest.raises(PlannerError, match=r"efficiency_from: unknown hardware"):
        catalog.load_hardware(str(unknown))
    loop = tmp_path / "loop.yaml"
    loop.write_text(base.replace("name: a100", "name: loop").replace(
        "efficiency_from: h100", f"efficiency_from: {loop}"))
    with pytest.raises(PlannerError, match="cycle"):
        catalog.load_hardware(str(loop))


def test_a_kernel_table_is_validated(tmp_path):
    text = (REPO / "hardware" / "h200.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("rows: [1, 4, 16, 64, 256, 1024, 4096, 16384]",
                                "rows: [4, 1, 16, 64, 256, 1024, 4096, 16384]", 1))
    with pytest.raises(PlannerError, match="rows must increase"):
        catalog.load_hardware(str(bad))
    bad.write_text(text.replace("    fp8_block:\n", "    fp9:\n", 1))
    with pytest.raises(PlannerError, match="fp9"):
        catalog.load_hardware(str(bad))
