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
    from simulator.scenario.history import bootstrap_history

    scenario, scenario_yaml, scenario_sha256 = _identified(scenario, scenario_yaml, scenario_sha256)
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
    manifest = _manifest(run, scenario_yaml, scenario_sha256, reduced, chunks, history, overrides,
                         started)
    if precision is not None:
        manifest.update(precision_target_usd=float(precision), precision_se_usd=reduced.mean_se,
                        max_paths=int(max_paths), precision_reached=bool(reduced.mean_se < precision))
    return _cube(run, reduced, manifest)


def _identified(scenario: Any, scenario_yaml: str | None,
                scenario_sha256: str | None) -> tuple[Any, str, str]:
    """The scenario (loaded if a file or shipped name), its YAML text and the text's SHA-256.

    A scenario object without its text is identified by its canonical JSON dump.
    """
    import hashlib
    import json

    if not hasattr(scenario, "simulation"):
        from simulator.scenario import load

        loaded = load(scenario)
        return loaded.scenario, loaded.yaml_text, loaded.sha256
    if scenario_yaml is None:
        scenario_yaml = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, indent=1)
    if scenario_sha256 is None:
        scenario_sha256 = hashlib.sha256(scenario_yaml.encode()).hexdigest()
    return scenario, scenario_yaml, scenario_sha256


