"""The valuation's invariants under the two measures (domain.md, "Valuation", and issue 14).

Each test compares the run with a truth it does not compute itself: BTC held times spot, the
pathwise discounted cash flows, the face of a note, each within a tolerance set by the Monte
Carlo standard error.
"""

from __future__ import annotations

import numpy as np
import pytest

import simulator
from simulator.scenario import load_scenario

SHARES_M = 255.58
BTC = 13_011.0
SPOT = 84_500.0


def _dump():
    return load_scenario("base").model_dump(mode="json")


def _validate(data):
    sc = load_scenario("base")
    return type(sc).model_validate(data)


def holder(process: dict, *, months: int = 120):
    """A company that only holds BTC: no fleet, no sites, no debt, no costs, no tax."""
    data = _dump()
    data["name"] = "holder"
    data["simulation"]["horizon_months"] = months
    data["valuation"]["forward_years"] = [1]
    data["valuation"]["marks"]["fit_paths"] = 1024
    data["market"]["btc"]["process"] = process
    fleet = data["company"]["fleet"]
    fleet.update(hashrate_ehs=0.0, deployments=[], relocation=None, renewal=None)
    data["company"].update(sga_usd_m_per_year=0.0, cash_usd_m=0.0, debt=[],
                           allow_equity_raise=True)
    data["company"]["power"]["site_opex_usd_per_mw_month"] = 0.0
    data["company"]["tax"]["rate"] = 0.0
    data["company"]["tax"]["existing_depreciation_usd_m_per_year"] = 0.0
    data["company"]["treasury"]["policy"] = {"kind": "hold"}
    data["sites"] = []
    data["correlations"] = []
    return _validate(data)


def _history_csv(tmp_path):
    """Monthly closes with a strong real-world drift and fat tails, so that a wrong pricing
    form of the bootstrap cannot pass by accident."""
    rng = np.random.default_rng(11)
    r = 0.03 + 0.18 * rng.standard_t(4, 96) / np.sqrt(2)
    close = 1_000 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    dates = np.arange("2017-01", "2025-02", dtype="datetime64[M]")[:close.size]
    path = tmp_path / "history.csv"
    path.write_text("date,close\n" + "".join(f"{d}-01,{c:.6f}\n" for d, c in zip(dates, close)))
    return str(path)


PROCESSES = {
    "gbm": {"kind": "gbm", "drift": 0.25, "volatility": 0.6},
    "merton": {"kind": "merton", "drift": 0.25, "volatility": 0.5, "jump_intensity_per_year": 4,
               "jump_mean": -0.05, "jump_sd": 0.15},
    "regime": {"kind": "regime", "drift": [0.8, -0.6], "volatility": [0.45, 0.8],
               "stay_probability_monthly": [0.95, 0.9]},
    "bootstrap": None,  # built from a CSV in tmp_path
}


@pytest.mark.parametrize("kind", list(PROCESSES))
def test_a_company_that_only_holds_btc_is_worth_its_btc(kind, tmp_path):
    """Martingale: fair value = BTC held x spot / shares within 3 standard errors.

    The plain Monte Carlo mean is used: the run's control variate is the discounted BTC price
    itself, which would make this check true by construction.
    """
    process = PROCESSES[kind] or {"kind": "bootstrap", "csv": _history_csv(tmp_path),
                                  "block_months": 12}
    cube = simulator.simulate(holder(process), paths=8192, seed=3)
    truth = BTC * SPOT / (SHARES_M * 1e6)
    mean, se = cube.attrs["fair_value_plain_mean"], cube.attrs["fair_value_plain_se"]
    assert abs(mean - truth) < 3 * se, (kind, mean, se, truth)
    # The real-world paths drift away from it (the forecast is not the fair value).
    fwd = float(cube["forward_value_per_share"].sel(horizon=12).mean())
    assert cube["forward_value_per_share"].attrs["measure"] == "real-world"
    assert cube["value_per_share"].attrs["measure"] == "pricing"
    if kind != "bootstrap":
        assert fwd > truth * 1.05


def test_the_risk_free_rate_not_the_drift_sets_the_fair_value():
    a = simulator.simulate(holder(PROCESSES["gbm"], months=24), paths=2048, seed=5)
    b = simulator.simulate(holder({**PROCESSES["gbm"], "drift": -0.3}, months=24), paths=2048, seed=5)
    assert a.attrs["fair_value_per_share"] == b.attrs["fair_value_per_share"]
    assert float(a["forward_value_per_share"].mean()) > float(b["forward_value_per_share"].mean())


