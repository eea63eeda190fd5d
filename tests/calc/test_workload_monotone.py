"""TPOT does not fall as concurrency grows at a fixed layout (issue 20, review): more requests
in flight bring more decodes and more prefill work per step, never less. The lumps of prefill
that interrupt the decode fill the step's token budget; before the fix they were the TTFT's even
split of the queued prompts, which fell each time the split took one more step (DeepSeek-V3,
H200, vLLM, ISL 8K / OSL 16, DP_att 8: TPOT 995 -> 760 ms from c = 80 to 100)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.calc.serving.workload import serve_workload
from planner.catalog import load_hardware, load_model
from planner.specs.load import load_engine

CONCURRENCY = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 80, 100, 128, 160, 192, 256])
#: (model, layouts as (tp, attention_dp)) of the grid.
MODELS = (("deepseek-v3", ((8, 1), (1, 8))), ("llama-3.1-70b", ((8, 1), (4, 1))),
          ("llama-3.1-8b", ((1, 1), (2, 1))))
#: Relative slack for float rounding only.
ROUNDING = 1e-9


@pytest.mark.parametrize("engine", ["trtllm", "vllm", "sglang"])
@pytest.mark.parametrize("model,layouts", MODELS)
@pytest.mark.parametrize("osl", [16, 128, 1024])
def test_tpot_non_decreasing_in_concurrency(engine: str, model: str, layouts: tuple,
                                            osl: int) -> None:
    m, h, e = load_model(model), load_hardware("h200"), load_engine(engine)
    for tp, adp in layouts:
        for isl in (1024, 8192):
            r = serve_workload(m, h, e, isl=isl, osl=osl, concurrency=CONCURRENCY, tp=tp,
                               attention_dp=adp)
            tpot = np.asarray(r.tpot_s)
            falls = np.flatnonzero(tpot[1:] < tpot[:-1] * (1 - ROUNDING))
            assert falls.size == 0, (
                f"{model} {engine} TP{tp} DP{adp} ISL {isl} OSL {osl}: TPOT falls at c = "
                f"{[(int(CONCURRENCY[i]), int(CONCURRENCY[i + 1])) for i in falls]}: "
                f"{[(round(tpot[i] * 1e3, 2), round(tpot[i + 1] * 1e3, 2)) for i in falls]} ms")


def test_reviewer_case_pinned() -> None:
    """The reviewer's setup: TPOT rises from c = 64 to 100 (it fell before the fix)."""
    m, h, e = load_model("deepseek-v3"), load_hardware("h200"), load_engine("vllm")
    r = serve_workload(m, h, e, isl=8192, osl=16, concurrency=np.array([64, 80, 100]), tp=1,
                       attention_dp=8)
    tpot = np.asarray(r.tpot_s)
    assert tpot[0] <= tpot[1] <= tpot[2]
