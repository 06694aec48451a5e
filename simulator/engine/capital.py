"""Capital: debt schedules, convertibles with capped calls, cash, and equity raises.

References
----------
domain.md "The company" (capital); domain-facts rows C-D1..C-D10 (notes, capped call),
C-E1, C-E3 (shares), C-B4, C-B5 (cash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from simulator import units


def _col(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def debt_schedule(principal_usd, coupon, maturity_month: int, amortisation, months: int):
    """Coupon, scheduled principal and maturity payment of one instrument.

    Parameters
    ----------
    principal_usd : float or ndarray [P]
        Face outstanding at month 0 [USD].
    coupon : float or ndarray [P]
        Annual coupon [1/yr], paid monthly on the opening balance.
    maturity_month : int
        Month index of the final payment; beyond the grid means still outstanding at the end.
    amortisation : float or ndarray [P]
        Share of the original face repaid per year before maturity [1/yr] (0 = bullet).
    months : int

    Returns
    -------
    balance, interest, scheduled, balloon : ndarray [P or 1, T]
        Closing balance [USD]; coupon [USD/month]; amortisation [USD/month]; the balance
        repaid at maturity [USD/month] (a convertible that converts does not pay it).

    Notes
    -----
    ``open_t = F - min(F a / 12 x t, F)`` up to maturity, then 0;
    ``interest_t = open_t x c / 12``.
    """
    face = _col(principal_usd)
    t = np.arange(months)[None, :]
    per_month = face * _col(amortisation) / units.MONTHS_PER_YEAR
    opening = np.where(t <= maturity_month, face - np.minimum(per_month * t, face), 0.0)
    scheduled = np.where(t < maturity_month, np.minimum(per_month, opening), 0.0)
    balloon = np.where(t == maturity_month, opening, 0.0)
    balance = opening - scheduled - balloon
    interest = opening * _col(coupon) / units.MONTHS_PER_YEAR
    return balance, interest, scheduled, balloon


def converts(share_value, conversion_price) -> np.ndarray:
    """Holders convert where the share value exceeds the conversion price (NaN: repay)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(share_value > conversion_price)


def conversion_month(share_value_at: Callable[[int], np.ndarray], conversion_price: float, *,
                     maturity_month: int, months: int, n: int, call_month: int | None = None,
                     call_trigger: float = 1.3) -> np.ndarray:
    """Month each path's note converts [month], [P] int; -1 where it is repaid or outstanding.

    Parameters
    ----------
    share_value_at : callable ``(m) -> ndarray [P]``
        Value per share at the end of month ``m`` with the note still debt [USD/share].
    conversion_price : float
        K [USD/share].
    maturity_month : int
        Month of the final payment; at or beyond ``months``, the note is outstanding at the
        horizon unless called.
    months, n : int
        Months on the grid and paths.
    call_month : int or None
        First month the issuer may call (provisional redemption); None: no call.
    call_trigger : float
        The call needs ``share value >= call_trigger x K`` [1] (130%: C-D8).

    Notes
    -----
    From ``call_month`` the issuer calls at the first month-end the share value reaches the
    trigger, and holders convert rather than take the face (their shares are then worth at
    least 1.3 times it). At maturity holders convert where the share value exceeds K, else
    the face is repaid. Share values are month-end marks: the indentures' "20 of 30 trading
    days" is read on the monthly grid.
    """
    out = np.full(n, -1, dtype=np.int64)
    last = min(maturity_month, months) - 1  # the last month before maturity on the grid
    if call_month is not None:
        for m in range(max(call_month, 0), last + 1):
            with np.errstate(invalid="ignore"):
                hit = (out < 0) & (share_value_at(m) >= call_trigger * conversion_price)
            out[hit] = m
    if maturity_month < months:
        at = (out < 0) & converts(share_value_at(maturity_month), conversion_price)
        out[at] = maturity_month
    return out


