"""Conversion as a decision: tenant offers for a site, accepted or let lapse (issue 16, items 1, 4).

Pure array functions. A convertible site under ``conversion.decision: lsmc`` gets its first
tenant offer when the fixed rule would have signed (the same signing lottery and month, so the
fixed rule is the policy "accept the first offer"); an offer the owner lets lapse is followed by
another in each later month with a probability (:func:`offer_months`). An offer is worth the
lease's value net of its fit-out (:func:`lease_package`) at the offer's rate: the site's own
drawn rate, or that rate times the AI colocation lease-rate index (:func:`lease_index`) when
the site follows it. The owner accepts where that beats the site's mining continuation value
plus the value of waiting for a later offer, by least squares on pricing-measure paths
(``engine/exercise.py``, wired by ``chain``).

Decision grid. Column j = 0 .. T of the decision's arrays is the start of month j (the end of
month j - 1; column 0 is today). Regime 0 is "unsigned", regime 1 "signed"; switching at
column j starts the build in month j (``sign_month = j``). Month j - 1's mining flow is paid in
column j, so every value on this grid is the engine's discounted one month further, which
leaves each comparison, and so the decision, unchanged.

References
----------
domain.md "Sites"; domain-facts H-D rows (lease rates), H-C rows (fit-out), H-T rows (build);
Longstaff and Schwartz (2001); Brennan and Schwartz (1985).
"""

from __future__ import annotations

import numpy as np

from simulator import units

UNSIGNED, SIGNED = 0, 1


def _vec(x, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))


def lease_index(z, btc_shock, *, volatility, mean_reversion, correlation, long_run=1.0, level0=1.0):
    """The AI colocation lease-rate index, a mean-reverting lognormal process, [P, T].

    Parameters
    ----------
    z : ndarray [P, T]
        Standard normal draws of the index's own noise.
    btc_shock : ndarray [P, T]
        BTC's standardised monthly shocks, which the index's noise correlates with.
    volatility : float or ndarray [P]
        sigma of the log index [1/sqrt(yr)].
    mean_reversion : float or ndarray [P]
        kappa [1/yr] (> 0); the log index reverts toward ``log(long_run)``.
    correlation : float or ndarray [P]
        rho of the index's monthly shock with BTC's [1].
    long_run, level0 : float or ndarray [P]
        Long-run level and level today, as a multiple of today's rates [1].

    Returns
    -------
    ndarray [P, T]
        The index at each month-end [1].

    Notes
    -----
    Exact discretisation of an Ornstein-Uhlenbeck log index at Δt = 1/12:
    ``X_t = m + a (X_{t-1} - m) + s e_t`` with ``a = exp(-kappa Δt)``,
    ``s = sigma sqrt((1 - a^2) / (2 kappa))``, ``m = log(long_run)``, ``X_{-1} = log(level0)``
    and ``e_t = rho btc_t + sqrt(1 - rho^2) z_t``. So ``X_t ~ N(m + a^(t+1) (X_{-1} - m),
    s^2 (1 - a^(2(t+1))) / (1 - a^2))`` (:func:`lease_index_moments`). The index is not
    traded: it carries no risk premium, and is the same under both measures.
    """
    n, months = z.shape
    k = _vec(mean_reversion, n)
    a = np.exp(-k / units.MONTHS_PER_YEAR)
    s = _vec(volatility, n) * np.sqrt(-np.expm1(-2.0 * k / units.MONTHS_PER_YEAR) / (2.0 * k))
    rho = _vec(correlation, n)
    m = np.log(_vec(long_run, n))
    x = np.log(_vec(level0, n)) - m
    out = np.empty((n, months))
    side = np.sqrt(1.0 - rho * rho)
    for t in range(months):
        x = a * x + s * (rho * btc_shock[:, t] + side * z[:, t])
        out[:, t] = x
    out += m[:, None]
    return np.exp(out, out=out)


def lease_index_moments(months: int, *, volatility, mean_reversion, long_run=1.0, level0=1.0):
    """Mean and variance of :func:`lease_index` at each month-end, in closed form, [T] each."""
    t = np.arange(1, months + 1, dtype=np.float64)
    a = np.exp(-mean_reversion / units.MONTHS_PER_YEAR)
    s2 = volatility ** 2 * (1 - a * a) / (2.0 * mean_reversion)
    m = np.log(long_run)
    mu = m + a ** t * (np.log(level0) - m)
    v = s2 * (1 - a ** (2 * t)) / (1 - a * a)
    mean = np.exp(mu + v / 2)
    return mean, np.expm1(v) * mean * mean


