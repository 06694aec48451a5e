"""The AI colocation lease-rate index (issue 16, item 4): a mean-reverting lognormal world process,
checked against its closed-form moments, and shared by every company of a peer group."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulator.engine.conversion import lease_index, lease_index_moments
from simulator.scenario import load_scenario
from simulator.scenario.universe import is_world_key

P, T = 20_000, 60
KW = dict(volatility=0.3, mean_reversion=0.8, long_run=1.1, level0=0.9)


@pytest.fixture(scope="module")
def paths():
    rng = np.random.default_rng(7)
    btc = rng.standard_normal((P, T))
    return lease_index(rng.standard_normal((P, T)), btc, correlation=0.4, **KW), btc


@pytest.mark.parametrize("month", [0, 11, 35, 59])
def test_mean_and_variance_match_the_closed_form(paths, month):
    x = paths[0][:, month]
    mean, var = lease_index_moments(T, **KW)
    se_mean = x.std() / math.sqrt(P)
    assert abs(x.mean() - mean[month]) < 4 * se_mean
    dev = (x - x.mean()) ** 2
    se_var = dev.std() / math.sqrt(P)  # the sample variance's own standard error
    assert abs(dev.mean() - var[month]) < 4 * se_var


def test_the_first_shock_correlates_with_btc_at_rho(paths):
    index, btc = paths
    rho = np.corrcoef(np.log(index[:, 0]), btc[:, 0])[0, 1]
    assert abs(rho - 0.4) < 4 * (1 - 0.4 ** 2) / math.sqrt(P)


def test_without_volatility_the_index_reverts_by_hand():
    """log I_t = m + a^(t+1) (log 0.9 - m), a = exp(-0.8 / 12), m = log 1.1."""
    z = np.zeros((1, 24))
    index = lease_index(z, z, volatility=0.0, mean_reversion=0.8, correlation=0.0, long_run=1.1, level0=0.9)
    a, m = math.exp(-0.8 / 12), math.log(1.1)
    hand = [math.exp(m + a ** (t + 1) * (math.log(0.9) - m)) for t in range(24)]
    np.testing.assert_allclose(index[0], hand, rtol=1e-13)
    mean, var = lease_index_moments(24, volatility=0.0, mean_reversion=0.8, long_run=1.1, level0=0.9)
    np.testing.assert_allclose(mean, hand, rtol=1e-13)
    assert not var.any()


def test_the_index_is_a_world_input_in_base_and_the_peers():
    assert is_world_key("market.ai_lease_index.volatility")
    clsk = Path(__file__).resolve().parents[1] / "scenarios" / "companies" / "clsk.yaml"
    base, peers = load_scenario("base"), load_scenario(clsk)
    assert base.market.ai_lease_index == peers.market.ai_lease_index is not None
