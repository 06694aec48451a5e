"""BTC price processes and transaction fees per block.

Every price process shares one signature::

    fn(s0, n_months, shocks, **params, log_returns_out=None, btc_shock_out=None)
        -> float64 [P, T]

Column ``t`` is the price at the END of month ``t`` (month 0 ends one month after the
valuation date). ``shocks`` maps the names listed in :data:`PRICE_SHOCKS` to ``[P, T]``
arrays (normal or uniform, as listed); every parameter may be a scalar or a per-path
array ``[P]`` (``regime`` takes per-state pairs ``(2,)`` or ``[P, 2]``). Time step
``dt = 1/12`` year. ``log_returns_out``, if given, is a float64 ``[P, T]`` array that
receives the monthly log returns ``ln(S_t / S_{t-1})`` (``S_{-1} = s0``) as the process
drew them: :func:`log_returns` of the prices up to rounding, without its log pass over
``[P, T]``.

``btc_shock_out``, if given, is a float64 ``[P, T]`` array that receives each month's log
return standardised by its ex-ante distribution, the one the process draws it from: mean 0
and sd 1, and independent of every other month's shock under gbm, merton and regime. Fees
(:func:`fees_per_block`) and the network noise correlate with this shock. It depends only on
the month's own draw, so a fee or hashrate shock never looks ahead along its path (a
per-path standardisation over the horizon would: a crash in year 5 would shrink every
other month's shock). Per process:

- ``gbm``, ``regime``: the month's normal shock ``z_t`` (for regime, given the month's state).
- ``merton``: ``(r_t - m) / s``, with ``m`` and ``s`` the analytic monthly mean and sd of the
  jump-diffusion log return (:func:`merton`).
- ``bootstrap``: ``(r - m) / sd`` of the resampled historical return, with ``m`` and ``sd``
  the mean and population sd of the history (a ``target_vol`` rescaling is affine in
  ``r - m``, so it leaves the shock unchanged; so does a pricing-measure ``shift``).

Pricing measure. :func:`risk_neutral` turns a process's parameters into its pricing-measure
("Q", risk-neutral) parameters for a continuously compounded risk-free rate ``r`` [1/yr]
(scalar or per path ``[P]``), for the same process function and the same shocks. Under the
pricing measure ``E[S_t] = S0 exp(r (t+1)/12)`` holds exactly at every month-end ``t``
for every process, ``bootstrap`` included: the months inside one resampled block are
consecutive history months, not independent draws, so the bootstrap's shift depends on the
month's position in its block (:func:`risk_neutral`, Notes). The Q run reuses the P run's
shocks (common random numbers): for ``gbm`` the Q path is the P path times
``exp((r - mu)(t+1)/12)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from simulator import units

__all__ = [
    "DT",
    "PRICE_PROCESSES",
    "PRICE_SHOCKS",
    "bootstrap",
    "fees_per_block",
    "gbm",
    "log_returns",
    "merton",
    "regime",
    "regime_states",
    "risk_neutral",
]

DT = 1.0 / units.MONTHS_PER_YEAR
"""Time step [years]."""


def _col(x) -> np.ndarray:
    """Scalar stays 0-d; a per-path vector ``[P]`` becomes ``[P, 1]`` to broadcast over time."""
    a = np.asarray(x, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def _shock(shocks: Mapping[str, np.ndarray], name: str, n_months: int) -> np.ndarray:
    z = np.asarray(shocks[name], dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < n_months:
        raise ValueError(f"shock {name!r} must be [P, >= {n_months}] (got shape {z.shape})")
    return z[:, :n_months]


def _standardize(out: np.ndarray | None, x: np.ndarray, mean, sd) -> None:
    """Write ``(x - mean) / sd`` into ``out`` if given (``mean``, ``sd``: scalar or ``[P, 1]``).

    Where ``sd`` is 0 the return is certain: it carries no shock, so the result is 0.
    """
    if out is None:
        return
    sd = np.asarray(sd, dtype=np.float64)
    np.subtract(x, mean, out=out)
    out *= np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)


def _to_price(s0, log_inc: np.ndarray, log_returns_out: np.ndarray | None) -> np.ndarray:
    """``S_t = s0 exp(sum_{k<=t} log_inc_k)``, computed in place in ``log_inc``."""
    if log_returns_out is not None:
        np.copyto(log_returns_out, log_inc)
    log_inc[:, :1] += np.log(_col(s0))
    np.cumsum(log_inc, axis=1, out=log_inc)
    return np.exp(log_inc, out=log_inc)


def _diffusion(z: np.ndarray, drift, sigma) -> np.ndarray:
    """Log increments ``drift dt + sigma sqrt(dt) z`` as a new ``[P, T]`` array."""
    inc = np.multiply(z, _col(sigma) * math.sqrt(DT))
    inc += _col(drift) * DT
    return inc


def gbm(s0, n_months: int, shocks: Mapping[str, np.ndarray], *, mu, sigma,
        log_returns_out: np.ndarray | None = None,
        btc_shock_out: np.ndarray | None = None) -> np.ndarray:
    """Geometric Brownian motion.

    Parameters
    ----------
    s0 : float or array_like [P]
        Price at the valuation date [USD/BTC].
    n_months : int
        Months T.
    shocks : mapping
        ``z``: standard normals ``[P, T]``.
    mu : float or array_like [P]
        Drift [1/yr]; the risk-free rate under the valuation measure (V-R1).
    sigma : float or array_like [P]
        Volatility [1/sqrt(yr)] (N-V1..N-V7).
    log_returns_out : numpy.ndarray, optional
        ``[P, T]``: receives the monthly log returns (module docstring).
    btc_shock_out : numpy.ndarray, optional
        ``[P, T]``: receives the standardised returns (module docstring), here ``z``.

    Returns
    -------
    numpy.ndarray
        float64 ``[P, T]`` month-end prices [USD/BTC].

    Notes
    -----
    ``ln S_t = ln S_{t-1} + (mu - sigma^2/2) dt + sigma sqrt(dt) z_t``, so
    ``E[S_t] = S0 exp(mu (t+1) dt)``.
    """
    z = _shock(shocks, "z", n_months)
    if btc_shock_out is not None:
        np.copyto(btc_shock_out, z)
    mu, sigma = _col(mu), _col(sigma)
    return _to_price(s0, _diffusion(z, mu - 0.5 * sigma**2, sigma), log_returns_out)


def merton(s0, n_months: int, shocks: Mapping[str, np.ndarray], *, mu, sigma,
           jump_intensity_per_year, jump_mean, jump_sd,
           log_returns_out: np.ndarray | None = None,
           btc_shock_out: np.ndarray | None = None) -> np.ndarray:
    """Merton jump diffusion with a compensated drift.

    Parameters
    ----------
    s0, n_months, mu, sigma, log_returns_out
        As in :func:`gbm`.
    shocks : mapping
        ``z`` (normal), ``u_jump`` (uniform, jump counts), ``z_jump`` (normal, jump sizes).
    jump_intensity_per_year : float or array_like [P]
        Poisson intensity lambda [1/yr] (assumption, domain-facts section 0).
    jump_mean, jump_sd : float or array_like [P]
        Mean and sd of one jump in log price.
    btc_shock_out : numpy.ndarray, optional
        ``[P, T]``: receives ``(r_t - m) / s`` (Notes; module docstring).

    Returns
    -------
    numpy.ndarray
        float64 ``[P, T]`` month-end prices [USD/BTC].

    Notes
    -----
    ``N_t ~ Poisson(lambda dt)`` by inverse CDF of ``u_jump``; the jump sum given N is
    ``N mu_J + sqrt(N) sd_J z_jump``. With ``k = exp(mu_J + sd_J^2/2) - 1`` the drift is
    ``mu - sigma^2/2 - lambda k``, so ``E[S_t] = S0 e^{mu t}`` and
    ``Var ln S_t = (sigma^2 + lambda (mu_J^2 + sd_J^2)) t`` (Merton 1976). One month's log
    return has mean ``m = (mu - sigma^2/2 - lambda k) dt + lambda dt mu_J`` and sd
    ``s = sqrt((sigma^2 + lambda (mu_J^2 + sd_J^2)) dt)``.
    """
    z = _shock(shocks, "z", n_months)
    lam, mu_j, sd_j = _col(jump_intensity_per_year), _col(jump_mean), _col(jump_sd)
    mu, sigma = _col(mu), _col(sigma)
    comp = lam * np.expm1(mu_j + 0.5 * sd_j**2)
    inc = _diffusion(z, mu - 0.5 * sigma**2 - comp, sigma)
    n = _poisson_ppf(_shock(shocks, "u_jump", n_months), lam * DT)
    jumps = np.sqrt(n)
    jumps *= _shock(shocks, "z_jump", n_months)
    jumps *= sd_j
    n *= mu_j
    inc += n
    inc += jumps
    lam_dt = lam * DT
    mean = (mu - 0.5 * sigma**2 - comp) * DT + lam_dt * mu_j
    sd = np.sqrt(sigma**2 * DT + lam_dt * (mu_j**2 + sd_j**2))
    _standardize(btc_shock_out, inc, mean, sd)
    return _to_price(s0, inc, log_returns_out)


def _poisson_ppf(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(lam) counts by inverse CDF, float64 like ``u``; ``lam`` scalar or ``[P, 1]``.

    Most months have no jump, so after the first comparison only the entries still above
    the running CDF are carried along.
    """
    lam_rows = np.broadcast_to(lam, (u.shape[0], 1))[:, 0]
    pmf0 = np.exp(-lam)
    n = np.greater(u, pmf0).astype(np.float64)
    flat = np.flatnonzero(n)
    uu = u.ravel()[flat]
    ll = lam_rows[flat // u.shape[1]]
    pmf = np.exp(-ll)
    cdf = pmf.copy()
    n_flat = n.reshape(-1)
    k = 1
    while flat.size and k < 10_000:
        pmf *= ll / k
        cdf += pmf
        more = uu > cdf
        n_flat[flat[more]] += 1.0
        # Stop once the pmf underflows: the CDF can no longer move past any u.
        keep = more & (pmf > 0)
        flat, uu, ll, pmf, cdf = flat[keep], uu[keep], ll[keep], pmf[keep], cdf[keep]
        k += 1
    return n


def regime_states(u_regime: np.ndarray, p_stay, initial_state=None) -> np.ndarray:
    """Two-state Markov chain of monthly regimes.

    Parameters
    ----------
    u_regime : numpy.ndarray
        Uniforms ``[P, T]``.
    p_stay : array_like
        ``(2,)`` or ``[P, 2]`` monthly probabilities of staying in state 0 and state 1.
    initial_state : int or array_like [P], optional
        State at the valuation date; month 0 follows one transition from it. If omitted,
        month 0 is drawn from the stationary distribution.

    Returns
    -------
    numpy.ndarray
        int8 ``[P, T]`` state (0 or 1) in each month.

    Notes
    -----
    Stationary probability of state 1: ``pi_1 = (1 - p_00) / (2 - p_00 - p_11)``.
    """
    p = np.asarray(p_stay, dtype=np.float64)
    p00, p11 = p[..., 0], p[..., 1]
    n_paths, n_months = u_regime.shape
    states = np.empty((n_paths, n_months), dtype=np.int8)
    if initial_state is None:
        denom = 2.0 - p00 - p11
        pi1 = np.divide(1.0 - p00, denom, out=np.full(np.shape(denom), 0.5), where=denom > 0)
        states[:, 0] = u_regime[:, 0] < pi1
        first = 1
    else:
        states[:, 0] = np.broadcast_to(np.asarray(initial_state, dtype=np.int8), (n_paths,))
        first = 0
    prev = states[:, 0].copy()
    for t in range(first, n_months):
        stay = u_regime[:, t] < np.where(prev == 1, p11, p00)
        prev = np.where(stay, prev, 1 - prev).astype(np.int8)
        states[:, t] = prev
    return states


def regime(s0, n_months: int, shocks: Mapping[str, np.ndarray], *, mu, sigma, p_stay,
           initial_state=None, log_returns_out: np.ndarray | None = None,
           btc_shock_out: np.ndarray | None = None) -> np.ndarray:
    """Regime-switching GBM: a two-state Markov chain picks each month's mu and sigma.

    Parameters
    ----------
    s0, n_months, log_returns_out
        As in :func:`gbm`.
    shocks : mapping
        ``z`` (normal, returns) and ``u_regime`` (uniform, transitions).
    mu, sigma : array_like
        ``(2,)`` or ``[P, 2]``: drift [1/yr] and volatility [1/sqrt(yr)] per state.
    p_stay, initial_state
        As in :func:`regime_states`.
    btc_shock_out : numpy.ndarray, optional
        ``[P, T]``: receives ``z``, the return standardised given the month's state.

    Returns
    -------
    numpy.ndarray
        float64 ``[P, T]`` month-end prices [USD/BTC].

    Notes
    -----
    ``ln S_t = ln S_{t-1} + (mu_s - sigma_s^2/2) dt + sigma_s sqrt(dt) z_t`` with
    ``s = s_t`` from :func:`regime_states`.
    """
    z = _shock(shocks, "z", n_months)
    if btc_shock_out is not None:
        np.copyto(btc_shock_out, z)
    state = regime_states(_shock(shocks, "u_regime", n_months), p_stay, initial_state) == 1
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    drift = mu - 0.5 * sigma**2
    d0, d1 = _pair(drift)
    s0_, s1_ = _pair(sigma * math.sqrt(DT))
    inc = np.where(state, s1_, s0_) * z
    inc += np.where(state, d1, d0) * DT
    return _to_price(s0, inc, log_returns_out)


def _pair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-state values of a ``(2,)`` or ``[P, 2]`` parameter, shaped to broadcast over time."""
    return (x[..., 0:1], x[..., 1:2]) if x.ndim == 2 else (x[0], x[1])


def bootstrap(s0, n_months: int, shocks: Mapping[str, np.ndarray], *, returns,
              block_months: int = 12, target_vol=None, shift=None,
              log_returns_out: np.ndarray | None = None,
              btc_shock_out: np.ndarray | None = None) -> np.ndarray:
    """Circular block bootstrap of historical monthly log returns.

    Parameters
    ----------
    s0, n_months, log_returns_out
        As in :func:`gbm`.
    shocks : mapping
        ``u_block``: uniforms ``[P, >= ceil(T / block_months)]`` choosing block starts.
    returns : array_like
        1-D historical monthly log returns (e.g. from ``simulator.history.read_close_csv``).
    block_months : int
        Consecutive months per block (keeps volatility clustering and momentum).
    target_vol : float or array_like [P], optional
        Annual volatility to rescale to [1/sqrt(yr)].
    shift : float or array_like (block_months,) or [P, block_months], optional
        Subtracted from the resampled monthly log returns after the ``target_vol``
        rescaling [1/month, log]. A scalar is subtracted from every month; an array from
        month ``t`` subtracts ``shift[..., t % block_months]``, the entry for the month's
        position in its block (per path with ``[P, block_months]``). :func:`risk_neutral`
        sets it for the pricing measure. ``log_returns_out`` includes it;
        ``btc_shock_out`` does not change with it.
    btc_shock_out : numpy.ndarray, optional
        ``[P, T]``: receives ``(r - m) / sd`` of each resampled return (Notes).

    Returns
    -------
    numpy.ndarray
        float64 ``[P, T]`` month-end prices [USD/BTC].

    Notes
    -----
    Block ``n`` (months ``n b ... n b + b - 1``, ``b = block_months``) starts at
    ``floor(u_n L)`` of the ``L`` returns and wraps around: month ``t = n b + j`` is
    history month ``(start_n + j) % L``. With
    ``target_vol``: ``r' = m + (r - m) target_vol / (sd sqrt(12))`` with ``m`` and ``sd``
    the mean and population sd of the history, so the bootstrap keeps the historical
    (real-world) mean: label such runs as what-ifs under the valuation measure, or use
    :func:`risk_neutral`. The standardised return ``(r - m) / sd`` is the same with or
    without ``target_vol`` and ``shift``.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 1:
        raise ValueError(f"returns must be a non-empty 1-D array (got shape {r.shape})")
    block_months = int(block_months)
    n_blocks = -(-n_months // block_months)
    u = _shock(shocks, "u_block", n_blocks)
    starts = np.minimum((u * r.size).astype(np.int64), r.size - 1)
    t = np.arange(n_months)
    idx = starts[:, t // block_months]
    idx += t % block_months
    idx %= r.size
    inc = r[idx]
    m, sd = _history_moments(r)
    if btc_shock_out is not None:
        z_hist = np.empty_like(r)
        _standardize(z_hist, r, m, sd)
        np.take(z_hist, idx, out=btc_shock_out)
    if target_vol is not None:
        if sd == 0:
            raise ValueError("cannot rescale returns with zero volatility to target_vol")
        inc -= m
        inc *= _col(target_vol) / (sd * math.sqrt(units.MONTHS_PER_YEAR))
        inc += m
    if shift is not None:
        c = np.asarray(shift, dtype=np.float64)
        if c.ndim == 0:
            inc -= c
        elif c.shape[-1] == block_months and (c.ndim == 1 or c.shape == (idx.shape[0],
                                                                          block_months)):
            inc -= c[..., t % block_months]
        else:
            raise ValueError(f"shift must be a scalar, ({block_months},) or "
                             f"[{idx.shape[0]}, {block_months}] (got shape {c.shape})")
    return _to_price(s0, inc, log_returns_out)


def _history_moments(r: np.ndarray) -> tuple[float, float]:
    """Mean and population sd of a 1-D history of monthly log returns.

    A constant history has no risk: its computed sd can be 1e-18 rather than 0 (0.01 is not
    exact in binary), which would blow rounding up into unit shocks, so it gets sd 0.
    """
    return float(r.mean()), (float(r.std()) if np.ptp(r) > 0 else 0.0)


PRICE_PROCESSES: dict[str, Callable[..., np.ndarray]] = {
    "gbm": gbm,
    "merton": merton,
    "regime": regime,
    "bootstrap": bootstrap,
}
"""Scenario ``btc_price.process`` string -> price process function."""

PRICE_SHOCKS: dict[str, tuple[tuple[str, str], ...]] = {
    "gbm": (("z", "normal"),),
    "merton": (("z", "normal"), ("u_jump", "uniform"), ("z_jump", "normal")),
    "regime": (("z", "normal"), ("u_regime", "uniform")),
    "bootstrap": (("u_block", "uniform"),),
}
"""Shocks each process needs: (name in ``shocks``, ``"normal"`` or ``"uniform"``), ``[P, T]``."""


def risk_neutral(kind: str, params: Mapping, rate) -> dict:
    """A price process's parameters under the pricing measure ("Q", risk-neutral).

    Parameters
    ----------
    kind : str
        Process name, a key of :data:`PRICE_PROCESSES`.
    params : mapping
        The keyword parameters the scenario passes to the process function (``**params``),
        e.g. ``mu`` and ``sigma`` for ``gbm``; not modified.
    rate : float or array_like [P]
        Risk-free rate r [1/yr], continuously compounded (V-R1).

    Returns
    -------
    dict
        New parameters for the same process function (a shallow copy of ``params`` with
        the pricing-measure entries replaced or added). Run with the same shocks as the
        real-world parameters, they give the pricing-measure paths of the same draws
        (common random numbers).

    Raises
    ------
    ValueError
        If ``kind`` is not a price process, ``rate`` is not a finite scalar or ``[P]``,
        a ``regime`` drift or ``bootstrap`` history has the wrong shape, or a
        ``bootstrap`` ``block_months`` is below 1.

    Notes
    -----
    - ``gbm``, ``merton``: ``mu = r``. The merton drift is already compensated for jumps,
      so ``E[S_t] = S0 exp(r (t+1)/12)``.
    - ``regime``: ``mu = (r, r)`` (``(2,)``, or ``[P, 2]`` if ``rate`` or ``mu`` is per
      path); each state keeps its volatility. Given the state path, each month's log return
      is normal with mean ``(r - sigma_s^2/2) dt`` and variance ``sigma_s^2 dt``, and ``z``
      is independent of the states, so ``E[S_t] = S0 exp(r (t+1)/12)`` exactly.
    - ``bootstrap``: a ``shift`` (see :func:`bootstrap`) that depends on the month's
      position ``j = t % b`` in its block (``b = block_months``)::

          c_j = ln(G_{j+1} / G_j) - r/12,    j = 0 .. b-1,

      ``(b,)``, or ``[P, b]`` if ``rate`` or ``target_vol`` is per path. Here
      ``G_k = mean_s exp(x_s + x_{s+1} + ... + x_{s+k-1})`` is the mean over all ``L``
      circular windows of the history (indices ``(s + i) % L``, wrapping as the blocks
      do) of the gross return of ``k`` consecutive months, ``G_0 = 1``, and ``x`` are the
      history's monthly log returns after the ``target_vol`` rescaling. Blocks start
      independently and uniformly, so months in different blocks are independent; but
      inside a block they are consecutive history months, dependent through the history's
      serial correlation and the sampling noise of its windowed variances, so the mean of
      a product of gross returns is not the product of their means. The first ``j + 1``
      months of a block are one window of the history, so for ``t = n b + j``::

          E[S_t] / S0 = (G_b e^{-(c_0 + ... + c_{b-1})})^n G_{j+1} e^{-(c_0 + ... + c_j)}
                      = e^{r n b / 12} e^{r (j+1)/12} = e^{r (t+1)/12}

      exactly, at every month and over any horizon (the sums telescope). A single shift
      for all months (the shifted history's mean gross return ``e^{r/12}``) gets only
      ``t = 0`` right: on 120 months of i.i.d. normal returns with ``b = 12`` it is off by
      4 % at ``t = 11`` and 53 % at ``t = 119``. With ``block_months=1`` the rule reduces
      to that single shift ``c_0 = ln G_1 - r/12``: every return is shifted so that the
      mean gross monthly return is ``e^{r/12}`` (the rule in domain.md).
    """
    if kind not in PRICE_PROCESSES:
        raise ValueError(f"unknown price process {kind!r} (expected one of "
                         f"{', '.join(PRICE_PROCESSES)})")
    r = np.array(rate, dtype=np.float64)  # a copy: the result shares nothing with ``rate``
    if r.ndim > 1 or not np.all(np.isfinite(r)):
        raise ValueError(f"rate must be a finite scalar or per-path [P] array (got {rate!r})")
    q = dict(params)
    if kind in ("gbm", "merton"):
        q["mu"] = float(r) if r.ndim == 0 else r
    elif kind == "regime":
        mu = np.asarray(params["mu"], dtype=np.float64)
        if mu.ndim not in (1, 2) or mu.shape[-1] != 2:
            raise ValueError(f"regime mu must be (2,) or [P, 2] (got shape {mu.shape})")
        shape = np.broadcast_shapes(mu.shape, r.shape + (2,))
        q["mu"] = np.broadcast_to(r[..., None], shape).copy()
    else:  # bootstrap
        hist = np.asarray(params["returns"], dtype=np.float64)
        if hist.ndim != 1 or hist.size < 1:
            raise ValueError(f"returns must be a non-empty 1-D array (got shape {hist.shape})")
        x = hist
        target_vol = params.get("target_vol")
        if target_vol is not None:
            m, sd = _history_moments(hist)
            if sd == 0:
                raise ValueError("cannot rescale returns with zero volatility to target_vol")
            x = m + (hist - m) * (_col(target_vol) / (sd * math.sqrt(units.MONTHS_PER_YEAR)))
        log_g = _log_window_mean_gross(x, int(params.get("block_months", 12)))
        q["shift"] = np.diff(log_g, axis=-1) - (r * DT)[..., None]
    return q


def _log_window_mean_gross(x: np.ndarray, block_months: int) -> np.ndarray:
    """``ln G_k`` for ``k = 0 .. block_months`` (:func:`risk_neutral`, Notes).

    ``x`` is ``(L,)`` or ``[P, L]`` (a history per path); the result is ``(b + 1,)`` or
    ``[P, b + 1]``. Window sums come from cumulative sums over the history repeated enough
    times to hold ``L + b`` months, so every circular window is a difference of two of them;
    each ``ln G_k`` is a log-mean-exp taken relative to its largest window sum. The loop
    runs over window lengths, each step vectorised over paths and window starts.
    """
    if block_months < 1:
        raise ValueError(f"block_months must be >= 1 (got {block_months})")
    n_hist = x.shape[-1]
    reps = -(-(n_hist + block_months) // n_hist)
    cs = np.zeros(x.shape[:-1] + (reps * n_hist + 1,))
    np.cumsum(np.tile(x, reps), axis=-1, out=cs[..., 1:])
    log_g = np.zeros(x.shape[:-1] + (block_months + 1,))
    for k in range(1, block_months + 1):
        w = cs[..., k:k + n_hist] - cs[..., :n_hist]
        top = w.max(axis=-1, keepdims=True)
        w -= top
        log_g[..., k] = np.log(np.mean(np.exp(w, out=w), axis=-1)) + top[..., 0]
    return log_g


def log_returns(s0, btc_price: np.ndarray) -> np.ndarray:
    """Monthly log returns ``ln(S_t / S_{t-1})`` with ``S_{-1} = s0``, float64 ``[P, T]``.

    A price process hands back the returns it drew for the cost of a copy through its
    ``log_returns_out`` (module docstring); this costs a log over ``[P, T]``.
    """
    log_s = np.log(btc_price)
    out = np.empty_like(log_s)
    np.subtract(log_s[:, 1:], log_s[:, :-1], out=out[:, 1:])
    np.subtract(log_s[:, :1], np.log(_col(s0)), out=out[:, :1])
    return out


def fees_per_block(median_btc, sigma, phi, n_months: int, z_fee: np.ndarray,
                   btc_shock: np.ndarray | None = None, rho_btc=0.0) -> np.ndarray:
    """Transaction fees per block: a stationary AR(1) in logs around a median.

    Parameters
    ----------
    median_btc : float or array_like [P]
        Median fees per block [BTC] (base 0.03, N-F1..N-F8).
    sigma : float or array_like [P]
        Stationary sd of ln fees.
    phi : float or array_like [P]
        Monthly AR(1) persistence in [0, 1).
    n_months : int
        Months T.
    z_fee : numpy.ndarray
        Standard normals ``[P, T]``.
    btc_shock : numpy.ndarray, optional
        ``[P, T]`` standardised BTC returns (a price process's ``btc_shock_out``, module
        docstring); needed if ``rho_btc`` != 0.
    rho_btc : float or array_like [P]
        Correlation of the fee innovation with the BTC shock.

    Returns
    -------
    numpy.ndarray
        float64 ``[P, T]`` fees per block [BTC].

    Notes
    -----
    ``x_t = phi x_{t-1} + sqrt(1 - phi^2) sigma e_t``, ``e_t = rho z_btc + sqrt(1-rho^2) z_fee``,
    ``fee_t = median exp(x_t)``, starting from ``x_{-1} = 0`` (today's fees at the median),
    so ``Var x_t = sigma^2 (1 - phi^(2(t+1)))`` approaches ``sigma^2``. ``z_btc`` is
    ``btc_shock``: month t's fees depend on BTC shocks up to month t only. No floors or
    clips.
    """
    rho, phi_c = _col(rho_btc), _col(phi)
    innovation_sd = np.sqrt(1.0 - phi_c**2) * _col(sigma)
    z = _shock({"z_fee": z_fee}, "z_fee", n_months)
    e = np.multiply(z, np.sqrt(1.0 - rho**2) * innovation_sd)
    if np.any(rho != 0):
        if btc_shock is None:
            raise ValueError("rho_btc != 0 needs btc_shock")
        e += _shock({"btc_shock": btc_shock}, "btc_shock", n_months) * (rho * innovation_sd)
    phi_v = phi_c[:, 0] if phi_c.ndim == 2 else phi_c
    tmp = np.empty(e.shape[0])
    for t in range(1, n_months):
        np.multiply(e[:, t - 1], phi_v, out=tmp)
        e[:, t] += tmp
    np.exp(e, out=e)
    e *= _col(median_btc)
    return e
