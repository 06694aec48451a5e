"""Valuation: discounting, growing perpetuities, continuation values and the control variate.

Rates are continuously compounded [1/yr]. Months are indexed ``t = 0 .. T-1`` and cash flows
fall at month end, so month ``t`` is discounted by ``exp(-k (t + 1) / 12)`` and the horizon
(end of month ``T - 1``) by ``exp(-k T / 12)``. Each stream has its own rate ``k``: the
risk-free rate r for mining, overheads, taxes and the treasury (their risk is in the pricing
measure's BTC path), r plus the tenant's credit spread for lease cash flows and their project
debt, r plus the company's credit spread for its notes (domain.md, "Valuation").

References
----------
domain.md "Valuation: two questions, two measures, one mark"; domain-facts row V-R1.
Gordon, M. J. (1959), "Dividends, earnings and stock prices".
"""

from __future__ import annotations

import numpy as np

from simulator import units


def _col(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def _vec(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def rate_col(x) -> np.ndarray:
    """A rate or growth (scalar or ``[P]``) as a ``[1, 1]`` column when every path has the same
    one (a scalar broadcast over the paths, say), else ``[P, 1]``: its factors over the years
    are then computed once, not once per path. The numbers are the same either way."""
    a = _col(x)
    return a[:1] if a.shape[0] > 1 and bool((a == a[0]).all()) else a


def discount_factors(rate, months: int) -> np.ndarray:
    """Month-end discount factors ``exp(-k (t + 1) / 12)``, shape [P or 1, months] [1]."""
    return np.exp(-_col(rate) * (np.arange(1, months + 1)[None, :] / units.MONTHS_PER_YEAR))


def at_horizon(rate, months: int) -> np.ndarray:
    """``exp(-k T / 12)``, the factor of the end of month ``T - 1`` [1], [P or 1]."""
    return np.exp(-_vec(rate) * (months / units.MONTHS_PER_YEAR))


def present_value(x: np.ndarray, rate) -> np.ndarray:
    """``sum_t x[p, t] exp(-k (t + 1) / 12)`` per path [USD], [P].

    Parameters
    ----------
    x : ndarray [P or 1, T]
        Month-end cash flows [USD/month].
    rate : float or ndarray [P]
        Continuously compounded annual rate k [1/yr].

    Notes
    -----
    Horner's rule, ``v (x_0 + v (x_1 + ... + v x_{T-1}))`` with ``v = exp(-k / 12)``: a month
    loop over ``[P]`` accumulators, with no ``[P, T]`` discount factors.
    """
    step = np.exp(-np.asarray(rate, np.float64) / units.MONTHS_PER_YEAR)
    pv = np.zeros(np.broadcast_shapes(x.shape[:1], np.shape(step)))
    for t in range(x.shape[1] - 1, -1, -1):
        pv += x[:, t]
        pv *= step
    return pv


def continuation(x: np.ndarray, rate, terminal=0.0) -> np.ndarray:
    """Value at the end of each month of the flows after it [USD], [P, T].

    Parameters
    ----------
    x : ndarray [P or 1, T]
        Month-end cash flows [USD/month].
    rate : float or ndarray [P]
        Continuously compounded annual rate k [1/yr].
    terminal : float or ndarray [P]
        Value at the horizon (end of month ``T - 1``) of everything after it [USD].

    Returns
    -------
    ndarray [P, T]
        ``W_t = sum_{s > t} x_s exp(-k (s - t) / 12) + terminal exp(-k (T - 1 - t) / 12)``;
        ``W_{T-1}`` is the terminal value.

    Notes
    -----
    ``W_{t} = v (x_{t+1} + W_{t+1})`` backwards from ``W_{T-1} = terminal``, ``v = exp(-k/12)``.
    ``present_value(x) + terminal exp(-k T / 12) = v (x_0 + W_0)``.
    """
    n = np.broadcast_shapes(x.shape[:1], np.shape(_vec(rate)), np.shape(_vec(terminal)))[0]
    months = x.shape[1]
    step = np.broadcast_to(np.exp(-_vec(rate) / units.MONTHS_PER_YEAR), (n,))
    out = np.empty((n, months))
    out[:, -1] = np.broadcast_to(_vec(terminal), (n,))
    for t in range(months - 2, -1, -1):
        np.add(x[:, t + 1], out[:, t + 1], out=out[:, t])
        out[:, t] *= step
    return out


def gordon(first_year, rate, growth) -> np.ndarray:
    """Value of a growing perpetuity of annual flows, one year before the first [USD], [P].

    Parameters
    ----------
    first_year : float or ndarray [P]
        The flow of the first year [USD/yr], received at its end.
    rate, growth : float or ndarray [P]
        Continuously compounded discount rate k and growth g [1/yr], ``g < k``.

    Notes
    -----
    ``sum_{y >= 1} F e^{g (y - 1)} e^{-k y} = F e^{-k} / (1 - e^{g - k})`` (Gordon 1959).
    """
    k, g = _vec(rate), _vec(growth)
    return _vec(first_year) * np.exp(-k) / -np.expm1(g - k)


HALVING_INTERVAL_BLOCKS = 210_000
"""Blocks between halvings (the protocol's schedule)."""


def mining_years(revenue_year, cost_year, *, subsidy_share, years_to_halving, growth,
                 years: int = 150) -> np.ndarray:
    """Mining margin in each year after the horizon, halvings included [USD/yr], [P, Y].

    Parameters
    ----------
    revenue_year, cost_year : ndarray [P]
        The fleet's full-run revenue and its power cost over the last 12 months [USD/yr].
    subsidy_share : ndarray [P]
        Subsidy / (subsidy + fees) per block at the horizon [1].
    years_to_halving : ndarray [P]
        Years from the horizon to the next halving [yr].
    growth : float or ndarray [P]
        Growth of revenue per year apart from halvings [1/yr].
    years : int
        Years Y projected.

    Notes
    -----
    ``max(R e^{g y} h_y - C, 0)`` with ``h_y = s 2^{-n_y} + (1 - s)`` the block reward relative
    to the horizon's after the ``n_y`` halvings (every four years from ``years_to_halving``)
    before the middle of year y: the fleet curtails a year whose revenue does not cover its
    power, as it curtails month by month inside the horizon. A perpetuity on the last year's
    margin would miss the next halving, which may fall a month after the horizon.
    """
    y = np.arange(1, years + 1, dtype=np.float64)[None, :]
    # In place on two [P, Y] buffers: a projection runs 150 years on every path.
    reward = np.subtract(y - 0.5, _vec(years_to_halving)[:, None])
    reward /= 4.0
    np.floor(reward, out=reward)
    reward += 1.0
    np.maximum(reward, 0.0, out=reward)  # halvings n_y
    np.negative(reward, out=reward)
    np.exp2(reward, out=reward)
    share = _vec(subsidy_share)[:, None]
    reward *= share
    reward += 1.0 - share  # h_y
    margin = np.multiply(_vec(revenue_year)[:, None], np.exp(rate_col(growth) * y))
    margin *= reward
    margin -= _vec(cost_year)[:, None]
    return np.maximum(margin, 0.0, out=margin)


def annual_value(flows: np.ndarray, rate) -> np.ndarray:
    """``sum_y flows[:, y - 1] exp(-k y)``: annual flows at year ends, valued a year before
    the first [USD], [P]. Truncation after Y years leaves out ``exp(-Y (k - g))`` of a flow
    growing at g: 2.5e-3 of it for 150 years at a gap of 4%/yr (SG&A at the risk-free rate),
    2.4e-2 at 2.5%/yr (the bull case's lease taxes: a 1% tenant spread over a 2.5% escalator)."""
    y = np.arange(1, flows.shape[1] + 1, dtype=np.float64)[None, :]
    return (flows * np.exp(-rate_col(rate) * y)).sum(axis=1)


def terminal_run_rate(x: np.ndarray, growth) -> np.ndarray:
    """The year after the horizon by the last 12 months grown one year [USD/yr], [P].

    A grid shorter than a year is annualised: ``12 / T`` times its sum.
    """
    w = units.MONTHS_PER_YEAR
    return x[:, -w:].sum(axis=1) * (w / min(w, x.shape[1])) * np.exp(_vec(growth))


def free_cash_flow(mining_margin, site_opex, hpc_noi, sga, capex, interest, tax=0.0):
    """Free cash flow to equity before BTC sales and raises [USD/month].

    ``FCF = margin - site opex + NOI - SG&A - capex - interest - tax``. The margin counts
    every coin mined at that month's price (selling it only turns that value into cash;
    see ``capital.cash_loop``).
    """
    fcf = mining_margin - site_opex
    fcf += hpc_noi
    fcf -= sga
    fcf -= capex
    fcf -= interest
    fcf -= tax
    return fcf


def controlled_mean(values: np.ndarray, controls: np.ndarray) -> tuple[float, float, float, float]:
    """Mean of ``values`` with a control variate, and its standard error.

    Parameters
    ----------
    values : ndarray [P]
        Per-path values (NaN where a path failed: left out).
    controls : ndarray [P, K]
        Per-path controls with known mean zero under the same measure.

    Returns
    -------
    mean, se : float
        ``mean(v) - b' mean(c)`` with ``b`` the least-squares slope of v on c, and its
        standard error ``sd(residual) / sqrt(n)`` [units of ``values``].
    plain_mean, plain_se : float
        The sample mean and ``sd / sqrt(n)``, without the control.

    Notes
    -----
    Glasserman (2004), section 4.1. The slope is estimated on the same paths, which biases
    the estimate by O(1/n), negligible at the path counts of a run. The discounted BTC price
    is a martingale under the pricing measure, so ``exp(-r t) S_t / S_0 - 1`` has mean zero
    there whatever the process; value per share moves with BTC through the treasury and
    mining, so most of its variance goes with it.
    """
    ok = np.isfinite(values) & np.all(np.isfinite(controls), axis=1)
    v, c = values[ok], controls[ok]
    n = v.size
    if n < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    plain, plain_se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))
    if n <= c.shape[1] + 2:
        return plain, plain_se, plain, plain_se
    cc = c - c.mean(axis=0)
    vc = v - plain
    gram = cc.T @ cc
    if not np.all(np.isfinite(gram)) or np.linalg.matrix_rank(gram) < c.shape[1]:
        return plain, plain_se, plain, plain_se
    beta = np.linalg.solve(gram, cc.T @ vc)
    mean = plain - float(c.mean(axis=0) @ beta)
    resid = vc - cc @ beta
    se = float(np.sqrt(resid @ resid / (n - 1 - c.shape[1]) / n))
    return mean, se, plain, plain_se
