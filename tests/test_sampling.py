"""Input sampling: hypercube methods, Gaussian copula, ppf mapping (simulator/sampling.py)."""

import numpy as np
import pytest
from scipy import stats

from simulator.errors import ScenarioError
from simulator.rng import BLOCK_PATHS, chunk_plan
from simulator.run.sampling import METHODS, sample_inputs, spearman_to_pearson, unit_hypercube

DISTS = {
    "power_price_usd_per_mwh": stats.triang(c=(56 - 45) / (65 - 45), loc=45, scale=20),
    "btc_sigma": stats.norm(loc=0.45, scale=0.05),
    "fees_btc": stats.lognorm(s=0.5, scale=0.03),
}


def _sample(method, n_total, chunk, seed=7, corr=None, dists=DISTS):
    parts = [sample_inputs(dists, method=method, seed=seed, start=a, stop=b, n_total=n_total,
                           corr=corr) for a, b in chunk_plan(n_total, chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in dists}


@pytest.mark.parametrize("method", METHODS)
def test_marginals_pass_ks(method):
    n = 8_192
    x = _sample(method, n, 3_000)
    for key, dist in DISTS.items():
        assert stats.kstest(x[key], dist.cdf).pvalue > 0.01, key
    # The test can fail: a wrong target is rejected at this sample size.
    wrong = stats.norm(loc=0.46, scale=0.05)
    assert stats.kstest(x["btc_sigma"], wrong.cdf).pvalue < 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_chunk_splits_give_identical_inputs(method):
    n = 20_000
    ref = _sample(method, n, n)
    for chunk in (1_000, 7_777):
        got = _sample(method, n, chunk)
        for key in DISTS:
            assert np.array_equal(got[key], ref[key]), (method, chunk, key)


@pytest.mark.parametrize("method", METHODS)
def test_seeds_differ(method):
    a = _sample(method, 2_048, 2_048, seed=1)
    b = _sample(method, 2_048, 2_048, seed=2)
    assert not np.array_equal(a["btc_sigma"], b["btc_sigma"])


@pytest.mark.parametrize("method", METHODS)
def test_target_spearman_is_reached(method):
    corr = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 1.0]])
    x = _sample(method, 20_000, 20_000, corr=corr)
    keys = list(DISTS)
    rho = stats.spearmanr(np.column_stack([x[k] for k in keys])).statistic
    assert abs(rho[0, 1] - 0.6) < 0.03
    assert abs(rho[1, 2] + 0.3) < 0.03
    assert abs(rho[0, 2]) < 0.03
    for key, dist in DISTS.items():  # marginals survive the copula
        assert stats.kstest(x[key], dist.cdf).pvalue > 0.01, key


@pytest.mark.parametrize("method", METHODS)
def test_copula_keeps_chunk_invariance_and_leaves_unlinked_inputs_alone(method):
    """Only the inputs a correlation links are transformed: the third column keeps its
    independent draws bit for bit, and any chunk split gives the same correlated inputs."""
    corr = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ref = _sample(method, 20_000, 20_000, corr=corr)
    for chunk in (1_000, 7_777):
        got = _sample(method, 20_000, chunk, corr=corr)
        for key in DISTS:
            assert np.array_equal(got[key], ref[key]), (method, chunk, key)
    independent = _sample(method, 20_000, 20_000)
    assert np.array_equal(ref["fees_btc"], independent["fees_btc"])
    assert not np.array_equal(ref["btc_sigma"], independent["btc_sigma"])


def test_latin_hypercube_is_stratified_per_block():
    u = unit_hypercube(3, method="latin_hypercube", seed=4, start=0, stop=3 * BLOCK_PATHS,
                       n_total=3 * BLOCK_PATHS + 100)
    for b in range(3):
        block = u[b * BLOCK_PATHS:(b + 1) * BLOCK_PATHS]
        for j in range(3):
            assert np.array_equal(np.sort(np.floor(block[:, j] * BLOCK_PATHS)),
                                  np.arange(BLOCK_PATHS))
    # The last, partial block is a complete design of its own 100 points.
    tail = unit_hypercube(1, method="latin_hypercube", seed=4, start=3 * BLOCK_PATHS,
                          stop=3 * BLOCK_PATHS + 100, n_total=3 * BLOCK_PATHS + 100)
    assert np.array_equal(np.sort(np.floor(tail[:, 0] * 100)), np.arange(100))


def test_sobol_first_power_of_two_points_are_stratified_across_chunks():
    n = 4_096
    u = np.concatenate([unit_hypercube(2, method="sobol", seed=3, start=a, stop=b, n_total=n)
                        for a, b in chunk_plan(n, 1_000)])
    for j in range(2):
        assert np.array_equal(np.sort(np.floor(u[:, j] * n)), np.arange(n))


def test_spearman_to_pearson():
    # rho_p = 2 sin(pi rho_s / 6): hand values.
    assert spearman_to_pearson(0.5) == pytest.approx(2 * np.sin(np.pi / 12))
    assert spearman_to_pearson(0.0) == 0.0
    m = spearman_to_pearson(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    assert m[0, 0] == 1.0 and m[0, 1] == pytest.approx(-1.0)


def test_discrete_and_custom_ppf():
    class Choice:
        values = np.array([10.0, 20.0, 30.0])
        cum = np.array([0.2, 0.7, 1.0])

        def ppf(self, u):
            return self.values[np.searchsorted(self.cum, u)]

    n = 20_000
    x = _sample("random", n, 5_000, dists={"flag": stats.bernoulli(0.3), "pick": Choice()})
    se = np.sqrt(0.3 * 0.7 / n)
    assert abs(x["flag"].mean() - 0.3) < 4 * se
    assert set(np.unique(x["pick"])) == {10.0, 20.0, 30.0}
    assert abs((x["pick"] == 20.0).mean() - 0.5) < 4 * np.sqrt(0.25 / n)


def test_random_streams_are_per_key():
    # Fixing one input keeps every other input's draws (common random numbers).
    full = sample_inputs(DISTS, method="random", seed=9, start=0, stop=500, n_total=500)
    fewer = {k: v for k, v in DISTS.items() if k != "btc_sigma"}
    part = sample_inputs(fewer, method="random", seed=9, start=0, stop=500, n_total=500)
    assert np.array_equal(part["fees_btc"], full["fees_btc"])


def test_singular_correlation_is_reported():
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    with pytest.raises(ScenarioError) as err:
        sample_inputs(DISTS, method="random", seed=1, start=0, stop=10, n_total=10, corr=corr)
    assert str(err.value) == (
        "<scenario>: correlations: correlation matrix is not positive definite after the "
        "Spearman-to-Pearson conversion (allowed: a positive definite matrix); "
        "weaken the largest correlations")


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown sampling method 'halton'"):
        unit_hypercube(2, method="halton", seed=1, start=0, stop=4, n_total=4)
