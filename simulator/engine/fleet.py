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


@dataclass(frozen=True, slots=True)
class FleetResult:
    """Monthly mining outputs, all ``[P, T]``."""

    company_hashrate: np.ndarray  #: operating hashrate allocated to power [EH/s]
    mining_mw: np.ndarray  #: MW allocated to mining (paid site opex) [MW]
    curtailed: np.ndarray  #: fraction of the month the fleet is off [1]
    btc_mined: np.ndarray  #: [BTC/month]
    mining_revenue: np.ndarray  #: [USD/month]
    power_cost: np.ndarray  #: [USD/month]
    mining_margin: np.ndarray  #: revenue - power [USD/month]
    site_opex: np.ndarray  #: [USD/month]


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
            site_opex_usd_per_mw_month, offline_mw=None) -> FleetResult:
    """Run the fleet for every month and path.

    Parameters
    ----------
    planned, fleet_j_per_th : ndarray [P or 1, T]
        From :func:`planned_fleet` [EH/s], [J/TH].
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

    Returns
    -------
    FleetResult

    Notes
    -----
    ``H = min(planned, available_mw / J/TH) - offline_mw / J/TH``; ``MW = H x J/TH`` (CHK-4).
    The fleet is off for the whole month when ``hashprice < breakeven_hashprice`` (strictly:
    at breakeven it runs). ``BTC = H / H_net x blocks x (subsidy + fees) x realisation``
    while on (CHK-2). ``power = MW x 24 x days x USD/MWh`` while on; site opex is paid on
    allocated MW either way.
    """
    price = _col(power_price_usd_per_mwh)
    hashrate = np.maximum(available_mw, 0.0) / fleet_j_per_th
    np.minimum(hashrate, planned, out=hashrate)
    if offline_mw is not None:
        hashrate -= offline_mw / fleet_j_per_th
        np.maximum(hashrate, 0.0, out=hashrate)
    mining_mw = hashrate * fleet_j_per_th
    running = hashprice >= breakeven_hashprice(fleet_j_per_th, price)
    curtailed = (~running).astype(np.float64)

    btc = subsidy + fees_per_block
    btc *= blocks
    btc *= hashrate
    btc /= network_hashrate
    btc *= _col(realisation) * running
    revenue = btc * btc_price

    power = mining_mw * (units.HOURS_PER_DAY * price)
    power *= np.asarray(days, dtype=np.float64)[None, :]
    power *= running
    margin = np.subtract(revenue, power)
    opex = mining_mw * _col(site_opex_usd_per_mw_month)
    return FleetResult(hashrate, mining_mw, curtailed, btc, revenue, power, margin, opex)
