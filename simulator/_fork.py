"""Forked child processes: one prepared in advance for a later call, and helpers sharing calls.

``minersim run`` forks a child before it simulates: the child imports what the report needs
while the parent works, then renders the report from arguments sent later while the parent
writes results.nc (:mod:`simulator.runner`). :func:`forked` gives the ``with`` body a
:class:`Job`: :meth:`Job.submit` sends the arguments down a pipe, pickled; :meth:`Job.join`
waits and re-raises the child's exception, if any, sent back pickled. :func:`imap_forked`
(and :func:`map_forked`) share a list of calls between this process and forked helpers that
read this process's memory as it is (a run's chunks and the scenario they simulate; the
report's charts and the cube they draw) and send back only results. Where fork is
unavailable or unsafe (other threads alive), both run their calls in this process instead.
A child never runs the parent's ``finally`` blocks or exit handlers, so it cannot remove or
rename the parent's files, and on Linux it dies with its parent.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from simulator._files import signals_held
from simulator.errors import RunError

T = TypeVar("T")


class Job:
    """One call of ``fn``, run by a forked child (see :func:`forked`) or, failing that, here.

    :meth:`submit` hands over the arguments; :meth:`join` waits for the call to finish and
    re-raises its exception, if any.
    """

    concurrent = False
    """Whether the call runs while this process goes on (True in a child)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._args: tuple[Any, ...] | None = None

    def submit(self, *args: Any) -> None:
        self._args = args

    def join(self) -> None:
        args, self._args = self._args, None
        if args is not None:
            self._fn(*args)

    def kill(self) -> None:
        self._args = None


class ChildJob(Job):
    """The call runs in child ``pid``: arguments go down ``jobs`` pickled, errors come back.

    Where there is a ``shared`` memory file (Linux ``memfd``, made before the fork so the
    child has it too), the arguments' large buffers (NumPy arrays: the cube) are copied into
    it once and the child maps them instead of reading a copy through the pipe: 0.13 s
    instead of 0.2 s from the simulation's end to the report's start, 10,000 paths. Only the pickle's skeleton goes down the pipe.
    """

    concurrent = True

    def __init__(self, pid: int, jobs: int, errors: int, shared: int | None = None) -> None:
        self._pid: int | None = pid
        self._jobs = os.fdopen(jobs, "wb")
        self._errors = errors
        self._shared = shared

    def submit(self, *args: Any) -> None:
        message: tuple[Any, ...] = (args,)  # in the pipe, buffers and all
        if self._shared is not None:
            buffers: list[pickle.PickleBuffer] = []
            data = pickle.dumps(args, protocol=5, buffer_callback=buffers.append)
            with contextlib.suppress(OSError):  # out of shared memory: the pipe will do
                message = (data, _put_buffers(self._shared, buffers))
        # A child that failed before reading says why in join().
        with contextlib.suppress(BrokenPipeError):
            pickle.dump(message, self._jobs, protocol=pickle.HIGHEST_PROTOCOL)
            self._jobs.close()

    def join(self) -> None:
        if self._pid is None:
            return
        with contextlib.suppress(BrokenPipeError):
            self._jobs.close()  # a child never given a job exits quietly
        error = _read_all(self._errors)
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if error:
            raise pickle.loads(error)
        if status != 0:
            raise RunError(f"the process rendering the report died ({_exit_reason(status)})")

    def kill(self) -> None:
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._jobs.close()
        with contextlib.suppress(OSError):
            os.close(self._errors)
        if self._shared is not None:
            with contextlib.suppress(OSError):
                os.close(self._shared)


def _put_buffers(fd: int, buffers: list[pickle.PickleBuffer]) -> list[int]:
    """Copy ``buffers`` end to end into the memory file ``fd``; their sizes in bytes."""
    import mmap

    raws = [buf.raw() for buf in buffers]
    sizes = [raw.nbytes for raw in raws]
    os.ftruncate(fd, max(sum(sizes), 1))
    with mmap.mmap(fd, max(sum(sizes), 1)) as memory:
        offset = 0
        for raw, size in zip(raws, sizes, strict=True):
            memory[offset:offset + size] = raw
            offset += size
    return sizes


