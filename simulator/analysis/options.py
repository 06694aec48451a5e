"""What flexibility is worth: the fair value with an option against without it, on common
random numbers (issue 16, item 6).

Curtailment by machine class (``engine/fleet.py``): each class
stops in a month whose hashprice does not pay its power. :func:`curtailment_option` runs the
scenario twice with the same seed, with curtailment and with every machine always on
(``company.power.curtail: false``); the random numbers, the BTC paths and the signing lottery
are the same path by path, so the difference in fair value is a paired estimate, with the
control variate of the run (its controls do not depend on the fleet).

The mining footprint's options to mothball, restart and sell as powered land
(``company.power.mothball``, ``engine/mothball.py``) are valued the same way by
:func:`mothball_option`: least-squares decisions against the fixed rule (the fleet let go for
nothing at the first year-end its projection is worth nothing).

Conversion as a decision (``sites.<name>.conversion.decision: lsmc``, ``engine/conversion.py``)
is valued by :func:`conversion_option`: tenant offers accepted or let lapse by least squares,
against the fixed rule that signs the first offer whatever the market does. The first offer is
the fixed rule's own signing lottery, so the fixed rule is one of the policies the decision
may choose, and the two runs share it path by path.

Fleet renewal decided cohort by cohort at each year-end (``company.fleet.renewal.decision:
lsmc``, ``engine/renewal.py``) is valued by :func:`renewal_option` against the fixed rule of the
same ``renewal`` terms (every cohort replaced at the end of its life).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["conversion_option", "curtailment_option", "every_option", "mothball_option",
           "renewal_option", "with_conversion", "with_curtailment", "with_mothball", "with_renewal"]


def _central(x: Any) -> float:
    """A fixed input's value, or an uncertain one's central value."""
    return float(x.central()) if hasattr(x, "central") else float(x)


def _paired(name: str, flexible_scenario: Any, rigid_scenario: Any, *, fit: bool, paths: int,
            seed: int, sampling: str | None, client: Any) -> tuple[dict[str, Any], Any, Any]:
    """Fair value with the option less without it, on common random numbers (pricing measure).

    Both scenarios run with the same seed, so the paths, the BTC prices and the signing lottery
    are the same path by path; the difference is a paired estimate with the flexible run's
    control variate. ``fit``: fit the flexible run's mark here and hand it back (its policies
    say when the option is used); otherwise the mark is None.

    Returns
    -------
    (dict, Dataset, MarkSeries or None)
        The option's common fields (``name``, ``measure``, ``paths``, ``seed``, ``value`` and
        ``se`` [USD/share], ``with`` and ``without``: each run's fair value and SE), the
        flexible run's cube, and its mark.
    """
    from simulator.engine.valuation import controlled_mean
    from simulator.run import scenario_mark, simulate

    kw = {"paths": paths, "seed": seed, "sampling": sampling, "client": client}
    mark = scenario_mark(flexible_scenario, seed=seed, sampling=sampling) if fit else None
    flexible = simulate(flexible_scenario, mark=mark, **kw)
    rigid = simulate(rigid_scenario, **kw)
    v1 = np.asarray(flexible["value_per_share"].values, np.float64)
    v0 = np.asarray(rigid["value_per_share"].values, np.float64)
    controls = np.asarray(flexible["pricing_controls"].values, np.float64)
    diff, diff_se, _, _ = controlled_mean(v1 - v0, controls)
    out = {
        "name": name, "measure": "pricing", "paths": int(v1.size), "seed": int(seed),
        "value": float(diff), "se": float(diff_se),
        "with": [float(flexible.attrs["fair_value_per_share"]), float(flexible.attrs["fair_value_se"])],
        "without": [float(rigid.attrs["fair_value_per_share"]), float(rigid.attrs["fair_value_se"])],
    }
    return out, flexible, mark


def with_curtailment(scenario: Any, curtail: bool) -> Any:
    """The scenario with ``company.power.curtail`` set (validated again)."""
    data = scenario.model_dump(mode="python", by_alias=True, exclude_unset=False)
    data["company"]["power"]["curtail"] = bool(curtail)
    return type(scenario).model_validate(data)


def curtailment_option(scenario: Any, *, paths: int, seed: int, sampling: str | None = None,
                       client: Any = None) -> dict[str, Any]:
    """Value of curtailing machine class by class, pricing measure, on common random numbers.

    Returns
    -------
    dict
        ``value`` and ``se``: fair value with curtailment minus without [USD/share] and the
        standard error of that paired difference (control variate applied); ``with`` and
        ``without``: each run's fair value and SE; ``paths``; ``share_curtailing_by_year``:
        the share of real-world paths with any machine off in some month of each year [1];
        ``curtailed_share_by_year``: the mean share of installed hashrate off [1] (both from
        the run's monthly series, real-world measure); ``breakevens``: each machine class's
        breakeven hashprice [USD/PH/day] at the scenario's central power price and credit.
    """
    out, flexible, _ = _paired("curtailment by machine class", with_curtailment(scenario, True),
                               with_curtailment(scenario, False), fit=False, paths=paths,
                               seed=seed, sampling=sampling, client=client)
    cur = np.asarray(flexible["curtailed"].values, np.float64)  # [path or sample, time]
    months = cur.shape[1]
    years = [(y, slice(12 * y, min(12 * (y + 1), months))) for y in range(-(-months // 12))]
    out["share_curtailing_by_year"] = [float(np.mean((cur[:, s] > 0).any(axis=1))) for _, s in years]
    out["curtailed_share_by_year"] = [float(np.mean(cur[:, s])) for _, s in years]
    out["breakevens"] = _class_breakevens(scenario)
    return out


def _class_breakevens(scenario: Any) -> list[dict[str, float]]:
    """Each efficiency class's breakeven hashprice at the central power price and credit."""
    co = scenario.company
    price = _central(co.power.price_usd_per_mwh) + _central(co.power.demand_response_usd_per_mwh)
    effs = [_central(co.fleet.efficiency_j_per_th)]
    effs += [_central(d.efficiency_j_per_th) for d in co.fleet.deployments]
    return [{"j_per_th": j, "breakeven_usd_per_ph_day": j * 24 * price / 1000}
            for j in sorted(set(effs))]


def with_mothball(scenario: Any, decision: str) -> Any:
    """The scenario with ``company.power.mothball.decision`` set to ``lsmc`` or ``fixed``
    (the scenario's own costs and land value, or the model's defaults), validated again."""
    return _with_decision(scenario, ("company", "power", "mothball"), decision)


def _with_decision(scenario: Any, section: tuple[str, ...], decision: str) -> Any:
    """The scenario with ``<section>.decision`` set, the section's other terms kept (none:
    the model's defaults), validated again."""
    data = scenario.model_dump(mode="python", by_alias=True, exclude_unset=False)
    *path, name = section
    holder = data
    for key in path:
        holder = holder[key]
    holder[name] = {**(holder.get(name) or {}), "decision": decision}
    return type(scenario).model_validate(data)


def mothball_option(scenario: Any, *, paths: int, seed: int, sampling: str | None = None,
                    client: Any = None) -> dict[str, Any]:
    """Value of mothballing, restarting and selling the footprint by least squares, against
    the fixed rule, pricing measure, on common random numbers.

    Returns
    -------
    dict
        ``value``, ``se``, ``with``, ``without``, ``paths`` as :func:`curtailment_option`;
        from the policy's fitting paths (pricing measure, ``mothball.exercise_summary``):
        ``mothballed_share_by_year``, ``sold_share_by_year``, ``switch_share_by_year`` [1]
        and the exercise boundary ``boundary_hashprice_by_year`` [USD/PH/day] and
        ``boundary_btc_by_year`` [USD/BTC] (the median at the month-ends where an operating
        footprint is mothballed or sold; None in a year without one).
    """
    flexible_scenario = with_mothball(scenario, "lsmc")
    out, _, mark = _paired("mothball, restart or sell the mining footprint", flexible_scenario,
                           with_mothball(scenario, "fixed"), fit=True, paths=paths, seed=seed,
                           sampling=sampling, client=client)
    mb = flexible_scenario.company.power.mothball
    return {
        **out,
        "terms": {"cost_usd_per_mw_month": _central(mb.cost_usd_per_mw_month),
                  "restart_usd_per_mw": _central(mb.restart_usd_per_mw),
                  "land_usd_m_per_mw": _central(mb.land_usd_m_per_mw)},
        **{f"{k}_by_year": v for k, v in mark.exercised.items()},
    }


def with_conversion(scenario: Any, decision: str, sites: Any = None) -> Any:
    """The scenario with ``conversion.decision`` set to ``lsmc`` or ``fixed`` on every
    convertible site (or on those named in ``sites``), validated again."""
    data = scenario.model_dump(mode="python", by_alias=True, exclude_unset=False)
    for site in data["sites"]:
        if site.get("conversion") is not None and (sites is None or site["name"] in sites):
            site["conversion"]["decision"] = decision
    return type(scenario).model_validate(data)


def conversion_option(scenario: Any, *, paths: int, seed: int, sampling: str | None = None,
                      client: Any = None, sites: Any = None) -> dict[str, Any]:
    """Value of deciding conversions (accept a tenant offer, or let it lapse and wait for
    another) against signing the first offer, pricing measure, on common random numbers.

    Returns
    -------
    dict
        ``value``, ``se``, ``with``, ``without``, ``paths`` as :func:`curtailment_option`;
        ``sites``: the sites decided; ``terms``: each one's re-offer probability [1/month] and
        whether its offers follow the lease-rate index; and from the policy's fitting paths
        (pricing measure, ``conversion.exercise_summary``), per site:
        ``signed_share_by_year`` (signed by the year's end), ``sign_share_by_year``,
        ``declined_share_by_year`` [1], and the exercise boundary ``boundary_btc_by_year``
        [USD/BTC] and ``boundary_hashprice_by_year`` [USD/PH/day]: the level below which the
        year's offers were accepted (None where every offer was accepted, or none came);
        ``boundary_index_by_year`` for sites whose offers follow the AI lease-rate index: the
        index level [1] above which they were accepted.
    """
    flexible_scenario = with_conversion(scenario, "lsmc", sites)
    out, _, mark = _paired("conversion: accept a tenant offer or wait", flexible_scenario,
                           with_conversion(scenario, "fixed", sites), fit=True, paths=paths,
                           seed=seed, sampling=sampling, client=client)
    decided = [s for s in flexible_scenario.sites
               if s.conversion is not None and s.conversion.decision == "lsmc"]
    out["sites"] = [s.name for s in decided]
    out["terms"] = {s.name: {"reoffer_probability_monthly": _central(s.conversion.reoffer_probability_monthly),
                             "rate_follows_index": bool(s.conversion.rate_follows_index)}
                    for s in decided}
    for key in ("signed_share", "sign_share", "declined_share", "boundary_btc", "boundary_hashprice",
                "boundary_index"):
        out[f"{key}_by_year"] = {name: used[key] for name, used in mark.converted.items() if key in used}
    return out


def with_renewal(scenario: Any, decision: str) -> Any:
    """The scenario with ``company.fleet.renewal.decision`` set to ``lsmc`` or ``fixed`` (the
    scenario's own renewal terms, or the model's defaults where it has none), validated again."""
    return _with_decision(scenario, ("company", "fleet", "renewal"), decision)


def renewal_option(scenario: Any, *, paths: int, seed: int, sampling: str | None = None,
                   client: Any = None) -> dict[str, Any]:
    """Value of renewing the fleet by least squares against replacing every cohort at the end
    of its life, pricing measure, on common random numbers.

    Returns
    -------
    dict
        ``value``, ``se``, ``with``, ``without``, ``paths`` as :func:`curtailment_option`;
        ``terms``: the renewal's machine life [yr], frontier J/TH, its yearly improvement,
        USD/TH and its yearly change; from the policy's fitting paths (pricing measure,
        ``renewal.exercise_summary``), one entry per year of the grid, decisions at its last
        month-end: ``renewing_share_by_year`` (paths renewing some cohort) [1],
        ``renewed_ehs_by_year`` (mean hashrate renewed) [EH/s], and the exercise boundary
        ``boundary_hashprice_by_year`` [USD/PH/day] and ``boundary_btc_by_year`` [USD/BTC] (the
        median where some cohort is renewed), with ``kept_hashprice_by_year`` (the median where
        none is); None in a year without one.
    """
    flexible_scenario = with_renewal(scenario, "lsmc")
    out, _, mark = _paired("fleet renewal by machine cohort", flexible_scenario,
                           with_renewal(scenario, "fixed"), fit=True, paths=paths, seed=seed,
                           sampling=sampling, client=client)
    rn = flexible_scenario.company.fleet.renewal
    return {
        **out,
        "terms": {"machine_life_years": int(rn.machine_life_years),
                  "frontier_j_per_th": _central(rn.frontier_j_per_th),
                  "frontier_improvement_per_year": _central(rn.frontier_improvement_per_year),
                  "capex_usd_per_th": _central(rn.capex_usd_per_th),
                  "capex_change_per_year": _central(rn.capex_change_per_year)},
        **{f"{k}_by_year": v for k, v in mark.renewed.items()},
    }


def every_option(scenario: Any, *, paths: int, seed: int, sampling: str | None = None,
                 client: Any = None) -> list[dict[str, Any]]:
    """Every option the scenario holds, each valued against its fixed rule on the same paths:
    curtailment by class, mothball/restart/sell, fleet renewal, and conversion where a site
    has one to decide (the report's Flexibility table, ``minersim run --drivers``)."""
    kw = {"paths": paths, "seed": seed, "sampling": sampling, "client": client}
    out = [curtailment_option(scenario, **kw), mothball_option(scenario, **kw),
           renewal_option(scenario, **kw)]
    if any(s.conversion is not None for s in scenario.sites):
        out.append(conversion_option(scenario, **kw))
    return out
