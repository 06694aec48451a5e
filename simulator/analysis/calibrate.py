"""Fit the scenario's BTC, fee and hashrate processes to history (``minersim calibrate``).

Numbers in, numbers out: month-end observations arrive as arrays (the CSV is read by
:func:`simulator.scenario.history.read_monthly_series`), and every fit returns a frozen
:class:`Fit` whose parameter names are the scenario's keys, in the scenario's units (annual
rates, annualised volatilities, monthly probabilities). The same conventions as the engine
(``engine/market.py``, ``engine/network.py``): ``dt = 1/12`` year and

- ``gbm``: ``r_t = (mu - sigma^2/2) dt + sigma sqrt(dt) z_t``;
- ``merton``: the same plus ``N_t ~ Poisson(lambda dt)`` jumps of ``Normal(mu_J, sd_J)``,
  the drift compensated by ``lambda (exp(mu_J + sd_J^2/2) - 1)``;
- ``regime``: a two-state chain, ``mu_s`` and ``sigma_s`` per state;
- fees: ``ln fee_t = ln median + x_t``, ``x_t = phi x_{t-1} + e_t``, stationary sd ``log_sd``;
- hashrate: ``ln H_t - ln H_{t-1} = g dt + vol sqrt(dt) z_t``, ``growth_year1 = e^g - 1``.

Every drift fitted here is a real-world (P) figure: the pricing measure replaces it by the
risk-free rate whatever the fit says.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special, stats

DT = 1.0 / 12
BTC_MODELS = ("gbm", "merton", "regime", "bootstrap")
MERTON_MAX_JUMPS = 40
"""Poisson terms kept in the Merton density: the tail beyond is below 1e-15 even at the
largest intensity a scenario allows (100 jumps a year, 8.3 a month)."""


@dataclass(frozen=True)
class Estimate:
    """A fitted value and its standard error (NaN where the data give none)."""

    value: float
    se: float = math.nan


@dataclass(frozen=True)
class Fit:
    """One fitted process."""

    model: str
    params: dict[str, Estimate]
    """Scenario key -> estimate, in the scenario's units (regime pairs as ``drift[0]`` ...)."""
    loglik: float = math.nan
    """Log-likelihood of the monthly observations [nats]; NaN for the bootstrap."""
    n_params: int = 0
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    """Model-specific numbers for the report: ``mixture``, one month's log return as a normal
    mixture (weights, means, sds), and durations, probabilities, block lengths."""


@dataclass(frozen=True)
class BtcCalibration:
    dates: np.ndarray
    """datetime64[D] ``[n]``: the month-end date each return ends on."""
    returns: np.ndarray
    """float64 ``[n]`` monthly log returns."""
    fits: dict[str, Fit]
    comparison: list[dict[str, Any]]


@dataclass(frozen=True)
class SeriesCalibration:
    dates: np.ndarray
    """datetime64[D] ``[n]`` month-end dates."""
    values: np.ndarray
    """float64 ``[n]`` the monthly series in logs (ln fees [ln BTC], ln hashrate [ln EH/s])."""
    fit: Fit


# ---------------------------------------------------------------- BTC price

def calibrate_btc(dates: np.ndarray, closes: np.ndarray,
                  models: Sequence[str] = BTC_MODELS) -> BtcCalibration:
    """Fit the BTC processes ``models`` to month-end ``closes`` [USD/BTC] dated ``dates``.

    GBM is always fitted: it is the nested model the others are compared against.
    """
    unknown = set(models) - set(BTC_MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)} (expected {BTC_MODELS})")
    r = np.diff(np.log(np.asarray(closes, dtype=np.float64)))
    fitters = {"gbm": fit_gbm, "merton": fit_merton, "regime": fit_regime,
               "bootstrap": fit_bootstrap}
    fits = {m: fitters[m](r) for m in BTC_MODELS if m in models or m == "gbm"}
    return BtcCalibration(np.asarray(dates)[1:], r, fits, compare(fits, r.size))


