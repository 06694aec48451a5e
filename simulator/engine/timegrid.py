"""Monthly calendar, block production, subsidy and halvings.

Pure functions of arrays. Month ``t`` of the grid runs from the first day of
``calendar[t]`` to the first day of ``calendar[t+1]``; quantities "at month end" are at
the end of that interval.
"""

from __future__ import annotations

import numpy as np

from simulator import units

__all__ = [
    "HALVING_HEIGHTS",
    "INITIAL_SUBSIDY_BTC",
    "blocks_in_month",
    "calendar",
    "days_in_month",
    "halving_month_index",
    "mean_subsidy",
    "subsidy",
]

HALVING_HEIGHTS = (1_050_000, 1_260_000)
"""Heights of the 5th and 6th halvings [block] (domain-facts N-B1..N-B5)."""

INITIAL_SUBSIDY_BTC = 3.125
"""Subsidy since the 4th halving at block 840,000 [BTC/block] (N-B1)."""


def calendar(start_month: np.datetime64 | str, n_months: int) -> np.ndarray:
    """Month starts of the simulation grid.

    Parameters
    ----------
    start_month : numpy.datetime64 or str
        First month (e.g. ``np.datetime64("2025-12")``); any finer unit is truncated.
    n_months : int
        Number of months T.

    Returns
    -------
    numpy.ndarray
        ``datetime64[M]`` ``[T]``.
    """
    first = np.datetime64(start_month, "M")
    return first + np.arange(int(n_months))


def days_in_month(cal: np.ndarray) -> np.ndarray:
    """Calendar days in each month of ``cal`` [days], float64 ``[T]``."""
    cal = np.asarray(cal, dtype="datetime64[M]")
    nxt = (cal + 1).astype("datetime64[D]")
    return (nxt - cal.astype("datetime64[D]")).astype(np.float64)


def subsidy(
    height: np.ndarray | int,
    halving_heights: tuple[int, ...] | np.ndarray = HALVING_HEIGHTS,
    initial_subsidy_btc: float = INITIAL_SUBSIDY_BTC,
) -> np.ndarray:
    """Block subsidy of the block at ``height`` [BTC/block].

    Parameters
    ----------
    height : array_like of int
        Block height(s).
    halving_heights : sequence of int
        Ascending heights at which the subsidy halves (the block at that height already
        earns the halved subsidy).
    initial_subsidy_btc : float
        Subsidy below the first listed halving [BTC/block].

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``height``.

    Notes
    -----
    ``subsidy = initial * 2^-n`` with ``n`` the number of halving heights ``<= height``;
    The values are exact (3.125, 1.5625, 0.78125). N-B1..N-B5.
    """
    height = np.asarray(height)
    out = np.full(height.shape, initial_subsidy_btc, dtype=np.float64)
    # Masked copies beat searchsorted + ldexp about 2x on [P, T] arrays; halving by
    # powers of 0.5 keeps the values exact.
    for k, h in enumerate(np.asarray(halving_heights, dtype=np.int64), start=1):
        np.copyto(out, initial_subsidy_btc * 0.5**k, where=height >= h)
    return out if out.ndim else out[()]


def mean_subsidy(
    height_start: np.ndarray,
    height_end: np.ndarray,
    halving_heights: tuple[int, ...] | np.ndarray = HALVING_HEIGHTS,
    initial_subsidy_btc: float = INITIAL_SUBSIDY_BTC,
) -> np.ndarray:
    """Average subsidy of the blocks ``height_start+1 .. height_end`` [BTC/block].

    Parameters
    ----------
    height_start, height_end : array_like
        Chain tip before and after the period (may be fractional: expected heights).
    halving_heights, initial_subsidy_btc
        As in :func:`subsidy`.

    Returns
    -------
    numpy.ndarray
        float64; blends the two subsidies in a month that contains a halving.

    Notes
    -----
    ``mean = (C(h_end) - C(h_start)) / (h_end - h_start)`` with ``C`` the cumulative
    subsidy, a piecewise-linear function of height.
    """
    h0 = np.asarray(height_start, dtype=np.float64)
    h1 = np.asarray(height_end, dtype=np.float64)
    span = h1 - h0
    cum = _cumulative_subsidy(h1, halving_heights, initial_subsidy_btc)
    cum -= _cumulative_subsidy(h0, halving_heights, initial_subsidy_btc)
    fallback = subsidy(np.floor(h0).astype(np.int64) + 1, halving_heights, initial_subsidy_btc)
    return np.divide(cum, span, out=fallback, where=span > 0)


def _cumulative_subsidy(h: np.ndarray, halvings, initial: float) -> np.ndarray:
    """Subsidy summed over blocks up to height ``h``, relative to height 0 [BTC]."""
    # The block at a halving height earns the new subsidy, so the old one covers heights
    # up to halving - 1 and block counts come out exact for integer heights.
    edges = np.concatenate(([0.0], np.asarray(halvings, dtype=np.float64) - 1.0))
    total = np.zeros_like(h)
    for k, edge in enumerate(edges):
        nxt = edges[k + 1] if k + 1 < len(edges) else np.inf
        total += np.ldexp(initial, -k) * np.clip(h - edge, 0.0, nxt - edge)
    return total


def blocks_in_month(
    hashrate: np.ndarray, hashrate_prev: np.ndarray, days: np.ndarray | float
) -> np.ndarray:
    """Expected blocks mined in a month [blocks].

    Parameters
    ----------
    hashrate : array_like
        Network hashrate during the month, H_t [EH/s].
    hashrate_prev : array_like
        Network hashrate in the previous month, H_{t-1} [EH/s] (for month 0: the hashrate
        the current difficulty was set for).
    days : array_like
        Days in the month.

    Returns
    -------
    numpy.ndarray
        ``144 * days * H_t / H_diff_t``.

    Notes
    -----
    Difficulty retargets every 2,016 blocks (about two weeks), so on average it reflects
    the hashrate half a month earlier; geometric interpolation gives
    ``H_diff_t = sqrt(H_{t-1} H_t)`` and ``blocks = 144 days sqrt(H_t / H_{t-1})``.
    Growth of 57 %/yr then gives 9.81-minute blocks (2024 ran at 9.86, domain.md).
    """
    return units.BLOCKS_PER_DAY * np.asarray(days) * np.sqrt(np.divide(hashrate, hashrate_prev))


def halving_month_index(block_height: np.ndarray, halving_height: int) -> np.ndarray:
    """Index of the month in which the block at ``halving_height`` is mined.

    Parameters
    ----------
    block_height : array_like of int
        ``[P, T]`` chain height at each month end.
    halving_height : int
        Height of the halving block.

    Returns
    -------
    numpy.ndarray
        int64 ``[P]``: first ``t`` with ``block_height[:, t] >= halving_height``, or -1 if
        the halving is not reached within the grid.
    """
    reached = np.asarray(block_height) >= halving_height
    idx = np.argmax(reached, axis=1).astype(np.int64)
    idx[~reached.any(axis=1)] = -1
    return idx
