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
import re
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
    beta = beta if beta is not None else decoupling.btc_beta(cube)
    halvings = halving_months(cube)
    ctx: dict[str, Any] = {
        "scenario_name": str(man.get("scenario_name", "unnamed scenario")),
        "valuation_date": str(man.get("valuation_date", "")),
        "description": str(man.get("scenario_description", "") or ""),
        "notes": [str(n) for n in notes],
        "sample_note": _sample_note(cube),
    }
    ctx.update(_headline(cube, price, man))
    ctx.update(_title(man, price, ctx["fair_value"], ctx["fair_value_se"]))
    memo = _memo(man)
    ctx["assumptions"], ctx["assumptions_note"] = _assumptions(man)
    ctx.update(_sources(memo))
    ctx["assumption_groups"], ctx["assumptions_summary"] = _assumption_groups(
        ctx["assumptions"], {r["id"] for r in ctx["source_rows"]})
    ctx["option_rows"], ctx["options_note"] = _options(man)
    ctx["methodology"] = memo.get("methodology", [])
    ctx["limitations"] = memo.get("limitations", [])
    ctx["methodology_note"] = ("" if ctx["methodology"] else
                               "This cube carries no description of its method (it was not made by "
                               "`minersim run`); see the README's \"How the model works\".")
    ctx["bridge_rows"], ctx["bridge_caption"], bridge_chart = fair_value_bridge(
        cube, price, ctx["fair_value"])
    ctx["signing_rows"] = signing_rows(cube, ctx["fair_value"])
    ctx["forward_rows"] = _forward_rows(cube, price)
    ctx["beta_rows"], ctx["hpc_share"] = _beta_rows(beta)
    ctx["site_rows"] = _site_rows(cube)
    ctx["manifest_rows"] = _manifest_rows(man)
    commented = man.get("scenario_yaml_commented")
    ctx["scenario_yaml"] = str(commented or man.get("scenario_yaml", ""))
    ctx["scenario_yaml_label"] = ("Resolved scenario (YAML, with its files' comments)" if commented
                                  else "Resolved scenario (JSON)")
    jobs = _chart_jobs(cube, value, price, beta, halvings, bridge_chart, ctx["bridge_caption"],
                       ctx["fair_value"])
    jobs.append(("drivers", functools.partial(drivers_context, cube, drivers, breakevens)))
    ctx["charts"], extra = _charts(jobs)
    ctx.update(extra)
    return ctx


def _title(man: dict[str, Any], price: float | None, fair: float, se: float) -> dict[str, str]:
    """The page's title and the company line: who, and the answer in one line."""
    ticker = str(man.get("ticker", "") or "")
    name = str(man.get("company_name", "") or "") or ticker or "The company"
    company = f"{name} ({ticker})" if ticker and ticker != name else name
    title = f"{company}: fair value {usd(fair)} a share (± {usd(se)})"
    if price is not None:
        title += f" against {usd(price)} in the market"
    return {"title": title, "company_title": company}


def _json_attr(man: dict[str, Any], key: str, kind: type) -> Any:
    """A JSON attribute of the run (``memo_json``, ``options_json``) as ``kind``; empty when
    absent or unreadable (a cube not made by ``minersim run``)."""
    try:
        value = json.loads(man.get(key) or "null")
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()


def _memo(man: dict[str, Any]) -> dict[str, Any]:
    return _json_attr(man, "memo_json", dict)


_USE_KEYS = ("share_curtailing_by_year", "switch_share_by_year", "renewing_share_by_year",
             "sign_share_by_year")
"""Where each option says how often it is used, year by year (the first key an option has)."""

_BOUNDARY_WORDS = {
    "mothball": "mothballed or sold at a median hashprice of {}/PH/day",
    "renewal": "cohorts renewed at a median hashprice of {}/PH/day",
    "conversion": "offers accepted with BTC below {}",
}