def fit_gbm(r: np.ndarray) -> Fit:
    """Maximum likelihood GBM on monthly log returns ``r``.

    Notes
    -----
    The MLE of the monthly variance is the population variance (ddof = 0), so
    ``volatility = sqrt(12) std(r, ddof=0)``: the sample's realised volatility. With
    ``m`` the mean monthly return and ``n`` returns (``n / 12`` years), the log drift ``12 m``
    has SE ``sigma / sqrt(years)``; ``drift = 12 m + sigma^2 / 2`` adds
    ``Var(sigma^2 / 2) = sigma^4 / (2 n)``; ``SE(sigma) = sigma / sqrt(2 n)``.
    """
    r = np.asarray(r, dtype=np.float64)
    n, m, v = r.size, float(r.mean()), float(r.var())
    sigma = float(np.std(r) * math.sqrt(12))
    years = n * DT
    log_drift = Estimate(12 * m, sigma / math.sqrt(years))
    drift = Estimate(12 * m + sigma**2 / 2, math.sqrt(sigma**2 / years + sigma**4 / (2 * n)))
    loglik = -0.5 * n * (math.log(2 * math.pi * v) + 1) if v > 0 else math.inf
    return Fit("gbm", {"drift": drift, "volatility": Estimate(sigma, sigma / math.sqrt(2 * n))},
               loglik, 2, extra={"log_drift": log_drift, "years": years,
                                 "mixture": ([1.0], [m], [math.sqrt(v)])})


def merton_logpdf(r: np.ndarray, mu: float, sigma: float, lam: float, jump_mean: float,
                  jump_sd: float, max_jumps: int = MERTON_MAX_JUMPS) -> np.ndarray:
    """Log density of one month's log return under the compensated Merton process.

    Notes
    -----
    ``f(r) = sum_n Pois(n; lambda dt) phi(r; a + n mu_J, sigma^2 dt + n sd_J^2)`` with
    ``a = (mu - sigma^2/2 - lambda k) dt``, ``k = exp(mu_J + sd_J^2/2) - 1`` (Merton 1976;
    the engine draws the jump sum the same way). The sum stops at ``max_jumps``, or earlier
    where the Poisson weights left are below 1e-17 of the total (``lambda dt + 12
    sqrt(lambda dt) + 12`` terms), which changes no log-density by more than rounding.
    """
    lam_dt = lam * DT
    if lam_dt > 0:
        top = min(max_jumps, int(lam_dt + 12 * math.sqrt(lam_dt) + 12))
        n = _JUMPS[:top + 1]
        log_w = n * math.log(lam_dt) - lam_dt - _LOG_FACTORIAL[:top + 1]
    else:
        n, log_w = _JUMPS[:1], np.zeros((1, 1))
    k = math.expm1(jump_mean + 0.5 * jump_sd**2)
    a = (mu - 0.5 * sigma**2 - lam * k) * DT
    var = sigma**2 * DT + n * jump_sd**2
    comp = log_w - 0.5 * np.log(2 * math.pi * var) - 0.5 * (np.asarray(r) - a - n * jump_mean)**2 / var
    top_comp = comp.max(axis=0)
    return top_comp + np.log(np.exp(comp - top_comp).sum(axis=0))


_JUMPS = np.arange(MERTON_MAX_JUMPS + 1, dtype=np.float64)[:, None]
_LOG_FACTORIAL = special.gammaln(_JUMPS + 1)


_MERTON_KEYS = ("drift", "volatility", "jump_intensity_per_year", "jump_mean", "jump_sd")
# Optimised over (mu, ln sigma, ln lambda, mu_J, ln sd_J) inside these bounds: sigma above 1 %
# keeps the likelihood bounded (a jump mixture's no-jump term spikes as sigma -> 0).
_MERTON_BOUNDS = ((-20, 20), (math.log(0.01), math.log(5)), (math.log(0.01), math.log(100)),
                  (-4.99, 4.99), (math.log(0.002), math.log(5)))


