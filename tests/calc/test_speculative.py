"""MTP speculative decoding in the disaggregated decode pool (planner.calc.serving.speculative
and decode_piece's mtp_draft_tokens): k = 0 is today's step, tokens per step rise with the
acceptance, TPOT falls with the drafts."""

from __future__ import annotations

import numpy as np
import pytest

from planner import catalog
from planner.calc.serving import speculative as spec
from planner.calc.serving.disagg_workload import PoolLayout, decode_piece, serve_disagg
from planner.specs.load import load_engine

V3, B200, TRT = (catalog.load_model("deepseek-v3"), catalog.load_hardware("b200"),
                 load_engine("trtllm"))
DEC = PoolLayout(workers=2, batch=np.array([1.0, 8.0, 64.0]), attention_dp=8, moe_tp=1,
                 moe_ep=8)
PRE = PoolLayout(workers=1, batch=1, attention_dp=8, moe_tp=1, moe_ep=8)
DT = dict(weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype=None)


def test_tokens_per_step_is_the_geometric_sum_and_rises_with_acceptance():
    for k in (*range(5), 16):
        for a in (0.0, 0.3, 0.85, 0.999, 1.0):
            want = sum(a**i for i in range(k + 1))
            assert spec.mtp_tokens_per_step(draft_tokens=k, acceptance=a) == pytest.approx(
                want, rel=1e-12)
            # the array path (numpy) and the plain-number path (none) agree
            assert float(spec.mtp_tokens_per_step(draft_tokens=np.array([k]),
                                                  acceptance=np.array(a))[0]) \
                == pytest.approx(want, rel=1e-12)
    acc = np.linspace(0.0, 1.0, 21)
    n = spec.mtp_tokens_per_step(draft_tokens=3, acceptance=acc)
    assert np.all(np.diff(n) > 0) and n[0] == 1.0 and n[-1] == 4.0
    assert spec.mtp_tokens_per_step(draft_tokens=3, acceptance=0.85) == pytest.approx(3.186625)
    # a negative count (the API's; the CLI takes 0-16) is no speculation on both paths
    assert spec.mtp_tokens_per_step(draft_tokens=-1, acceptance=0.8) == 1.0
    assert float(spec.mtp_tokens_per_step(draft_tokens=np.array(-1), acceptance=0.8)) == 1.0
    # array k, one call
    assert spec.mtp_tokens_per_step(draft_tokens=np.array([0, 1, 2]), acceptance=0.5).tolist() \
        == [1.0, 1.5, 1.75]


def test_zero_drafts_is_todays_decode_step():
    base = decode_piece(V3, B200, TRT, isl_tokens=1024, osl_tokens=1024, layout=DEC, **DT)
    zero = decode_piece(V3, B200, TRT, isl_tokens=1024, osl_tokens=1024, layout=DEC,
                        mtp_draft_tokens=0, **DT)
    mixed = decode_piece(V3, B200, TRT, isl_tokens=1024, osl_tokens=1024, layout=DEC,
                         mtp_draft_tokens=np.array([0, 3, 0]), **DT)
    np.testing.assert_allclose(zero.time_s, base.time_s, rtol=1e-12)
    for i in (0, 2):     # rows without drafts in a call that has some: the same step
        assert mixed.time_s[i] == pytest.approx(float(base.time_s[i]), rel=1e-12)
        assert mixed.tokens_per_step[i] == 1.0
    assert mixed.time_s[1] > base.time_s[1]


def test_drafts_cost_step_time_and_lower_tpot():
    r = {k: serve_disagg(V3, B200, TRT, isl_tokens=1024, osl_tokens=1024, prefill=PRE,
                         decode=DEC, mtp_draft_tokens=k, **DT) for k in (0, 1, 3)}
    steps = {k: np.asarray(r[k].decode.time_s) for k in r}
    assert np.all(steps[1] > steps[0]) and np.all(steps[3] > steps[1])
    # verifying k + 1 tokens in one pass is cheaper than k + 1 passes at a small batch (the
    # weights are read once; more experts are hit by the 4x tokens)
    assert steps[3][0] < 4 * steps[0][0]
    tpot = {k: np.asarray(r[k].state.tpot_s) for k in r}
    assert np.all(tpot[1] < tpot[0]) and np.all(tpot[3][:2] < tpot[1][:2])
    np.testing.assert_allclose(tpot[3], steps[3] / 3.186625, rtol=1e-12)
    # lower acceptance, fewer tokens per step: a higher TPOT on the same step
    low = serve_disagg(V3, B200, TRT, isl_tokens=1024, osl_tokens=1024, prefill=PRE,
                       decode=DEC, mtp_draft_tokens=3, mtp_acceptance=0.5, **DT)
    np.testing.assert_allclose(low.decode.time_s, steps[3], rtol=1e-12)
    assert np.all(low.state.tpot_s > tpot[3])
    # the first token still waits one whole decode step
    assert np.all(r[3].state.ttft_s > r[0].state.ttft_s)


