"""Taxes: straight-line depreciation of capex and cash tax with loss carry-forwards.

Cash tax at the scenario's rate on positive taxable income after depreciation (capex
depreciated straight-line over the asset's life), with loss carry-forwards.

Tax years are blocks of 12 months counted from the valuation date: year ``k`` covers months
``12k .. 12k + 11`` (a partial last block covers the months left on the grid). Each year's
income is netted over its months, as on an annual return, and the tax is paid in the
year's last month. A year's loss is carried forward, without expiry, to later years; no
loss is carried back, so tax is never negative.

References
----------
domain.md "Valuation" (the Taxes paragraph; taxes go on after the horizon: :func:`tax_year`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import units


def straight_line(capex, life_months: int) -> np.ndarray:
    """Straight-line depreciation of monthly capex [USD/month], [P or 1, T].

    Parameters
    ----------
    capex : ndarray [P or 1, T]
        Capex spent in each month [USD/month].
    life_months : int
        Depreciable life of the assets bought [months], at least 1.

    Returns
    -------
    ndarray [P or 1, T]
        Depreciation charged in each month [USD/month].

    Notes
    -----
    Capex spent in month ``s`` is charged ``capex_s / L`` in each of months ``s .. s + L - 1``
    (the asset is in service from the month it is bought: a full-month convention), so
    ``D_t = (C_t - C_{t-L}) / L`` with ``C`` the cumulative capex through month ``t``
    (``C_t = 0`` for ``t < 0``). Charges after the grid end are dropped: the basis left at the
    horizon is ``sum(capex) - sum(D)`` per path.
    """
    if life_months < 1:
        raise ValueError(f"life_months must be at least 1, got {life_months}")
    cs = np.cumsum(np.asarray(capex, dtype=np.float64), axis=1)
    lag = min(life_months, cs.shape[1])
    dep = np.empty_like(cs)
    dep[:, :lag] = cs[:, :lag]
    np.subtract(cs[:, lag:], cs[:, :cs.shape[1] - lag], out=dep[:, lag:])
    dep /= life_months
    return dep


@dataclass(frozen=True, slots=True)
class TaxResult:
    """Cash tax paths."""

    tax: np.ndarray  #: cash tax paid [USD/month], [P, T], >= 0, nonzero only in a year's last month
    depreciation: np.ndarray  #: depreciation deducted [USD/month], [P, T]
    nol: np.ndarray  #: loss carry-forward closing balance [USD], [P, T]


def tax_year(taxable, nol, *, rate, nol_limit=0.8):
    """One tax year's return: tax and closing loss carry-forward.

    Parameters
    ----------
    taxable : float or ndarray [P]
        The year's taxable income after depreciation, before loss carry-forwards [USD].
    nol : float or ndarray [P]
        Loss carry-forward at the start of the year [USD], >= 0.
    rate : float or ndarray [P]
        Tax rate [1].
    nol_limit : float
        Share of the year's positive taxable income that carried losses may offset [1]
        (0.8: the US rule for losses arising after 2017; 1.0: unlimited).

    Returns
    -------
    tax, nol_close : ndarray [P]
        Tax due for the year [USD], >= 0; loss carry-forward at the end of the year [USD].

    Notes
    -----
    ``used = min(NOL, limit x max(Y, 0))``; ``tax = rate x (max(Y, 0) - used)``;
    ``NOL' = NOL - used + max(-Y, 0)``. Also the tax of the first year after the horizon,
    given that year's income and the carry-forward left at the horizon.
    """
    taxable = np.asarray(taxable, dtype=np.float64)
    profit = np.maximum(taxable, 0.0)
    used = np.minimum(nol, profit * nol_limit)
    tax = np.subtract(profit, used)
    tax *= rate
    nol_close = np.subtract(nol, used)
    nol_close += np.maximum(-taxable, 0.0)
    return tax, nol_close


def cash_tax(income, depreciation, *, rate, nol0=0.0, nol_limit=0.8) -> TaxResult:
    """Cash tax on each 12-month tax year's income after depreciation, with carry-forwards.

    Parameters
    ----------
    income : ndarray [P or 1, T]
        Taxable income before depreciation [USD/month] (EBITDA-like: the caller decides
        what is in it, e.g. whether interest is deducted).
    depreciation : ndarray [P or 1, T]
        Tax depreciation [USD/month] (:func:`straight_line`).
    rate : float or ndarray [P]
        Tax rate [1].
    nol0 : float or ndarray [P]
        Loss carry-forward at the valuation date [USD], >= 0.
    nol_limit : float
        Share of a year's positive taxable income that carried losses may offset [1]
        (0.8 by default, the US post-2017 rule; 1.0 = unlimited).

    Returns
    -------
    TaxResult
        ``tax`` is paid in the last month of each tax year (month ``T - 1`` for a partial
        last year); ``nol[:, t]`` is the carry-forward after the last return filed at or
        before month ``t`` (``nol0`` before the first one).

    Notes
    -----
    Tax year ``k`` is months ``12k .. min(12k + 11, T - 1)``, with
    ``Y_k = sum (income - depreciation)`` over those months; :func:`tax_year` gives the
    year's tax and closing carry-forward. Netting over the year lets a loss in one month
    offset a profit in another month of the same year in full, as on an annual return;
    between years only the carry-forward (within ``nol_limit``) does. A loop over years with
    arrays over paths.
    """
    taxable = np.subtract(income, depreciation)
    months = taxable.shape[1]
    n = np.broadcast_shapes(taxable.shape[:1], np.shape(rate), np.shape(nol0))[0]
    dep = np.ascontiguousarray(np.broadcast_to(depreciation, (n, months)), dtype=np.float64)
    tax = np.zeros((n, months))
    nol_path = np.empty((n, months))
    nol = np.broadcast_to(np.asarray(nol0, dtype=np.float64), (n,))
    if months == 0:
        return TaxResult(tax, dep, nol_path)
    w = units.MONTHS_PER_YEAR
    starts = np.arange(0, months, w)
    annual = np.broadcast_to(np.add.reduceat(taxable, starts, axis=1), (n, starts.size))
    for k, start in enumerate(starts):
        end = min(start + w, months) - 1
        nol_path[:, start:end] = nol[:, None]
        tax[:, end], nol = tax_year(annual[:, k], nol, rate=rate, nol_limit=nol_limit)
        nol_path[:, end] = nol
    return TaxResult(tax, dep, nol_path)



def depreciation_by_year(capex, life_months: int, years: int) -> np.ndarray:
    """Straight-line depreciation still to come after the grid, by year after it [USD/yr].

    Parameters
    ----------
    capex : ndarray [P or 1, T]
        Capex by month [USD/month], depreciated as in :func:`straight_line`.
    life_months : int
        Depreciation life L [month].
    years : int
        Years after the grid Y.

    Returns
    -------
    ndarray [P or 1, Y]

    Notes
    -----
    Capex of month s leaves ``n_s = max(s + L - T, 0)`` monthly charges of ``c_s / L`` after
    the grid, ``clip(n_s - 12 y, 0, 12)`` of them in year y + 1. ``n_s`` rises with s, so the
    months charged a whole year are a tail ``s >= f_y`` and those charged part of it the
    months ``p_y <= s < f_y`` before it::

        L D_y = 12 S(f_y) + [N(p_y) - N(f_y)] - 12 y [S(p_y) - S(f_y)]

    with ``S(a) = sum_{s >= a} c_s`` and ``N(a) = sum_{s >= a} n_s c_s``: two running sums
    per path, each path's own (a matrix product's blocking would depend on the chunk's size).
    Only the last L months leave a charge, and none is left after ``ceil((L - 1) / 12)`` years.
    """
    capex = np.asarray(capex, dtype=np.float64)
    rows, months = capex.shape
    w = units.MONTHS_PER_YEAR
    out = np.zeros((rows, years))
    first = max(months - life_months + 1, 0)  # the first month with a charge after the grid
    charging = min(years, -(-(life_months - 1) // w))  # years with a charge: n_s <= L - 1
    if first >= months or charging == 0:
        return out
    c = capex[:, first:]
    k = months - first
    left = np.arange(first, months) + life_months - months  # n_s > 0, rising
    tail = np.zeros((rows, k + 1))  # S(a) and N(a) over these months, zero past the last
    charged = np.zeros((rows, k + 1))
    np.cumsum(c[:, ::-1], axis=1, out=tail[:, k - 1::-1])
    np.cumsum((c * left)[:, ::-1], axis=1, out=charged[:, k - 1::-1])
    y = np.arange(charging)
    whole = np.searchsorted(left, w * (y + 1), side="left")  # f_y: n_s >= 12 (y + 1)
    part = np.searchsorted(left, w * y, side="right")  # p_y: n_s > 12 y
    year = w * tail[:, whole]
    year += charged[:, part] - charged[:, whole]
    year -= (w * y) * (tail[:, part] - tail[:, whole])
    out[:, :charging] = year / life_months
    return out


def tax_by_year(income, nol0, *, rate, nol_limit=0.8) -> np.ndarray:
    """Tax of each year of a projected annual taxable income [USD/yr], [P, Y].

    ``income`` [P, Y] is taxable income after depreciation and interest [USD/yr]; ``nol0``
    the losses carried into the first year [USD]. Each year is one return (:func:`tax_year`).
    """
    income = np.asarray(income, dtype=np.float64)
    out = np.empty_like(income)
    nol = np.broadcast_to(np.asarray(nol0, dtype=np.float64), income.shape[:1]).copy()
    for y in range(income.shape[1]):
        out[:, y], nol = tax_year(income[:, y], nol, rate=rate, nol_limit=nol_limit)
    return out


