"""BTC price processes and fees (simulator/engine/market.py).

Statistical checks compare with closed forms and state their tolerance in standard errors.
"""

import calendar as pycal
import copy
import datetime as dt

import numpy as np
import pytest
from scipy import stats

from simulator.engine import market
from simulator.errors import InputDataError
from simulator.scenario.history import read_close_csv
from simulator.rng import Draws

S0 = 84_500.0


def _shocks(process, n, months, seed=1):
    draws = Draws(seed, 0, n, months)
    return {name: getattr(draws, kind)(f"btc.{name}") for name, kind in market.PRICE_SHOCKS[process]}


def test_registry_keys():
    assert list(market.PRICE_PROCESSES) == ["gbm", "merton", "regime", "bootstrap"]
    assert set(market.PRICE_SHOCKS) == set(market.PRICE_PROCESSES)


@pytest.mark.parametrize(("process", "params"), [
    ("gbm", dict(mu=0.04, sigma=0.45)),
    ("merton", dict(mu=0.04, sigma=0.45, jump_intensity_per_year=4, jump_mean=-0.03, jump_sd=0.08)),
    ("regime", dict(mu=(0.3, -0.4), sigma=(0.4, 0.7), p_stay=(0.9, 0.8))),
    ("bootstrap", dict(returns=np.linspace(-0.2, 0.25, 30), block_months=6)),
])
def test_every_process_runs_from_its_declared_shocks(process, params):
    s = market.PRICE_PROCESSES[process](S0, 24, _shocks(process, 50, 24), **params)
    assert s.shape == (50, 24) and s.dtype == np.float64 and np.all(s > 0)


@pytest.mark.parametrize(("process", "params"), [
    ("gbm", dict(mu=0.04, sigma=0.45)),
    ("merton", dict(mu=0.04, sigma=0.45, jump_intensity_per_year=4, jump_mean=-0.03, jump_sd=0.08)),
    ("regime", dict(mu=(0.3, -0.4), sigma=(0.4, 0.7), p_stay=(0.9, 0.8))),
    ("bootstrap", dict(returns=np.linspace(-0.2, 0.25, 30), block_months=6, target_vol=0.6)),
])
def test_log_returns_out_are_the_log_returns_of_the_prices(process, params):
    n, months = 200, 120
    s = market.PRICE_PROCESSES[process](S0, months, _shocks(process, n, months), **params)
    r = np.full((n, months), np.nan)
    again = market.PRICE_PROCESSES[process](S0, months, _shocks(process, n, months), **params,
                                            log_returns_out=r)
    np.testing.assert_array_equal(again, s)
    # Only rounding separates the drawn increments from differences of ln S, |ln S| < 16:
    # a few ulps of 16 (3.6e-15 each).
    np.testing.assert_allclose(r, market.log_returns(S0, s), rtol=0, atol=1e-13)


def test_gbm_moments_and_mean():
    n, months, mu, sigma = 40_000, 12, 0.04, 0.45
    s = market.gbm(S0, months, _shocks("gbm", n, months), mu=mu, sigma=sigma)
    r = market.log_returns(S0, s)
    m = r.size
    h = 1 / 12
    assert abs(r.mean() - (mu - sigma**2 / 2) * h) < 4 * sigma * np.sqrt(h / m)
    assert abs(r.var() - sigma**2 * h) < 4 * sigma**2 * h * np.sqrt(2 / m)
    st = s[:, -1]
    assert abs(st.mean() - S0 * np.exp(mu)) < 4 * st.std() / np.sqrt(n)


@pytest.mark.parametrize("strike", [60_000.0, 84_500.0, 110_000.0])
def test_gbm_call_price_matches_black_scholes(strike):
    n, r, sigma, t = 60_000, 0.04, 0.45, 1.0
    st = market.gbm(S0, 12, _shocks("gbm", n, 12, seed=2), mu=r, sigma=sigma)[:, -1]
    disc = np.exp(-r * t) * np.maximum(st - strike, 0.0)
    d1 = (np.log(S0 / strike) + (r + sigma**2 / 2) * t) / (sigma * np.sqrt(t))
    d2 = d1 - sigma * np.sqrt(t)
    bs = S0 * stats.norm.cdf(d1) - strike * np.exp(-r * t) * stats.norm.cdf(d2)
    assert abs(disc.mean() - bs) < 3 * disc.std() / np.sqrt(n)


