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


# ------------------------------------------------------------ renewal as a decision (issue 16, item 5)
#
# The fixed rule above replaces every cohort at the end of its life. With ``decision: lsmc`` the
# owner decides instead, at each year-end and for each cohort, whether to put the frontier
# machine of that date in its place (the least-squares switching of ``engine/exercise.py``,
# wired by ``chain``). A cohort's machines are then one of V + 1 vintages: its own (regime 0)
# or the frontier machine landing at month 12 v (regime v, v = 1 .. V). The functions below are
# the decision's arrays: what each vintage earns per EH/s, year by year, what a move costs, and
# the fleet's classes once every path's regimes are known. Per EH/s: every cash flow and cost is
# proportional to a cohort's hashrate, so the decision does not depend on it.

def cohorts(hashrate_ehs, j_per_th, deployments, life_years: int) -> list[tuple[object, object, object, object]]:
    """The machines the renewal decision is about: the fleet at the valuation date aged evenly
    (:func:`aged_fleet`) and each planned deployment, each retiring after ``life_years``.

    Returns
    -------
    list of (landing month, hashrate [EH/s], efficiency [J/TH], retirement month)
        Months are ints or per-path int arrays [P]; a cohort runs in months
        ``landing <= t < retirement``. Cohorts of zero hashrate are left out.
    """
    life = units.MONTHS_PER_YEAR * int(life_years)
    out = []
    for month, h, j in aged_fleet(hashrate_ehs, j_per_th, life_years) + [
            (d[0], d[1], d[2]) for d in deployments]:
        if np.all(np.asarray(h, np.float64) == 0.0):
            continue
        month = np.asarray(month, np.int64)
        out.append((month, h, j, month + life))
    return out


def frontier(vintages: int, frontier_j_per_th, frontier_improvement_per_year, capex_usd_per_th,
             capex_change_per_year=0.0) -> list[tuple[object, object]]:
    """Efficiency [J/TH] and price [USD/TH] of the frontier machine landing at month ``12 v``,
    v = 1 .. ``vintages``: ``J_f (1 - g)^v`` and ``c0 (1 + dc)^v``, as :func:`renewal_deployments`
    prices a replacement landing that month."""
    j0 = np.asarray(frontier_j_per_th, np.float64)
    c0 = np.asarray(capex_usd_per_th, np.float64)
    g = np.asarray(frontier_improvement_per_year, np.float64)
    dc = np.asarray(capex_change_per_year, np.float64)
    return [(j0 * (1.0 - g) ** v, c0 * (1.0 + dc) ** v) for v in range(1, vintages + 1)]


def alive(landing, retirement, months: int) -> np.ndarray:
    """Months in which machines landing at ``landing`` and retiring at ``retirement`` run, [P or 1, T] bool."""
    t = np.arange(months)[None, :]
    land = np.asarray(landing, np.int64).reshape(-1, 1)
    return (t >= land) & (t < np.asarray(retirement, np.int64).reshape(-1, 1))


