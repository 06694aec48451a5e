"""Least-squares Monte Carlo: the regression behind the mark V_t(state) and the real options.

A mark is a linear regression of discounted cash flows after t on a polynomial basis of the
state at t (Longstaff and Schwartz 2001). :func:`basis` builds the design matrix from named
state arrays, and :func:`fit_mark` fits it on one set of paths and scores it on another. The
real options' backward induction (``engine/exercise.py``) regresses on the same basis, and is
checked against a binomial tree (an American put) before the valuation relies on it.

The split between fitting and test paths is an argument (for example path-index parity), never
drawn here, so a fit is a deterministic function of its inputs and does not depend on how the
paths were chunked.

References
----------
domain.md "Valuation: two questions, two measures, one mark"; issues 14 and 16.
Longstaff, F. A. and Schwartz, E. S. (2001), "Valuing American options by simulation: a simple
least-squares approach", Review of Financial Studies 14(1), 113-147.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from simulator.errors import RunError

DEFAULT_RIDGE = 1e-8


@dataclass(frozen=True, slots=True, eq=False)
class Scaling:
    """How each state variable was standardised: ``z = (x - mean) / std``."""

    names: tuple[str, ...]
    """State variables kept, in column order."""
    mean: np.ndarray
    """[D] mean of each kept variable, in its own units."""
    std: np.ndarray
    """[D] standard deviation of each kept variable, in its own units (all > 0)."""
    dropped: tuple[str, ...] = ()
    """Variables constant on the paths the scaling was computed from (absorbed by the intercept)."""


def scaling_of(state: Mapping[str, np.ndarray]) -> Scaling:
    """Mean and standard deviation of each state variable; exactly constant ones are dropped.

    Parameters
    ----------
    state : mapping of str to ndarray [P]
        State variables on the paths, each in its own units.

    Returns
    -------
    Scaling
        Kept names with their mean and std [units of each variable], and the dropped names.

    Notes
    -----
    A variable is dropped when its largest and smallest values are equal. That test is exact,
    where ``std == 0`` is not (a constant 0.1 has a mean that differs from 0.1 by rounding).
    """
    kept, mean, std, dropped = [], [], [], []
    for name, x in state.items():
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0 or x.max() == x.min():
            dropped.append(name)
            continue
        kept.append(name)
        mean.append(x.mean())
        std.append(x.std())
    return Scaling(tuple(kept), np.array(mean), np.array(std), tuple(dropped))


def basis(state: Mapping[str, np.ndarray], degree: int = 2, cross: bool = True, *,
          scaling: Scaling | None = None) -> tuple[np.ndarray, Scaling]:
    """Design matrix of an intercept and Hermite polynomials of the standardised state.

    Parameters
    ----------
    state : mapping of str to ndarray [P]
        State variables at one date (log BTC price, MW energised, ...), each in its own units.
    degree : int
        Highest polynomial degree of each variable (>= 1).
    cross : bool
        Add the pairwise products ``z_i z_j`` (i < j) when ``degree >= 2``.
    scaling : Scaling, optional
        Standardisation to apply (from an earlier call, so that new paths are transformed as the
        fitting paths were). Computed from ``state`` when omitted.

    Returns
    -------
    X : ndarray [P, K]
        Columns ``1``, then ``He_k(z_d)`` for k = 1..degree and each kept variable d, then the
        cross products [1]. ``K = 1 + D degree + D (D - 1) / 2`` with cross terms.
    scaling : Scaling
        The standardisation used.

    Notes
    -----
    ``z = (x - mean) / std`` and probabilists' Hermite polynomials ``He_0 = 1``, ``He_1 = z``,
    ``He_{k+1} = z He_k - k He_{k-1}``. They span the same space as the powers ``z^k``, so the
    fitted values are those of plain polynomials, but they are orthogonal when z is standard
    normal (roughly true of log prices and of many standardised states), which keeps the normal
    equations well conditioned at high degree. Laguerre polynomials, the paper's choice, suit a
    positive variable scaled by the strike; a centred z is not that.
    Constant variables (see :func:`scaling_of`) carry no information beyond the intercept and are
    left out, so nothing is divided by zero.
    """
    if scaling is None:
        scaling = scaling_of(state)
    z = []
    for name, m, s in zip(scaling.names, scaling.mean, scaling.std):
        if name not in state:
            raise RunError(f"marks: state variable {name!r} is missing (got {sorted(state)}); "
                           "a mark needs every variable it was fitted on")
        z.append((np.asarray(state[name], dtype=np.float64) - m) / s)
    n = len(next(iter(state.values()))) if state else 0
    d = len(z)
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)] if cross and degree >= 2 else []
    X = np.empty((n, 1 + d * degree + len(pairs)), order="F")  # built and read column by column
    X[:, 0] = 1.0
    if d == 0:
        return X, scaling
    zm = X[:, 1:1 + d]  # He_1 = z, written in place
    for i, zi in enumerate(z):
        zm[:, i] = zi
    prev, cur = np.ones_like(zm), zm
    for k in range(2, degree + 1):
        nxt = X[:, 1 + (k - 1) * d:1 + k * d]
        np.multiply(zm, cur, out=nxt)
        nxt -= (k - 1) * prev
        prev, cur = cur, nxt
    for c, (i, j) in enumerate(pairs, start=1 + d * degree):
        np.multiply(zm[:, i], zm[:, j], out=X[:, c])
    return X, scaling


def column_names(scaling: Scaling, degree: int, cross: bool) -> tuple[str, ...]:
    """Names of :func:`basis`'s columns: ``1``, ``x``, ``He2(x)``, ..., ``x*y``."""
    names = list(scaling.names)
    cols = ["1"]
    for k in range(1, degree + 1):
        cols += names if k == 1 else [f"He{k}({n})" for n in names]
    if cross and degree >= 2:
        cols += [f"{a}*{b}" for i, a in enumerate(names) for b in names[i + 1:]]
    return tuple(cols)


