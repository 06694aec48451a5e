"""Conversion as a decision (issue 16, item 1): tenant offers accepted or let lapse by least
squares. Hand calculations where nothing is random; flexibility never worth less than signing
the first offer, scenario by scenario, on common random numbers; the decision does not depend on
the chunking."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulator.analysis.options import conversion_option, with_conversion
from simulator.engine import conversion, sites
from simulator.engine.chain import (
    CapitalParams,
    CompanyParams,
    FleetParams,
    MarketPaths,
    SiteParams,
    TreasuryParams,
    ValuationParams,
    company_shocks_needed,
    run_company,
)
from simulator.run import simulate
from simulator.scenario import load_scenario

T, PRICE, M, R, SPREAD = 24, 100_000.0, 1e6, 0.05, 0.03
EARNING = 3.2 * 144 * PRICE / (1080 * 1000)  # 42.67 USD/PH/day; breakeven 20 x 24 x 50 / 1000 = 24


def market(price=PRICE, index=None):
    ones = np.ones((1, T))
    return MarketPaths(
        calendar=np.arange("2026-01", "2028-01", dtype="datetime64[M]"), days=np.full(T, 30.0),
        btc_price=price * ones, fees_per_block=0.075 * ones, subsidy=3.125 * ones,
        blocks=4320.0 * ones, network_hashrate=1080.0 * ones,
        hashprice=3.2 * 144 * price / (1080 * 1000) * ones, btc_price0=price,
        ai_lease_index=None if index is None else np.asarray(index, float).reshape(1, T))


def site(decision="lsmc", capex_m=10.0, first_offer=0, reoffer=0.0):
    """100 MW gross of the footprint, 80 MW IT, $150/kW-month at a 100% margin, no escalator,
    built in 4 months at $10M/MW IT (equity), no default; the first offer at month 0."""
    return SiteParams(
        "a", 100.0, 1.25, np.array([first_offer]), np.array([4]), 150.0, escalator=0.0,
        noi_margin=1.0, capex_usd_per_mw_it=capex_m * M, decision=decision,
        reoffer_probability_monthly=reoffer, u_offer=np.full((1, T), 0.5))


def run(s, price=PRICE, index=None):
    """50 EH/s at 20 J/TH on exactly 1,000 MW (no spare: the site's 100 MW stop mining),
    $50/MWh, site opex $1,000/MW-month; no debt, SG&A or tax; r 5%, tenant spread 3%, mining
    flat after the horizon."""
    p = CompanyParams(
        fleet=FleetParams(hashrate_ehs=50.0, j_per_th=20.0, contracted_mw=1000.0, realisation=1.0,
                          power_price_usd_per_mwh=50.0, site_opex_usd_per_mw_month=1000.0),
        treasury=TreasuryParams(btc_held0=0.0), capital=CapitalParams(cash0_usd=1000 * M, basic_shares=100 * M),
        valuation=ValuationParams(risk_free_rate=R, tenant_credit_spread=SPREAD, terminal_growth_mining=0.0,
                                  forward_years=2),
        sites=(s,))
    shocks = {name: np.full((1, cols), 0.5) for name, _, cols in company_shocks_needed(p, T)}
    return run_company(market(price, index), p, shocks, None)


D = math.exp(-(R + SPREAD) / 12)
NOI = 80_000 * 150.0  # 80 MW IT x 1,000 kW x $150 [USD/month]
# Signing at the start of month 0: rent from month 4 for ever, fit-out $200M in months 0-3.
PACKAGE = NOI * sum(D ** (m + 1) for m in range(4, 12_000)) - 200 * M * sum(D ** (m + 1) for m in range(4))


def test_the_lease_package_is_the_hand_sum():
    fractions, offsets = sites.tranche_schedule(np.zeros(1, np.int64), np.array([4]), (), 1)
    noi, capex = conversion.lease_package(gross_mw=100.0, gross_to_it=1.25, noi_margin=1.0, escalator=0.0,
                                          fractions=fractions, offsets=offsets,
                                          capex_usd_per_mw_it=10 * M, rate=R + SPREAD)
    assert noi[0] * 150.0 - capex[0] == pytest.approx(PACKAGE, rel=1e-9)
    assert PACKAGE == pytest.approx(960.4 * M, rel=1e-3)
    # Two tranches, the second a year later, and a 3% escalator from the first energisation.
    fr, off = [np.array([0.5]), np.array([0.5])], [np.array([4]), np.array([16])]
    noi, capex = conversion.lease_package(gross_mw=100.0, gross_to_it=1.25, noi_margin=1.0, escalator=0.03,
                                          fractions=fr, offsets=off, capex_usd_per_mw_it=10 * M,
                                          rate=R + SPREAD)
    rent = sum(D ** (m + 1) * 1.03 ** ((m - 4) // 12) * (0.5 + 0.5 * (m >= 16)) for m in range(4, 12_000))
    assert noi[0] == pytest.approx(80_000 * rent, rel=1e-9)
    cap = 400 * M * (sum(D ** (m + 1) for m in range(4)) / 4 + sum(D ** (m + 1) for m in range(16)) / 16)
    assert capex[0] == pytest.approx(cap, rel=1e-12)


def test_a_certain_profitable_offer_is_signed_at_once():
    """The offer is worth $960M net of fit-out; the 100 MW mine $2.7M a month (100 MW x
    ($64M revenue - $36M power - $1M opex) / 1,000 MW), about $650M for ever at 5%: signed at
    the first offer, month 0, and the run is the fixed rule's signing then, bit for bit."""
    mining = 100 * (50_000 * EARNING * 30 - 1000 * 720 * 50 - 1000 * 1000) / 1000
    assert mining == pytest.approx(2.7 * M, rel=1e-3)
    assert mining * 12 / math.expm1(R) < PACKAGE
    out = run(site())
    assert out.sign_month[0, 0] == 0 and out.offer_month[0, 0] == 0
    fixed = run(site("fixed"))
    np.testing.assert_array_equal(out.value_per_share, fixed.value_per_share)
    np.testing.assert_array_equal(out.hpc_revenue, fixed.hpc_revenue)
    assert out.hpc_revenue[0, 4] == pytest.approx(NOI) and not out.hpc_revenue[0, :4].any()
    later = run(site("fixed", first_offer=6))
    assert later.value_per_share[0] < out.value_per_share[0]


def test_an_unprofitable_offer_is_never_signed():
    """At $30M/MW IT the fit-out ($2.36B) outweighs the rent ($1.75B): every monthly offer
    lapses, the site mines throughout, as if it never signed."""
    out = run(site(capex_m=30.0, reoffer=1.0))
    assert out.sign_month[0, 0] == -1 and not out.hpc_revenue.any() and not out.capex.any()
    never = run(dataclasses.replace(site("fixed"), sign_month=np.array([-1])))
    np.testing.assert_array_equal(out.value_per_share, never.value_per_share)
    assert run(site("fixed", capex_m=30.0)).value_per_share[0] < out.value_per_share[0]


def test_mining_worth_more_than_the_lease_keeps_the_site_mining():
    """BTC at $300k (hashprice $128): the 100 MW earn $15.5M a month (100 x ($192M - $36M -
    $1M) / 1,000), about $3.7B for ever at 5%, more than the $960M lease: every offer lapses."""
    out = run(site(reoffer=1.0), price=300_000.0)
    assert out.sign_month[0, 0] == -1 and out.company_hashrate[0, -1] == pytest.approx(50.0)
    assert run(site("fixed"), price=300_000.0).value_per_share[0] < out.value_per_share[0]


def test_a_site_following_the_index_leases_at_the_index_of_its_signing_month():
    """Index 1.2 at the end of month 1: a tenant signing in month 2 pays $180/kW-month; one
    signing today pays today's $150 (the index is 1 at the valuation date)."""
    index = np.full(T, 1.2)
    later = run(dataclasses.replace(site("fixed", first_offer=2), follows_index=True), index=index)
    assert later.hpc_revenue[0, 6] == pytest.approx(1.2 * NOI)
    now = run(dataclasses.replace(site(), follows_index=True), index=index)
    assert now.sign_month[0, 0] == 0 and now.hpc_revenue[0, 4] == pytest.approx(NOI)


def test_offers_come_first_at_the_lottery_month_then_at_the_reoffer_rate():
    u = np.array([[0.5, 0.05, 0.5, 0.05], [0.05] * 4, [0.05] * 4])
    offer, offered = conversion.offer_months(np.array([1, -1, 3]), u, 0.1)
    assert offer.tolist() == [[False, True, False, True, False], [False] * 5,
                              [False, False, False, True, False]]
    assert offered.tolist() == [[0, 1, 1, 1, 1], [0] * 5, [0, 0, 0, 1, 1]]


def _small(name, paths=1024):
    sc = load_scenario(name)
    data = sc.model_dump(mode="python", by_alias=True)
    data["valuation"]["marks"]["fit_paths"] = paths
    return type(sc).model_validate(data)


def test_decision_defaults_to_the_fixed_rule():
    sc = load_scenario("base")
    assert all(s.conversion.decision == "fixed" for s in sc.sites if s.conversion is not None)
    assert all(s.conversion.decision == "lsmc" for s in with_conversion(sc, "lsmc").sites)


@pytest.mark.parametrize("name", ["base", "bull", "bear", "no-pivot", "flex"])
def test_deciding_conversions_is_worth_at_least_the_fixed_rule(name):
    opt = conversion_option(_small(name), paths=512, seed=11)
    print(f"{name}: conversion decision worth {opt['value']:.4f} +- {opt['se']:.4f} USD/share "
          f"(with {opt['with'][0]:.3f}, without {opt['without'][0]:.3f}); declined by year "
          f"{opt['declined_share_by_year']}")
    assert opt["value"] > -3 * opt["se"] - 1e-12, opt
    assert np.isfinite(opt["value"]) and opt["paths"] == 512
    for shares in opt["signed_share_by_year"].values():
        assert len(shares) == 10 and shares == sorted(shares)  # a signing is for good


def test_the_decision_does_not_depend_on_the_chunking():
    sc = with_conversion(_small("base", 512), "lsmc")
    one = simulate(sc, paths=600, seed=5, chunk_paths=600, store_paths=0)
    three = simulate(sc, paths=600, seed=5, chunk_paths=200, store_paths=0)
    np.testing.assert_array_equal(one["value_per_share"].values, three["value_per_share"].values)
    np.testing.assert_array_equal(one["sign_month"].values, three["sign_month"].values)
