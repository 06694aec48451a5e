"""Capital: debt schedules, convertibles and capped call, cash loop, equity raises."""

import math

import numpy as np
import pytest

from simulator.engine import capital
from simulator.engine.chain import (CapitalParams, CompanyParams, FleetParams, MarketPaths,
                                    TreasuryParams, ValuationParams, run_company)


def test_debt_schedule_hand_numbers():
    # 1,200 face, 12% coupon (1%/month on opening), 50%/yr amortisation = 50/month, due month 5.
    bal, intr, sched, balloon = capital.debt_schedule(1200.0, 0.12, 5, 0.5, 8)
    np.testing.assert_allclose(intr[0], [12, 11.5, 11, 10.5, 10, 9.5, 0, 0])
    np.testing.assert_allclose(sched[0], [50, 50, 50, 50, 50, 0, 0, 0])
    np.testing.assert_allclose(balloon[0], [0, 0, 0, 0, 0, 950, 0, 0])
    np.testing.assert_allclose(bal[0], [1150, 1100, 1050, 1000, 950, 0, 0, 0])


def test_debt_beyond_horizon_stays_outstanding():
    bal, _, _, balloon = capital.debt_schedule(np.array([100.0, 200.0]), 0.0, 99, 0.0, 4)
    np.testing.assert_allclose(bal[:, -1], [100, 200])
    assert not balloon.any()


@pytest.mark.parametrize("value, expected", [(10.01, True), (9.99, False), (10.0, False),
                                             (np.nan, False)])
def test_converts_just_above_repays_just_below(value, expected):
    assert bool(capital.converts(np.array([value]), 10.0)[0]) is expected


@pytest.mark.parametrize("s, net", [(12.0, 1000 / 12), (15.0, 100 * (1 - 5 / 15)),
                                    (30.0, 100 * (1 - 5 / 30))])
def test_capped_call_offset(s, net):
    # 1,000 face at K = 10 -> 100 shares; call spread K = 10 to C = 15 pays
    # 100 (min(S, C) - K) in value, returned as shares at S.
    got = capital.conversion_shares(1000.0, 10.0, np.array([s]), 15.0)[0]
    assert got == pytest.approx(net)


def test_capped_call_offset_is_capped():
    s = np.array([20.0, 40.0, 80.0])
    offset_shares = 100 - capital.conversion_shares(1000.0, 10.0, s, 15.0)
    np.testing.assert_allclose(offset_shares * s, 100 * 5.0)  # value of offset fixed at cap
    assert (offset_shares < 100 * (s - 10) / s).all()  # less than an uncapped call
    np.testing.assert_allclose(capital.conversion_shares(1000.0, 10.0, s, None), 100)


def test_cash_loop_raises_at_issue_price():
    never = lambda held, mined, cash, price: np.zeros_like(held)  # noqa: E731
    pre = np.array([[-50.0, -50.0, 30.0]])
    res = capital.cash_loop(pre, np.zeros((1, 3)), np.ones((1, 3)), cash0=60.0, btc_held0=0.0,
                            sell=never, issue_price=np.full((1, 3), 2.0), raise_target_usd=10.0)
    np.testing.assert_allclose(res.cash[0], [10, 10, 40])
    np.testing.assert_allclose(res.raised_usd[0], [0, 50, 0])
    np.testing.assert_allclose(res.shares_issued[0], [0, 25, 0])
    assert not res.short[0]


def test_cash_loop_short_without_raises_or_price():
    never = lambda held, mined, cash, price: np.zeros_like(held)  # noqa: E731
    pre = np.array([[-50.0], [10.0]])
    res = capital.cash_loop(pre, np.zeros((2, 1)), np.ones((2, 1)), cash0=0.0, btc_held0=0.0,
                            sell=never)
    np.testing.assert_array_equal(res.short, [True, False])
    res = capital.cash_loop(pre, np.zeros((2, 1)), np.ones((2, 1)), cash0=0.0, btc_held0=0.0,
                            sell=never, issue_price=np.array([[-1.0], [-1.0]]))
    np.testing.assert_array_equal(res.short, [True, False])


def test_cash_loop_treasury_sales_fund_cash():
    rule = lambda held, mined, cash, price: np.minimum(held, np.maximum(-cash, 0) / price)  # noqa
    pre = np.array([[-300.0, -300.0]])
    res = capital.cash_loop(pre, np.zeros((1, 2)), np.full((1, 2), 100.0), cash0=0.0,
                            btc_held0=4.0, sell=rule)
    np.testing.assert_allclose(res.btc_sold[0], [3, 1])
    np.testing.assert_allclose(res.cash[0], [0, -200])
    assert res.short[0]


def _burn(allow_raise):
    # No mining, 1M/month SG&A for ever, 0.5M cash, 5,000 BTC at 100k held and never sold:
    # cash runs out at once and equity is raised every month.
    T = 3
    ones = np.ones((1, T))
    mk = MarketPaths(np.arange("2026-01", "2026-04", dtype="datetime64[M]"), np.full(T, 30.0),
                     1e5 * ones, 0 * ones, 3.125 * ones, 4320 * ones, 1000 * ones, 40 * ones,
                     1e5)
    p = CompanyParams(
        fleet=FleetParams(0.0, 20.0, 0.0, 1.0, 50.0, sga_usd_per_month=1e6),
        treasury=TreasuryParams(5000.0),
        capital=CapitalParams(0.5e6, 1e6, allow_equity_raise=allow_raise),
        valuation=ValuationParams(risk_free_rate=0.04, terminal_growth_sga=0.0, forward_years=1))
    return run_company(mk, p, {}, None)