def test_zero_vol_gives_deterministic_growth():
    months, mu = 120, 0.04
    expected = S0 * np.exp(mu * np.arange(1, months + 1) / 12)
    g = market.gbm(S0, months, _shocks("gbm", 3, months), mu=mu, sigma=0.0)
    np.testing.assert_allclose(g, np.broadcast_to(expected, (3, months)), rtol=1e-13)
    j = market.merton(S0, months, _shocks("merton", 3, months), mu=mu, sigma=0.0,
                      jump_intensity_per_year=0.0, jump_mean=-0.1, jump_sd=0.2)
    np.testing.assert_allclose(j, g, rtol=1e-13)
    rg = market.regime(S0, months, _shocks("regime", 3, months), mu=(mu, mu), sigma=(0.0, 0.0),
                       p_stay=(0.9, 0.9))
    np.testing.assert_allclose(rg, g, rtol=1e-13)
    b = market.bootstrap(S0, months, _shocks("bootstrap", 3, months), returns=np.full(20, mu / 12))
    np.testing.assert_allclose(b, g, rtol=1e-13)


def test_per_path_parameters_broadcast():
    shocks = _shocks("gbm", 2, 6)
    both = market.gbm(np.array([100.0, 200.0]), 6, shocks, mu=np.array([0.0, 0.1]), sigma=0.3)
    first = market.gbm(100.0, 6, {"z": shocks["z"][:1]}, mu=0.0, sigma=0.3)
    second = market.gbm(200.0, 6, {"z": shocks["z"][1:]}, mu=0.1, sigma=0.3)
    np.testing.assert_array_equal(both, np.vstack([first, second]))


MERTON = dict(mu=0.04, sigma=0.3, jump_intensity_per_year=6.0, jump_mean=-0.1, jump_sd=0.2)


def test_merton_mean_is_compensated_and_variance_includes_jumps():
    n, months = 60_000, 12
    s = market.merton(S0, months, _shocks("merton", n, months, seed=3), **MERTON)
    st = s[:, -1]
    assert abs(st.mean() - S0 * np.exp(MERTON["mu"])) < 4 * st.std() / np.sqrt(n)
    x = np.log(st)
    lam, mj, sj = 6.0, -0.1, 0.2
    var = (0.3**2 + lam * (mj**2 + sj**2)) * 1.0  # = 0.39 over one year
    m4 = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - var) < 4 * np.sqrt((m4 - x.var() ** 2) / n)


def test_poisson_inverse_cdf_matches_scipy():
    u = Draws(5, 0, 20_000, 12).uniform("u")
    lam = np.linspace(0.01, 3.0, 20_000)  # per path, up to 36/yr
    got = market._poisson_ppf(u, lam[:, None])
    expected = stats.poisson.ppf(u, lam[:, None])
    assert np.mean(got == expected) > 1 - 1e-4  # may differ only at rounding edges
    assert np.array_equal(market._poisson_ppf(u, 0.0), np.zeros_like(u))


def test_regime_time_share_matches_stationary_distribution():
    n, months, p00, p11 = 4_000, 120, 0.95, 0.8
    u = Draws(6, 0, n, months).uniform("u_regime")
    states = market.regime_states(u, (p00, p11))
    pi1 = (1 - p00) / (2 - p00 - p11)  # = 0.2
    share = states.mean(axis=1)  # paths are independent, so their spread gives the SE
    assert abs(share.mean() - pi1) < 4 * share.std() / np.sqrt(n)
    assert abs(states[:, 0].mean() - pi1) < 4 * np.sqrt(pi1 * (1 - pi1) / n)
    # From a given state, month 0 is one transition away.
    start1 = market.regime_states(u, (p00, p11), initial_state=1)
    assert abs(start1[:, 0].mean() - p11) < 4 * np.sqrt(p11 * (1 - p11) / n)


