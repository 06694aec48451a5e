"""Running a run's chunks: one execution path through a ``concurrent.futures.Executor``.

Locally the executor is a process pool with one worker per usable core (forkserver start, so
no process is forked with threads alive), or this process alone for a one-core machine or a
one-chunk run; with ``--workers``/``--scheduler`` it is a Dask client's executor. Whichever
it is, a bounded window of chunks is in flight, each result goes to the
:class:`~simulator.run.reduce.Reducer` as it arrives and is dropped, and the reducer pools
per-block statistics in block order, so the cube is bit-identical for one process, N
processes or a cluster.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from simulator.errors import RunError
from simulator.run.plan import (ENGINE_MODULES, PeerSpec, RunSpec, run_chunk, run_peer_chunk,
                                run_pickled_chunk, run_pickled_peer_chunk)

if TYPE_CHECKING:
    from simulator.run.reduce import Reduced, Reducer

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


def local_context(preload: tuple[str, ...] = ()) -> Any:
    """The multiprocessing context of every process minersim starts on this machine.

    A forkserver where the platform has one (spawn elsewhere), so that no process is forked
    from one with threads alive. The forkserver imports the engine
    (:data:`~simulator.run.plan.ENGINE_MODULES`) and ``preload`` once, when the first process
    is started; what later calls name is imported by each process itself.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([*ENGINE_MODULES, *preload])  # read when it starts
    return context


def ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the run's own process, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class InProcessExecutor(Executor):
    """Runs each call in this process when it is submitted: one core, or one chunk."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


POOL_MIN_PATHS = 4 * 8_192
"""A run of fewer paths stays in its own process unless asked otherwise. Measured on two
cores at 10,000 paths: 1.2 s in one process, 1.5 s on a warm two-process pool, whose chunks
hand back their stored [path, time] rows (130 MB) through a pipe; at 50,000 paths the pool
takes 3.7 s against 4.9 s."""


def pool_processes(planned_paths: int) -> int:
    """Worker processes for a run of ``planned_paths`` when the caller did not say: one per
    usable core from :data:`POOL_MIN_PATHS` paths, else 1 (this process)."""
    return local_processes() if planned_paths >= POOL_MIN_PATHS else 1


def _import_engine() -> None:
    """A pool worker's first task: import what chunks need, once, before any chunk arrives."""
    import importlib

    for name in ENGINE_MODULES:
        importlib.import_module(name)


@contextlib.contextmanager
def local_executor(processes: int) -> Iterator[Executor]:
    """A process pool of ``processes`` workers, or this process alone when ``processes`` is 1.

    The workers start at once, in the background: they come from a forkserver (spawn where
    there is none), so no process is forked with threads alive. The forkserver imports the
    engine (:data:`~simulator.run.plan.ENGINE_MODULES`) once, while this process goes on
    with its own imports; every worker starts from it with the engine loaded. Created before
    the caller's heavy imports, the pool is ready when the first chunk is. On an exception,
    including KeyboardInterrupt, chunks not yet started are cancelled and the call returns
    without waiting for them (but not before a worker being started exists).
    """
    if processes <= 1:
        yield InProcessExecutor()
        return
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=local_context(), initializer=ignore_sigint)
    # Starting a worker blocks until it exists: start them from a thread, so this one goes on.
    starter = threading.Thread(target=_start_workers, args=(pool, processes), daemon=True,
                               name="minersim-pool-start")
    starter.start()
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        starter.join()
    pool.shutdown(wait=True)


def _start_workers(pool: ProcessPoolExecutor, processes: int) -> None:
    with contextlib.suppress(RuntimeError, BrokenProcessPool):  # the pool shut down first
        for _ in range(processes):
            pool.submit(_import_engine)


def run_chunks(run: RunSpec, chunks: list[tuple[int, int]], executor: Executor, *, window: int,
               progress: Progress | None = None, until: Until | None = None) -> Reduced:
    """Run ``chunks`` of ``run`` on ``executor`` and reduce them as they arrive.

    Parameters
    ----------
    run : RunSpec
        What every chunk shares.
    chunks : list of (start, stop)
        Consecutive chunks from path 0, in path order.
    executor : concurrent.futures.Executor
        :class:`InProcessExecutor`, a process pool (:func:`local_executor`) or a Dask
        client's executor. Anything but the first gets the run pickled once per run.
    window : int
        Chunks in flight at once (memory holds at most this many chunk results).
    progress : callable(done, total), optional
        Called after each chunk.
    until : callable(paths_done, mean_se) -> bool, optional
        Adaptive runs: asked after each chunk, in path order, with the standard error of the
        mean value per share [USD/share] over paths ``[0, paths_done)``; ``True`` stops the
        run there. Chunks past that point are cancelled or dropped, so the result equals a
        fixed run over ``paths_done`` paths.
    """
    from simulator.run.reduce import Reducer

    if not chunks:
        raise RunError("nothing to simulate: the chunk plan is empty")
    limit = chunks[-1][1]
    first = chunks[0][1] - chunks[0][0]
    reducer = Reducer(limit if until is None else min(limit, 8 * first), limit, run.store_paths)
    frontier = _Frontier(chunks, until)

    def arrived(index: int, result: Any) -> bool:
        reducer.add(result)
        return frontier.arrived(index, reducer)

    _drive(run, run_chunk, run_pickled_chunk, chunks, executor, window, arrived, progress)
    red = reducer.finish(frontier.paths)
    red.mean_se = frontier.precision.se
    return red


