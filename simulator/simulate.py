"""The public ``simulate``: scenario -> sampled inputs -> engine chunks -> cube."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np

from simulator import __version__
from simulator import units as u
from simulator.cube import assemble
from simulator.engine import chain
from simulator.parallel import ChunkTask, Progress, aligned_chunks, execute

# Input key suffix -> units (longest match wins); keys carry their units (design.md).
_SUFFIX_UNITS = {
    "_usd_per_mwh": u.USD_PER_MWH, "_usd_per_kw_month": u.USD_PER_KW_MONTH, "_usd_m_per_mw_it": "USD million/MW",
    "_usd_m_per_mw": "USD million/MW", "_usd_per_mw_month": "USD/MW-month", "_usd_m_per_year": "USD million/year",
    "_usd_m": "USD million", "_usd_per_th": "USD/TH", "_usd": u.USD, "_btc_per_block": u.BTC, "_btc": u.BTC,
    "_ehs": u.EHS, "_mw": u.MW, "_j_per_th": u.J_PER_TH, "_months": u.MONTHS, "_per_year": "1/year",
    "_monthly": "1/month", "_years": "years", ".date": "months after valuation date", ".btc": u.BTC,
}


def input_units(key: str) -> str:
    """Units of an input from its key path's suffix (rates, ratios and multiples are ``1``)."""
    for suffix in sorted(_SUFFIX_UNITS, key=len, reverse=True):
        if key.endswith(suffix):
            return _SUFFIX_UNITS[suffix]
    return u.ONE


def sampled_dists(scenario: Any) -> dict[str, Any]:
    """Every uncertain input -> an object with ``ppf`` (month ranges become month offsets)."""
    from scipy import stats

    from simulator.scenario.distributions import MonthRange

    origin = scenario.simulation.valuation_date
    out = {}
    for key, dist in scenario.uncertain_inputs():
        if isinstance(dist, MonthRange):
            lo, hi = dist.offsets(origin)
            out[key] = stats.randint(lo, hi + 1)
        else:
            out[key] = dist.frozen()
    return out


def correlation(scenario: Any, keys: list[str]) -> np.ndarray | None:
    """The scenario's rank correlations laid over ``keys`` (identity elsewhere), or None."""
    if not scenario.correlations:
        return None
    named, matrix = scenario.correlation_matrix()
    corr = np.eye(len(keys))
    index = {k: keys.index(k) for k in named}
    for i, a in enumerate(named):
        for j, b in enumerate(named):
            if i != j:
                corr[index[a], index[b]] = matrix[i][j]
    return corr


def simulate(scenario: Any, paths: int | None = None, seed: int | None = None, sampling: str | None = None,
             *, chunk_paths: int | None = None, store_paths: int | None = None, client: Any = None,
             progress: Progress | None = None, scenario_yaml: str | None = None,
             scenario_sha256: str | None = None, overrides: dict[str, float] | None = None) -> Any:
    """Simulate ``scenario`` and return the cube (an ``xarray.Dataset``, design.md's table).

    Parameters
    ----------
    scenario : Scenario or str or path
        A validated scenario, or a file / shipped name to load.
    paths, seed, sampling : optional
        Override the scenario's ``simulation`` settings.
    chunk_paths : int, optional
        Paths per chunk (rounded up to whole 1,024-path blocks); bounds memory. Results do not
        depend on it.
    store_paths : int, optional
        Keep full ``[path, time]`` series for the first this-many paths (default: the
        scenario's ``store_paths``); exact all-path monthly mean and std are kept regardless.
    client : dask.distributed.Client, optional
        Run chunks on this cluster; the numbers are identical to a serial run.
    progress : callable(done, total), optional
        Called after each chunk.
    overrides : dict of str to float, optional
        Hold these inputs (dotted key paths, e.g. ``market.btc.process.volatility``) at one value
        on every path while every other draw stays as sampled: common random numbers for the
        tornado and breakevens. A key may name a fixed input too.
    """
    if not hasattr(scenario, "simulation"):
        from simulator.scenario import load

        loaded = load(scenario)
        scenario, scenario_yaml, scenario_sha256 = loaded.scenario, loaded.yaml_text, loaded.sha256
    if scenario_yaml is None:
        import hashlib
        import json

        scenario_yaml = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, indent=1)
        scenario_sha256 = hashlib.sha256(scenario_yaml.encode()).hexdigest()
    sim = scenario.simulation
    paths = sim.paths if paths is None else int(paths)
    seed = sim.seed if seed is None else int(seed)
    sampling = sim.sampling if sampling is None else sampling
    store = sim.store_paths if store_paths is None else int(store_paths)
    dists = sampled_dists(scenario)
    corr = correlation(scenario, list(dists))
    started = time.perf_counter()
    tasks = [ChunkTask(scenario, dists, corr, seed, sampling, paths, store, a, b, dict(overrides or {}))
             for a, b in aligned_chunks(paths, chunk_paths or sim.chunk_paths)]
    reduced = execute(tasks, client=client, progress=progress)
    manifest = {
        "scenario_name": scenario.name, "scenario_description": scenario.description,
        "scenario_yaml": scenario_yaml, "scenario_sha256": scenario_sha256, "seed": seed, "paths": paths,
        "sampling": sampling, "store_paths": min(store, paths), "minersim_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "valuation_date": sim.valuation_date.isoformat(),
        "share_price": scenario.company.share_price_usd, "ticker": scenario.company.ticker,
        "runtime_seconds": round(time.perf_counter() - started, 3),
        "halving_heights": list(scenario.network.halving_heights),
        "overrides": dict(overrides or {}),
    }
    inputs = {key: (arr, input_units(key), key) for key, arr in reduced.inputs.items()}
    return assemble({**reduced.per_path, **reduced.series}, calendar=chain.month_starts(scenario),
                    sites=[s.name for s in scenario.sites], forward_years=list(scenario.valuation.forward_years),
                    inputs=inputs, manifest=manifest, summary=reduced.summary)