@pytest.fixture(scope="module")
def base_cube():
    return simulator.simulate("base", paths=8192, seed=20251201)


def _pricing_paths(spreads: dict[str, float], seed: int, n: int = 8192):
    """The base case with ``spreads`` set in ``valuation``: its fitted mark, and its pricing
    paths run through the engine directly (scenario, mark, params, shocks, market paths)."""
    from simulator.engine import chain
    from simulator.rng import Draws
    from simulator.run import correlation, sampled_dists
    from simulator.run.plan import RunSpec, fit_mark
    from simulator.run.sampling import sample_inputs

    data = _dump()
    data["valuation"].update(spreads)
    sc = _validate(data)
    dists = sampled_dists(sc)
    corr = correlation(sc, list(dists))
    mark = fit_mark(RunSpec(sc, dists, corr, seed, "random", n, 0))
    inputs = sample_inputs(dists, method="random", seed=seed, start=0, stop=n, n_total=n, corr=corr)
    draws = Draws(seed, 0, n, sc.simulation.horizon_months)
    mi = chain.inputs_.market_inputs(sc, inputs, None)
    params, shocks = chain._company(sc, inputs, draws)
    mq, _ = chain.run_market(chain._pricing(mi, params.valuation.risk_free_rate), chain.inputs_.month_starts(sc), draws)
    return mark, params, shocks, mq


@pytest.fixture(scope="module")
def q_operations():
    """Pricing paths of the base case (tenant spread 0: one rate for every operating stream),
    with the run's fitted mark, run through the engine directly."""
    from simulator.engine import chain, valuation

    mark, params, shocks, mq = _pricing_paths({"tenant_credit_spread": 0.0}, seed=77)
    ops = chain.operations(mq, params, shocks)
    r = params.valuation.risk_free_rate
    stream = ops.mining_stream + ops.lease_stream
    terminal = ops.terminal_r + ops.terminal_lease
    months = stream.shape[1]
    today = valuation.present_value(stream, r) + terminal * valuation.at_horizon(r, months)
    return ops, mark, stream, today, r


@pytest.mark.parametrize("month", [12, 24, 36])
def test_the_marks_agree_with_the_fair_value(q_operations, month):
    """Today's operating value = Q mean of the discounted flows to t plus the discounted mark at t.

    The paths here are not the ones the mark was fitted on. The tolerance is 3 standard errors
    of the paired difference, counting the fitting paths' sampling error as well.
    """
    from simulator.engine import valuation

    ops, mark, stream, today, r = q_operations
    t = month - 1
    to_t = valuation.present_value(stream[:, :t + 1], r)
    marked = to_t + np.exp(-r * month / 12) * mark.at(ops.state, t)
    diff = today - marked
    # Two sources of error: these paths' own (the mean of the difference) and the fitting
    # paths' (the fitted intercept moves by about sd / sqrt(fitting paths)).
    fit = mark.marks[t].n_fit
    se = diff.std(ddof=1) * np.sqrt(1 / diff.size + 1 / fit)
    print(f"month {month}: fair value of operations {today.mean() / 1e6:,.1f} M USD, "
          f"marked {marked.mean() / 1e6:,.1f} M USD, difference {diff.mean() / 1e6:,.1f} "
          f"+- {se / 1e6:,.1f} M USD")
    assert abs(diff.mean()) < 3 * se, (diff.mean(), se)
    # The check has power: the mark explains most of the spread of the pathwise values.
    assert diff.var() < 0.5 * (today - to_t).var()


@pytest.fixture(scope="module")
def q_company():
    """Pricing paths of the base case with one rate for every claim (tenant and company
    spreads 0) and the run's fitted mark, through operations and pass A (every note as debt,
    no raises): the value to equity is then a sum of claims each discounted at r."""
    from simulator.engine import chain, valuation

    n = 8192
    mark, params, shocks, mq = _pricing_paths(
        {"tenant_credit_spread": 0.0, "company_credit_spread": 0.0}, seed=78, n=n)
    ground = chain.groundwork(params, shocks, n, mq.btc_price.shape[1])
    coupons = sum(x.interest[:, :mq.btc_price.shape[1]] for x in ground.notes)
    ops = chain.operations(mq, params, shocks, note_interest=coupons, ground=ground)
    r = params.valuation.risk_free_rate
    a, price, _ = chain._pass_a(mq, params, ops, ground.notes, r)
    months = price.shape[1]
    ahead = chain._notes_ahead(ground.notes, n, months)
    stream = ops.mining_stream + ops.lease_stream
    terminal = ops.terminal_r + ops.terminal_lease
    operating = valuation.present_value(stream, r) + terminal * valuation.at_horizon(r, months)
    today = (operating + params.capital.cash0_usd + params.treasury.btc_held0 * mq.btc_price0
             - (ahead[:, 0] + sum(x.flows[:, 0] for x in ground.notes)) * np.exp(-r / 12))
    return ops, mark, a, price, ahead, today, r, params.capital.basic_shares