def test_equity_raise_at_the_mark_before_the_raise():
    """Each month's raise is priced at the value per share before it: BTC + cash (negative,
    before the raise) less the value of SG&A from then on, over the shares already out."""
    out = _burn(True)
    r, btc = 0.04, 5000 * 1e5
    perpetuity = 12e6 * math.exp(-r) / (1 - math.exp(-r))  # SG&A after month 2, at its end
    def sga_after(t):
        later = sum(1e6 * math.exp(-r * (s - t) / 12) for s in range(t + 1, 3))
        return later + perpetuity * math.exp(-r * (2 - t) / 12)
    # Cash earns r in month 0 before SG&A is paid; the raises restore it to zero.
    shares, issued, cash_before = 1e6, [], [0.5e6 * math.exp(r / 12) - 1e6, -1e6, -1e6]
    for t in range(3):
        price = (btc + cash_before[t] - sga_after(t)) / shares
        issued.append(-cash_before[t] / price)
        shares += issued[-1]
    np.testing.assert_allclose(out.shares_outstanding[0], 1e6 + np.cumsum(issued), rtol=1e-12)
    assert out.shares_issued[0] == pytest.approx(sum(issued), rel=1e-12)
    np.testing.assert_allclose(out.cash[0], 0.0, atol=1e-6)
    d = [math.exp(-r * (t + 1) / 12) for t in range(3)]
    pv_raised = -sum(c * f for c, f in zip(cash_before, d))
    pv_sga = -(1e6 * sum(d) + perpetuity * math.exp(-r * 3 / 12))
    treasury = btc * math.exp(-r * 3 / 12)
    equity = pv_sga + treasury + 0.5e6 + pv_raised
    assert out.pv_equity_raised[0] == pytest.approx(pv_raised, rel=1e-12)
    assert out.value_per_share[0] == pytest.approx(equity / (1e6 + sum(issued)), rel=1e-12)
    assert not out.path_failed[0]


def test_path_fails_without_equity_raise():
    out = _burn(False)
    assert out.path_failed[0] and np.isnan(out.value_per_share[0])
    assert np.isnan(out.value_per_share_forward).all()
    # Cash earns the risk-free rate while it is positive (the first month only).
    assert out.cash[0, -1] == pytest.approx(0.5e6 * math.exp(0.04 / 12) - 3e6)
    assert np.isfinite(out.equity_value[0])


def _cash_loop_by_hand(pre, mined, price, issue, cash0, held0, floor, target):
    """One path at a time, one month at a time, in plain Python (cash-floor policy)."""
    n, months = pre.shape
    cash = np.zeros((n, months))
    for p in range(n):
        c, h = cash0, held0
        for t in range(months):
            c += pre[p, t]
            h += mined[p, t]
            sold = min(max(floor - c, 0.0) / price[p, t], h)
            h -= sold
            c += sold * price[p, t]
            if c < 0.0 and issue[p, t] > 0.0:
                c = target
            cash[p, t] = c
    return cash


@pytest.mark.parametrize("months", [1, 7, 8, 9, 19])
def test_cash_loop_matches_a_path_by_path_loop_across_month_blocks(months):
    # The loop walks months in blocks of 8; block edges must not change any number.
    rng = np.random.default_rng(months)
    n = 5
    pre = rng.normal(-40.0, 60.0, (n, months))
    mined = rng.uniform(0.0, 0.2, (n, months))
    price = rng.uniform(50.0, 150.0, (n, months))
    issue = np.where(rng.random((n, months)) < 0.5, 2.0, -1.0)
    floor = 20.0
    from simulator.engine import treasury
    res = capital.cash_loop(pre, mined, price, cash0=50.0, btc_held0=1.0,
                            sell=treasury.sell_rule("cash_floor", floor_usd=floor),
                            issue_price=issue, raise_target_usd=30.0)
    want = _cash_loop_by_hand(pre, mined, price, issue, 50.0, 1.0, floor, 30.0)
    np.testing.assert_allclose(res.cash, want, rtol=1e-12, atol=1e-9)
    assert res.cash.shape == res.btc_held.shape == res.shares_issued.shape == (n, months)


def test_a_raise_at_the_mark_is_priced_on_the_paths_short_of_cash_only():
    # issue_value is asked for month t on exactly the paths whose cash is negative before the
    # raise, and each raise is priced as a path-by-path loop prices it.
    rng = np.random.default_rng(3)
    n, months, target, held0 = 6, 11, 30.0, 1.0
    pre = rng.normal(-40.0, 60.0, (n, months))
    value = rng.normal(300.0, 400.0, (n, months))  # negative on some paths: no raise there
    shares = np.full((n, months), 10.0)
    never = lambda held, mined, cash, price: np.zeros_like(held)  # noqa: E731
    asked = {}

    def issue_value(t, rows):
        asked[t] = rows.copy()
        return value[rows, t].copy()

    res = capital.cash_loop(pre, np.zeros((n, months)), np.full((n, months), 100.0), cash0=50.0,
                            btc_held0=held0, sell=never, issue_value=issue_value,
                            issue_shares=shares, raise_target_usd=target)
    for p in range(n):
        cash, issued, short = 50.0, 0.0, False
        for t in range(months):
            cash += pre[p, t]
            if cash < 0.0:
                assert p in asked[t]
                price = max(value[p, t] + held0 * 100.0 + cash, 0.0) / (shares[p, t] + issued)
                if price > 0.0:
                    issued += (target - cash) / price
                    cash = target
                else:
                    short = True
            else:
                assert p not in asked.get(t, ())
            assert res.cash[p, t] == pytest.approx(cash, rel=1e-12, abs=1e-9)
        assert res.shares_issued[p].sum() == pytest.approx(issued, rel=1e-12)
        assert res.short[p] == short
    assert res.short.any() and not res.short.all() and res.shares_issued.any()
