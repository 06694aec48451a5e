"""What flexibility is worth: the fair value with an option against without it, on common
random numbers (issue 16, item 6).

Today's one decided option is curtailment by machine class (``engine/fleet.py``): each class
stops in a month whose hashprice does not pay its power. :func:`curtailment_option` runs the
scenario twice with the same seed, with curtailment and with every machine always on
(``company.power.curtail: false``); the random numbers, the BTC paths and the signing lottery
are the same path by path, so the difference in fair value is a paired estimate, with the
control variate of the run (its controls do not depend on the fleet).

The mining footprint's options to mothball, restart and sell as powered land
(``company.power.mothball``, ``engine/mothball.py``) are valued the same way by
:func:`mothball_option`: least-squares decisions against the fixed rule (the fleet let go for
nothing at the first year-end its projection is worth nothing). Conversion, spare capacity and
renewal are still fixed rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["curtailment_option", "mothball_option", "with_curtailment", "with_mothball"]


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
    from simulator.engine.valuation import controlled_mean
    from simulator.run import simulate

    kw = {"paths": paths, "seed": seed, "sampling": sampling, "client": client}
    flexible = simulate(with_curtailment(scenario, True), **kw)
    rigid = simulate(with_curtailment(scenario, False), **kw)
    v1 = np.asarray(flexible["value_per_share"].values, np.float64)
    v0 = np.asarray(rigid["value_per_share"].values, np.float64)
    controls = np.asarray(flexible["pricing_controls"].values, np.float64)
    diff, diff_se, _, _ = controlled_mean(v1 - v0, controls)
    out: dict[str, Any] = {
        "name": "curtailment by machine class", "measure": "pricing", "paths": int(v1.size),
        "seed": int(seed), "value": float(diff), "se": float(diff_se),
        "with": [float(flexible.attrs["fair_value_per_share"]), float(flexible.attrs["fair_value_se"])],
        "without": [float(rigid.attrs["fair_value_per_share"]), float(rigid.attrs["fair_value_se"])],
    }
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
    central = (lambda x: float(x.central()) if hasattr(x, "central") else float(x))
    price = central(co.power.price_usd_per_mwh) + central(co.power.demand_response_usd_per_mwh)
    effs = [central(co.fleet.efficiency_j_per_th)]
    effs += [central(d.efficiency_j_per_th) for d in co.fleet.deployments]
    return [{"j_per_th": j, "breakeven_usd_per_ph_day": j * 24 * price / 1000}
            for j in sorted(set(effs))]


def with_mothball(scenario: Any, decision: str) -> Any:
    """The scenario with ``company.power.mothball.decision`` set to ``lsmc`` or ``fixed``
    (the scenario's own costs and land value, or the model's defaults), validated again."""
    data = scenario.model_dump(mode="python", by_alias=True, exclude_unset=False)
    power = data["company"]["power"]
    power["mothball"] = {**(power.get("mothball") or {}), "decision": decision}
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
    from simulator.engine.valuation import controlled_mean
    from simulator.run import scenario_mark, simulate

    kw = {"paths": paths, "seed": seed, "sampling": sampling, "client": client}
    flexible_scenario = with_mothball(scenario, "lsmc")
    mark = scenario_mark(flexible_scenario, seed=seed, sampling=sampling)  # one fit: its policy and when it is used
    flexible = simulate(flexible_scenario, mark=mark, **kw)
    rigid = simulate(with_mothball(scenario, "fixed"), **kw)
    v1 = np.asarray(flexible["value_per_share"].values, np.float64)
    v0 = np.asarray(rigid["value_per_share"].values, np.float64)
    controls = np.asarray(flexible["pricing_controls"].values, np.float64)
    diff, diff_se, _, _ = controlled_mean(v1 - v0, controls)
    used = mark.exercised
    mb = flexible_scenario.company.power.mothball
    central = (lambda x: float(x.central()) if hasattr(x, "central") else float(x))
    return {
        "name": "mothball, restart or sell the mining footprint", "measure": "pricing",
        "paths": int(v1.size), "seed": int(seed), "value": float(diff), "se": float(diff_se),
        "with": [float(flexible.attrs["fair_value_per_share"]), float(flexible.attrs["fair_value_se"])],
        "without": [float(rigid.attrs["fair_value_per_share"]), float(rigid.attrs["fair_value_se"])],
        "terms": {"cost_usd_per_mw_month": central(mb.cost_usd_per_mw_month),
                  "restart_usd_per_mw": central(mb.restart_usd_per_mw),
                  "land_usd_m_per_mw": central(mb.land_usd_m_per_mw)},
        **{f"{k}_by_year": v for k, v in used.items()},
    }
