"""Drivers of value per share: a tornado with common random numbers, and rank correlations.

The tornado re-runs the scenario once with each uncertain input held at its P10 on every path
and once at its P90, with the same seed, so every other input and every market shock keeps
its sampled value (``simulate(overrides=...)``). The swing in median value per share between
the two runs is then a difference of paired samples, far more precise than two independent
runs would give. Rank correlations come from the main run alone, at no extra cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from simulator.analysis.compare import paired_quantile_se
from simulator.run import sampled_dists, scenario_mark, simulate
from simulator.units import input_units

Progress = Callable[[int, int], None]


def value_samples(scenario: Any, *, paths: int, seed: int | None = None,
                  sampling: str | None = None, overrides: dict[str, float] | None = None,
                  client: Any = None, mark: Any = None) -> np.ndarray:
    """Value per share [USD/share] over paths of one (possibly overridden) re-run.

    Only the per-path variables are kept (``store_paths=0``): a re-run needs no monthly
    series, and skipping them saves memory. ``mark`` is the fitted mark to reuse
    (:func:`simulator.run.scenario_mark`); None fits one for the run.
    """
    cube = simulate(scenario, paths, seed, sampling, store_paths=0, overrides=overrides,
                    client=client, mark=mark)
    return np.asarray(cube["value_per_share"].values, dtype=np.float64)


def input_range(scenario: Any, key: str, probs: tuple[float, float] = (0.1, 0.9)
                ) -> tuple[float, float]:
    """The ``probs`` quantiles of one uncertain input's distribution [the input's units].

    Month-range dates come back as month offsets from the valuation date, the form the
    engine reads them in.
    """
    dist = sampled_dists(scenario)[key]
    lo, hi = dist.ppf(np.asarray(probs, dtype=np.float64))
    return float(lo), float(hi)


def tornado(scenario: Any, *, paths: int = 2_000, seed: int | None = None,
            sampling: str | None = None, probs: tuple[float, float] = (0.1, 0.9),
            keys: Sequence[str] | None = None, client: Any = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Swing in median value per share as each uncertain input moves from P10 to P90.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    paths : int
        Paths per re-run; ``1 + 2 * len(keys)`` runs are made.
    seed, sampling : optional
        Default to the scenario's; every re-run uses the same ones (common random numbers).
    probs : (float, float)
        Quantiles of each input's own distribution to hold it at.
    keys : sequence of str, optional
        Input key paths (default: every uncertain input of the scenario).
    client : dask.distributed.Client, optional
        Passed through to :func:`simulator.run.simulate`.
    progress : callable(done, total), optional
        Called after each re-run.

    Returns
    -------
    dict
        ``rows`` sorted by ``swing`` (largest first), each {key, units, low, high,
        median_low, median_high, swing, swing_se}; ``base_median`` [USD/share] of the
        unperturbed re-run; ``paths``, ``seed``, ``probs``, ``runs``.

    Notes
    -----
    swing = |median(v | x = x_P90) - median(v | x = x_P10)|, both medians over the same
    paths and random numbers. ``swing_se`` is a paired bootstrap standard error of that
    difference (see :func:`simulator.analysis.compare.paired_quantile_se`). Inputs correlated
    with the one held fixed keep their sampled values; the tornado shows one-at-a-time
    sensitivity, not a conditional distribution.
    """
    seed = scenario.simulation.seed if seed is None else int(seed)
    keys = list(keys) if keys is not None else [k for k, _ in scenario.uncertain_inputs()]
    total = 1 + 2 * len(keys)
    mark = scenario_mark(scenario, seed, sampling)
    base = value_samples(scenario, paths=paths, seed=seed, sampling=sampling, client=client,
                         mark=mark)
    if progress:
        progress(1, total)
    rows = []
    for i, key in enumerate(keys):
        lo, hi = input_range(scenario, key, probs)
        v_lo = value_samples(scenario, paths=paths, seed=seed, sampling=sampling,
                             overrides={key: lo}, client=client, mark=mark)
        v_hi = value_samples(scenario, paths=paths, seed=seed, sampling=sampling,
                             overrides={key: hi}, client=client, mark=mark)
        if progress:
            progress(3 + 2 * i, total)
        m_lo, m_hi = float(np.nanmedian(v_lo)), float(np.nanmedian(v_hi))
        se = paired_quantile_se(v_lo, v_hi, [0.5])[0]
        rows.append({"key": key, "units": input_units(key), "low": lo, "high": hi,
                     "median_low": m_lo, "median_high": m_hi, "swing": abs(m_hi - m_lo),
                     "swing_se": float(se)})
    rows.sort(key=lambda r: -r["swing"])
    return {"rows": rows, "base_median": float(np.nanmedian(base)), "paths": int(paths),
            "seed": seed, "probs": tuple(probs), "runs": total}


def rank_correlations(cube: Any, level: float = 0.95) -> list[dict[str, Any]]:
    """Spearman rank correlation of every sampled input with value per share.

    Parameters
    ----------
    cube : xarray.Dataset
        A minersim cube with ``input_*`` variables (attr ``key_path``) and
        ``value_per_share``.
    level : float
        Coverage of the confidence interval.

    Returns
    -------
    list of dict
        {key, rho, ci_low, ci_high, n}, sorted by |rho| (largest first). Inputs that are
        constant over paths (fixed or overridden) are left out.

    Notes
    -----
    rho is Pearson's correlation of the ranks (ties get average ranks). The interval uses
    Fisher's z: atanh(rho) ± z_(1+level)/2 · 1.03 / sqrt(n - 3) (Fieller, Hartley and
    Pearson 1957, for the variance of the Spearman z).
    """
    value = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    names = [n for n in cube.data_vars if str(n).startswith("input_")]
    cols = np.column_stack([np.asarray(cube[n].values, dtype=np.float64) for n in names]) \
        if names else np.empty((value.size, 0))
    ok = ~np.isnan(value) & ~np.isnan(cols).any(axis=1)
    n = int(ok.sum())
    varying = np.ptp(cols[ok], axis=0) > 0 if n else np.zeros(len(names), bool)
    if n < 4 or not varying.any() or np.ptp(value[ok]) == 0:
        return []  # nothing to rank, or a value that never moves (a company worth $0 on every path)
    ranks = sps.rankdata(cols[ok][:, varying], axis=0)
    rv = sps.rankdata(value[ok])
    ranks -= ranks.mean(axis=0)
    rv -= rv.mean()
    rho = (rv @ ranks) / np.sqrt((rv @ rv) * np.einsum("ij,ij->j", ranks, ranks))
    half = sps.norm.ppf(0.5 + level / 2) * 1.03 / np.sqrt(n - 3)
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    keys = [str(cube[name].attrs.get("key_path", name)) for name, v in zip(names, varying) if v]
    rows = [{"key": k, "rho": float(r), "ci_low": float(np.tanh(zz - half)),
             "ci_high": float(np.tanh(zz + half)), "n": n}
            for k, r, zz in zip(keys, rho, z, strict=True)]
    rows.sort(key=lambda r: -abs(r["rho"]))
    return rows
