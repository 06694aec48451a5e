"""Fleet renewal: machines retire at the end of their life and the frontier model replaces them.

Renewal is expressed as fleet deployments (``fleet.planned_fleet``'s input): at each retirement
a negative deployment removes the retiring cohort's hashrate and power, and a positive one adds
the same hashrate at the frontier efficiency of that month, paid at that month's USD/TH. The
loop runs over cohorts (a few dozen at most), never over paths; every number may be a scalar
or a per-path array ``[P]``.
"""

from __future__ import annotations

import numpy as np

from simulator import units

Step = tuple[object, object, object, object]  # (month, EH/s, J/TH, USD/TH): a fleet deployment


def renewal_deployments(cohorts: list[tuple[int, object, object]], *, months: int, life_years: int,
                        frontier_j_per_th, frontier_improvement_per_year, capex_usd_per_th,
                        capex_change_per_year=0.0) -> list[Step]:
    """Retire-and-replace deployments over the horizon.

    Parameters
    ----------
    cohorts : list of (month, hashrate_ehs, j_per_th)
        Month may be an int or a per-path int array.
        Machines in service (:func:`aged_fleet` for the fleet at the valuation date, plus
        each planned deployment with its landing month). Hashrate [EH/s], efficiency [J/TH].
    months : int
        Months T on the grid.
    life_years : int
        Machine life [yr].
    frontier_j_per_th : float or ndarray [P]
        Efficiency of the best machine bought at the valuation date [J/TH] (N-A1..N-A3).
    frontier_improvement_per_year : float or ndarray [P]
        Yearly fall of the frontier J/TH [1/yr].
    capex_usd_per_th, capex_change_per_year : float or ndarray [P]
        Price of new machines at the valuation date [USD/TH] (N-A6, N-A7) and its yearly change.

    Returns
    -------
    list of (month, hashrate_ehs, j_per_th, capex_usd_per_th)
        Pairs of (retire, replace) deployments for every retirement inside the horizon.

    Notes
    -----
    A replacement bought at month m runs at ``J_f (1 - g)^(m/12)`` J/TH, costs
    ``c0 (1 + dc)^(m/12)`` USD/TH, and itself retires at ``m + 12 life``.
    """
    life = units.MONTHS_PER_YEAR * int(life_years)
    out: list[Step] = []
    # A cohort's month may be a per-path array (a deployment date drawn from a month range);
    # the queue is ordered by its latest month, and paths whose retirement falls past the
    # horizon simply never see it (planned_fleet ignores months >= T).
    queue = [(np.asarray(m, np.int64) + life, h, j) for m, h, j in cohorts]
    while queue:
        queue.sort(key=lambda c: int(np.max(c[0])))
        month, h, j = queue.pop(0)
        if np.min(month) >= months:
            continue
        years = month / units.MONTHS_PER_YEAR
        j_new = np.asarray(frontier_j_per_th, np.float64) * (1.0 - np.asarray(frontier_improvement_per_year)) ** years
        price = np.asarray(capex_usd_per_th, np.float64) * (1.0 + np.asarray(capex_change_per_year)) ** years
        neg = -np.asarray(h, np.float64)
        out.append((month, neg, j, 0.0))
        out.append((month, h, j_new, price))
        queue.append((month + life, h, j_new))
    return out


def aged_fleet(hashrate_ehs, j_per_th, life_years: int) -> list[tuple[int, object, object]]:
    """The fleet at the valuation date as ``life_years`` equal cohorts, one retiring each year.

    Cohort ``k`` (k = 0 .. life-1) is treated as bought ``life - 1 - k`` years ago, so its
    retirement falls at month ``12 (k + 1)``: returned as landing month ``12 (k + 1) - 12 life``.
    """
    life = int(life_years)
    slice_ = np.asarray(hashrate_ehs, np.float64) / life
    w = units.MONTHS_PER_YEAR
    return [(w * (k + 1) - w * life, slice_, j_per_th) for k in range(life)]
