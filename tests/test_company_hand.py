"""One path, constant market, every figure against arithmetic written out here.

The company: 50 EH/s at 20 J/TH on 1,100 MW contracted; a 200 MW site (1.25 gross/IT ->
160 MW IT) signs in month 6 and energises after a 4-month build (month 10) at $100/kW-month,
escalating 5%/yr, 75% NOI margin, $5M/MW IT capex paid by equity; the fleet is curtailed in
month 5 (hashprice below breakeven); half of production is sold; one $100M 0% convertible
matures in month 18 (conversion $30, capped call to $33). Rates are continuously compounded:
r = 5% (cash earns it), the tenant spread 2%, the company spread 3%; mining and SG&A are flat
after the horizon. Nothing after any date is random, so the mark is each path's
own continuation value (``run_company(..., mark=None)``). No engine code is called for the
expected numbers.
"""

import dataclasses
import math

import numpy as np
import pytest

from simulator.engine.chain import (TERMINAL_YEARS, CapitalParams, CompanyParams, DebtParams, FleetParams,
                                    MarketPaths, SiteParams, TreasuryParams, ValuationParams,
                                    company_shocks_needed, run_company)

T = 24
PRICE = 100_000.0
M = 1e6
R, K_LEASE, K_NOTE = 0.05, 0.07, 0.08


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
        valuation=ValuationParams(risk_free_rate=R, company_credit_spread=0.03,
                                  tenant_credit_spread=0.02, terminal_growth_mining=0.0,
                                  terminal_growth_sga=0.0, forward_years=2),
        sites=(site,))


def run(p=None, mk=None):
    p = p or params()
    shocks = {name: np.full((1, cols), 0.5) for name, _, cols in company_shocks_needed(p, T)}
    return run_company(mk or market(), p, shocks, None)


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


def flows(repaid_at_18=0.0):
    """Cash flow of each month before interest on cash [USD]: BTC sold - power - opex - SG&A
    + NOI - capex - note repaid."""
    out = []
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
        out.append(flow - (repaid_at_18 if t == 18 else 0.0))
    return out


def cash_path(repaid_at_18=0.0):
    """Month-end cash: the balance earns r for the month, then the month's flow lands."""
    cash, c = [], 1000 * M
    for f in flows(repaid_at_18):
        c = c * math.exp(R / 12) + f
        cash.append(c)
    return cash


def held(t):
    """BTC held at the end of month t: 1,000 + half of 640 a month to month 4, none in the
    curtailed month 5, half of 576 a month from month 6."""
    return 1000 + 320 * min(t + 1, 5) + 288 * max(t - 5, 0)


MINING = [25 * M] * 5 + [-3 * M] + [22.3 * M] * 18  # margin - opex - SG&A
LEASE = [0.0] * 6 + [-200 * M] * 4 + [12 * M] * 12 + [12.6 * M] * 2  # NOI - capex


def gordon(first, k, g):
    return first * math.exp(-k) / (1 - math.exp(g - k))


# Mining after the horizon: last year's full-run revenue (12 x 57.6M) less its power
# (12 x 32.4M) and site opex (12 x 0.9M), no halving (the hand market has no block heights),
# over the years the engine projects. It earns every year, so the fleet is kept to the end.
TV_MINING = sum((12 * 57.6 * M - 12 * 32.4 * M - 12 * 0.9 * M) * math.exp(-R * y)
                for y in range(1, TERMINAL_YEARS + 1))
TV_SGA = gordon(24 * M, R, 0.0)
TV_LEASE = gordon(10 * 12.6 * M + 2 * 13.23 * M, K_LEASE, 0.05)  # months 24..35


def ahead(stream, k, terminal, t):
    """Value at the end of month t of the stream after it and the terminal value."""
    later = sum(x * math.exp(-k * (s - t) / 12) for s, x in enumerate(stream) if s > t)
    return later + terminal * math.exp(-k * (T - 1 - t) / 12)


def operations_at(t):
    return ahead(MINING, R, TV_MINING - TV_SGA, t) + ahead(LEASE, K_LEASE, TV_LEASE, t)


def test_cash_and_treasury(out):
    np.testing.assert_allclose(out.cash[0], cash_path(), rtol=1e-12)
    assert out.btc_held[0, 0] == pytest.approx(1000 + 320)
    assert out.btc_held[0, 5] == pytest.approx(1000 + 5 * 320)
    assert out.btc_held[0, 11] == pytest.approx(held(11)) == 4328
    assert out.btc_sold[0, 6] == pytest.approx(288)


