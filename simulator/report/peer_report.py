"""The self-contained HTML peer memo of ``minersim run <universe>.yaml``.

Same approach as :mod:`simulator.report.compare_report`: Python prepares a flat context of
formatted strings and inline SVG from a :func:`simulator.analysis.peers.peer_summary`, and
``templates/peers.html.j2`` only branches and loops. Every number on the page is read from
the summary (the pair histograms also need the per-path returns, from the cubes), so the page
and the exports of ``peers.json`` agree to the last digit shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulator._files import atomic_write
from simulator.analysis import peers
from simulator.report.charts import peers as charts
from simulator.report.html import check_self_contained, environment, figure, num, usd


def render_peers(summary: Mapping[str, Any], cubes: Mapping[str, Any], *,
                 wall_seconds: float | None = None) -> str:
    """Render the peer memo as one HTML string.

    Parameters
    ----------
    summary : mapping
        :func:`simulator.analysis.peers.peer_summary` of ``cubes``.
    cubes : mapping of ticker to cube
        The companies' cubes, for the pair histograms.
    wall_seconds : float, optional
        The command's wall time up to drawing, for the manifest.

    Raises
    ------
    RunError
        If the HTML would reference anything outside itself.
    """
    ctx = peer_context(summary, cubes, wall_seconds=wall_seconds)
    html = environment().get_template("peers.html.j2").render(**ctx)
    check_self_contained(html)
    return html


def write_peers(summary: Mapping[str, Any], cubes: Mapping[str, Any], path: str | Path,
                **kw: Any) -> Path:
    """Render the peer memo and write it atomically to ``path``."""
    return atomic_write(path, render_peers(summary, cubes, **kw))


def _f(x: Any) -> float:
    """A number of the summary as a float: None (NaN in ``peers.json``) is NaN."""
    return math.nan if x is None else float(x)


def _usd(x: Any, digits: int = 2) -> str:
    return usd(_f(x), digits)


def _num(x: Any, digits: int = 0) -> str:
    return num(_f(x), digits)


def _pct(x: float | None, digits: int = 0, sign: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    text = f"{abs(100 * x):.{digits}f}%"
    if float(text[:-1]) == 0:
        return text
    return ("\u2212" if x < 0 else ("+" if sign else "")) + text


def _fixed(x: Any, digits: int) -> str:
    """``x`` to ``digits`` decimals with a true minus sign, never "-0.00"; "n/a" if not finite."""
    x = _f(x)
    if not math.isfinite(x):
        return "n/a"
    text = f"{abs(x):.{digits}f}"
    return ("\u2212" if x < 0 and float(text) != 0 else "") + text


def _musd(x: float | None, digits: int = 0) -> str:
    """USD millions: ``$1,234M``."""
    return "n/a" if x is None or not math.isfinite(x) else usd(x / 1e6, digits) + "M"


def peer_context(summary: Mapping[str, Any], cubes: Mapping[str, Any], *,
                 wall_seconds: float | None = None) -> dict[str, Any]:
    """The flat template context: headline, formatted rows, inline SVG, notes, manifest."""
    rows = list(summary["companies"])
    by_ticker = {r["ticker"]: r for r in rows}
    man = summary["manifest"]
    upside_order = [by_ticker[t] for t in summary["rankings"]["upside"]]
    decoupled = [by_ticker[t] for t in summary["rankings"]["decoupling"]]
    ctx: dict[str, Any] = {
        "title": "Peer group: " + ", ".join(r["ticker"] for r in rows),
        "universe": str(man.get("universe_name") or "companies on shared paths"),
        "valuation_date": str(man.get("valuation_date", "")),
        "settings": (f"{len(rows)} companies, {int(man.get('paths', 0)):,} shared paths, seed "
                     f"{man.get('seed', '')}, {man.get('sampling', '')} sampling"),
        "headline": _headline(summary, upside_order, decoupled),
        "value_rows": [_value_row(r) for r in upside_order],
        "forecast_rows": [_forecast_row(r) for r in upside_order],
        "beta_years": [y["year"] for y in rows[0]["decoupling"]["years"]],
        "beta_rows": [_beta_row(r) for r in decoupled],
        "footprint_rows": [_footprint_row(r) for r in rows],
        "corr": _corr_table(summary["correlation"]),
        "pairs": [],
        "pair_quantiles": [f"P{round(100 * float(k))}" for k in _PAIR_SHOWN],
        "breakeven": _breakevens(rows, man),
        "manifest_rows": _manifest_rows(man, wall_seconds),
        "methodology": methodology(summary, cubes),
    }
    ctx["charts"] = _charts(summary, upside_order, decoupled, ctx["breakeven"])
    tickers = list(summary["correlation"]["tickers"])
    r = peers.return_matrix(cubes) if cubes else None
    for p in summary["pairs"]:
        ctx["pairs"].append(_pair(p, None if r is None else
                                  r[:, tickers.index(p["a"])] - r[:, tickers.index(p["b"])]))
    return ctx


def _headline(summary: Mapping[str, Any], by_upside: list[Mapping[str, Any]],
              decoupled: list[Mapping[str, Any]]) -> str:
    top, bottom = by_upside[0], by_upside[-1]
    text = (f"On {int(summary['manifest'].get('paths', 0)):,} shared bitcoin, fee and network "
            f"paths, {top['ticker']} ranks first on upside to fair value, "
            f"{_pct(top['upside'])} (± {_pct(top['upside_se'], 1, False)}, pricing measure), "
            f"and {bottom['ticker']} last, {_pct(bottom['upside'])}.")
    pooled = decoupled[0]["decoupling"]["pooled"]
    if math.isfinite(_f(pooled["r2"])):
        text += (f" {decoupled[0]['ticker']} is the most decoupled from bitcoin (BTC explains "
                 f"{_pct(pooled['r2'], 1, False)} of its 12-month return's variance, real-world).")
    ranked = summary["correlation"]["ranked"]
    if ranked:
        hi, lo = ranked[0], ranked[-1]
        text += (f" The most correlated pair is {hi['a']}/{hi['b']} ({hi['correlation']:.2f}), the "
                 f"least {lo['a']}/{lo['b']} ({lo['correlation']:.2f}).")
    return text


def _value_row(r: Mapping[str, Any]) -> dict[str, str]:
    return {"ticker": r["ticker"], "company": r["company"], "price": _usd(r["share_price"]),
            "fair": _usd(r["fair_value"]), "fair_se": _usd(r["fair_value_se"]),
            "upside": _pct(r["upside"]), "upside_se": _pct(r["upside_se"], 1, False),
            "hpc": _pct(r["decoupling"]["hpc_share"], 0, False)}


def _forecast_row(r: Mapping[str, Any]) -> dict[str, str]:
    f = r["forecast"]
    v, ret = f["value"], f["return"]
    return {"ticker": r["ticker"], "p10": _usd(v["p10"]), "p50": _usd(v["p50"]), "p90": _usd(v["p90"]),
            "mean": _pct(ret["mean"]), "mean_se": _pct(ret["mean_se"], 1, False),
            "median": _pct(ret["p50"]), "up": _pct(ret["prob_up"], 0, False),
            "up_se": _pct(ret["prob_up_se"], 1, False)}


def _beta_row(r: Mapping[str, Any]) -> dict[str, Any]:
    d = r["decoupling"]
    return {"ticker": r["ticker"],
            "years": [{"beta": _fixed(y["beta"], 2), "se": _fixed(y["beta_se"], 2),
                       "r2": _fixed(y["r2"], 2)} for y in d["years"]],
            "beta": _fixed(d["pooled"]["beta"], 2), "se": _fixed(d["pooled"]["beta_se"], 2),
            "r2": _fixed(d["pooled"]["r2"], 2), "n": _num(d["pooled"]["n"])}


def _footprint_row(r: Mapping[str, Any]) -> dict[str, str]:
    f = r["footprint"]
    return {"ticker": r["ticker"], "ehs": _num(f["hashrate_ehs"], 1), "mw": _num(f["contracted_mw"]),
            "fair": _musd(f["fair_equity_usd"]), "cap": _musd(f["market_cap_usd"]),
            "fair_ehs": _musd(f["fair_usd_per_ehs"]), "cap_ehs": _musd(f["market_usd_per_ehs"]),
            "fair_mw": _musd(f["fair_usd_per_mw"], 2), "cap_mw": _musd(f["market_usd_per_mw"], 2),
            "hpc": _pct(r["decoupling"]["hpc_share"], 0, False)}


def _corr_table(corr: Mapping[str, Any]) -> dict[str, Any]:
    m = np.asarray(corr["matrix"], np.float64)
    ranked = list(corr["ranked"])
    k = min(3, len(ranked) // 2) if len(ranked) > 1 else len(ranked)
    fmt = lambda p: f"{p['a']}/{p['b']} ({_fixed(p['correlation'], 2)})"
    return {"tickers": list(corr["tickers"]), "n": f"{int(corr['n']):,}",
            "rows": [{"ticker": t, "cells": [_fixed(x, 2) for x in row]}
                     for t, row in zip(corr["tickers"], m, strict=True)],
            "most": [fmt(p) for p in ranked[:k]],
            "least": [fmt(p) for p in ranked[::-1][:k]] if len(ranked) > 1 else [],
            "undefined": [t for t, row in zip(corr["tickers"], m, strict=True)
                          if not np.isfinite(row).any()]}


_PAIR_SHOWN = ("0.1", "0.5", "0.9")
"""Percentiles of a pair trade the page shows (``peers.json`` has P5 to P95)."""


def _pair(p: Mapping[str, Any], diff: np.ndarray | None) -> dict[str, Any]:
    q = p["percentiles"]
    rows = [(f"P{round(100 * float(k))}", _pct(v["value"], 1), _pct(v["se"], 1, False))
            for k, v in q.items() if k in _PAIR_SHOWN]
    out = {"a": p["a"], "b": p["b"], "why": p["why"], "n": f"{int(p['n']):,}",
           "mean": _pct(p["mean"], 1), "mean_se": _pct(p["mean_se"], 1, False),
           "sd": _pct(p["std"], 1, False), "up": _pct(p["prob_positive"], 1, False),
           "up_se": _pct(p["prob_positive_se"], 1, False),
           "rho": _fixed(p["correlation"], 2), "rows": rows, "chart": None}
    if diff is not None and np.isfinite(diff).sum() > 1:
        svg = charts.pair_distribution(diff, p["a"], p["b"], why=p["why"])
        out["chart"] = figure(
            f"pair-{p['a']}-{p['b']}".lower(), f"Long {p['a']} / short {p['b']}", svg,
            f"Distribution across real-world paths of the 12-month return of a position long "
            f"{p['a']} and short {p['b']} in equal dollar amounts, r_{p['a']} − r_{p['b']}, each "
            f"leg bought or sold at today's market price and closed at the 12-month mark. No "
            f"borrow cost, financing or rebalancing. Shaded: P10 to P90; dashed: median; solid: "
            f"break-even (0).",
            f"Histogram of long {p['a']} / short {p['b']} 12-month returns: mean {out['mean']}, "
            f"P(> 0) {out['up']}.")
    return out


def _breakevens(rows: Sequence[Mapping[str, Any]], man: Mapping[str, Any]) -> dict[str, Any]:
    spot = man.get("btc_spot_usd")
    ran = [r for r in rows if r.get("breakeven")]
    if not ran:
        return {"rows": [], "note": "Breakevens were not run for this peer run (--no-breakevens).",
                "spot": spot}
    out = []
    for r in rows:
        b = r.get("breakeven") or {}
        found = b.get("status") == "found"
        value = _f(b.get("value")) if found else None
        note = "not run" if not b else ""
        if b and not found:
            (lo, hi), (f_lo, f_hi) = b["bracket"], b["fair_at_limits"]
            note = (f"none: fair value {_usd(f_lo)} at {_usd(lo, 0)} and {_usd(f_hi)} at "
                    f"{_usd(hi, 0)} USD/BTC, never {_usd(r['share_price'])}")
        out.append({"ticker": r["ticker"], "price": _usd(r["share_price"]),
                    "value": _usd(value, 0) if found else "\u2014",
                    "se": _usd(b["mc_se"], 0) if found else "",
                    "vs_spot": _pct(value / spot - 1) if found and spot else "",
                    "evals": str(b.get("evaluations", "")),
                    "seconds": f"{b['seconds']:.1f} s" if "seconds" in b else "",
                    "raw": (value, _f(b.get("mc_se")) if found else None),
                    "limit": "" if found else ("not attained" if b else "not run"), "note": note})
    first = ran[0]["breakeven"]
    total = sum(float(r["breakeven"].get("seconds", 0.0)) for r in ran)
    note = (f"Each breakeven re-runs the company on {int(first['paths']):,} paths (seed "
            f"{first['seed']}) with the BTC spot held at a trial value on every path and every "
            f"other draw as sampled, reusing one fitted mark; Brent's method on the fair value "
            f"stops within {_usd(first.get('xtol', math.nan), 0)}. The re-runs took {total:,.0f} s in all "
            f"(in the run's worker processes, beside the company reports). The SE is the fair "
            f"value's SE at the root over the slope.")
    return {"rows": out, "note": note, "spot": spot}


def _charts(summary: Mapping[str, Any], by_upside: list[Mapping[str, Any]],
            decoupled: list[Mapping[str, Any]], be: Mapping[str, Any]) -> dict[str, Any]:
    t_up = [r["ticker"] for r in by_upside]
    out: dict[str, Any] = {}
    svg = charts.fair_vs_price(t_up, [r["fair_value"] for r in by_upside],
                               [r["fair_value_se"] for r in by_upside],
                               [r["share_price"] for r in by_upside])
    facts = "; ".join(f"{r['ticker']} fair {_usd(r['fair_value'])} vs price {_usd(r['share_price'])} "
                      f"({_pct(r['upside'])})" for r in by_upside)
    out["value"] = figure(
        "value", "Fair value against the market price (pricing measure)", svg,
        "Left: fair value per share (the mean over pricing-measure paths) with ±2 standard "
        "errors of that mean, against the market price at the valuation date [USD/share]. "
        "Right: the upside, fair value / price − 1, with ±2 SE; companies ranked by it. The "
        "error bars are Monte Carlo error, not a range of outcomes.", facts)
    boxes = [charts.box_stats_from(r["ticker"], r["forecast"]["return"]) for r in by_upside]
    svg = charts.forecast_boxes(boxes, [r["forecast"]["return"]["prob_up"] for r in by_upside])
    out["forecast"] = figure(
        "forecast", "Twelve months on (real-world measure)", svg,
        "The return from today's market price to the value per share marked twelve months on, "
        "across real-world paths (BTC at the scenario's own drift): box P25–P75 with the "
        "median, whiskers P10–P90, diamond the mean. The dashed line is today's price; P(up) is "
        "the share of paths that end above it. A forecast under the scenario's assumptions.",
        "; ".join(f"{r['ticker']} median {_pct(r['forecast']['return']['p50'])}, P(up) "
                  f"{_pct(r['forecast']['return']['prob_up'], 0, False)}" for r in by_upside))
    years = [y["year"] for y in decoupled[0]["decoupling"]["years"]]
    beta = np.array([[y["beta"] for y in r["decoupling"]["years"]] for r in decoupled], np.float64)
    r2 = np.array([[y["r2"] for y in r["decoupling"]["years"]] for r in decoupled], np.float64)
    out["decoupling"] = figure(
        "decoupling", "Decoupling from bitcoin (real-world measure)",
        charts.decoupling_ranking([r["ticker"] for r in decoupled], beta, r2, years),
        "BTC beta (left) and R² (right) of each stock's 12-month return on bitcoin's, across "
        "real-world paths, one marker per forward year; companies ranked by the R² of all "
        "years pooled, the most decoupled on top. n/a: the stock is worth nothing on every "
        "path, so it has no return to regress.",
        "; ".join(f"{r['ticker']} pooled beta {_num(r['decoupling']['pooled']['beta'], 2)}, R² "
                  f"{_num(r['decoupling']['pooled']['r2'], 2)}" for r in decoupled))
    rows = list(summary["companies"])
    f = [r["footprint"] for r in rows]
    out["footprint"] = figure(
        "footprint", "HPC share, value per EH/s and per MW",
        charts.footprint([r["ticker"] for r in rows], [r["decoupling"]["hpc_share"] for r in rows],
                         *[[_f(x[k]) / 1e6 for x in f] for k in ("fair_usd_per_ehs", "market_usd_per_ehs",
                                                            "fair_usd_per_mw", "market_usd_per_mw")]),
        "Left: median share of HPC leases in the value of the two segments, pv_hpc / (pv_mining "
        "+ pv_hpc), over pricing paths. Middle and right: equity value per EH/s of today's "
        "operational hashrate and per MW of contracted power [USD M], the fair value (bars, "
        "pricing) against the market capitalisation (diamonds). Both are equity, so cash, BTC "
        "held and debt sit inside them.",
        "; ".join(f"{r['ticker']} HPC {_pct(r['decoupling']['hpc_share'], 0, False)}" for r in rows))
    corr = summary["correlation"]
    out["correlation"] = figure(
        "correlation", "Correlation of 12-month returns (real-world measure)",
        charts.correlation_heatmap(corr["tickers"], np.asarray(corr["matrix"], np.float64),
                                   int(corr["n"])),
        "Pearson correlation across shared real-world paths of the companies' 12-month returns "
        "(12-month mark / today's price − 1). Navy is +1, orange −1. Grey n/a: a stock whose "
        "mark never varies has no correlation.",
        "Correlation matrix of 12-month returns; the numbers are in the table below.")
    good = [r for r in be["rows"] if r["raw"][0] is not None]
    if be["rows"] and be["spot"]:
        out["breakevens"] = figure(
            "breakevens", "Breakeven BTC spot (pricing measure)",
            charts.breakevens([r["ticker"] for r in be["rows"]],
                              [r["raw"][0] if r["raw"][0] is not None else math.nan for r in be["rows"]],
                              [r["raw"][1] if r["raw"][1] is not None else math.nan for r in be["rows"]],
                              float(be["spot"]), limit_note={r["ticker"]: r["limit"] for r in be["rows"]
                                                             if r["limit"]}),
            "The BTC spot at which each company's fair value per share equals its market price "
            "(log scale), with ±2 Monte Carlo SE; dashed: today's spot. Left of the line, the "
            "market price asks for less bitcoin than today's; right of it, more.",
            "; ".join(f"{r['ticker']} {r['value']}" for r in good) or "No breakeven found.")
    return out


def _drift(cubes: Mapping[str, Any]) -> str:
    """The real-world BTC drift of the shared market, in words, if a cube says it."""
    for cube in cubes.values():
        try:
            drift = json.loads(str(cube.attrs["scenario_yaml"]))["market"]["btc"]["process"]["drift"]
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(drift, Mapping):
            drift = drift.get("value", drift.get("mode"))
        if isinstance(drift, (int, float)):
            return f"{drift:.0%} a year"
    return "the scenario's own drift"


def methodology(summary: Mapping[str, Any], cubes: Mapping[str, Any]) -> list[dict[str, str]]:
    """The method note: what is shared, which measure answers which question, what is assumed."""
    man = summary["manifest"]
    rf = man.get("risk_free_rate")
    rf_text = f"{float(rf):.1%}" if rf is not None else "the risk-free rate"
    return [
        {"title": "One world, several companies",
         "text": "Every company runs on the same simulated bitcoin price, fee and network "
                 "hashrate paths: path i is the same world in every company's run. Company-"
                 "specific inputs (power prices, signings, build times, credit spreads, ...) are "
                 "drawn for each company independently unless the scenario correlates them. "
                 "Cross-company figures (correlations, pair trades) are therefore computed path "
                 "by path, on every path."},
        {"title": "Two measures",
         "text": f"Fair value, upside, the HPC share, the value per EH/s and per MW and the "
                 f"breakevens are under the pricing measure: bitcoin drifts at the risk-free rate "
                 f"({rf_text}) and the fair value is the mean over paths of the discounted value to "
                 f"equity per share, with its Monte Carlo standard error. The 12-month "
                 f"distributions, returns, correlations, pair trades and betas are under the "
                 f"real-world measure: bitcoin drifts at {_drift(cubes)} (an assumption of the "
                 f"universe file), and each path is marked in twelve months with the same value "
                 f"function the fair value uses."},
        {"title": "Returns and pair trades",
         "text": "A company's 12-month return on a path is its 12-month mark over today's market "
                 "price, minus one: the stock is assumed to trade at the model's value in a year. "
                 "A pair trade long A / short B holds equal dollar amounts of each leg for twelve "
                 "months and returns r_A − r_B; borrow fees, financing, margin calls and "
                 "dividends are left out. Correlations are Pearson correlations of those returns "
                 "across paths; a path where any company failed is left out of every pair."},
        {"title": "Decoupling, HPC share, value per EH/s and per MW",
         "text": "Betas regress the 12-month return of the mark on bitcoin's return over the same "
                 "months, year by year, on the paths whose monthly series are stored (the "
                 "tables give the count). The HPC share is the median over pricing paths of "
                 "pv_hpc / (pv_mining + pv_hpc). Value per EH/s divides equity value (fair value "
                 "per share × today's basic shares, or the market capitalisation) by the "
                 "operational hashrate today (`company.fleet.hashrate_ehs`); value per MW divides "
                 "it by the contracted power today (`company.power.contracted_mw`), which the "
                 "company files define as each company reports it (mining capacity for some, "
                 "all data-centre power for others; several are assumptions): read the company "
                 "file before comparing two companies per MW."},
        {"title": "Breakevens",
         "text": "The breakeven is the BTC spot at which the fair value per share (not the "
                 "median pathwise value) equals the market price, found by re-running the "
                 "company with the spot held at trial values on common random numbers."},
        {"title": "What is an assumption",
         "text": "The real-world drift of bitcoin, every company figure its file marks "
                 "`assumption: true` (several share prices and share counts among them), the "
                 "lease and signing assumptions of each site, and the no-cost pair trade. Each "
                 "company's report.html lists its assumptions and sources."},
    ]


def _manifest_rows(man: Mapping[str, Any], wall_seconds: float | None) -> list[tuple[str, str]]:
    rows = [("universe", str(man.get("universe_name", ""))),
            ("universe SHA-256", str(man.get("universe_sha256", ""))),
            ("companies", ", ".join(man.get("companies", []))),
            ("seed", str(man.get("seed", ""))), ("paths", f"{int(man.get('paths', 0)):,}"),
            ("sampling", str(man.get("sampling", ""))),
            ("minersim version", str(man.get("minersim_version", ""))),
            ("created", str(man.get("created", ""))),
            ("valuation date", str(man.get("valuation_date", ""))),
            ("BTC spot", _usd(float(man.get("btc_spot_usd", math.nan)), 0) + " USD/BTC")]
    if wall_seconds is not None:
        rows.append(("command wall time, start to drawing this page", f"{wall_seconds:,.1f} s"))
    for key, label in (("simulate", "simulation of every company"),
                       ("analysis", "breakevens and company reports")):
        if (man.get("seconds") or {}).get(key) is not None:
            rows.append((label, f"{man['seconds'][key]:,.1f} s"))
    for ticker, sha in (man.get("scenario_sha256") or {}).items():
        rows.append((f"{ticker} scenario SHA-256", sha))
    return [(k, v) for k, v in rows if v]
