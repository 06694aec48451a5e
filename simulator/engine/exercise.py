"""Least-squares Monte Carlo exercise: an owner switching between regimes month by month.

A real option is a choice of regime (operating, mothballed, sold; alive or exercised) made at
each month-end on what is known then. :func:`fit_switching` estimates the policy by
Longstaff-Schwartz backward induction on pricing-measure paths: at each month-end the value
of entering each regime next month is regressed on a basis of the state (``marks.basis``, the
mark's own regression), and a path switches where a switch's fitted value, net of its cost,
beats staying. :func:`apply_switching` runs a fitted policy forward on other paths (the run's,
or real-world paths: the policy is a function of the state, decided on value, so the same
function steers both measures), and :func:`path_value` values what a path did. An American
option is the two-regime case (:func:`american_option`).

Timing. Month t's cash flow in regime r is ``flows[r][:, t]``, paid at the end of month t and
discounted ``disc ** (t + 1)``. At the end of month t (t = 0 .. T-2) the owner picks next
month's regime; a switch from r to s costs ``moves[(r, s)][:, t]`` then (a negative cost is a
sale's proceeds). Month 0's regime is given (``start``). After month T-1 a path in regime r is
worth ``terminal[r]`` (valued at the horizon).

References
----------
Longstaff, F. A. and Schwartz, E. S. (2001), "Valuing American options by simulation: a simple
least-squares approach", Review of Financial Studies 14(1), 113-147.
Brennan, M. J. and Schwartz, E. S. (1985), "Evaluating natural resource investments", Journal
of Business 58(2), 135-157 (a mine that may close, reopen and be abandoned).
Gamba, A. (2003), "Real options valuation: a Monte Carlo approach", working paper (LSMC for
switching options). domain.md "Valuation"; issue 16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from simulator.engine import marks
from simulator.errors import RunError

Moves = Mapping[tuple[int, int], "float | np.ndarray"]
"""``(from, to) -> cost`` of switching at a month-end [USD], scalar, ``[P]`` or ``[P, T]``;
a pair not listed cannot be made (staying costs nothing)."""


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A fitted switching policy: the continuation value of each regime at each month-end."""

    continuation: tuple[tuple[marks.Mark | None, ...], ...]
    """[T-1][R] fitted value at month-end t of entering regime r for month t + 1 [USD]; None
    where that value is zero on every fitting path (a regime that ends everything)."""
    state_names: tuple[str, ...]
    """State variables the regressions read, each [P, T] at month-ends."""
    regimes: int
    """Number of regimes R."""

    def values(self, state_rows: Mapping[str, np.ndarray], t: int, n: int) -> np.ndarray:
        """Fitted continuation of every regime at month-end ``t`` on ``n`` paths, [R, P]."""
        row = {k: state_rows[k][t] for k in self.state_names}
        return np.stack([np.zeros(n) if m is None else m.predict(row)
                         for m in self.continuation[t]])


