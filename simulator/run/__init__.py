"""Running a scenario: sampling, the chunk plan, execution, reductions, and the public ``simulate``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from simulator import __version__
from simulator.errors import RunError
from simulator.run.execute import Progress, chunk_executor, run_chunks
from simulator.run.plan import RunSpec, aligned_chunks, chunk_size, fit_mark

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import numpy as np

DEFAULT_MAX_PATHS = 1_000_000
"""Path cap of an adaptive-precision run."""

_MARKS: dict = {}
"""Fitted marks by (scenario SHA-256, seed, sampling, overrides): a mark is a pure function of
them, so a process that runs the same scenario again (a notebook, the test suite, a compare of
saved and fresh runs) fits it once. The oldest is dropped beyond :data:`_MARKS_KEPT`."""
_MARKS_KEPT = 8

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
    import numpy as np

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
             progress: Progress | None = None, precision: float | None = None,
             max_paths: int = DEFAULT_MAX_PATHS, scenario_yaml: str | None = None,
             scenario_sha256: str | None = None, overrides: dict[str, float] | None = None,
             processes: int | None = None, executor: Executor | None = None, mark: Any = None) -> Any:
    """Simulate ``scenario`` and return the cube (an ``xarray.Dataset``, design.md's table).

    Parameters
    ----------
    scenario : Scenario or str or path
        A validated scenario, or a file / shipped name to load.
    paths, seed, sampling : optional
        Override the scenario's ``simulation`` settings.
    chunk_paths : int, optional
        Paths per chunk (rounded up to whole 1,024-path blocks); bounds memory. Results do not
        depend on it. Default: the scenario's ``chunk_paths``, or less when that leaves a
        local process without a chunk (10,000 paths on two cores run as two chunks of 5,120
        and 4,880, not 8,192 and 1,808), but not less than 2,048.
    store_paths : int, optional
        Keep full ``[path, time]`` series for the first this-many paths (default: the
        scenario's ``store_paths``); exact all-path monthly mean and std are kept regardless.
    client : dask.distributed.Client, optional
        Run chunks on this cluster; the numbers are identical to a serial run.
    processes : int, optional
        Without a client: worker processes of a local pool (default 1: every chunk runs in
        this process). The numbers are identical. The pool's workers start from a forkserver,
        which imports the calling script again: in a script (not a notebook) call ``simulate``
        with ``processes`` > 1 under ``if __name__ == "__main__":``.
    executor : concurrent.futures.Executor, optional
        A pool of ``processes`` workers the caller started
        (:func:`simulator.run.execute.local_executor`), so that its workers start while the
        caller still imports and loads; used instead of a new one.
    progress : callable(done, total), optional
        Called after each chunk.
    precision : float, optional
        Adaptive run [USD/share]: add chunks until the standard error of the mean value per
        share is below this, or ``max_paths`` is reached. Excludes ``paths``. The cube's
        ``paths`` attr says how many it took; ``precision_target_usd`` and
        ``precision_se_usd`` record the target and the standard error reached.
    max_paths : int
        Path cap of an adaptive run (default 1,000,000).
    overrides : dict of str to float, optional
        Hold these inputs (dotted key paths, e.g. ``market.btc.process.volatility``) at one value
        on every path while every other draw stays as sampled: common random numbers for the
        tornado and breakevens. A key may name a fixed input too.
    mark : MarkSeries, optional
        The fitted mark V_t(state) to use (:func:`scenario_mark`); default: fitted for this
        run on ``valuation.marks.fit_paths`` pricing paths of its own, or reused from an
        earlier run in this process with the same scenario, seed, sampling and overrides.

    Returns
    -------
    xarray.Dataset
        The cube, with the run manifest in its attrs.

    Raises
    ------
    RunError
        For ``paths`` or ``seed`` outside the bounds of :mod:`simulator.limits`, ``precision``
        with ``paths``, a non-positive ``precision`` or ``max_paths``, or a failed chunk.

    Notes
    -----
    Chunk ``k`` always covers paths ``[k c, (k + 1) c)`` with ``c`` the chunk size, and every
    path's numbers depend only on the seed and its index, so an adaptive run that stops after
    ``N`` paths gives the same cube as a fixed run of ``N`` paths with the same chunk size.
    The standard error is ``s / sqrt(n)`` over the ``n`` paths that did not fail.
    """
    import numpy as np

    from simulator import units as u
    from simulator.cube import assemble
    from simulator.engine.chain import control_names
    from simulator.engine.valuation import controlled_mean
    from simulator.engine.inputs import month_starts
    from simulator.scenario.history import bootstrap_history

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
    seed = sim.seed if seed is None else int(seed)
    _check_settings(None if paths is None else int(paths), seed, precision, max_paths)
    planned = (sim.paths if paths is None else int(paths)) if precision is None else int(max_paths)
    sampling = sim.sampling if sampling is None else sampling
    store = sim.store_paths if store_paths is None else int(store_paths)
    dists = sampled_dists(scenario)
    corr = correlation(scenario, list(dists))
    started = time.perf_counter()
    history = bootstrap_history(scenario)
    run = RunSpec(scenario, dists, corr, seed, sampling, planned, store, dict(overrides or {}),
                  history=None if history is None else history.returns)
    if mark is None:
        key = (scenario_sha256, seed, sampling, tuple(sorted((overrides or {}).items())))
        mark = _MARKS.get(key)
        if mark is None:
            mark = _MARKS[key] = fit_mark(run)
            while len(_MARKS) > _MARKS_KEPT:
                _MARKS.pop(next(iter(_MARKS)))
    run = dataclasses.replace(run, mark=mark)
    if chunk_paths is None:
        chunk_paths = sim.chunk_paths
        if client is None and precision is None:
            chunk_paths = chunk_size(planned, chunk_paths, processes or 1)
    chunks = aligned_chunks(planned, chunk_paths)
    until = None if precision is None else (lambda n, se: se < precision)
    with chunk_executor(client=client, executor=executor, processes=processes,
                        chunks=len(chunks)) as (pool, window):
        reduced = run_chunks(run, chunks, pool, window=window, progress=progress, until=until)
    manifest = {
        "scenario_name": scenario.name, "scenario_description": scenario.description,
        "scenario_yaml": scenario_yaml, "scenario_sha256": scenario_sha256, "seed": seed,
        "paths": reduced.paths, "sampling": sampling, "store_paths": min(store, reduced.paths),
        "chunk_paths": chunks[0][1] - chunks[0][0], "minersim_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "valuation_date": sim.valuation_date.isoformat(),
        "share_price": scenario.company.share_price_usd, "ticker": scenario.company.ticker,
        "company_name": scenario.company.name,
        "btc_spot_usd": float(scenario.market.btc.spot_usd) if isinstance(scenario.market.btc.spot_usd, (int, float)) else None,
        "runtime_seconds": round(time.perf_counter() - started, 3),
        "halving_heights": list(scenario.network.halving_heights),
        "street_targets_usd": (None if scenario.company.street is None else {
            "low": scenario.company.street.low_usd, "high": scenario.company.street.high_usd,
            "consensus": scenario.company.street.consensus_usd,
            "source": scenario.company.street.source}),
        "overrides": dict(overrides or {}),
    }
    if history is not None:
        manifest["history_sha256"] = history.sha256
    if precision is not None:
        manifest.update(precision_target_usd=float(precision), precision_se_usd=reduced.mean_se,
                        max_paths=int(max_paths), precision_reached=bool(reduced.mean_se < precision))
    fair, fair_se, plain, plain_se = controlled_mean(reduced.per_path["value_per_share"],
                                                     reduced.per_path["pricing_controls"])
    forward_r2 = {str(12 * y): round(float(mark.r2_out[12 * y - 1]), 4)
                  for y in scenario.valuation.forward_years}
    manifest.update(
        fair_value_per_share=fair, fair_value_se=fair_se, fair_value_plain_mean=plain,
        fair_value_plain_se=plain_se, mark_fit_paths=scenario.valuation.marks.fit_paths,
        mark_r2_out_of_sample=forward_r2,
        mark_r2_out_of_sample_median=round(float(np.median(mark.r2_out)), 4),
        risk_free_rate=_fixed_or_none(scenario.valuation.risk_free_rate))
    inputs = {key: (arr, u.input_units(key), key) for key, arr in reduced.inputs.items()}
    return assemble({**reduced.per_path, **reduced.series}, calendar=month_starts(scenario),
                    sites=[s.name for s in scenario.sites], forward_years=list(scenario.valuation.forward_years),
                    controls=control_names(scenario),
                    inputs=inputs, manifest=manifest, summary=reduced.summary)


def _fixed_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


def scenario_mark(scenario: Any, seed: int | None = None, sampling: str | None = None) -> Any:
    """The mark V_t(state) a run of ``scenario`` with this seed fits (:func:`plan.fit_mark`).

    Re-runs that hold inputs at other values (tornado, breakevens) pass it to :func:`simulate`
    as ``mark=`` rather than fitting their own: the mark is a function of the state, and the
    re-runs differ from the run only in inputs, so one fit serves them all.
    """
    sim = scenario.simulation
    dists = sampled_dists(scenario)
    run = RunSpec(scenario, dists, correlation(scenario, list(dists)),
                  sim.seed if seed is None else int(seed), sim.sampling if sampling is None else sampling,
                  sim.paths, 0)
    return fit_mark(run)


def _check_settings(paths: int | None, seed: int, precision: float | None, max_paths: int) -> None:
    """The bounds the schema and the command line enforce, for callers of :func:`simulate`."""
    from simulator.limits import PATHS_MAX, PATHS_MIN, SEED_MAX, SEED_MIN

    if paths is not None and not PATHS_MIN <= paths <= PATHS_MAX:
        raise RunError(f"paths must be {PATHS_MIN:,} to {PATHS_MAX:,} (got {paths:,}): a standard "
                       "error needs two paths")
    if not SEED_MIN <= seed <= SEED_MAX:
        raise RunError(f"seed must be {SEED_MIN} to 2**63 - 1 (got {seed})")
    if precision is None:
        return
    if paths is not None:
        raise RunError("--paths and --precision exclude each other: an adaptive run picks its own "
                       "path count (cap it with --max-paths)")
    if not precision > 0:
        raise RunError(f"--precision must be > 0 USD/share (got {precision})")
    if max_paths < 1:
        raise RunError(f"--max-paths must be >= 1 (got {max_paths})")