def _get_args(fd: int | None, message: tuple[Any, ...]) -> Any:
    """The arguments :meth:`ChildJob.submit` sent, their buffers mapped from the memory file.

    Mapped copy-on-write: the pages are the parent's until the child writes to one.
    """
    if len(message) == 1:
        return message[0]
    import mmap

    data, sizes = message
    if not sizes:
        return pickle.loads(data)
    memory = memoryview(mmap.mmap(fd, max(sum(sizes), 1), access=mmap.ACCESS_COPY))
    views, offset = [], 0
    for size in sizes:
        views.append(memory[offset:offset + size])
        offset += size
    return pickle.loads(data, buffers=views)


def _memory_file() -> int | None:
    """An anonymous shared memory file (Linux), or None where there is none."""
    if not hasattr(os, "memfd_create"):
        return None
    try:
        return os.memfd_create("minersim-job")
    except OSError:
        return None


@contextlib.contextmanager
def forked(prepare: Callable[[], Any], fn: Callable[..., Any], *,
            enabled: bool = True) -> Iterator[Job]:
    """A child process that runs ``prepare()`` at once, then ``fn`` on arguments sent later.

    The ``with`` body gets a :class:`Job`. Leaving the body normally waits for the child.
    If the body raises (including SIGTERM turned into SystemExit, or KeyboardInterrupt),
    the child is killed and reaped first, so that no process is left writing once the
    caller's temporary files are removed. The child ignores SIGINT (Ctrl-C reaches the whole
    process group; the parent decides) and dies on SIGTERM.

    ``fn`` runs in this process instead, on :meth:`Job.join`, where fork is unavailable or
    unsafe: with other threads alive (a Dask client), a lock one of them holds would stay
    held in the child. ``enabled=False`` gives such an in-process job too (never submitted).
    """
    if not enabled or not _fork_safe():
        job = Job(fn)
        try:
            yield job
            job.join()
        finally:
            job.kill()
        return
    jobs_r, jobs_w = os.pipe()
    errors_r, errors_w = os.pipe()
    shared = _memory_file()
    parent = os.getpid()
    child: ChildJob | None = None
    try:
        # Held: a handler raising inside the interpreter's own at-fork hooks would be
        # swallowed there (the run would carry on), or could leave a child nobody kills.
        with signals_held():
            pid = os.fork()
            if pid == 0:
                os.close(jobs_w)
                os.close(errors_r)
                _child(jobs_r, errors_w, shared, prepare, fn, parent)
            child = ChildJob(pid, jobs_w, errors_r, shared)
        os.close(jobs_r)
        os.close(errors_w)
        yield child
        child.join()
    finally:
        if child is not None:
            child.kill()
            child.close()
        elif shared is not None:
            os.close(shared)


def _child(jobs: int, errors: int, shared: int | None, prepare: Callable[[], Any],
           fn: Callable[..., Any], parent: int) -> NoReturn:
    """Body of the forked child: prepare, wait for arguments, run ``fn``; never return.

    Any exception goes back to the parent pickled. ``os._exit`` skips the parent's
    ``finally`` blocks and exit handlers copied into this process, which must not remove or
    rename the parent's files.
    """
    status = 0
    try:
        _child_signals(parent)
        prepare()
        # What is prepared lives as long as the child: spare the collector from re-scanning it
        # (about 0.15 s over the report's thousands of matplotlib objects).
        gc.freeze()
        with os.fdopen(jobs, "rb") as pipe:
            try:
                args = _get_args(shared, pickle.load(pipe))
            except EOFError:  # the parent had nothing for us
                args = None
        if args is not None:
            fn(*args)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        status = 1
        with contextlib.suppress(OSError), os.fdopen(errors, "wb") as pipe:
            pipe.write(pickle.dumps(_picklable(exc, "rendering the report")))
    finally:
        os._exit(status)


def map_forked(calls: Sequence[Callable[[], T]], *, processes: int = 2,
               shares: Sequence[int] | None = None) -> list[T]:
    """``[call() for call in calls]``, the calls dealt between this process and helpers.

    The list form of :func:`imap_forked`; see there.
    """
    return list(imap_forked(calls, processes=processes, shares=shares))


