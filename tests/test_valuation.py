"""Valuation: continuous discounting, continuation values, Gordon perpetuities, control variates."""

import math

import numpy as np
import pytest

from simulator.engine import valuation


def test_discount_factors_are_continuous_month_end():
    d = valuation.discount_factors(0.12, 24)
    assert d[0, 0] == pytest.approx(math.exp(-0.01))
    assert d[0, 11] == pytest.approx(math.exp(-0.12))
    assert d[0, 23] == pytest.approx(math.exp(-0.24))
    per_path = valuation.discount_factors(np.array([0.1, 0.2]), 12)
    np.testing.assert_allclose(per_path[:, -1], np.exp([-0.1, -0.2]))
    np.testing.assert_allclose(valuation.at_horizon(np.array([0.1, 0.2]), 18), np.exp([-0.15, -0.3]))


def test_present_value_equals_the_discounted_sum():
    x = np.full((2, 12), 100.0)
    x[1, 5] = -40.0
    rates = np.array([0.2, 0.05])
    pv = valuation.present_value(x, rates)
    np.testing.assert_allclose(pv, (x * valuation.discount_factors(rates, 12)).sum(axis=1), rtol=1e-14)
    assert pv[0] == pytest.approx(100 * sum(math.exp(-0.2 * k / 12) for k in range(1, 13)), rel=1e-14)


def test_continuation_values_the_flows_after_each_month_and_the_terminal():
    # Flows 1..6 at 12%/yr (1% a month), terminal 50 at the end of month 5.
    x = np.arange(1.0, 7.0)[None, :]
    w = valuation.continuation(x, 0.12, terminal=50.0)
    v = math.exp(-0.01)
    assert w[0, 5] == pytest.approx(50.0)
    assert w[0, 4] == pytest.approx(v * (6 + 50))
    assert w[0, 0] == pytest.approx(sum(x[0, s] * v ** s for s in range(1, 6)) + 50 * v ** 5)
    # Today's value is one more step back from month 0.
    today = valuation.present_value(x, 0.12) + 50 * valuation.at_horizon(0.12, 6)[0]
    assert v * (x[0, 0] + w[0, 0]) == pytest.approx(today, rel=1e-14)


def test_gordon_is_the_sum_of_the_growing_annual_flows():
    k, g, first = 0.07, 0.025, 100.0
    brute = sum(first * math.exp(g * (y - 1)) * math.exp(-k * y) for y in range(1, 5000))
    assert valuation.gordon(first, k, g)[0] == pytest.approx(brute, rel=1e-12)
    # Zero growth at 4%: about 24.5 years of flows, the "multiple" the rate implies.
    assert valuation.gordon(1.0, 0.04, 0.0)[0] == pytest.approx(1 / math.expm1(0.04), rel=1e-12)


def mining_value(revenue, cost, share, to_halving, rate, growth):
    """The value of mining's projected years (valuation.mining_years) at ``rate``."""
    return valuation.annual_value(valuation.mining_years(
        revenue, cost, subsidy_share=share, years_to_halving=to_halving, growth=growth), rate)


def test_mining_terminal_counts_the_halvings_and_stops_when_unprofitable():
    """Revenue 100 a year (80% subsidy), cost 50, flat: the halving 1.5 years out cuts revenue
    to 60 from year 2 (halving before mid-year 2), the next (5.5 years out) to 40 from year 6:
    below cost, so mining stops then."""
    r = 0.05
    v = mining_value(np.array([100.0]), np.array([50.0]), np.array([0.8]), np.array([1.5]), r, 0.0)
    expected = 50 * math.exp(-r) + sum(10 * math.exp(-r * y) for y in range(2, 6))
    assert v[0] == pytest.approx(expected, rel=1e-12)
    # Without halvings and with growth it is the capped sum of a shrinking margin.
    v = mining_value(np.array([100.0]), np.array([50.0]), np.array([0.8]), np.array([np.inf]), r,
                     -0.1)
    expected = sum(max(100 * math.exp(-0.1 * y) - 50, 0) * math.exp(-r * y) for y in range(1, 101))
    assert v[0] == pytest.approx(expected, rel=1e-12)


def test_terminal_run_rate_grows_the_last_year():
    x = np.arange(24.0)[None, :]
    assert valuation.terminal_run_rate(x, 0.1)[0] == pytest.approx(sum(range(12, 24)) * math.exp(0.1))


def test_free_cash_flow():
    fcf = valuation.free_cash_flow(np.array([[10.0]]), np.array([[1.0]]), np.array([[5.0]]),
                                   np.array([[2.0]]), np.array([[3.0]]), np.array([[0.5]]), 1.5)
    assert fcf[0, 0] == pytest.approx(10 - 1 + 5 - 2 - 3 - 0.5 - 1.5)


def test_control_variate_removes_the_control_noise_and_keeps_the_mean():
    rng = np.random.default_rng(7)
    n = 20_000
    c = rng.standard_normal((n, 1))
    noise = rng.standard_normal(n)
    v = 5.0 + 3.0 * c[:, 0] + 0.5 * noise
    mean, se, plain, plain_se = valuation.controlled_mean(v, c)
    assert plain_se == pytest.approx(np.sqrt(9.25 / n), rel=0.03)
    assert se == pytest.approx(0.5 / np.sqrt(n), rel=0.03)
    # The controlled mean is 5 + 0.5 mean(noise) - (b - 3) mean(c) ... within 3 of its own SE.
    assert abs(mean - 5.0) < 3 * se
    # NaN paths (failed) are left out.
    v2 = v.copy()
    v2[:10] = np.nan
    assert np.isfinite(valuation.controlled_mean(v2, c)[0])
