"""Breakevens: the input value at which the median value per share equals the market price.

Each breakeven solves median(v | x) = P for one input x held at the same value on every path,
with every other draw common between evaluations (same seed, ``simulate(overrides=...)``), so
the median is a deterministic, nearly continuous function of x and Brent's method applies.
Two are offered:

* **BTC spot** (``market.btc.spot_usd``): the spot price the market price implies.
* **Lease-signing probability**: every site's ``conversion.signing_probability`` *set* to
  one common value q on every path (not scaled), the single probability of each tenant
  signing that the market price implies. Other conversion inputs keep their sampled values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize

from simulator.analysis.drivers import value_samples
from simulator.run import scenario_mark
from simulator.analysis.stats import summary

SPOT_KEY = "market.btc.spot_usd"


def _solve(fn: Callable[[float], np.ndarray], target: float, lo: float, hi: float,
           xtol: float) -> dict[str, Any]:
    """Brent's root of median(fn(x)) - target on [lo, hi], with what it cost and how sure it is.

    ``fn`` returns value per share [USD/share] over paths; evaluations are cached.
    """
    cache: dict[float, np.ndarray] = {}

    def med(x: float) -> float:
        if x not in cache:
            cache[x] = fn(x)
        return float(np.nanmedian(cache[x])) - target

    f_lo, f_hi = med(lo), med(hi)
    if f_lo * f_hi > 0:
        return {"status": "not_attained", "value": float("nan"), "bracket": (lo, hi),
                "median_at_bracket": (f_lo + target, f_hi + target), "evaluations": len(cache)}
    root = float(optimize.brentq(med, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps))
    f_root = med(root)
    # Tightest evaluated bracket around the root: the median is monotone between its ends,
    # so the value at the root lies within their medians' distance from the target.
    xs = np.array(sorted(cache))
    fs = np.array([float(np.nanmedian(cache[x])) - target for x in xs])
    below, above = xs[xs <= root], xs[xs >= root]
    near = [below.max(), above.min()]
    value_tol = max(abs(float(np.nanmedian(cache[x])) - target) for x in near)
    slope = _slope(xs, fs, root)
    se = summary(cache[root])["median_se"]
    return {"status": "found", "value": root, "xtol": xtol, "median_at_root": f_root + target,
            "value_tol": max(value_tol, abs(f_root)), "mc_se": se / abs(slope) if slope else
            float("inf"), "slope": slope, "evaluations": len(cache), "bracket": (lo, hi)}


def _memo(fn: Callable[[float], np.ndarray]) -> Callable[[float], np.ndarray]:
    """Cache a re-run by its input value: bracketing and root finding share evaluations."""
    seen: dict[float, np.ndarray] = {}

    def call(x: float) -> np.ndarray:
        if x not in seen:
            seen[x] = fn(x)
        return seen[x]

    return call


def _slope(xs: np.ndarray, fs: np.ndarray, root: float) -> float:
    """d median / dx from the widest evaluated pair around the root (secant)."""
    lo, hi = xs[xs < root], xs[xs > root]
    if not lo.size or not hi.size:
        return float("nan")
    i, j = np.flatnonzero(xs == lo.min())[0], np.flatnonzero(xs == hi.max())[0]
    return float((fs[j] - fs[i]) / (xs[j] - xs[i]))


def breakeven_spot(scenario: Any, *, paths: int = 2_000, seed: int | None = None,
                   sampling: str | None = None, target: float | None = None,
                   rtol: float = 0.0025, client: Any = None) -> dict[str, Any]:
    """BTC spot price [USD/BTC] at which the median value per share equals the market price.

    Parameters
    ----------
    scenario : Scenario
    paths, seed, sampling : optional
        Settings of every evaluation (seed and sampling default to the scenario's).
    target : float, optional
        Price to match [USD/share] (default: ``company.share_price_usd``).
    rtol : float
        Root-finding tolerance as a fraction of today's spot: ``xtol = rtol · S0``.

    Returns
    -------
    dict
        ``status`` ("found" or "not_attained"), ``value`` [USD/BTC], ``xtol`` [USD/BTC]
        (Brent's bracket width at exit), ``median_at_root`` and ``value_tol`` [USD/share]
        (|median(root) - target| is at most this), ``mc_se`` [USD/BTC] (Monte Carlo SE of the
        breakeven: SE of the median / slope), ``spot``, ``target``, ``evaluations``,
        ``definition``.

    Notes
    -----
    The bracket starts at S0 and widens by factors of 1.6 (up to 1/20 and 20 x S0) until the
    sign of median - target changes. The spot enters every path's price process and the
    treasury mark, so the median is monotone in it.
    """
    s0 = float(scenario.market.btc.spot_usd)
    target = float(scenario.company.share_price_usd if target is None else target)
    seed = scenario.simulation.seed if seed is None else int(seed)
    mark = scenario_mark(scenario, seed, sampling)

    def fn(x: float) -> np.ndarray:
        return value_samples(scenario, paths=paths, seed=seed, sampling=sampling,
                             overrides={SPOT_KEY: float(x)}, client=client, mark=mark)

    fn = _memo(fn)
    lo, hi = _bracket(fn, target, s0)
    out = _solve(fn, target, lo, hi, xtol=rtol * s0)
    out.update(spot=s0, target=target, paths=paths, seed=seed, units="USD/BTC",
               definition="BTC spot price held on every path, all other draws common")
    return out


def _bracket(fn: Callable[[float], np.ndarray], target: float, s0: float,
             factor: float = 1.6, limit: float = 20.0) -> tuple[float, float]:
    """Widen from s0 until median(fn) - target changes sign; the last pair, or the limits."""
    base = float(np.nanmedian(fn(s0))) - target
    step = factor if base < 0 else 1 / factor
    x = s0
    while (x / s0 if step > 1 else s0 / x) < limit:
        nxt = x * step
        if (float(np.nanmedian(fn(nxt))) - target) * base <= 0:
            return (x, nxt) if step > 1 else (nxt, x)
        x = nxt
    return (s0, s0 * limit) if step > 1 else (s0 / limit, s0)


def signing_keys(scenario: Any) -> list[str]:
    """Key paths of every site's lease-signing probability (sites that convert)."""
    return [f"sites.{s.name}.conversion.signing_probability" for s in scenario.sites
            if s.conversion is not None]


def breakeven_signing(scenario: Any, *, paths: int = 2_000, seed: int | None = None,
                      sampling: str | None = None, target: float | None = None,
                      xtol: float = 0.005, client: Any = None) -> dict[str, Any]:
    """Common lease-signing probability [1] the market price implies.

    Every converting site's ``signing_probability`` is set to the same q on every path;
    the root of median(v | q) = market price is sought on q in [0, 1].

    Returns
    -------
    dict
        As :func:`breakeven_spot` (``value`` and ``xtol`` in [1]); ``status`` is
        "not_attained" when the market price lies outside the medians at q = 0 and q = 1
        (``median_at_bracket`` gives both), and "no_sites" when no site converts.
    """
    keys = signing_keys(scenario)
    target = float(scenario.company.share_price_usd if target is None else target)
    seed = scenario.simulation.seed if seed is None else int(seed)
    base = dict(target=target, paths=paths, seed=seed, units="1", keys=keys,
                definition="every site's signing probability set to one common value q "
                           "on every path; other draws common")
    if not keys:
        return {"status": "no_sites", "value": float("nan"), "evaluations": 0, **base}

    mark = scenario_mark(scenario, seed, sampling)

    def fn(q: float) -> np.ndarray:
        return value_samples(scenario, paths=paths, seed=seed, sampling=sampling,
                             overrides={k: float(q) for k in keys}, client=client, mark=mark)

    out = _solve(fn, target, 0.0, 1.0, xtol=xtol)
    out.update(base)
    return out