def mark_at_18_as_debt():
    """Value per basic share at the end of month 18 with the note repaid in cash."""
    cash = cash_path(repaid_at_18=100 * M)[18]
    return (operations_at(18) + held(18) * PRICE + cash) / (100 * M)


def test_convertible_and_capped_call(out):
    s = mark_at_18_as_debt()
    assert s > 33  # above the cap: the capped call hands back n (C - K) / S shares
    assert out.converted[0, 0]
    n = 100 * M / 30
    net = n * (1 - (33 - 30) / s)
    assert out.diluted_shares[0] == pytest.approx(100 * M + net, rel=1e-12)
    assert out.shares_outstanding[0, 17] == pytest.approx(100 * M)
    assert out.shares_outstanding[0, 18] == pytest.approx(100 * M + net, rel=1e-12)


@pytest.mark.parametrize("delta, converts", [(-0.01, True), (0.01, False)])
def test_convertible_threshold(delta, converts):
    out = run(params(conversion_price=mark_at_18_as_debt() + delta, cap=None))
    assert out.converted[0, 0] == converts
    repaid = 0.0 if converts else 100 * M
    assert out.cash[0, 18] == pytest.approx(cash_path(repaid)[18], rel=1e-12)


def test_value_per_share(out):
    d = [math.exp(-R * (t + 1) / 12) for t in range(T)]
    d_lease = [math.exp(-K_LEASE * (t + 1) / 12) for t in range(T)]
    at_t = math.exp(-R * T / 12)
    pv_mining_ops = sum((x + 2 * M) * f for x, f in zip(MINING, d)) + TV_MINING * at_t
    pv_sga = -(sum(2 * M * f for f in d) + TV_SGA * at_t)
    pv_hpc = sum(x * f for x, f in zip(LEASE, d_lease)) + TV_LEASE * math.exp(-K_LEASE * T / 12)
    mined = [640] * 5 + [0] + [576] * 18
    sold = [320] * 5 + [0] + [288] * 18
    treasury = PRICE * (held(T - 1) * at_t + sum((s - m) * f for s, m, f in zip(sold, mined, d)))
    equity = 1000 * M + pv_mining_ops + pv_sga + pv_hpc + treasury  # the note converts: no payment
    shares = 100 * M + 100 * M / 30 * (1 - 3 / mark_at_18_as_debt())
    assert out.pv_mining[0] == pytest.approx(pv_mining_ops, rel=1e-12)
    assert out.pv_sga[0] == pytest.approx(pv_sga, rel=1e-12)
    assert out.pv_hpc[0] == pytest.approx(pv_hpc, rel=1e-12)
    assert out.pv_taxes[0] == 0.0
    assert out.treasury_value[0] == pytest.approx(treasury, rel=1e-12)
    assert out.pv_notes[0] == 0.0
    assert out.net_debt[0] == pytest.approx(-1000 * M)
    assert out.equity_value[0] == pytest.approx(equity, rel=1e-12)
    assert out.value_per_share[0] == pytest.approx(equity / shares, rel=1e-12)
    # To the cent on the share.
    assert round(out.value_per_share[0], 2) == round(equity / shares, 2)
    assert not out.path_failed[0]
    assert out.shares_issued[0] == pytest.approx(shares - 100 * M, rel=1e-12)  # conversion only


def test_value_per_share_when_the_note_is_repaid():
    """A conversion price never reached: the note is worth its face discounted at r + spread."""
    out = run(params(conversion_price=1e6, cap=None))
    assert not out.converted[0, 0]
    assert out.pv_notes[0] == pytest.approx(100 * M * math.exp(-K_NOTE * 19 / 12), rel=1e-12)
    assert out.diluted_shares[0] == 100 * M


def test_forward_values(out):
    note_11 = 100 * M * math.exp(-K_NOTE * 7 / 12)  # owed at the end of month 18
    year1 = (operations_at(11) + held(11) * PRICE + cash_path()[11] - note_11) / (100 * M)
    assert out.value_per_share_forward[0, 0] == pytest.approx(year1, rel=1e-12)
    shares = 100 * M + 100 * M / 30 * (1 - 3 / mark_at_18_as_debt())
    year2 = (operations_at(23) + held(23) * PRICE + cash_path()[23]) / shares
    assert out.value_per_share_forward[0, 1] == pytest.approx(year2, rel=1e-12)


