"""engine/exercise.py: least-squares exercise against independent truths.

The American put of Longstaff and Schwartz (2001, Table 1: S0 36, strike 40, sigma 0.2, r 6%,
one year, 50 exercise dates) against a Cox-Ross-Rubinstein tree and Black-Scholes written out
here; small switching problems whose best policy is known by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.engine import exercise
from simulator.errors import RunError

S0, STRIKE, SIGMA, RATE, YEARS, DATES = 36.0, 40.0, 0.2, 0.06, 1.0, 50


def crr_american_put(s0, strike, sigma, rate, years, steps):
    """Cox-Ross-Rubinstein (1979) tree with early exercise at every node."""
    dt = years / steps
    up = math.exp(sigma * math.sqrt(dt))
    p = (math.exp(rate * dt) - 1 / up) / (up - 1 / up)
    disc = math.exp(-rate * dt)
    value = np.maximum(strike - s0 * up ** (2.0 * np.arange(steps + 1) - steps), 0.0)
    for i in range(steps - 1, -1, -1):
        value = disc * (p * value[1:] + (1 - p) * value[:-1])
        value = np.maximum(value, strike - s0 * up ** (2.0 * np.arange(i + 1) - i))
    return float(value[0])


def black_scholes_put(s0, strike, sigma, rate, years):
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    d1 = (math.log(s0 / strike) + (rate + sigma**2 / 2) * years) / (sigma * math.sqrt(years))
    d2 = d1 - sigma * math.sqrt(years)
    return strike * math.exp(-rate * years) * cdf(-d2) - s0 * cdf(-d1)


def gbm(paths, seed):
    """[paths, DATES + 1] GBM prices under the pricing measure."""
    dt = YEARS / DATES
    z = np.random.default_rng(seed).standard_normal((paths, DATES))
    steps = (RATE - SIGMA**2 / 2) * dt + SIGMA * math.sqrt(dt) * z
    return S0 * np.exp(np.hstack([np.zeros((paths, 1)), np.cumsum(steps, axis=1)]))


def test_american_put_matches_binomial_tree():
    # The policy is fitted on one set of paths and valued on another, independent one: no
    # foresight, so the price is biased only low (by how far the fitted policy is from the
    # best, and by 50 dates instead of continuous exercise), and its SE is that of a mean.
    price, se = exercise.american_option(gbm(60_000, 1), gbm(60_000, 2), lambda s: STRIKE - s,
                                         math.exp(-RATE * YEARS / DATES), degree=3)
    tree = crr_american_put(S0, STRIKE, SIGMA, RATE, YEARS, 2_000)
    european = black_scholes_put(S0, STRIKE, SIGMA, RATE, YEARS)
    assert tree == pytest.approx(4.486, abs=0.002)
    assert 3 * se < 0.01 * tree  # so a miss of 1% is bias, not noise
    assert abs(price / tree - 1) < 0.01, (price, se, tree)
    assert price <= tree + 3 * se  # out of sample: never above the best policy beyond noise
    assert price > european + 3 * se  # early exercise is worth something


def test_a_european_put_is_never_exercised_early():
    """Only the last date allowed (consider False before it): the Black-Scholes price."""
    fit, paths = gbm(20_000, 3), gbm(40_000, 4)
    disc = math.exp(-RATE * YEARS / DATES)
    n = paths.shape[0]
    pay = np.maximum(STRIKE - paths[:, 1:], 0.0)
    policy, _ = exercise.fit_switching([0.0, 0.0], {(0, 1): -np.maximum(STRIKE - fit[:, 1:], 0)},
                                       [np.maximum(STRIKE - fit[:, -1], 0), 0.0], {"S": fit[:, 1:]},
                                       disc, consider=np.zeros(fit[:, 1:].shape, bool))
    regime = exercise.apply_switching(policy, {(0, 1): -pay}, {"S": paths[:, 1:]},
                                      consider=np.zeros(pay.shape, bool))
    assert not regime.any()
    v = exercise.path_value(regime, [0.0, 0.0], {(0, 1): -pay}, [pay[:, -1], np.zeros(n)], disc)
    bs = black_scholes_put(S0, STRIKE, SIGMA, RATE, YEARS)
    assert abs(v.mean() - bs) < 3 * v.std() / math.sqrt(n)


def test_a_mine_closes_when_it_loses_money_and_reopens_when_it_earns():
    """No randomness: a mine earns 10 a month, loses 5 in months 3-8, then earns 10 again.
    Closing costs 1, reopening 2, a closed month costs 0.5 in upkeep. Closing at the end of
    month 2 and reopening at the end of month 8 saves 6 x (5 - 0.5) - 1 - 2 = 24 undiscounted,
    so it is the best policy; with reopening at 40 the mine stays open (closing for good
    forfeits the later profits, 6 x 4.5 - 1 = 26 < 40)."""
    months, n = 12, 3
    flow = np.where((np.arange(months) >= 3) & (np.arange(months) <= 8), -5.0, 10.0)
    flows = [np.broadcast_to(flow, (n, months)), -0.5]
    state = {"t": np.broadcast_to(np.arange(months, dtype=float), (n, months))}
    for reopen, expect in [(2.0, [0, 0, 0] + [1] * 6 + [0] * 3), (40.0, [0] * 12)]:
        moves = {(0, 1): 1.0, (1, 0): reopen}
        policy, value = exercise.fit_switching(flows, moves, [0.0, 0.0], state, 1.0)
        regime = exercise.apply_switching(policy, moves, state)
        assert regime[0].tolist() == expect
        paid = exercise.path_value(regime, flows, moves, [0.0, 0.0], 1.0)
        hand = 10 * 6 + (-0.5 * 6 - 1 - reopen if expect[3] else -5 * 6)
        np.testing.assert_allclose(paid, hand)
        np.testing.assert_allclose(value, hand)


def test_a_move_must_join_two_regimes():
    with pytest.raises(RunError, match=r"move \(0, 0\) must join two different regimes of 2"):
        exercise.fit_switching([0.0, 0.0], {(0, 0): 1.0}, [np.zeros(2), 0.0],
                               {"x": np.zeros((2, 3))}, 1.0)