def _by_year(shares: list) -> str:
    """``yr 1 30%, yr 2 12%, ...`` for the first five years (years without a figure left out)."""
    return ", ".join(f"yr {y + 1} {x:.0%}" for y, x in enumerate(shares[:5]) if x is not None)


def _span(values: list, fmt) -> str:
    """The range of the figures of the years that have one (``$17-$25``), or empty."""
    xs = [float(x) for x in values if x is not None]
    if not xs:
        return ""
    lo, hi = min(xs), max(xs)
    return fmt(lo) if abs(hi - lo) < 0.005 * max(abs(hi), 1.0) else f"{fmt(lo)}–{fmt(hi)}"


def _option_use(o: dict[str, Any]) -> str:
    """When an option is used: the share of paths exercising it in each year (per site for
    conversions)."""
    for key in _USE_KEYS:
        got = o.get(key)
        if isinstance(got, dict):
            return "; ".join(f"{site}: {_by_year(v)}" for site, v in got.items())
        if isinstance(got, list):
            return _by_year(got)
    return ""


def _option_boundary(o: dict[str, Any]) -> str:
    """Where an option is exercised: the machine classes' breakevens (curtailment), or the
    range over years of the median state at exercise (mothball, renewal, conversion)."""
    if o.get("breakevens"):
        return "; ".join(f"{b['j_per_th']:g} J/TH below {usd(b['breakeven_usd_per_ph_day'])}/PH/day"
                         for b in o["breakevens"])
    name = str(o.get("name", ""))
    kind = next((k for k in _BOUNDARY_WORDS if name.startswith(k) or k in name), None)
    if kind == "conversion":
        parts = []
        for site, values in (o.get("boundary_btc_by_year") or {}).items():
            span = _span(values, lambda x: usd(x, 0))
            parts.append(f"{site}: " + (_BOUNDARY_WORDS[kind].format(span) if span
                                        else "every offer accepted"))
        return "; ".join(parts)
    if kind:
        span = _span(o.get("boundary_hashprice_by_year") or [], usd)
        return _BOUNDARY_WORDS[kind].format(span) if span else "not exercised"
    return ""