def _manifest(run: RunSpec, scenario_yaml: str, scenario_sha256: str, reduced: Any,
              chunks: list[tuple[int, int]], history: Any, overrides: dict[str, float] | None,
              started: float) -> dict[str, Any]:
    """The run manifest a cube carries in its attrs (design.md, "Data contract")."""
    import numpy as np

    from simulator.engine.valuation import controlled_mean

    scenario, mark = run.scenario, run.mark
    sim = scenario.simulation
    manifest = {
        "scenario_name": scenario.name, "scenario_description": scenario.description,
        "scenario_yaml": scenario_yaml, "scenario_sha256": scenario_sha256, "seed": run.seed,
        "paths": reduced.paths, "sampling": run.sampling, "store_paths": min(run.store_paths, reduced.paths),
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
    return manifest


def _cube(run: RunSpec, reduced: Any, manifest: dict[str, Any]) -> Any:
    """The cube of one company's reduced run."""
    from simulator import units as u
    from simulator.cube import assemble
    from simulator.engine.chain import control_names
    from simulator.engine.inputs import month_starts

    scenario = run.scenario
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


def simulate_peers(universe: Any, paths: int | None = None, seed: int | None = None,
                   sampling: str | None = None, *, chunk_paths: int | None = None,
                   store_paths: int | None = None, client: Any = None, processes: int | None = None,
                   executor: Executor | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate a peer group on one set of paths: one cube per company, keyed by ticker.

    Parameters
    ----------
    universe : str or path or list of LoadedScenario
        A universe file (``scenarios/peers.yaml``, or its shipped name ``peers``) or its loaded
        companies (:func:`simulator.scenario.universe.load_universe`).
    paths, seed, sampling, chunk_paths, store_paths, client, processes, executor, progress
        As :func:`simulate`; the defaults are the first company's (its ``simulation`` section,
        which a universe states once for all).

    Returns
    -------
    dict of str to xarray.Dataset
        Company ticker -> cube, in the universe's order. Each cube is the cube
        :func:`simulate` returns for that company with the same arguments, bit for bit (only
        ``created`` and ``runtime_seconds`` differ), plus the manifest attrs ``universe_name``,
        ``universe_sha256`` and ``universe_companies`` (a JSON list of tickers). Path ``i`` is
        the same world in every cube: the same BTC, fees and network under both measures.

    Raises
    ------
    RunError
        Companies whose worlds differ (:func:`check_same_world`), a ticker listed twice, or
        anything :func:`simulate` raises.

    Notes
    -----
    Each chunk builds its world once (both measures, :func:`simulator.engine.chain.world_paths`)
    and runs every company on it; the companies' marks are fitted on one set of fitting paths.
    A run of N companies therefore costs N company engines and one market and network
    simulation. Every company's own inputs and streams are named by its ticker, so two
    companies' own risks are independent unless a scenario correlates them.
    """
    import hashlib
    import json

    from simulator.run.execute import run_peer_chunks
    from simulator.run.plan import PeerSpec, fit_peer_marks
    from simulator.scenario.history import bootstrap_history

    name, universe_sha256, loaded = _universe(universe)
    if not loaded:
        raise RunError("a peer group needs at least one company")
    check_same_world([c.scenario for c in loaded])
    first = loaded[0].scenario
    sim = first.simulation
    seed = sim.seed if seed is None else int(seed)
    _check_settings(None if paths is None else int(paths), seed, None, DEFAULT_MAX_PATHS)
    planned = sim.paths if paths is None else int(paths)
    sampling = sim.sampling if sampling is None else sampling
    store = sim.store_paths if store_paths is None else int(store_paths)
    started = time.perf_counter()
    history = bootstrap_history(first)
    runs = []
    for company in loaded:
        dists = sampled_dists(company.scenario)
        runs.append(RunSpec(company.scenario, dists, correlation(company.scenario, list(dists)), seed,
                            sampling, planned, store, {}, history=None if history is None else history.returns))
    peers = PeerSpec(tuple(runs))
    marks = fit_peer_marks(peers)
    peers = PeerSpec(tuple(dataclasses.replace(run, mark=m) for run, m in zip(runs, marks, strict=True)))
    if chunk_paths is None:
        chunk_paths = sim.chunk_paths
        if client is None:
            chunk_paths = chunk_size(planned, chunk_paths, processes or 1)
    chunks = aligned_chunks(planned, chunk_paths)
    with chunk_executor(client=client, executor=executor, processes=processes,
                        chunks=len(chunks)) as (pool, window):
        reduced = run_peer_chunks(peers, chunks, pool, window=window, progress=progress)
    tickers = [run.scenario.company.ticker for run in peers.runs]
    out = {}
    for company, run, red in zip(loaded, peers.runs, reduced, strict=True):
        manifest = _manifest(run, company.yaml_text, company.sha256, red, chunks, history, None, started)
        manifest.update(universe_name=name, universe_sha256=universe_sha256,
                        universe_companies=json.dumps(tickers))
        out[run.scenario.company.ticker] = _cube(run, red, manifest)
    if universe_sha256 is None:
        joined = "".join(run.scenario.company.ticker + c.sha256 for run, c in zip(peers.runs, loaded))
        for cube in out.values():
            cube.attrs["universe_sha256"] = hashlib.sha256(joined.encode()).hexdigest()
    return out


def _universe(universe: Any) -> tuple[str, str | None, list[Any]]:
    """(name, SHA-256 of the universe file or None, loaded companies) of a file or a list."""
    import hashlib

    if isinstance(universe, (list, tuple)):
        return "peers", None, list(universe)
    from simulator.scenario.loader import find_scenario, load_yaml
    from simulator.scenario.universe import load_universe

    file = find_scenario(universe)
    name = str(load_yaml(file).data.get("name") or file.stem)
    return name, hashlib.sha256(file.read_bytes()).hexdigest(), load_universe(file)


WORLD_SETTINGS = ("valuation_date", "horizon_months")
"""The ``simulation`` settings every company of a peer group must share (its calendar)."""


def check_same_world(scenarios: list[Any]) -> None:
    """Raise RunError unless every scenario states the same world and calendar.

    A peer group's companies run on one set of market paths, so their ``market``, ``network``
    and ``valuation`` sections, valuation date and horizon must be equal, and their tickers,
    which name their own random streams, distinct.
    """
    from simulator.scenario.universe import WORLD_SECTIONS

    first = scenarios[0]
    seen: set[str] = set()
    for sc in scenarios:
        ticker = sc.company.ticker
        if ticker in seen:
            raise RunError(f"{ticker} is in the peer group twice: a ticker names a company's own "
                           "random streams, so each company needs its own")
        seen.add(ticker)
        for section in WORLD_SECTIONS:
            if getattr(sc, section).model_dump() != getattr(first, section).model_dump():
                raise RunError(f"{ticker}'s {section} section differs from {first.company.ticker}'s: "
                               "a peer group's companies share one world (state it once in the "
                               "universe file and do not set it in a company file)")
        for setting in WORLD_SETTINGS:
            if getattr(sc.simulation, setting) != getattr(first.simulation, setting):
                raise RunError(f"{ticker}'s simulation.{setting} differs from {first.company.ticker}'s: "
                               "a peer group's companies share one calendar")


def simulate_market(scenario: Any, paths: int | None = None, seed: int | None = None,
                    sampling: str | None = None, *, store_paths: int | None = None,
                    chunk_paths: int | None = None) -> Any:
    """The world alone: BTC, fees and the network of ``scenario`` (real-world measure), no company.

    The paths every company of a peer group runs on, with the same seed: a check that they do
    share them, and the market of a run without its company. Runs in this process.

    Returns
    -------
    xarray.Dataset
        ``btc_price``, ``fees_per_block``, ``subsidy``, ``block_height``, ``network_hashrate``
        and ``hashprice`` [path, time] for the first ``store_paths`` paths (default: the
        scenario's), float32 as a cube stores them, with units, long names and measures.
    """
    import numpy as np

    from simulator.cube import assemble
    from simulator.engine import chain
    from simulator.engine.inputs import month_starts
    from simulator.rng import Draws
    from simulator.run.sampling import sample_inputs
    from simulator.scenario.history import bootstrap_history
    from simulator.scenario.universe import is_world_key

    scenario, _, sha256 = _identified(scenario, None, None)
    sim = scenario.simulation
    seed = sim.seed if seed is None else int(seed)
    n = sim.paths if paths is None else int(paths)
    _check_settings(n, seed, None, DEFAULT_MAX_PATHS)
    sampling = sim.sampling if sampling is None else sampling
    keep = max(1, min(n, sim.store_paths if store_paths is None else int(store_paths)))
    every = sampled_dists(scenario)
    keys = list(every)
    world = [i for i, key in enumerate(keys) if is_world_key(key)]
    dists = {keys[i]: every[keys[i]] for i in world}
    corr = correlation(scenario, keys)
    corr = None if corr is None else corr[np.ix_(world, world)]
    history = bootstrap_history(scenario)
    names = ("btc_price", "fees_per_block", "subsidy", "block_height", "network_hashrate", "hashprice")
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start, stop in aligned_chunks(keep, chunk_paths or sim.chunk_paths):
        inputs = sample_inputs(dists, method=sampling, seed=seed, start=start, stop=stop, n_total=n,
                               corr=corr)
        draws = Draws(seed, start, stop, sim.horizon_months)
        w = chain.world_paths(scenario, inputs, draws, None if history is None else history.returns,
                              lease_index=False)  # not among the variables returned
        mp = w.real_world
        got = dict(btc_price=mp.btc_price, fees_per_block=mp.fees_per_block, subsidy=mp.subsidy,
                   block_height=w.block_height, network_hashrate=mp.network_hashrate,
                   hashprice=mp.hashprice)
        for name in names:
            parts[name].append(got[name])
    manifest = {"scenario_name": scenario.name, "scenario_sha256": sha256, "seed": seed, "paths": n,
                "store_paths": keep, "sampling": sampling, "minersim_version": __version__,
                "valuation_date": sim.valuation_date.isoformat()}
    return assemble({name: np.concatenate(parts[name]) for name in names},
                    calendar=month_starts(scenario), sites=[], forward_years=[], manifest=manifest)


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
