"""Summary statistics against closed forms: normal samples, binomial order statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from synthetic import synthetic_cube

from simulator.analysis import stats

N = 10_000
MU, SIGMA = 12.0, 3.0


@pytest.fixture(scope="module")
def normal():
    return np.random.default_rng(20251201).normal(MU, SIGMA, N)


def test_mean_and_its_se(normal):
    s = stats.summary(normal)
    se_true = SIGMA / np.sqrt(N)
    # The SE estimate s/sqrt(n) has relative sd ~ 1/sqrt(2n) = 0.7%; allow 5 of those.
    assert s["mean_se"] == pytest.approx(se_true, rel=5 / np.sqrt(2 * N))
    assert abs(s["mean"] - MU) < 4 * se_true
    assert s["n"] == N and s["n_failed"] == 0


@pytest.mark.parametrize("p", stats.PERCENTILES)
def test_percentile_and_its_se(normal, p):
    d = stats.summary(normal)["percentiles"][p]
    q_true = sps.norm.ppf(p, MU, SIGMA)
    se_true = np.sqrt(p * (1 - p) / N) / sps.norm.pdf(q_true, MU, SIGMA)
    assert abs(d["value"] - q_true) < 4 * se_true
    # KDE density at the quantile: a few percent bias at the tails is expected.
    assert d["se"] == pytest.approx(se_true, rel=0.10)
    assert d["ci_low"] <= d["value"] <= d["ci_high"]


def test_order_statistic_ci_by_hand():
    xs = np.arange(1.0, 21.0)
    # n = 20, p = 0.5: binom.ppf(0.025) = 6 and binom.ppf(0.975) = 14, so the CI is
    # [x_(6), x_(15)] with coverage P(6 <= B <= 14) = 0.9586.
    lo, hi = stats.quantile_ci(xs, [0.5], 0.95)
    assert (lo[0], hi[0]) == (6.0, 15.0)
    assert sps.binom.cdf(14, 20, 0.5) - sps.binom.cdf(5, 20, 0.5) == pytest.approx(0.9586, abs=1e-4)


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_order_statistic_ci_coverage(p):
    reps, n = 400, 200
    rng = np.random.default_rng(7)
    truth = sps.norm.ppf(p)
    hits = 0
    for _ in range(reps):
        lo, hi = stats.quantile_ci(np.sort(rng.standard_normal(n)), [p], 0.95)
        hits += lo[0] <= truth <= hi[0]
    coverage = hits / reps
    # Coverage is >= 0.95 by construction; allow 3 binomial SEs of the 400 replications.
    assert coverage >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)


def test_prob_above():
    v = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    d = stats.prob_above(v, 2.5)
    assert d["p"] == 0.5
    assert d["se"] == pytest.approx(np.sqrt(0.5 * 0.5 / 4))


def test_prob_above_se_matches_spread(normal):
    d = stats.summary(normal, threshold=MU + SIGMA)["prob_above"]
    p_true = sps.norm.sf(1.0)
    assert abs(d["p"] - p_true) < 4 * np.sqrt(p_true * (1 - p_true) / N)


def test_failed_paths_are_dropped_and_counted():
    v = np.array([1.0, np.nan, 3.0, np.nan, 5.0])
    s = stats.summary(v)
    assert (s["n"], s["n_failed"], s["mean"]) == (3, 2, 3.0)
    assert s["mean_se"] == pytest.approx(2.0 / np.sqrt(3))


def test_too_few_values():
    with pytest.raises(ValueError, match="at least 2 finite values, got 1"):
        stats.summary(np.array([1.0, np.nan]))


def test_running_mean(normal):
    n, mean, se = stats.running_mean(normal, points=30)
    assert n[0] == 10 and n[-1] == N and np.all(np.diff(n) > 0)
    assert mean[-1] == pytest.approx(normal.mean())
    assert se[-1] == pytest.approx(normal.std(ddof=1) / np.sqrt(N))
    k = n[5]
    assert mean[5] == pytest.approx(normal[:k].mean())
    assert se[5] == pytest.approx(normal[:k].std(ddof=1) / np.sqrt(k))


def test_fan_matches_numpy_quantiles():
    c = synthetic_cube(paths=300, months=36, failed=5)
    bands = stats.fan(c, "btc_price")
    ok = ~c["path_failed"].values
    want = np.quantile(c["btc_price"].values[ok], stats.PERCENTILES, axis=0)
    np.testing.assert_allclose(bands, want)
    assert bands.shape == (5, 36)


def test_fan_on_stored_sample_with_nan_month():
    c = synthetic_cube(paths=100, months=36, sample=40)
    c["hashprice"][:, 3] = np.nan
    bands = stats.fan(c, "hashprice", quantiles=(0.5,))
    assert np.isnan(bands[0, 3])
    np.testing.assert_allclose(bands[0, 4], np.median(c["hashprice"].values[:, 4]))