def _options(man: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The flexibility table: each decided option's value (pricing measure) with its SE, when
    it is used and where, from ``options_json`` (``minersim run --drivers``)."""
    rows = []
    for o in _json_attr(man, "options_json", list):
        rows.append({
            "name": str(o.get("name", "")), "value": usd(float(o["value"]), 3),
            "se": usd(float(o["se"]), 3),
            "with": usd(float(o["with"][0])), "without": usd(float(o["without"][0])),
            "use": _option_use(o), "boundary": _option_boundary(o)})
    note = ("Each option's value is the fair value with it less the fair value under the fixed "
            "rule, on the same random numbers (a paired estimate with its standard error, pricing "
            "measure); mothball, renewal and conversion are decided by least squares on the "
            "mark's pricing fitting paths. 'Used' is the share of paths exercising it in each "
            "year: for curtailment, real-world paths with machines off in some month (the fleet "
            "let go included); for the others, the policy's fitting paths (pricing measure). "
            "The exercise boundary is the machine classes' breakevens, or the range over the "
            "years of the median state where the option is exercised.") if rows else (
            "Option values are computed with `minersim run SCENARIO --drivers` (more runs on the "
            "same random numbers: with and without each option).")
    return rows, note


def _host(url: str) -> str:
    """The site of a URL, shown as the link's text (the whole URL is the link)."""
    from urllib.parse import urlparse

    host = urlparse(url).netloc
    return host.removeprefix("www.") or url


def _sources(memo: dict[str, Any]) -> dict[str, Any]:
    """The sources appendix: every cited fact-sheet row, and the ids that resolve to nothing."""
    src = memo.get("sources")
    if not isinstance(src, dict):
        return {"source_rows": [], "source_unresolved": [],
                "sources_note": "No sources were attached to this run (the cube was not made by "
                                "`minersim run`)."}
    rows = []
    for r in src.get("rows", []):
        url = str(r.get("url", ""))
        rows.append({**{k: str(r.get(k, "")) for k in ("id", "item", "value", "unit", "as_of",
                                                        "quality", "sheet")},
                     "url": url if url.startswith(("https://", "http://")) else "",
                     "host": _host(url), "cited_by": [str(k) for k in r.get("cited_by", [])]})
    note = "" if rows else "The scenario cites no row of the fact sheets."
    return {"source_rows": rows, "source_unresolved": list(src.get("unresolved", [])),
            "sources_note": note}


_GROUPS = (("market", "Market: bitcoin and fees"), ("network", "Bitcoin network"),
           ("company", "Company: fleet, power, treasury, capital, taxes"),
           ("sites", "Sites and leases"), ("valuation", "Valuation"),
           ("correlations", "Correlations"))
_ID_TEXT = re.compile(r"\b[A-Z]+-[A-Z]*\d+\b")


def _source_parts(text: str, known: set[str]) -> list[dict[str, str]]:
    """A source text cut into plain parts and fact ids that link to the sources appendix."""
    parts, at = [], 0
    for m in _ID_TEXT.finditer(text):
        if m.group(0) not in known:
            continue
        if m.start() > at:
            parts.append({"text": text[at:m.start()], "id": ""})
        parts.append({"text": m.group(0), "id": m.group(0)})
        at = m.end()
    if at < len(text):
        parts.append({"text": text[at:], "id": ""})
    return parts


def _assumption_groups(rows: list[dict[str, Any]], known: set[str]
                       ) -> tuple[list[dict[str, Any]], str]:
    """The assumptions by scenario section, each row with its status and linked source."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in rows:
        head = re.split(r"[.\[]", a["key"], maxsplit=1)[0]
        status = a.get("status") or ("assumption" if a["assumption"] else
                                     "sourced" if a["source"] else "")
        groups.setdefault(head, []).append({**a, "status": status,
                                            "source_parts": _source_parts(a["source"], known)})
    titles = dict(_GROUPS)
    order = [k for k, _ in _GROUPS if k in groups] + [k for k in groups if k not in titles]
    out = [{"title": titles.get(k, k), "rows": groups[k],
            "n_assumption": sum(r["status"] == "assumption" for r in groups[k])} for k in order]
    n = len(rows)
    n_src = sum(r["status"] == "sourced" for g in out for r in g["rows"])
    n_ass = sum(g["n_assumption"] for g in out)
    summary = (f"{n} inputs: {n_src} cite a source, {n_ass} are marked as assumptions"
               + (f", {n - n_src - n_ass} give neither." if n - n_src - n_ass else "."))
    return out, summary if n else ""


def _street(man: dict[str, Any]) -> dict[str, Any] | None:
    raw = man.get("street_targets_usd")
    if not raw:
        return None
    try:
        street = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return None
    return street if street.get("low") and street.get("high") else None


def _headline(cube: Any, price: float | None, man: dict[str, Any]) -> dict[str, Any]:
    """Fair value (pricing measure) against the market and the Street; the 12-month forecast
    (real-world measure)."""
    fair, se = man.get("fair_value_per_share"), man.get("fair_value_se")
    if fair is None:  # a cube from before the two measures: the plain mean stands in
        v = np.asarray(cube["value_per_share"].values, dtype=np.float64)
        v = v[np.isfinite(v)]
        fair, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    fair, se = float(fair), float(se)
    value = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    n = int(np.isfinite(value).sum())
    sentence = (f"Fair value {usd(fair)} per share (± {usd(se)}, one standard error; pricing "
                f"measure, {n:,} paths)")
    kpis = [("Fair value per share (pricing measure)", usd(fair), f"± {usd(se)} (1 SE)")]
    street = _street(man)
    if price is not None:
        sentence += f" against a market price of {usd(price)} ({fair / price - 1:+.0%})"
        kpis.append(("Market price", usd(price), f"at {man.get('valuation_date', 'the valuation date')}"))
    if street:
        cons = street.get("consensus")
        sentence += (f"; the Street's targets run from {usd(street['low'])} to "
                     f"{usd(street['high'])}" + (f" (consensus {usd(cons)})" if cons else ""))
        kpis.append(("Street price targets", f"{usd(street['low'])} to {usd(street['high'])}",
                     (f"consensus {usd(cons)}; " if cons else "") + str(street.get("source", ""))))
    sentence += "."
    if "forward_value_per_share" in cube and 12 in cube["horizon"].values:
        f12 = np.asarray(cube["forward_value_per_share"].sel(horizon=12).values, dtype=np.float64)
        f12 = f12[np.isfinite(f12)]
        if f12.size:
            med = float(np.median(f12))
            sentence += (f" In twelve months the stock is marked at a median {usd(med)} "
                         f"(real-world measure)")
            kpis.append(("12-month forecast, median (real-world)", usd(med),
                         f"P5 {usd(np.quantile(f12, 0.05))} to P95 {usd(np.quantile(f12, 0.95))}"))
            if price is not None:
                p = float(np.mean(f12 > price))
                p_se = float(np.sqrt(p * (1 - p) / f12.size))
                sentence += f", above today's {usd(price)} on {p:.0%} of paths."
                kpis.append((f"P(12-month mark > {usd(price)}) (real-world)", f"{p:.1%}",
                             f"± {p_se:.1%} (1 SE)"))
            else:
                sentence += "."
    failed = int((~np.isfinite(value)).sum())
    return {"headline": sentence, "kpis": kpis, "fair_value": fair, "fair_value_se": se,
            "failed_note": f"{failed:,} failed path(s) excluded." if failed else "",
            "n_paths": f"{n:,}"}


def _assumptions(man: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    raw = man.get("assumptions_json")
    if not raw:
        return [], "No assumptions list was attached to this run."
    try:
        items = json.loads(raw)
    except (TypeError, ValueError):
        return [], "The attached assumptions list could not be read (invalid JSON)."
    rows = [{"key": str(i.get("key", "")), "description": str(i.get("description", "")),
             "source": str(i.get("source", "")), "assumption": bool(i.get("assumption")),
             "status": str(i.get("status", "") or "")}
            for i in items if isinstance(i, Mapping)]
    return rows, ("" if rows else "The attached assumptions list is empty.")


BRIDGE_PARTS = (("mining", "pv_mining", 1), ("HPC leases", "pv_hpc", 1),
                ("SG&A", "pv_sga", 1), ("taxes", "pv_taxes", 1),
                ("treasury BTC", "treasury_value", 1), ("cash", "cash0", 1),
                ("convertible notes", "pv_notes", -1), ("later equity raises", "pv_equity_raised", 1))
"""The bridge's components: label, cube variable and sign (domain.md, "Valuation")."""
_SHORT = {"HPC leases": "HPC", "treasury BTC": "treasury", "convertible notes": "notes",
          "later equity raises": "raises", "limited liability and dilution": "dilution",
          "control variate": "CV"}


def fair_value_bridge(cube: Any, price: float | None, fair: float
            ) -> tuple[list[dict[str, str]], str, Callable[[], str] | None]:
    """The fair value by component: pricing-measure means per basic share over every path.

    Rows, caption, and the call that draws the chart (None without the components).
    """
    if any(name not in cube for _, name, _ in BRIDGE_PARTS) or "diluted_shares" not in cube:
        return [], "Bridge unavailable: the cube lacks the valuation components.", None
    v = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    ok = np.isfinite(v)
    basic = np.asarray(cube["diluted_shares"].values, dtype=np.float64)[ok]
    basic = basic - np.asarray(cube["shares_issued"].values, dtype=np.float64)[ok]

    def per_basic(name: str) -> float:
        return float(np.mean(np.asarray(cube[name].values, dtype=np.float64)[ok] / basic))

    steps = [(label, sign * per_basic(name)) for label, name, sign in BRIDGE_PARTS]
    equity = per_basic("equity_value")
    plain = float(np.mean(v[ok]))
    steps.append(("limited liability and dilution", plain - equity))
    if abs(fair - plain) > 0.005:
        steps.append(("control variate", fair - plain))
    rows = [{"label": k, "value": usd(x)} for k, x in steps]
    rows.append({"label": "fair value per share", "value": usd(fair)})
    caption = ("Fair value by component, pricing measure: the mean over every path of each part "
               "of the value to equity, discounted (cash flows at the risk-free rate; leases at it "
               "plus the tenant's credit spread; the notes at it plus CleanSpark's), with terminal "
               "values, per basic share. Limited liability (a path's equity is never below zero) "
               "and dilution (conversion and raise shares) turn the sum into the mean value per "
               "diluted share; the control variate (the discounted BTC price, whose mean is "
               "known) removes Monte Carlo noise from it.")
    short = [(_SHORT.get(k, k), x) for k, x in steps]
    return rows, caption, functools.partial(charts.sotp_bridge, short, fair, market_price=price)


SIGNING_STATES = ("no site signs", "some sites sign", "every site signs")


def signing_rows(cube: Any, fair: float) -> list[dict[str, str]]:
    """Fair value by signing state: each state's share of paths, its mean value per share, and
    its contribution to the fair value (share x mean), all under the pricing measure."""
    if "sign_month" not in cube or cube["sign_month"].shape[1] == 0:
        return []
    v = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    sign = np.asarray(cube["sign_month"].values)
    signed = (sign >= 0).sum(axis=1)
    state = np.where(signed == 0, 0, np.where(signed == sign.shape[1], 2, 1))
    ok = np.isfinite(v)
    rows = []
    for k, name in enumerate(SIGNING_STATES):
        mask = ok & (state == k)
        if not mask.any() or (k == 1 and sign.shape[1] == 1):
            continue
        share = mask.sum() / ok.sum()
        mean = float(v[mask].mean())
        se = float(v[mask].std(ddof=1) / np.sqrt(mask.sum())) if mask.sum() > 1 else float("nan")
        rows.append({"state": name, "share": f"{share:.0%}", "mean": usd(mean),
                     "se": usd(se), "contribution": usd(share * mean)})
    return rows


def _forward_rows(cube: Any, price: float | None) -> list[dict[str, str]]:
    if "forward_value_per_share" not in cube:
        return []
    rows = []
    for year in (np.asarray(cube["horizon"].values) // 12).tolist():
        v = np.asarray(cube["forward_value_per_share"].sel(horizon=12 * year).values, float)
        v = v[~np.isnan(v)]
        if v.size == 0:
            continue
        q = np.quantile(v, [0.05, 0.5, 0.95])
        above = f"{np.mean(v > price):.0%}" if price is not None else "n/a"
        rows.append({"year": str(year), "p5": usd(q[0]), "median": usd(q[1]),
                     "p95": usd(q[2]), "above": above})
    return rows


def _beta_rows(beta: Mapping[str, Any]) -> tuple[list[dict[str, str]], str]:
    def row(label: str, r: Mapping[str, Any], excluded: str = "") -> dict[str, str]:
        return {"label": label, "beta": num(r["beta"], 2), "se": num(r["beta_se"], 3),
                "r2": num(r["r2"], 2), "n": f"{r['n']:,}", "excluded": excluded}

    rows = [row(f"year {r['year']}", r, f"{r['n_excluded']:,}") for r in beta["rows"]]
    if "overall" in beta:
        rows.append(row("years pooled", beta["overall"]))
    rows += [row(f"year {r['year']}, {r['state']}", r) for r in beta.get("by_state", [])]
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
            ("wall_seconds", "command wall time, start to drawing this report"),
            ("runtime_seconds", "engine time (simulate: sampling, paths, reductions)")]
    rows = []
    for key, label in keys:
        if key not in man:
            continue
        val = man[key]
        if key in ("runtime_seconds", "wall_seconds"):
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
                bridge_caption: str, fair: float | None = None) -> list[_Job]:
    """Every chart of the report in page order, each with caption and text alternative.

    Each call draws one chart and reduces the paths it needs itself, so the calls can run
    in any process that holds the cube.
    """
    jobs: list[_Job] = []
    if "forward_value_per_share" in cube and 12 in cube["horizon"].values:
        f12 = np.asarray(cube["forward_value_per_share"].sel(horizon=12).values, dtype=np.float64)
        med = float(np.nanmedian(f12))
        jobs.append(("value", lambda: figure(
            "value", "The stock in twelve months (real-world measure)",
            charts.value_hist_cdf(f12, price, title="Value per share in 12 months (real-world)"),
            "Histogram (bars, left axis) and cumulative distribution (line, right axis) of the "
            "value per share marked twelve months on, across real-world paths: a forecast, under "
            "the scenario's BTC drift. The x axis spans P0.5 to P99.5.",
            f"Twelve-month forecast: median {usd(med)}"
            + (f", market price today {usd(price)}." if price is not None else "."))))
    if bridge is not None:
        jobs.append(("bridge", lambda: figure(
            "bridge", "Fair value by component", bridge(), bridge_caption,
            "Waterfall from the components of value to the fair value per share; the numbers "
            "are in the table.")))
    jobs += [("fans", draw) for draw in _fan_jobs(cube, halvings)]
    time = cube["time"].values
    if "sign_month" in cube and cube.sizes.get("site", 0) > 0:  # a pure miner has no timeline
        jobs.append(("sites", lambda: figure(
            "sites", "Site conversion timelines",
            charts.site_timelines(cube["sign_month"].values, cube["energise_month"].values,
                                  cube["site"].values.tolist(), time[0], time.size),
            "Boxes P25-P75 with median, whiskers P5-P95 over the paths where the event "
            "happens; right margin: share of paths where it never happens within the horizon.",
            "Site timelines; the numbers are in the table.")))
    if "forward_value_per_share" in cube:
        jobs.append(("forward", lambda: figure(
            "forward", "Forward value per share",
            charts.forward_values(cube["forward_value_per_share"].values,
                                  (cube["horizon"].values // 12).tolist(), market_price=price,
                                  fair_value=fair),
            "Boxes P25-P75 with median, whiskers P5-P95; outliers not drawn.",
            "Forward value per share by year; the numbers are in the table.")))
    rows = [r for r in beta["rows"] if np.isfinite(r["beta"])]
    if rows:
        jobs.append(("decoupling", lambda: figure(
            "decoupling", "Decoupling from BTC", charts.decoupling(rows),
            "Left: OLS slope of the stock's 12-month return (value per share marked at the "
            "year's end over its start) on BTC's over the same months, across every path worth "
            "something at the start, with ±2 SE. Right: R² of that regression.",
            "BTC beta and R-squared by forward year; the numbers are in the table.")))
    jobs.append(("convergence", lambda: _convergence(value)))
    return jobs


def _convergence(value: np.ndarray) -> dict[str, Any]:
    n, mean, se = stats.running_mean(value)
    return figure(
        "convergence", "Convergence", charts.convergence(n, mean, se),
        f"Running plain mean of value per share after n paths, ±2 SE band. Final SE "
        f"{usd(float(se[-1]), 3)} over {int(n[-1]):,} paths. The fair value applies the "
        "control variate to the same paths, so it differs from this mean by about a standard "
        "error and has a smaller one.",
        f"Running mean settles at {usd(float(mean[-1]))} with SE {usd(float(se[-1]), 3)}.")


def _fan_jobs(cube: Any, halvings: list[np.datetime64]) -> list[Callable[[], dict[str, Any]]]:
    """Monthly fan charts, with revenue by segment after hashprice."""
    hv = (", ".join(str(np.datetime64(h, "M")) for h in charts.distinct_halvings(halvings))
          or "none in the horizon")
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
