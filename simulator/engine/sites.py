"""Sites: MW moving from mining to leased IT load, rent, NOI, capex, tenant default, re-let.

Each site is run with :func:`site_paths` (a loop over months, arrays over paths); the lease
state of every path is one of MINING, BUILD, LEASED, DOWN (after a tenant default) or
REVERTED (back to mining for good). Project financing is :func:`project_debt`.

References
----------
domain.md "Sites"; domain-facts rows H-D16 (rent), H-M1..H-M5 (margin), H-C1..H-C5 (capex),
H-T rows (build time), H-F1..H-F3 (project debt), C-S1..C-S5 (Sandersville).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import units

MINING, BUILD, LEASED, DOWN, REVERTED = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class SiteResult:
    """One site's monthly paths, ``[P, T]`` unless noted."""

    off_mw: np.ndarray  #: gross MW taken out of mining (build, lease, downtime) [MW]
    hpc_mw_it: np.ndarray  #: energised IT MW held for HPC (leased or in downtime) [MW]
    rent: np.ndarray  #: HPC revenue [USD/month]
    noi: np.ndarray  #: rent x margin [USD/month]
    capex: np.ndarray  #: fit-out capex [USD/month]
    state: np.ndarray  #: lease state codes (MINING .. REVERTED) [1], int8
    energise_month: np.ndarray  #: first rent month, -1 if the site never signs [P], int64
    build_end_month: np.ndarray  #: last tranche energised, -1 if never signs [P], int64


def _vec(x, n: int, dtype=np.float64) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=dtype), (n,))


def tranche_schedule(sign_month, build_months, tranches, n: int):
    """Energisation month and IT-MW fraction of every tranche.

    Parameters
    ----------
    sign_month : ndarray [P] int
        Build start (tenant signs), -1 if never.
    build_months : ndarray [P]
        Months from build start to energisation when there are no tranches [month].
    tranches : sequence of (fraction, months_after_build_start)
        Share of the site's IT MW [1] and its delivery offset [month] (scalar or [P]).
        Empty means one tranche ``(1.0, build_months)``.

    Returns
    -------
    fractions : list of ndarray [P]
    offsets : list of ndarray [P] int, each >= 1 month
    """
    if not tranches:
        tranches = ((1.0, build_months),)
    fractions = [_vec(f, n) for f, _ in tranches]
    offsets = [np.maximum(np.rint(_vec(m, n)).astype(np.int64), 1) for _, m in tranches]
    return fractions, offsets


def fitout_capex(sign_month, it_mw, capex_usd_per_mw_it, fractions, offsets, months: int):
    """Fit-out capex by month [USD/month], each tranche spread evenly over its own build.

    Notes
    -----
    Tranche k costs ``f_k x IT MW x capex_per_MW_IT`` paid in equal parts in months
    ``sign .. sign + offset_k - 1``.
    """
    n = sign_month.shape[0]
    t = np.arange(months)[None, :]
    start = sign_month[:, None]
    capex = np.zeros((n, months))
    for f, off in zip(fractions, offsets):
        per_month = f * it_mw * capex_usd_per_mw_it / off
        building = (start >= 0) & (t >= start) & (t < start + off[:, None])
        capex += building * per_month[:, None]
    return capex


