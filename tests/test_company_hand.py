"""One path, constant market, every figure against arithmetic written out here.

The company: 50 EH/s at 20 J/TH on 1,100 MW contracted; a 200 MW site (1.25 gross/IT ->
160 MW IT) signs in month 6 and energises after a 4-month build (month 10) at $100/kW-month,
escalating 5%/yr, 75% NOI margin, $5M/MW IT capex paid by equity; the fleet is curtailed in
month 5 (hashprice below breakeven); half of production is sold; one $100M 0% convertible
matures in month 18 (conversion $30, capped call to $33). No engine code is called for the
expected numbers.
"""

import dataclasses

import numpy as np
import pytest

from simulator.engine.chain import (CapitalParams, CompanyParams, DebtParams, FleetParams,
                                    MarketPaths, SiteParams, TreasuryParams, ValuationParams,
                                    company_shocks_needed, run_company)

T = 24
PRICE = 100_000.0
M = 1e6


def market(hashprice_month5=23.9):
    ones = np.ones((1, T))
    hashprice = 3.2 * 144 * PRICE / (1080 * 1000) * ones  # 42.67 USD/PH/day
    hashprice[0, 5] = hashprice_month5  # breakeven is 20 x 24 x 50 / 1000 = 24
    return MarketPaths(
        calendar=np.arange("2026-01", "2028-01", dtype="datetime64[M]"),
        days=np.full(T, 30.0), btc_price=PRICE * ones, fees_per_block=0.075 * ones,
        subsidy=3.125 * ones, blocks=4320.0 * ones, network_hashrate=1080.0 * ones,
        hashprice=hashprice, btc_price0=PRICE)


def params(conversion_price=30.0, cap=33.0):
    site = SiteParams(
        name="s1", gross_mw=200.0, gross_to_it=1.25, sign_month=np.array([6]),
        build_months=np.array([4]), lease_rate_usd_per_kw_month=100.0, escalator=0.05,
        term_years=15, noi_margin=0.75, capex_usd_per_mw_it=5 * M)
    return CompanyParams(
        fleet=FleetParams(hashrate_ehs=50.0, j_per_th=20.0, contracted_mw=1100.0,
                          realisation=1.0, power_price_usd_per_mwh=50.0,
                          site_opex_usd_per_mw_month=1000.0, sga_usd_per_month=2 * M),
        treasury=TreasuryParams(btc_held0=1000.0, policy="sell_production", sell_fraction=0.5),
        capital=CapitalParams(cash0_usd=1000 * M, basic_shares=100 * M, debt=(
            DebtParams("cv", "convertible", 100 * M, maturity_month=18,
                       conversion_price=conversion_price, capped_call_cap_price=cap),)),
        valuation=ValuationParams(mining_discount_rate=0.20, hpc_discount_rate=0.10,
                                  mining_multiple=5.0, hpc_multiple=10.0, forward_years=2),
        sites=(site,))


def run(p=None, mk=None):
    p = p or params()
    shocks = {name: np.full((1, cols), 0.5) for name, _, cols in company_shocks_needed(p, T)}
    return run_company(mk or market(), p, shocks)


@pytest.fixture(scope="module")
def out():
    return run()


def test_mining_months(out):
    # Months 0-4: 50/1080 of 4,320 blocks = 200 blocks x 3.2 BTC = 640 BTC.
    assert out.btc_mined[0, 0] == pytest.approx(640.0)
    assert out.mining_revenue[0, 0] == pytest.approx(64 * M)
    assert out.mining_mw[0, 0] == pytest.approx(1000.0)  # 50 EH/s x 20 J/TH
    assert out.power_cost[0, 0] == pytest.approx(1000 * 24 * 30 * 50)  # 36M
    assert out.mining_margin[0, 0] == pytest.approx(28 * M)
    assert out.site_opex[0, 0] == pytest.approx(1 * M)
    assert out.curtailed[0, 4] == 0.0
    # Month 5 is curtailed: no coins, no power, opex still paid.
    assert out.curtailed[0, 5] == 1.0
    assert out.btc_mined[0, 5] == 0.0 and out.power_cost[0, 5] == 0.0
    assert out.site_opex[0, 5] == pytest.approx(1 * M)
    # From month 6 the site's 200 MW leave mining: 900 MW / 20 J/TH = 45 EH/s.
    assert out.company_hashrate[0, 6] == pytest.approx(45.0)
    assert out.btc_mined[0, 6] == pytest.approx(45 / 1080 * 4320 * 3.2)  # 576
    assert out.power_cost[0, 6] == pytest.approx(900 * 24 * 30 * 50)  # 32.4M
    assert out.site_opex[0, 6] == pytest.approx(0.9 * M)