@pytest.mark.parametrize("month", [12, 24, 36])
def test_the_marks_agree_with_the_fair_value_per_share(q_company, month):
    """Per share, with the notes as debt and no raises: today's value to equity is the Q mean
    of the discounted mark at t plus cash, BTC held at its price and less the notes' payments
    still due, all at t (nothing is paid to the shareholders before t).

    Cash earns r only while positive, so the identity is exact only where cash stays
    positive; the interest negative balances do not pay is bounded and added to the tolerance.
    """
    ops, mark, a, price, ahead, today, r, shares = q_company
    t = month - 1
    at_t = mark.at(ops.state, t) + a.cash[:, t] + a.btc_held[:, t] * price[:, t] - ahead[:, t]
    diff = (today - np.exp(-r * month / 12) * at_t) / shares
    fit = mark.marks[t].n_fit
    se = diff.std(ddof=1) * np.sqrt(1 / diff.size + 1 / fit)
    # Negative cash earns nothing where the discount assumes it grows at r: a bound on that bias.
    short = np.minimum(a.cash[:, :t + 1], 0.0)
    bias = np.abs(short * (np.exp(r / 12) - 1.0)).sum(axis=1).mean() / shares
    print(f"month {month}: value per share today {today.mean() / shares:.3f}, marked "
          f"{(today / shares - diff).mean():.3f}, difference {diff.mean():.3f} +- {se:.3f} "
          f"(short-cash bound {bias:.3f}) USD/share")
    assert abs(diff.mean()) < 3 * se + bias, (diff.mean(), se, bias)
    assert diff.var() < 0.5 * ((today - np.exp(-r * month / 12) * a.cash[:, t]) / shares).var()


def test_fair_value_standard_error_and_bridge(base_cube):
    a = base_cube.attrs
    assert a["fair_value_se"] < a["fair_value_plain_se"]
    parts = ["pv_mining", "pv_hpc", "pv_sga", "pv_taxes", "treasury_value", "cash0"]
    total = sum(base_cube[p] for p in parts) - base_cube["pv_notes"] + base_cube["pv_equity_raised"]
    np.testing.assert_allclose(total.values, base_cube["equity_value"].values, rtol=1e-9, atol=1.0)
    assert (base_cube["value_per_share"] >= 0).all()
    for name in ("fair_value_per_share", "fair_value_se"):
        assert np.isfinite(a[name])


def test_bull_base_bear_are_ordered_in_fair_value_and_in_the_12_month_forecast():
    fair, forecast = {}, {}
    for name in ("bull", "base", "bear"):
        c = simulator.simulate(name, paths=2048, seed=11, store_paths=0)
        fair[name] = (c.attrs["fair_value_per_share"], c.attrs["fair_value_se"])
        forecast[name] = float(c["forward_value_per_share"].sel(horizon=12).median())
    for hi, lo in (("bull", "base"), ("base", "bear")):
        gap = fair[hi][0] - fair[lo][0]
        assert gap > 3 * np.hypot(fair[hi][1], fair[lo][1]), (hi, lo, fair)
        assert forecast[hi] > forecast[lo], (hi, lo, forecast)


def test_moving_the_horizon_from_10_to_15_years_barely_moves_the_fair_value():
    """The terminal value continues the discounting and the rules of the explicit years: mining
    kept or abandoned by the same valuation, leases at their escalators, taxes year by year
    with the losses carried. (At 8,192 paths, seed 7: 4.68 +- 0.07 against 4.62 +- 0.14, -1.2%.)"""
    out = {}
    for months in (120, 180):
        data = _dump()
        data["simulation"]["horizon_months"] = months
        c = simulator.simulate(_validate(data), paths=4096, seed=7, store_paths=0)
        out[months] = (c.attrs["fair_value_per_share"], c.attrs["fair_value_se"])
    (v10, se10), (v15, se15) = out[120], out[180]
    assert abs(v15 - v10) < 0.02 * abs(v10) + 2 * np.hypot(se10, se15), out


