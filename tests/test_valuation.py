"""Valuation: discounting, trailing/forward sums, marks, sum of the parts."""

import numpy as np
import pytest

from simulator.engine import valuation


def test_discount_factors_month_end():
    d = valuation.discount_factors(0.2, 24)
    assert d[0, 11] == pytest.approx(1 / 1.2)
    assert d[0, 23] == pytest.approx(1 / 1.44)
    assert d[0, 0] == pytest.approx(1.2 ** (-1 / 12))
    per_path = valuation.discount_factors(np.array([0.1, 0.2]), 12)
    np.testing.assert_allclose(per_path[:, -1], [1 / 1.1, 1 / 1.2])


def test_present_value_equals_the_discounted_sum():
    # Horner's rule against the explicit month-end factors: a level 100/month for 12 months
    # at 20% is 100 x sum_k 1.2^(-k/12), and per-path rates discount each row by its own.
    x = np.full((2, 12), 100.0)
    x[1, 5] = -40.0
    rates = np.array([0.2, 0.05])
    pv = valuation.present_value(x, rates)
    np.testing.assert_allclose(pv, (x * valuation.discount_factors(rates, 12)).sum(axis=1), rtol=1e-14)
    assert pv[0] == pytest.approx(100 * sum(1.2 ** (-k / 12) for k in range(1, 13)), rel=1e-14)
    assert valuation.present_value(x[:1], 0.2)[0] == pv[0]


def test_trailing_12_annualises_early_months():
    x = np.arange(1.0, 16.0)[None, :]  # 1 .. 15
    tr = valuation.trailing_12(x)
    assert tr[0, 0] == pytest.approx(12 * 1.0)
    assert tr[0, 1] == pytest.approx(12 / 2 * (1 + 2))
    assert tr[0, 11] == pytest.approx(sum(range(1, 13)))
    assert tr[0, 14] == pytest.approx(sum(range(4, 16)))


def test_forward_12():
    x = np.arange(20.0)[None, :]
    fw = valuation.forward_12(x, 8)
    assert fw.shape == (1, 8)
    assert fw[0, 0] == pytest.approx(sum(range(1, 13)))
    assert fw[0, 7] == pytest.approx(sum(range(8, 20)))


def test_mark():
    v = valuation.mark(trailing_mining_ebitda=np.array([[-5.0, 10.0]]),
                       hpc_value=np.array([[36.0, 36.0]]), btc_held=np.array([[3.0, 3.0]]),
                       btc_price=np.array([[10.0, 10.0]]), cash=np.array([[1.0, 1.0]]),
                       debt=np.array([[4.0, 4.0]]), shares=np.array([[2.0, 2.0]]),
                       mining_multiple=8.0)
    np.testing.assert_allclose(v[0], [(0 + 36 + 30 + 1 - 4) / 2, (80 + 36 + 30 + 1 - 4) / 2])


def test_site_value_land_then_campus_under_construction_then_multiple():
    """Sign at month 2, capex 30 a month in months 2-4, rent from month 5 (NOI 10 a month)."""
    T = 12
    noi = np.zeros((1, T + 12))
    noi[0, 5:] = 10.0
    capex = np.zeros((1, T + 12))
    capex[0, 2:5] = 30.0
    v = valuation.site_value(noi, capex, np.array([2]), np.array([5]), months=T, rate=0.10,
                             multiple=15.0, land_value_usd=7.0)
    # Before signing: powered land.
    assert v[0, 0] == v[0, 1] == 7.0
    # Building: 15 x 120 of NOI from month 5, discounted (5 - t) months at 10%, less capex
    # still to pay after month t.
    for t, capex_left in [(2, 60.0), (3, 30.0), (4, 0.0)]:
        expected = 15 * 120 * 1.10 ** (-(5 - t) / 12) - capex_left
        assert v[0, t] == pytest.approx(expected, rel=1e-12)
    # Delivered: 15 x the next 12 months of NOI (months t+1..t+12).
    assert v[0, 5] == pytest.approx(15 * 120)
    never = valuation.site_value(noi * 0, capex * 0, np.array([-1]), np.array([-1]), months=T,
                                 rate=0.10, multiple=15.0, land_value_usd=7.0)
    assert np.all(never == 7.0)


def test_sum_of_parts_constant_flows():
    # 24 months of 1 mining CF and 2 NOI; terminal 8 x 12 and 18 x 24.
    T = 24
    mine = np.ones((1, T))
    noi_ext = np.full((1, T + 12), 2.0)
    v = valuation.sum_of_parts(
        mining_cash_flow=mine, mining_ebitda=mine, hpc_cash_flow=noi_ext[:, :T],
        noi_ext=noi_ext, mining_rate=0.2, hpc_rate=0.1, mining_multiple=8.0,
        hpc_multiple=18.0, btc_held0=10.0, btc_price0=5.0, debt_repaid_in_cash=np.array([30.0]),
        cash0=7.0, raised_usd=np.zeros((1, T)))
    vm, vh = 1.2 ** (-1 / 12), 1.1 ** (-1 / 12)
    annuity = lambda v: v * (1 - v ** T) / (1 - v)  # noqa: E731
    assert v.pv_mining[0] == pytest.approx(annuity(vm) + 8 * 12 / 1.44)
    assert v.pv_hpc[0] == pytest.approx(2 * annuity(vh) + 18 * 24 / 1.21)
    assert v.treasury_value[0] == 50.0 and v.net_debt[0] == 23.0
    assert v.equity_value[0] == pytest.approx(v.pv_mining[0] + v.pv_hpc[0] + 50 - 23)


def test_terminal_mining_floored_at_zero():
    T = 12
    ebitda = -np.ones((1, T))
    v = valuation.sum_of_parts(
        mining_cash_flow=ebitda, mining_ebitda=ebitda, hpc_cash_flow=np.zeros((1, T)),
        noi_ext=np.zeros((1, T + 12)), mining_rate=0.0, hpc_rate=0.0, mining_multiple=8.0,
        hpc_multiple=18.0, btc_held0=0.0, btc_price0=1.0, debt_repaid_in_cash=np.zeros(1),
        cash0=0.0, raised_usd=np.zeros((1, T)))
    assert v.pv_mining[0] == pytest.approx(-12.0)


def test_free_cash_flow():
    f = valuation.free_cash_flow(*(np.array([x]) for x in (100.0, 5.0, 20.0, 10.0, 30.0, 4.0)))
    assert f[0] == pytest.approx(100 - 5 + 20 - 10 - 30 - 4)