def fit_merton(r: np.ndarray) -> Fit:
    """Maximum likelihood Merton jump diffusion on monthly log returns ``r``.

    L-BFGS-B from a few starts (few or many, small or large jumps, down or up), the best
    kept; standard errors from the inverse of a central finite-difference Hessian of the
    negative log-likelihood in the scenario's parameters (``statsmodels`` ``approx_hess3``).
    A parameter pinned at a bound has no SE.
    """
    from statsmodels.tools.numdiff import approx_hess3

    r = np.asarray(r, dtype=np.float64)
    nll = lambda th: -float(np.sum(merton_logpdf(r, *th)))  # noqa: E731
    nll_u = lambda u: nll(_merton_natural(u))  # noqa: E731
    sd = float(r.std())
    robust = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    sigma0 = max(min(robust, sd) * math.sqrt(12), 0.02)
    mu0 = 12 * float(r.mean()) + sigma0**2 / 2
    best = None
    for lam0, mj0, sj0 in ((1.0, -2 * sd, sd), (1.0, 2 * sd, sd), (4.0, -sd, 0.5 * sd),
                           (4.0, sd, 0.5 * sd), (12.0, 0.0, 0.5 * sd)):
        u0 = np.array([mu0, math.log(sigma0), math.log(lam0), mj0, math.log(max(sj0, 0.01))])
        u0 = np.clip(u0, [b[0] for b in _MERTON_BOUNDS], [b[1] for b in _MERTON_BOUNDS])
        with np.errstate(over="ignore", divide="ignore"):  # far-out trial steps; rejected by the search
            res = optimize.minimize(nll_u, u0, method="L-BFGS-B", bounds=_MERTON_BOUNDS)
        if best is None or res.fun < best.fun:
            best = res
    theta = _merton_natural(best.x)
    notes = [] if best.success else [f"the optimiser stopped early ({best.message})"]
    at_bound = [abs(u - lo) < 1e-6 or abs(u - hi) < 1e-6
                for u, (lo, hi) in zip(best.x, _MERTON_BOUNDS, strict=True)]
    se = _inverse_hessian_se(approx_hess3(theta, nll), at_bound)
    if any(at_bound):
        notes.append("at a bound of the search: " + ", ".join(
            k for k, b in zip(_MERTON_KEYS, at_bound, strict=True) if b) + " (no SE)")
    if np.isnan(se).any() and not any(at_bound):
        notes.append("the likelihood is flat or not concave at the optimum: some SEs are missing")
    params = {k: Estimate(float(v), float(s)) for k, v, s in zip(_MERTON_KEYS, theta, se, strict=True)}
    mu, sigma, lam, mj, sj = map(float, theta)
    n = np.arange(MERTON_MAX_JUMPS + 1, dtype=np.float64)
    a = (mu - 0.5 * sigma**2 - lam * math.expm1(mj + 0.5 * sj**2)) * DT
    mixture = (stats.poisson.pmf(n, lam * DT), a + n * mj, np.sqrt(sigma**2 * DT + n * sj**2))
    return Fit("merton", params, -float(best.fun), 5, tuple(notes), extra={"mixture": mixture})


def _merton_natural(u: np.ndarray) -> np.ndarray:
    return np.array([u[0], math.exp(u[1]), math.exp(u[2]), u[3], math.exp(u[4])])


def _inverse_hessian_se(hess: np.ndarray, drop: Sequence[bool] = ()) -> np.ndarray:
    """Square roots of the diagonal of ``hess``'s inverse over the parameters not dropped.

    NaN where the (reduced) Hessian is not positive definite: the data do not pin the
    parameters there, and a number would mislead.
    """
    keep = np.flatnonzero(~np.asarray(drop, dtype=bool)) if len(drop) else np.arange(len(hess))
    se = np.full(len(hess), np.nan)
    h = hess[np.ix_(keep, keep)]
    try:
        np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return se
    se[keep] = np.sqrt(np.diag(np.linalg.inv(h)))
    return se


