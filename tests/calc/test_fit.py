"""The numpy least-squares fit on log error, its identifiability check and cross-validation
(planner/calc/fit.py), on forward functions whose answers are worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from planner.calc import fit
from planner.errors import UsageError


def test_one_scale_is_fitted_exactly():
    # forward = theta x [1, 2, 3] against [2, 4, 6]: theta = 2; the start costs
    # 3 x (ln 2)^2 / 2 = 0.7207
    r = fit.fit_log_least_squares(forward=lambda th: th[0] * np.array([1.0, 2, 3]),
                                  initial=[1.0], lower=[0.1], upper=[10.0], measured=[2, 4, 6])
    assert r.theta[0] == pytest.approx(2.0, rel=1e-6)
    assert r.cost_before == pytest.approx(1.5 * np.log(2) ** 2)
    assert r.cost_after < 1e-12 and r.converged


def test_an_intercept_and_a_slope():
    # y = a + b x at x = 1, 5, 10 through (3, 11, 21): a = 1, b = 2
    x = np.array([1.0, 5, 10])
    r = fit.fit_log_least_squares(forward=lambda th: th[0] + th[1] * x, initial=[5.0, 5.0],
                                  lower=[0.0, 0.0], upper=[10.0, 10.0], measured=[3, 11, 21])
    np.testing.assert_allclose(r.theta, [1.0, 2.0], rtol=1e-5)


def test_a_fit_started_at_its_own_result_returns_it():
    # y = a x^b through noisy points has no exact solution: the fit stops where a step would
    # lower the cost by less than the tolerance, without taking that step, so a second fit
    # from the first's answer (as `calibrate_engines.py --write` re-run does) returns it, to
    # the bounds transform's rounding (before, the second fit took one more small step and
    # each re-run moved the written values)
    x = np.array([1.0, 2, 4, 8, 16])
    kw = dict(forward=lambda th: th[0] * x ** th[1], lower=[0.1, 0.1], upper=[10.0, 3.0],
              measured=[2.1, 3.9, 8.4, 15.2, 33.0])
    first = fit.fit_log_least_squares(initial=[1.0, 1.0], **kw)
    again = fit.fit_log_least_squares(initial=first.theta, **kw)
    assert first.converged and again.converged
    np.testing.assert_allclose(again.theta, first.theta, rtol=1e-12)
    assert again.cost_after == pytest.approx(first.cost_after, rel=1e-12)


def test_a_fit_that_ends_at_a_bound_restarts_there():
    # the lowest value a step reaches (|u| <= U_LIMIT) is a start the fit keeps: a start was
    # clipped further inside the bounds than the steps go, so an engine overhead that a fit had
    # left at its floor (vLLM's step overhead, 4.12e-11 s of [0, 0.02]) came back at 2.0e-10
    # from a re-run that took no step, and moved again on the next fit that did
    floor = 0.1 + 9.9 / (1 + np.exp(fit.U_LIMIT))
    r = fit.fit_log_least_squares(forward=lambda th: np.array([2.0, 2.0]) + 0 * th[0],
                                  initial=[floor], lower=[0.1], upper=[10.0],
                                  measured=[1.0, 1.0])
    assert r.converged
    np.testing.assert_allclose(r.theta, [floor], rtol=1e-12)


def test_bounds_hold_the_fit():
    # the best scale is 5, the bound 3: the fit stops at the bound, never beyond it
    r = fit.fit_log_least_squares(forward=lambda th: th[0] * np.ones(2), initial=[1.0],
                                  lower=[0.5], upper=[3.0], measured=[5.0, 5.0])
    assert 2.99 < r.theta[0] <= 3.0


def test_rows_choose_what_is_fitted_and_nan_is_skipped():
    # rows 0 and 1 say 2, row 2 says 8 and is left out; a NaN measurement is not counted
    r = fit.fit_log_least_squares(forward=lambda th: th[0] * np.ones(4), initial=[1.0],
                                  lower=[0.1], upper=[10.0], measured=[2, 2, 8, np.nan],
                                  rows=[True, True, False, True])
    assert r.theta[0] == pytest.approx(2.0, rel=1e-6)


def test_two_metrics_share_the_rows_axis():
    # TTFT and TPOT of two runs (2 x 2): theta scales TTFT only
    fwd = lambda th: np.array([[th[0], th[0]], [1.0, 1.0]])
    r = fit.fit_log_least_squares(forward=fwd, initial=[1.0], lower=[0.1], upper=[10.0],
                                  measured=[[3.0, 3.0], [1.0, 1.0]])
    assert r.theta[0] == pytest.approx(3.0, rel=1e-6)


def test_bad_bounds_refused():
    with pytest.raises(UsageError):
        fit.fit_log_least_squares(forward=lambda th: th, initial=[1.0], lower=[2.0],
                                  upper=[1.0], measured=[1.0])


def test_a_parameter_that_moves_nothing_is_unseen():
    # the second parameter never enters the forward function
    fwd = lambda th: th[0] * np.ones(3)
    s = fit.parameter_sensitivity(forward=fwd, theta=[1.0, 1.0], lower=[0.5, 0.0],
                                  upper=[2.0, 1.0], measured=np.ones(3))
    # d ln f / d theta_0 = 1 at theta_0 = 1, times half the range 1.5: 0.75 on every run
    np.testing.assert_allclose(s[:, 0], 0.75, rtol=1e-5)
    assert np.all(s[:, 1] == 0)
    ident = fit.identifiable_parameters(sensitivity=s, names=["scale", "idle"])
    assert ident.fit == (0,)
    assert ident.unseen == ((1, "changes no prediction of these runs"),)


def test_two_parameters_the_runs_cannot_tell_apart():
    # a x b: only the product is seen; one is dropped, named beside the other
    fwd = lambda th: np.full(3, th[0] * th[1])
    s = fit.parameter_sensitivity(forward=fwd, theta=[1.0, 1.0], lower=[0.1, 0.1],
                                  upper=[10.0, 10.0], measured=np.ones(3))
    ident = fit.identifiable_parameters(sensitivity=s, names=["a", "b"])
    assert len(ident.fit) == 1
    (dropped, why), = ident.unseen
    kept = "a" if ident.fit == (0,) else "b"
    assert why == f"moves the runs as {kept} does"
    assert {dropped, *ident.fit} == {0, 1}          # the other parameter is the one dropped


def test_more_parameters_than_values_measured():
    # four values measured, three independent parameters that move them: two values per
    # parameter allow two
    s = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    ident = fit.identifiable_parameters(sensitivity=s)
    assert len(ident.fit) == 2
    (_, why), = ident.unseen
    assert why == "more parameters than the 4 values measured determine (at least 2 a parameter)"
    # one value: none
    ident = fit.identifiable_parameters(sensitivity=[[1.0, 0.3]])
    assert ident.fit == () and len(ident.unseen) == 2


def test_separable_parameters_are_all_kept():
    # 4 values, 2 parameters: 2 values a parameter
    x = np.array([1.0, 5, 10, 20])
    s = fit.parameter_sensitivity(forward=lambda th: th[0] + th[1] * x, theta=[1.0, 1.0],
                                  lower=[0.0, 0.0], upper=[10.0, 10.0], measured=np.ones(4))
    ident = fit.identifiable_parameters(sensitivity=s)
    assert ident.fit == (0, 1) and ident.unseen == () and ident.condition < 10


def test_leave_one_out_predicts_each_row_from_the_others():
    pred, thetas = fit.cross_validate(forward=lambda th: th[0] * np.ones(2), initial=[1.0],
                                      lower=[0.1], upper=[10.0], measured=[1.0, 3.0],
                                      groups=[0, 1])
    np.testing.assert_allclose(pred, [3.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(thetas[:, 0], [3.0, 1.0], rtol=1e-6)


def test_leave_one_group_out_holds_out_a_whole_group():
    # groups a (rows 0, 1: 2.0) and b (rows 2, 3: 4.0); rows 4 excluded (NaN prediction)
    pred, _ = fit.cross_validate(forward=lambda th: th[0] * np.ones(5), initial=[1.0],
                                 lower=[0.1], upper=[10.0], measured=[2, 2, 4, 4, 100],
                                 groups=["a", "a", "b", "b", "c"],
                                 rows=[True, True, True, True, False])
    np.testing.assert_allclose(pred[:4], [4, 4, 2, 2], rtol=1e-6)
    assert np.isnan(pred[4])


def test_median_error():
    assert fit.median_abs_error_frac(predicted=[1.1, 0.8, 1.0], measured=[1, 1, 1]) \
        == pytest.approx(0.1)
    assert np.isnan(fit.median_abs_error_frac(predicted=[1.0], measured=[np.nan]))