def run_peer_chunks(peers: PeerSpec, chunks: list[tuple[int, int]], executor: Executor, *, window: int,
                    progress: Progress | None = None) -> list[Reduced]:
    """Run ``chunks`` of a peer group on ``executor``: each chunk's world once, then every
    company on it (:func:`~simulator.run.plan.run_peer_chunk`); one reduction per company, in
    the group's order. Arguments as :func:`run_chunks` (no adaptive stop)."""
    from simulator.run.reduce import Reducer

    if not chunks:
        raise RunError("nothing to simulate: the chunk plan is empty")
    limit = chunks[-1][1]
    reducers = [Reducer(limit, limit, run.store_paths) for run in peers.runs]

    def arrived(index: int, results: Any) -> bool:
        for reducer, result in zip(reducers, results, strict=True):
            reducer.add(result)
        return False

    _drive(peers, run_peer_chunk, run_pickled_peer_chunk, chunks, executor, window, arrived, progress)
    return [reducer.finish(limit) for reducer in reducers]


def _drive(spec: Any, call: Callable[..., Any], pickled_call: Callable[..., Any],
           chunks: list[tuple[int, int]], executor: Executor, window: int,
           arrived: Callable[[int, Any], bool], progress: Progress | None) -> None:
    """Keep ``window`` chunks in flight and hand each result to ``arrived(index, result)`` in
    the order they finish, until every chunk is done or ``arrived`` says stop; then cancel the
    rest. ``spec`` goes to the chunks pickled once, unless ``executor`` is this process."""
    if isinstance(executor, InProcessExecutor):
        shared = spec
    else:
        call, shared = pickled_call, pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    pending: dict[Future, int] = {}
    submitted = done = 0
    stopped = False
    try:
        while pending or (submitted < len(chunks) and not stopped):
            while submitted < len(chunks) and len(pending) < max(1, window) and not stopped:
                start, stop = chunks[submitted]
                pending[executor.submit(call, shared, start, stop)] = submitted
                submitted += 1
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=pending.__getitem__):
                index = pending.pop(future)
                stopped = arrived(index, _result(future))
                done += 1
                if progress:
                    progress(done, len(chunks))
                if stopped:
                    break
            if stopped:
                break
    finally:
        for future in pending:
            future.cancel()


def _result(future: Future) -> Any:
    """A chunk's result; a worker's failure as a RunError that says what happened."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise RunError(f"a worker process died while simulating a chunk ({exc}); "
                       "rerun with --processes 1 to see the error in this process") from None
    except RunError:
        raise
    except Exception as exc:
        raise RunError(f"a chunk failed: {type(exc).__name__}: {exc}") from exc


class _Frontier:
    """Tracks the contiguous prefix of finished chunks and asks ``until`` as it advances."""

    def __init__(self, chunks: list[tuple[int, int]], until: Until | None) -> None:
        from simulator.run.reduce import PRECISION_VARIABLE, Precision

        self.chunks = chunks
        self.until = until
        self.done: set[int] = set()
        self.next = 0
        self.paths = chunks[-1][1]
        self.stopped = False
        self.precision = Precision()
        self.variable = PRECISION_VARIABLE

    def arrived(self, index: int, reducer: Reducer) -> bool:
        """Record chunk ``index`` as reduced; return True once the run should stop."""
        self.done.add(index)
        while not self.stopped and self.next in self.done:
            start, stop = self.chunks[self.next]
            self.precision.add(reducer.per_path[self.variable][start:stop])
            self.next += 1
            if self.until is not None and self.until(stop, self.precision.se):
                self.stopped, self.paths = True, stop
        return self.stopped


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


@contextlib.contextmanager
def chunk_executor(*, client: Any = None, executor: Executor | None = None, processes: int | None = None,
                   chunks: int = 2) -> Iterator[tuple[Executor, int]]:
    """The executor a run's ``chunks`` go to, and how many may be in flight at once.

    A Dask ``client``'s executor (chunks retried twice, recomputed if a worker is lost); an
    ``executor`` the caller started (a :func:`local_executor` of ``processes`` workers); or a
    new :func:`local_executor` with ``processes`` workers (default 1: this process alone, as
    for a one-chunk run).
    """
    if client is not None:
        dask_executor = client.get_executor(pure=False, retries=2)
        yield dask_executor, 2 * max(1, sum(client.nthreads().values()))
        return
    workers = min(1 if processes is None else max(1, int(processes)), chunks)
    if executor is not None:
        yield executor, 2 * workers if workers > 1 else 1
        return
    with local_executor(workers) as pool:
        yield pool, 2 * workers if workers > 1 else 1
