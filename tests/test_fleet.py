"""Fleet stage: planned fleet, MW cap, curtailment, BTC mined (CHK-2, CHK-4)."""

import numpy as np
import pytest

from simulator.engine import fleet


def run(planned=50.0, j=16.07, available=1e9, network=1068.7, blocks=4320.0, subsidy=3.125,
        fees=0.03, price=84_500.0, hashprice=100.0, days=30.0, realisation=1.0, power=56.0,
        opex=0.0):
    a = lambda x: np.full((1, 1), x, dtype=np.float64)  # noqa: E731
    return fleet.operate(a(planned), a(j), a(available), network_hashrate=a(network),
                         blocks=a(blocks), subsidy=a(subsidy), fees_per_block=a(fees),
                         btc_price=a(price), hashprice=a(hashprice), days=np.array([days]),
                         realisation=realisation, power_price_usd_per_mwh=power,
                         site_opex_usd_per_mw_month=opex)


def test_chk2_btc_mined():
    # CHK-2: 50 / 1,068.7 x 30 x 144 x 3.155 ~ 638 BTC at 100% realisation.
    r = run()
    assert r.btc_mined[0, 0] == pytest.approx(50 / 1068.7 * 4320 * 3.155)
    assert r.btc_mined[0, 0] == pytest.approx(638, abs=0.5)
    assert run(realisation=0.92).btc_mined[0, 0] == pytest.approx(0.92 * 637.7, abs=0.2)


def test_chk4_mining_mw():
    assert run().mining_mw[0, 0] == pytest.approx(803.5)


def test_power_and_margin():
    r = run(planned=10.0, j=20.0, power=50.0, days=31.0, opex=1000.0)
    assert r.power_cost[0, 0] == pytest.approx(200 * 24 * 31 * 50)
    assert r.mining_margin[0, 0] == pytest.approx(r.mining_revenue[0, 0] - 200 * 24 * 31 * 50)
    assert r.site_opex[0, 0] == pytest.approx(200 * 1000)


def test_capped_by_available_mw():
    r = run(planned=50.0, j=20.0, available=600.0)
    assert r.company_hashrate[0, 0] == pytest.approx(30.0)
    assert r.mining_mw[0, 0] == pytest.approx(600.0)
    assert run(available=-5.0).company_hashrate[0, 0] == 0.0


@pytest.mark.parametrize("hashprice, off", [(24.0, False), (np.nextafter(24.0, 0), True),
                                            (24.01, False), (23.99, True)])
def test_curtailment_switches_at_breakeven(hashprice, off):
    # Breakeven = 20 J/TH x 24 h x 50 USD/MWh / 1000 = 24 USD/PH/day.
    assert fleet.breakeven_hashprice(20.0, 50.0) == 24.0
    r = run(j=20.0, power=50.0, hashprice=hashprice, opex=10.0)
    assert r.curtailed[0, 0] == float(off)
    assert (r.btc_mined[0, 0] == 0.0) == off
    assert (r.power_cost[0, 0] == 0.0) == off
    assert r.site_opex[0, 0] == pytest.approx(50 * 20 * 10.0)  # paid either way


def test_planned_fleet_weighted_efficiency_and_capex():
    planned, j, capex = fleet.planned_fleet(50.0, 16.0, [(3, 10.0, 13.0, 15.0)], 6)
    np.testing.assert_allclose(planned[0], [50, 50, 50, 60, 60, 60])
    np.testing.assert_allclose(j[0, 3:], (50 * 16 + 10 * 13) / 60)
    np.testing.assert_allclose(j[0, :3], 16.0)
    assert capex[0, 3] == pytest.approx(10 * 1e6 * 15.0)  # 10 EH/s = 1e7 TH at 15 USD/TH
    assert capex.sum() == pytest.approx(1.5e8)


def test_planned_fleet_per_path_inputs():
    planned, j, _ = fleet.planned_fleet(np.array([40.0, 50.0]), 16.0, [(1, np.array([0.0, 5.0]),
                                                                         10.0, 0.0)], 3)
    np.testing.assert_allclose(planned, [[40, 40, 40], [50, 55, 55]])
    assert j[1, 2] == pytest.approx((50 * 16 + 5 * 10) / 55)


def test_planned_fleet_per_path_months_off_grid_and_out_of_order():
    # Path 0 lands the first deployment before month 0, path 1 lands them in reverse order,
    # path 2 lands the first one past the grid.
    months = np.array([-1, 2, 9])
    planned, j, capex = fleet.planned_fleet(
        50.0, 16.0, [(months, 10.0, 13.0, 15.0), (np.array([1, 1, 3]), 5.0, 10.0, 0.0)], 4)
    np.testing.assert_allclose(planned, [[60, 65, 65, 65], [50, 55, 65, 65], [50, 50, 50, 55]])
    np.testing.assert_allclose(j[1], [16, (800 + 50) / 55, (800 + 130 + 50) / 65,
                                      (800 + 130 + 50) / 65])
    np.testing.assert_allclose(j[2, :3], 16.0)
    expected = np.zeros((3, 4))
    expected[1, 2] = 10 * 1e6 * 15.0  # paid in the landing month, on the grid only
    np.testing.assert_array_equal(capex, expected)


def test_sga_steps_yearly():
    s = fleet.sga_schedule(1000.0, 0.1, 25)
    assert s[0, 11] == 1000.0 and s[0, 12] == pytest.approx(1100.0)
    assert s[0, 24] == pytest.approx(1210.0)


def test_displaced_machines_move_into_spare_capacity_and_the_rest_retire():
    """1,000 MW budget, a 900 MW fleet; 200 MW leave mining in month 2. The 180 MW of machines
    on them (900 of 1,000 MW installed) find 80 MW spare: 80 move and are offline for two
    months, 100 retire."""
    budget = np.array([[1000.0, 1000.0, 800.0, 800.0, 800.0]])
    moved, offline = fleet.displacement(budget, np.full((1, 5), 900.0), 1000.0, 2)
    np.testing.assert_allclose(moved, [[0, 0, 80, 0, 0]])
    np.testing.assert_allclose(offline, [[0, 0, 80, 80, 0]])
    ones = np.ones((1, 5))
    r = fleet.operate(np.full((1, 5), 900.0 / 20.0), 20.0 * ones, budget, network_hashrate=1000.0 * ones,
                      blocks=4320.0 * ones, subsidy=3.125 * ones, fees_per_block=0.0 * ones,
                      btc_price=1e5 * ones, hashprice=1e3 * ones, days=np.full(5, 30.0),
                      realisation=1.0, power_price_usd_per_mwh=50.0, site_opex_usd_per_mw_month=0.0,
                      offline_mw=offline)
    np.testing.assert_allclose(r.mining_mw, [[900, 900, 720, 720, 800]])


def test_no_displacement_without_a_fall_in_the_budget():
    budget = np.array([[800.0, 900.0, 900.0]])
    moved, offline = fleet.displacement(budget, np.full((1, 3), 850.0), 800.0, 3)
    assert not moved.any() and not offline.any()