def imap_forked(calls: Sequence[Callable[[], T]], *, processes: int = 2,
                shares: Sequence[int] | None = None) -> Iterator[T]:
    """Yield ``call()`` for each of ``calls`` in order, the calls dealt between processes.

    For CPU-bound calls that read large data this process holds: a forked helper reads it
    in place, without a copy, and sends back only its results, pickled. Call ``i`` runs in
    share ``shares[i]`` (default ``i % processes``): this process runs share 0, one forked
    helper each of the others, so deal shares of similar cost. A helper sends each result as
    soon as it has it and waits (the pipe full) until it is taken, so at most about one
    result per helper is in flight: memory stays bounded however many calls there are.
    Results are the objects a serial run would give, in the same order.

    Raises
    ------
    Exception
        The first failing call's own exception, whichever process ran it.
    RunError
        If a helper died without saying why (killed, out of memory).

    Notes
    -----
    Every call runs here, in order, where fork is unavailable or unsafe (other threads
    alive), or when there is only one share to run. A helper ignores SIGINT (the process that
    forked it decides) and dies with its parent. When the iteration stops early (an error,
    an interrupt, or the consumer closing the generator) the helpers are killed and reaped
    before control leaves.
    """
    shares = [i % processes for i in range(len(calls))] if shares is None else list(shares)
    if len(shares) != len(calls) or not all(0 <= k < processes for k in shares):
        raise ValueError(f"shares must give each of the {len(calls)} calls a process in "
                         f"0..{processes - 1} (got {shares})")
    dealt = {k: [call for call, share in zip(calls, shares) if share == k] for k in set(shares)}
    if len(dealt.keys() - {0}) == 0 or not _fork_safe():
        for call in calls:
            yield call()
        return
    helpers: dict[int, tuple[int, Any]] = {}  # share -> (pid, read end of its result pipe)
    parent = os.getpid()
    try:
        for share in sorted(dealt.keys() - {0}):
            read, write = os.pipe()
            _widen(write)
            with signals_held():  # the helper must be in ``helpers`` before a signal can strike
                pid = os.fork()
                if pid == 0:
                    os.close(read)
                    _helper(write, dealt[share], parent)
                helpers[share] = (pid, os.fdopen(read, "rb"))
            os.close(write)
        for call, share in zip(calls, shares, strict=True):
            yield call() if share == 0 else _receive(helpers, share)
    finally:
        for pid, pipe in helpers.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
            pipe.close()


def _receive(helpers: dict[int, tuple[int, Any]], share: int) -> Any:
    """The next result from helper ``share``; its exception raised, or its death reported."""
    pid, pipe = helpers[share]
    try:
        ok, value = pickle.load(pipe)
    except EOFError:
        del helpers[share]
        pipe.close()
        _, status = os.waitpid(pid, 0)
        raise RunError(f"a forked helper process died ({_exit_reason(status)})") from None
    if not ok:
        raise value
    return value


def _helper(write: int, calls: Sequence[Callable[[], Any]], parent: int) -> NoReturn:
    """Body of an :func:`imap_forked` helper: ``(True, result)`` per call, or ``(False, error)``."""
    status = 0
    try:
        _child_signals(parent)
        with os.fdopen(write, "wb") as pipe:
            for call in calls:
                try:
                    item = (True, call())
                except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
                    status = 1
                    item = (False, _picklable(exc, "a call in a forked helper"))
                pickle.dump(item, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.flush()
                del item
                if status:
                    break
    except BaseException:  # noqa: BLE001 - the parent reports the death by exit status
        status = 1
    finally:
        os._exit(status)


def _widen(fd: int) -> None:
    """Give a pipe 1 MB of buffer where Linux allows it: fewer switches per large result."""
    if sys.platform.startswith("linux"):
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ


def _fork_safe() -> bool:
    """Whether this process may fork: it can, and no other thread holds a lock it would copy."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _child_signals(parent: int) -> None:
    """Signals of a child forked by ``parent``: it decides on Ctrl-C; SIGTERM or its death kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
        if os.getppid() != parent:  # it died before the request took effect
            os._exit(1)


def _picklable(exc: BaseException, doing: str) -> BaseException:
    """``exc``, or a RunError naming it if it does not survive pickling."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        return RunError(f"{doing} failed: {exc!r}")
    return exc


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
