"""What a run's report says in words about its method, its limits and its sources.

:func:`methodology` and :func:`limitations` are generated from the scenario (which measures,
which processes, which rules decide what), so the report never describes a model the run did
not use; :func:`sources` resolves every row id the scenario cites to the shipped fact sheet
(``docs/facts/``). Each returns plain data that :mod:`simulator.report.outputs` attaches to
the cube as JSON, so a report re-drawn from ``results.nc`` says the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["methodology", "limitations", "sources"]


def _say(x: Any, unit: str = "", pct: bool = False) -> str:
    """A scenario input in words: a number, or its distribution as the scenario states it."""
    if getattr(x, "is_fixed", False):
        x = x.central()  # {dist: fixed, value: 0.15} reads as the number it is
    describe = getattr(x, "describe", None)
    if callable(describe):
        return describe()
    if isinstance(x, (int, float)):
        return f"{x:.1%}" if pct else f"{x:,.6g}{(' ' + unit) if unit else ''}"
    return str(x)


def _process(btc: Any) -> str:
    p = btc.process
    kind = p.kind
    if kind == "gbm":
        return f"geometric Brownian motion, volatility {_say(p.volatility, pct=True)} a year"
    if kind == "merton":
        return (f"a jump-diffusion (Merton): volatility {_say(p.volatility, pct=True)}, "
                f"{_say(p.jump_intensity_per_year)} jumps a year of mean {_say(p.jump_mean)} and "
                f"sd {_say(p.jump_sd)} in log price, the drift compensated for the jumps")
    if kind == "regime":
        return ("a two-state regime chain (drifts "
                + " and ".join(_say(d, pct=True) for d in p.drift) + ", volatilities "
                + " and ".join(_say(v, pct=True) for v in p.volatility) + ")")
    if kind == "bootstrap":
        return (f"a block bootstrap of the monthly returns in {p.csv} (blocks of "
                f"{getattr(p, 'block_months', '?')} months), shifted under the pricing measure "
                "so the discounted price is a martingale")
    return kind


def methodology(scenario: Any) -> list[dict[str, str]]:
    """The model as this scenario runs it: ``[{"title", "text"}]``, plain text."""
    v, btc, net, co = scenario.valuation, scenario.market.btc, scenario.network, scenario.company
    drift = getattr(btc.process, "drift", None)
    if drift is None:  # the bootstrap: the history's returns carry their own drift
        drift_text = "the history's own drift"
    else:
        drifts = drift if isinstance(drift, list) else [drift]
        drift_text = "the scenario's real-world drift, " + " / ".join(_say(d, pct=True) for d in drifts)
    rate, growth = _say(v.risk_free_rate, pct=True), _say(v.terminal_growth_mining, pct=True)
    sims = scenario.simulation
    out = [
        {"title": "Two questions, two measures",
         "text": ("The fair value answers what a share is worth today: the mean, over paths "
                  "simulated under the pricing measure (BTC drifting at the risk-free rate, "
                  f"{rate} a year), of the value to equity per diluted share, with its Monte Carlo "
                  "standard error. The forecasts answer where the stock may be in one, two and "
                  f"three years: the same company on real-world paths, where BTC drifts at "
                  f"{drift_text}, marked with the same value function. Both sets of paths share every random "
                  "number; only BTC's drift differs.")},
        {"title": "Bitcoin, fees and the network",
         "text": (f"BTC starts at {_say(btc.spot_usd, 'USD')} and follows {_process(btc)}. Fees "
                  "per block follow an AR(1) in logs, correlated with BTC's monthly return. The "
                  f"network hashrate follows the '{net.model.kind}' model"
                  + (" (hashprice mean-reverts toward the cash breakeven of the marginal machine, "
                     "whose efficiency improves every year)" if net.model.kind == "cost_curve" else
                     " (a decaying growth rate with a lagged response to BTC)")
                  + "; blocks come faster while hashrate rises, so each path has its own "
                  "halving month.")},
        {"title": "Fleet and sites",
         "text": ("The fleet mines the share of network hashrate its machines hold, within the MW "
                  "not leased, the most efficient machines powered first. Each machine class "
                  + ("stops in a month whose hashprice is below its power cost"
                     + (f" plus the {_say(co.power.demand_response_usd_per_mwh, 'USD/MWh')} "
                        "demand-response credit it would give up"
                        if _say(co.power.demand_response_usd_per_mwh) not in ("0", "0.0") else "")
                     if co.power.curtail else "runs every month (curtailment is switched off)")
                  + " (site opex still paid). At each year-end a fleet worth nothing kept for any "
                  "number of years is let go. "
                  f"{len(scenario.sites)} site(s): a tenant signs with a stated probability at an "
                  "uncertain month; the MW leave mining when the build starts and earn rent, "
                  "tranche by tranche, from energisation; tenants may default and renew.")},
        {"title": "Capital structure and taxes",
         "text": (f"{len(co.debt)} debt instrument(s). Convertibles settle path by path: the "
                  "issuer calls when the indenture allows and the share is worth enough, holders "
                  "convert at maturity when the share is worth more than the conversion price, "
                  "the capped call offsets dilution. A cash shortfall is met by equity raised "
                  f"at the share's value, never below {_say(co.min_issue_price_usd, 'USD')} a "
                  "share; a path that cannot raise defaults and its shares are worth zero. Cash "
                  "tax falls on positive taxable income after straight-line depreciation and "
                  "interest, with loss carry-forwards.")},
        {"title": "Discounting and terminal value",
         "text": (f"Mining, SG&A and taxes are discounted at the risk-free rate; leases at it plus "
                  f"the tenant's credit spread ({_say(v.tenant_credit_spread, pct=True)}); the notes at "
                  f"it plus the company's ({_say(v.company_credit_spread, pct=True)}). After the "
                  f"{sims.horizon_months // 12}-year horizon the same rules are projected for 150 "
                  f"years: mining on its run-rate with the halvings (growth {growth}), "
                  f"SG&A at {_say(v.terminal_growth_sga, pct=True)}, each lease at its escalator, "
                  "taxes with the losses carried. No multiples are used anywhere.")},
        {"title": "The mark, V_t(state)",
         "text": ("Forecasts, conversions, calls and raises need the value of the business at "
                  "a future month. It is fitted by least squares (Longstaff and Schwartz 2001) "
                  "of the discounted operating cash flows after each month on that month's "
                  f"state (BTC, hashprice, fleet, lease NOI, pipeline, debt, tax losses), with a "
                  f"degree-{v.marks.degree} polynomial basis, on {v.marks.fit_paths:,} pricing "
                  "paths of its own (half fit, half test: the out-of-sample R² is in the "
                  "manifest); cash, BTC held and the notes enter exactly.")},
        {"title": "Precision",
         "text": ("The fair value's standard error uses a control variate (the discounted BTC "
                  "price at several dates and each site's signing less its probability, all "
                  "of known mean). The convergence chart below shows the running mean; more "
                  "paths shrink the standard error as one over their square root.")},
    ]
    return out


def _decisions(scenario: Any) -> str:
    """Which of the company's decisions respond to the state of the world in this scenario, and
    which follow a fixed rule."""
    co = scenario.company
    mothball = co.power.mothball is not None and co.power.mothball.decision == "lsmc"
    renewal = co.fleet.renewal is not None and co.fleet.renewal.decision == "lsmc"
    convertible = [s for s in scenario.sites if s.conversion is not None]
    decided = [s.name for s in convertible if s.conversion.decision == "lsmc"]
    lsmc, rules = [], []
    (lsmc if co.power.curtail else rules).append(
        "curtailment, class by class each month, where hashprice does not pay its power" if co.power.curtail else "every machine runs every month")
    (lsmc if mothball else rules).append(
        "mothballing, restarting or selling the mining footprint (least squares)" if mothball else
        "the fleet is let go by a year-end rule rather than mothballed, restarted or sold")
    if co.fleet.renewal is not None:
        (lsmc if renewal else rules).append(
            "renewing each machine cohort (least squares)" if renewal else "machines are renewed at the end of their life")
    if decided:
        lsmc.append("accepting or declining tenant offers at " + ", ".join(decided) + " (least squares)")
    if len(decided) < len(convertible):
        rules.append("a tenant signs at a drawn month whatever bitcoin does")
    text = "Decisions that respond to the state of the world: " + "; ".join(lsmc) + "."
    if rules:
        text += (" Fixed rules here: " + "; ".join(rules) + ". `minersim run --drivers` values "
                 "each option against its rule; the scenario can switch each one on.")
    return text


def _leases(scenario: Any) -> str:
    """How lease rates move in this scenario."""
    indexed = [s.name for s in scenario.sites if s.conversion is not None and s.conversion.rate_follows_index]
    if indexed:
        return (f"Lease rates at {', '.join(indexed)} follow the AI colocation lease-rate index "
                "when they sign; the others are fixed rates drawn once per path. Tenant defaults "
                "are not correlated across sites.")
    return ("Leases are priced at a fixed rate drawn once per path (no site follows the AI "
            "colocation lease-rate index) and tenant defaults are not correlated across sites.")


def limitations(scenario: Any) -> list[str]:
    """What this run does not model, in plain sentences (the report's limitations list)."""
    out = [
        _decisions(scenario),
        "Only the sites listed in the scenario can convert; spare MW and the development "
        "pipeline carry option value only where they are listed as sites (as scenarios/flex.yaml "
        "lists CleanSpark's).",
        _leases(scenario),
        "The pricing measure charges no BTC risk premium: the fair value is not a forecast, "
        "and the real-world drift behind the forecasts is an assumption, not a price.",
        "Not modelled: share-based compensation, RSUs and warrants, buybacks and dividends, "
        "BTC lending and collateral posted against loans, hedges, mergers and guidance changes.",
        "Taxes are simplified: one rate, straight-line depreciation, an 80% loss limit, no "
        "credits or minimum tax.",
        "Inputs come from secondary sources in many rows of the fact sheet (tagged low quality "
        "in the sources below); verify single-source figures before publishing.",
    ]
    if not scenario.sites:
        out[1] = "This scenario converts no site: it values the company as a pure miner."
    return out


def sources(assumptions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every fact-sheet row the scenario cites, with the inputs that cite it.

    ``assumptions`` is the report's assumptions list (``key``, ``source``). Returns
    ``{"rows": [{id, item, value, unit, as_of, url, quality, sheet, cited_by}],
    "unresolved": [{id_or_text, cited_by}]}``, rows in sheet order.
    """
    from simulator.scenario.facts import load_facts, resolve

    facts = load_facts()
    order = {fid: i for i, fid in enumerate(facts)}
    cited: dict[str, list[str]] = {}
    unresolved: dict[str, list[str]] = {}
    for a in assumptions:
        text = str(a.get("source") or "")
        if not text:
            continue
        res = resolve(text)
        for fact in res.facts:
            cited.setdefault(fact.id, []).append(str(a.get("key", "")))
        for bad in res.missing:
            unresolved.setdefault(bad, []).append(str(a.get("key", "")))
    rows = []
    for fid in sorted(cited, key=lambda f: order.get(f, len(order))):
        f = facts[fid]
        rows.append({"id": f.id, "item": f.item, "value": f.value, "unit": f.unit,
                     "as_of": f.as_of, "url": f.url, "quality": f.quality, "sheet": f.sheet,
                     "cited_by": sorted(set(cited[fid]))})
    return {"rows": rows,
            "unresolved": [{"id": k, "cited_by": sorted(set(v))} for k, v in unresolved.items()]}