def test_site_months(out):
    assert out.hpc_mw_it[0, 9] == 0.0 and out.hpc_revenue[0, 9] == 0.0
    assert out.hpc_mw_it[0, 10] == pytest.approx(160.0)
    assert out.hpc_revenue[0, 10] == pytest.approx(160 * 1000 * 100)  # 16M
    assert out.hpc_noi[0, 10] == pytest.approx(12 * M)
    assert out.hpc_revenue[0, 21] == pytest.approx(16 * M)
    assert out.hpc_revenue[0, 22] == pytest.approx(16.8 * M)  # first escalation
    assert out.capex[0, 5] == 0.0
    np.testing.assert_allclose(out.capex[0, 6:10], 200 * M)  # 160 x 5M over 4 months
    assert out.capex[0, 10] == 0.0
    assert out.energise_month[0, 0] == 10 and not out.never_signs[0, 0]


def test_cash_and_treasury(out):
    # Cash moves by (BTC sold x price) - power - opex - SG&A + NOI - capex.
    cash = [1000 * M]
    for t in range(T):
        if t < 5:
            flow = 320 * PRICE - 36 * M - 1 * M - 2 * M  # -7M
        elif t == 5:
            flow = -3 * M
        elif t < 10:
            flow = 288 * PRICE - 32.4 * M - 0.9 * M - 2 * M - 200 * M  # -206.5M
        else:
            noi = 12 * M if t < 22 else 12.6 * M
            flow = 288 * PRICE - 32.4 * M - 0.9 * M - 2 * M + noi
        cash.append(cash[-1] + flow)
    np.testing.assert_allclose(out.cash[0], cash[1:], rtol=1e-12)
    assert out.cash[0, 9] == pytest.approx(136 * M)
    # The note converts, so nothing is repaid in month 18.
    assert out.btc_held[0, 0] == pytest.approx(1000 + 320)
    assert out.btc_held[0, 5] == pytest.approx(1000 + 5 * 320)
    assert out.btc_held[0, 11] == pytest.approx(1000 + 5 * 320 + 6 * 288)  # 4,328
    assert out.btc_sold[0, 6] == pytest.approx(288)


def mark_at_18_as_debt():
    # Mark at month 18 with the note repaid: 5 x trailing EBITDA + 10 x forward NOI + BTC
    # + cash - debt, per basic share.
    ebitda = 12 * (576 * PRICE - 32.4 * M - 0.9 * M - 2 * M)  # 267.6M, months 7..18
    noi = 3 * 12 * M + 9 * 12.6 * M  # months 19..30: 149.4M
    btc = (1000 + 5 * 320 + 13 * 288) * PRICE  # 6,344 BTC
    cash = 136 * M + 9 * 5.5 * M - 100 * M  # 85.5M
    return (5 * ebitda + 10 * noi + btc + cash) / (100 * M)  # 35.519


def test_convertible_and_capped_call(out):
    s = mark_at_18_as_debt()
    assert s == pytest.approx(35.519)
    assert out.converted[0, 0]
    n = 100 * M / 30
    net = n * (1 - (33 - 30) / s)  # capped call hands back n (C - K) / S shares
    assert out.diluted_shares[0] == pytest.approx(100 * M + net)
    assert out.shares_outstanding[0, 17] == pytest.approx(100 * M)
    assert out.shares_outstanding[0, 18] == pytest.approx(100 * M + net)


@pytest.mark.parametrize("delta, converts", [(-0.01, True), (0.01, False)])
def test_convertible_threshold(delta, converts):
    out = run(params(conversion_price=mark_at_18_as_debt() + delta, cap=None))
    assert out.converted[0, 0] == converts
    repaid = 0.0 if converts else 100 * M
    assert out.cash[0, 18] - out.cash[0, 17] == pytest.approx(288 * PRICE - 35.3 * M
                                                             + 12 * M - repaid)


