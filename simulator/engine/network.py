"""Network hashrate, block production, subsidy and hashprice, month by month.

Height, subsidy, hashrate and hashprice are coupled (``cost_curve`` reacts to hashprice,
which needs the subsidy, which needs the height), so one function,
:func:`simulate_network`, runs them together. Hashrate models sit in the registry
:data:`HASHRATE_MODELS`; each adds its parameters' exogenous monthly log increments to the
common noise and, if it reacts to profitability, returns a feedback term evaluated inside
the month loop.

The noise correlates with BTC through the standardised BTC return a price process hands
back (``btc_shock_out``, see ``market``): month t's noise depends on BTC shocks of month t
only, never on later months of its path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from simulator import units

__all__ = ["HASHRATE_MODELS", "NetworkPaths", "breakeven_hashprice", "hashprice",
           "simulate_network"]

DT = 1.0 / units.MONTHS_PER_YEAR
"""Time step [years]."""

Feedback = Callable[[int, np.ndarray], np.ndarray]

_WINDOW_MONTHS = 8
"""Months per window of the feedback loop: 8 float64 are one 64-byte cache line."""


@dataclass(frozen=True)
class NetworkPaths:
    """Network stage result; every array is ``[P, T]``."""

    network_hashrate: np.ndarray
    """Network hashrate during the month [EH/s]."""
    block_height: np.ndarray
    """Chain height at month end, int64 [blocks]."""
    blocks: np.ndarray
    """Expected blocks mined in the month [blocks]."""
    subsidy: np.ndarray
    """Mean subsidy of the month's blocks [BTC/block]."""
    hashprice: np.ndarray
    """Revenue per PH/s per day, including the block-time factor [USD/PH/day]."""


def hashprice(subsidy, fees_per_block, btc_price, network_hashrate, block_factor=1.0):
    """Hashprice: mining revenue per PH/s per day [USD/PH/day].

    Parameters
    ----------
    subsidy, fees_per_block : array_like
        Reward per block [BTC/block].
    btc_price : array_like
        [USD/BTC].
    network_hashrate : array_like
        [EH/s].
    block_factor : array_like
        ``blocks / (144 days)``: actual over target block production (1 at 10-minute blocks).

    Returns
    -------
    numpy.ndarray
        ``(subsidy + fees) 144 BTC / (H 1000) * block_factor``.

    Notes
    -----
    CHK-1: (3.125 + 0.03) x 144 x 84,500 / (1,068.7 x 1,000) = 35.9 USD/PH/day.
    """
    reward = np.add(subsidy, fees_per_block)
    per_ph_day = reward * units.BLOCKS_PER_DAY * np.asarray(btc_price)
    return per_ph_day / (np.asarray(network_hashrate) * units.PH_PER_EH) * block_factor


def breakeven_hashprice(j_per_th, power_usd_per_mwh):
    """Hashprice at which a machine of ``j_per_th`` [J/TH] just covers power [USD/PH/day].

    Notes
    -----
    1 PH/s at J/TH draws J/TH kW, i.e. ``24 J/TH / 1000`` MWh a day:
    ``breakeven = j_per_th x 24 x power_usd_per_mwh / 1000``.
    """
    return np.multiply(j_per_th, power_usd_per_mwh) * (units.HOURS_PER_DAY / 1000.0)