def site_paths(*, gross_mw, gross_to_it, sign_month, build_months, tranches=(),
               lease_rate_usd_per_kw_month, escalator, term_years, noi_margin,
               capex_usd_per_mw_it, default_hazard_monthly=0.0, downtime_months=0,
               relet_rate_usd_per_kw_month=None, renewal_probability=0.0,
               u_default, u_renewal) -> SiteResult:
    """Simulate one site's conversion and lease on every path.

    Parameters
    ----------
    gross_mw : float or ndarray [P]
        Gross site MW that leave mining at build start [MW].
    gross_to_it : float or ndarray [P]
        Gross MW per MW of critical IT load [1]; IT MW = gross / ratio.
    sign_month : ndarray [P] int
        Month the tenant signs and the build starts, -1 = never signs [month].
    build_months : ndarray [P]
        Build duration to energisation [month].
    tranches : sequence of (fraction, months_after_build_start), optional
    lease_rate_usd_per_kw_month, escalator, term_years : float or ndarray [P]
        Initial rent [USD/kW-month]; annual step-up [1/yr]; lease term [yr].
    noi_margin : float or ndarray [P]
        NOI / rent [1].
    capex_usd_per_mw_it : float or ndarray [P]  [USD/MW IT]
    default_hazard_monthly : float or ndarray [P]
        Probability per leased month that the tenant defaults [1/month].
    downtime_months : int or ndarray [P]
        Months without rent after a default (at least the default month) [month].
    relet_rate_usd_per_kw_month : float, ndarray [P] or None
        Rent of the replacement lease; None reverts the site to mining after downtime.
    renewal_probability : float or ndarray [P]
        Chance the lease renews at term end, else the site reverts to mining [1].
    u_default, u_renewal : ndarray [P, T]
        Uniform shocks; a default happens when ``u_default < hazard`` in a leased month, a
        renewal when ``u_renewal < renewal_probability`` at term end.

    Returns
    -------
    SiteResult

    Notes
    -----
    ``rent_t = IT MW x f_t x 1000 x rate x (1 + g)^floor((t - lease_start) / 12)`` in
    LEASED months, with ``f_t`` the energised IT fraction. The lease starts at the first
    energisation; renewals continue the escalation; a re-let starts a new lease at the
    re-let rate. A site that never signs stays MINING throughout.
    """
    n, months = u_default.shape
    sign = np.asarray(sign_month, dtype=np.int64).reshape(-1)
    sign = np.broadcast_to(sign, (n,))
    it_mw = _vec(gross_mw, n) / _vec(gross_to_it, n)
    gross = _vec(gross_mw, n)
    fractions, offsets = tranche_schedule(sign, build_months, tranches, n)
    signs = sign >= 0
    energise = np.where(signs, sign + np.min(offsets, axis=0), -1)
    build_end = np.where(signs, sign + np.max(offsets, axis=0), -1)
    capex = fitout_capex(sign, it_mw, _vec(capex_usd_per_mw_it, n), fractions, offsets, months)

    rate0 = _vec(lease_rate_usd_per_kw_month, n)
    relet = None if relet_rate_usd_per_kw_month is None else _vec(relet_rate_usd_per_kw_month, n)
    growth = 1.0 + _vec(escalator, n)
    term = np.maximum(np.rint(_vec(term_years, n) * units.MONTHS_PER_YEAR), 1).astype(np.int64)
    hazard = _vec(default_hazard_monthly, n)
    downtime = np.maximum(_vec(downtime_months, n, np.int64), 1)
    p_renew = _vec(renewal_probability, n)
    kw = it_mw * units.KW_PER_MW

    t_grid = np.arange(months)[None, :]
    energised = np.zeros((n, months))
    for f, off in zip(fractions, offsets):
        energised += (signs[:, None] & (t_grid >= (sign + off)[:, None])) * f[:, None]

    # Month columns are read and written as strided views: time-major copies of the two
    # shock arrays and the two outputs cost more than the loop's own work. Events are
    # skipped in months where none can happen (no path signs, energises, reaches term end
    # or is down), which leaves the arithmetic of every path unchanged.
    state = np.zeros(n, dtype=np.int8)
    next_step = np.zeros(n, dtype=np.int64)  # next escalation month of the current lease
    term_end = np.zeros(n, dtype=np.int64)
    down_until = np.zeros(n, dtype=np.int64)
    level = np.zeros(n)  # kW x rate x escalation of the current lease [USD/month per IT fraction]
    level0, relet_level = kw * rate0, (None if relet is None else kw * relet)
    states = np.zeros((n, months), dtype=np.int8)
    rent = np.zeros((n, months))
    leased = np.empty(n, dtype=bool)
    hit = np.empty(n, dtype=bool)
    sign_months = set(np.unique(sign[signs]).tolist())
    energise_months = set(np.unique(energise[signs]).tolist())
    first = min(sign_months, default=months)
    first_end = min(energise_months, default=months) + int(term.min()) if signs.any() else months
    any_down = False
    for t in range(first, months):
        if t in sign_months:
            np.copyto(state, BUILD, where=(sign == t))
        if t in energise_months:
            go = (state == BUILD) & (energise == t)
            _start_lease(go, t, state, next_step, term_end, term, level, level0)

        np.equal(state, LEASED, out=leased)
        np.equal(next_step, t, out=hit)
        hit &= leased
        np.multiply(level, growth, out=level, where=hit)
        np.add(next_step, units.MONTHS_PER_YEAR, out=next_step, where=hit)
        if t >= first_end:
            ended = leased & (t >= term_end)
            if ended.any():
                renew = ended & (u_renewal[:, t] < p_renew)
                np.add(term_end, term, out=term_end, where=renew)
                np.copyto(state, REVERTED, where=ended & ~renew)

        if any_down:
            back = (state == DOWN) & (t >= down_until)
            if relet is None:
                np.copyto(state, REVERTED, where=back)
            elif back.any():
                _start_lease(back, t, state, next_step, term_end, term, level, relet_level)

        np.equal(state, LEASED, out=leased)
        np.less(u_default[:, t], hazard, out=hit)
        hit &= leased
        if hit.any():
            any_down = True
            np.copyto(state, DOWN, where=hit)
            np.copyto(down_until, t + downtime, where=hit)
            leased &= ~hit

        states[:, t] = state
        np.multiply(level, leased, out=rent[:, t])
    rent *= energised

    held = (states == LEASED) | (states == DOWN)
    off_mw = ((states == BUILD) | held) * gross[:, None]
    hpc_mw_it = held * energised * it_mw[:, None]
    noi = rent * _vec(noi_margin, n)[:, None]
    return SiteResult(off_mw, hpc_mw_it, rent, noi, capex, states, energise, build_end)


