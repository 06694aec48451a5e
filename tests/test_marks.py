"""engine/marks.py: the least-squares Monte Carlo machinery against independent truths.

References come from the closed-form variance of ordinary least squares on plain monomials,
never from our own output (the American put against a binomial tree is in test_exercise.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import marks
from simulator.errors import RunError


def quadratic_truth(x):
    return 2 + 3 * x - x**2


def ols_se(x_fit, x_eval, noise_sd):
    """Standard errors of OLS on [1, x, x^2]: of the coefficients, and of predictions at x_eval."""
    design = np.column_stack([np.ones_like(x_fit), x_fit, x_fit**2])
    cov = noise_sd**2 * np.linalg.inv(design.T @ design)
    h = np.column_stack([np.ones_like(x_eval), x_eval, x_eval**2])
    return np.sqrt(np.diag(cov)), np.sqrt(np.einsum("ij,jk,ik->i", h, cov, h))


@pytest.fixture(scope="module")
def quadratic():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(20_000)
    noise_sd = 1.0
    y = quadratic_truth(x) + noise_sd * rng.standard_normal(x.size)
    fit = np.arange(x.size) % 2 == 0
    return x, y, fit, noise_sd


def test_fit_recovers_a_known_polynomial(quadratic):
    x, y, fit, noise_sd = quadratic
    mark = marks.fit_mark({"x": x}, y, fit_mask=fit, degree=2)
    grid = np.linspace(-2.5, 2.5, 11)
    pred = mark.predict({"x": grid})
    coef_se, pred_se = ols_se(x[fit], grid, noise_sd)
    assert np.max(np.abs(pred - quadratic_truth(grid)) / pred_se) < 4
    # The Hermite fit is a quadratic in x: its monomial coefficients are those of OLS.
    c2, c1, c0 = np.polyfit(grid, pred, 2)
    assert np.all(np.abs(np.array([c0, c1, c2]) - [2, 3, -1]) < 4 * coef_se)
    # x ~ N(0, 1): Var(3x - x^2) = 9 Var(x) + Var(x^2) = 9 + 2, so R^2 = 11 / (11 + 1).
    theory = 11 / (11 + noise_sd**2)
    assert mark.r2_out == pytest.approx(theory, abs=0.01)
    assert (mark.n_fit, mark.n_test) == (10_000, 10_000)
    assert mark.names == ("1", "x", "He2(x)")


def test_predict_uses_the_training_scaling(quadratic):
    x, y, fit, noise_sd = quadratic
    mark = marks.fit_mark({"x": x}, y, fit_mask=fit, degree=2)
    shifted = x[~fit][:500] + 3.0
    _, pred_se = ols_se(x[fit], shifted, noise_sd)
    # Re-standardising the shifted sample would predict f(x - 3): off by ~10 here.
    assert np.max(np.abs(mark.predict({"x": shifted}) - quadratic_truth(shifted)) / pred_se) < 4.5


def test_constant_state_columns_are_dropped(quadratic):
    x, y, fit, _ = quadratic
    state = {"c": np.full(x.size, 0.1), "x": x, "zero": np.zeros(x.size)}
    mark = marks.fit_mark(state, y, fit_mask=fit, degree=2, cross=True)
    assert mark.scaling.names == ("x",)
    assert mark.scaling.dropped == ("c", "zero")
    assert mark.names == ("1", "x", "He2(x)")
    assert np.all(np.isfinite(mark.coef))
    reference = marks.fit_mark({"x": x}, y, fit_mask=fit, degree=2)
    np.testing.assert_allclose(mark.coef, reference.coef, rtol=1e-12)
    new = {"x": np.array([-1.0, 0.0, 2.0])}
    assert np.all(np.isfinite(mark.predict(new)))


def test_basis_columns_and_reuse_of_scaling():
    rng = np.random.default_rng(3)
    state = {"a": rng.normal(5, 2, 1_000), "b": rng.normal(-1, 0.5, 1_000)}
    X, scaling = marks.basis(state, degree=3, cross=True)
    assert marks.column_names(scaling, 3, True) == (
        "1", "a", "b", "He2(a)", "He2(b)", "He3(a)", "He3(b)", "a*b")
    za = (state["a"] - state["a"].mean()) / state["a"].std()
    zb = (state["b"] - state["b"].mean()) / state["b"].std()
    np.testing.assert_allclose(X[:, 5], za**3 - 3 * za, atol=1e-12)
    np.testing.assert_allclose(X[:, 7], za * zb, atol=1e-12)
    X2, same = marks.basis({k: v[:10] for k, v in state.items()}, 3, True, scaling=scaling)
    assert same is scaling
    np.testing.assert_array_equal(X2, X[:10])


def test_out_of_sample_r2_exposes_overfitting():
    rng = np.random.default_rng(11)
    x = rng.standard_normal(10_030)
    y = x + rng.standard_normal(x.size)
    few = np.arange(x.size) < 30
    overfit = marks.fit_mark({"x": x}, y, fit_mask=few, degree=10)
    assert overfit.r2_out < overfit.r2_in - 0.2, (overfit.r2_in, overfit.r2_out)
    # Control: a linear model on as many fitting paths scores alike in and out of sample.
    many = np.arange(x.size) % 2 == 0
    sound = marks.fit_mark({"x": x}, y, fit_mask=many, degree=1)
    assert abs(sound.r2_out - sound.r2_in) < 0.03


def test_a_split_without_test_paths_is_refused():
    x = np.arange(10.0)
    with pytest.raises(RunError, match=r"at least 2 fitting and 2 test paths \(got 10 and 0\)"):
        marks.fit_mark({"x": x}, x, fit_mask=np.ones(10, bool))


def test_a_fitted_mark_predicts_the_design_matrix_times_its_coefficients():
    """Mark.predict sums the terms one by one; it must equal basis(state) @ coef."""
    rng = np.random.default_rng(5)
    state = {"a": rng.normal(size=600), "b": rng.lognormal(size=600), "c": rng.uniform(size=600)}
    y = state["a"] ** 3 + state["a"] * state["b"] - 2 * state["c"] + rng.normal(size=600)
    for degree in (1, 2, 3):
        mark = marks.fit_mark(state, y, fit_mask=np.arange(600) % 2 == 0, degree=degree)
        other = {k: v[::-1].copy() for k, v in state.items()}
        X, _ = marks.basis(other, degree, True, scaling=mark.scaling)
        np.testing.assert_allclose(mark.predict(other), X @ mark.coef, rtol=1e-10, atol=1e-10)