def _col(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def _noise(p: Mapping, z_hash: np.ndarray, btc_shock: np.ndarray | None) -> np.ndarray:
    """``vol sqrt(dt) (rho z_btc + sqrt(1 - rho^2) z_hash)`` as a new ``[P, T]`` array.

    ``z_btc`` is ``btc_shock``, the BTC return standardised by its ex-ante distribution.
    """
    rho, scale = _col(p["rho_btc"]), _col(p["vol"]) * math.sqrt(DT)
    e = np.multiply(z_hash, np.sqrt(1.0 - rho**2) * scale)
    if np.any(rho != 0):
        if btc_shock is None:
            raise ValueError("rho_btc != 0 needs btc_shock")
        e += np.asarray(btc_shock, dtype=np.float64) * (rho * scale)
    return e


def _growth(p: Mapping, noise: np.ndarray, btc_ret: np.ndarray) -> tuple[np.ndarray, None]:
    """Decaying log growth + lagged BTC response, added to the noise; no feedback.

    ``g(s) = ln(1 + growth_year1) exp(-growth_decay_per_year s)`` integrated over each
    month, plus ``btc_beta r_{t - lag_months}`` (BTC log return; zero before the grid).
    """
    n_months = noise.shape[1]
    g0, k = np.log1p(_col(p["growth_year1"])), _col(p["growth_decay_per_year"])
    t0 = np.arange(n_months) * DT
    # Exact integral of the decaying rate over [t0, t0 + dt]; dt when the decay is zero.
    span = np.divide(-np.expm1(-k * DT), k, out=np.full(np.shape(k), DT), where=k != 0)
    inc = noise  # a fresh array of our own: the increments are built in it
    inc += g0 * span * np.exp(-k * t0)
    lag, beta = int(p["lag_months"]), _col(p["btc_beta"])
    if np.any(beta != 0) and lag < n_months:
        response = btc_ret[:, : n_months - lag] * beta
        inc[:, lag:] += response
    return inc, None


def _cost_curve(p: Mapping, noise: np.ndarray, btc_ret: np.ndarray) -> tuple[np.ndarray, Feedback]:
    """Entry/exit toward the marginal machine's breakeven hashprice, plus noise.

    ``d ln H_t = speed ln(hp*_t / breakeven_t) + noise``, where ``hp*_t`` is the month's
    hashprice at last month's hashrate, ``speed`` is ``entry_speed`` when the gap is
    positive and ``exit_speed`` otherwise, and the marginal J/TH falls by
    ``efficiency_improvement_per_year`` compounded (evaluated at each month start).
    """
    n_paths, n_months = noise.shape
    years = (np.arange(n_months) * DT)[:, None]
    # ln breakeven_t = ln breakeven_0 + t ln(1 - improvement): a log per path, not per month,
    # built [T, P or 1] so that the month loop reads a contiguous row.
    log_be0 = np.log(breakeven_hashprice(p["marginal_j_per_th"], p["power_usd_per_mwh"]))
    log_be = np.atleast_1d(log_be0) + years * np.atleast_1d(
        np.log1p(-np.asarray(p["efficiency_improvement_per_year"], np.float64)))
    entry = np.broadcast_to(_col(p["entry_speed"]), (n_paths, 1))[:, 0]
    exit_ = np.broadcast_to(_col(p["exit_speed"]), (n_paths, 1))[:, 0]

    def feedback(t: int, pre_hashprice: np.ndarray) -> np.ndarray:
        gap = np.log(pre_hashprice)
        gap -= log_be[t]
        speed = np.where(gap > 0, entry, exit_)
        speed *= gap
        return speed

    return noise, feedback


_Model = Callable[[Mapping, np.ndarray, np.ndarray], tuple[np.ndarray, Feedback | None]]

HASHRATE_MODELS: dict[str, _Model] = {"growth": _growth, "cost_curve": _cost_curve}
"""Scenario ``network.model`` string -> model.

A model takes (params, noise, BTC log returns), the noise a fresh ``[P, T]`` array it may
add to in place, and returns the monthly log increments and its feedback (or None).
"""

_REQUIRED = {
    "growth": ("growth_year1",),
    "cost_curve": ("marginal_j_per_th", "power_usd_per_mwh", "entry_speed", "exit_speed"),
}
_DEFAULTS = {
    "growth": {"growth_decay_per_year": 0.0, "btc_beta": 0.0, "lag_months": 3, "vol": 0.0,
               "rho_btc": 0.0},
    "cost_curve": {"efficiency_improvement_per_year": 0.0, "vol": 0.0, "rho_btc": 0.0},
}


def _params(model: str, params: Mapping) -> dict:
    if model not in HASHRATE_MODELS:
        raise ValueError(
            f"unknown hashrate model {model!r} (allowed: {', '.join(HASHRATE_MODELS)})")
    allowed = set(_REQUIRED[model]) | set(_DEFAULTS[model])
    unknown = sorted(set(params) - allowed)
    missing = [k for k in _REQUIRED[model] if k not in params]
    if unknown or missing:
        raise ValueError(f"{model} params: unknown {unknown}, missing {missing} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    return {**_DEFAULTS[model], **params}


def simulate_network(
    model: str,
    *,
    h0_ehs,
    height0,
    btc_price: np.ndarray,
    fees_per_block: np.ndarray,
    days: np.ndarray,
    subsidy_fn: Callable[[np.ndarray], np.ndarray],
    z_hash: np.ndarray,
    params: Mapping,
    btc_price0=None,
    hashrate_diff0_ehs=None,
    btc_log_return: np.ndarray | None = None,
    btc_shock: np.ndarray | None = None,
) -> NetworkPaths:
    """Run network hashrate, blocks, height, subsidy and hashprice over the grid.

    Parameters
    ----------
    model : {"growth", "cost_curve"}
        Key of :data:`HASHRATE_MODELS`.
    h0_ehs : float or array_like [P]
        Network hashrate at the valuation date [EH/s] (N-H10: 1,069).
    height0 : float or array_like [P]
        Chain height at the valuation date [blocks].
    btc_price, fees_per_block : numpy.ndarray
        ``[P, T]`` month-end BTC price [USD/BTC] and fees per block [BTC].
    days : numpy.ndarray
        ``[T]`` days in each month.
    subsidy_fn : callable
        Height -> subsidy of that block [BTC/block], vectorised (``timegrid.subsidy`` with
        the halving heights bound).
    z_hash : numpy.ndarray
        ``[P, T]`` standard normals for hashrate noise.
    params : mapping
        ``growth``: growth_year1 (simple annual growth in year 1, 0.30 = +30 %, applied to
        the median path), growth_decay_per_year (exponential decay rate of the log-growth
        rate [1/yr], default 0), btc_beta (ln H response to the BTC log return,
        default 0), lag_months (default 3), vol (annual, default 0), rho_btc (default 0).
        ``cost_curve``: marginal_j_per_th [J/TH], efficiency_improvement_per_year
        (fraction, default 0), power_usd_per_mwh, entry_speed and exit_speed (monthly
        fraction of the log gap closed), vol, rho_btc. Each a scalar or ``[P]`` array.
    btc_price0 : float or array_like [P], optional
        BTC price at the valuation date; without it month 0's BTC return counts as zero
        (for the lagged response).
    hashrate_diff0_ehs : float or array_like [P], optional
        Hashrate the current difficulty was set for [EH/s]; defaults to ``h0_ehs``.
    btc_log_return : numpy.ndarray, optional
        ``[P, T]`` BTC monthly log returns (``market.log_returns``), if already computed;
        otherwise derived from ``btc_price`` and ``btc_price0``.
    btc_shock : numpy.ndarray, optional
        ``[P, T]`` standardised BTC returns (a price process's ``btc_shock_out``), the
        shock the noise correlates with; needed if ``rho_btc`` != 0.

    Returns
    -------
    NetworkPaths

    Notes
    -----
    ``ln H_t = ln H_{t-1} + increment_t (+ feedback_t)``. Blocks follow
    ``timegrid.blocks_in_month``: ``144 days_t sqrt(H_t / H_{t-1})`` with
    ``H_{-1} = hashrate_diff0_ehs``, so the difficulty in month 0 reflects
    ``sqrt(H_diff0 H_0)``. Subsidy is the mean over the month's blocks (a halving month
    blends both values). Hashprice includes the block-time factor ``blocks / (144 days)``,
    so it is what a PH/s actually earned per day that month (CHK-1 at factor 1).
    The noise correlates with ``btc_shock`` (module docstring); the lagged response
    ``btc_beta`` uses the raw log returns.
    """
    p = _params(model, params)
    btc_price = np.asarray(btc_price, dtype=np.float64)
    fees = np.asarray(fees_per_block, dtype=np.float64)
    n_paths = btc_price.shape[0]
    days = np.asarray(days, dtype=np.float64)
    btc_ret = (_btc_returns(btc_price, btc_price0) if btc_log_return is None
               else np.asarray(btc_log_return, dtype=np.float64))
    noise = _noise(p, np.asarray(z_hash, dtype=np.float64), btc_shock)
    inc, feedback = HASHRATE_MODELS[model](p, noise, btc_ret)
    ln_h0 = np.broadcast_to(np.log(_col(h0_ehs)), (n_paths, 1))
    h_diff0 = np.broadcast_to(_col(h0_ehs if hashrate_diff0_ehs is None else hashrate_diff0_ehs),
                              (n_paths, 1))
    height0 = np.broadcast_to(_col(height0), (n_paths, 1))
    blocks_per_month = units.BLOCKS_PER_DAY * days
    if feedback is None:
        hashrate, blocks, height = _open_loop(inc, ln_h0, h_diff0, height0, blocks_per_month)
    else:
        hashrate, blocks, height = _feedback_loop(
            inc, feedback, ln_h0[:, 0], h_diff0[:, 0], height0[:, 0], btc_price, fees,
            blocks_per_month, subsidy_fn)
    tip = height.astype(np.int64)  # truncation is floor for positive heights
    sub = _mean_subsidy(subsidy_fn, height0, height, tip)
    # hashprice(sub, fees, btc, H, blocks / (144 days)) with the 144s cancelled, in place in
    # the float heights, which are no longer needed: a fresh array costs page faults.
    hp = np.add(sub, fees, out=height)
    hp *= btc_price
    hp *= blocks
    hp /= hashrate
    hp *= 1.0 / (units.PH_PER_EH * days)
    return NetworkPaths(network_hashrate=hashrate, block_height=tip, blocks=blocks, subsidy=sub,
                        hashprice=hp)


def _btc_returns(btc_price: np.ndarray, btc_price0) -> np.ndarray:
    log_s = np.log(btc_price)
    first = log_s[:, :1] if btc_price0 is None else np.log(_col(btc_price0))
    return np.diff(log_s, axis=1, prepend=np.broadcast_to(first, (log_s.shape[0], 1)))


def _open_loop(inc, ln_h0, h_diff0, height0, blocks_per_month):
    """Hashrate [EH/s], blocks and height [blocks] ``[P, T]`` for models without feedback.

    ``inc`` (the model's own fresh array) becomes the hashrate.
    """
    inc[:, :1] += ln_h0
    hashrate = np.exp(np.cumsum(inc, axis=1, out=inc), out=inc)
    blocks = np.empty_like(hashrate)
    np.divide(hashrate[:, 1:], hashrate[:, :-1], out=blocks[:, 1:])
    np.divide(hashrate[:, :1], h_diff0, out=blocks[:, :1])
    np.sqrt(blocks, out=blocks)
    blocks *= blocks_per_month
    height = blocks.copy()
    height[:, :1] += height0
    np.cumsum(height, axis=1, out=height)
    return hashrate, blocks, height


def _feedback_loop(inc, feedback, ln_h0, h_diff0, height0, btc_price, fees, blocks_per_month,
                   subsidy_fn):
    """Month loop for models whose growth depends on this month's pre-entry hashprice.

    Returns hashrate [EH/s], blocks and height [blocks] ``[P, T]``: the same numbers
    :func:`_open_loop` would give for the loop's log hashrate, which the loop needs anyway.
    """
    n_paths, n_months = btc_price.shape
    inc = np.broadcast_to(inc, (n_paths, n_months))
    hashrate, blocks, height = (np.empty((n_paths, n_months)) for _ in range(3))
    # Each month works on contiguous rows of month-major windows: a column of a [P, T]
    # array touches a separate cache line for every path. Windows are copied in and out a
    # cache line per path at a time: cheaper than whole [T, P] transposes (half the cost on
    # the way out) and with no [T, P] copies to allocate.
    window = np.empty((6, _WINDOW_MONTHS, n_paths))
    ln_h, h_prev, h_diff, height_prev = ln_h0.copy(), np.exp(ln_h0), h_diff0, height0
    reward, h_ph = np.empty(n_paths), np.empty(n_paths)
    for t0 in range(0, n_months, _WINDOW_MONTHS):
        t1 = min(t0 + _WINDOW_MONTHS, n_months)
        inc_w, price_w, fees_w, hashrate_w, blocks_w, height_w = window[:, : t1 - t0]
        for src, dst in ((inc, inc_w), (btc_price, price_w), (fees, fees_w)):
            np.copyto(dst, src[:, t0:t1].T)
        for i, t in enumerate(range(t0, t1)):
            # Miners see this month's price and fees at last month's hashrate and the subsidy
            # of the next block, then enter or leave: hashprice() inlined, without its factor 1.
            np.add(subsidy_fn(height_prev.astype(np.int64) + 1), fees_w[i], out=reward)
            reward *= units.BLOCKS_PER_DAY
            reward *= price_w[i]
            reward /= np.multiply(h_prev, units.PH_PER_EH, out=h_ph)
            ln_h += inc_w[i]
            ln_h += feedback(t, reward)
            h_prev = np.exp(ln_h, out=hashrate_w[i])
            b = np.sqrt(np.divide(h_prev, h_diff, out=blocks_w[i]), out=blocks_w[i])
            b *= blocks_per_month[t]
            height_prev = np.add(height_prev, b, out=height_w[i])
            h_diff = h_prev
        for src, dst in ((hashrate_w, hashrate), (blocks_w, blocks), (height_w, height)):
            np.copyto(dst[:, t0:t1], src.T)
    return hashrate, blocks, height


def _mean_subsidy(subsidy_fn, height0: np.ndarray, height: np.ndarray,
                  tip: np.ndarray) -> np.ndarray:
    """Mean subsidy of each month's blocks ``tip_{t-1}+1 .. height_t`` [BTC/block].

    Where the first and last block of a month differ in subsidy, the first height with
    the new subsidy is found by bisection (about 13 calls on the few crossing entries),
    and the two subsidies are weighted by their share of the month's blocks.
    """
    n_paths, n_months = tip.shape
    # The subsidy of each month's last block is the answer except in the few months whose
    # first block may earn another: month 0, and months where it differs from last month's.
    # It is written in place below, so it must be our own writable C-ordered array.
    out = np.require(subsidy_fn(tip), np.float64, "CWO")
    later = np.flatnonzero(out[:, 1:] != out[:, :-1])
    later += later // (n_months - 1) + 1  # [P, T - 1] index -> [P, T] index
    cross = np.concatenate((np.arange(n_paths) * n_months, later))
    flat, tip_flat = out.reshape(-1), tip.reshape(-1)
    first = np.concatenate((np.floor(height0[:, 0]).astype(np.int64), tip_flat[later - 1])) + 1
    s_first, s_last = np.asarray(subsidy_fn(first), dtype=np.float64), flat[cross]
    keep = (s_first != s_last) & (tip_flat[cross] >= first)
    flat[cross] = s_first
    cross, first, s_first, s_last = cross[keep], first[keep], s_first[keep], s_last[keep]
    if cross.size:
        lo, hi, s_lo = first, tip_flat[cross], s_first
        # Each step halves every bracket (rounding up); once one block wide, mid == lo
        # keeps it as it is.
        for _ in range(int(np.max(hi - lo)).bit_length()):
            mid = (lo + hi) >> 1
            same = np.asarray(subsidy_fn(mid)) == s_lo
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
        rows, cols = np.divmod(cross, n_months)
        a = np.where(cols > 0, height.ravel()[cross - (cols > 0)], height0[rows, 0])
        b = height.ravel()[cross]
        before = (hi - 1) - a  # blocks up to the one before the change
        flat[cross] = (s_lo * before + s_last * (b - a - before)) / (b - a)
    return out