def test_the_equity_mark_prices_limited_liability_on_new_paths():
    """The forward values' mark, E[max(equity, 0) | state], is unbiased on paths it was not
    fitted on: its mean equals the mean of each path's own floored equity at the forecast
    dates within 3 standard errors (fitting paths' error counted), and it is worth more than
    flooring the expected equity would say."""
    from simulator.engine import chain
    from simulator.rng import Draws
    from simulator.run import correlation, sampled_dists
    from simulator.run.plan import RunSpec, fit_mark
    from simulator.run.sampling import sample_inputs

    sc = load_scenario("base")
    dists = sampled_dists(sc)
    corr = correlation(sc, list(dists))
    n = 8192
    mark = fit_mark(RunSpec(sc, dists, corr, 91, "random", n, 0))
    inputs = sample_inputs(dists, method="random", seed=91, start=0, stop=n, n_total=n, corr=corr)
    draws = Draws(91, 0, n, sc.simulation.horizon_months)
    mi = chain.inputs_.market_inputs(sc, inputs, None)
    params, shocks = chain._company(sc, inputs, draws)
    mq, _ = chain.run_market(chain._pricing(mi, params.valuation.risk_free_rate), chain.inputs_.month_starts(sc), draws)
    r = np.broadcast_to(np.asarray(params.valuation.risk_free_rate, float), (n,))
    notes = chain._notes(params.capital.debt, 120, r + np.asarray(params.valuation.company_credit_spread))
    coupons = sum((x.interest[:, :120] for x in notes), np.zeros((1, 120)))
    ops = chain.operations(mq, params, shocks, note_interest=coupons)
    target = chain.operating_targets(ops, params.valuation)
    a, price, _ = chain._pass_a(mq, params, ops, notes, r)
    ahead = chain._notes_ahead(notes, n, 120)
    for m in (11, 23, 35):
        net = a.btc_held[:, m] * price[:, m] + a.cash[:, m] - ahead[:, m]
        state = {k: v[:, m] for k, v in ops.state.items()}
        state[chain.NET_FINANCIAL] = net
        fitted = mark.floored[m].predict(state)
        own = np.maximum(target[:, m] + net, 0.0)
        diff = own - fitted
        se = diff.std(ddof=1) * np.sqrt(1 / n + 1 / mark.floored[m].n_fit)
        assert abs(diff.mean()) < 3 * se, (m, diff.mean(), se)
        naive = np.maximum(mark.at(ops.state, m) + net, 0.0)
        assert fitted.mean() > naive.mean()


def test_what_a_run_skips_changes_nothing_it_keeps():
    # simulate_chunk reads the value today from the pricing run (series=False) and the series
    # and forward values from the real-world run (value=False): skipping the rest moves nothing.
    from simulator.engine import chain

    mark, params, shocks, mq = _pricing_paths({}, seed=31, n=1_024)
    whole = chain.run_company(mq, params, shocks, mark)
    value_only = chain.run_company(mq, params, shocks, mark, series=False)
    marks_only = chain.run_company(mq, params, shocks, mark, value=False)
    for name in ("value_per_share", "equity_value", "pv_mining", "pv_hpc", "pv_sga", "pv_taxes",
                 "treasury_value", "pv_notes", "pv_equity_raised", "diluted_shares", "shares_issued"):
        np.testing.assert_array_equal(getattr(value_only, name), getattr(whole, name), err_msg=name)
    for name in ("equity_value", "pv_mining", "pv_hpc", "pv_sga", "pv_taxes", "treasury_value",
                 "pv_notes", "pv_equity_raised"):
        assert np.isnan(getattr(marks_only, name)).all(), name  # real-world paths: no value today
    for name in ("cash", "btc_held", "free_cash_flow", "debt", "capex", "interest",
                 "shares_outstanding", "value_per_share_forward"):
        np.testing.assert_array_equal(getattr(marks_only, name), getattr(whole, name), err_msg=name)
    assert value_only.free_cash_flow is None and value_only.shares_outstanding is None
    assert np.isnan(value_only.value_per_share_forward).all()
    assert np.isfinite(whole.value_per_share).all() and np.isfinite(whole.value_per_share_forward).all()
