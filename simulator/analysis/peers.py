"""The peer group: companies valued on one set of bitcoin, fee and network paths, side by side.

Numbers in, numbers out. The input is one cube per company (``dict[ticker, cube]``, as
:func:`simulator.run.simulate_peers` returns it), every cube on the same world paths: path i
is the same bitcoin, fee and hashrate path in every cube. So statistics across companies are
computed path by path on the per-path variables, which every cube holds for all paths.

Two measures (domain.md, "Valuation"), and every figure says which:

* **pricing**: today's fair value per share (the mean of ``value_per_share`` with its
  control-variate standard error), the upside against the market price, the HPC share of
  value, the value per EH/s and per MW, the breakeven BTC spot;
* **real-world**: the 12-month mark ``forward_value_per_share`` at 12 months, the return an
  investor buying at today's market price would make, its correlations across companies, the
  pair trades and the BTC betas.

The 12-month return of company c on path i is r_c,i = F_c,i / P_c - 1, with F the mark in
12 months [USD/share] and P today's market price [USD/share]: the stock is assumed to trade
at the model's mark in a year. A pair trade long A / short B in equal dollar amounts returns
r_A - r_B on each path (no borrow cost, no financing, no dividends).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulator.analysis import decoupling, stats
from simulator.errors import RunError

HORIZON_MONTHS = 12
"""The horizon of the returns, distributions and correlations [months]."""

PERCENTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
"""Percentiles of the 12-month distributions (the table shows P10, P50, P90; the boxes P25, P75)."""

PAIR_PERCENTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
"""Percentiles of a pair trade's 12-month return."""

PRICING, REAL_WORLD, MARKET, INPUT = "pricing", "real-world", "market", "input"
"""Labels of what each figure is: a pricing-measure value, a real-world forecast, an observed
market figure, or a scenario input."""

# ----------------------------------------------------------------------------------------------
# one company


def forward_values(cube: Any, months: int = HORIZON_MONTHS) -> np.ndarray:
    """The mark of value per share ``months`` ahead on every real-world path [USD/share].

    Raises
    ------
    RunError
        If the cube has no forward mark at ``months``.
    """
    if "forward_value_per_share" not in cube or months not in cube["horizon"].values:
        raise RunError(f"{_ticker(cube)}: the run has no {months}-month forward value "
                       "(valuation.forward_years must include 1)")
    return np.asarray(cube["forward_value_per_share"].sel(horizon=months).values, np.float64)


def returns(cube: Any, months: int = HORIZON_MONTHS) -> np.ndarray:
    """Return from today's market price to the ``months``-ahead mark, per path [1].

    r_i = F_i / P - 1 (real-world measure); NaN where the path failed.
    """
    return forward_values(cube, months) / float(cube.attrs["share_price"]) - 1.0


def valuation(cube: Any) -> dict[str, float]:
    """Fair value, market price and upside, all with standard errors (pricing measure).

    Returns
    -------
    dict
        ``share_price`` [USD/share] (market), ``fair_value`` and ``fair_value_se``
        [USD/share] (the control-variate mean over pricing paths and its SE, from the cube's
        manifest), ``upside`` = fair value / price - 1 [1] and ``upside_se`` = SE / price [1]
        (the price is a fixed number, so the upside's only error is the fair value's).
    """
    price = float(cube.attrs["share_price"])
    fair, se = cube.attrs.get("fair_value_per_share"), cube.attrs.get("fair_value_se")
    if fair is None or se is None:  # a cube saved before the manifest carried them
        v = np.asarray(cube["value_per_share"].values, np.float64)
        v = v[np.isfinite(v)]
        fair, se = v.mean(), v.std(ddof=1) / math.sqrt(v.size)
    fair, se = float(fair), float(se)
    return {"share_price": price, "fair_value": fair, "fair_value_se": se,
            "upside": fair / price - 1.0, "upside_se": se / price}


def forecast(cube: Any, months: int = HORIZON_MONTHS) -> dict[str, Any]:
    """The ``months``-ahead distribution of value per share and of the return (real-world).

    Returns
    -------
    dict
        ``value``: {``p10``, ``p25``, ``p50``, ``p75``, ``p90``} [USD/share] each with ``_se``; ``return``:
        ``mean``, ``mean_se`` and the same percentiles [1]; ``prob_up``, ``prob_up_se``
        (P(mark > today's market price)); ``n`` paths used, ``n_failed``.
    """
    price = float(cube.attrs["share_price"])
    f = forward_values(cube, months)
    s = stats.summary(f, threshold=price, percentiles=PERCENTILES)
    value = {}
    for p, d in s["percentiles"].items():
        value[f"p{round(100 * p)}"], value[f"p{round(100 * p)}_se"] = d["value"], d["se"]
    ret = {k: (v / price - 1.0 if not k.endswith("_se") else v / price) for k, v in value.items()}
    ret.update(mean=s["mean"] / price - 1.0, mean_se=s["mean_se"] / price,
               prob_up=s["prob_above"]["p"], prob_up_se=s["prob_above"]["se"])
    return {"value": value, "return": ret, "n": s["n"], "n_failed": s["n_failed"]}