def test_regime_returns_follow_the_state():
    n, months = 4_000, 60
    shocks = _shocks("regime", n, months, seed=8)
    mu, sigma = np.array([0.3, -0.5]), np.array([0.3, 0.8])
    s = market.regime(S0, months, shocks, mu=mu, sigma=sigma, p_stay=(0.9, 0.7))
    r = market.log_returns(S0, s)
    states = market.regime_states(shocks["u_regime"], (0.9, 0.7))
    h = 1 / 12
    for k in (0, 1):
        rk = r[states == k]
        assert abs(rk.mean() - (mu[k] - sigma[k] ** 2 / 2) * h) < 4 * sigma[k] * np.sqrt(h / rk.size)
        assert abs(rk.var() - sigma[k] ** 2 * h) < 4 * sigma[k] ** 2 * h * np.sqrt(2 / rk.size)


def _write_monthly(path, returns, start=(2015, 1)):
    closes = 1_000.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    y, m = start
    rows = ["date,close"]
    for c in closes:
        rows.append(f"{y:04d}-{m:02d}-{pycal.monthrange(y, m)[1]:02d},{float(c)!r}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def history(tmp_path):
    returns = np.random.default_rng(0).normal(0.02, 0.15, 120)
    path = tmp_path / "btc.csv"
    _write_monthly(path, returns)
    return path, returns


def test_read_close_csv_recovers_monthly_returns(history):
    path, returns = history
    np.testing.assert_allclose(read_close_csv(path), returns, rtol=0, atol=1e-12)


def test_read_close_csv_resamples_daily_rows(tmp_path):
    rng = np.random.default_rng(1)
    day, last = dt.date(2023, 1, 1), {}
    rows = ["close,date,volume"]  # column order and extra columns do not matter
    price = 20_000.0
    while day <= dt.date(2024, 3, 15):
        price *= np.exp(rng.normal(0, 0.03))
        rows.append(f"{float(price)!r},{day.isoformat()},1")
        last[(day.year, day.month)] = price
        day += dt.timedelta(days=1)
    (tmp_path / "d.csv").write_text("\n".join(rows))
    month_end = np.array([last[k] for k in sorted(last)])
    np.testing.assert_allclose(read_close_csv(tmp_path / "d.csv"),
                               np.diff(np.log(month_end)), atol=1e-12)


def test_bootstrap_reproduces_history_mean_and_vol(history):
    path, _ = history
    r = read_close_csv(path)
    n, months = 4_000, 60
    s = market.bootstrap(S0, months, _shocks("bootstrap", n, months), returns=r, block_months=12)
    boot = market.log_returns(S0, s)
    path_mean = boot.mean(axis=1)
    assert abs(path_mean.mean() - r.mean()) < 4 * path_mean.std() / np.sqrt(n)
    path_var = ((boot - r.mean()) ** 2).mean(axis=1)
    assert abs(path_var.mean() - r.var()) < 4 * path_var.std() / np.sqrt(n)


def test_bootstrap_rescales_to_target_vol(history):
    path, _ = history
    r = read_close_csv(path)
    n, months, target = 4_000, 60, 0.60
    s = market.bootstrap(S0, months, _shocks("bootstrap", n, months), returns=r, block_months=3,
                         target_vol=target)
    boot = market.log_returns(S0, s)
    path_var = ((boot - r.mean()) ** 2).mean(axis=1)
    assert abs(path_var.mean() - target**2 / 12) < 4 * path_var.std() / np.sqrt(n)
    path_mean = boot.mean(axis=1)
    assert abs(path_mean.mean() - r.mean()) < 4 * path_mean.std() / np.sqrt(n)


@pytest.mark.parametrize(("text", "message"), [
    ("date,price\n2024-01-31,1\n", "{p}:1: missing column(s) close (got header 'date,price'; "
                                   "expected 'date,close')"),
    ("", "{p}:1: missing column(s) date, close (got header ''; expected 'date,close')"),
    ("date,close\n2024-01-31,1\n2024-13-01,2\n", "{p}:3: date: cannot parse '2024-13-01' "
                                                 "(expected YYYY-MM-DD)"),
    ("date,close\n2024-01-31,1\n,2\n", "{p}:3: date: cannot parse '' (expected YYYY-MM-DD)"),
    ("date,close\n2024-01-31,1\n2024-02-29,abc\n", "{p}:3: close: not a number (got 'abc')"),
    ("date,close\n2024-01-31,1\n2024-02-29,-5\n", "{p}:3: close on 2024-02-29: must be a positive, "
                                                  "finite number (got -5)"),
    ("date,close\n2024-01-31\n", "{p}:2: expected 2 columns (got 1)"),
    ("date,close\n" + "".join(f"2024-{m:02d}-28,{m}\n" for m in range(1, 13)),
     "{p}: only 12 month(s) of closes; need at least 13 (12 monthly returns)"),
    ("date,close\n2024-01-31,1\n2024-02-29,1\n2024-04-30,1\n",
     "{p}:4: no rows between 2024-02 and 2024-04; monthly closes must be consecutive"),
])
def test_bad_csv_raises_input_data_error(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputDataError) as err:
        read_close_csv(p)
    assert str(err.value) == message.format(p=p)


def test_missing_csv(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(InputDataError) as err:
        read_close_csv(p)
    assert str(err.value) == f"{p}: file not found (expected a CSV with columns date,close)"


def test_fees_ar1_moments():
    n, months, med, sigma, phi = 20_000, 36, 0.03, 0.5, 0.8
    f = market.fees_per_block(med, sigma, phi, months, Draws(4, 0, n, months).normal("fees.z"))
    x = np.log(f / med)
    for t in (0, 5, months - 1):
        var = sigma**2 * (1 - phi ** (2 * (t + 1)))
        assert abs(x[:, t].mean()) < 4 * np.sqrt(var / n)
        assert abs(x[:, t].var() - var) < 4 * var * np.sqrt(2 / n)
    lag1 = np.corrcoef(x[:, -1], x[:, -2])[0, 1]
    assert abs(lag1 - phi) < 4 * (1 - phi**2) / np.sqrt(n)
    np.testing.assert_array_equal(market.fees_per_block(med, 0.0, phi, 4, np.ones((2, 4))),
                                  np.full((2, 4), med))


def _fee_innovations(f, med, sigma, phi):
    """Unit fee innovations e_t from ln(f / med) = x_t = phi x_{t-1} + sqrt(1-phi^2) sigma e_t."""
    x = np.log(f / med)
    prev = np.concatenate([np.zeros((x.shape[0], 1)), x[:, :-1]], axis=1)  # x_{-1} = 0
    return (x - phi * prev) / (sigma * np.sqrt(1 - phi**2))


def test_fees_correlate_with_the_btc_shock():
    n, months, sigma, phi, rho = 20_000, 24, 0.4, 0.6, 0.6
    draws = Draws(9, 0, n, months)
    z_btc = draws.normal("btc.z")
    shock = np.empty((n, months))
    market.gbm(S0, months, {"z": z_btc}, mu=0.04, sigma=0.45, btc_shock_out=shock)
    f = market.fees_per_block(0.03, sigma, phi, months, draws.normal("fees.z"), shock, rho)
    innov = _fee_innovations(f, 0.03, sigma, phi)
    # Sample correlation of bivariate normals: SE (1 - rho^2) / sqrt(m). A shock standardised
    # per path over the 24 months instead (the old look-ahead) gives 0.58 here, 22 SE off.
    c = np.corrcoef(innov.ravel(), z_btc.ravel())[0, 1]
    assert abs(c - rho) < 4 * (1 - rho**2) / np.sqrt(innov.size)
    with pytest.raises(ValueError, match="rho_btc != 0 needs btc_shock"):
        market.fees_per_block(0.03, sigma, phi, months, np.zeros((2, months)), None, 0.3)


@pytest.mark.parametrize("t", [1, 12, 23])
def test_fees_do_not_look_ahead(t):
    # A crash in the BTC shocks from month t on must leave every earlier month's fees alone.
    n, months = 50, 24
    draws = Draws(10, 0, n, months)
    shock = draws.normal("btc.z")
    crashed = shock.copy()
    crashed[:, t:] = -6.0
    z_fee = draws.normal("fees.z")
    f = market.fees_per_block(0.03, 0.5, 0.8, months, z_fee, shock, 0.5)
    g = market.fees_per_block(0.03, 0.5, 0.8, months, z_fee, crashed, 0.5)
    np.testing.assert_array_equal(g[:, :t], f[:, :t])
    assert np.all(g[:, t] < f[:, t])


@pytest.mark.parametrize("process", ["gbm", "regime"])
def test_normal_processes_hand_back_their_normal_shock(process):
    params = (dict(mu=0.04, sigma=0.45) if process == "gbm" else
              dict(mu=(0.3, -0.4), sigma=(0.4, 0.7), p_stay=(0.9, 0.8)))
    n, months = 100, 36
    shocks = _shocks(process, n, months)
    out = np.full((n, months), np.nan)
    market.PRICE_PROCESSES[process](S0, months, shocks, **params, btc_shock_out=out)
    np.testing.assert_array_equal(out, shocks["z"])


def test_merton_shock_is_standardised_by_the_monthly_moments():
    # Per-path intensities: rare small jumps on the first half, frequent ones on the second.
    n, months = 40_000, 12
    lam = np.where(np.arange(n) < n // 2, 1.0, 12.0)
    params = {**MERTON, "jump_intensity_per_year": lam}
    shock, r = np.empty((n, months)), np.empty((n, months))
    market.merton(S0, months, _shocks("merton", n, months, seed=11), **params,
                  log_returns_out=r, btc_shock_out=shock)
    for half in (slice(0, n // 2), slice(n // 2, n)):
        z = shock[half].ravel()
        m = z.size
        assert abs(z.mean()) < 4 / np.sqrt(m)
        # SE of the sample variance: sqrt((m4 - var^2) / m), heavy-tailed with jumps.
        m4 = np.mean((z - z.mean()) ** 4)
        assert abs(z.var() - 1.0) < 4 * np.sqrt((m4 - z.var() ** 2) / m)
    # Affine in the return, path by path: the same jump-free shock maps to the same return.
    h, sigma = 1 / 12, MERTON["sigma"]
    lam_c, mj, sj = lam[:, None], MERTON["jump_mean"], MERTON["jump_sd"]
    k = np.expm1(mj + sj**2 / 2)
    mean = (MERTON["mu"] - sigma**2 / 2 - lam_c * k) * h + lam_c * h * mj
    sd = np.sqrt((sigma**2 + lam_c * (mj**2 + sj**2)) * h)
    np.testing.assert_allclose(shock * sd + mean, r, rtol=0, atol=1e-15)


def test_bootstrap_shock_uses_the_history_moments(history):
    path, _ = history
    r = read_close_csv(path)
    n, months = 300, 60
    shocks = _shocks("bootstrap", n, months)
    plain, rescaled, ret = np.empty((n, months)), np.empty((n, months)), np.empty((n, months))
    market.bootstrap(S0, months, shocks, returns=r, block_months=12, log_returns_out=ret,
                     btc_shock_out=plain)
    # Population moments of the CSV's returns, known before the simulation.
    np.testing.assert_allclose(plain, (ret - r.mean()) / r.std(), rtol=0, atol=1e-13)
    market.bootstrap(S0, months, shocks, returns=r, block_months=12, target_vol=0.9,
                     log_returns_out=ret, btc_shock_out=rescaled)
    np.testing.assert_array_equal(rescaled, plain)
    np.testing.assert_allclose(rescaled, (ret - r.mean()) / (0.9 / np.sqrt(12)), rtol=0,
                               atol=1e-13)
    # A constant history carries no shock, whether or not its value is exact in binary.
    for level in (0.25, 0.01):
        flat = np.empty((2, 6))
        market.bootstrap(S0, 6, {"u_block": np.zeros((2, 1))}, returns=np.full(20, level),
                         btc_shock_out=flat)
        np.testing.assert_array_equal(flat, 0.0)
        with pytest.raises(ValueError, match="zero volatility"):
            market.bootstrap(S0, 6, {"u_block": np.zeros((2, 1))}, returns=np.full(20, level),
                             target_vol=0.5)


# Pricing measure (risk_neutral). Moderate vols keep the 120-month lognormal's sample sd, and
# so the standard error, trustworthy at 20,000 paths (ln-variance <= 2 over ten years).
RATE = 0.04
Q_CASES = [
    ("gbm", dict(mu=0.3, sigma=0.45)),
    ("merton", dict(mu=0.3, sigma=0.3, jump_intensity_per_year=1.0, jump_mean=-0.1, jump_sd=0.15)),
    ("regime", dict(mu=(0.6, -0.5), sigma=(0.3, 0.6), p_stay=(0.9, 0.8))),
]
Q_MONTHS = (0, 11, 59, 119)


def _discounted_growth(s, rate, t):
    """exp(-r (t+1)/12) S_t / S0 per path: a martingale, mean 1, under the pricing measure."""
    return np.exp(-rate * (t + 1) / 12) * s[:, t] / S0


@pytest.mark.parametrize(("process", "params"), Q_CASES)
def test_risk_neutral_discounted_price_has_mean_one(process, params):
    n, months = 20_000, 120
    q = market.risk_neutral(process, params, RATE)
    s = market.PRICE_PROCESSES[process](S0, months, _shocks(process, n, months, seed=12), **q)
    for t in Q_MONTHS:
        d = _discounted_growth(s, RATE, t)
        assert abs(d.mean() - 1.0) < 3 * d.std() / np.sqrt(n), t
    # The real-world drifts above are far from r: the P paths fail the same check.
    p = market.PRICE_PROCESSES[process](S0, months, _shocks(process, n, months, seed=12), **params)
    d = _discounted_growth(p, RATE, 119)
    assert abs(d.mean() - 1.0) > 3 * d.std() / np.sqrt(n)


def _enumerated_mean_growth(returns, months, block, **q):
    """Exact E[S_t / S0], t < months, by running market.bootstrap once per block-start tuple.

    Blocks start independently and uniformly over the L history months, so the L^n_blocks
    equally likely start tuples, one path each, are the whole distribution: their plain mean
    is the expectation, with no sampling error and no use of the G_k algebra.
    """
    L, n_blocks = returns.size, -(-months // block)
    starts = np.stack(np.meshgrid(*[np.arange(L)] * n_blocks, indexing="ij"), -1)
    u = (starts.reshape(-1, n_blocks) + 0.5) / L  # floor(u L) = the start
    s = market.bootstrap(S0, months, {"u_block": u}, returns=returns, block_months=block, **q)
    return s.mean(axis=0) / S0


@pytest.mark.parametrize(("name", "months", "block", "target_vol"), [
    ("short", 30, 12, None),   # 20-month history, 2 full blocks and a partial one (20^3 paths)
    ("short", 30, 12, 0.8),
    ("short", 20, 7, None),    # 3 blocks, the last one partial (20^3 paths)
    ("short", 3, 1, None),     # 1-month blocks: the i.i.d. bootstrap (20^3 paths)
    ("fixture", 24, 12, None),  # the 120-month test history, 2 blocks (120^2 paths)
    ("fixture", 24, 12, 0.8),
])
def test_risk_neutral_bootstrap_is_an_exact_martingale(history, name, months, block, target_vol):
    if name == "fixture":
        r = read_close_csv(history[0])
    else:
        # Strong momentum (AR(1), phi 0.6) so consecutive months are far from independent.
        e = np.random.default_rng(3).normal(0.03, 0.2, 20)
        r = np.empty(20)
        r[0] = e[0]
        for k in range(1, 20):
            r[k] = 0.6 * r[k - 1] + e[k]
    q = market.risk_neutral("bootstrap", dict(returns=r, block_months=block,
                                              target_vol=target_vol), RATE)
    assert q["shift"].shape == (block,)
    growth = _enumerated_mean_growth(r, months, block, target_vol=target_vol,
                                     shift=q["shift"])
    t = np.arange(months)
    np.testing.assert_allclose(growth, np.exp(RATE * (t + 1) / 12), rtol=1e-10, atol=0)
    # The single shift of 1-month blocks (mean gross return e^(r/12)) is exact at t = 0 only.
    c1 = market.risk_neutral("bootstrap", dict(returns=r, block_months=1,
                                               target_vol=target_vol), RATE)["shift"]
    assert c1.shape == (1,)
    x = r.copy()
    if target_vol is not None:  # the rescaling of market.bootstrap, population sd
        x = r.mean() + (r - r.mean()) * target_vol / (r.std() * np.sqrt(12))
    assert abs(np.exp(x - c1[0]).mean() - np.exp(RATE / 12)) < 1e-14
    assert q["shift"][0] == pytest.approx(c1[0], rel=1e-12, abs=1e-15)
    if block > 1:
        flat = _enumerated_mean_growth(r, months, block, target_vol=target_vol, shift=c1[0])
        assert flat[0] == pytest.approx(np.exp(RATE / 12), rel=1e-12)
        assert np.max(np.abs(flat / np.exp(RATE * (t + 1) / 12) - 1)) > 1e-3


@pytest.mark.parametrize(("block", "target_vol"), [(12, None), (12, 0.8)])
def test_risk_neutral_bootstrap_discounted_price_has_mean_one(history, block, target_vol):
    path, _ = history
    r = read_close_csv(path)
    n, months = 20_000, 120
    shocks = _shocks("bootstrap", n, months, seed=12)
    params = dict(returns=r, block_months=block, target_vol=target_vol)
    s = market.bootstrap(S0, months, shocks, **market.risk_neutral("bootstrap", params, RATE))
    for t in Q_MONTHS:
        d = _discounted_growth(s, RATE, t)
        assert abs(d.mean() - 1.0) < 3 * d.std() / np.sqrt(n), t


def test_bootstrap_shift_moves_returns_not_shocks(history):
    path, _ = history
    r = read_close_csv(path)
    n, months, block = 100, 36, 12
    shocks = _shocks("bootstrap", n, months)
    pos = np.arange(months) % block
    z_p, z_q = np.empty((n, months)), np.empty((n, months))
    ret_p, ret_q = np.empty((n, months)), np.empty((n, months))
    market.bootstrap(S0, months, shocks, returns=r, target_vol=0.7, log_returns_out=ret_p,
                     btc_shock_out=z_p)
    per_path = np.linspace(-0.02, 0.03, n * block).reshape(n, block)
    for shift, subtracted in ((0.013, 0.013),                       # scalar: every month
                              (per_path[0], per_path[0][pos]),      # (b,): by block position
                              (per_path, per_path[:, pos])):        # [P, b]: per path too
        market.bootstrap(S0, months, shocks, returns=r, block_months=block, target_vol=0.7,
                         shift=shift, log_returns_out=ret_q, btc_shock_out=z_q)
        np.testing.assert_array_equal(z_q, z_p)
        np.testing.assert_allclose(ret_q, ret_p - subtracted, rtol=0, atol=1e-15)
    for bad in (np.zeros(block - 1), np.zeros((n, block + 1)), np.zeros((n + 1, block)),
                np.zeros((1, 1, block))):
        with pytest.raises(ValueError, match="shift must be"):
            market.bootstrap(S0, months, shocks, returns=r, block_months=block, shift=bad)


def test_risk_neutral_bootstrap_per_path_shift_is_rows_of_single_runs(history):
    r = read_close_csv(history[0])
    rates, vols, block = np.array([0.0, 0.04, 0.09]), np.array([0.5, 0.8, 1.1]), 12
    for kw, rate in ((dict(), rates), (dict(target_vol=vols), RATE),
                     (dict(target_vol=vols), rates)):
        q = market.risk_neutral("bootstrap", dict(returns=r, block_months=block, **kw), rate)
        assert q["shift"].shape == (3, block)
        for i in range(3):
            row = {k: v[i] for k, v in kw.items()}
            one = market.risk_neutral("bootstrap", dict(returns=r, block_months=block, **row),
                                      rate if np.ndim(rate) == 0 else rate[i])
            assert one["shift"].shape == (block,)
            np.testing.assert_allclose(q["shift"][i], one["shift"], rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize(("process", "params"), [
    *Q_CASES,
    ("regime", dict(mu=np.array([[0.6, -0.5], [0.2, 0.1]]), sigma=(0.3, 0.6), p_stay=(0.9, 0.8))),
    ("bootstrap", dict(returns=np.linspace(-0.2, 0.25, 30), block_months=6)),
    ("bootstrap", dict(returns=np.linspace(-0.2, 0.25, 30), block_months=6,
                       target_vol=np.array([0.5, 0.9]))),
])
def test_risk_neutral_per_path_rate_broadcasts(process, params):
    rates = np.array([0.01, 0.07])
    months = 24
    shocks = _shocks(process, 2, months)
    both = market.PRICE_PROCESSES[process](S0, months, shocks,
                                           **market.risk_neutral(process, params, rates))
    for i in range(2):
        row = {k: (v[i] if isinstance(v, np.ndarray) and v.shape[:1] == (2,) else v)
               for k, v in params.items()}
        row_shocks = {k: v[i:i + 1] for k, v in shocks.items()}
        one = market.PRICE_PROCESSES[process](S0, months, row_shocks,
                                              **market.risk_neutral(process, row, rates[i]))
        np.testing.assert_allclose(both[i:i + 1], one, rtol=1e-15, atol=0)
    # Different rates give different paths: the per-path rate is not collapsed to one value.
    same = market.PRICE_PROCESSES[process](S0, months, shocks,
                                           **market.risk_neutral(process, params, 0.01))
    np.testing.assert_allclose(same[0], both[0], rtol=1e-15, atol=0)
    assert not np.allclose(same[1], both[1], rtol=1e-6)


def test_risk_neutral_gbm_is_the_real_world_path_times_the_drift_gap():
    n, months, mu, sigma = 500, 120, np.linspace(-0.2, 0.6, 500), 0.45
    shocks = _shocks("gbm", n, months)
    p = market.gbm(S0, months, shocks, mu=mu, sigma=sigma)
    q = market.gbm(S0, months, shocks, **market.risk_neutral("gbm", dict(mu=mu, sigma=sigma), RATE))
    gap = np.exp((RATE - mu[:, None]) * np.arange(1, months + 1) / 12)
    # Same shocks, so only the drift differs; the cumulative sum of 120 log increments of size
    # < 20 rounds to a few hundred ulps at most (|ln S| < 20, ulp 3.6e-15).
    np.testing.assert_allclose(q, p * gap, rtol=2e-12, atol=0)


@pytest.mark.parametrize(("process", "params"), [
    *Q_CASES,
    ("bootstrap", dict(returns=np.linspace(-0.2, 0.25, 30), block_months=6,
                       target_vol=np.array([0.5, 0.9]))),
])
def test_risk_neutral_leaves_its_input_alone(process, params):
    before = copy.deepcopy(params)
    arrays = {k: np.array(v, copy=True) for k, v in params.items() if v is not None}
    q = market.risk_neutral(process, params, np.array([0.01, 0.07]))
    assert q is not params
    assert params.keys() == before.keys()
    for k, v in arrays.items():
        np.testing.assert_array_equal(np.asarray(params[k]), v)
    changed = "shift" if process == "bootstrap" else "mu"
    assert changed in q and not (changed in params and q[changed] is params[changed])
    if process != "bootstrap":
        assert q.keys() == params.keys()
    else:
        assert q["returns"] is params["returns"]  # the history itself is shared, not shifted


def test_risk_neutral_rejects_unknown_kind_and_bad_rate():
    with pytest.raises(ValueError, match="unknown price process 'heston'"):
        market.risk_neutral("heston", dict(mu=0.3, sigma=0.4), RATE)
    with pytest.raises(ValueError, match="rate must be"):
        market.risk_neutral("gbm", dict(mu=0.3, sigma=0.4), np.ones((2, 2)))
    with pytest.raises(ValueError, match="rate must be"):
        market.risk_neutral("gbm", dict(mu=0.3, sigma=0.4), np.nan)
    with pytest.raises(ValueError, match="zero volatility"):
        market.risk_neutral("bootstrap", dict(returns=np.full(20, 0.01), target_vol=0.5), RATE)
