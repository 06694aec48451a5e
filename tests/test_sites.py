"""Sites: conversion timing, rent, escalation, default, re-let, renewal, project debt."""

import math

import numpy as np
import pytest

from simulator.engine import sites
from simulator.engine.valuation import discount_factors


def site(months=36, n=1, sign=2, build=3, u_default=None, u_renewal=None, **kw):
    base = dict(gross_mw=130.0, gross_to_it=1.3, lease_rate_usd_per_kw_month=150.0,
                escalator=0.0, term_years=10, noi_margin=0.8, capex_usd_per_mw_it=10e6)
    base.update(kw)
    return sites.site_paths(
        sign_month=np.full(n, sign), build_months=np.full(n, build),
        u_default=np.ones((n, months)) if u_default is None else u_default,
        u_renewal=np.ones((n, months)) if u_renewal is None else u_renewal, **base)


def test_mw_leave_mining_at_build_start_and_rent_starts_at_energisation():
    r = site(sign=2, build=3)
    np.testing.assert_array_equal(r.off_mw[0, :4], [0, 0, 130, 130])
    np.testing.assert_array_equal(r.hpc_mw_it[0, :6], [0, 0, 0, 0, 0, 100])
    np.testing.assert_array_equal(r.rent[0, :5], 0.0)
    assert r.rent[0, 5] == pytest.approx(100 * 1000 * 150)  # 15M
    assert r.noi[0, 5] == pytest.approx(0.8 * 15e6)
    np.testing.assert_allclose(r.capex[0, 2:5], 100 * 10e6 / 3)
    assert r.capex[0, [0, 1, 5]].sum() == 0.0
    assert r.energise_month[0] == 5


def test_never_signs_keeps_mining():
    r = site(sign=-1)
    assert not r.off_mw.any() and not r.rent.any() and not r.capex.any()
    assert r.energise_month[0] == -1 and (r.state == sites.MINING).all()


def test_tranches():
    r = site(sign=0, tranches=((0.25, 2), (0.75, 4)))
    np.testing.assert_allclose(r.hpc_mw_it[0, :6], [0, 0, 25, 25, 100, 100])
    np.testing.assert_allclose(r.capex[0, :4], [25e7 / 2 + 75e7 / 4] * 2 + [75e7 / 4] * 2)
    assert r.energise_month[0] == 2 and r.build_end_month[0] == 4


def test_tranches_out_of_order_and_down_while_part_energised():
    # The later-listed tranche lands first; a default in month 3 leaves 75% energised, held.
    u = np.ones((1, 8))
    u[0, 3] = 0.0
    r = site(months=8, sign=0, tranches=((0.25, 4), (0.75, 2)), default_hazard_monthly=0.01,
             downtime_months=2, relet_rate_usd_per_kw_month=120.0, u_default=u)
    np.testing.assert_allclose(r.hpc_mw_it[0], [0, 0, 75, 75, 100, 100, 100, 100])
    np.testing.assert_allclose(r.rent[0], [0, 0, 0.75 * 15e6, 0, 0, 12e6, 12e6, 12e6])
    np.testing.assert_array_equal(r.off_mw[0], 130.0)
    np.testing.assert_allclose(r.capex[0, :4], [75e7 / 2 + 25e7 / 4] * 2 + [25e7 / 4] * 2)
    assert r.energise_month[0] == 2 and r.build_end_month[0] == 4


def test_lease_pv_equals_escalating_annuity():
    # Lease starts in month 1, runs 10 years and is not renewed; month t is discounted by
    # exp(-r (t+1)/12), i.e. v = e^-r a year. Closed form: R v^(2/12) x sum_y ((1+g) v)^y x
    # sum_j v^(j/12).
    r_ann, g, years = 0.10, 0.03, 10
    out = site(months=132, sign=0, build=1, escalator=g, term_years=years)
    pv = (out.rent * discount_factors(r_ann, 132)).sum()
    v = math.exp(-r_ann)
    rent = 100 * 1000 * 150.0
    q = (1 + g) * v
    closed = rent * v ** (2 / 12) * (1 - q ** years) / (1 - q) * (1 - v) / (1 - v ** (1 / 12))
    assert pv == pytest.approx(closed, rel=1e-12)
    assert out.rent[0, 120] > 0 and out.rent[0, 121] == 0  # term end, no renewal
    assert out.off_mw[0, 121] == 0  # reverted to mining


def test_renewal_continues_escalation():
    u_ren = np.zeros((1, 40))  # always renews
    out = site(months=40, sign=0, build=1, escalator=0.1, term_years=1, renewal_probability=0.5,
               u_renewal=u_ren)
    assert out.rent[0, 13] == pytest.approx(15e6 * 1.1)
    assert out.rent[0, 25] == pytest.approx(15e6 * 1.21)