def test_value_per_share(out):
    d_m = [1.2 ** (-(t + 1) / 12) for t in range(T)]
    d_h = [1.1 ** (-(t + 1) / 12) for t in range(T)]
    mining = [25 * M] * 5 + [-3 * M] + [576 * PRICE - 32.4 * M - 0.9 * M - 2 * M] * 18
    pv_mining = sum(c * d for c, d in zip(mining, d_m))
    pv_mining += 5 * 12 * mining[-1] * 1.2 ** -2
    hpc = [0.0] * 6 + [-200 * M] * 4 + [12 * M] * 12 + [12.6 * M] * 2
    pv_hpc = sum(c * d for c, d in zip(hpc, d_h))
    pv_hpc += 10 * (10 * 12.6 * M + 2 * 0.75 * 16 * M * 1.05 ** 2) * 1.1 ** -2
    treasury = 1000 * PRICE
    net_debt = 0.0 - 1000 * M  # the note converts
    equity = pv_mining + pv_hpc + treasury - net_debt
    shares = 100 * M + 100 * M / 30 * (1 - 3 / mark_at_18_as_debt())
    assert out.pv_mining[0] == pytest.approx(pv_mining, rel=1e-12)
    assert out.pv_hpc[0] == pytest.approx(pv_hpc, rel=1e-12)
    assert out.treasury_value[0] == pytest.approx(treasury)
    assert out.net_debt[0] == pytest.approx(net_debt)
    assert out.equity_value[0] == pytest.approx(equity, rel=1e-12)
    assert out.value_per_share[0] == pytest.approx(equity / shares, rel=1e-12)
    assert not out.path_failed[0]
    assert out.shares_issued[0] == pytest.approx(shares - 100 * M, rel=1e-12)  # conversion only


def test_forward_value_year_one(out):
    ebitda = 5 * 25 * M - 3 * M + 6 * 22.3 * M  # months 0..11
    noi = 10 * 12 * M + 2 * 12.6 * M  # months 12..23
    btc = 4328 * PRICE
    cash = 147 * M
    debt = 100 * M  # the note is still outstanding at month 11
    expected = (5 * ebitda + 10 * noi + btc + cash - debt) / (100 * M)
    assert out.value_per_share_forward[0, 0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mines, sign, mw", [
    (False, -1, 900.0),   # greenfield, never built: adds nothing; 50 EH/s would need 1,000 MW
    (True, -1, 900.0),    # a mining site that never converts is inside the 900 MW already
    (True, 6, 700.0),     # a mining site converting from month 6 takes its 200 MW away
    (False, 6, 900.0),    # a greenfield site being built takes nothing from mining
])
def test_the_mining_budget_counts_only_energised_mining_sites(mines, sign, mw):
    p = params()
    site = dataclasses.replace(p.sites[0], sign_month=np.array([sign]), mines_until_conversion=mines)
    fleet = dataclasses.replace(p.fleet, contracted_mw=900.0)
    out = run(dataclasses.replace(p, sites=(site,), fleet=fleet))
    assert out.mining_mw[0, 0] == pytest.approx(900.0)
    assert out.mining_mw[0, 12] == pytest.approx(mw)


def test_machines_displaced_by_the_conversion_move_at_a_cost_and_downtime():
    """The site's 200 MW leave mining in month 6: 1,000 of 1,100 MW were installed, so 181.8 MW
    of machines sat on them; 81.8 MW of spare capacity remains, so 81.8 MW move ($25k/MW, one
    month offline) and 100 MW retire (the 900 MW cap, as without relocation)."""
    p = params()
    moving = dataclasses.replace(p, fleet=dataclasses.replace(
        p.fleet, relocation_usd_per_mw=25_000.0, relocation_downtime_months=1))
    base, moved = run(p), run(moving)
    displaced = 200.0 * 1000.0 / 1100.0
    relocated = 900.0 - (1000.0 - displaced)
    assert moved.mining_mw[0, 4] == pytest.approx(1000.0)  # month 5 is curtailed
    assert moved.mining_mw[0, 6] == pytest.approx(900.0 - relocated)
    assert moved.mining_mw[0, 7] == base.mining_mw[0, 7] == pytest.approx(900.0)
    assert moved.capex[0, 6] - base.capex[0, 6] == pytest.approx(relocated * 25_000.0)
    assert moved.btc_mined[0, 6] == pytest.approx(base.btc_mined[0, 6] * (900.0 - relocated) / 900.0)
