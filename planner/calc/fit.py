"""Bounded nonlinear least squares on log error, its identifiability check and its
cross-validation, in numpy only: what calibration runs to fit a few named, bounded parameters
(an engine's overheads, a hardware's efficiency factors) to measured runs.

The model is a vectorized forward function ``forward(theta) -> predictions`` (an array of the
measured array's shape, rows on the last axis: e.g. TTFT and TPOT of n runs as a 2 x n array).
The residual of one measured value is ``log(predicted / measured)``; the fit minimises half the
sum of their squares over the rows it is given (Levenberg-Marquardt with a finite-difference
Jacobian), each parameter kept inside its bounds by the reparametrisation
``theta = lower + (upper - lower) * sigmoid(u)`` (u free).

Ref: K. Levenberg (1944), D. Marquardt (1963), "An Algorithm for Least-Squares Estimation of
Nonlinear Parameters", SIAM J. Appl. Math. 11(2); the damping by diag(JᵀJ) is Marquardt's;
leave-one-group-out cross-validation as in scikit-learn's ``LeaveOneGroupOut``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from planner.errors import UsageError

Forward = Callable[[np.ndarray], np.ndarray]

#: Levenberg-Marquardt: first damping, its growth on a rejected and shrink on an accepted step.
LM_INITIAL_DAMPING = 1e-3
LM_DAMPING_UP = 10.0
LM_DAMPING_DOWN = 3.0
LM_MAX_DAMPING = 1e10
#: Iterations at most, and the relative drop of the cost below which the fit stops.
LM_MAX_ITERATIONS = 40
LM_COST_TOLERANCE = 1e-6
#: Finite-difference step in the free coordinate u (theta moves by ~ step x range / 4).
FD_STEP = 1e-4
#: Free coordinate kept within +-U_LIMIT (theta within ~2e-9 of the range of a bound).
U_LIMIT = 20.0
#: Identifiability: a parameter moved by this fraction of its range (at its local slope) must
#: change some prediction by more than SENSITIVITY_MIN_LOG (0.5% in log terms) to be seen by the
#: runs; the slope is a difference over SENSITIVITY_STEP_FRAC of the range.
SENSITIVITY_RANGE_FRAC = 0.5
SENSITIVITY_STEP_FRAC = 1e-6
SENSITIVITY_MIN_LOG = 5e-3
#: Largest condition number of the column-normalised sensitivity matrix of the parameters
#: fitted together: above it, two parameters move the predictions alike and one is dropped.
MAX_CONDITION = 1e3
#: Measured values a fitted parameter needs at least (so that leaving one out still leaves
#: the fit determined): 3 runs (TTFT and TPOT each) determine at most 3 parameters.
MIN_VALUES_PER_PARAMETER = 2


@dataclass(frozen=True)
class FitResult:
    """The fitted parameters and the fit's figures (cost = half the sum of squared log errors
    over the rows fitted)."""

    theta: np.ndarray
    cost_before: float
    cost_after: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class Identifiability:
    """Which parameters the runs determine: ``fit`` (indices, fitted together), ``unseen``
    (index, why) for each left at its default, and the condition number of the kept set."""

    fit: tuple[int, ...]
    unseen: tuple[tuple[int, str], ...]
    condition: float


def _to_u(theta: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    # the same limit as the steps' (|u| <= U_LIMIT): a fit that ends at a bound restarts there
    edge = 1.0 / (1.0 + np.exp(U_LIMIT))
    frac = np.clip((theta - lower) / (upper - lower), edge, 1 - edge)
    return np.clip(np.log(frac / (1 - frac)), -U_LIMIT, U_LIMIT)


def _to_theta(u: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return lower + (upper - lower) / (1 + np.exp(-u))


def log_residuals(*, predicted: Any, measured: Any, rows: Any = None) -> np.ndarray:
    """Log errors log(predicted / measured) of the finite measured values of the chosen rows,
    flattened (a fraction in log terms, dimensionless).

    Formula: r = ln(ŷ) - ln(y) for every finite y > 0 of the rows where ``rows`` is True.
    Ref: module docstring (least squares on log error: a 10% miss weighs alike at 1 ms and 1 s).
    Convention: a non-finite or non-positive measured value is left out; a non-positive
    prediction counts as the prediction 1e-30 (a huge, finite miss).
    Example: predicted [2.0, 1.0], measured [1.0, 1.0] -> [ln 2, 0] = [0.693, 0.0].
    """
    y = np.asarray(measured, dtype=float)
    p = np.broadcast_to(np.asarray(predicted, dtype=float), y.shape)
    keep = np.isfinite(y) & (y > 0)
    if rows is not None:
        keep &= np.broadcast_to(np.asarray(rows, dtype=bool), y.shape)
    safe_p = np.where(np.isfinite(p) & (p > 0), p, 1e-30)
    return np.log(safe_p[keep]) - np.log(y[keep])


def _jacobian(forward: Forward, u: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              measured: np.ndarray, rows: Any, r0: np.ndarray) -> np.ndarray:
    cols = []
    for j in range(u.size):
        step = np.zeros_like(u)
        step[j] = FD_STEP
        r = log_residuals(predicted=forward(_to_theta(u + step, lower, upper)),
                          measured=measured, rows=rows)
        cols.append((r - r0) / FD_STEP)
    return np.stack(cols, axis=1) if cols else np.zeros((r0.size, 0))


def fit_log_least_squares(*, forward: Forward, initial: Any, lower: Any, upper: Any,
                          measured: Any, rows: Any = None,
                          max_iterations: int = LM_MAX_ITERATIONS) -> FitResult:
    """Parameters theta within [lower, upper] that minimise the squared log error of
    ``forward(theta)`` against ``measured`` over ``rows`` (dimensionless cost).

    Formula: min_θ ½ Σ_i (ln f_i(θ) - ln y_i)², θ = l + (h - l) σ(u); Levenberg-Marquardt step
    (JᵀJ + λ diag(JᵀJ)) δu = -Jᵀr, J by forward differences in u; λ /3 on a step that lowers
    the cost, x10 on one that does not.
    Ref: Marquardt (1963), SIAM J. Appl. Math. 11(2) 431-441.
    Convention: ``initial`` is clipped strictly inside the bounds; the fit stops, without
    taking it, at a step that lowers the cost by less than LM_COST_TOLERANCE (relative), when λ
    exceeds LM_MAX_DAMPING, or after ``max_iterations``; the returned theta never lowers the
    fit below the initial cost, and a fit started at its own result returns it unchanged.
    Example: forward(θ) = θ₀ x [1, 2, 3], measured [2, 4, 6], bounds [0.1, 10], initial 1
    -> θ₀ = 2.000 (cost 0.721 -> 0).
    """
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if np.any(~(hi > lo)):
        raise UsageError("every parameter's upper bound must be above its lower bound")
    y = np.asarray(measured, dtype=float)
    u = _to_u(np.asarray(initial, dtype=float), lo, hi)

    def residuals(uu: np.ndarray) -> np.ndarray:
        return log_residuals(predicted=forward(_to_theta(uu, lo, hi)), measured=y, rows=rows)

    r = residuals(u)
    cost0 = cost = 0.5 * float(r @ r)
    damping, it, converged = LM_INITIAL_DAMPING, 0, False
    for it in range(1, max_iterations + 1):
        jac = _jacobian(forward, u, lo, hi, y, rows, r)
        jtj, grad = jac.T @ jac, jac.T @ r
        improved = False
        while damping <= LM_MAX_DAMPING:
            a = jtj + damping * np.diag(np.maximum(np.diag(jtj), 1e-12))
            trial = np.clip(u - np.linalg.solve(a, grad), -U_LIMIT, U_LIMIT)
            r_trial = residuals(trial)
            cost_trial = 0.5 * float(r_trial @ r_trial)
            if cost_trial < cost:
                improved = True
                break
            damping *= LM_DAMPING_UP
        if not improved or (cost - cost_trial) / max(cost, 1e-300) < LM_COST_TOLERANCE:
            # a step that lowers the cost by less than the tolerance is not taken: a fit that
            # starts at its own optimum returns its start (calibrations re-run reproduce)
            converged = True
            break
        u, r, cost = trial, r_trial, cost_trial
        damping = max(damping / LM_DAMPING_DOWN, 1e-12)
    return FitResult(theta=_to_theta(u, lo, hi), cost_before=cost0, cost_after=cost,
                     iterations=it, converged=converged)


def parameter_sensitivity(*, forward: Forward, theta: Any, lower: Any, upper: Any,
                          measured: Any, rows: Any = None) -> np.ndarray:
    """Change of each log prediction per SENSITIVITY_RANGE_FRAC of a parameter's range, from
    the local derivative (a column per parameter; dimensionless, log terms).

    Formula: S_ij = ∂ln f_i / ∂θ_j x 0.5 (h_j - l_j), the derivative by a one-sided difference
    of SENSITIVITY_STEP_FRAC of the range (the side that stays inside the bounds).
    Ref: module docstring; the local Jacobian is what the rank test of identifiability needs.
    Convention: only the finite measured values of ``rows`` count (as :func:`log_residuals`).
    Example: f(θ) = [θ₀, θ₀] at θ₀ = 1 in [0.5, 2]: ∂ln f/∂θ = 1, S = [0.75, 0.75].
    """
    th = np.asarray(theta, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    y = np.asarray(measured, dtype=float)
    r0 = log_residuals(predicted=forward(th), measured=y, rows=rows)
    cols = []
    for j in range(th.size):
        step = SENSITIVITY_STEP_FRAC * (hi[j] - lo[j])
        if th[j] + step > hi[j]:
            step = -step
        moved = th.copy()
        moved[j] = th[j] + step
        diff = log_residuals(predicted=forward(moved), measured=y, rows=rows) - r0
        cols.append(diff / step * SENSITIVITY_RANGE_FRAC * (hi[j] - lo[j]))
    return np.stack(cols, axis=1) if cols else np.zeros((r0.size, 0))


def identifiable_parameters(*, sensitivity: Any, max_condition: float = MAX_CONDITION,
                            names: Sequence[str] | None = None) -> Identifiability:
    """The parameters the runs determine: those that move some prediction at all, and among
    them a set whose normalised sensitivity matrix is well conditioned, with at least
    MIN_VALUES_PER_PARAMETER values measured per parameter.

    Formula: seen_j ⇔ max_i |S_ij| > SENSITIVITY_MIN_LOG; keep the seen columns, normalise each
    to unit length, and while cond(S) = σ_max / σ_min > max_condition or the columns outnumber
    rows / 2, drop the parameter with the largest weight in the right singular vector of σ_min.
    Ref: the rank test of local identifiability (Rothenberg 1971, Econometrica 39(3)).
    Convention: a dropped parameter keeps its default; its reason names the parameter it moves
    the runs alike with (the largest other weight in that singular vector).
    Example: S = [[1, 2], [1, 2]] (the second moves every run as twice the first): cond = inf,
    fit (0,), unseen ((1, "moves the runs as p0 does"),).
    """
    s = np.asarray(sensitivity, dtype=float)
    label = list(names) if names is not None else [f"p{j}" for j in range(s.shape[1])]
    unseen: list[tuple[int, str]] = []
    keep = []
    for j in range(s.shape[1]):
        if s.shape[0] == 0 or np.max(np.abs(s[:, j])) <= SENSITIVITY_MIN_LOG:
            unseen.append((j, "changes no prediction of these runs"))
        else:
            keep.append(j)
    condition = 1.0
    while keep:
        cols = s[:, keep] / np.linalg.norm(s[:, keep], axis=0)
        _, sv, vt = np.linalg.svd(cols, full_matrices=False)
        condition = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
        most = s.shape[0] // MIN_VALUES_PER_PARAMETER
        if condition <= max_condition and len(keep) <= most:
            break
        weights = np.abs(vt[-1])
        worst = int(np.argmax(weights))
        others = [k for k in range(len(keep)) if k != worst]
        if condition > max_condition and others:
            alike = max(others, key=lambda k: weights[k])
            reason = f"moves the runs as {label[keep[alike]]} does"
        else:
            reason = (f"more parameters than the {s.shape[0]} values measured determine "
                      f"(at least {MIN_VALUES_PER_PARAMETER} a parameter)")
        unseen.append((keep[worst], reason))
        keep.pop(worst)
    return Identifiability(fit=tuple(keep), unseen=tuple(sorted(unseen)), condition=condition)


def median_abs_error_frac(*, predicted: Any, measured: Any, rows: Any = None) -> float:
    """Median absolute relative error |predicted / measured - 1| over the finite measured values
    of ``rows`` (a fraction; NaN when there is none).

    Formula: median_i |ŷ_i / y_i - 1|.
    Ref: the error measure of ``planner validate`` (issue 20 item 6).
    Convention: as :func:`log_residuals` for which values count.
    Example: predicted [1.1, 0.8, 1.0], measured [1, 1, 1] -> median(0.1, 0.2, 0) = 0.1.
    """
    r = log_residuals(predicted=predicted, measured=measured, rows=rows)
    return float(np.median(np.abs(np.expm1(r)))) if r.size else float("nan")


def cross_validate(*, forward: Forward, initial: Any, lower: Any, upper: Any, measured: Any,
                   groups: Any, rows: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample predictions: each group of rows predicted by a fit on the other groups
    (leave-one-out when every row is its own group). Returns (predictions of ``measured``'s
    shape, theta fitted without each group: one row per distinct group, sorted).

    Formula: ŷ_g = f(θ̂_{-g})_g, θ̂_{-g} = argmin Σ_{i ∉ g} r_i(θ)², for each group g.
    Ref: leave-one-group-out cross-validation (scikit-learn LeaveOneGroupOut).
    Convention: ``groups`` labels the last axis (the runs); rows outside ``rows`` are neither
    fitted nor predicted (their predictions are NaN); a group whose removal leaves no row is
    predicted by ``initial``.
    Example: forward(θ) = θ₀ x [1, 1], measured [1, 3], groups [0, 1], bounds [0.1, 10]:
    row 0 is predicted from the fit on row 1 (3.0), row 1 from row 0 (1.0).
    """
    y = np.asarray(measured, dtype=float)
    g = np.asarray(groups)
    use = np.ones(y.shape[-1], dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    out = np.full(y.shape, np.nan)
    thetas = []
    for label in np.unique(g[use]):
        held = use & (g == label)
        train = use & ~held
        theta = (fit_log_least_squares(forward=forward, initial=initial, lower=lower,
                                       upper=upper, measured=y, rows=train).theta
                 if train.any() else np.asarray(initial, dtype=float))
        thetas.append(theta)
        out[..., held] = np.broadcast_to(forward(theta), y.shape)[..., held]
    return out, np.array(thetas)
