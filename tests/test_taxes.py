"""Taxes: straight-line depreciation, annual cash tax with loss carry-forwards."""

import numpy as np
import pytest

from simulator.engine import taxes


def _months(*values_per_year):
    """A [1, T] income path: 12 months at each monthly value."""
    return np.repeat(np.asarray(values_per_year, dtype=np.float64), 12)[None, :]


# --- straight_line ---------------------------------------------------------------------------

def test_straight_line_single_capex_hand_numbers():
    capex = np.zeros((1, 15))
    capex[0, 0] = 1200.0
    dep = taxes.straight_line(capex, 12)
    np.testing.assert_array_equal(dep[0], [100.0] * 12 + [0.0] * 3)


def test_straight_line_truncated_at_grid_end():
    capex = np.zeros((1, 10))
    capex[0, 6] = 1200.0
    dep = taxes.straight_line(capex, 12)
    np.testing.assert_array_equal(dep[0], [0.0] * 6 + [100.0] * 4)
    # A life longer than the whole grid: 1,200 over 24 months, 6 months on the grid.
    capex = np.zeros((1, 6))
    capex[0, 0] = 1200.0
    np.testing.assert_array_equal(taxes.straight_line(capex, 24)[0], [50.0] * 6)


def test_straight_line_per_path():
    capex = np.array([[1200.0, 0.0, 0.0, 0.0],
                      [0.0, 600.0, 0.0, 0.0]])
    dep = taxes.straight_line(capex, 2)
    np.testing.assert_array_equal(dep, [[600, 600, 0, 0], [0, 300, 300, 0]])


def test_straight_line_zero_capex_gives_zeros():
    dep = taxes.straight_line(np.zeros((3, 20)), 5)
    assert dep.shape == (3, 20)
    assert not dep.any()


