"""Fleet: company hashrate, MW for mining, curtailment, BTC mined and the mining P&L.

Pure array functions. Per-path inputs are scalars or ``[P]`` arrays; month series are
``[P, T]`` (or ``[1, T]`` when identical on every path) and broadcast against each other.

References
----------
domain.md "The company"; domain-facts rows C-O1, C-O3, C-G1 (fleet), C-F11, C-F12 (power),
CHK-2 (BTC mined), CHK-4 (MW = EH/s x J/TH).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import units


def _col(x) -> np.ndarray:
    """A scalar or ``[P]`` input as a ``[1, 1]`` or ``[P, 1]`` float64 column."""
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def planned_fleet(hashrate_ehs, j_per_th, deployments, months: int):
    """Planned hashrate, average efficiency and fleet capex by month.

    Parameters
    ----------
    hashrate_ehs : float or ndarray [P]
        Initial operating fleet [EH/s].
    j_per_th : float or ndarray [P]
        Initial fleet efficiency [J/TH].
    deployments : sequence of (month, hashrate_ehs, j_per_th, capex_usd_per_th)
        Month index when the machines start hashing [month] (int or int ``[P]``), hashrate
        added [EH/s], their
        efficiency [J/TH] and purchase price [USD/TH] (0 if sunk). Numbers may be ``[P]``.
    months : int
        Months T on the grid.

    Returns
    -------
    planned : ndarray [P or 1, T]
        Planned hashrate [EH/s].
    fleet_j_per_th : ndarray [P or 1, T]
        Hashrate-weighted fleet efficiency [J/TH].
    fleet_capex : ndarray [P or 1, T]
        Machine purchases, paid in the deployment month [USD/month].

    Notes
    -----
    ``J/TH_fleet = (H0 J0 + sum_k H_k J_k) / (H0 + sum_k H_k)`` over deployments already
    landed; capex_k = H_k x 1e6 TH/EH x USD/TH.

    Both are evaluated once per path between consecutive landing months, with the same
    elementwise arithmetic as on the full grid, and repeated over the months in between.
    """
    cols = [_col(hashrate_ehs), _col(j_per_th)]
    cols += [_col(v) for d in deployments for v in d]
    rows = np.broadcast_shapes(*(c.shape for c in cols))[0]
    # The month may be a per-path draw (a month_range in the scenario).
    starts = [np.broadcast_to(np.asarray(d[0], dtype=np.int64).reshape(-1), (rows,))
              for d in deployments]
    # Hashrate and efficiency are constant between landings: evaluate them once per segment
    # (at its first month t_s) and repeat each value over the segment's months.
    bounds = np.sort(np.clip(np.stack([np.zeros(rows, np.int64), *starts,
                                       np.full(rows, months)], axis=1), 0, months), axis=1)
    t_s = bounds[:, :-1]
    planned = np.zeros(t_s.shape)
    planned += _col(hashrate_ehs)
    energy = planned * _col(j_per_th)  # EH/s x J/TH = MW
    for start, (_, ehs, jpt, _) in zip(starts, deployments):
        landed = t_s >= start[:, None]
        h = _col(ehs)
        planned += h * landed
        energy += h * _col(jpt) * landed
    with np.errstate(invalid="ignore", divide="ignore"):
        fleet_j = np.where(planned > 0, energy / planned, _col(j_per_th))
    length = np.diff(bounds, axis=1).reshape(-1)

    def expand(segments):
        return np.repeat(segments.reshape(-1), length).reshape(rows, months)

    # Each deployment is paid in its landing month, if that is on the grid.
    capex = np.zeros((rows, months))
    for start, (_, ehs, _, usd_per_th) in zip(starts, deployments):
        cost = np.broadcast_to(_col(ehs) * units.TH_PER_EH * _col(usd_per_th), (rows, 1))[:, 0]
        due = np.flatnonzero((start >= 0) & (start < months))
        capex[due, start[due]] += cost[due]
    return expand(planned), expand(fleet_j), capex


def planned_classes(hashrate_ehs, j_per_th, deployments, months: int):
    """Planned hashrate by efficiency class: the fleet as the machines it is made of.

    Parameters
    ----------
    hashrate_ehs, j_per_th, deployments, months
        As :func:`planned_fleet`.

    Returns
    -------
    hashrate : ndarray [K, P or 1, T]
        Planned hashrate of each class [EH/s], never below zero.
    j_per_th : ndarray [K, P or 1, 1]
        Each class's efficiency [J/TH].

    Notes
    -----
    The fleet at the valuation date is one class; each deployment joins the class of its
    efficiency (the same number on every path) or starts one. A negative deployment (a
    retirement, :mod:`~simulator.engine.renewal`) leaves the class it joined in. The classes'
    sum is :func:`planned_fleet`'s hashrate and their MW its ``planned x J/TH``.
    """
    cols = [_col(hashrate_ehs), _col(j_per_th)]
    cols += [_col(v) for d in deployments for v in d]
    rows = np.broadcast_shapes(*(c.shape for c in cols))[0]
    t = np.arange(months)[None, :]
    effs = [np.broadcast_to(_col(j_per_th), (rows, 1))]
    rates = [np.broadcast_to(_col(hashrate_ehs), (rows, months)).copy()]
    for month, ehs, jpt, _ in deployments:
        j = np.broadcast_to(_col(jpt), (rows, 1))
        start = np.asarray(month, dtype=np.int64).reshape(-1, 1)
        k = next((i for i, e in enumerate(effs) if np.array_equal(e, j)), None)
        if k is None:
            effs.append(j)
            rates.append(np.zeros((rows, months)))
            k = len(effs) - 1
        rates[k] += _col(ehs) * (t >= start)
    hashrate = np.stack(rates)
    np.maximum(hashrate, 0.0, out=hashrate)
    return hashrate, np.stack(effs).astype(np.float64)


def breakeven_hashprice(j_per_th, power_price_usd_per_mwh):
    """Hashprice at which the fleet's power cost equals its revenue [USD/PH/day].

    Notes
    -----
    1 PH/s at J/TH draws J/TH kW, i.e. ``J/TH x 24 / 1000`` MWh a day, so
    ``breakeven = J/TH x 24 x USD/MWh / 1000``.
    """
    return j_per_th * units.HOURS_PER_DAY * power_price_usd_per_mwh / units.KW_PER_MW


def sga_schedule(sga_usd_per_month, growth, months: int) -> np.ndarray:
    """SG&A by month [USD/month], stepping up by ``growth`` (annual decimal) each year."""
    years = (np.arange(months) // units.MONTHS_PER_YEAR)[None, :]
    return _col(sga_usd_per_month) * (1.0 + _col(growth)) ** years


def _total(arrays) -> np.ndarray:
    """The sum of two or more ``[P, T]`` arrays in their order, into one new array (``sum``
    makes one per term)."""
    out = arrays[0] + arrays[1]
    for a in arrays[2:]:
        out += a
    return out


@dataclass(frozen=True, slots=True)
class FleetResult:
    """Monthly mining outputs, all ``[P, T]``."""

    company_hashrate: np.ndarray  #: operating hashrate allocated to power [EH/s]
    mining_mw: np.ndarray  #: MW allocated to mining (paid site opex) [MW]
    curtailed: np.ndarray  #: fraction of the month the fleet is off [1]
    btc_mined: np.ndarray  #: [BTC/month]
    mining_revenue: np.ndarray  #: [USD/month]
    power_cost: np.ndarray  #: [USD/month]
    mining_margin: np.ndarray  #: revenue - power + demand-response credits [USD/month]
    site_opex: np.ndarray  #: [USD/month]
    running_mw: np.ndarray  #: MW of the classes running [MW]


def displacement(budget_mw, planned_mw, contracted_mw, downtime_months: int):
    """Machines moved when MW leave mining, and the MW offline while they move.

    Parameters
    ----------
    budget_mw : ndarray [P, T]
        MW the fleet may draw each month [MW].
    planned_mw : ndarray [P or 1, T]
        Power of the planned fleet [MW].
    contracted_mw : float or ndarray [P]
        The budget before month 0 [MW].
    downtime_months : int
        Months a moved machine is offline [month].

    Returns
    -------
    moved : ndarray [P, T]
        MW of machines moved into spare capacity in each month [MW].
    offline : ndarray [P, T]
        MW of moved machines not yet running again [MW].

    Notes
    -----
    When the budget falls from ``B_{t-1}`` to ``B_t``, the machines installed on the MW that
    leave are ``D_t = (B_{t-1} - B_t) x I_{t-1} / B_{t-1}``, with ``I_{t-1} = min(planned,
    B_{t-1})`` installed and spread evenly over the budget. They move into the spare capacity
    left, ``B_t - (I_{t-1} - D_t)``, as far as it goes (``moved``); the rest are retired (the
    cap ``min(planned, B_t)`` in :func:`operate` drops them). A moved machine is offline for
    ``downtime_months`` months from the month it moves.
    """
    n, months = budget_mw.shape
    planned = np.broadcast_to(planned_mw, (n, months))
    before = np.empty((n, months))
    before[:, 0] = np.broadcast_to(np.asarray(contracted_mw, np.float64), (n,))
    before[:, 1:] = budget_mw[:, :-1]
    np.maximum(before, 0.0, out=before)
    planned_before = np.concatenate([planned[:, :1], planned[:, :-1]], axis=1)
    installed = np.minimum(planned_before, before)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(before > 0.0, installed / before, 0.0)
    displaced = np.maximum(before - budget_mw, 0.0) * share
    spare = np.maximum(budget_mw, 0.0) - (installed - displaced)
    moved = np.clip(np.minimum(displaced, spare), 0.0, None)
    running_total = np.cumsum(moved, axis=1)
    offline = running_total.copy()
    if downtime_months < months:
        offline[:, downtime_months:] -= running_total[:, :months - downtime_months]
    return moved, offline


def operate(planned, fleet_j_per_th, available_mw, *, network_hashrate, blocks, subsidy,
            fees_per_block, btc_price, hashprice, days, realisation, power_price_usd_per_mwh,
            site_opex_usd_per_mw_month, offline_mw=None, demand_response_usd_per_mwh=0.0,
            curtail: bool = True) -> FleetResult:
    """Run the fleet for every month and path, class by class.

    Parameters
    ----------
    planned, fleet_j_per_th : ndarray [K, P or 1, T] and [K, P or 1, 1 or T]
        Hashrate [EH/s] and efficiency [J/TH] of each machine class
        (:func:`planned_classes`); ``[P or 1, T]`` arrays are one class (the blended fleet
        of :func:`planned_fleet`).
    available_mw : ndarray [P, T]
        MW the company can give to mining (contracted minus MW taken by HPC sites) [MW].
    network_hashrate : ndarray [P, T]  [EH/s]
    blocks, subsidy, fees_per_block : ndarray [P, T]
        Blocks in the month [blocks]; [BTC/block]; [BTC/block].
    btc_price, hashprice : ndarray [P, T]  [USD/BTC], [USD/PH/day]
    days : ndarray [T]
        Days in each month [day].
    realisation : float or ndarray [P]
        Uptime x (1 - pool fee) [1].
    power_price_usd_per_mwh, site_opex_usd_per_mw_month : float or ndarray [P]
    offline_mw : ndarray [P, T], optional
        MW of machines being moved (:func:`displacement`): installed but not running [MW].
    demand_response_usd_per_mwh : float or ndarray [P]
        Paid for energy not drawn in a curtailed hour [USD/MWh] (0: no programme).
    curtail : bool
        False: every class runs whatever hashprice does.

    Returns
    -------
    FleetResult
        ``curtailed`` is the share of the installed hashrate off in the month [1].

    Notes
    -----
    The MW go to the most efficient classes first: ``MW_k = min(H_k J_k, MW left)`` in order of
    J/TH on each path. Moved machines (``offline_mw``) are taken from every class in
    proportion. Class k runs in a month when ``hashprice >= J_k x 24 x (USD/MWh + DR) /
    1000`` (at breakeven it runs; DR is the demand-response credit it gives up by running).
    ``BTC = H_running / H_net x blocks x (subsidy + fees) x realisation`` (CHK-2);
    ``power = MW_running x 24 x days x USD/MWh``; the credit is paid on the MW of the classes
    off; site opex on every allocated MW either way. With one class this is the blended
    fleet's rule: it is off for the whole month below breakeven.
    """
    planned = np.asarray(planned, np.float64)
    effs = np.asarray(fleet_j_per_th, np.float64)
    if planned.ndim == 2:
        planned, effs = planned[None], effs[None]
    n, months = available_mw.shape
    price, credit = _col(power_price_usd_per_mwh), _col(demand_response_usd_per_mwh)
    classes = planned.shape[0]
    if classes > 1:  # the most efficient first, path by path
        order = np.argsort(effs[:, :, 0], axis=0, kind="stable")
        if (order == order[:, :1]).all():  # the same order on every path: no gather
            planned, effs = planned[order[:, 0]], effs[order[:, 0]]
        else:
            planned = np.take_along_axis(planned, order[:, :, None], axis=0)
            effs = np.take_along_axis(effs, order[:, :, None], axis=0)
    avail = np.maximum(available_mw, 0.0)
    if classes == 1:
        # One class: H = min(planned, MW / (J/TH)) less the machines moving, as the blended
        # fleet was always run.
        h = np.minimum(avail / effs[0], planned[0])
        if offline_mw is not None:
            h -= offline_mw / effs[0]
            np.maximum(h, 0.0, out=h)
        rates, mws = [h], [h * effs[0]]
    else:
        rates, mws, left = [], [], avail
        for k in range(classes):
            mw = np.minimum(planned[k] * effs[k], left)
            if k + 1 < classes:
                left = left - mw
            mws.append(mw)
            rates.append(mw / effs[k])
        mining_mw = _total(mws)
        if offline_mw is not None:  # moved machines come from every class in proportion
            # keep = 1 - offline / mining MW in [0, 1]. Where no MW mine every class is zero and
            # any finite factor leaves it so: the least positive float stands in for the zero
            # (an unmasked divide; a masked one goes element by element).
            keep = np.maximum(mining_mw, np.finfo(np.float64).smallest_subnormal)
            with np.errstate(over="ignore"):
                np.divide(offline_mw, keep, out=keep)
            np.clip(np.subtract(1.0, keep, out=keep), 0.0, 1.0, out=keep)
            for k in range(classes):
                rates[k] *= keep
                mws[k] *= keep
            mining_mw *= keep
    total = rates[0] if classes == 1 else _total(rates)
    if classes == 1:
        mining_mw = mws[0]
    if curtail:
        step = np.empty((n, months))
        for k in range(classes):
            on = hashprice >= breakeven_hashprice(effs[k], price + credit)
            # x * on is x where on and +0 elsewhere (x >= +0): the sums of a masked add, at a
            # quarter of its cost (a masked add goes element by element).
            if k == 0:
                running_mw, running_h = np.multiply(mws[0], on), np.multiply(rates[0], on)
            else:
                running_mw += np.multiply(mws[k], on, out=step)
                running_h += np.multiply(rates[k], on, out=step)
        with np.errstate(invalid="ignore", divide="ignore"):
            curtailed = np.divide(running_h, total)
        np.subtract(1.0, curtailed, out=curtailed)
        empty = total <= 0.0
        if empty.any():
            # With no machine installed the month counts as curtailed when even the most
            # efficient class would be off (the blended fleet's rule).
            idle = hashprice < breakeven_hashprice(effs.min(axis=0), price + credit)
            curtailed[empty] = np.broadcast_to(idle, (n, months))[empty]
    else:
        running_mw, running_h = mining_mw, total
        curtailed = np.zeros((n, months))

    btc = subsidy + fees_per_block
    btc *= blocks
    btc *= running_h
    btc /= network_hashrate
    btc *= _col(realisation)
    revenue = btc * btc_price

    hours = units.HOURS_PER_DAY * np.asarray(days, dtype=np.float64)[None, :]
    power = running_mw * hours
    power *= price
    margin = np.subtract(revenue, power)
    if np.any(credit != 0.0):
        margin += (mining_mw - running_mw) * hours * credit
    opex = mining_mw * _col(site_opex_usd_per_mw_month)
    return FleetResult(total, mining_mw, curtailed, btc, revenue, power, margin, opex, running_mw)
