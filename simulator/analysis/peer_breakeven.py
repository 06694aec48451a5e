"""The BTC spot at which a company's fair value equals its market price, for the peer table.

:func:`simulator.analysis.breakeven.breakeven_spot` solves for the spot at which the *median*
pathwise value per share equals the price. A pathwise median under the pricing measure is not
a price (domain.md, "Valuation": the spread of pathwise values is not a forecast), so the peer
table solves for the *fair value*, the control-variate mean the run reports, on the same
common random numbers: every re-run holds the spot at x on every path with every other draw
as sampled (``simulate(overrides=...)``) and reuses one fitted mark, so the fair value is a
smooth, deterministic function of x and Brent's method applies.

Cost: one mark fit per company plus one run of ``paths`` paths per evaluation, typically 6
to 10 evaluations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from simulator.analysis.breakeven import SPOT_KEY


def breakeven_spot(scenario: Any, *, paths: int = 1_024, seed: int | None = None,
                   sampling: str | None = None, rtol: float = 0.01, limit: float = 20.0,
                   client: Any = None) -> dict[str, Any]:
    """BTC spot [USD/BTC] at which the fair value per share equals the market price (pricing).

    Parameters
    ----------
    scenario : Scenario
        One company's scenario.
    paths, seed, sampling : optional
        Settings of every re-run (seed and sampling default to the scenario's).
    rtol : float
        Root tolerance as a fraction of today's spot: ``xtol = rtol · S0``.
    limit : float
        Search from S0 / ``limit`` to S0 · ``limit``.

    Returns
    -------
    dict
        ``status`` ("found" or "not_attained"), ``value`` [USD/BTC], ``mc_se`` [USD/BTC]
        (SE of the fair value at the root / the slope), ``fair_at_root`` [USD/share],
        ``slope`` [USD/share per USD/BTC], ``xtol``, ``spot``, ``target``, ``evaluations``,
        ``seconds``, ``paths``, ``seed``, ``definition``; ``fair_at_limits`` when not attained.

    Notes
    -----
    Why the fair value and not the median, and the common random numbers: module docstring.
    """
    from scipy import optimize

    from simulator.run import scenario_mark, simulate

    started = time.perf_counter()
    s0 = float(scenario.market.btc.spot_usd)
    target = float(scenario.company.share_price_usd)
    seed = scenario.simulation.seed if seed is None else int(seed)
    mark = scenario_mark(scenario, seed, sampling)
    seen: dict[float, tuple[float, float]] = {}

    def fair(x: float) -> tuple[float, float]:
        if x not in seen:
            cube = simulate(scenario, paths, seed, sampling, store_paths=0,
                            overrides={SPOT_KEY: float(x)}, client=client, mark=mark)
            seen[x] = (float(cube.attrs["fair_value_per_share"]), float(cube.attrs["fair_value_se"]))
        return seen[x]

    def gap(x: float) -> float:
        return fair(x)[0] - target

    base = {"spot": s0, "target": target, "paths": paths, "seed": seed, "units": "USD/BTC",
                "definition": "BTC spot held on every path at which the fair value per share "
                           "(pricing measure) equals the market price; other draws common"}
    bracket = _bracket(gap, s0, limit)
    if bracket is None:
        lo, hi = s0 / limit, s0 * limit
        return {"status": "not_attained", "value": math.nan, "mc_se": math.nan,
                "fair_at_limits": (fair(lo)[0], fair(hi)[0]), "bracket": (lo, hi),
                "evaluations": len(seen), "seconds": time.perf_counter() - started, **base}
    root = float(optimize.brentq(gap, *bracket, xtol=rtol * s0))
    xs = np.array(sorted(seen))
    below, above = xs[xs < root], xs[xs > root]
    slope = (math.nan if not below.size or not above.size else
             (fair(above.max())[0] - fair(below.min())[0]) / (above.max() - below.min()))
    value, se = fair(root)
    return {"status": "found", "value": root, "mc_se": se / abs(slope) if slope else math.inf,
            "fair_at_root": value, "slope": slope, "xtol": rtol * s0, "bracket": bracket,
            "evaluations": len(seen), "seconds": time.perf_counter() - started, **base}


def _bracket(gap: Callable[[float], float], s0: float, limit: float,
             factor: float = 1.6) -> tuple[float, float] | None:
    """Widen from ``s0`` by ``factor`` until ``gap`` changes sign; None within ``limit``."""
    g0 = gap(s0)
    step = factor if g0 < 0 else 1 / factor
    x = s0
    while max(x / s0, s0 / x) * factor <= limit * (1 + 1e-9):
        nxt = x * step
        if gap(nxt) * g0 <= 0:
            return (x, nxt) if step > 1 else (nxt, x)
        x = nxt
    return None


def breakevens(scenarios: Mapping[str, Any], *, paths: int = 1_024, seed: int | None = None,
               sampling: str | None = None, client: Any = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`breakeven_spot` for every company, ticker -> result, on the peer run's seed."""
    out = {}
    for i, (ticker, scenario) in enumerate(scenarios.items()):
        out[ticker] = breakeven_spot(scenario, paths=paths, seed=seed, sampling=sampling,
                                     client=client)
        if progress is not None:
            progress(i + 1, len(scenarios))
    return out