MIN_VARIANCE_RATIO = 0.04
"""Smallest ratio of the two regimes' variances (volatilities within a factor 5) a regime
fit may end on; below it one state has collapsed onto a handful of months."""


def fit_regime(r: np.ndarray) -> Fit:
    """Two-state Markov-switching model (Hamilton 1989) of monthly log returns ``r``.

    ``statsmodels`` ``MarkovRegression(r, k_regimes=2, switching_variance=True)``, fitted
    from its own start and three more (calm/wild splits of the variance), the best
    likelihood kept among the fits whose state variances are within a factor
    1 / :data:`MIN_VARIANCE_RATIO` of each other: a mixture's likelihood grows without bound
    as one state's variance shrinks onto a few months (Hathaway 1985 bounds the ratio the
    same way). State 0 is the calmer one (lower volatility). Per state
    ``volatility = sqrt(12 sigma2_s)`` and ``drift = 12 const_s + 6 sigma2_s``; SEs by the
    delta method from statsmodels' covariance of its parameters (numerical Hessian).
    """
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    r = np.asarray(r, dtype=np.float64)
    m, v = float(r.mean()), float(r.var())
    model = MarkovRegression(r, k_regimes=2, switching_variance=True)
    starts = [None] + [np.array([p00, 1 - p11, m, m, lo * v, hi * v])
                       for p00, p11, lo, hi in ((0.95, 0.8, 0.5, 3.0), (0.9, 0.9, 0.3, 2.0),
                                                (0.97, 0.6, 0.7, 5.0))]
    fits = []
    for start in starts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit(start_params=start, disp=False, em_iter=50)  # EM is cheap; BFGS finishes
        if np.isfinite(res.llf):
            s2 = np.asarray(res.params)[4:6]
            fits.append((min(s2) >= MIN_VARIANCE_RATIO * max(s2), res.llf, res,
                         [f"statsmodels: {w.message}" for w in caught]))
    proper, _, best, best_notes = max(fits, key=lambda f: f[:2])
    if not proper:
        best_notes.append("every start ended with one state's variance near zero (a state that "
                          "fits a few months exactly): no two-regime structure in this window")
    p_, cov = np.asarray(best.params), np.asarray(best.cov_params())
    calm, wild = (0, 1) if p_[4] <= p_[5] else (1, 0)
    # Rows: drift[s], volatility[s], stay[s] for s = calm, wild; columns: statsmodels' params
    # p[0->0], p[1->0], const[0], const[1], sigma2[0], sigma2[1].
    jac, values = np.zeros((6, 6)), np.zeros(6)
    for row, s in enumerate((calm, wild)):
        c, s2 = p_[2 + s], p_[4 + s]
        values[row], jac[row, 2 + s], jac[row, 4 + s] = 12 * c + 6 * s2, 12, 6
        values[2 + row] = math.sqrt(12 * s2)
        jac[2 + row, 4 + s] = math.sqrt(12) / (2 * math.sqrt(s2))
        values[4 + row] = p_[0] if s == 0 else 1 - p_[1]
        jac[4 + row, s] = 1 if s == 0 else -1
    var = np.diag(jac @ cov @ jac.T)
    se = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
    names = ("drift[0]", "drift[1]", "volatility[0]", "volatility[1]",
             "stay_probability_monthly[0]", "stay_probability_monthly[1]")
    params = {k: Estimate(float(x), float(s)) for k, x, s in zip(names, values, se, strict=True)}
    stay = values[4:]
    smoothed = np.asarray(best.smoothed_marginal_probabilities)[:, [calm, wild]]
    pi_wild = (1 - stay[0]) / (2 - stay[0] - stay[1]) if stay.sum() < 2 else 0.5
    return Fit("regime", params, float(best.llf), 6, tuple(dict.fromkeys(best_notes)),
               extra={"durations_months": 1 / np.maximum(1 - stay, 1e-12),
                      "smoothed_wild": smoothed[:, 1], "stationary_wild": float(pi_wild),
                      "mixture": ([1 - pi_wild, pi_wild], p_[2:4][[calm, wild]],
                                  np.sqrt(p_[4:6][[calm, wild]]))})


