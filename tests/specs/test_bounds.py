"""Issue 18 items 9-10: every whole number and batch a deployment, model or hardware spec takes
is refused past the bound that makes sense for it (one line, exit 2), and every value up to the
bound is computed in closed form, in well under a second."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.calc.serving import serve
from planner.cli import app
from planner.errors import UsageError
from planner.specs.deployment import (MAX_BATCH_PER_GPU, MAX_CONTEXT_TOKENS, MAX_GPUS,
                                      MAX_MTP_DEPTH, MAX_TILE_ROWS, MIN_BATCH_PER_GPU,
                                      ServeConfig)
from tests_support import H800_TEXT, V3_TEXT

runner = CliRunner()


@pytest.mark.parametrize("field, value", [
    ("batch_per_gpu", math.nan), ("batch_per_gpu", math.inf), ("batch_per_gpu", -math.inf),
    ("batch_per_gpu", 1e308), ("batch_per_gpu", 1e15), ("batch_per_gpu", MAX_BATCH_PER_GPU * 2),
    ("batch_per_gpu", 0), ("batch_per_gpu", 5e-324), ("batch_per_gpu", True),
    ("gpus", 2**63), ("gpus", MAX_GPUS + 1), ("ep", MAX_GPUS + 1), ("tp", 2**63),
    ("context_tokens", MAX_CONTEXT_TOKENS + 1), ("gemm_tile_rows", 10**12),
    ("expert_tile_rows", MAX_TILE_ROWS + 1), ("mtp_depth", 10**11), ("mtp_depth", 0),
])
def test_serve_config_refuses_values_past_their_bound(field, value):
    with pytest.raises(UsageError, match=field):
        ServeConfig(**{field: value})


def _finite(result) -> list[str]:
    return [f.name for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), float)
            and not math.isfinite(getattr(result, f.name))]


@pytest.mark.parametrize("config", [
    dict(batch_per_gpu=MAX_BATCH_PER_GPU), dict(batch_per_gpu=MIN_BATCH_PER_GPU),
    dict(batch_per_gpu=1e15 / 1e6, gemm_tile_rows=MAX_TILE_ROWS, expert_tile_rows=1),
    dict(gpus=MAX_GPUS, ep=MAX_GPUS, tp=MAX_GPUS), dict(context_tokens=MAX_CONTEXT_TOKENS),
    dict(mtp_depth=MAX_MTP_DEPTH, mtp_acceptance=0.9),
    dict(phase="prefill", batch_per_gpu=MAX_BATCH_PER_GPU, context_tokens=MAX_CONTEXT_TOKENS),
    dict(phase="prefill", batch_per_gpu=MIN_BATCH_PER_GPU, context_tokens=1),
])
@pytest.mark.parametrize("model, hardware", [("deepseek-v3", "h800"), ("qwen2.5-72b", "h200")])
def test_values_at_the_bounds_run_fast_and_finite(config, model, hardware):
    # batch_per_gpu 1e15 ran the Poisson window for hours; at the bound it is closed form.
    m, h = catalog.load_model(model), catalog.load_hardware(hardware)
    start = time.perf_counter()
    result = serve(m, h, ServeConfig(**config))
    assert time.perf_counter() - start < 1
    assert _finite(result) == []


@pytest.mark.parametrize("args", [
    ["--batch-per-gpu", "nan"], ["--batch-per-gpu", "inf"], ["--batch-per-gpu", "1e308"],
    ["--batch-per-gpu", "1e15"], ["--gpus", str(2**63)], ["--gpus", str(MAX_GPUS + 1)],
    ["--mtp-acceptance", "0.8", "--mtp-depth", str(10**11)],
    ["--gemm-tile-rows", str(10**12)], ["--expert-tile-rows", str(10**12)],
    ["--context-tokens", str(2**40)],
])
def test_serve_refuses_huge_values_in_one_line(args):
    result = runner.invoke(app, ["serve", "deepseek-v3", "-H", "h800", *args],
                           catch_exceptions=False)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert any(w in lines[0] for w in ("must be", "expected", "largest")), lines


@pytest.mark.parametrize("kind, text, old, new, field", [
    ("model", V3_TEXT, "mtp_depth: 1 ", "mtp_depth: 100000000000 ", "mtp_depth"),
    ("model", V3_TEXT.replace("num_routed_experts: 256 ", "num_routed_experts: 10000000 "),
     "num_experts_per_token: 8 ", "num_experts_per_token: 100000 ", "num_experts_per_token"),
    ("hardware", H800_TEXT, "mma_tile_rows: 64", "mma_tile_rows: 1000000000000",
     "mma_tile_rows"),
])
def test_spec_files_refuse_values_that_would_hang(tmp_path, kind, text, old, new, field):
    # A model's MTP depth summed 1 + p + ... + p^D in a loop; top-k sets the size of the
    # routing model's binomial coefficients; a hardware tile the padding's terms.
    assert old in text
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text.replace(old, new))
    load = catalog.load_model if kind == "model" else catalog.load_hardware
    with pytest.raises(Exception, match=field) as exc:
        load(str(path))
    assert str(path) in str(exc.value)
