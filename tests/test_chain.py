"""The scenario-to-engine wiring, checked on shipped scenarios and hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.scenario import load_scenario
from simulator.run import simulate


@pytest.fixture(scope="module")
def no_pivot():
    return simulate(load_scenario("no-pivot"), paths=1024)


@pytest.fixture(scope="module")
def base():
    return simulate(load_scenario("base"), paths=1024)


def _series(cube, name):
    return cube[name].values


def test_no_pivot_has_zero_hpc_revenue(no_pivot):
    assert np.all(_series(no_pivot, "hpc_revenue") == 0.0)
    assert np.all(_series(no_pivot, "hpc_mw_it") == 0.0)
    # The HPC segment holds only Texas's unbuilt powered land: 285 MW x $0.4M/MW (V-M8),
    # valued at the horizon and discounted 10 years at r plus each path's tenant spread.
    rate = 0.04 + no_pivot["input_valuation_tenant_credit_spread"].values
    np.testing.assert_allclose(no_pivot["pv_hpc"].values, 285 * 0.4e6 * np.exp(-rate * 10.0), rtol=1e-12)
    assert np.all(no_pivot["sign_month"].values == -1)


def test_base_converts_sites_on_some_paths(base):
    signed = base["sign_month"].values >= 0
    assert 0.3 < signed.mean() < 0.95  # signing probabilities 0.5-0.85 within the horizon
    assert (_series(base, "hpc_revenue") > 0).any()


def test_first_month_mining_matches_hand_arithmetic():
    """Zero volatility everywhere: month 0 BTC mined is share x blocks x reward x realisation."""
    scenario = load_scenario("base")
    fixed = {
        "market.btc.process.volatility": 0.0, "market.fees.median_btc_per_block": 0.03,
        "market.fees.log_sd": 0.0, "network.model.volatility": 0.0,
        "network.model.efficiency_improvement_per_year": 0.08, "company.fleet.realisation": 0.92,
        "company.power.price_usd_per_mwh": 56.0, "company.fleet.deployments.0.date": 2.0,
    }
    cube = simulate(scenario, paths=2, overrides=fixed)
    # December 2025: 31 days; the deployment lands in month 2, so 50 EH/s hash in month 0.
    h0 = 1069.0
    hashrate = float(cube["network_hashrate"].values[0, 0])
    # Difficulty lags half a month: blocks = 144 x days x sqrt(H_t / H_{t-1}), H_{-1} = H0.
    blocks_expected = 144 * 31 * np.sqrt(hashrate / h0)
    reward = 3.125 + 0.03
    expected = 50.0 / hashrate * blocks_expected * reward * 0.92
    assert cube["btc_mined"].values[0, 0] == pytest.approx(expected, rel=1e-6)
    assert cube["company_hashrate"].values[0, 0] == pytest.approx(50.0)
    assert cube["mining_mw"].values[0, 0] == pytest.approx(50.0 * 16.07)  # CHK-4
    hours = 31 * 24
    assert cube["power_cost"].values[0, 0] == pytest.approx(803.5 * hours * 56.0, rel=1e-6)


def test_fleet_renewal_replaces_a_fifth_of_the_fleet_each_year(tmp_path):
    """50 EH/s aged evenly over 5 years: 10 EH/s retire at month 12, replaced at the frontier."""
    path = tmp_path / "renew.yaml"
    # Every machine runs every month (no curtailment by class), so every path has the fleet whole.
    path.write_text("extends: base\nname: renew\ncompany:\n  power:\n    curtail: false\n"
                    "  fleet:\n    renewal:\n"
                    "      machine_life_years: 5\n      frontier_j_per_th: 13.5\n"
                    "      frontier_improvement_per_year: 0.08\n      capex_usd_per_th: 12\n")
    cube = simulate(load_scenario(path), paths=8, overrides={"company.fleet.deployments.0.date": 2.0})
    mw = cube["mining_mw"].values
    ehs = cube["company_hashrate"].values
    assert (cube["curtailed"].values[:, 12] == 0).all()
    # ... except in the month a site signs its lease: its machines are moved that month.
    uncurtailed = (cube["sign_month"].values != 12).all(axis=1)
    assert uncurtailed.sum() >= 4
    # 45.7 EH/s at 16.07 J/TH and 5.7 at 13.5 (the S21 XP deployment), then 10 EH/s of the
    # original fleet swapped for 13.5 x 0.92 J/TH machines at month 12.
    j12 = (40 * 16.07 + 5.7 * 13.5 + 10 * 13.5 * 0.92) / 55.7
    np.testing.assert_allclose(mw[uncurtailed, 12] / ehs[uncurtailed, 12], j12, rtol=1e-6)
    np.testing.assert_allclose(ehs[uncurtailed, 12], 55.7, rtol=1e-6)
    # Month-12 capex includes 10 EH/s = 1e7 TH at $12/TH on every path.
    assert np.all(cube["capex"].values[:, 12] >= 1e7 * 12 * (1 - 1e-6))
