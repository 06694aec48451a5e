"""Mothball, restart and sale of the mining footprint: the regimes' cash flows and what a
chosen regime does to the fleet's months (issue 16, item 3).

Pure array functions. Three regimes: operating (the fleet runs, curtailing class by class, and
pays site opex), mothballed (nothing mined, no power; a lower upkeep per MW instead of site
opex) and sold (the powered land is sold at USD per MW; nothing after). The choice between
them is made elsewhere (``engine/exercise.py`` by least squares, wired by ``chain``).

References
----------
domain.md "Sites" (powered land, V-M8); domain-facts C-G3 (CLSK's site purchases in USD/MW);
Brennan and Schwartz (1985), a mine's options to close, reopen and abandon.
"""

from __future__ import annotations

import numpy as np

OPERATING, MOTHBALLED, SOLD = 0, 1, 2
REGIMES = ("operating", "mothballed", "sold")


def _col(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)


def regime_flows(operating_cash, fleet_capex, mining_mw, sale_mw, *, cost_usd_per_mw_month,
                 restart_usd_per_mw, land_usd_per_mw):
    """Each regime's monthly cash flow and the cost of each switch.

    Parameters
    ----------
    operating_cash : ndarray [P, T]
        Mining margin less site opex of the fleet as it would run [USD/month].
    fleet_capex : ndarray [P or 1, T]
        Machines bought and moved [USD/month]; paid while the footprint is kept.
    mining_mw : ndarray [P, T]
        MW allocated to the fleet (the MW that pay site opex) [MW].
    sale_mw : ndarray [P, T]
        MW that a sale at the end of the month would sell [MW].
    cost_usd_per_mw_month, restart_usd_per_mw, land_usd_per_mw : float or ndarray [P]
        Upkeep of a mothballed MW [USD/MW-month]; restarting one [USD/MW]; the land's price
        [USD/MW].

    Returns
    -------
    flows : list of 3 ([P, T] arrays or 0.0)
        Operating, mothballed, sold [USD/month].
    moves : dict ``(from, to) -> [P, T]``
        Mothballing costs nothing; restarting costs ``restart x MW``; a sale's cost is minus
        its proceeds ``land x sale MW`` [USD]. A sold footprint is never bought back.
    land : ndarray [P, T]
        The proceeds of a sale at each month-end [USD].
    """
    land = sale_mw * _col(land_usd_per_mw)
    flows = [operating_cash - fleet_capex, -(mining_mw * _col(cost_usd_per_mw_month)) - fleet_capex, 0.0]
    moves = {(OPERATING, MOTHBALLED): 0.0, (MOTHBALLED, OPERATING): mining_mw * _col(restart_usd_per_mw),
             (OPERATING, SOLD): -land, (MOTHBALLED, SOLD): -land}
    return flows, moves, land


def terminal_values(operating, restart, land):
    """Value after the horizon of each regime in the last month [USD], and where a mothballed
    footprint restarts then.

    Parameters
    ----------
    operating : ndarray [P]
        The running footprint kept to its best year and then sold (the chain's projection) [USD].
    restart, land : ndarray [P]
        Restarting the mothballed MW at the horizon; selling the land there [USD].

    Returns
    -------
    values : list of 3 [P]
        Operating; mothballed ``max(operating - restart, land)``; sold 0.
    restarts : ndarray of bool [P]
        A mothballed footprint that restarts at the horizon rather than being sold.
    """
    restarts = operating - restart > land
    return [operating, np.where(restarts, operating - restart, land), np.zeros_like(operating)], restarts


def settle(regime, site_opex, mining_mw, land, *, cost_usd_per_mw_month, restart_usd_per_mw):
    """What each month's regime does to the fleet's costs.

    Parameters
    ----------
    regime : ndarray [P, T] int
        Regime of every month.
    site_opex, mining_mw : ndarray [P, T]
        The operating fleet's site opex [USD/month] and allocated MW [MW].
    land : ndarray [P, T]
        Proceeds of a sale at each month-end [USD].

    Returns
    -------
    running : ndarray [P, T] float
        1 in operating months, 0 otherwise (the fleet's output scales by it).
    kept : ndarray [P, T] float
        1 until the land is sold.
    site_opex : ndarray [P, T]
        Site opex when operating, upkeep when mothballed, nothing once sold; a restart's cost
        is booked in the month at whose end it is decided [USD/month].
    land_sale : ndarray [P, T]
        The sale's proceeds in the month at whose end the land is sold [USD/month].
    """
    running = (regime == OPERATING).astype(np.float64)
    kept = (regime != SOLD).astype(np.float64)
    idle = regime == MOTHBALLED
    opex = np.where(regime == OPERATING, site_opex, np.where(idle, mining_mw * _col(cost_usd_per_mw_month), 0.0))
    restart = np.zeros(regime.shape, bool)
    restart[:, :-1] = idle[:, :-1] & (regime[:, 1:] == OPERATING)
    opex += np.where(restart, mining_mw * _col(restart_usd_per_mw), 0.0)
    sale = np.zeros(regime.shape, bool)
    sale[:, :-1] = (regime[:, :-1] != SOLD) & (regime[:, 1:] == SOLD)
    return running, kept, opex, np.where(sale, land, 0.0)


def exercise_summary(regime, hashprice, btc_price) -> dict:
    """When the footprint's options are used, year by year, on the paths given.

    Returns
    -------
    dict of lists, one entry per year of the grid
        ``mothballed_share``: paths with the footprint mothballed in some month of the year;
        ``sold_share``: paths sold by the year's end; ``switch_share``: paths that mothball or
        sell in the year [1]; ``boundary_hashprice`` and ``boundary_btc``: the median hashprice
        [USD/PH/day] and BTC price [USD/BTC] at the month-ends where an operating footprint
        is mothballed or sold (None in a year without one): the exercise boundary.
    """
    n, months = regime.shape
    hp = np.broadcast_to(hashprice, (n, months))
    btc = np.broadcast_to(btc_price, (n, months))
    off = np.zeros((n, months), bool)  # decided at month-end t: operating in t, not in t + 1
    off[:, :-1] = (regime[:, :-1] == OPERATING) & (regime[:, 1:] != OPERATING)
    out: dict = {k: [] for k in ("mothballed_share", "sold_share", "switch_share",
                                 "boundary_hashprice", "boundary_btc")}
    for y0 in range(0, months, 12):
        cols = slice(y0, min(y0 + 12, months))
        out["mothballed_share"].append(float(np.mean((regime[:, cols] == MOTHBALLED).any(axis=1))))
        out["sold_share"].append(float(np.mean(regime[:, cols.stop - 1] == SOLD)))
        hit = off[:, cols]
        out["switch_share"].append(float(np.mean(hit.any(axis=1))))
        out["boundary_hashprice"].append(float(np.median(hp[:, cols][hit])) if hit.any() else None)
        out["boundary_btc"].append(float(np.median(btc[:, cols][hit])) if hit.any() else None)
    return out
