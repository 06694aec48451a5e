"""Chunk plan and the execution of a run's chunks: here, in forked processes, or on Dask.

Paths are split into chunks of whole :data:`~simulator.rng.BLOCK_PATHS` blocks. Each chunk
samples its inputs and draws its shocks from streams keyed by ``(seed, stream, block)``, so
the numbers of a path do not depend on how the run is split or where it runs. Each chunk's
result goes to a :class:`~simulator.reduce.Reducer` as soon as it arrives; reductions are made
per block and combined in block order (:mod:`simulator.reduce`), so the all-path mean and
standard deviation are bit-identical too. Without a cluster the chunks are dealt between
this process and forked helpers, one per core (:func:`simulator._fork.imap_forked`). Dask is
imported only when a cluster is asked for.

Memory is bounded by the chunk size: a chunk's ``[path, time]`` arrays are reduced to
per-block statistics as soon as it finishes, and only the rows of the stored sample
(paths below ``store_paths``) are copied into buffers that are allocated once. Per-path
arrays are kept for every path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator._fork import imap_forked
from simulator.engine import chain
from simulator.errors import RunError
from simulator.reduce import (PRECISION_VARIABLE, SERIES_DTYPE, ChunkResult, Precision, Reduced,
                              Reducer, block_stats)
from simulator.rng import BLOCK_PATHS, Draws, chunk_plan
from simulator.sampling import sample_inputs

Progress = Callable[[int, int], None]
"""``progress(chunks_done, chunks_planned)``, called after each chunk."""

Until = Callable[[int, float], bool]
"""``until(paths_done, mean_se_usd) -> stop?``, called in path order after each chunk."""


def local_processes() -> int:
    """Cores this process may run on (its CPU affinity where the platform says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def aligned_chunks(n_paths: int, chunk_paths: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of whole blocks (``chunk_paths`` rounded up to a block multiple)."""
    size = -(-max(chunk_paths, 1) // BLOCK_PATHS) * BLOCK_PATHS
    return chunk_plan(n_paths, size)


@dataclass(frozen=True)
class RunSpec:
    """Everything the chunks of one run share; picklable so it can travel to a Dask worker."""

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
    """Monthly log returns a ``bootstrap`` BTC process resamples, read once on the machine that
    starts the run (``simulator.history.bootstrap_history``); None for other processes."""


@dataclass(frozen=True)
class ChunkTask:
    """One chunk: paths ``[start, stop)`` of the run ``run``."""

    run: RunSpec
    start: int
    stop: int



def run_chunk(task: ChunkTask) -> ChunkResult:
    """Sample inputs and run the engine for one chunk of paths."""
    run, start, stop = task.run, task.start, task.stop
    inputs = sample_inputs(run.dists, method=run.sampling, seed=run.seed, start=start, stop=stop,
                           n_total=run.n_total, corr=run.corr)
    for key, value in run.overrides.items():
        inputs[key] = np.full(stop - start, value, dtype=np.float64)
    draws = Draws(run.seed, start, stop, run.scenario.simulation.horizon_months)
    out = chain.simulate_chunk(run.scenario, inputs, draws, run.history)
    per_path, series, stats = {}, {}, {}
    keep = max(0, min(stop, run.store_paths) - start)
    for name, arr in out.items():
        if arr.ndim == 2 and name in chain.SERIES:
            stats[name] = block_stats(arr)
            if keep:
                # A view, not a copy: the reducer copies it once into its sample buffer.
                series[name] = arr[:keep]
        else:
            per_path[name] = arr
    return ChunkResult(start, stop, per_path, series, stats, inputs)


def run_chunk_compact(task: ChunkTask) -> ChunkResult:
    """:func:`run_chunk` for a result that travels to another process.

    The reducer stores floating sample rows as :data:`SERIES_DTYPE`; casting them here gives
    the same values and halves what travels.
    """
    result = run_chunk(task)
    result.series = {name: arr.astype(SERIES_DTYPE) if arr.dtype.kind == "f" else arr
                     for name, arr in result.series.items()}
    return result


def _run_chunk_local(task: ChunkTask, home: int) -> ChunkResult:
    """:func:`run_chunk` in process ``home``, :func:`run_chunk_compact` in a forked helper."""
    return run_chunk(task) if os.getpid() == home else run_chunk_compact(task)


def _run_chunk_remote(run_pickle: bytes, start: int, stop: int) -> ChunkResult:
    """:func:`run_chunk_compact` on a Dask worker.

    The run travels pickled with every chunk but is unpickled once per worker process
    (rebuilding the scenario and its frozen scipy distributions takes about 10 ms).
    """
    return run_chunk_compact(ChunkTask(_unpickle_run(run_pickle), start, stop))


@functools.lru_cache(maxsize=2)
def _unpickle_run(run_pickle: bytes) -> RunSpec:
    return pickle.loads(run_pickle)



def execute(tasks: list[ChunkTask], *, client: Any = None, progress: Progress | None = None,
            until: Until | None = None, processes: int | None = None) -> Reduced:
    """Run chunks here and in forked helpers, or on a Dask ``client``, and reduce them.

    Parameters
    ----------
    tasks : list of ChunkTask
        Consecutive chunks from path 0, in path order.
    client : dask.distributed.Client, optional
        Run on this cluster. Chunks are retried if they fail and recomputed if a worker is
        lost; the numbers equal a serial run's.
    progress : callable(done, total), optional
        Called after each chunk.
    until : callable(paths_done, mean_se) -> bool, optional
        Adaptive runs: asked after each chunk, in path order, with the standard error of the
        mean value per share [USD/share] over paths ``[0, paths_done)``; ``True`` stops the
        run there. Chunks past that point are cancelled or dropped, so the result equals a
        fixed run over ``paths_done`` paths.
    processes : int, optional
        Without a client: processes running the chunks, this one and ``processes - 1``
        forked helpers (default: one per usable core, see :func:`local_processes`). One, or
        a process that cannot fork safely, runs them all here. The numbers are the same.
    """
    if not tasks:
        raise RunError("nothing to simulate: the chunk plan is empty")
    limit = tasks[-1].stop
    capacity = limit if until is None else min(limit, 8 * (tasks[0].stop - tasks[0].start))
    reducer = Reducer(capacity, limit, tasks[0].run.store_paths)
    frontier = _Frontier(tasks, until)
    if client is None:
        share = local_processes() if processes is None else max(1, int(processes))
        calls = [functools.partial(_run_chunk_local, task, os.getpid()) for task in tasks]
        results = imap_forked(calls, processes=share)
        # Not ``enumerate(results)``: enumerate keeps its last (index, result) tuple for reuse,
        # which would hold each chunk's arrays while the next chunk is computed.
        for i in range(len(tasks)):
            result = next(results)
            reducer.add(result)
            del result  # the chunk's arrays may go before the next chunk is computed
            stop = frontier.arrived(i, reducer)
            if progress:
                progress(i + 1, len(tasks))
            if stop:
                results.close()  # stops and reaps the helpers at once
                break
    else:
        _execute_dask(tasks, client, progress, reducer, frontier)
    red = reducer.finish(frontier.paths)
    red.mean_se = frontier.precision.se
    return red


class _Frontier:
    """Tracks the contiguous prefix of finished chunks and asks ``until`` as it advances."""

    def __init__(self, tasks: list[ChunkTask], until: Until | None) -> None:
        self.tasks = tasks
        self.until = until
        self.done: set[int] = set()
        self.next = 0
        self.paths = tasks[-1].stop
        self.stopped = False
        self.precision = Precision()

    def arrived(self, index: int, reducer: Reducer) -> bool:
        """Record chunk ``index`` as reduced; return True once the run should stop."""
        self.done.add(index)
        while not self.stopped and self.next in self.done:
            task = self.tasks[self.next]
            self.precision.add(reducer.per_path[PRECISION_VARIABLE][task.start:task.stop])
            self.next += 1
            if self.until is not None and self.until(task.stop, self.precision.se):
                self.stopped, self.paths = True, task.stop
        return self.stopped


def _execute_dask(tasks: list[ChunkTask], client: Any, progress: Progress | None,
                  reducer: Reducer, frontier: _Frontier) -> None:
    """Keep a few chunks per worker thread in flight; reduce each as it arrives."""
    import uuid

    from dask.distributed import as_completed

    window = max(2, 2 * sum(client.nthreads().values()))
    run_id = uuid.uuid4().hex
    inflight: dict[str, tuple[int, Any]] = {}
    # The chunks of a run share one RunSpec (simulate builds one per run): pickle it once, not
    # once per chunk.
    pickled = pickle.dumps(tasks[0].run, protocol=pickle.HIGHEST_PROTOCOL)

    def submit(i: int) -> Any:
        task = tasks[i]
        future = client.submit(_run_chunk_remote, pickled, task.start, task.stop, pure=False,
                               retries=2, key=f"minersim-chunk-{run_id}-{i}")
        inflight[future.key] = (i, future)
        return future

    queue = as_completed([submit(i) for i in range(min(window, len(tasks)))], loop=client.loop)
    submitted, done = min(window, len(tasks)), 0
    try:
        for future in queue:
            result = future.result()
            i, _ = inflight.pop(future.key)
            future.release()
            reducer.add(result)
            del result
            done += 1
            stop = frontier.arrived(i, reducer)
            if progress:
                progress(done, len(tasks))
            if stop:
                break
            if submitted < len(tasks):
                queue.add(submit(submitted))
                submitted += 1
    except Exception as exc:  # noqa: BLE001 - any worker failure ends the run with a clear error
        raise RunError(f"a chunk failed on the Dask cluster: {type(exc).__name__}: {exc}") from exc
    finally:
        queue.clear()
        if inflight:
            client.cancel([f for _, f in inflight.values()])


_WORKER_CONFIG = {
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_ set, which also pins glibc's mmap
    # threshold at 128 KiB: every chunk-sized temporary is then a fresh mmap that page-faults
    # on first touch (about twice a serial run's system time). Unset, workers allocate as a
    # serial run does.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # The statistical profiler samples every worker thread each 10 ms for a dashboard we do
    # not serve; on 2 cores it costs 15-20 % of a worker's CPU time.
    "distributed.worker.profile.enabled": False,
    # Every server's event loop wakes each 20 ms to check its own latency: 0.08 CPU-s per
    # second in the client process while idle, 0.025 at 500 ms (still well under the 3 s
    # after which Dask warns of a blocked loop).
    "distributed.admin.tick.interval": "500ms",
}
"""Dask settings of the LocalCluster's scheduler, nannies and workers (read as they start)."""


@contextlib.contextmanager
def dask_client(*, workers: int | None = None, scheduler: str | None = None,
                timeout: float = 10.0) -> Iterator[Any]:
    """A Dask client on a new LocalCluster (``workers`` processes) or an existing ``scheduler``.

    Yields ``None`` when neither is given (run serially). The LocalCluster listens on
    loopback only, has no dashboard, runs one thread per worker process with the settings of
    :data:`_WORKER_CONFIG`, and is closed on exit.

    Raises
    ------
    RunError
        If dask.distributed is not installed, or the scheduler cannot be reached within
        ``timeout`` [s].
    """
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise RunError("use --workers (a new local cluster) or --scheduler (an existing one), not both")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise RunError("Dask runs need dask.distributed: pip install 'minersim[parallel]'") from exc
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise RunError(f"cannot reach the Dask scheduler at {scheduler}: {exc} (is `dask scheduler` "
                               "running there, and is the address right?)") from None
        else:
            import dask

            with dask.config.set(_WORKER_CONFIG):
                cluster = stack.enter_context(LocalCluster(
                    n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                    # The scheduler serves HTTP (health, metrics) even without a dashboard: bind
                    # it to loopback on a free port, so a second cluster never contends for :8787.
                    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=40))
            client = Client(cluster, set_as_default=False)
        stack.enter_context(client)
        yield client