def offer_months(first_offer, u_offer, reoffer_probability):
    """Where an offer stands at the start of each month (decision grid), [P, T + 1] bool.

    Parameters
    ----------
    first_offer : ndarray [P] int
        Month of the first offer (the fixed rule's signing month), -1: no offer ever.
    u_offer : ndarray [P, T]
        Uniform draws: after the first offer, month j >= 1 brings another where
        ``u_offer[:, j] < reoffer_probability``.
    reoffer_probability : float or ndarray [P]
        Chance a month brings a new offer once the first has lapsed [1/month].

    Returns
    -------
    offer : ndarray [P, T + 1] bool
        Column j: an offer to start building in month j (column T never has one).
    offered : ndarray [P, T + 1] float
        1 from the first offer on (a later offer can come), else 0: known at that date.
    """
    n, months = u_offer.shape
    j = np.arange(months + 1)[None, :]
    first = np.asarray(first_offer, np.int64).reshape(-1, 1)
    offered = (first >= 0) & (j >= first)
    offer = np.zeros((n, months + 1), bool)
    offer[:, :months] = (j[:, :months] == first) | (
        offered[:, :months] & (u_offer < _vec(reoffer_probability, n)[:, None]))
    offer[:, months] = False
    return offer, offered.astype(np.float64)


