"""Mothball, restart and sale of the mining footprint (issue 16, item 3): hand calculations
where nothing is random, and flexibility never worth less than the fixed rule, scenario by
scenario, on common random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.analysis.options import mothball_option, with_mothball
from simulator.engine.chain import (CapitalParams, CompanyParams, FleetParams, MarketPaths,
                                    TreasuryParams, ValuationParams, company_shocks_needed,
                                    run_company)
from simulator.engine.params import MothballParams
from simulator.scenario import load_scenario

T, PRICE, M, R = 24, 100_000.0, 1e6, 0.05
EARNING = 3.2 * 144 * PRICE / (1080 * 1000)  # 42.67 USD/PH/day; breakeven 20 x 24 x 50 / 1000 = 24


def market(hashprice):
    ones = np.ones((1, T))
    return MarketPaths(
        calendar=np.arange("2026-01", "2028-01", dtype="datetime64[M]"), days=np.full(T, 30.0),
        btc_price=PRICE * ones, fees_per_block=0.075 * ones, subsidy=3.125 * ones,
        blocks=4320.0 * ones, network_hashrate=1080.0 * ones,
        hashprice=np.asarray(hashprice, float).reshape(1, T), btc_price0=PRICE)


def run(hashprice, mothball):
    """50 EH/s at 20 J/TH on 1,100 MW (1,000 MW allocated), $50/MWh, site opex $1,000/MW-month;
    no sites, no debt, no SG&A, no tax; r 5%, mining flat after the horizon (no halvings)."""
    p = CompanyParams(
        fleet=FleetParams(hashrate_ehs=50.0, j_per_th=20.0, contracted_mw=1100.0, realisation=1.0,
                          power_price_usd_per_mwh=50.0, site_opex_usd_per_mw_month=1000.0,
                          mothball=mothball),
        treasury=TreasuryParams(btc_held0=0.0), capital=CapitalParams(cash0_usd=1000 * M, basic_shares=100 * M),
        valuation=ValuationParams(risk_free_rate=R, terminal_growth_mining=0.0, forward_years=2))
    shocks = {name: np.full((1, cols), 0.5) for name, _, cols in company_shocks_needed(p, T)}
    return run_company(market(hashprice), p, shocks, None)


DISCOUNT = [math.exp(-R * (t + 1) / 12) for t in range(T)]


def test_a_footprint_that_loses_money_every_month_is_sold_at_the_first_month_end():
    """Hashprice $20 for ever: every month curtailed, paying $1M of site opex. Selling the
    1,100 MW at $0.1M/MW ($110M) at the end of month 0 beats mothballing (upkeep for ever)
    and running; nothing is owed after."""
    out = run(np.full(T, 20.0), MothballParams(200.0, 5000.0, 100_000.0))
    assert out.site_opex[0, 0] == pytest.approx(1 * M) and not out.site_opex[0, 1:].any()
    assert out.free_cash_flow[0, 0] == pytest.approx(-1 * M + 110 * M)
    assert out.pv_mining[0] == pytest.approx((-1 * M + 110 * M) * DISCOUNT[0], rel=1e-12)


def test_a_footprint_losing_money_for_a_year_is_mothballed_in_month_1_and_restarted():
    """Hashprice $20 in months 0-11 (curtailed: -$1M a month of site opex), $42.67 from month
    12 (+$27M a month: 640 BTC x $100k - $36M power - $1M opex). Mothballing at the end of
    month 0 costs $200/MW-month ($0.2M a month) instead of $1M; restarting at the end of month
    11 costs $5,000/MW ($5M), so the mine runs again in month 12. After the horizon it runs
    150 years on the last year's $324M. The fixed rule lets it go for nothing at month 11."""
    hp = np.where(np.arange(T) < 12, 20.0, EARNING)
    out = run(hp, MothballParams(200.0, 5000.0, 0.0))
    np.testing.assert_allclose(out.site_opex[0] / M, [1.0] + [0.2] * 10 + [5.2] + [1.0] * 12)
    assert not out.btc_mined[0, :12].any() and out.btc_mined[0, 12] == pytest.approx(640.0)
    flows = [-1 * M] + [-0.2 * M] * 10 + [-5.2 * M] + [27 * M] * 12
    after = 324 * M * sum(math.exp(-R * y) for y in range(1, 151))
    hand = sum(f * d for f, d in zip(flows, DISCOUNT)) + after * DISCOUNT[-1]
    assert out.pv_mining[0] == pytest.approx(hand, rel=1e-12)
    fixed = run(hp, None)
    assert not fixed.site_opex[0, 12:].any()  # let go at the first year-end
    assert fixed.pv_mining[0] < 0 < out.pv_mining[0]


def test_decision_fixed_is_the_fixed_rule():
    sc = load_scenario("base")
    assert sc.company.power.mothball is None
    fixed = with_mothball(sc, "fixed")
    assert fixed.company.power.mothball.decision == "fixed"
    assert with_mothball(sc, "lsmc").company.power.mothball.land_usd_m_per_mw == 0.32


def _small(name):
    """The scenario with its mark (and the mothball policy) fitted on 1,024 paths: keeps the
    file near a minute; the policy is still fitted on paths other than the run's."""
    sc = load_scenario(name)
    data = sc.model_dump(mode="python", by_alias=True)
    data["valuation"]["marks"]["fit_paths"] = 1024
    return type(sc).model_validate(data)


@pytest.mark.parametrize("name", ["base", "bull", "bear", "no-pivot"])
def test_mothballing_is_worth_at_least_the_fixed_rule(name):
    opt = mothball_option(_small(name), paths=1024, seed=11)
    print(f"{name}: mothball/sell worth {opt['value']:.4f} +- {opt['se']:.4f} USD/share "
          f"(with {opt['with'][0]:.3f}, without {opt['without'][0]:.3f}); sold by year "
          f"{[round(x, 2) for x in opt['sold_share_by_year']]}")
    assert opt["value"] > -3 * opt["se"], opt
    assert opt["se"] > 0 and np.isfinite(opt["value"])
    assert len(opt["sold_share_by_year"]) == 10
    assert all(0 <= x <= 1 for x in opt["mothballed_share_by_year"])
    assert opt["sold_share_by_year"] == sorted(opt["sold_share_by_year"])  # a sale is for good