def _solve(X: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge least squares ``(X'X/n + ridge D) b = X'y/n``, D the identity without the intercept.

    The columns of :func:`basis` have variance of order one, so one relative ``ridge`` fits all
    of them; it makes collinear states (two variables equal on every path) solvable, and at
    1e-8 it moves a well-posed fit by about 1e-8 of itself.
    """
    n = max(len(y), 1)
    gram = X.T @ X / n
    idx = np.arange(1, X.shape[1])
    gram[idx, idx] += ridge
    return np.linalg.solve(gram, X.T @ y / n)


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    """``1 - SSE/SST`` [1]; for a constant ``y``, 1 if matched to rounding, else 0."""
    if y.max() == y.min():
        return 1.0 if np.allclose(fitted, y, rtol=1e-9, atol=0.0) else 0.0
    sse = float(np.sum((y - fitted) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - sse / sst


@dataclass(frozen=True, slots=True, eq=False)
class Mark:
    """A fitted mark: ``V(state) = basis(state) @ coef``."""

    coef: np.ndarray
    """[K] coefficients on :func:`basis`'s columns [units of the target]."""
    scaling: Scaling
    """Standardisation of the state, from the fitting paths."""
    names: tuple[str, ...]
    """[K] column names (``1``, ``x``, ``He2(x)``, ``x*y``; x standardised)."""
    degree: int
    cross: bool
    r2_in: float
    """R² on the fitting paths [1]."""
    r2_out: float
    """R² on the held-out test paths, ``1 - SSE/SST`` there [1]."""
    n_fit: int
    n_test: int

    def predict(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """The mark on other paths [units of the target], [P], using the fitting paths' scaling.

        Notes
        -----
        ``basis(state) @ coef`` summed term by term, ``c_0 + sum_k sum_d c_kd He_k(z_d) +
        sum_i z_i sum_{j>i} c_ij z_j``, over ``[P]`` vectors: no ``[P, K]`` design matrix, and
        each path's value is the same sum of the same terms whatever else is in the chunk.
        Each ``state`` value is read once; contiguous ``[P]`` arrays (month rows of a ``[T, P]``
        layout) read fastest.
        """
        names = self.scaling.names
        for name in names:
            if name not in state:
                raise RunError(f"marks: state variable {name!r} is missing (got {sorted(state)}); "
                               "a mark needs every variable it was fitted on")
        n = len(next(iter(state.values()))) if state else 0
        out = np.full(n, self.coef[0])
        d = len(names)
        z = [(np.asarray(state[k], dtype=np.float64) - m) / sd
             for k, m, sd in zip(names, self.scaling.mean, self.scaling.std)]
        prev, cur = [1.0] * d, z
        for k in range(1, self.degree + 1):
            for i in range(d):
                out += self.coef[1 + (k - 1) * d + i] * cur[i]
            if k < self.degree:  # He_{k+1} = z He_k - k He_{k-1}
                prev, cur = cur, [zi * c - k * p for zi, c, p in zip(z, cur, prev)]
        if self.cross and self.degree >= 2:
            # sum_{i<j} c_ij z_i z_j = sum_i z_i (sum_{j>i} c_ij z_j), accumulated in place.
            col, acc, term = 1 + d * self.degree, np.empty(n), np.empty(n)
            for i in range(d - 1):
                np.multiply(z[i + 1], self.coef[col], out=acc)
                for j in range(i + 2, d):
                    np.multiply(z[j], self.coef[col + j - i - 1], out=term)
                    acc += term
                col += d - i - 1
                acc *= z[i]
                out += acc
        return out


def fit_mark(state: Mapping[str, np.ndarray], target: np.ndarray, *, fit_mask: np.ndarray,
             degree: int = 2, cross: bool = True, ridge: float = DEFAULT_RIDGE) -> Mark:
    """Regress ``target`` on a basis of ``state`` over the fitting paths; score it on the others.

    Parameters
    ----------
    state : mapping of str to ndarray [P]
        State variables at the mark date, each in its own units.
    target : ndarray [P]
        Discounted cash flows after the mark date, per path [e.g. USD/share].
    fit_mask : ndarray of bool [P]
        True for the paths the regression is fitted on, False for the held-out test paths.
        Pass a deterministic rule (e.g. even path index) so the fit does not depend on chunking.
    degree, cross
        Basis options, see :func:`basis`.
    ridge : float
        Relative ridge on every column but the intercept [1]; see Notes.

    Returns
    -------
    Mark
        Coefficients [units of ``target``], the scaling, column names, and R² in and out of sample.

    Raises
    ------
    RunError
        Fewer than two fitting or two test paths, or non-finite inputs.

    Notes
    -----
    The state is standardised with the fitting paths' mean and std, then
    ``(X'X/n + ridge D) b = X'y/n`` is solved, D the identity without the intercept. Normal
    equations rather than ``lstsq``: the Hermite columns of a standardised state are close to
    orthogonal, so squaring the condition number costs little; ``X'X`` and ``X'y`` add up over
    chunks; and the tiny ridge turns a collinear state (MW signed = MW energised on every path)
    into a solvable system instead of a LinAlgError. The out-of-sample R² is ``1 - SSE/SST`` on
    the test paths with their own mean in SST.
    """
    y = np.asarray(target, dtype=np.float64)
    fit_mask = _checked(state, y, fit_mask)
    return _fit({k: np.asarray(v)[fit_mask] for k, v in state.items()}, y[fit_mask],
                {k: np.asarray(v)[~fit_mask] for k, v in state.items()}, y[~fit_mask],
                degree, cross, ridge)


def _checked(state: Mapping[str, np.ndarray], target: np.ndarray, fit_mask) -> np.ndarray:
    """``fit_mask`` as bool, after checking it leaves 2 paths each side and every input is finite."""
    fit_mask = np.asarray(fit_mask, dtype=bool)
    n_fit = int(fit_mask.sum())
    n_test = fit_mask.size - n_fit
    if n_fit < 2 or n_test < 2:
        raise RunError(f"marks: fit_mask must leave at least 2 fitting and 2 test paths "
                       f"(got {n_fit} and {n_test})")
    for name, x in [("target", target), *state.items()]:
        bad = int(np.sum(~np.isfinite(x)))
        if bad:
            raise RunError(f"marks: {name} has {bad} non-finite values of {np.shape(x)[-1]} paths")
    return fit_mask


def _fit(fit_state: Mapping[str, np.ndarray], y_fit: np.ndarray, test_state: Mapping[str, np.ndarray],
         y_test: np.ndarray, degree: int, cross: bool, ridge: float) -> Mark:
    """:func:`fit_mark` on its fitting and test paths, already split."""
    X, scaling = basis(fit_state, degree, cross)
    coef = _solve(X, y_fit, ridge)
    Xt, _ = basis(test_state, degree, cross, scaling=scaling)
    return Mark(coef=coef, scaling=scaling, names=column_names(scaling, degree, cross),
                degree=degree, cross=cross, r2_in=_r2(y_fit, X @ coef),
                r2_out=_r2(y_test, Xt @ coef), n_fit=len(y_fit), n_test=len(y_test))


@dataclass(frozen=True, slots=True, eq=False)
class MarkSeries:
    """One fitted mark per month, ``V_t(state)`` for ``t = 0 .. T-1`` [units of the target]."""

    marks: tuple[Mark, ...]
    """[T] the mark of each month-end."""
    state_names: tuple[str, ...]
    """State variables every month's basis may use."""
    floored: Mapping[int, Mark] = field(default_factory=dict)
    """Month-end -> the value to equity with limited liability, ``E[max(equity, 0) | state]``,
    regressed on the state and the net financial position: the forward values' mark."""
    policy: object = None
    """The real options' fitted exercise policy (``exercise.Policy``) on the same pricing paths,
    applied to every run's paths; None when every decision is a fixed rule."""
    exercised: Mapping = field(default_factory=dict)
    """When the policy is used on the fitting paths (pricing measure), year by year
    (``mothball.exercise_summary``); empty without one."""
    conversions: Mapping = field(default_factory=dict)
    """Site name -> its fitted conversion policy (``exercise.Policy``), for sites whose
    conversion is decided (``conversion.decision: lsmc``); empty otherwise."""
    converted: Mapping = field(default_factory=dict)
    """Site name -> when its offers are accepted on the fitting paths, year by year
    (``conversion.exercise_summary``)."""
    renewal_policy: object = None
    """The fleet renewal's fitted policies (one ``exercise.Policy`` per machine cohort) when
    renewal is decided (``company.fleet.renewal.decision: lsmc``); None otherwise."""
    renewed: Mapping = field(default_factory=dict)
    """When the fleet is renewed on the fitting paths, year by year
    (``renewal.exercise_summary``); empty without the decision."""

    @property
    def r2_out(self) -> np.ndarray:
        """[T] out-of-sample R² of each month's mark [1]."""
        return np.array([m.r2_out for m in self.marks])

    @property
    def r2_in(self) -> np.ndarray:
        """[T] in-sample R² of each month's mark [1]."""
        return np.array([m.r2_in for m in self.marks])

    def at(self, state: Mapping[str, np.ndarray], month: int) -> np.ndarray:
        """The mark at the end of ``month`` on other paths, [P]; ``state`` maps names to [P, T]."""
        return self.marks[month].predict({k: state[k][:, month] for k in self.state_names})


def fit_series(state: Mapping[str, np.ndarray], target: np.ndarray, *, fit_mask: np.ndarray,
               degree: int = 2, cross: bool = True) -> MarkSeries:
    """Fit :func:`fit_mark` at every month-end of ``[P, T]`` state and target arrays.

    Parameters
    ----------
    state : mapping of str to ndarray [P, T]
        State variables at each month-end, in their own units.
    target : ndarray [P, T]
        Discounted cash flows after each month-end, valued at it [USD].
    fit_mask : ndarray of bool [P]
        Fitting paths (True) and held-out test paths (False).
    degree, cross
        Basis options (:func:`basis`).
    """
    months = target.shape[1]
    names = tuple(state)
    rows = month_rows(state, names)
    target_rows = np.ascontiguousarray(np.asarray(target, dtype=np.float64).T)
    fit_mask = _checked(rows, target_rows, fit_mask)
    # Split once, month rows [T, paths] each side, rather than gathering every month.
    on, off = np.flatnonzero(fit_mask), np.flatnonzero(~fit_mask)
    fit = {k: v.take(on, axis=1) for k, v in rows.items()}
    test = {k: v.take(off, axis=1) for k, v in rows.items()}
    y_fit, y_test = target_rows.take(on, axis=1), target_rows.take(off, axis=1)
    marks = tuple(_fit({k: fit[k][t] for k in names}, y_fit[t], {k: test[k][t] for k in names},
                       y_test[t], degree, cross, DEFAULT_RIDGE) for t in range(months))
    return MarkSeries(marks, names)


_TRANSPOSE_PATHS = 1024
"""Paths per block of :func:`month_rows`' transpose: 1,024 paths x 120 months of float64 is
under a megabyte, so a block is read once from cache while its month rows are written."""


def month_rows(state: Mapping[str, np.ndarray], names) -> dict[str, np.ndarray]:
    """Each [P, T] state variable as contiguous month rows [T, P]: one transpose, so every
    month's basis reads contiguous memory instead of a strided column.

    The transpose goes a block of paths at a time; a whole-array copy of the transposed view
    writes every month row on every path and ran about three times slower.
    """
    out = {}
    for k in names:
        a = np.asarray(state[k], dtype=np.float64)
        rows = np.empty((a.shape[1], a.shape[0]))
        for i in range(0, a.shape[0], _TRANSPOSE_PATHS):
            rows[:, i:i + _TRANSPOSE_PATHS] = a[i:i + _TRANSPOSE_PATHS].T
        out[k] = rows
    return out