def fit_bootstrap(r: np.ndarray) -> Fit:
    """Block length for the engine's circular block bootstrap by the Politis-White rule.

    ``arch.bootstrap.optimal_block_length`` (Politis and White 2004, with the correction of
    Patton, Politis and White 2009): its ``circular`` column, because the engine's bootstrap
    is circular with a fixed block length, rounded up to whole months within the scenario's
    1 to 60. The rule also run on squared returns (volatility clustering) is reported.
    """
    from arch.bootstrap import optimal_block_length

    r = np.asarray(r, dtype=np.float64)
    table = optimal_block_length(r)
    table_sq = optimal_block_length(r**2)
    circular = float(table["circular"].iloc[0])
    months = int(min(max(math.ceil(circular), 1), 60))
    return Fit("bootstrap", {"block_months": Estimate(float(months))},
               extra={"circular": circular, "stationary": float(table["stationary"].iloc[0]),
                      "circular_squared": float(table_sq["circular"].iloc[0])})


def compare(fits: dict[str, Fit], n: int) -> list[dict[str, Any]]:
    """AIC, BIC and likelihood ratios against GBM of the fits that have a likelihood.

    The LR p-values are nominal chi-square ones: under GBM the Merton intensity sits on its
    boundary (the true law is a chi-bar-square mixture) and the regime model's transition
    probabilities are not identified (Davies' problem), so both are only a guide.
    """
    rows, base = [], fits.get("gbm")
    for name, f in fits.items():
        row: dict[str, Any] = {"model": name, "k": f.n_params, "loglik": f.loglik,
                               "aic": math.nan, "bic": math.nan, "lr": math.nan, "df": 0,
                               "p": math.nan}
        if np.isfinite(f.loglik):
            row["aic"] = 2 * f.n_params - 2 * f.loglik
            row["bic"] = math.log(n) * f.n_params - 2 * f.loglik
            if base is not None and name != "gbm":
                row["lr"] = max(2 * (f.loglik - base.loglik), 0.0)
                row["df"] = f.n_params - base.n_params
                row["p"] = float(stats.chi2.sf(row["lr"], row["df"]))
        rows.append(row)
    best = min((r["aic"] for r in rows if np.isfinite(r["aic"])), default=math.nan)
    for row in rows:
        row["delta_aic"] = row["aic"] - best
    return rows


def model_cdf(fit: Fit, x: np.ndarray) -> np.ndarray:
    """CDF of one month's log return under ``fit`` (the regime model's stationary mixture)."""
    w, m, sd = (np.asarray(a, dtype=np.float64)[:, None] for a in fit.extra["mixture"])
    return np.sum(w * stats.norm.cdf(np.asarray(x, dtype=np.float64), m, sd), axis=0)


def model_pdf(fit: Fit, x: np.ndarray) -> np.ndarray:
    """Density of one month's log return under ``fit`` [1 / unit of log return]."""
    w, m, sd = (np.asarray(a, dtype=np.float64)[:, None] for a in fit.extra["mixture"])
    return np.sum(w * stats.norm.pdf(np.asarray(x, dtype=np.float64), m, sd), axis=0)