def test_default_downtime_then_relet():
    u = np.ones((1, 30))
    u[0, 8] = 0.0  # default in month 8
    out = site(months=30, sign=0, build=2, default_hazard_monthly=0.01, downtime_months=3,
               relet_rate_usd_per_kw_month=120.0, escalator=0.1, u_default=u)
    assert out.rent[0, 7] == pytest.approx(15e6)
    np.testing.assert_array_equal(out.rent[0, 8:11], 0.0)
    assert out.hpc_mw_it[0, 9] == 100.0 and out.off_mw[0, 9] == 130.0
    assert out.rent[0, 11] == pytest.approx(12e6)  # re-let, escalation restarts
    assert out.rent[0, 23] == pytest.approx(12e6 * 1.1)


def test_default_then_revert_to_mining():
    u = np.ones((1, 20))
    u[0, 8] = 0.0
    out = site(months=20, sign=0, build=2, default_hazard_monthly=0.01, downtime_months=2,
               u_default=u)
    np.testing.assert_array_equal(out.off_mw[0, 8:12], [130, 130, 0, 0])
    assert not out.rent[0, 8:].any() and not out.hpc_mw_it[0, 10:].any()


def test_default_hazard_frequency():
    # With uniform shocks, the share of paths defaulting in the first leased month is h.
    rng = np.random.default_rng(5)
    n, h = 20_000, 0.05
    out = site(months=4, n=n, sign=0, build=1, default_hazard_monthly=h, downtime_months=5,
               u_default=rng.random((n, 4)))
    share = (out.rent[:, 1] == 0).mean()
    se = np.sqrt(h * (1 - h) / n)
    assert abs(share - h) < 4 * se


def test_project_debt_hand_numbers():
    # 1,200 capex over months 0-1, 75% drawn; 12% a year = 1% a month on the opening
    # balance; straight-line over 1 year (12 months) from month 2.
    capex = np.array([[600.0, 600.0, 0, 0, 0]])
    draws, interest, principal, balance = sites.project_debt(
        capex, np.array([2]), loan_to_cost=0.75, rate=0.12, amortisation_years=1.0)
    np.testing.assert_allclose(draws[0], [450, 450, 0, 0, 0])
    np.testing.assert_allclose(interest[0], [0, 4.5, 9.0, 9.0 - 0.75, 9.0 - 1.5])
    np.testing.assert_allclose(principal[0], [0, 0, 75, 75, 75])
    np.testing.assert_allclose(balance[0], [450, 900, 825, 750, 675])


def test_project_debt_last_payment_clears_the_balance():
    # 1,000 drawn in month 0; 2.5 monthly payments of 400 from month 1: 400, 400, then the
    # 200 left, and nothing after. Interest is 1% a month on the opening balance.
    capex = np.array([[1000.0, 0, 0, 0, 0, 0]])
    _, interest, principal, balance = sites.project_debt(
        capex, np.array([1]), loan_to_cost=1.0, rate=0.12, amortisation_years=2.5 / 12)
    np.testing.assert_allclose(principal[0], [0, 400, 400, 200, 0, 0])
    np.testing.assert_allclose(balance[0], [1000, 600, 200, 0, 0, 0])
    np.testing.assert_allclose(interest[0], [0, 10, 6, 2, 0, 0])


def test_never_sign_site_mines_throughout_in_company():
    from simulator.engine.chain import (CapitalParams, CompanyParams, FleetParams, MarketPaths,
                                        SiteParams, TreasuryParams, company_shocks_needed,
                                        run_company)
    T, ones = 12, np.ones((2, 12))
    mk = MarketPaths(np.arange("2026-01", "2027-01", dtype="datetime64[M]"), np.full(T, 30.0),
                     1e5 * ones, 0.03 * ones, 3.125 * ones, 4320 * ones, 1000 * ones,
                     40 * ones, 1e5)
    s = SiteParams("a", 200.0, 1.25, np.array([-1, 3]), np.array([4, 4]), 150.0)
    p = CompanyParams(FleetParams(50.0, 20.0, 1000.0, 1.0, 50.0), TreasuryParams(0.0),
                      CapitalParams(1e12, 1e6), sites=(s,))
    need = company_shocks_needed(p, T)
    assert need == [("tenant_default_a", "uniform", 24), ("renewal_a", "uniform", 24)]
    out = run_company(mk, p, {k: np.ones((2, c)) for k, _, c in need}, None)
    np.testing.assert_allclose(out.company_hashrate[0], 50.0)  # never signs
    np.testing.assert_allclose(out.company_hashrate[1], [50.0] * 3 + [40.0] * 9)
    assert out.never_signs[:, 0].tolist() == [True, False]
    assert out.energise_month[:, 0].tolist() == [-1, 7]
    assert not out.hpc_revenue[0].any() and out.hpc_revenue[1, 7] > 0
