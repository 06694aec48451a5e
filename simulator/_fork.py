"""Run one call in a forked child process that prepared itself in advance.

``minersim run`` forks a child before it simulates: the child imports what the report needs
while the parent works, then renders the report from arguments sent later while the parent
writes results.nc (:mod:`simulator.runner`). :func:`forked` gives the ``with`` body a
:class:`Job`: :meth:`Job.submit` sends the arguments down a pipe, pickled; :meth:`Job.join`
waits and re-raises the child's exception, if any, sent back pickled. Where fork is
unavailable or unsafe (other threads alive), the same :class:`Job` interface runs the call in
this process instead. The child never runs the parent's ``finally`` blocks or exit handlers,
so it cannot remove or rename the parent's files.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from simulator._files import signals_held
from simulator.errors import RunError


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
    """The call runs in child ``pid``: arguments go down ``jobs`` pickled, errors come back."""

    concurrent = True

    def __init__(self, pid: int, jobs: int, errors: int) -> None:
        self._pid: int | None = pid
        self._jobs = os.fdopen(jobs, "wb")
        self._errors = errors

    def submit(self, *args: Any) -> None:
        # A child that failed before reading says why in join().
        with contextlib.suppress(BrokenPipeError):
            pickle.dump(args, self._jobs, protocol=pickle.HIGHEST_PROTOCOL)
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
    if not enabled or not hasattr(os, "fork") or threading.active_count() > 1:
        job = Job(fn)
        try:
            yield job
            job.join()
        finally:
            job.kill()
        return
    jobs_r, jobs_w = os.pipe()
    errors_r, errors_w = os.pipe()
    child: ChildJob | None = None
    try:
        # Held: a handler raising inside the interpreter's own at-fork hooks would be
        # swallowed there (the run would carry on), or could leave a child nobody kills.
        with signals_held():
            pid = os.fork()
            if pid == 0:
                os.close(jobs_w)
                os.close(errors_r)
                _child(jobs_r, errors_w, prepare, fn)
            child = ChildJob(pid, jobs_w, errors_r)
        os.close(jobs_r)
        os.close(errors_w)
        yield child
        child.join()
    finally:
        if child is not None:
            child.kill()
            child.close()


def _child(jobs: int, errors: int, prepare: Callable[[], Any], fn: Callable[..., Any]) -> NoReturn:
    """Body of the forked child: prepare, wait for arguments, run ``fn``; never return.

    Any exception goes back to the parent pickled. ``os._exit`` skips the parent's
    ``finally`` blocks and exit handlers copied into this process, which must not remove or
    rename the parent's files.
    """
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        prepare()
        # What is prepared lives as long as the child: spare the collector from re-scanning it
        # (about 0.15 s over the report's thousands of matplotlib objects).
        gc.freeze()
        with os.fdopen(jobs, "rb") as pipe:
            try:
                args = pickle.load(pipe)
            except EOFError:  # the parent had nothing for us
                args = None
        if args is not None:
            fn(*args)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        status = 1
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)
        except Exception:  # noqa: BLE001 - an exception that does not survive pickling
            payload = pickle.dumps(RunError(f"rendering the report failed: {exc!r}"))
        with contextlib.suppress(OSError), os.fdopen(errors, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(status)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
