"""The self-contained HTML report of one run.

Python prepares a flat context of formatted strings and inline SVG; the Jinja2 template
(``templates/report.html.j2``, autoescaped) only branches and loops. Our own chart SVG is
the only markup marked safe. This module keeps the headline, assumptions, bridge, forward
values, decoupling, sites, manifest and chart sections, and :func:`render_report`, which
assembles them. The drivers and breakeven sections (and the re-runs behind them) are in
:mod:`simulator.report.drivers`; the formatters, figures, Jinja2 environment and the
self-containment check that every minersim page shares are in :mod:`simulator.report.html`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulator.report import charts
from simulator import units as u
from simulator._files import atomic_write
from simulator.analysis import decoupling, stats
from simulator.cube import manifest_of
from simulator.report.drivers import drivers_context
from simulator.report.html import check_self_contained, environment, figure, num, usd

_FANS = (  # (variable, title, axis label, scale, log)
    ("btc_price", "BTC price", f"BTC price [{u.USD_PER_BTC}, log scale]", 1.0, True),
    ("network_hashrate", "Network hashrate", f"network hashrate [{u.EHS}]", 1.0, False),
    ("hashprice", "Hashprice", f"hashprice [{u.USD_PER_PH_DAY}]", 1.0, False),
    ("free_cash_flow", "Free cash flow", "free cash flow [USD M/month]", 1e-6, False),
    ("btc_held", "BTC held", f"BTC held [{u.BTC}]", 1.0, False),
)


def render_report(cube: Any, *, beta: Mapping[str, Any] | None = None,
                  notes: Sequence[str] = (), drivers: Mapping[str, Any] | None = None,
                  breakevens: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Render the run's report as one HTML string with inline SVG charts.

    Parameters
    ----------
    cube : xarray.Dataset
        A minersim cube (see :mod:`simulator.cube`).
    beta : mapping, optional
        A precomputed :func:`simulator.analysis.decoupling.btc_beta` result.
    notes : sequence of str
        Plain-text notices shown under the headline (e.g. "real-world BTC drift: what-if").
    drivers, breakevens : optional
        A :func:`simulator.analysis.drivers.tornado` result and a list of
        :mod:`simulator.analysis.breakeven` results, as :func:`simulator.report.drivers.analyse`
        gives them (``minersim run --drivers``). Rank correlations are always shown; they come
        from the run itself.

    Raises
    ------
    RunError
        If the rendered HTML references anything outside itself.
    """
    ctx = context(cube, beta=beta, notes=notes, drivers=drivers, breakevens=breakevens)
    html = environment().get_template("report.html.j2").render(**ctx)
    check_self_contained(html)
    return html


def write_report(cube: Any, path: str | Path, **kw: Any) -> Path:
    """Render the report and write it atomically to ``path``."""
    return atomic_write(path, render_report(cube, **kw))