def footprint(cube: Any) -> dict[str, float]:
    """Fair value and market value per EH/s of today's hashrate and per MW of contracted power.

    Returns
    -------
    dict
        ``hashrate_ehs`` [EH/s] (``company.fleet.hashrate_ehs``: operational hashrate at the
        valuation date), ``contracted_mw`` [MW] (``company.power.contracted_mw``: the power
        contracted at the valuation date, as the company file states it), ``basic_shares``,
        ``fair_equity_usd`` (fair value per share x basic shares, pricing), ``market_cap_usd``
        (price x basic shares, market), and each of the two per EH/s and per MW [USD per EH/s,
        USD per MW]; NaN where the denominator is zero or unknown.

    Notes
    -----
    Basic shares are ``diluted_shares - shares_issued`` on any path (the count today). Both
    the fair and the market figure are equity values, so net debt and treasury BTC sit inside
    them: these are the market's "market cap per EH/s" and the model's answer to the same
    question, not enterprise values.
    """
    basic = float(np.asarray(cube["diluted_shares"].values)[0] - np.asarray(cube["shares_issued"].values)[0])
    v = valuation(cube)
    out = {"hashrate_ehs": _scenario_number(cube, ("company", "fleet", "hashrate_ehs")),
           "contracted_mw": _scenario_number(cube, ("company", "power", "contracted_mw")),
           "basic_shares": basic, "fair_equity_usd": v["fair_value"] * basic,
           "market_cap_usd": v["share_price"] * basic}
    for what, denom in (("ehs", out["hashrate_ehs"]), ("mw", out["contracted_mw"])):
        ok = math.isfinite(denom) and denom > 0
        out[f"fair_usd_per_{what}"] = out["fair_equity_usd"] / denom if ok else math.nan
        out[f"market_usd_per_{what}"] = out["market_cap_usd"] / denom if ok else math.nan
    return out


def _scenario_number(cube: Any, key: tuple[str, ...]) -> float:
    """An input of the run's resolved scenario: the mean of its sampled values if uncertain,
    else its number; NaN if the scenario does not say."""
    dotted = ".".join(key)
    for name in cube.data_vars:
        if str(name).startswith("input_") and cube[name].attrs.get("key_path") == dotted:
            return float(np.mean(np.asarray(cube[name].values, np.float64)))
    try:
        node: Any = json.loads(str(cube.attrs["scenario_yaml"]))
        for part in key:
            node = node[part]
    except (KeyError, TypeError, ValueError):
        return math.nan
    if isinstance(node, Mapping):  # a fixed distribution: {dist: fixed, value: x}
        node = node.get("value")
    return float(node) if isinstance(node, (int, float)) else math.nan


def betas(cube: Any) -> dict[str, Any]:
    """BTC beta and R² of the 12-month return by forward year and pooled (real-world), and the
    HPC share of segment value (pricing), from :func:`simulator.analysis.decoupling.btc_beta`."""
    b = decoupling.btc_beta(cube)
    keep = ("year", "beta", "beta_se", "r2", "n")
    return {"years": [{k: r[k] for k in keep} for r in b["rows"]],
            "pooled": {k: b["overall"][k] for k in ("beta", "beta_se", "r2", "n")},
            "hpc_share": b["hpc_share_median"], "hpc_share_n": b["hpc_share_n"]}


def company_row(cube: Any) -> dict[str, Any]:
    """Everything the peer table says about one company (see the module docstring)."""
    return {"ticker": _ticker(cube), "company": str(cube.attrs.get("company_name", "") or ""),
            "scenario": str(cube.attrs.get("scenario_name", "")),
            **valuation(cube), "forecast": forecast(cube), "decoupling": betas(cube),
            "footprint": footprint(cube)}


def _ticker(cube: Any) -> str:
    return str(cube.attrs.get("ticker") or cube.attrs.get("scenario_name", "?"))


# ----------------------------------------------------------------------------------------------
# across companies


