"""BTC beta and R² of forward value per share by year: how far the stock decouples.

For each forward year y the regression runs across paths:
ln(value_per_share_forward[:, y]) = a + beta · ln(btc_price at month 12y - 1) + e.
A falling beta and R² as megawatts convert to leases is the decoupling the seed article
asks about (domain.md, "Decoupling").
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ols(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Simple least squares of y on x with an intercept.

    Returns
    -------
    dict
        ``beta``, ``beta_se``, ``intercept``, ``r2``, ``n``.

    Notes
    -----
    beta = Sxy / Sxx; residual variance s² = SSR / (n - 2); SE(beta) = sqrt(s² / Sxx);
    R² = 1 - SSR / SST.
    """
    n = x.size
    if n < 3:
        nan = float("nan")
        return {"beta": nan, "beta_se": nan, "intercept": nan, "r2": nan, "n": n}
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    sst = float(dy @ dy)
    beta = float(dx @ dy) / sxx if sxx > 0 else float("nan")
    resid = dy - beta * dx
    ssr = float(resid @ resid)
    return {"beta": beta, "beta_se": float(np.sqrt(ssr / (n - 2) / sxx)) if sxx > 0 else float("nan"),
            "intercept": float(y.mean() - beta * x.mean()),
            "r2": 1.0 - ssr / sst if sst > 0 else float("nan"), "n": n}


def btc_beta(cube: Any) -> dict[str, Any]:
    """BTC elasticity of forward value per share, one row per forward year.

    Parameters
    ----------
    cube : xarray.Dataset
        Needs ``value_per_share_forward`` [USD/share] (path, horizon_year) and ``btc_price``
        [USD/BTC] (path or stored sample, time); ``pv_mining`` and ``pv_hpc`` [USD] for the
        HPC share.

    Returns
    -------
    dict
        ``rows``: list of {year, month, n, n_dropped, beta, beta_se, r2, intercept} (NaN
        statistics when the horizon lies beyond the time axis); ``hpc_share_median`` and
        ``hpc_share_n``: median over paths of pv_hpc / (pv_mining + pv_hpc) [1].

    Notes
    -----
    Paths with a non-positive or NaN forward value or price cannot enter a log regression;
    they are dropped and counted in ``n_dropped``. With a stored sample of ``[path, time]``
    series only the sampled paths enter.
    """
    price = cube["btc_price"]
    dim = price.dims[0]
    fwd = cube["value_per_share_forward"]
    if dim == "sample":
        fwd = fwd.sel(path=cube["sample"].values)
    prices = np.asarray(price.transpose(dim, "time").values, dtype=np.float64)
    n_time = prices.shape[1]
    rows = []
    for year in np.asarray(cube["horizon_year"].values).tolist():
        month = 12 * int(year) - 1
        v = np.asarray(fwd.sel(horizon_year=year).values, dtype=np.float64)
        if month >= n_time:
            row = ols(np.empty(0), np.empty(0))
            row.update(year=int(year), month=month, n_dropped=int(v.size))
            rows.append(row)
            continue
        s = prices[:, month]
        with np.errstate(invalid="ignore"):
            keep = (v > 0) & (s > 0)
        row = ols(np.log(s[keep]), np.log(v[keep]))
        row.update(year=int(year), month=month, n_dropped=int(v.size - keep.sum()))
        rows.append(row)
    share, n_share = hpc_share(cube)
    return {"rows": rows, "hpc_share_median": share, "hpc_share_n": n_share}


def hpc_share(cube: Any) -> tuple[float, int]:
    """Median over paths of pv_hpc / (pv_mining + pv_hpc) [1], and the paths used.

    Paths where the denominator is not positive (the share is meaningless) are left out.
    """
    if "pv_hpc" not in cube or "pv_mining" not in cube:
        return float("nan"), 0
    hpc = np.asarray(cube["pv_hpc"].values, dtype=np.float64)
    total = hpc + np.asarray(cube["pv_mining"].values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        keep = total > 0
    if not keep.any():
        return float("nan"), 0
    return float(np.median(hpc[keep] / total[keep])), int(keep.sum())