def context(cube: Any, *, beta: Mapping[str, Any] | None = None,
            notes: Sequence[str] = (), drivers: Mapping[str, Any] | None = None,
            breakevens: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The flat template context: formatted strings, small row dicts and inline SVG."""
    man = manifest_of(cube)
    price = man.get("share_price")
    price = float(price) if price is not None else None
    value = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    head = stats.summary(value, threshold=price)
    beta = beta if beta is not None else decoupling.btc_beta(cube)
    halvings = halving_months(cube)
    ctx: dict[str, Any] = {
        "scenario_name": str(man.get("scenario_name", "unnamed scenario")),
        "valuation_date": str(man.get("valuation_date", "")),
        "notes": [str(n) for n in notes],
        "sample_note": _sample_note(cube),
    }
    ctx.update(_headline(head, price, man))
    ctx["assumptions"], ctx["assumptions_note"] = _assumptions(man)
    ctx["bridge_rows"], ctx["bridge_caption"], bridge_chart = _bridge(cube, price)
    ctx["forward_rows"] = _forward_rows(cube, price)
    ctx["beta_rows"], ctx["hpc_share"] = _beta_rows(beta)
    ctx["site_rows"] = _site_rows(cube)
    ctx["manifest_rows"] = _manifest_rows(man)
    ctx["scenario_yaml"] = str(man.get("scenario_yaml", ""))
    jobs = _chart_jobs(cube, value, price, beta, halvings, bridge_chart, ctx["bridge_caption"])
    jobs.append(("drivers", functools.partial(drivers_context, cube, drivers, breakevens)))
    ctx["charts"], extra = _charts(jobs)
    ctx.update(extra)
    return ctx


def _headline(head: dict[str, Any], price: float | None, man: dict[str, Any]) -> dict[str, Any]:
    pct = head["percentiles"]
    n_text = f"{head['n']:,}"
    sentence = (f"In {n_text} simulated paths the median value is {usd(head['median'])} per "
                f"share (P5 {usd(pct[0.05]['value'])}, P95 {usd(pct[0.95]['value'])})")
    kpis = [("Median value per share", usd(head["median"]),
             f"± {usd(head['median_se'])} (1 SE)"),
            ("Mean value per share", usd(head["mean"]), f"± {usd(head['mean_se'])} (1 SE)")]
    if price is not None and head["prob_above"] is not None:
        p = head["prob_above"]
        sentence += f", with {p['p']:.0%} of paths above the {usd(price)} market price."
        kpis.insert(1, (f"P(value > {usd(price)} market)", f"{p['p']:.1%}",
                        f"± {p['se']:.1%} (1 SE)"))
        kpis.append(("Median upside vs market", f"{head['median'] / price - 1:+.0%}",
                     f"market {usd(price)} at {man.get('valuation_date', 'valuation date')}"))
    else:
        sentence += "."
    rows = [{"label": f"P{round(p * 100)}", "value": usd(d["value"]), "se": usd(d["se"]),
             "ci": f"{usd(d['ci_low'])} to {usd(d['ci_high'])}"} for p, d in pct.items()]
    failed = (f"{head['n_failed']:,} failed path(s) excluded." if head["n_failed"] else "")
    return {"headline": sentence, "kpis": kpis, "percentile_rows": rows,
            "failed_note": failed, "n_paths": n_text}


def _assumptions(man: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    raw = man.get("assumptions_json")
    if not raw:
        return [], "No assumptions list was attached to this run."
    try:
        items = json.loads(raw)
    except (TypeError, ValueError):
        return [], "The attached assumptions list could not be read (invalid JSON)."
    rows = [{"key": str(i.get("key", "")), "description": str(i.get("description", "")),
             "source": str(i.get("source", "")), "assumption": bool(i.get("assumption"))}
            for i in items if isinstance(i, Mapping)]
    return rows, ("" if rows else "The attached assumptions list is empty.")


def _bridge(cube: Any, price: float | None
            ) -> tuple[list[dict[str, str]], str, Callable[[], str] | None]:
    """Bridge averaged over the paths with value per share between P45 and P55.

    Rows, caption, and the call that draws the chart (None without the components).
    """
    need = ("pv_mining", "pv_hpc", "treasury_value", "net_debt", "equity_value",
            "diluted_shares")
    if any(k not in cube for k in need):
        return [], "Bridge unavailable: the cube lacks the valuation components.", None
    v = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    # Bounds that are values of paths, so the band is never empty (two paths, or four,
    # have no path between interpolated P45 and P55).
    lo, hi = np.nanquantile(v, [0.45, 0.55], method="inverted_cdf")
    band = (v >= lo) & (v <= hi)

    def avg(name: str) -> float:
        return float(np.mean(np.asarray(cube[name].values, dtype=np.float64)[band]))

    basic_each = np.asarray(cube["diluted_shares"].values, dtype=np.float64)
    if "shares_issued" in cube:
        basic_each = basic_each - np.asarray(cube["shares_issued"].values, dtype=np.float64)
    basic = basic_each[band]

    def per_basic(arr: np.ndarray) -> float:
        return float(np.mean(arr[band] / basic))

    def col(name: str) -> np.ndarray:
        return np.asarray(cube[name].values, dtype=np.float64)

    steps = [("mining", per_basic(col("pv_mining"))), ("HPC", per_basic(col("pv_hpc"))),
             ("treasury", per_basic(col("treasury_value")))]
    cash_split = "cash" in cube and cube["cash"].dims[0] == "path"
    if cash_split:
        cash0 = col("cash") if cube["cash"].ndim == 1 else cube["cash"].values[:, 0]
        steps += [("cash", per_basic(cash0)), ("debt", -per_basic(col("net_debt") + cash0))]
    else:
        steps.append(("net debt", -per_basic(col("net_debt"))))
    equity_basic = per_basic(col("equity_value"))
    other = equity_basic - sum(s[1] for s in steps)
    if abs(other) > 0.005:
        steps.append(("other", other))
    total = avg("value_per_share")
    steps.append(("dilution", total - equity_basic))
    rows = [{"label": k, "value": usd(x)} for k, x in steps]
    rows.append({"label": "equity per diluted share", "value": usd(total)})
    caption = (f"Waterfall from segment values to equity per diluted share: average of the {int(band.sum()):,} paths whose value per share lies between "
               f"P45 ({usd(lo)}) and P55 ({usd(hi)}), so the parts add up exactly. Segment "
               "values per basic share; dilution converts to per diluted share.")
    if cash_split:
        caption += (" Cash is the balance at the end of the first simulated month; debt is "
                    "net debt plus that cash.")
    return rows, caption, functools.partial(charts.sotp_bridge, steps, total, market_price=price)


def _forward_rows(cube: Any, price: float | None) -> list[dict[str, str]]:
    if "value_per_share_forward" not in cube:
        return []
    rows = []
    for year in np.asarray(cube["horizon_year"].values).tolist():
        v = np.asarray(cube["value_per_share_forward"].sel(horizon_year=year).values, float)
        v = v[~np.isnan(v)]
        if v.size == 0:
            continue
        q = np.quantile(v, [0.05, 0.5, 0.95])
        above = f"{np.mean(v > price):.0%}" if price is not None else "n/a"
        rows.append({"year": str(year), "p5": usd(q[0]), "median": usd(q[1]),
                     "p95": usd(q[2]), "above": above})
    return rows


def _beta_rows(beta: Mapping[str, Any]) -> tuple[list[dict[str, str]], str]:
    rows = [{"year": str(r["year"]), "beta": num(r["beta"], 2), "se": num(r["beta_se"], 3),
             "r2": num(r["r2"], 2), "n": f"{r['n']:,}", "dropped": f"{r['n_dropped']:,}"}
            for r in beta["rows"]]
    share = beta.get("hpc_share_median", float("nan"))
    text = (f"Median share of segment value from contracted HPC (PV of HPC / (PV of mining + "
            f"PV of HPC)): {share:.0%} over {beta.get('hpc_share_n', 0):,} paths."
            if np.isfinite(share) else "HPC share of value unavailable.")
    if np.isfinite(share) and share > 1:
        text += " Above 100% because the median path's mining segment has negative value."
    return rows, text


def _month(idx: float, start: np.datetime64) -> str:
    return str(np.datetime64(start, "M") + int(round(idx)))


def _site_rows(cube: Any) -> list[dict[str, str]]:
    if "sign_month" not in cube:
        return []
    start = cube["time"].values[0]
    rows = []
    for k, site in enumerate(cube["site"].values.tolist()):
        sign = np.asarray(cube["sign_month"].values)[:, k]
        energ = np.asarray(cube["energise_month"].values)[:, k]
        rows.append({"site": str(site), "signs": f"{np.mean(sign >= 0):.0%}",
                     "sign_median": _month(np.median(sign[sign >= 0]), start)
                     if (sign >= 0).any() else "never",
                     "energise_median": _month(np.median(energ[energ >= 0]), start)
                     if (energ >= 0).any() else "never"})
    return rows


def _manifest_rows(man: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [("scenario_name", "scenario"), ("scenario_sha256", "scenario SHA-256"),
            ("history_sha256", "bootstrap history SHA-256"),
            ("seed", "seed"), ("paths", "paths"), ("sampling", "sampling"),
            ("minersim_version", "minersim version"), ("created", "created"),
            ("valuation_date", "valuation date"), ("share_price", "market share price"),
            ("runtime_seconds", "runtime")]
    rows = []
    for key, label in keys:
        if key not in man:
            continue
        val = man[key]
        if key == "runtime_seconds":
            val = f"{float(val):,.1f} s"
        elif key == "paths":
            val = f"{int(val):,}"
        elif key == "share_price":
            val = usd(float(val)) + " " + u.USD_PER_SHARE
        rows.append((label, str(val)))
    return rows


def _sample_note(cube: Any) -> str:
    if "sample" not in cube.dims:
        return ""
    return (f"Monthly fan charts use the stored sample of {cube.sizes['sample']:,} of "
            f"{cube.sizes['path']:,} paths; dotted means, where shown, are exact over all "
            "paths. Per-path figures use every path.")


def halving_months(cube: Any) -> list[np.datetime64]:
    """Months where the median block subsidy across paths drops (halvings)."""
    if "subsidy" not in cube:
        return []
    med = np.median(np.asarray(cube["subsidy"].values, dtype=np.float64), axis=0)
    idx = np.flatnonzero(med[1:] < med[:-1]) + 1
    return [cube["time"].values[i] for i in idx]


def _fan_alt(title: str, time: np.ndarray, bands: np.ndarray, unit: str) -> str:
    first, last = str(np.datetime64(time[0], "M")), str(np.datetime64(time[-1], "M"))
    return (f"{title}: median {num(bands[2, 0], 2)} {unit} in {first} and "
            f"{num(bands[2, -1], 2)} {unit} in {last}; 90% of paths between "
            f"{num(bands[0, -1], 2)} and {num(bands[4, -1], 2)} {unit} at the end.")


_Job = tuple[str, Callable[[], Any]]
"""One part of the report: where it goes (a chart key, "fans", or "drivers") and its call."""


def _charts(jobs: list[_Job]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``jobs``; the charts by key, and the drivers context.

    Fan charts come back in a list, the drivers section's figures (the tornado) among the
    charts.
    """
    drawn = [call() for _key, call in jobs]
    out: dict[str, Any] = {"fans": []}
    extra: dict[str, Any] = {}
    for (key, _call), result in zip(jobs, drawn, strict=True):
        if key == "fans":
            out["fans"].append(result)
        elif key == "drivers":
            extra, figures = result
            out.update(figures)
        else:
            out[key] = result
    return out, extra


def _chart_jobs(cube: Any, value: np.ndarray, price: float | None, beta: Mapping[str, Any],
                halvings: list[np.datetime64], bridge: Callable[[], str] | None,
                bridge_caption: str) -> list[_Job]:
    """Every chart of the report in page order, each with caption and text alternative.

    Each call draws one chart and reduces the paths it needs itself, so the calls can run
    in any process that holds the cube.
    """
    jobs: list[_Job] = []
    med = float(np.nanmedian(value))
    jobs.append(("value", lambda: figure(
        "value", "Value per share today", charts.value_hist_cdf(value, price),
        "Histogram (bars, left axis) and cumulative distribution (line, right axis) of value "
        "per diluted share across paths; the x axis spans P0.5 to P99.5.",
        f"Distribution of value per share: median {usd(med)}"
        + (f", market price {usd(price)}." if price is not None else "."))))
    if bridge is not None:
        jobs.append(("bridge", lambda: figure(
            "bridge", "Sum of the parts", bridge(), bridge_caption,
            "Sum-of-the-parts waterfall; the numbers are in the table.")))
    jobs += [("fans", draw) for draw in _fan_jobs(cube, halvings)]
    time = cube["time"].values
    if "sign_month" in cube:
        jobs.append(("sites", lambda: figure(
            "sites", "Site conversion timelines",
            charts.site_timelines(cube["sign_month"].values, cube["energise_month"].values,
                                  cube["site"].values.tolist(), time[0], time.size),
            "Boxes P25-P75 with median, whiskers P5-P95 over the paths where the event "
            "happens; right margin: share of paths where it never happens within the horizon.",
            "Site timelines; the numbers are in the table.")))
    if "value_per_share_forward" in cube:
        jobs.append(("forward", lambda: figure(
            "forward", "Forward value per share",
            charts.forward_values(cube["value_per_share_forward"].values,
                                  cube["horizon_year"].values.tolist(), today=value,
                                  market_price=price),
            "Boxes P25-P75 with median, whiskers P5-P95; outliers not drawn.",
            "Forward value per share by year; the numbers are in the table.")))
    rows = [r for r in beta["rows"] if np.isfinite(r["beta"])]
    if rows:
        jobs.append(("decoupling", lambda: figure(
            "decoupling", "Decoupling from BTC", charts.decoupling(rows),
            "Left: OLS slope of ln(forward value per share) on ln(BTC price) at the same "
            "month, across paths, with ±2 SE. Right: R² of that regression.",
            "BTC beta and R-squared by forward year; the numbers are in the table.")))
    jobs.append(("convergence", lambda: _convergence(value)))
    return jobs


def _convergence(value: np.ndarray) -> dict[str, Any]:
    n, mean, se = stats.running_mean(value)
    return figure(
        "convergence", "Convergence", charts.convergence(n, mean, se),
        f"Running mean of value per share after n paths, ±2 SE band. Final SE "
        f"{usd(float(se[-1]), 3)} over {int(n[-1]):,} paths.",
        f"Running mean settles at {usd(float(mean[-1]))} with SE {usd(float(se[-1]), 3)}.")


def _fan_jobs(cube: Any, halvings: list[np.datetime64]) -> list[Callable[[], dict[str, Any]]]:
    """Monthly fan charts, with revenue by segment after hashprice."""
    hv = ", ".join(str(np.datetime64(h, "M")) for h in halvings) or "none in the horizon"
    jobs = [functools.partial(_fan_figure, cube, spec, halvings, hv)
            for spec in _FANS if spec[0] in cube]
    if "mining_revenue" in cube and "hpc_revenue" in cube:
        jobs.insert(3, functools.partial(_revenue_figure, cube, halvings))
    return jobs


def _fan_figure(cube: Any, spec: tuple[str, str, str, float, bool],
                halvings: list[np.datetime64], halvings_text: str) -> dict[str, Any]:
    var, title, label, scale, log = spec
    time = cube["time"].values
    bands = stats.fan(cube, var) * scale
    mean = cube[f"{var}_mean"].values * scale if f"{var}_mean" in cube else None
    svg = charts.fan_chart(time, bands, title=title, ylabel=label, halvings=halvings,
                           log=log, mean=mean)
    unit = label[label.index("[") + 1:label.index("]")].split(",")[0]
    return figure(var, title, svg, f"Median, P25-P75 and P5-P95 by month. Dashed "
                  f"lines: halvings (median across paths: {halvings_text}).",
                  _fan_alt(title, time, bands, unit))


def _revenue_figure(cube: Any, halvings: list[np.datetime64]) -> dict[str, Any]:
    time = cube["time"].values
    mining = stats.fan(cube, "mining_revenue") * 1e-6
    hpc = stats.fan(cube, "hpc_revenue") * 1e-6
    svg = charts.revenue_segments(time, mining, hpc, halvings=halvings)
    return figure("revenue", "Revenue by segment", svg,
                  "Median and P25-P75 of monthly revenue, mining vs HPC leases.",
                  _fan_alt("Mining revenue", time, mining, "USD M/month") + " "
                  + _fan_alt("HPC revenue", time, hpc, "USD M/month"))