def conversion_shares(principal_usd, conversion_price, share_price, cap_price=None):
    """Net new shares on conversion after the capped call [shares].

    Parameters
    ----------
    principal_usd : float or ndarray [P]  [USD]
    conversion_price : float  [USD/share]
    share_price : ndarray [P]
        Share value at settlement [USD/share].
    cap_price : float or None
        Cap of the capped call [USD/share]; None means no capped call.

    Returns
    -------
    ndarray [P]

    Notes
    -----
    Conversion delivers ``n = principal / K`` shares. The capped call is a call spread on
    ``n`` shares struck at ``K`` and capped at ``C``: it pays ``n x (min(S, C) - K)^+`` in
    value, settled in shares worth ``S``, so it hands back ``n (min(S, C) - K)^+ / S``
    shares. Net dilution ``n (1 - (min(S, C) - K)^+ / S)``: for ``K < S <= C`` that is
    ``n K / S`` (worth exactly the principal, i.e. no economic dilution); above ``C`` the
    offset stays at ``n (C - K) / S``.
    """
    n = np.asarray(principal_usd, dtype=np.float64) / conversion_price
    if cap_price is None:
        return np.broadcast_to(n, np.shape(share_price)).astype(np.float64)
    s = np.asarray(share_price, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.maximum(np.minimum(s, cap_price) - conversion_price, 0.0) / s
    return n * (1.0 - np.where(s > conversion_price, offset, 0.0))


@dataclass(frozen=True, slots=True)
class CashResult:
    """Month-coupled cash and treasury paths."""

    cash: np.ndarray  #: closing cash [USD], [P, T]
    btc_held: np.ndarray  #: closing BTC held [BTC], [P, T]
    btc_sold: np.ndarray  #: [BTC/month], [P, T]
    raised_usd: np.ndarray  #: equity raise proceeds [USD/month], [P, T]
    shares_issued: np.ndarray  #: shares issued in the month [shares], [P, T]
    short: np.ndarray  #: cash went negative with no raise possible [P], bool


CASH_SERIES = ("cash", "btc_held", "btc_sold", "raised_usd", "shares_issued")
"""The ``[P, T]`` fields of :class:`CashResult`, in order (all but ``short``)."""


def cash_loop(pre_cash_flow, btc_mined, btc_price, *, cash0, btc_held0, sell: Callable,
              issue_price=None, issue_value=None, issue_shares=None, raise_target_usd=0.0,
              min_issue_price=0.0, cash_yield=0.0, out: CashResult | None = None) -> CashResult:
    """Roll cash and BTC held forward month by month.

    Parameters
    ----------
    pre_cash_flow : ndarray [P, T]
        Every cash flow except BTC sales and equity raises [USD/month].
    btc_mined, btc_price : ndarray [P, T]  [BTC/month], [USD/BTC]
    cash0, btc_held0 : float or ndarray [P]
        Opening cash [USD] and BTC held [BTC].
    sell : callable
        ``sell(held, mined, cash_before, btc_price) -> BTC sold`` (``treasury.sell_rule``).
    issue_price : ndarray [P, T] or None
        Share price for equity raises [USD/share], given outright; None means no raises
        unless ``issue_value`` is given.
    issue_value : callable or None
        Raise at the mark instead: ``issue_value(t, rows) -> ndarray [len(rows)]`` is the
        equity value other than cash and BTC held [USD] at the end of month ``t`` (a column of
        this loop) on paths ``rows`` (an index array). It is asked for only on the paths that
        need cash that month, so a mark is evaluated where a raise is priced and nowhere else.
        The price is the value per share before the raise, ``max(issue_value + held x price
        + cash, 0) / (shares + shares this loop has issued so far)``, with the month's cash
        before the raise.
    issue_shares : ndarray [P, T] or None
        With ``issue_value``: the shares outstanding before this loop's raises [shares].
    raise_target_usd : float or ndarray [P]
        Cash left after a raise [USD].
    min_issue_price : float
        No raise below this price [USD/share] (above zero in any case).
    cash_yield : float or ndarray [P]
        Continuously compounded rate cash earns while positive [1/yr] (the risk-free rate).
    out : CashResult or None
        Arrays to write the result into (views such as months ``t0:`` of an earlier run).
        Its ``raised_usd`` and ``shares_issued`` are written where a raise happens only, so
        they must be zero on entry (those of a run without raises are).

    Returns
    -------
    CashResult
        ``out`` with ``short`` replaced, or new arrays.

    Notes
    -----
    Per month: ``cash' = cash e^{y/12} + CF`` (the growth on a positive balance only);
    ``held' = held + mined``; ``sold = sell(...)``; ``cash'' = cash' + sold x price``. If
    ``cash'' < 0`` and the issue price is positive and at least ``min_issue_price``, raise
    ``target - cash''`` at that price; otherwise the path is ``short``.
    """
    n, months = pre_cash_flow.shape
    price = np.broadcast_to(btc_price, (n, months))
    at_mark = issue_value is not None
    raising = at_mark or issue_price is not None
    if at_mark:
        issued_so_far = np.zeros(n)
    cash = np.broadcast_to(np.asarray(cash0, dtype=np.float64), (n,)).copy()
    held = np.broadcast_to(np.asarray(btc_held0, dtype=np.float64), (n,)).copy()
    target = np.broadcast_to(np.asarray(raise_target_usd, dtype=np.float64), (n,))
    growth = np.broadcast_to(np.exp(np.asarray(cash_yield, np.float64) / units.MONTHS_PER_YEAR), (n,))
    earns = bool(np.any(growth != 1.0))
    positive = np.empty(n, dtype=bool)
    # Cash, held and sold are written for every path and month, a block of months at a time;
    # a raise only where one happens, straight into its [P, T] array (zero elsewhere).
    if out is None:
        written = [np.empty((n, months)) for _ in range(3)]  # every block is copied back whole
        raised_usd, shares_issued = np.zeros((n, months)), np.zeros((n, months))
    else:
        written = [out.cash, out.btc_held, out.btc_sold]
        raised_usd, shares_issued = out.raised_usd, out.shares_issued
    # The issue price, or the shares before raises, is read on the paths that raise only.
    per_share = (np.broadcast_to(issue_shares if at_mark else issue_price, (n, months))
                 if raising else None)
    short = np.zeros(n, dtype=bool)
    need = np.empty(n, dtype=bool)
    proceeds = np.empty(n)
    for t0, ins, outs in _month_blocks([pre_cash_flow, btc_mined, price], written):
        for j in range(ins[0].shape[0]):
            t = t0 + j
            flow, mined, p_t = ins[0][j], ins[1][j], ins[2][j]
            if earns:
                np.greater(cash, 0.0, out=positive)
                np.multiply(cash, growth, out=cash, where=positive)
            cash += flow
            held += mined
            sold = outs[2][j]
            sold[:] = sell(held, mined, cash, p_t)
            held -= sold
            cash += np.multiply(sold, p_t, out=proceeds)
            np.less(cash, 0.0, out=need)
            if raising and need.any():
                rows = np.flatnonzero(need)
                if at_mark:  # the value per share before the raise, on these paths only
                    issue = issue_value(t, rows)
                    issue += held[rows] * p_t[rows]
                    issue += cash[rows]
                    np.maximum(issue, 0.0, out=issue)
                    issue /= per_share[rows, t] + issued_so_far[rows]
                else:
                    issue = per_share[rows, t]
                with np.errstate(invalid="ignore"):
                    ok = np.isfinite(issue) & (issue > 0.0) & (issue >= min_issue_price)
                sel = rows[ok]
                raised = target[sel] - cash[sel]
                issued = raised / issue[ok]
                raised_usd[sel, t] = raised
                shares_issued[sel, t] = issued
                if at_mark:
                    issued_so_far[sel] += issued
                cash[sel] += raised
                need[sel] = False
            short |= need
            outs[0][j] = cash
            outs[1][j] = held
    return CashResult(*written, raised_usd, shares_issued, short)


def divergence(base: CashResult, extra_cash_flow) -> np.ndarray:
    """First month a rerun of ``base`` can differ from it, per path [month], [P] int.

    Parameters
    ----------
    base : CashResult
        A :func:`cash_loop` run without raises.
    extra_cash_flow : ndarray [P, T]
        Cash flow the rerun adds [USD/month].

    Returns
    -------
    ndarray [P] int
        The first month with a nonzero extra flow or in which ``base``'s cash went negative
        (where a rerun allowed to raise equity would raise); ``T`` if neither.

    Notes
    -----
    Before that month the rerun adds zero to the same cash flows and raises nothing, so it
    repeats ``base``'s arithmetic exactly.
    """
    n, months = base.cash.shape
    first = np.full(n, months)
    short = np.flatnonzero(base.short)
    first[short] = np.argmax(base.cash[short] < 0.0, axis=1)
    changed = np.flatnonzero(np.any(extra_cash_flow != 0.0, axis=1))
    first[changed] = np.minimum(first[changed],
                                np.argmax(extra_cash_flow[changed] != 0.0, axis=1))
    return first


def patch(base: CashResult, rerun: CashResult, rows, start: int) -> CashResult:
    """``base`` with ``rerun`` (paths ``rows`` from month ``start``) written over it, in place.

    ``rerun`` is a :func:`cash_loop` over ``[rows, start:]`` started from ``base``'s state at
    ``start - 1``; ``base``'s other paths are not short.
    """
    for name in CASH_SERIES:
        getattr(base, name)[rows, start:] = getattr(rerun, name)
    base.short[rows] = rerun.short
    return base


_BLOCK = 8  # months per block: 8 float64 = one 64-byte cache line of each path's row


def _month_blocks(inputs, outputs):
    """Walk ``[P, T]`` arrays in blocks of months, time-major inside each block.

    Yields ``(t0, ins, outs)``: ``t0`` is the block's first month, ``ins[k]`` a contiguous
    ``[b, P]`` copy of ``inputs[k][:, t0:t0 + b]``; ``outs[k]`` is a ``[b, P]`` buffer for the
    caller to fill, copied into ``outputs[k][:, t0:t0 + b]`` when the caller asks for the next
    block (the ``for`` loop does so after the last one too).

    Notes
    -----
    A month loop over ``[P, T]`` arrays either reads strided columns (every element in its
    own cache line) or transposes whole arrays (an extra pass each way). Blocks of 8 months
    read and write each path's 64 contiguous bytes once, and the loop body sees contiguous
    rows.
    """
    n, months = outputs[0].shape
    ins_buf = [np.empty((_BLOCK, n), dtype=a.dtype) for a in inputs]
    outs_buf = [np.empty((_BLOCK, n), dtype=a.dtype) for a in outputs]
    for t0 in range(0, months, _BLOCK):
        b = min(_BLOCK, months - t0)
        ins = [buf[:b] for buf in ins_buf]
        for buf, a in zip(ins, inputs):
            np.copyto(buf, a[:, t0:t0 + b].T)
        outs = [buf[:b] for buf in outs_buf]
        yield t0, ins, outs
        for buf, a in zip(outs, outputs):
            a[:, t0:t0 + b] = buf.T
