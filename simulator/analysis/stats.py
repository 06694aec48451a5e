"""Summary statistics of Monte Carlo output, each with its Monte Carlo standard error.

Cube (or arrays) in, numbers out. Failed paths arrive as NaN; they are dropped and counted,
never silently averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

PERCENTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


def summary(values: np.ndarray, *, threshold: float | None = None,
            percentiles: Sequence[float] = PERCENTILES, level: float = 0.95) -> dict[str, Any]:
    """Mean, percentiles and an exceedance probability, each with its standard error.

    Parameters
    ----------
    values : ndarray [path]
        One number per path, e.g. ``value_per_share`` [USD/share]; NaN marks a failed path.
    threshold : float, optional
        Report ``P(value > threshold)``, e.g. the market price [USD/share].
    percentiles : sequence of float
        Probabilities in (0, 1).
    level : float
        Coverage of the order-statistic confidence intervals.

    Returns
    -------
    dict
        ``n`` (paths used), ``n_failed`` (NaN paths dropped), ``mean``, ``mean_se``, ``std``,
        ``median``, ``median_se`` and ``percentiles``: {p: {value, se, ci_low, ci_high}};
        ``prob_above``: {threshold, p, se} when ``threshold`` is given, else None.

    Notes
    -----
    SE of the mean is s / sqrt(n). SE of the sample p-quantile uses its asymptotic
    distribution, sqrt(p (1 - p) / n) / f(q_p), with the density f estimated by a Gaussian
    KDE (Scott's bandwidth) at q_p. The confidence interval is distribution-free: with
    B ~ Binomial(n, p) the number of draws at or below the true quantile,
    P(x_(j) <= q_p < x_(k)) = P(j <= B <= k - 1), so j = F_B^-1(a/2) and
    k = F_B^-1(1 - a/2) + 1 give coverage >= level (a = 1 - level). The probability of
    exceeding a threshold is a binomial proportion with SE sqrt(p (1 - p) / n).
    """
    raw = np.asarray(values, dtype=np.float64).ravel()
    ok = raw[~np.isnan(raw)]
    n = ok.size
    out: dict[str, Any] = {"n": n, "n_failed": int(raw.size - n)}
    if n < 2:
        raise ValueError(f"summary needs at least 2 finite values, got {n}")
    xs = np.sort(ok)
    out["mean"] = float(xs.mean())
    out["std"] = float(xs.std(ddof=1))
    out["mean_se"] = float(out["std"] / np.sqrt(n))
    probs = np.asarray(percentiles, dtype=np.float64)
    q = np.quantile(xs, probs)
    se = quantile_se(xs, probs, q)
    lo, hi = quantile_ci(xs, probs, level)
    out["percentiles"] = {float(p): {"value": float(q[i]), "se": float(se[i]),
                                     "ci_low": float(lo[i]), "ci_high": float(hi[i])}
                          for i, p in enumerate(probs)}
    med = out["percentiles"].get(0.5) or _single(xs, 0.5, level)
    out["median"], out["median_se"] = med["value"], med["se"]
    out["prob_above"] = None if threshold is None else prob_above(ok, threshold)
    return out


def _single(xs: np.ndarray, p: float, level: float) -> dict[str, float]:
    q = np.quantile(xs, [p])
    lo, hi = quantile_ci(xs, [p], level)
    return {"value": float(q[0]), "se": float(quantile_se(xs, [p], q)[0]),
            "ci_low": float(lo[0]), "ci_high": float(hi[0])}


def quantile_se(xs: np.ndarray, probs: Sequence[float], q: np.ndarray) -> np.ndarray:
    """Asymptotic SE of sample quantiles, sqrt(p(1-p)/n) / f(q), f by Gaussian KDE."""
    probs = np.asarray(probs, dtype=np.float64)
    n = xs.size
    if np.ptp(xs) == 0.0:
        return np.zeros_like(probs)
    # A KDE on more than ~20k points costs O(n) per evaluation for no visible gain.
    sub = xs if n <= 20_000 else xs[np.linspace(0, n - 1, 20_000).astype(np.int64)]
    density = sps.gaussian_kde(sub)(np.asarray(q, dtype=np.float64))
    return np.sqrt(probs * (1 - probs) / n) / density


def quantile_ci(xs: np.ndarray, probs: Sequence[float],
                level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Distribution-free CI for quantiles from order statistics of sorted ``xs``.

    Returns (low, high) with coverage >= ``level`` (see :func:`summary` Notes).
    """
    n = xs.size
    alpha = 1.0 - level
    probs = np.asarray(probs, dtype=np.float64)
    j = sps.binom.ppf(alpha / 2, n, probs).astype(np.int64)
    k = sps.binom.ppf(1 - alpha / 2, n, probs).astype(np.int64) + 1
    low = np.where(j >= 1, xs[np.clip(j - 1, 0, n - 1)], -np.inf)
    high = np.where(k <= n, xs[np.clip(k - 1, 0, n - 1)], np.inf)
    return low, high


def prob_above(values: np.ndarray, threshold: float) -> dict[str, float]:
    """P(value > threshold) over finite values, with binomial SE sqrt(p(1-p)/n)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    p = float(np.mean(v > threshold))
    return {"threshold": float(threshold), "p": p, "se": float(np.sqrt(p * (1 - p) / v.size))}


def running_mean(values: np.ndarray, points: int = 40,
                 start: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running mean and its SE after the first n paths, on a log-spaced grid of n.

    Parameters
    ----------
    values : ndarray [path]
        In path order; NaN (failed) paths are dropped first.
    points : int
        Grid size (fewer if the log grid has duplicates).
    start : int
        Smallest path count on the grid.

    Returns
    -------
    n, mean, se : ndarray
        Path counts (int64), running mean and its SE s_n / sqrt(n).

    Notes
    -----
    Sums are accumulated about the overall mean so that the running variance
    (sum d^2 - (sum d)^2 / n) / (n - 1) does not lose precision to cancellation.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    total = v.size
    if total < 2:
        raise ValueError(f"running_mean needs at least 2 finite values, got {total}")
    grid = np.unique(np.geomspace(min(max(start, 2), total), total, points).astype(np.int64))
    d = v - v.mean()
    s1 = np.cumsum(d)[grid - 1]
    s2 = np.cumsum(d * d)[grid - 1]
    var = np.maximum(s2 - s1 * s1 / grid, 0.0) / (grid - 1)
    return grid, v.mean() + s1 / grid, np.sqrt(var / grid)


def fan(cube: Any, var: str, quantiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """Per-month quantiles of a ``[path, time]`` cube variable.

    Parameters
    ----------
    cube : xarray.Dataset
        A minersim cube; failed paths (``path_failed``) are excluded.
    var : str
        Name of a ``[path, time]`` (or stored-sample ``[sample, time]``) variable.
    quantiles : sequence of float

    Returns
    -------
    ndarray [quantile, time]
        In the variable's units; NaN for a month with no finite values.
    """
    da = cube[var]
    dim = da.dims[0]
    # Time-major float64 rows: each month's quantiles partition one contiguous row instead
    # of a column strided across the whole [path, time] array.
    data = np.ascontiguousarray(np.asarray(da.transpose(dim, "time").values).T, dtype=np.float64)
    if "path_failed" in cube:
        failed = np.asarray(cube["path_failed"].values, dtype=bool)
        rows = cube[dim].values if dim == "sample" else np.arange(data.shape[1])
        if failed[rows].any():
            data = data[:, ~failed[rows]]
    qs = np.asarray(quantiles, dtype=np.float64)
    out = np.full((qs.size, data.shape[0]), np.nan)
    finite = ~np.isnan(data)
    if finite.all():
        return np.quantile(data, qs, axis=1)
    cols = finite.any(axis=1)
    out[:, cols] = np.nanquantile(data[cols], qs, axis=1)
    return out
