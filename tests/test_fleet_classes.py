"""Curtailment by machine class (issue 16, item 2): each class runs when it earns its power.

Hand-computed cases on constant one-path grids: two classes whose breakevens straddle the
hashprice, MW short of the fleet, demand-response credits, and curtailment switched off.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import fleet

DAYS = np.array([30.0])
PRICE = 50.0  # USD/MWh: breakeven = J/TH x 24 x 50 / 1000 = 1.2 x J/TH USD/PH/day


def _run(hashrates, effs, available, hashprice, **kw):
    h = np.array(hashrates, float).reshape(-1, 1, 1)
    j = np.array(effs, float).reshape(-1, 1, 1)
    one = np.ones((1, 1))
    return fleet.operate(h, j, np.full((1, 1), float(available)), network_hashrate=1000.0 * one,
                         blocks=4320.0 * one, subsidy=3.125 * one, fees_per_block=0.0 * one,
                         btc_price=100_000.0 * one, hashprice=float(hashprice) * one, days=DAYS,
                         realisation=1.0, power_price_usd_per_mwh=PRICE,
                         site_opex_usd_per_mw_month=1000.0, **kw)


def test_the_class_below_its_breakeven_stops_and_the_other_runs():
    # 10 EH/s at 15 J/TH (breakeven 18 USD/PH/day) and 10 EH/s at 25 J/TH (breakeven 30):
    # at 20 USD/PH/day only the first runs.
    r = _run([10, 10], [25, 15], available=1_000, hashprice=20.0)
    assert r.company_hashrate[0, 0] == pytest.approx(20.0)
    assert r.mining_mw[0, 0] == pytest.approx(400.0)          # 150 + 250 MW allocated
    assert r.running_mw[0, 0] == pytest.approx(150.0)         # the 15 J/TH class only
    assert r.curtailed[0, 0] == pytest.approx(0.5)            # half the hashrate is off
    btc = 10 / 1000 * 4320 * 3.125                            # running share x blocks x subsidy
    assert r.btc_mined[0, 0] == pytest.approx(btc)
    assert r.power_cost[0, 0] == pytest.approx(150.0 * 24 * 30 * PRICE)
    assert r.site_opex[0, 0] == pytest.approx(400.0 * 1000.0)  # opex on every allocated MW
    assert r.mining_margin[0, 0] == pytest.approx(btc * 100_000 - 150.0 * 24 * 30 * PRICE)


def test_short_megawatts_go_to_the_most_efficient_class_first():
    # 200 MW for 10 EH/s at 25 J/TH (250 MW) and 10 EH/s at 15 J/TH (150 MW): the 15 J/TH class
    # gets its 150 MW, the other the 50 MW left (2 EH/s).
    r = _run([10, 10], [25, 15], available=200, hashprice=40.0)
    assert r.mining_mw[0, 0] == pytest.approx(200.0)
    assert r.company_hashrate[0, 0] == pytest.approx(10 + 2)
    assert r.curtailed[0, 0] == 0.0


def test_demand_response_credit_pays_for_curtailed_energy_and_moves_the_breakeven():
    # A 10 USD/MWh credit lifts the 15 J/TH class's breakeven to 15 x 24 x 60 / 1000 = 21.6:
    # at 20 USD/PH/day it is worth more off than on, and both classes earn the credit.
    r = _run([10, 10], [25, 15], available=1_000, hashprice=20.0,
             demand_response_usd_per_mwh=10.0)
    assert r.running_mw[0, 0] == 0.0 and r.curtailed[0, 0] == pytest.approx(1.0)
    assert r.mining_margin[0, 0] == pytest.approx(400.0 * 24 * 30 * 10.0)
    # Without the credit the 15 J/TH class would run: the credit changes the decision.
    assert _run([10, 10], [25, 15], available=1_000, hashprice=20.0).running_mw[0, 0] == 150.0


def test_curtailment_switched_off_runs_every_class():
    r = _run([10, 10], [25, 15], available=1_000, hashprice=5.0, curtail=False)
    assert r.running_mw[0, 0] == pytest.approx(400.0) and r.curtailed[0, 0] == 0.0
    assert r.power_cost[0, 0] == pytest.approx(400.0 * 24 * 30 * PRICE)  # every MW draws power


def test_one_class_is_the_blended_fleet():
    planned = np.full((3, 4), 10.0)
    j = np.full((3, 4), 20.0)
    avail = np.array([[300.0, 150.0, 0.0, 500.0]] * 3)
    hp = np.array([[30.0, 20.0, 30.0, 23.0]] * 3)
    kw = dict(network_hashrate=np.full((3, 4), 1000.0), blocks=np.full((3, 4), 4320.0),
              subsidy=np.full((3, 4), 3.125), fees_per_block=np.zeros((3, 4)),
              btc_price=np.full((3, 4), 1e5), hashprice=hp, days=np.full(4, 30.0), realisation=0.95,
              power_price_usd_per_mwh=PRICE, site_opex_usd_per_mw_month=500.0)
    a = fleet.operate(planned, j, avail, **kw)
    b = fleet.operate(planned[None], j[None], avail, **kw)
    for name in ("company_hashrate", "mining_mw", "curtailed", "btc_mined", "power_cost", "running_mw"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-15, atol=0)
    # Breakeven 24: month 2 (20) and month 4 (23) are off; month 3 has no MW but would run.
    np.testing.assert_array_equal(a.curtailed[0], [0.0, 1.0, 0.0, 1.0])


def test_classes_add_up_to_the_planned_fleet_and_retirements_leave_their_class():
    deps = [(3, 5.0, 13.5, 0.0), (6, 2.0, 20.0, 0.0), (8, -4.0, 20.0, 0.0)]
    h, j = fleet.planned_classes(50.0, 20.0, deps, 12)
    assert h.shape == (2, 1, 12) and j[:, 0, 0].tolist() == [20.0, 13.5]
    planned, fleet_j, _ = fleet.planned_fleet(50.0, 20.0, deps, 12)
    np.testing.assert_allclose(h.sum(axis=0), planned)
    np.testing.assert_allclose((h * j).sum(axis=0), planned * fleet_j)
    assert h[0, 0, 11] == pytest.approx(48.0)  # 50 + 2 - 4 at 20 J/TH