def _column(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def unit_margin(j_per_th, running, *, revenue_per_ehs, hashprice, hours, power_price_usd_per_mwh,
                site_opex_usd_per_mw_month, demand_response_usd_per_mwh=0.0,
                curtail: bool = True) -> np.ndarray:
    """Margin less site opex of 1 EH/s of machines at ``j_per_th`` [USD/month], [P, T].

    Parameters
    ----------
    j_per_th : float or ndarray [P]
        Efficiency [J/TH] (1 EH/s draws J/TH MW, CHK-4).
    running : ndarray of bool [P or 1, T]
        Months the machines are in service (:func:`alive`).
    revenue_per_ehs : ndarray [P, T]
        What 1 EH/s mines in the month, ``blocks (subsidy + fees) BTC price / H_net x
        realisation`` [USD/month per EH/s] (CHK-2).
    hashprice : ndarray [P, T]  [USD/PH/day]
    hours : ndarray [T]
        Hours in each month [h].
    power_price_usd_per_mwh, site_opex_usd_per_mw_month, demand_response_usd_per_mwh : float or ndarray [P]
    curtail : bool
        The machines stop in a month below their breakeven hashprice (``fleet.operate``'s rule).

    Notes
    -----
    ``on = hashprice >= J x 24 x (USD/MWh + DR) / 1000``;
    ``margin = on (revenue - J hours USD/MWh) + (1 - on) J hours DR - J opex`` while in
    service: ``fleet.operate``'s arithmetic for one class on its planned MW.
    """
    j = _column(j_per_th)
    price, credit = _column(power_price_usd_per_mwh), _column(demand_response_usd_per_mwh)
    energy = j * np.asarray(hours, np.float64)[None, :]  # MWh a month per EH/s
    if curtail:
        on = hashprice >= j * units.HOURS_PER_DAY * (price + credit) / units.KW_PER_MW
    else:
        on = np.ones(np.shape(hashprice), bool)
    out = np.where(on, revenue_per_ehs - energy * price, energy * credit)
    out -= j * _column(site_opex_usd_per_mw_month)
    out *= running
    return out


def by_year(monthly: np.ndarray, rate) -> np.ndarray:
    """Each year's monthly cash flows valued at the year's last month-end [USD], [P, Y].

    Month t's flow, paid at the end of month t, is compounded to month-end ``12 y + 11`` of its
    year y at the continuously compounded ``rate`` [1/yr]; a last, partial year is valued at
    ``12 Y - 1`` as if it were whole (with zeros), so every year is one discount step
    ``exp(-rate)`` of ``exercise.fit_switching``.
    """
    n, months = monthly.shape
    w = units.MONTHS_PER_YEAR
    years = -(-months // w)
    padded = np.zeros((n, years * w))
    padded[:, :months] = monthly
    k = np.arange(w, dtype=np.float64)
    grow = np.exp(_column(rate) * (w - 1 - k)[None, :] / w)  # [P or 1, 12]
    return np.einsum("pyk,pk->py", padded.reshape(n, years, w), np.broadcast_to(grow, (n, w)))


def moves(prices, rate, years: int) -> dict[tuple[int, int], np.ndarray]:
    """The cost of moving a cohort from vintage i to vintage v > i, per EH/s [USD], [P or 1, Y].

    Only possible at the end of year ``v - 1`` (the machine lands in month ``12 v``); ``inf``
    at every other year-end. The price ``TH/EH x USD/TH`` is paid in the landing month, one
    month after the decision, hence ``exp(-rate / 12)``. Nothing is got for the machines
    replaced (their resale is left out).
    """
    disc = np.exp(-_column(rate) / units.MONTHS_PER_YEAR)
    out = {}
    for v, (_, price) in enumerate(prices, start=1):
        cost = units.TH_PER_EH * _column(price) * disc  # [P or 1, 1]
        row = np.full((cost.shape[0], years), np.inf)
        row[:, v - 1] = cost[:, 0]
        for i in range(v):
            out[(i, v)] = row
    return out


def eligible(landing, n: int, years: int) -> np.ndarray:
    """Year-ends at which a cohort's renewal is considered: from the year-end after it lands,
    up to the last but one [P, Y] bool."""
    ends = units.MONTHS_PER_YEAR * np.arange(years) + units.MONTHS_PER_YEAR - 1
    out = np.broadcast_to(np.asarray(landing, np.int64).reshape(-1, 1) <= ends[None, :], (n, years)).copy()
    out[:, -1] = False
    return out


def renewed_classes(regimes, machines, vintages, months: int, life_years: int):
    """The fleet's machine classes once every path's renewals are known.

    Parameters
    ----------
    regimes : sequence of ndarray [P, Y] int
        Each cohort's vintage in each year (0: its own machines).
    machines : list of (landing, EH/s, J/TH, retirement)
        The cohorts (:func:`cohorts`).
    vintages : list of (J/TH, USD/TH)
        The frontier machine landing at month 12 v (:func:`frontier`).
    months : int
        Months T.
    life_years : int
        Machine life [yr]: a vintage landing at month 12 v runs until ``12 (v + life)``.

    Returns
    -------
    hashrate : ndarray [K, P, T]
        Hashrate in service of each class [EH/s]: one class per efficiency, a cohort's own
        machines while it keeps them, each vintage bought on the path while it lasts (every
        vintage has its class, held or not).
    j_per_th : ndarray [K, P or 1, 1]
        Each class's efficiency [J/TH] (``fleet.operate``'s input).
    capex : ndarray [P, T]
        Frontier machines bought, paid in their landing month [USD/month].
    """
    n = regimes[0].shape[0] if regimes else 1
    year = np.arange(months) // units.MONTHS_PER_YEAR
    life = units.MONTHS_PER_YEAR * int(life_years)
    effs: list[np.ndarray] = []
    rates: list[np.ndarray] = []

    def add(j, h):
        col = np.broadcast_to(_column(j), (_column(j).shape[0], 1))
        k = next((i for i, e in enumerate(effs) if np.array_equal(e, col)), None)
        if k is None:
            effs.append(col)
            rates.append(np.zeros((n, months)))
            k = len(effs) - 1
        rates[k] += h
    capex = np.zeros((n, months))
    for reg, (land, h, j, retire) in zip(regimes, machines):
        add(j, _column(h) * ((reg == 0)[:, year] & alive(land, retire, months)))
    for v, (jv, price) in enumerate(vintages, start=1):
        # Every vintage is a class even where no path of these holds it, so that the classes
        # (and fleet.operate's arithmetic) do not depend on the chunk's paths. Its hashrate is
        # summed year by year over the cohorts, then spread over the months it is in service.
        yearly, bought = np.zeros((n, regimes[0].shape[1])), np.zeros(n)
        for reg, (_, h, _, _) in zip(regimes, machines):
            hp = np.broadcast_to(np.asarray(h, np.float64), (n,))
            yearly += np.where(reg == v, hp[:, None], 0.0)
            bought += np.where((reg[:, v] == v) & (reg[:, v - 1] != v), hp, 0.0)
        land_v = units.MONTHS_PER_YEAR * v
        add(jv, yearly[:, year] * alive(land_v, land_v + life, months))
        capex[:, land_v] += bought * units.TH_PER_EH * np.asarray(price, np.float64)
    rows = max(e.shape[0] for e in effs)
    return (np.stack(rates), np.stack([np.broadcast_to(e, (rows, 1)) for e in effs]).astype(np.float64),
            capex)


def exercise_summary(regimes, hashrate, hashprice, btc_price) -> dict:
    """When the renewal option is used, year by year, on the paths given.

    Parameters
    ----------
    regimes : sequence of ndarray [P, Y] int
        Each cohort's vintage in each year.
    hashrate : sequence of float or ndarray [P]
        Each cohort's hashrate [EH/s].
    hashprice, btc_price : ndarray [P, T]
        [USD/PH/day], [USD/BTC].

    Returns
    -------
    dict of lists, one entry per year of the grid (decisions at its last month-end)
        ``renewing_share``: paths on which some cohort is renewed [1]; ``renewed_ehs``: the mean
        hashrate renewed [EH/s]; ``boundary_hashprice`` and ``boundary_btc``: the median hashprice
        [USD/PH/day] and BTC price [USD/BTC] at the year-ends where some cohort is renewed, and
        ``kept_hashprice`` where none is (None in a year without one): the exercise boundary.
    """
    n, years = regimes[0].shape
    months = hashprice.shape[1]
    ends = np.minimum(units.MONTHS_PER_YEAR * np.arange(years) + units.MONTHS_PER_YEAR - 1, months - 1)
    hp = np.broadcast_to(hashprice, (n, months))[:, ends]
    btc = np.broadcast_to(btc_price, (n, months))[:, ends]
    ehs = np.zeros((n, years))
    for reg, h in zip(regimes, hashrate):
        moved = np.zeros((n, years), bool)
        moved[:, :-1] = reg[:, 1:] != reg[:, :-1]
        ehs += moved * np.broadcast_to(np.asarray(h, np.float64), (n,))[:, None]
    hit = ehs > 0.0

    def median(x, where):
        return float(np.median(x[where])) if where.any() else None
    return {
        "renewing_share": [float(np.mean(hit[:, y])) for y in range(years)],
        "renewed_ehs": [float(np.mean(ehs[:, y])) for y in range(years)],
        "boundary_hashprice": [median(hp[:, y], hit[:, y]) for y in range(years)],
        "boundary_btc": [median(btc[:, y], hit[:, y]) for y in range(years)],
        "kept_hashprice": [median(hp[:, y], ~hit[:, y]) if y < years - 1 else None
                           for y in range(years)],
    }
