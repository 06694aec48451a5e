"""BTC beta and R² of the stock's 12-month return by year: how far the stock decouples.

For each forward year y the regression runs across paths, every path whose stock was worth
something at the start of the year included (one that ends worthless returns -100%):

    V_{12y} / V_{12(y-1)} - 1 = a + beta · (S_{12y} / S_{12(y-1)} - 1) + e,

with V the value per share marked at the year's end on the real-world paths (V_0 today's
fair value, the same on every path) and S the BTC price
at the same month ends (S_0 the spot on the valuation date). Returns, not log returns, so a
path that ends at zero stays in. The years are also pooled, and each year is split by how
many sites have signed a tenant by its end: with no site signed the stock is a miner and its
beta says so; a falling beta and R² as sites sign is the decoupling the seed article asks
about (domain.md, "Decoupling").
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


SIGNING_STATES = ("no site signed", "some sites signed", "every site signed")


def btc_beta(cube: Any) -> dict[str, Any]:
    """BTC beta of the stock's 12-month return, by forward year, pooled, and by signing state.

    Parameters
    ----------
    cube : xarray.Dataset
        Needs the ``fair_value_per_share`` attribute (else the mean of ``value_per_share``
        [USD/share] stands in), ``forward_value_per_share``
        [USD/share] (path, horizon [months]) and ``btc_price`` [USD/BTC] (path or stored sample,
        time); the ``btc_spot_usd`` attribute (else the first month's price stands in for the
        spot); ``sign_month`` (path, site) for the signing states; ``pv_mining`` and
        ``pv_hpc`` [USD] for the HPC share.

    Returns
    -------
    dict
        ``rows``: one per forward year, {year, month, n, n_excluded, beta, beta_se, r2,
        intercept} (NaN statistics when the year lies beyond the time axis), ``n_excluded``
        counting paths worth nothing (or failed) at the year's start; ``overall``: the same
        statistics over every year's paths pooled; ``by_state``: one row per year and signing
        state present, {year, state, n, beta, beta_se, r2}; ``hpc_share_median`` and
        ``hpc_share_n`` (see :func:`hpc_share`).

    Notes
    -----
    With a stored sample of ``[path, time]`` series only the sampled paths enter.
    """
    price = cube["btc_price"]
    dim = price.dims[0]
    paths = cube["sample"].values if dim == "sample" else slice(None)
    prices = np.asarray(price.transpose(dim, "time").values, dtype=np.float64)
    spot = float(cube.attrs.get("btc_spot_usd", np.nan))
    start_price = np.full(prices.shape[0], spot) if np.isfinite(spot) else prices[:, 0]
    # Today's mark is the fair value on every path: the state today is common to all.
    fair = float(cube.attrs.get("fair_value_per_share", np.nan))
    if not np.isfinite(fair):
        fair = float(np.nanmean(cube["value_per_share"].values))
    start_value = np.full(prices.shape[0], fair)
    fwd = cube["forward_value_per_share"]
    signs = (np.asarray(cube["sign_month"].values)[paths] if "sign_month" in cube
             and cube["sign_month"].shape[1] else None)
    rows, by_state, pooled_x, pooled_y = [], [], [], []
    for year in (np.asarray(cube["horizon"].values) // 12).tolist():
        month = 12 * int(year) - 1
        end_value = np.asarray(fwd.sel(horizon=12 * year).values, dtype=np.float64)[paths]
        if month >= prices.shape[1]:
            row = ols(np.empty(0), np.empty(0))
            row.update(year=int(year), month=month, n_excluded=int(end_value.size))
            rows.append(row)
            start_value = end_value
            continue
        end_price = prices[:, month]
        with np.errstate(invalid="ignore", divide="ignore"):
            keep = (start_value > 0) & np.isfinite(end_value) & (start_price > 0)
            y = end_value[keep] / start_value[keep] - 1.0
            x = end_price[keep] / start_price[keep] - 1.0
        row = ols(x, y)
        row.update(year=int(year), month=month, n_excluded=int(keep.size - keep.sum()))
        rows.append(row)
        pooled_x.append(x)
        pooled_y.append(y)
        if signs is not None:
            signed = ((signs >= 0) & (signs <= month)).sum(axis=1)[keep]
            state = np.where(signed == 0, 0, np.where(signed == signs.shape[1], 2, 1))
            for k, name in enumerate(SIGNING_STATES):
                if signs.shape[1] == 1 and k == 1:
                    continue
                mask = state == k
                if mask.any():
                    st = ols(x[mask], y[mask])
                    by_state.append({"year": int(year), "state": name, "n": st["n"], "beta": st["beta"],
                                     "beta_se": st["beta_se"], "r2": st["r2"]})
        start_value, start_price = end_value, end_price
    overall = ols(np.concatenate(pooled_x) if pooled_x else np.empty(0),
                  np.concatenate(pooled_y) if pooled_y else np.empty(0))
    share, n_share = hpc_share(cube)
    return {"rows": rows, "overall": overall, "by_state": by_state, "hpc_share_median": share,
            "hpc_share_n": n_share}


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
