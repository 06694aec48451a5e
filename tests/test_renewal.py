"""Fleet renewal: the fixed rule as retire-and-replace deployments, against hand arithmetic;
and renewal as a decision (issue 16, item 5): hand calculations where nothing is random,
flexibility never worth less than the fixed rule scenario by scenario, and chunk invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import assert_same_data, short_scenario

from simulator.analysis.options import renewal_option, with_renewal
from simulator.engine import fleet
from simulator.engine.chain import (CapitalParams, CompanyParams, FleetParams, MarketPaths,
                                    TreasuryParams, ValuationParams, company_shocks_needed,
                                    run_company)
from simulator.engine.params import RenewalParams
from simulator.engine.renewal import aged_fleet, by_year, renewal_deployments
from simulator.run import scenario_mark, simulate
from simulator.scenario import load_scenario


def _plan(months=36):
    cohorts = aged_fleet(50.0, 16.0, 5)
    deps = renewal_deployments(cohorts, months=months, life_years=5, frontier_j_per_th=12.0,
                               frontier_improvement_per_year=0.10, capex_usd_per_th=10.0,
                               capex_change_per_year=-0.5)
    return deps, fleet.planned_fleet(50.0, 16.0, deps, months)


def test_an_evenly_aged_fleet_retires_a_fifth_a_year():
    assert [m for m, *_ in aged_fleet(50.0, 16.0, 5)] == [-48, -36, -24, -12, 0]
    deps, _ = _plan(36)
    months = [m for m, *_ in deps]
    assert months == [12, 12, 24, 24]  # month 36 is past a 36-month grid


def test_hashrate_is_kept_and_efficiency_and_capex_follow_the_frontier():
    _, (planned, j, capex) = _plan(36)
    np.testing.assert_allclose(planned, 50.0)
    # Month 12: 10 EH/s at 16 J/TH replaced by 10 EH/s at 12 x 0.9 = 10.8 J/TH.
    assert j[0, 11] == pytest.approx(16.0)
    assert j[0, 12] == pytest.approx((40 * 16.0 + 10 * 10.8) / 50)
    # Month 24: another 10 EH/s at 12 x 0.81 = 9.72 J/TH.
    assert j[0, 24] == pytest.approx((30 * 16.0 + 10 * 10.8 + 10 * 9.72) / 50)
    # Capex: 10 EH/s = 1e7 TH at 10 x 0.5 = $5/TH in month 12, and 10 x 0.25 in month 24.
    assert capex[0, 12] == pytest.approx(1e7 * 5.0)
    assert capex[0, 24] == pytest.approx(1e7 * 2.5)
    assert capex.sum() == pytest.approx(1e7 * 7.5)


def test_replacements_retire_in_turn():
    cohorts = [(0, 10.0, 20.0)]
    deps = renewal_deployments(cohorts, months=60, life_years=2, frontier_j_per_th=10.0,
                               frontier_improvement_per_year=0.0, capex_usd_per_th=1.0)
    assert [(m, float(h), float(j)) for m, h, j, _ in deps] == [
        (24, -10.0, 20.0), (24, 10.0, 10.0), (48, -10.0, 10.0), (48, 10.0, 10.0)]


# ------------------------------------------------------------------ renewal as a decision

T, PRICE, M, R = 24, 100_000.0, 1e6, 0.05
DISCOUNT = [math.exp(-R * (t + 1) / 12) for t in range(T)]
AFTER = sum(math.exp(-R * y) for y in range(1, 151))  # 150 years flat after the horizon


def _decide(capex_usd_per_th):
    """50 EH/s at 20 J/TH, aged evenly over a 10-year life (5 EH/s retiring each year-end);
    the frontier machine at 12.5 J/TH today improving 20% a year (10 J/TH landing at month 12),
    its price ``capex_usd_per_th`` today halving in a year; $50/MWh, site opex $1,000/MW-month, 30-day months;
    hashprice $42.67 for ever (3.2 BTC x 144 x $100k / 1,080 EH/s / 1,000), no halving; no
    sites, debt, SG&A or tax; r 5%. A month of 1 EH/s mines 4,320 x 3.2 / 1,080 = 12.8 BTC,
    $1.28M: at 20 J/TH it pays 20 MW x 720 h x $50 = $0.72M of power and $0.02M of site
    opex (margin $0.54M), at 10 J/TH $0.36M and $0.01M (margin $0.91M)."""
    ones = np.ones((1, T))
    mp = MarketPaths(
        calendar=np.arange("2026-01", "2028-01", dtype="datetime64[M]"), days=np.full(T, 30.0),
        btc_price=PRICE * ones, fees_per_block=0.075 * ones, subsidy=3.125 * ones,
        blocks=4320.0 * ones, network_hashrate=1080.0 * ones,
        hashprice=np.full((1, T), 3.2 * 144 * PRICE / (1080 * 1000)), btc_price0=PRICE)
    p = CompanyParams(
        fleet=FleetParams(hashrate_ehs=50.0, j_per_th=20.0, contracted_mw=1100.0, realisation=1.0,
                          power_price_usd_per_mwh=50.0, site_opex_usd_per_mw_month=1000.0,
                          renewal=RenewalParams(life_years=10, frontier_j_per_th=12.5,
                                                frontier_improvement_per_year=0.2,
                                                capex_usd_per_th=capex_usd_per_th,
                                                capex_change_per_year=-0.5)),
        treasury=TreasuryParams(btc_held0=0.0), capital=CapitalParams(cash0_usd=1000 * M, basic_shares=100 * M),
        valuation=ValuationParams(risk_free_rate=R, terminal_growth_mining=0.0, forward_years=2))
    shocks = {name: np.full((1, cols), 0.5) for name, _, cols in company_shocks_needed(p, T)}
    return run_company(mp, p, shocks, None)


def test_a_fleet_whose_replacement_pays_is_replaced_at_the_first_year_end():
    """At $2/TH today, $1 in a year, the frontier machine earns $0.37M a month more per EH/s
    than the old one and costs $1M: every cohort, nine years from the end of its life as well
    as the one retiring, is replaced at the end of month 11. Month 12 pays 50 EH/s x 1e6 TH/EH
    x $1 = $50M and the fleet runs at 12.5 x 0.8 = 10 J/TH (500 MW) from then on."""
    out = _decide(2.0)
    np.testing.assert_allclose(out.capex[0] / M, [0.0] * 12 + [50.0] + [0.0] * 11)
    j = out.mining_mw[0] / out.company_hashrate[0]
    np.testing.assert_allclose(j, [20.0] * 12 + [10.0] * 12)
    np.testing.assert_allclose(out.company_hashrate[0], 50.0)
    assert out.power_cost[0, 12] == pytest.approx(500 * 720 * 50.0)
    flows = [50 * 0.54 * M] * 12 + [50 * 0.91 * M - 50 * M] + [50 * 0.91 * M] * 11
    hand = sum(f * d for f, d in zip(flows, DISCOUNT)) + 12 * 50 * 0.91 * M * AFTER * DISCOUNT[-1]
    assert out.pv_mining[0] == pytest.approx(hand, rel=1e-12)


def test_a_fleet_whose_replacement_does_not_pay_is_kept():
    """At $1,000/TH in a year ($1B per EH/s) no machine is worth buying: the cohorts keep their 20 J/TH
    machines, and the one whose life ends at month 12 retires without a replacement (45 EH/s
    after). Nothing is paid for machines."""
    out = _decide(2000.0)
    assert not out.capex.any()
    np.testing.assert_allclose(out.company_hashrate[0], [50.0] * 12 + [45.0] * 12)
    np.testing.assert_allclose(out.mining_mw[0] / out.company_hashrate[0], 20.0)
    flows = [50 * 0.54 * M] * 12 + [45 * 0.54 * M] * 12
    hand = sum(f * d for f, d in zip(flows, DISCOUNT)) + 12 * 45 * 0.54 * M * AFTER * DISCOUNT[-1]
    assert out.pv_mining[0] == pytest.approx(hand, rel=1e-12)


def test_a_year_of_flows_is_valued_at_its_last_month_end():
    r = np.array([0.06])
    flows = np.arange(1.0, 19.0)[None, :]  # 18 months: a whole year and half of one
    got = by_year(flows, r)
    first = sum(f * math.exp(0.06 * (11 - m) / 12) for m, f in enumerate(range(1, 13)))
    second = sum(f * math.exp(0.06 * (11 - m) / 12) for m, f in enumerate(range(13, 19)))
    np.testing.assert_allclose(got, [[first, second]], rtol=1e-14)


def _small(name):
    """The scenario with its mark and the renewal policies fitted on 1,024 paths, still paths
    other than the run's. Not fewer: on 512 the mark (a quadratic in 12 state variables fitted
    on 256 of them) is poor enough that a path raising equity for a renewal's capex can be
    marked at nothing and default (two of 512 in bull, -$0.09 +- 0.08 a share)."""
    sc = load_scenario(name)
    data = sc.model_dump(mode="python", by_alias=True)
    data["valuation"]["marks"]["fit_paths"] = 1024
    return type(sc).model_validate(data)


def test_decision_fixed_is_the_default_and_keeps_the_rule():
    sc = load_scenario("base")
    assert sc.company.fleet.renewal is None  # no shipped scenario renews: their numbers stand
    fixed = with_renewal(sc, "fixed")
    assert type(fixed.company.fleet.renewal)().decision == "fixed"  # a block without the key
    assert fixed.company.fleet.renewal.decision == "fixed"
    assert fixed.company.fleet.renewal.machine_life_years == 5
    assert with_renewal(sc, "lsmc").company.fleet.renewal.decision == "lsmc"


@pytest.mark.parametrize("name", ["base", "bull", "bear"])
def test_renewing_by_least_squares_is_worth_at_least_the_fixed_rule(name):
    opt = renewal_option(_small(name), paths=512, seed=11)
    print(f"{name}: renewal worth {opt['value']:.4f} +- {opt['se']:.4f} USD/share "
          f"(with {opt['with'][0]:.3f}, without {opt['without'][0]:.3f}); renewing by year "
          f"{[round(x, 2) for x in opt['renewing_share_by_year']]}, boundary hashprice "
          f"{[None if b is None else round(b, 1) for b in opt['boundary_hashprice_by_year']]}")
    assert opt["value"] > -3 * opt["se"], opt
    assert opt["se"] > 0 and np.isfinite(opt["value"])
    assert len(opt["renewing_share_by_year"]) == 10
    assert all(0 <= x <= 1 for x in opt["renewing_share_by_year"])
    assert opt["renewing_share_by_year"][-1] == 0  # no decision at the horizon
    assert 0 < sum(opt["renewing_share_by_year"]) and all(x >= 0 for x in opt["renewed_ehs_by_year"])


def test_renewal_decisions_do_not_depend_on_the_chunking():
    scenario = with_renewal(short_scenario(36), "lsmc")
    data = scenario.model_dump(mode="python", by_alias=True)
    data["valuation"]["marks"]["fit_paths"] = 512
    scenario = type(scenario).model_validate(data)
    mark = scenario_mark(scenario, seed=5)
    assert sum(mark.renewed["renewing_share"]) > 0  # some paths renew: the test can see them
    whole = simulate(scenario, paths=1100, seed=5, chunk_paths=1100, processes=1, mark=mark)
    split = simulate(scenario, paths=1100, seed=5, chunk_paths=1024, processes=1, mark=mark)
    assert_same_data(whole, split)