def _col(x, n: int, t: int) -> np.ndarray:
    """Column t of a scalar, ``[P]`` or ``[P, T]`` input, as [P]."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, t]
    return np.broadcast_to(a, (n,))


def _cost_table(moves: Moves, regimes: int) -> dict[tuple[int, int], object]:
    table: dict[tuple[int, int], object] = {(r, r): 0.0 for r in range(regimes)}
    for (a, b), cost in moves.items():
        if not (0 <= a < regimes and 0 <= b < regimes) or a == b:
            raise RunError(f"exercise: move {(a, b)} must join two different regimes of {regimes}")
        table[(a, b)] = cost
    return table


def _choose(current: np.ndarray, cont: np.ndarray, table, n: int, t: int,
            consider: np.ndarray | None) -> np.ndarray:
    """Next regime of each path: the move whose fitted value net of its cost is highest
    (staying wins ties); only where ``consider`` is True."""
    nxt = current.copy()
    best = np.full(n, -np.inf)
    regimes = cont.shape[0]
    for r in range(regimes):
        on = current == r
        if consider is not None:
            on &= consider
        if not on.any():
            continue
        best_r = cont[r].copy()  # staying
        pick = np.full(n, r)
        for s in range(regimes):
            if s == r or (r, s) not in table:
                continue
            value = cont[s] - _col(table[(r, s)], n, t)
            better = value > best_r
            best_r = np.where(better, value, best_r)
            pick = np.where(better, s, pick)
        nxt[on] = pick[on]
        best[on] = best_r[on]
    return nxt


def fit_switching(flows: Sequence, moves: Moves, terminal: Sequence, state: Mapping[str, np.ndarray],
                  discount, *, start: int | np.ndarray = 0, consider: np.ndarray | None = None,
                  degree: int = 2, cross: bool = True,
                  ridge: float = marks.DEFAULT_RIDGE) -> tuple[Policy, np.ndarray]:
    """Fit a switching policy by least-squares backward induction.

    Parameters
    ----------
    flows : sequence of R arrays [P, T] (or scalars)
        Cash flow of each month in each regime [USD/month].
    moves : mapping ``(from, to) -> cost``
        Cost of each allowed switch at a month-end [USD] (:data:`Moves`).
    terminal : sequence of R arrays [P] (or scalars)
        Value after the horizon of a path in each regime in the last month [USD].
    state : mapping of str to ndarray [P, T]
        State at each month-end the decision may read, each in its own units.
    discount : float or ndarray [P]
        One month's discount factor ``exp(-r / 12)`` [1].
    start : int or ndarray [P] of int
        Regime in month 0.
    consider : ndarray of bool [P, T], optional
        Paths on which a switch is considered at each month-end; the regressions are fitted on
        them only (Longstaff and Schwartz's in-the-money paths). None: every path.
    degree, cross, ridge
        The regression's basis and ridge (``marks.basis``, ``marks.fit_mark``).

    Returns
    -------
    policy : Policy
        The fitted continuation values, for :func:`apply_switching` on other paths.
    value : ndarray [P]
        Each fitting path's discounted cash flows under the policy, valued today [USD]: an
        in-sample estimate (the policy has seen these paths; value it on others to avoid
        foresight).

    Notes
    -----
    With ``G_r`` a path's value at month-end t of having been in regime r through month t,
    ``G_r = terminal_r`` at T-1 and, for t = T-2 .. 0,
    ``W_s = disc (flow_s[t+1] + G_s)`` (the realised value of entering s for month t+1),
    ``C_s(x_t) = E[W_s | x_t]`` by least squares, and
    ``G_r = W_{s*} - cost(r, s*)`` with ``s* = argmax_s C_s(x_t) - cost(r, s)``: decisions use
    the fitted values, the cash flows carried back are the realised ones (Longstaff and
    Schwartz). A regime whose W is zero on every path is not regressed.
    """
    regimes = len(flows)
    table = _cost_table(moves, regimes)
    names = tuple(state)
    rows = marks.month_rows(state, names)
    n, months = next(iter(state.values())).shape if state else (len(terminal[0]), 0)
    disc = np.broadcast_to(np.asarray(discount, np.float64), (n,))
    g = [np.array(np.broadcast_to(np.asarray(x, np.float64), (n,))) for x in terminal]
    fits: list[tuple[marks.Mark | None, ...]] = [()] * max(months - 1, 0)
    for t in range(months - 2, -1, -1):
        w = [disc * (_col(flows[s], n, t + 1) + g[s]) for s in range(regimes)]
        where = np.ones(n, bool) if consider is None else np.asarray(consider[:, t], bool)
        fit_rows = np.flatnonzero(where)
        row = {k: rows[k][t] for k in names}
        fitted, cont = [], np.zeros((regimes, n))
        for s in range(regimes):
            if not w[s].any() or fit_rows.size == 0:
                fitted.append(None)
                continue
            sub = {k: v[fit_rows] for k, v in row.items()}
            X, scaling = marks.basis(sub, degree, cross)
            coef = marks._solve(X, w[s][fit_rows], ridge)
            mark = marks.Mark(coef=coef, scaling=scaling,
                              names=marks.column_names(scaling, degree, cross), degree=degree,
                              cross=cross, r2_in=marks._r2(w[s][fit_rows], X @ coef),
                              r2_out=float("nan"), n_fit=int(fit_rows.size), n_test=0)
            fitted.append(mark)
            cont[s] = mark.predict(row)
        fits[t] = tuple(fitted)
        # Every regime r chooses from the same W's; each G_r is replaced only after all are.
        new_g = []
        for r in range(regimes):
            choice = _choose(np.full(n, r), cont, table, n, t, where)
            gr = w[r].copy()
            for s in range(regimes):
                moved = choice == s
                if s != r and moved.any():
                    gr[moved] = w[s][moved] - _col(table[(r, s)], n, t)[moved]
            new_g.append(gr)
        g = new_g
    first = np.broadcast_to(np.asarray(start), (n,))
    value = np.zeros(n)
    for r in range(regimes):
        on = first == r
        value[on] = (disc * (_col(flows[r], n, 0) + g[r]))[on] if months else g[r][on]
    return Policy(tuple(fits), names, regimes), value


def apply_switching(policy: Policy, moves: Moves, state: Mapping[str, np.ndarray], *,
                    start: int | np.ndarray = 0, consider: np.ndarray | None = None) -> np.ndarray:
    """The regime of every path in every month under a fitted policy, [P, T] int8.

    Parameters
    ----------
    policy : Policy
        From :func:`fit_switching` (on other paths, or these).
    moves, consider
        As in :func:`fit_switching`, on these paths.
    state : mapping of str to ndarray [P, T]
        These paths' state at each month-end (every name the policy reads).
    start : int or ndarray [P] of int
        Regime in month 0.
    """
    table = _cost_table(moves, policy.regimes)
    missing = [k for k in policy.state_names if k not in state]
    if missing:
        raise RunError(f"exercise: state variables {missing} are missing (got {sorted(state)})")
    rows = marks.month_rows(state, policy.state_names)
    n, months = state[policy.state_names[0]].shape if policy.state_names else (0, 0)
    if not policy.state_names:  # an intercept-only policy reads no state: take the shape from moves
        n, months = _shape(moves, start)
    regime = np.empty((n, months), np.int8)
    regime[:, 0] = np.broadcast_to(np.asarray(start), (n,))
    for t in range(months - 1):
        cont = policy.values(rows, t, n)
        where = None if consider is None else np.asarray(consider[:, t], bool)
        regime[:, t + 1] = _choose(regime[:, t].astype(np.int64), cont, table, n, t, where)
    return regime


def _shape(moves: Moves, start) -> tuple[int, int]:
    for cost in moves.values():
        a = np.asarray(cost)
        if a.ndim == 2:
            return a.shape
    raise RunError("exercise: a policy without state needs a [P, T] move cost to know the paths")


def path_value(regime: np.ndarray, flows: Sequence, moves: Moves, terminal: Sequence,
               discount) -> np.ndarray:
    """What each path's regimes are worth today: flows, switching costs and terminal [USD], [P].

    ``sum_t disc^(t+1) (flow_{r_t}[t] - cost(r_t, r_{t+1})[t]) + disc^T terminal_{r_{T-1}}``.
    """
    n, months = regime.shape
    regimes = len(flows)
    table = _cost_table(moves, regimes)
    disc = np.broadcast_to(np.asarray(discount, np.float64), (n,))
    value, factor = np.zeros(n), np.ones(n)
    for t in range(months):
        factor = factor * disc
        now = regime[:, t]
        month = np.zeros(n)
        for r in range(regimes):
            on = now == r
            if on.any():
                month[on] = _col(flows[r], n, t)[on]
        if t + 1 < months:
            nxt = regime[:, t + 1]
            for (a, b), cost in table.items():
                on = (now == a) & (nxt == b)
                if a != b and on.any():
                    month[on] -= _col(cost, n, t)[on]
        value += factor * month
    last = regime[:, -1] if months else np.zeros(n, np.int8)
    for r in range(regimes):
        on = last == r
        value[on] += (factor * np.broadcast_to(np.asarray(terminal[r], np.float64), (n,)))[on]
    return value


def american_option(fit_paths: np.ndarray, paths: np.ndarray,
                    payoff: Callable[[np.ndarray], np.ndarray], discount_per_step: float, *,
                    degree: int = 3) -> tuple[float, float]:
    """An option exercisable at dates 1..N, its policy fitted on some paths and valued on others.

    Parameters
    ----------
    fit_paths, paths : ndarray [P, N+1]
        Underlying at dates 0..N [USD]: the policy is fitted on ``fit_paths`` and valued on
        ``paths`` (independent draws, so the price carries no foresight and is biased only
        low, by how far the fitted policy is from the best one).
    payoff : callable ``(S [P, N]) -> [P, N]``
        Exercise value at dates 1..N [USD].
    discount_per_step : float
        ``exp(-r dt)`` [1].
    degree : int
        Degree of the continuation regression in S (in-the-money paths only).

    Returns
    -------
    price, standard_error : float
        Mean over ``paths`` of the discounted exercise cash flow, and its standard error [USD].

    Notes
    -----
    Two regimes: 0 alive (no cash flow), 1 exercised (nothing after). Exercising at date
    j = t + 1 < N is the move (0, 1) at month-end t with cost ``-payoff``; at date N the
    option is exercised where the payoff is positive (``terminal``).
    """
    def setup(s):
        s = np.asarray(s, np.float64)
        pay = np.maximum(payoff(s[:, 1:]), 0.0)
        n = s.shape[0]
        moves = {(0, 1): -pay}
        return pay, moves, [np.zeros(n), np.zeros(n)], [pay[:, -1], np.zeros(n)], {"S": s[:, 1:]}
    pay, moves, flows, terminal, state = setup(fit_paths)
    policy, _ = fit_switching(flows, moves, terminal, state, discount_per_step, consider=pay > 0,
                              degree=degree, cross=False)
    pay, moves, flows, terminal, state = setup(paths)
    regime = apply_switching(policy, moves, state, consider=pay > 0)
    v = path_value(regime, flows, moves, terminal, discount_per_step)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
