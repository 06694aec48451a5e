"""Valuation: free cash flow, segment discounting, terminal values, sum of the parts, marks.

Months are indexed ``t = 0 .. T-1`` and cash flows fall at month end, so month ``t`` is
discounted by ``(1 + r)^(-(t + 1) / 12)`` and the horizon (end of month ``T - 1``) by
``(1 + r)^(-T / 12)``.

References
----------
domain.md "Valuation"; domain-facts rows V-R1..V-R4 (discount rates), V-M1..V-M4
(multiples), H-F3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import units


def _col(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def present_value(x: np.ndarray, rate) -> np.ndarray:
    """``sum_t x[p, t] (1 + r)^(-(t + 1) / 12)`` per path [USD], [P].

    Parameters
    ----------
    x : ndarray [P or 1, T]
        Month-end cash flows [USD/month].
    rate : float or ndarray [P]
        Annual discount rate [1/yr].

    Notes
    -----
    Horner's rule, ``v (x_0 + v (x_1 + ... + v x_{T-1}))`` with ``v = (1 + r)^(-1/12)``: a
    month loop over ``[P]`` accumulators, with no ``[P, T]`` discount factors (an ``exp``
    and a product pass each). It agrees with the dot on :func:`discount_factors` to
    rounding (relative 1e-14 over 120 months).
    """
    step = np.exp(np.log1p(np.asarray(rate, np.float64)) / -units.MONTHS_PER_YEAR)
    pv = np.zeros(np.broadcast_shapes(x.shape[:1], np.shape(step)))
    for t in range(x.shape[1] - 1, -1, -1):
        pv += x[:, t]
        pv *= step
    return pv


def discount_factors(rate, months: int) -> np.ndarray:
    """Month-end discount factors ``(1 + r)^(-(t + 1) / 12)``, shape [P or 1, months]."""
    return _discount(rate, np.arange(1, months + 1)[None, :] / units.MONTHS_PER_YEAR)


def _discount(rate, years) -> np.ndarray:
    """``(1 + r)^(-years)`` [1] for an annual rate [1/yr] (``_col``-shaped) and ``years`` [yr].

    exp(-t ln(1 + r)) equals (1 + r)^(-t) to rounding and is several times cheaper than pow
    over [P, T] when the rate is drawn per path.
    """
    out = np.log1p(_col(rate)) * -years
    return np.exp(out, out=out)


def free_cash_flow(mining_margin, site_opex, hpc_noi, sga, capex, interest):
    """Free cash flow [USD/month], with mined BTC valued at the month-end price.

    Notes
    -----
    ``FCF = margin - site opex + NOI - SG&A - capex - interest``. The margin already counts
    every coin mined at that month's price, so BTC sales are not added again (selling
    production only turns that value into cash; see ``capital.cash_loop`` for cash).
    """
    fcf = mining_margin - site_opex
    fcf += hpc_noi
    fcf -= sga
    fcf -= capex
    fcf -= interest
    return fcf


def trailing_12(x: np.ndarray) -> np.ndarray:
    """Sum of the last 12 months including ``t`` [per year]; annualised before month 11.

    Notes
    -----
    ``S_t = sum_{s=t-11}^{t} x_s`` for ``t >= 11``; ``12 / (t + 1) x sum_{s<=t} x_s`` before,
    since the grid holds no months before the valuation date.
    """
    cs = np.cumsum(x, axis=1)
    w = units.MONTHS_PER_YEAR
    out = np.empty_like(cs)
    out[:, :w] = cs[:, :w]
    np.subtract(cs[:, w:], cs[:, :-w], out=out[:, w:])
    early = min(w - 1, x.shape[1])
    out[:, :early] *= w / np.arange(1, early + 1)
    return out


def forward_12(x_ext: np.ndarray, months: int) -> np.ndarray:
    """Sum of months ``t+1 .. t+12`` for ``t < months``; ``x_ext`` has ``months + 12`` columns."""
    cs = np.cumsum(x_ext, axis=1)
    w = units.MONTHS_PER_YEAR
    return cs[:, w:months + w] - cs[:, :months]


def _spans(rows: np.ndarray, start: np.ndarray, stop: np.ndarray, width: int):
    """Flat indices of the elements ``[rows[i], start[i]:stop[i]]`` of a C-ordered ``[*, width]``
    array, and each element's row position ``i``.

    Writing through these indices touches only the spans, where a ``[P, T]`` mask would
    cost several passes over the whole array.
    """
    length = stop - start
    offset = np.cumsum(length) - length  # position of each span's first element
    which = np.repeat(np.arange(rows.size), length)
    idx = np.arange(int(length.sum())) + (rows * width + start - offset)[which]
    return idx, which


def site_value(noi_ext: np.ndarray, capex_ext: np.ndarray, sign_month: np.ndarray,
               full_month: np.ndarray, *, months: int, rate, multiple, land_value_usd=0.0
               ) -> np.ndarray:
    """One site's value marked at every month by the HPC bridge [USD], [P, T].

    Parameters
    ----------
    noi_ext, capex_ext : ndarray [P, T + 12]
        The site's NOI and fit-out capex, including 12 months past the horizon [USD/month].
    sign_month, full_month : ndarray [P] int
        Month the tenant signs and month the last tranche is energised (-1: never signs).
    months : int
        Months T on the grid.
    rate, multiple : float or ndarray [P]
        HPC discount rate [1/yr] and EV/NOI multiple [1].
    land_value_usd : float or ndarray [P]
        Value of the site's powered land while no lease is signed [USD] (V-M8); zero for a
        site whose MW mine until conversion (their value is in mining EBITDA).

    Notes
    -----
    Before signing the site is powered land. Once energised in full it is worth
    ``multiple x NOI over the next 12 months``. In between (signed, building) it is worth
    the delivered campus, ``multiple x NOI_{L..L+11}`` discounted from the full-delivery
    month ``L`` at the HPC rate, less the fit-out capex still to be paid after month ``t``.
    Without the middle case a signed campus under construction would count for nothing,
    and marks taken during the build (convertible settlement, equity raises, forward values)
    would treat a contracted lease as worthless.

    The forward multiple is computed on the whole grid; the land months and the build
    months, per-path intervals, are then written through flat indices, so the discounting
    (an ``exp``) runs on the build months only.
    """
    n = noi_ext.shape[0]
    w = units.MONTHS_PER_YEAR
    cs_noi = np.zeros((n, noi_ext.shape[1] + 1))
    np.cumsum(noi_ext, axis=1, out=cs_noi[:, 1:])
    value = np.subtract(cs_noi[:, w + 1:months + w + 1], cs_noi[:, 1:months + 1])
    value *= _col(multiple)
    sign = np.broadcast_to(sign_month, (n,))
    full = np.minimum(full_month, months)

    # Building, months sign .. full - 1: the delivered campus less the capex still to pay.
    rows = np.flatnonzero((sign >= 0) & (sign < full))
    if rows.size:
        last = noi_ext.shape[1] - w
        end = np.minimum(full[rows], last)
        run_rate = cs_noi[rows, end + w] - cs_noi[rows, end]
        idx, which = _spans(rows, sign[rows], full[rows], months)
        t = idx - (rows * months)[which]
        years_to_full = (full[rows][which] - t) / w
        cs_capex = np.cumsum(capex_ext[:, :months], axis=1)
        capex_after = cs_capex[rows, -1][which] - cs_capex.reshape(-1)[idx]
        log_v = np.broadcast_to(np.log1p(np.asarray(rate, np.float64)), (n,))[rows]
        with np.errstate(over="ignore"):
            discount = np.exp(-log_v[which] * years_to_full)
        delivered = (run_rate * np.broadcast_to(np.asarray(multiple, np.float64), (n,))[rows])[which]
        delivered *= discount
        value.reshape(-1)[idx] = delivered - capex_after

    # Powered land: every month of a path that never signs, months before signing otherwise.
    land = np.broadcast_to(np.asarray(land_value_usd, np.float64), (n,))
    never = np.flatnonzero(sign < 0)
    value[never] = land[never, None]
    later = np.flatnonzero(sign > 0)
    idx, which = _spans(later, np.zeros_like(later), np.minimum(sign[later], months), months)
    value.reshape(-1)[idx] = land[later][which]
    return value


def mark(*, trailing_mining_ebitda, hpc_value, btc_held, btc_price, cash, debt, shares,
         mining_multiple) -> np.ndarray:
    """Value per share marked at every month by the sum of the parts [USD/share], [P, T].

    Notes
    -----
    ``V_t = (m_mine x max(EBITDA_trailing12, 0) + HPC_t + BTC_t x S_t + cash_t - debt_t)
    / shares_t`` with ``HPC_t`` the sites' value (:func:`site_value`: multiple on forward NOI
    once delivered, the discounted campus less remaining capex while building, powered land
    before signing). The same bridge gives the forward value at month 12k.
    """
    value = np.maximum(trailing_mining_ebitda, 0.0) * _col(mining_multiple)
    value += hpc_value
    value += btc_held * btc_price
    value += cash
    value -= debt
    value /= shares
    return value


@dataclass(frozen=True, slots=True)
class ValueToday:
    """Sum of the parts at the valuation date, all [P] in USD."""

    pv_mining: np.ndarray
    pv_hpc: np.ndarray
    treasury_value: np.ndarray
    net_debt: np.ndarray
    pv_equity_raised: np.ndarray
    equity_value: np.ndarray


def sum_of_parts(*, mining_cash_flow, mining_ebitda, hpc_cash_flow, noi_ext, mining_rate,
                 hpc_rate, mining_multiple, hpc_multiple, btc_held0, btc_price0,
                 debt_repaid_in_cash, cash0, raised_usd, land_at_horizon=0.0) -> ValueToday:
    """Unlevered sum of the parts today.

    Parameters
    ----------
    mining_cash_flow : ndarray [P, T]
        Margin - site opex - SG&A - fleet capex [USD/month].
    mining_ebitda : ndarray [P, T]
        Margin - site opex - SG&A [USD/month].
    hpc_cash_flow : ndarray [P, T]
        NOI - HPC capex [USD/month].
    noi_ext : ndarray [P, T + 12]
        NOI including the 12 months after the horizon [USD/month].
    mining_rate, hpc_rate : float or ndarray [P]
        Annual discount rates [1/yr].
    mining_multiple, hpc_multiple : float or ndarray [P]
        EV/EBITDA on trailing mining EBITDA; EV/NOI on forward NOI [1].
    btc_held0, btc_price0 : float or ndarray [P]  [BTC], [USD/BTC]
    debt_repaid_in_cash : ndarray [P]
        Face of notes and loans repaid in cash (converted notes excluded) [USD].
    cash0 : float or ndarray [P]  [USD]
    raised_usd : ndarray [P, T]
        Equity raise proceeds [USD/month].
    land_at_horizon : float or ndarray [P]
        Powered land of sites still unsigned at the horizon [USD] (V-M8), counted in the HPC
        segment and discounted from the horizon.

    Returns
    -------
    ValueToday

    Notes
    -----
    ``PV_mine = sum_t CF_t d_t + m_mine max(sum_{T-12}^{T-1} EBITDA, 0) d_T`` at the mining
    rate; ``PV_hpc = sum_t (NOI - capex)_t d_t + m_hpc sum_{T}^{T+11} NOI d_T`` at the HPC
    rate; ``net debt = debt repaid in cash - cash0``. Equity raised later is sold at the
    market price, so its proceeds (discounted at the mining rate, the company's cost of
    equity proxy) add to equity value while the new shares add to the count:
    ``equity = PV_mine + PV_hpc + BTC0 S0 - net debt + PV(raises)``.
    """
    months = mining_cash_flow.shape[1]
    w = units.MONTHS_PER_YEAR
    # The terminal values need the horizon's factor alone (discount_factors' last column).
    at_horizon_mine = _discount(mining_rate, months / w)[:, 0]
    at_horizon_hpc = _discount(hpc_rate, months / w)[:, 0]
    ebitda_last = mining_ebitda[:, max(months - w, 0):].sum(axis=1)
    noi_next = noi_ext[:, months:months + w].sum(axis=1)
    pv_mining = present_value(mining_cash_flow, mining_rate)
    pv_mining += (np.maximum(ebitda_last, 0.0) * np.asarray(mining_multiple)) * at_horizon_mine
    pv_hpc = present_value(hpc_cash_flow, hpc_rate)
    pv_hpc += (noi_next * np.asarray(hpc_multiple) + land_at_horizon) * at_horizon_hpc
    n = pv_mining.shape[0]
    treasury = np.broadcast_to(np.asarray(btc_held0, np.float64) * btc_price0, (n,)).copy()
    net_debt = debt_repaid_in_cash - np.asarray(cash0, dtype=np.float64)
    pv_raised = present_value(raised_usd, mining_rate)
    equity = pv_mining + pv_hpc + treasury - net_debt + pv_raised
    return ValueToday(pv_mining, pv_hpc, treasury, net_debt, pv_raised, equity)