def lease_package(*, gross_mw, gross_to_it, noi_margin, escalator, fractions, offsets,
                  capex_usd_per_mw_it, rate):
    """What signing is worth at the start of the build, per USD/kW-month of rent, and the
    fit-out's value then: ``value = noi_per_rate x rate - capex``.

    Parameters
    ----------
    gross_mw, gross_to_it, noi_margin, escalator, capex_usd_per_mw_it : float or ndarray [P]
        As :class:`simulator.engine.params.SiteParams`.
    fractions, offsets : lists of ndarray [P]
        Each tranche's share of the IT MW [1] and its energisation, months after signing
        (>= 1) [month] (``sites.tranche_schedule``).
    rate : float or ndarray [P]
        Discount rate of the lease, r plus the tenant spread [1/yr].

    Returns
    -------
    noi_per_rate : ndarray [P]
        Value of the NOI at 1 USD/kW-month [USD per USD/kW-month].
    capex : ndarray [P]
        Value of the fit-out [USD].

    Notes
    -----
    With ``d = exp(-k / 12)``, the lease starting at the first energisation e (months after
    signing, the month counted from 0) and tranche k's share f_k from month o_k >= e:
    ``NOI = kW x margin x sum_k f_k sum_{m >= o_k} d^(m+1) (1 + g)^floor((m - e) / 12)``,
    ``sum_{m >= e} ... = d^(e+1) (1 - d^12) / ((1 - d) (1 - (1 + g) d^12))``, less the months
    e .. o_k - 1 of later tranches. The lease is valued as perpetual, as the engine's terminal
    value treats it (renewals and re-lets); defaults are priced by the tenant spread. Tranche
    k's fit-out is spread evenly over its months 0 .. o_k - 1:
    ``f_k x IT MW x capex x d (1 - d^o_k) / ((1 - d) o_k)``. Pre-tax and before project
    financing (debt at about the lease's own rate adds little value), as the fixed rule's
    decisions are.
    """
    n = offsets[0].shape[0]
    d = np.exp(-_vec(rate, n) / units.MONTHS_PER_YEAR)
    g = 1.0 + _vec(escalator, n)
    it_mw = _vec(gross_mw, n) / _vec(gross_to_it, n)
    e = np.min(offsets, axis=0)
    whole = d ** (e + 1) * (1 - d ** 12) / ((1 - d) * (1 - g * d ** 12))
    noi = np.zeros(n)
    capex = np.zeros(n)
    for f, o in zip(fractions, offsets):
        late = o - e  # months of the lease before this tranche is delivered
        before = np.zeros(n)
        for i in range(int(late.max(initial=0))):
            before += np.where(i < late, d ** (e + 1 + i) * g ** (i // 12), 0.0)
        noi += f * (whole - before)
        capex += f * d * -np.expm1(o * np.log(d)) / ((1 - d) * o)
    return (noi * it_mw * units.KW_PER_MW * _vec(noi_margin, n),
            capex * it_mw * _vec(capex_usd_per_mw_it, n))


def site_mining_flow(planned_mw, available_mw, gross_mw, cash_per_mw):
    """The fleet's cash flow that signing a mining site would take away, each month, [P, T].

    The site's MW leave the budget; machines move into spare energised MW where there are any,
    so mining loses only ``min(planned, available) - min(planned, available - site MW)``
    MW, each worth the fleet's average margin less site opex per allocated MW
    (``cash_per_mw``) [USD/MW-month] (the marginal machines are the least efficient, so this
    errs toward keeping the site mining). Relocation costs are left out.
    """
    lost = np.minimum(planned_mw, available_mw) - np.minimum(planned_mw, available_mw - gross_mw[:, None])
    return np.maximum(lost, 0.0) * cash_per_mw


def sign_months(regime) -> np.ndarray:
    """Month the build starts under a decided regime, -1 never, [P] int64.

    ``regime`` [P, T + 1] is ``exercise.apply_switching``'s on the decision grid: a switch
    decided at column j (the start of month j) shows as SIGNED from column j + 1.
    """
    signed = regime == SIGNED
    first = np.argmax(signed, axis=1) - 1
    return np.where(signed.any(axis=1), first, -1).astype(np.int64)


def _threshold(x, accepted):
    """The value below which offers are accepted that misclassifies fewest offers, or None
    when only one kind was seen."""
    if accepted.all() or not accepted.any():
        return None
    order = np.argsort(x, kind="stable")
    xs, acc = x[order], accepted[order]
    # cut after position i: accepted above it and declined at or below it are misclassified
    wrong = np.cumsum(~acc) + (acc.sum() - np.cumsum(acc))
    i = int(np.argmin(wrong))
    return float(xs[i] if i + 1 == xs.size else 0.5 * (xs[i] + xs[i + 1]))


def exercise_summary(sign_month, offer, btc_price, hashprice, index=None) -> dict:
    """When offers are accepted, year by year, on the paths given (pricing measure).

    Parameters
    ----------
    sign_month : ndarray [P] int
        Month the build starts, -1 never.
    offer : ndarray [P, T + 1] bool
        Offers on the decision grid (:func:`offer_months`).
    btc_price, hashprice : ndarray [P, T]
        Month-end BTC price [USD/BTC] and hashprice [USD/PH/day]; an offer at the start of
        month j is judged on month j - 1's (today's spot, and month 0's hashprice, for j = 0).
    index : ndarray [P, T + 1], optional
        The AI lease-rate index on the decision grid (column j: the start of month j) [1].

    Returns
    -------
    dict of lists, one entry per year
        ``signed_share``: paths signed by the year's end; ``sign_share``: paths signing in the
        year; ``declined_share``: paths letting an offer lapse in the year [1];
        ``boundary_btc`` and ``boundary_hashprice``: the BTC price [USD/BTC] and hashprice
        [USD/PH/day] below which the year's offers were accepted (the threshold that
        classifies accepted and lapsed offers best; None when every offer was accepted, or
        none); with ``index``, ``boundary_index``: the index level above which they were.
    """
    n, months = btc_price.shape
    j = np.arange(months)[None, :]
    taken = offer[:, :months] & (j == sign_month[:, None])
    lapsed = offer[:, :months] & ((sign_month[:, None] < 0) | (j < sign_month[:, None]))
    btc = np.empty((n, months))
    btc[:, 1:], btc[:, 0] = btc_price[:, :-1], btc_price[:, 0]
    hp = np.empty((n, months))
    hp[:, 1:], hp[:, 0] = hashprice[:, :-1], hashprice[:, 0]
    out: dict = {k: [] for k in ("signed_share", "sign_share", "declined_share",
                                 "boundary_btc", "boundary_hashprice")}
    for y0 in range(0, months, units.MONTHS_PER_YEAR):
        cols = slice(y0, min(y0 + units.MONTHS_PER_YEAR, months))
        out["signed_share"].append(float(np.mean((sign_month >= 0) & (sign_month < cols.stop))))
        out["sign_share"].append(float(np.mean(taken[:, cols].any(axis=1))))
        out["declined_share"].append(float(np.mean(lapsed[:, cols].any(axis=1))))
        seen = taken[:, cols] | lapsed[:, cols]
        acc = taken[:, cols][seen]
        out["boundary_btc"].append(_threshold(btc[:, cols][seen], acc))
        out["boundary_hashprice"].append(_threshold(hp[:, cols][seen], acc))
        if index is not None:
            above = _threshold(-index[:, cols][seen], acc)
            out.setdefault("boundary_index", []).append(None if above is None else -above)
    return out