def check_shared(cubes: Mapping[str, Any]) -> None:
    """Refuse cubes that do not live on the same paths: pathwise statistics need one world.

    Checks the path count, the seed and, where both cubes store BTC price series, that the
    stored paths they have in common are identical.

    Raises
    ------
    RunError
        If there is no cube, or two cubes differ in any of the above.
    """
    if not cubes:
        raise RunError("peer group: no company cubes")
    (first, a), *rest = cubes.items()
    for ticker, b in rest:
        for key in ("paths", "seed"):
            if int(a.attrs.get(key, -1)) != int(b.attrs.get(key, -1)):
                raise RunError(f"peer group: {first} and {ticker} differ in {key} "
                               f"({a.attrs.get(key)} vs {b.attrs.get(key)}); pathwise statistics "
                               "need every company on the same paths")
        if "btc_price" in a and "btc_price" in b:
            k = min(a["btc_price"].shape[0], b["btc_price"].shape[0])
            if not np.array_equal(a["btc_price"].values[:k], b["btc_price"].values[:k]):
                raise RunError(f"peer group: {first} and {ticker} do not share their BTC price "
                               "paths; run them together (minersim run <universe>.yaml)")


def return_matrix(cubes: Mapping[str, Any], months: int = HORIZON_MONTHS) -> np.ndarray:
    """12-month returns [1] as an array [path, company], companies in ``cubes``' order."""
    return np.column_stack([returns(c, months) for c in cubes.values()])


def correlation(r: np.ndarray) -> tuple[np.ndarray, int]:
    """Pearson correlation matrix of the columns of ``r`` [path, company] across paths.

    Paths where any company failed (NaN) are dropped from every pair, so the matrix is one
    sample's and stays positive semi-definite. A company whose return does not vary (every
    path marks it at the same value, e.g. $0) has no correlation: its row and column are NaN.

    Returns
    -------
    (matrix [company, company], n paths used)
    """
    ok = np.all(np.isfinite(r), axis=1)
    x = r[ok]
    d = x - x.mean(axis=0)
    sd = np.sqrt(np.einsum("ij,ij->j", d, d))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (d.T @ d) / np.outer(sd, sd)
    m[:, sd == 0] = np.nan
    m[sd == 0, :] = np.nan
    return np.clip(m, -1.0, 1.0), int(ok.sum())


def ranked_pairs(tickers: Sequence[str], matrix: np.ndarray) -> list[dict[str, Any]]:
    """Every pair of companies with a defined correlation, most correlated first."""
    out = [{"a": tickers[i], "b": tickers[j], "correlation": float(matrix[i, j])}
           for i in range(len(tickers)) for j in range(i + 1, len(tickers))
           if np.isfinite(matrix[i, j])]
    return sorted(out, key=lambda p: -p["correlation"])


def pair_trade(r_a: np.ndarray, r_b: np.ndarray) -> dict[str, Any]:
    """Long A / short B in equal dollar amounts: the 12-month return r_A - r_B (real-world).

    Parameters
    ----------
    r_a, r_b : ndarray [path]
        12-month returns of A and B on the same paths [1] (:func:`returns`).

    Returns
    -------
    dict
        ``n``, ``mean``, ``mean_se``, ``std``, ``percentiles`` {"0.05": {value, se}, ...} [1],
        ``prob_positive`` and ``prob_positive_se`` (P(r_A - r_B > 0)), ``correlation`` of
        r_A and r_B.
    """
    ok = np.isfinite(r_a) & np.isfinite(r_b)
    d = r_a[ok] - r_b[ok]
    s = stats.summary(d, threshold=0.0, percentiles=PAIR_PERCENTILES)
    sd_a, sd_b = np.std(r_a[ok]), np.std(r_b[ok])
    rho = (float(np.corrcoef(r_a[ok], r_b[ok])[0, 1]) if sd_a > 0 and sd_b > 0 else math.nan)
    return {"n": s["n"], "mean": s["mean"], "mean_se": s["mean_se"], "std": s["std"],
            "percentiles": {f"{p:g}": {"value": q["value"], "se": q["se"]}
                            for p, q in s["percentiles"].items()},
            "prob_positive": s["prob_above"]["p"], "prob_positive_se": s["prob_above"]["se"],
            "correlation": rho}


def parse_pairs(texts: Sequence[str], tickers: Sequence[str]) -> list[tuple[str, str]]:
    """``["CLSK/MARA", ...]`` -> [("CLSK", "MARA"), ...], tickers matched without regard to case.

    Raises
    ------
    RunError
        For a text that is not ``A/B``, a ticker not in ``tickers``, or A = B.
    """
    known = {t.upper(): t for t in tickers}
    out = []
    for text in texts:
        parts = [p.strip() for p in str(text).split("/")]
        if len(parts) != 2 or not all(parts):
            raise RunError(f"--pair {text!r}: give two tickers as A/B (e.g. {tickers[0]}/"
                           f"{tickers[-1]})")
        for p in parts:
            if p.upper() not in known:
                raise RunError(f"--pair {text!r}: {p} is not in the peer group "
                               f"({', '.join(tickers)})")
        a, b = known[parts[0].upper()], known[parts[1].upper()]
        if a == b:
            raise RunError(f"--pair {text!r}: a pair needs two different companies")
        out.append((a, b))
    return out


