"""Treasury: how much BTC to sell each month, by policy.

Each policy is a pure function of one month's arrays with the same signature, listed in
:data:`POLICIES` (the scenario's ``policy:`` strings). The month-coupled loop that also moves
cash lives in ``capital.cash_loop``; ``chain`` hands it :func:`sell_rule`'s closure.

References
----------
domain.md "The company" (treasury); domain-facts rows C-B1, C-B2 (13,011 BTC held).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def hold(held, mined, cash_before, btc_price, *, fraction, floor_usd):
    """Never sell [BTC]."""
    return np.zeros_like(held)


def sell_production(held, mined, cash_before, btc_price, *, fraction, floor_usd):
    """Sell ``fraction`` of this month's BTC mined [BTC].

    Notes
    -----
    ``sold = fraction x mined``; mined coins are added to holdings before selling, so
    ``sold <= held`` whenever ``fraction <= 1``.
    """
    return np.minimum(fraction * mined, held)


def cash_floor(held, mined, cash_before, btc_price, *, fraction, floor_usd):
    """Sell just enough BTC to keep cash at ``floor_usd``, as far as holdings allow [BTC].

    Notes
    -----
    ``sold = min(held, max(floor - cash, 0) / price)``.
    """
    need = np.maximum(floor_usd - cash_before, 0.0) / btc_price
    return np.minimum(need, held)


POLICIES: dict[str, Callable] = {
    "hold": hold,
    "sell_production": sell_production,
    "cash_floor": cash_floor,
}


def sell_rule(policy: str, *, fraction=0.0, floor_usd=0.0) -> Callable:
    """Bind a policy's parameters; returns ``f(held, mined, cash_before, btc_price) -> sold``.

    Parameters
    ----------
    policy : {"hold", "sell_production", "cash_floor"}
    fraction : float or ndarray [P]
        Share of production sold [1] (``sell_production``).
    floor_usd : float or ndarray [P]
        Cash floor [USD] (``cash_floor``).
    """
    fn = POLICIES[policy]
    fraction = np.asarray(fraction, dtype=np.float64)
    floor_usd = np.asarray(floor_usd, dtype=np.float64)

    def rule(held, mined, cash_before, btc_price):
        return fn(held, mined, cash_before, btc_price, fraction=fraction, floor_usd=floor_usd)

    return rule