def test_tax_after_depreciation_with_losses_carried():
    """25% tax, the existing assets depreciating $20M a month for 12 months, a $50M loss
    carried in: year 1 income before tax is the sum of margin - opex - SG&A + NOI less
    depreciation; the carried loss offsets at most 80% of it."""
    p = params()
    from simulator.engine.params import TaxParams
    tax = TaxParams(rate=0.25, depreciation_months_mining=60, depreciation_months_hpc=180,
                    existing_depreciation_usd_per_month=20 * M, existing_months=12,
                    loss_carryforward_usd=50 * M, loss_offset_limit=0.8)
    out = run(dataclasses.replace(p, tax=tax))
    noi = [0.0] * 10 + [12 * M] * 12 + [12.6 * M] * 2
    capex = [0.0] * 6 + [200 * M] * 4 + [0.0] * 14
    dep_hpc = [sum(c / 180 for c in capex[:t + 1]) for t in range(T)]
    income = [MINING[t] + noi[t] - dep_hpc[t] - (20 * M if t < 12 else 0.0) for t in range(T)]
    y1, y2 = sum(income[:12]), sum(income[12:])
    used1 = min(50 * M, 0.8 * max(y1, 0.0))
    tax1 = 0.25 * (max(y1, 0.0) - used1)
    nol = 50 * M - used1 + max(-y1, 0.0)
    used2 = min(nol, 0.8 * max(y2, 0.0))
    tax2 = 0.25 * (max(y2, 0.0) - used2)
    assert out.tax[0, 11] == pytest.approx(tax1, rel=1e-12)
    assert out.tax[0, 23] == pytest.approx(tax2, rel=1e-12)
    assert out.tax[0, :11].sum() == 0.0 and out.tax[0, 12:23].sum() == 0.0


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


def test_a_conversion_price_near_zero_turns_the_note_into_shares():
    out = run(params(conversion_price=0.01, cap=None))
    assert out.converted[0, 0] and out.conversion_month[0, 0] == 18
    assert out.pv_notes[0] == 0.0
    assert out.diluted_shares[0] == pytest.approx(100 * M + 100 * M / 0.01, rel=1e-12)
    assert out.value_per_share[0] == pytest.approx(out.equity_value[0] / out.diluted_shares[0])


@pytest.mark.parametrize("trigger, month", [(1.3, 12), (100.0, 18)])
def test_the_issuer_calls_once_the_stock_clears_the_trigger(trigger, month):
    """Callable from month 12 when the share is worth 130% of the conversion price: the note
    converts then (the holders take shares worth more than the face), not at maturity."""
    p = params(conversion_price=20.0, cap=None)
    note = dataclasses.replace(p.capital.debt[0], call_month=12, call_trigger=trigger)
    out = run(dataclasses.replace(p, capital=dataclasses.replace(p.capital, debt=(note,))))
    assert out.conversion_month[0, 0] == month
    assert out.shares_outstanding[0, month - 1] == 100 * M
    assert out.shares_outstanding[0, month] == pytest.approx(100 * M + 100 * M / 20)


def test_a_fleet_that_cannot_cover_its_power_is_abandoned_at_the_first_year_end():
    """Power at $200/MWh: breakeven 20 x 24 x 200 / 1000 = $96/PH/day against $42.67, so the
    fleet curtails every month and only pays site opex; keeping it is worth less than nothing
    at the end of month 11, so from month 12 it costs nothing and mines nothing, and mining's
    terminal value is zero."""
    p = params()
    out = run(dataclasses.replace(p, fleet=dataclasses.replace(p.fleet, power_price_usd_per_mwh=200.0)))
    assert out.curtailed[0, :12].all()
    assert out.site_opex[0, 11] == pytest.approx(0.9 * M)
    assert not out.site_opex[0, 12:].any() and not out.company_hashrate[0, 12:].any()
    d = [math.exp(-R * (t + 1) / 12) for t in range(T)]
    opex = [1 * M] * 6 + [0.9 * M] * 6 + [0.0] * 12
    assert out.pv_mining[0] == pytest.approx(-sum(o * f for o, f in zip(opex, d)), rel=1e-12)