def test_the_mtp_module_is_one_layer_of_the_last_type():
    from planner.calc.serving.workload_step import model_figures

    fig = model_figures(V3, weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype="bf16")
    one = spec.mtp_module_figures(fig)
    assert (one.layers, one.moe_layers, one.dense_layers) == (1, 1, 0)
    assert one.kv_bytes_per_token * 61 == pytest.approx(fig.kv_bytes_per_token)
    assert one.head_bytes == fig.head_bytes and one.embed_bytes == 0.0
    dense = model_figures(catalog.load_model("llama-3.1-8b"), weights_dtype="fp8",
                          moe_weights_dtype="fp8", kv_dtype="bf16")
    d1 = spec.mtp_module_figures(dense)
    assert (d1.layers, d1.moe_layers, d1.dense_layers) == (1, 0, 1)


def test_acceptance_from_length_inverts_the_geometric_sum():
    """mtp_acceptance_from_length is the inverse of mtp_tokens_per_step at each depth, over
    arrays, clipped to [0, 1] outside 1 .. k + 1."""
    k = np.array([1, 2, 3, 3, 4])
    a = np.array([0.2, 0.5, 0.6914, 0.85, 0.95])
    n = spec.mtp_tokens_per_step(draft_tokens=k, acceptance=a)
    got = spec.mtp_acceptance_from_length(tokens_per_step=n, draft_tokens=k)
    np.testing.assert_allclose(got, a, atol=1e-12)
    edge = spec.mtp_acceptance_from_length(tokens_per_step=[0.5, 1.0, 4.0, 9.0],
                                           draft_tokens=3)
    np.testing.assert_allclose(edge, [0.0, 0.0, 1.0, 1.0], atol=1e-12)
    # k = 2: 1 + a + a^2 = 2.5 -> a = (sqrt(7) - 1) / 2
    assert spec.mtp_acceptance_from_length(tokens_per_step=2.5, draft_tokens=2) == \
        pytest.approx((7 ** 0.5 - 1) / 2, abs=1e-12)


def test_chat_template_acceptance_gives_the_measured_length_at_its_depth():
    """InferenceX PR #649: 2.50 tokens per step on random prompts in the chat template (at
    k = 3): α = 0.6914, below DeepSeek-V3's 0.85; 2.17 at k = 2 and 1.69 at k = 1 under the
    same α; the raw-prompt 3.55 needs k >= 3 (it exceeds k + 1 = 3)."""
    a = spec.chat_template_mtp_acceptance()
    assert a == pytest.approx(0.6914, abs=1e-4)
    assert a < spec.DEFAULT_MTP_ACCEPTANCE
    n = spec.mtp_tokens_per_step(draft_tokens=np.array([1, 2, 3]), acceptance=a)
    np.testing.assert_allclose(n, [1.6914, 2.1695, 2.50], atol=1e-4)
    assert spec.RAW_PROMPT_ACCEPTANCE_LENGTH > 2 + 1
    assert spec.RAW_PROMPT_ACCEPTANCE_LENGTH <= spec.ACCEPTANCE_LENGTH_DRAFT_TOKENS + 1


def test_drafts_need_the_models_mtp_module():
    """MTP drafts come from the model's own MTP module: a model without one (mtp_depth 0,
    Llama-3.1-70B) is refused, not served with a module it lacks at DeepSeek's acceptance; the
    CLI says so on one line, exit 2."""
    from typer.testing import CliRunner

    from planner.cli import app
    from planner.errors import UsageError

    llama = catalog.load_model("llama-3.1-70b")
    assert llama.mtp_depth == 0
    dense = PoolLayout(workers=1, batch=8, tp=8)
    with pytest.raises(UsageError, match="mtp_depth"):
        decode_piece(llama, B200, TRT, isl_tokens=1024, osl_tokens=1024, layout=dense,
                     mtp_draft_tokens=np.array([0, 3]), **DT)
    # no drafts: served as before
    decode_piece(llama, B200, TRT, isl_tokens=1024, osl_tokens=1024, layout=dense, **DT)
    out = CliRunner().invoke(app, ["serve-disagg", "llama-3.1-70b", "-H", "h200", "--isl",
                                   "1024", "--osl", "1024", "--prefill-tp", "8",
                                   "--decode-tp", "8", "--decode-batch", "32", "--mtp", "3"])
    assert out.exit_code == 2
    assert "mtp_depth" in out.output and "Traceback" not in out.output