def test_straight_line_several_months_add_up():
    # 120 at month 0 over 3 months = 40 in months 0-2; 240 at month 2 = 80 in months 2-4.
    capex = np.array([[120.0, 0.0, 240.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(taxes.straight_line(capex, 3)[0], [40, 40, 120, 80, 80, 0])


def test_straight_line_life_of_one_month_is_expensing():
    capex = np.array([[5.0, 0.0, 7.0]])
    np.testing.assert_array_equal(taxes.straight_line(capex, 1), capex)


def test_straight_line_rejects_a_life_under_one_month():
    with pytest.raises(ValueError):
        taxes.straight_line(np.zeros((1, 3)), 0)


# --- cash_tax --------------------------------------------------------------------------------

def test_zero_income_zero_tax():
    res = taxes.cash_tax(np.zeros((2, 24)), np.zeros((2, 24)), rate=0.25)
    assert res.tax.shape == res.nol.shape == res.depreciation.shape == (2, 24)
    assert not res.tax.any()
    assert not res.nol.any()


def test_constant_income_taxed_at_rate_in_last_month_of_each_year():
    res = taxes.cash_tax(_months(100.0, 100.0), np.zeros((1, 24)), rate=0.25)
    expected = np.zeros(24)
    expected[[11, 23]] = 0.25 * 1200.0  # 300 per year
    np.testing.assert_array_equal(res.tax[0], expected)


def test_partial_last_year_taxed_at_grid_end():
    res = taxes.cash_tax(np.full((1, 18), 100.0), np.zeros((1, 18)), rate=0.25)
    expected = np.zeros(18)
    expected[11] = 300.0  # 0.25 x 1,200
    expected[17] = 150.0  # 0.25 x 600 over months 12-17
    np.testing.assert_array_equal(res.tax[0], expected)


def test_losses_and_profits_net_within_a_tax_year():
    income = np.zeros((1, 12))
    income[0, 0], income[0, 1] = -500.0, 800.0
    res = taxes.cash_tax(income, np.zeros((1, 12)), rate=0.25)
    assert res.tax[0, 11] == 75.0  # 0.25 x (800 - 500), not 0.25 x 800
    assert res.tax.sum() == 75.0
    assert not res.nol.any()


# Year 1 loses 100/month (L = 1,200), year 2 earns 100/month (1,200), year 3 200/month (2,400).
INCOME_LOSS_THEN_PROFIT = _months(-100.0, 100.0, 200.0)


def test_first_year_loss_offsets_later_profit_unlimited():
    res = taxes.cash_tax(INCOME_LOSS_THEN_PROFIT, np.zeros((1, 36)), rate=0.25, nol_limit=1.0)
    # Year 2: 1,200 of NOL offsets all 1,200 -> no tax. Year 3: 0.25 x 2,400 = 600.
    expected = np.zeros(36)
    expected[35] = 600.0
    np.testing.assert_array_equal(res.tax[0], expected)
    nol = np.zeros(36)
    nol[11:23] = 1200.0
    np.testing.assert_array_equal(res.nol[0], nol)


def test_first_year_loss_offsets_later_profit_limited_to_80_percent():
    res = taxes.cash_tax(INCOME_LOSS_THEN_PROFIT, np.zeros((1, 36)), rate=0.25, nol_limit=0.8)
    # Year 2: NOL may offset 0.8 x 1,200 = 960 -> tax 0.25 x 240 = 60, NOL 1,200 - 960 = 240.
    # Year 3: the remaining 240 (< 0.8 x 2,400) -> tax 0.25 x (2,400 - 240) = 540, NOL 0.
    expected = np.zeros(36)
    expected[23], expected[35] = 60.0, 540.0
    np.testing.assert_array_equal(res.tax[0], expected)


def test_nol_balance_path():
    res = taxes.cash_tax(INCOME_LOSS_THEN_PROFIT, np.zeros((1, 36)), rate=0.25)  # limit 0.8
    # Changes only at each year's return (months 11, 23, 35); opening balance before that.
    expected = np.concatenate([np.zeros(11), np.full(12, 1200.0), np.full(12, 240.0), [0.0]])
    np.testing.assert_array_equal(res.nol[0], expected)


def test_per_path_rates_broadcast():
    res = taxes.cash_tax(np.full((1, 12), 100.0), np.zeros((1, 12)), rate=np.array([0.1, 0.25]))
    assert res.tax.shape == (2, 12)
    np.testing.assert_allclose(res.tax[:, 11], [120.0, 300.0], rtol=1e-15)
    assert not res.tax[:, :11].any()


def test_opening_nol_is_used_first():
    # 1,200 of income; NOL may offset 0.8 x 1,200 = 960 of it.
    res = taxes.cash_tax(np.full((1, 12), 100.0), np.zeros((1, 12)), rate=0.25,
                         nol0=np.array([0.0, 1000.0, 5000.0]))
    np.testing.assert_array_equal(res.tax[:, 11], [300.0, 60.0, 60.0])
    np.testing.assert_array_equal(res.nol[:, 11], [0.0, 40.0, 4040.0])
    np.testing.assert_array_equal(res.nol[:, :11], np.repeat([[0.0], [1000.0], [5000.0]], 11, 1))


def test_depreciation_is_deducted_and_broadcasts_against_income():
    # Income [1, T] of 300/month; capex [P, T]: none, 1,200 and 6,000 at month 0 over 12 months.
    capex = np.zeros((3, 12))
    capex[1, 0], capex[2, 0] = 1200.0, 6000.0
    dep = taxes.straight_line(capex, 12)  # 0, 100 and 500 per month
    res = taxes.cash_tax(np.full((1, 12), 300.0), dep, rate=0.25)
    # Taxable: 3,600, 2,400 and -2,400 (a loss carried forward).
    np.testing.assert_array_equal(res.tax[:, 11], [900.0, 600.0, 0.0])
    np.testing.assert_array_equal(res.nol[:, 11], [0.0, 0.0, 2400.0])
    np.testing.assert_array_equal(res.depreciation, dep)
    # [P, T] income against [1, T] depreciation gives the same shape.
    res = taxes.cash_tax(np.full((3, 12), 300.0), dep[1:2], rate=0.25)
    assert res.tax.shape == res.depreciation.shape == (3, 12)
    np.testing.assert_array_equal(res.tax[:, 11], [600.0] * 3)


def test_tax_never_negative_and_conserves_taxable_income():
    rng = np.random.default_rng(7)
    income = rng.normal(0.0, 1000.0, size=(50, 41))
    dep = taxes.straight_line(rng.uniform(0.0, 3000.0, size=(50, 41)), 18)
    nol0 = rng.uniform(0.0, 5000.0, size=50)
    res = taxes.cash_tax(income, dep, rate=0.3, nol0=nol0, nol_limit=0.8)
    assert (res.tax >= 0.0).all()
    assert (res.nol >= 0.0).all()
    year_end = np.zeros(41, dtype=bool)
    year_end[[11, 23, 35, 40]] = True
    assert not res.tax[:, ~year_end].any()
    assert res.tax[:, year_end].any()
    # Income taxed = taxable income + NOL closing - NOL opening (losses are only deferred).
    taxed = res.tax.sum(axis=1) / 0.3
    np.testing.assert_allclose(taxed, (income - dep).sum(axis=1) + res.nol[:, -1] - nol0,
                               rtol=1e-9, atol=1e-6)


# --- tax_year (one return; also the first year after the horizon) ----------------------------

@pytest.mark.parametrize("taxable, nol, tax, nol_close", [
    (1000.0, 2000.0, 50.0, 1200.0),  # offsets 0.8 x 1,000 = 800; tax 0.25 x 200
    (1000.0, 300.0, 175.0, 0.0),  # offsets all 300; tax 0.25 x 700
    (-300.0, 2000.0, 0.0, 2300.0),  # a loss adds to the carry-forward
])
def test_tax_year_hand_numbers(taxable, nol, tax, nol_close):
    got_tax, got_nol = taxes.tax_year(taxable, nol, rate=0.25, nol_limit=0.8)
    assert got_tax == tax
    assert got_nol == nol_close


def test_depreciation_by_year_after_the_grid_continues_the_schedule():
    """1,200 spent in month 8 of 10 over 12 months: 100 a month in months 8..19, of which
    months 10..19 fall after the grid: 10 x 100 in its first year after, nothing later."""
    capex = np.zeros((1, 10))
    capex[0, 8] = 1_200.0
    np.testing.assert_allclose(taxes.depreciation_by_year(capex, 12, 3), [[1_000.0, 0.0, 0.0]])
    # 2,400 in month 0 over 36 months on a 12-month grid: 24 months left, 800 a year for 2 years.
    long = np.zeros((2, 12))
    long[1, 0] = 2_400.0
    np.testing.assert_allclose(taxes.depreciation_by_year(long, 36, 3), [[0, 0, 0], [800, 800, 0]])


def test_project_debt_interest_after_the_horizon_by_year_matches_a_month_by_month_sum():
    from simulator.engine.chain import _interest_by_year
    balance, principal, i = 1_500.0, 100.0, 0.01  # 15 months of 100 left, 1% a month
    st = {"balance": np.array([[balance]]), "principal": np.array([[principal]]),
          "interest": np.array([[i * (balance + principal)]])}
    monthly = [i * (balance - principal * (j - 1)) for j in range(1, 16)]
    got = _interest_by_year(st, 1, 3)[0]
    np.testing.assert_allclose(got, [sum(monthly[:12]), sum(monthly[12:]), 0.0], rtol=1e-12)


def test_tax_by_year_carries_losses_from_year_to_year():
    """Incomes -100, 50, 200 with 30 carried in, 80% limit, 25%: year 2 offsets 40 of its 50
    (carry 130 -> 90), year 3 offsets 90 of its 200: tax 0, 2.5, 27.5."""
    got = taxes.tax_by_year(np.array([[-100.0, 50.0, 200.0]]), 30.0, rate=0.25)
    np.testing.assert_allclose(got, [[0.0, 0.25 * 10, 0.25 * 110]])


@pytest.mark.parametrize("life", [1, 2, 11, 12, 13, 36, 119, 120, 121, 180, 300])
@pytest.mark.parametrize("months", [1, 7, 12, 13, 120])
def test_depreciation_by_year_is_the_weighted_sum_of_its_definition(life, months):
    # Month s leaves n_s = max(s + L - T, 0) charges, clip(n_s - 12 y, 0, 12) of them in year y + 1.
    rng = np.random.default_rng(life * 1_000 + months)
    capex = rng.normal(1e7, 5e6, (4, months)) * (rng.random((4, months)) < 0.6)
    left = np.maximum(np.arange(months) + life - months, 0)[:, None]
    weights = np.clip(left - 12 * np.arange(30)[None, :], 0, 12) / life
    want = np.array([[sum(c[s] * weights[s, y] for s in range(months)) for y in range(30)] for c in capex])
    np.testing.assert_allclose(taxes.depreciation_by_year(capex, life, 30), want, rtol=1e-12,
                               atol=1e-12 * np.abs(capex).sum())
