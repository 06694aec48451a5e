"""The chunk plan of a run and the work of one chunk.

Paths are split into chunks of whole :data:`~simulator.rng.BLOCK_PATHS` blocks. Each chunk
samples its inputs and draws its shocks from streams keyed by ``(seed, stream, block)``, so
the numbers of a path do not depend on how the run is split or where it runs.
:func:`run_chunk` is what an executor runs: it takes plain, picklable arguments and returns a
:class:`~simulator.run.reduce.ChunkResult` for the reducer.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.rng import BLOCK_PATHS, chunk_plan

if TYPE_CHECKING:
    import numpy as np

    from simulator.run.reduce import ChunkResult

ENGINE_MODULES = ("numpy", "simulator.cube", "simulator.engine.chain", "simulator.run.reduce",
                  "simulator.run.sampling", "simulator.scenario")
"""What :func:`run_chunk` imports on first use: a process pool's workers import them once,
before they are handed their first chunk (:func:`simulator.run.execute.local_executor`)."""

MIN_SHARED_CHUNK_PATHS = 2 * BLOCK_PATHS
"""A local run's chunks are not shrunk below this to give every core one: a run that small
gains less from a second process than handing it over costs."""


def aligned_chunks(n_paths: int, chunk_paths: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of whole blocks (``chunk_paths`` rounded up to a block multiple)."""
    size = -(-max(chunk_paths, 1) // BLOCK_PATHS) * BLOCK_PATHS
    return chunk_plan(n_paths, size)


def chunk_size(planned: int, chunk_paths: int, workers: int) -> int:
    """Paths per chunk: ``chunk_paths``, or less where that leaves one of ``workers`` idle.

    10,000 paths on two workers run as 5,120 + 4,880, not 8,192 + 1,808; never below
    :data:`MIN_SHARED_CHUNK_PATHS`. The numbers do not depend on the chunk size.
    """
    if workers <= 1:
        return chunk_paths
    return min(chunk_paths, max(-(-planned // workers), MIN_SHARED_CHUNK_PATHS))


@dataclass(frozen=True)
class RunSpec:
    """Everything the chunks of one run share; picklable, so it can travel to any worker."""

    scenario: Any
    dists: Mapping[str, Any]
    corr: np.ndarray | None
    seed: int
    sampling: str
    n_total: int
    """Paths of the whole run (Latin hypercube sizes its last block by it); the path cap in
    adaptive runs, so that chunk ``k`` covers the same paths in both kinds of run."""
    store_paths: int
    overrides: Mapping[str, float] = field(default_factory=dict)
    """Inputs held at one value on every path (tornado, breakevens); all else as sampled."""
    history: np.ndarray | None = None
    """Monthly log returns a ``bootstrap`` BTC process resamples, read once where the run
    starts (:func:`simulator.scenario.history.bootstrap_history`); None for other processes."""
    mark: Any = None
    """The run's fitted mark (:func:`fit_mark`), the same for every chunk."""


MARK_PURPOSE = "marks.fit"
"""Names the seed of the mark's fitting paths (:func:`simulator.rng.derived_seed`)."""


def fit_mark(run: RunSpec) -> Any:
    """Fit the mark V_t(state) on ``valuation.marks.fit_paths`` pricing paths of their own.

    The fitting paths have their own seed, derived from the run's, and sample inputs the way
    the run does (with its overrides), so the mark is the same whatever the run's path count,
    chunking or workers.
    """
    return fit_peer_marks(PeerSpec((run,)))[0]


def fit_peer_marks(peers: PeerSpec) -> list[Any]:
    """:func:`fit_mark` for every company of ``peers``, on one set of fitting paths.

    Each company samples its inputs as its own run would; the fitting paths' market is built
    once, from the world's inputs, which are the same for every company (:class:`PeerSpec`).
    Each mark equals the one its company's own run fits, bit for bit.
    """
    from simulator.engine import chain
    from simulator.rng import Draws, derived_seed

    first = peers.runs[0]
    sc = first.scenario
    n = sc.valuation.marks.fit_paths
    seed = derived_seed(first.seed, MARK_PURPOSE)
    draws = Draws(seed, 0, n, sc.simulation.horizon_months)
    inputs = [_inputs(run, seed, 0, n, n) for run in peers.runs]
    world = chain.world_paths(sc, inputs[0], draws, first.history, real_world=False,
                              lease_index=_follows_index(peers))
    return [chain.fit_chunk_marks(run.scenario, each, draws, run.history, world=world)
            for run, each in zip(peers.runs, inputs, strict=True)]


def _inputs(run: RunSpec, seed: int, start: int, stop: int, n_total: int) -> dict[str, np.ndarray]:
    """The run's sampled inputs for paths ``[start, stop)`` of ``n_total``, overrides applied."""
    import numpy as np

    from simulator.run.sampling import sample_inputs

    inputs = sample_inputs(run.dists, method=run.sampling, seed=seed, start=start, stop=stop,
                           n_total=n_total, corr=run.corr, company=run.scenario.company.ticker)
    for key, value in run.overrides.items():
        inputs[key] = np.full(stop - start, value, dtype=np.float64)
    return inputs


def run_chunk(run: RunSpec, start: int, stop: int) -> ChunkResult:
    """Sample inputs and run the engine for paths ``[start, stop)`` of ``run``.

    The ``[path, time]`` rows of the stored sample come back as :data:`SERIES_DTYPE`, as the
    cube stores them (half the bytes to hand back); their block statistics are taken first,
    in float64.
    """
    from simulator.engine import chain
    from simulator.rng import Draws

    inputs = _inputs(run, run.seed, start, stop, run.n_total)
    draws = Draws(run.seed, start, stop, run.scenario.simulation.horizon_months)
    out = chain.simulate_chunk(run.scenario, inputs, draws, run.mark, run.history)
    return _chunk_result(run, start, stop, out, inputs)


def _chunk_result(run: RunSpec, start: int, stop: int, out: Mapping[str, np.ndarray],
                  inputs: dict[str, np.ndarray]) -> ChunkResult:
    """The engine's arrays for one chunk as the reducer takes them: per-path arrays, the stored
    rows as :data:`~simulator.cube.SERIES_DTYPE`, block statistics of every series."""
    from simulator.cube import PT, SERIES_DTYPE, VARIABLES
    from simulator.run.reduce import ChunkResult, block_stats

    per_path, series, stats = {}, {}, {}
    keep = max(0, min(stop, run.store_paths) - start)
    for name, arr in out.items():
        if VARIABLES[name][0] == PT:
            stats[name] = block_stats(arr)
            if keep:
                series[name] = arr[:keep].astype(SERIES_DTYPE) if arr.dtype.kind == "f" else arr[:keep]
        else:
            per_path[name] = arr
    return ChunkResult(start, stop, per_path, series, stats, inputs)


@dataclass(frozen=True)
class PeerSpec:
    """The runs of a peer group's companies on one set of paths (issue 17).

    Every run has the same seed, sampling, path count and world (market, network, valuation,
    horizon and valuation date, and bootstrap history): :func:`check_same_world` says so before
    a peer run starts. Picklable, like :class:`RunSpec`.
    """

    runs: tuple[RunSpec, ...]


def run_peer_chunk(peers: PeerSpec, start: int, stop: int) -> tuple[ChunkResult, ...]:
    """Paths ``[start, stop)`` for every company of ``peers``: the world once, then each company.

    Each company's result equals :func:`run_chunk` of its own run, bit for bit: its inputs and
    streams are sampled as its run samples them, and the world's inputs and streams, which
    build the market paths, are the same in every run.
    """
    from simulator.engine import chain
    from simulator.rng import Draws

    first = peers.runs[0]
    draws = Draws(first.seed, start, stop, first.scenario.simulation.horizon_months)
    inputs = [_inputs(run, run.seed, start, stop, run.n_total) for run in peers.runs]
    world = chain.world_paths(first.scenario, inputs[0], draws, first.history,
                              lease_index=_follows_index(peers))
    out = []
    for run, each in zip(peers.runs, inputs, strict=True):
        arrays = chain.simulate_chunk(run.scenario, each, draws, run.mark, run.history, world=world)
        out.append(_chunk_result(run, start, stop, arrays, each))
    return tuple(out)


def _follows_index(peers: PeerSpec) -> bool:
    """Whether any company of the group has a site offering at the AI lease-rate index: the
    shared world builds the index then, and every company reads the same one."""
    from simulator.engine import chain

    return any(chain.follows_index(run.scenario) for run in peers.runs)


def run_pickled_peer_chunk(peers_pickle: bytes, start: int, stop: int) -> tuple[ChunkResult, ...]:
    """:func:`run_peer_chunk` for a peer group sent pickled, unpickled once per process."""
    return run_peer_chunk(_unpickle_run(peers_pickle), start, stop)


def run_pickled_chunk(run_pickle: bytes, start: int, stop: int) -> ChunkResult:
    """:func:`run_chunk` for a run sent pickled once per chunk, unpickled once per process.

    Rebuilding the scenario and its frozen scipy distributions takes about 10 ms; a worker
    running many chunks of one run does it once.
    """
    return run_chunk(_unpickle_run(run_pickle), start, stop)


@functools.lru_cache(maxsize=2)
def _unpickle_run(run_pickle: bytes) -> RunSpec | PeerSpec:
    return pickle.loads(run_pickle)
