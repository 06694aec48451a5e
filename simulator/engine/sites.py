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
    ``sign .. sign + offset_k - 1``. The sum over tranches (in index order) is constant
    between a path's breakpoints (signing and each tranche's end): it is evaluated once per
    segment, at its first month ``t_s``, and repeated over the segment's months.
    """
    n = sign_month.shape[0]
    start = np.where(sign_month >= 0, sign_month, months)  # never signs: no build on the grid
    ends = [start + off for off in offsets]
    bounds = np.sort(np.clip(np.stack([np.zeros(n, np.int64), start, *ends, np.full(n, months)],
                                      axis=1), 0, months), axis=1)
    t_s = bounds[:, :-1]
    capex = np.zeros(t_s.shape)
    for f, off, end in zip(fractions, offsets, ends):
        per_month = f * it_mw * capex_usd_per_mw_it / off
        building = (t_s >= start[:, None]) & (t_s < end[:, None])
        capex += building * per_month[:, None]
    length = np.diff(bounds, axis=1).reshape(-1)
    return np.repeat(capex.reshape(-1), length).reshape(n, months)


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
    gross = _vec(gross_mw, n)
    it_mw = gross / _vec(gross_to_it, n)
    fractions, offsets = tranche_schedule(sign, build_months, tranches, n)
    signs = sign >= 0
    energise = np.where(signs, sign + np.min(offsets, axis=0), -1)
    build_end = np.where(signs, sign + np.max(offsets, axis=0), -1)
    capex = fitout_capex(sign, it_mw, _vec(capex_usd_per_mw_it, n), fractions, offsets, months)
    states = np.zeros((n, months), dtype=np.int8)
    rent = np.zeros((n, months))
    hpc_mw_it = np.zeros((n, months))
    # Only paths that sign ever leave MINING: the lease state machine runs on those rows.
    rows = np.flatnonzero(signs)
    if rows.size:
        def take(x, dtype=np.float64):
            return _vec(x, n, dtype)[rows]

        kw = it_mw[rows] * units.KW_PER_MW
        relet = relet_rate_usd_per_kw_month
        first = int(sign[rows].min())
        lease_states, lease_rent, lease_mw = _lease_months(
            # One gather straight into contiguous month rows: no [R, T] copy to transpose again.
            first, sign[rows], energise[rows], u_default.T[first:].take(rows, axis=1), u_renewal, rows,
            tranches=[(f[rows], sign[rows] + off[rows]) for f, off in zip(fractions, offsets)],
            it_mw=it_mw[rows], level0=kw * take(lease_rate_usd_per_kw_month),
            relet_level=None if relet is None else kw * take(relet), growth=1.0 + take(escalator),
            term=np.maximum(np.rint(take(term_years) * units.MONTHS_PER_YEAR), 1).astype(np.int64),
            hazard=take(default_hazard_monthly),
            downtime=np.maximum(take(downtime_months, np.int64), 1),
            p_renew=take(renewal_probability))
        states[rows, first:] = lease_states.T
        rent[rows, first:] = lease_rent.T
        hpc_mw_it[rows, first:] = lease_mw.T

    # BUILD, LEASED and DOWN are the consecutive codes 1..3: the MW out of mining.
    off_mw = ((states >= BUILD) & (states <= DOWN)) * gross[:, None]
    noi = rent * _vec(noi_margin, n)[:, None]
    return SiteResult(off_mw, hpc_mw_it, rent, noi, capex, states, energise, build_end)


def _lease_months(first, sign, energise, u_default, u_renewal, rows, *, tranches, it_mw, level0,
                  relet_level, growth, term, hazard, downtime, p_renew):
    """Run the lease state machine from month ``first`` on the paths that sign.

    Parameters
    ----------
    first : int
        First signing month; every path is MINING before it.
    sign, energise : ndarray [R] int
        Signing and first energisation month of each path [month].
    u_default : ndarray [T - first, R]
        Default shocks of these paths from month ``first``, month-major.
    u_renewal : ndarray [P, T]
        Renewal shocks of every path, read at ``rows`` in term-end months only.
    rows : ndarray [R] int
        Rows of these paths in ``u_renewal``.
    tranches : list of (ndarray [R], ndarray [R] int)
        IT-MW fraction [1] and energisation month [month] of every tranche.
    it_mw : ndarray [R]
        Site IT MW [MW].
    level0, relet_level : ndarray [R] or None
        kW x rent of the first lease and of a re-let (None: revert) [USD/month].
    growth, term, hazard, downtime, p_renew : ndarray [R]
        Escalation factor [1]; lease term [month]; default hazard [1/month]; downtime
        [month]; renewal probability [1].

    Returns
    -------
    states : ndarray [T - first, R] int8
        Lease state codes, time-major.
    rent : ndarray [T - first, R]
        Rent in leased months, else 0 [USD/month], time-major.
    hpc_mw_it : ndarray [T - first, R]
        Energised IT MW held for HPC (leased or down), else 0 [MW], time-major.

    Notes
    -----
    The loop works on contiguous month rows of time-major copies. Events are skipped in
    months where none can happen (no path signs, energises, reaches term end or is down),
    which leaves the arithmetic of every path unchanged.

    The energised fraction ``f_t`` changes only in tranche months; there it is re-summed over
    the tranches delivered so far in index order, the sum a masked add over the grid gives.
    """
    n = sign.shape[0]
    months = first + u_default.shape[0]
    shocks = np.ascontiguousarray(u_default)  # a no-op for the caller's gather
    state = np.zeros(n, dtype=np.int8)
    next_step = np.zeros(n, dtype=np.int64)  # next escalation month of the current lease
    term_end = np.zeros(n, dtype=np.int64)
    down_until = np.zeros(n, dtype=np.int64)
    level = np.zeros(n)  # kW x rate x escalation of the current lease [USD/month per IT fraction]
    states = np.empty((months - first, n), dtype=np.int8)
    rent = np.empty((months - first, n))
    hpc_mw_it = np.empty((months - first, n))
    energised = np.zeros(n)  # f_t [1]
    energised_mw = np.zeros(n)  # f_t x IT MW [MW]
    tranche_months = set(np.unique([e for _, e in tranches]).tolist())
    leased = np.empty(n, dtype=bool)
    held = np.empty(n, dtype=bool)
    hit = np.empty(n, dtype=bool)
    sign_months = set(np.unique(sign).tolist())
    energise_months = set(np.unique(energise).tolist())
    first_end = min(energise_months) + int(term.min())
    any_down = False
    for t in range(first, months):
        if t in tranche_months:
            energised.fill(0.0)
            for f, e in tranches:
                energised += (e <= t) * f
            np.multiply(energised, it_mw, out=energised_mw)
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
                renew = ended & (u_renewal[rows, t] < p_renew)
                np.add(term_end, term, out=term_end, where=renew)
                np.copyto(state, REVERTED, where=ended & ~renew)

        if any_down:
            back = (state == DOWN) & (t >= down_until)
            if relet_level is None:
                np.copyto(state, REVERTED, where=back)
            elif back.any():
                _start_lease(back, t, state, next_step, term_end, term, level, relet_level)

        np.equal(state, LEASED, out=leased)
        np.less(shocks[t - first], hazard, out=hit)
        hit &= leased
        if hit.any():
            any_down = True
            np.copyto(state, DOWN, where=hit)
            np.copyto(down_until, t + downtime, where=hit)
            leased &= ~hit

        states[t - first] = state
        np.multiply(level, leased, out=rent[t - first])
        rent[t - first] *= energised
        if any_down:  # a path in downtime still holds its MW
            np.equal(state, DOWN, out=held)
            held |= leased
        np.multiply(energised_mw, held if any_down else leased, out=hpc_mw_it[t - first])
    return states, rent, hpc_mw_it


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
    ``min(I, B_{t-1})`` each month with the level instalment ``I = B_b-1 / (12 x years)``;
    ``B_t = B_{t-1} + draw_t - principal_t``.

    Capex stops before ``b`` (``fitout_capex`` spreads every tranche over its own build), so
    the balance is the running sum of the draws up to ``b - 1`` and then of ``-I`` a month
    until less than ``I`` is left, which the last payment clears. One ``cumsum`` over both
    adds in month order, so every balance equals the month-by-month recursion exactly.
    Draws are non-negative, so the months to clear are exactly those where that running sum
    is negative.
    """
    n, months = capex.shape
    ltc = _vec(loan_to_cost, n)
    monthly_rate = _vec(rate, n) / units.MONTHS_PER_YEAR
    n_pay = np.maximum(_vec(amortisation_years, n) * units.MONTHS_PER_YEAR, 1.0)
    draws = capex * ltc[:, None]
    end = build_end_month.reshape(-1, 1)
    amortising = (end >= 0) & (np.arange(months)[None, :] >= end)
    # B_{b-1}: the whole loan, drawn by the month before the build end (nothing before month 0).
    drawn = np.cumsum(draws[:, :max(int(end.max()), 1)], axis=1)
    at_end = np.take_along_axis(drawn, np.clip(end - 1, 0, drawn.shape[1] - 1), axis=1)[:, 0]
    instalment = (np.where(end[:, 0] > 0, at_end, 0.0) / n_pay)[:, None]
    # Draws are zero while amortising, so subtracting I there alone replaces them by -I.
    balance = np.multiply(amortising, instalment)
    np.subtract(draws, balance, out=balance)
    np.cumsum(balance, axis=1, out=balance)
    np.maximum(balance, 0.0, out=balance)
    opening = np.empty((n, months))  # B_{t-1}
    opening[:, 0] = 0.0
    opening[:, 1:] = balance[:, :-1]
    principal = np.minimum(instalment, opening)
    principal *= amortising
    interest = opening * monthly_rate[:, None]
    return draws, interest, principal, balance