def _start_lease(mask, t, state, next_step, term_end, term, level, level0):
    """Start a lease at month ``t`` on the paths in ``mask`` (in place).

    ``next_step`` is the lease's first anniversary, when the escalator first applies.
    """
    np.copyto(state, LEASED, where=mask)
    np.copyto(next_step, t + units.MONTHS_PER_YEAR, where=mask)
    np.copyto(term_end, t + term, where=mask)
    np.copyto(level, level0, where=mask)


def project_debt(capex, build_end_month, *, loan_to_cost, rate, amortisation_years):
    """Project loan drawn against fit-out capex, amortised after the last energisation.

    Parameters
    ----------
    capex : ndarray [P, T]
        Fit-out capex [USD/month].
    build_end_month : ndarray [P] int
        Month the last tranche is energised; amortisation starts there (-1 = no loan).
    loan_to_cost : float or ndarray [P]
        Share of each month's capex drawn [1].
    rate : float or ndarray [P]
        Annual interest rate [1/yr], charged monthly on the opening balance.
    amortisation_years : float or ndarray [P]
        Straight-line repayment period [yr].

    Returns
    -------
    draws, interest, principal, balance : ndarray [P, T]
        [USD/month] x 3 and the closing balance [USD].

    Notes
    -----
    ``interest_t = B_{t-1} x rate / 12``; from the build end month ``b``, principal
    ``min(B_b-1 / (12 x years), B_{t-1})`` each month (level principal);
    ``B_t = B_{t-1} + draw_t - principal_t``.
    """
    n, months = capex.shape
    ltc = _vec(loan_to_cost, n)
    monthly_rate = _vec(rate, n) / units.MONTHS_PER_YEAR
    n_pay = np.maximum(_vec(amortisation_years, n) * units.MONTHS_PER_YEAR, 1.0)
    draws = capex * ltc[:, None]
    interest = np.zeros((n, months))
    principal = np.zeros((n, months))
    balance = np.zeros((n, months))
    opening = np.zeros(n)
    instalment = np.zeros(n)
    amortising = np.zeros(n, dtype=bool)
    ends = build_end_month >= 0
    end_months = set(np.unique(build_end_month[ends]).tolist())
    # Before the first draw every balance is zero; a path amortises from its build end month.
    drawn = np.flatnonzero(np.any(draws != 0.0, axis=0))
    first = min(int(drawn[0]) if drawn.size else months, min(end_months, default=months))
    # Strided month columns: the loop is a handful of operations per month, cheaper than
    # transposing one input and three outputs.
    for t in range(first, months):
        np.multiply(opening, monthly_rate, out=interest[:, t])
        if t in end_months:
            start = build_end_month == t
            np.divide(opening, n_pay, out=instalment, where=start)
            amortising |= start
        np.minimum(instalment, opening, out=principal[:, t], where=amortising)
        opening += draws[:, t]
        opening -= principal[:, t]
        balance[:, t] = opening
    return draws, interest, principal, balance
