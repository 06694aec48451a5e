"""BTC price processes and fees (simulator/engine/market.py).

Statistical checks compare with closed forms and state their tolerance in standard errors.
"""

import calendar as pycal
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