def qq(fit: Fit, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(model quantiles, sorted returns) at plotting positions ``(i - 1/2) / n``.

    Quantiles invert the model CDF on a fine grid by linear interpolation.
    """
    xs = np.sort(np.asarray(r, dtype=np.float64))
    spread = 6 * max(float(xs.std()), 1e-12)
    grid = np.linspace(xs[0] - spread, xs[-1] + spread, 8001)
    cdf = np.maximum.accumulate(model_cdf(fit, grid))
    p = (np.arange(xs.size) + 0.5) / xs.size
    return np.interp(p, cdf, grid), xs


def acf(x: np.ndarray, lags: int) -> np.ndarray:
    """Sample autocorrelations at lags ``1..lags`` (the biased, always-PSD estimator)."""
    d = np.asarray(x, dtype=np.float64) - np.mean(x)
    denom = float(d @ d)
    return np.array([float(d[k:] @ d[:-k]) / denom if denom > 0 else 0.0
                     for k in range(1, lags + 1)])


# ---------------------------------------------------------------- fees and hashrate

def calibrate_fees(dates: np.ndarray, fees: np.ndarray) -> SeriesCalibration:
    """AR(1) in the log of monthly fees per block [BTC], by exact maximum likelihood.

    ``statsmodels`` ``ARIMA(order=(1, 0, 0))`` with a constant: its ``const`` is the mean
    ``mu`` of ``ln fee``, ``ar.L1`` is ``phi`` and ``sigma2`` the innovation variance. Then
    ``median_btc_per_block = e^mu``, ``log_sd = sqrt(sigma2 / (1 - phi^2))`` (the stationary
    sd, as the engine uses it) and ``persistence_monthly = phi``, SEs by the delta method.
    """
    from statsmodels.tsa.arima.model import ARIMA

    y = np.log(np.asarray(fees, dtype=np.float64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ARIMA(y, order=(1, 0, 0), trend="c").fit()
    (mu, phi, s2), cov = map(float, res.params), np.asarray(res.cov_params())
    notes = [f"statsmodels: {w.message}" for w in caught]
    stationary = abs(phi) < 1
    log_sd = math.sqrt(s2 / (1 - phi**2)) if stationary else math.nan
    grad = np.array([0.0, math.sqrt(s2) * phi * (1 - phi**2) ** -1.5,
                     0.5 / math.sqrt(s2 * (1 - phi**2))]) if stationary else np.zeros(3)
    se_log_sd = math.sqrt(max(float(grad @ cov @ grad), 0.0)) if stationary else math.nan
    se = [float(x) for x in np.sqrt(np.clip(np.diag(cov), 0, None))]
    params = {"median_btc_per_block": Estimate(math.exp(mu), math.exp(mu) * se[0]),
              "log_sd": Estimate(log_sd, se_log_sd),
              "persistence_monthly": Estimate(phi, se[1])}
    fit = Fit("fees", params, float(res.llf), 3, tuple(dict.fromkeys(notes)),
              extra={"mean_log": float(mu), "innovation_sd": math.sqrt(s2)})
    return SeriesCalibration(np.asarray(dates), y, fit)


def calibrate_hashrate(dates: np.ndarray, hashrate: np.ndarray) -> SeriesCalibration:
    """Log growth per year and volatility of the network hashrate [EH/s].

    ``d_t = ln H_t - ln H_{t-1}``: log growth ``g = 12 mean(d)``, ``volatility =
    sqrt(12) std(d, ddof=0)`` (maximum likelihood of a random walk with drift). Monthly
    growth is autocorrelated (hardware cycles), so the SE of ``g`` is Newey-West (Bartlett
    kernel, ``floor(4 (n/100)^(2/9))`` lags); the i.i.d. one, ``volatility / sqrt(years)``,
    is reported beside it. ``growth_year1 = e^g - 1`` (the engine's convention).
    """
    import statsmodels.api as sm

    y = np.log(np.asarray(hashrate, dtype=np.float64))
    d = np.diff(y)
    n = d.size
    vol = float(np.std(d) * math.sqrt(12))
    lags = int(4 * (n / 100) ** (2 / 9))
    ols = sm.OLS(d, np.ones(n)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    g, se_g = 12 * float(ols.params[0]), 12 * float(ols.bse[0])
    params = {"growth_year1": Estimate(math.expm1(g), math.exp(g) * se_g),
              "volatility": Estimate(vol, vol / math.sqrt(2 * n))}
    fit = Fit("hashrate", params, n_params=2,
              extra={"log_growth": Estimate(g, se_g), "iid_se": vol / math.sqrt(n * DT),
                     "hac_lags": lags, "increments": d})
    return SeriesCalibration(np.asarray(dates), y, fit)