def peer_summary(cubes: Mapping[str, Any], pairs: Sequence[tuple[str, str]] = (),
                 breakevens: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The peer group in one plain dict: the table, the correlations, the pairs, the manifest.

    Parameters
    ----------
    cubes : mapping of ticker to cube
        One cube per company, all on the same paths (:func:`check_shared`).
    pairs : sequence of (A, B)
        Pair trades to add to the most and least correlated pairs.
    breakevens : mapping of ticker to dict, optional
        :func:`simulator.analysis.peer_breakeven.breakeven_spot` per company; None if they were not run.

    Returns
    -------
    dict
        ``companies`` (one :func:`company_row` each, in order, with ``breakeven``),
        ``rankings`` (tickers by upside, most first; by pooled R², most decoupled first),
        ``correlation`` {tickers, matrix, n}, ``pairs`` (requested first, then the most and
        the least correlated, each {a, b, why, ...:func:`pair_trade`}), ``manifest``
        (universe, seed, paths, version) and ``measures`` (what each section is under).
    """
    check_shared(cubes)
    tickers = list(cubes)
    rows = [company_row(c) for c in cubes.values()]
    for row in rows:
        row["breakeven"] = None if breakevens is None else breakevens.get(row["ticker"])
    r = return_matrix(cubes)
    matrix, n = correlation(r)
    ranked = ranked_pairs(tickers, matrix)
    whys: dict[tuple[str, str], list[str]] = {}
    for a, b in pairs:
        whys.setdefault((a, b), []).append("requested")
    if len(ranked) == 1:
        whys.setdefault((ranked[0]["a"], ranked[0]["b"]), []).append("the only pair")
    elif ranked:
        whys.setdefault((ranked[0]["a"], ranked[0]["b"]), []).append("most correlated")
        whys.setdefault((ranked[-1]["a"], ranked[-1]["b"]), []).append("least correlated")
    out_pairs = [{"a": a, "b": b, "why": "; ".join(dict.fromkeys(why)),
                  **pair_trade(r[:, tickers.index(a)], r[:, tickers.index(b)])}
                 for (a, b), why in whys.items()]
    by_upside = sorted(rows, key=lambda x: -x["upside"])
    by_r2 = sorted(rows, key=lambda x: _nan_last(x["decoupling"]["pooled"]["r2"]))
    return {"companies": rows,
            "rankings": {"upside": [x["ticker"] for x in by_upside],
                         "decoupling": [x["ticker"] for x in by_r2]},
            "correlation": {"tickers": tickers, "matrix": matrix.tolist(), "n": n,
                            "ranked": ranked},
            "pairs": out_pairs, "manifest": manifest(cubes),
            "measures": MEASURES}


def _nan_last(x: float) -> float:
    return x if math.isfinite(x) else math.inf


MEASURES = {
    "fair_value": f"{PRICING}: mean over pricing paths of value per share, with its standard error",
    "upside": f"{PRICING}: fair value / market price - 1",
    "forecast": f"{REAL_WORLD}: the mark 12 months on, across real-world paths",
    "correlation": f"{REAL_WORLD}: Pearson correlation of 12-month returns across paths",
    "pairs": f"{REAL_WORLD}: r_A - r_B of 12-month returns, equal dollar legs",
    "decoupling": f"{REAL_WORLD}: OLS of the 12-month return of the mark on BTC's, by year",
    "hpc_share": f"{PRICING}: median over paths of pv_hpc / (pv_mining + pv_hpc)",
    "footprint": f"{PRICING} (fair) and {MARKET} (market cap): equity value per EH/s and per MW",
    "breakeven": f"{PRICING}: BTC spot at which the fair value equals the market price",
}


def manifest(cubes: Mapping[str, Any]) -> dict[str, Any]:
    """What the peer run was: universe, seed, paths, sampling, version, dates, the spot."""
    a = next(iter(cubes.values())).attrs
    keys = ("universe_name", "universe_sha256", "seed", "paths", "sampling", "minersim_version",
            "valuation_date", "btc_spot_usd", "risk_free_rate", "created")
    out = {k: _plain(a[k]) for k in keys if k in a}
    out["companies"] = list(cubes)
    out["scenario_sha256"] = {t: str(c.attrs.get("scenario_sha256", "")) for t, c in cubes.items()}
    return out


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
