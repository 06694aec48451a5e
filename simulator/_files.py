"""Atomic writes, run directories, and the shipped templates and scenarios.

Every file minersim writes goes through :func:`atomic_write` (temp file in the target
directory, fsync, ``os.replace``), so a failed or interrupted run never leaves a half file
or clobbers a good one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    On any exception (including KeyboardInterrupt, or SIGTERM turned into SystemExit) the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path: Path | None = None
    try:
        with signals_held():  # the file must not exist before its removal below is armed
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            tmp_path = Path(tmp)
            os.close(fd)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        yield tmp_path
        sync(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise


def sync(path: str | os.PathLike[str]) -> None:
    """Flush ``path``'s data to disk (``fsync``): what :func:`atomic_path` does before renaming.

    A caller with time to spare while something else finishes may sync early; the rename's
    own sync then finds nothing left to write.
    """
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Note SIGINT and SIGTERM during the block and deliver them when it ends.

    For the few steps between creating a file (or a process) and arming its cleanup: an
    exception raised by a signal handler in between would leave it behind. Python runs
    signal handlers in the main thread only, so elsewhere there is nothing to hold.
    """
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() \
            or any(signal.getsignal(s) is None for s in held):  # handlers set outside Python
        yield
        return
    noted: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: noted.append(signum)) for s in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in noted:
            signal.raise_signal(signum)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(target: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
    return Path(target)


def _shipped_dir(name: str) -> Path:
    """Directory of shipped ``templates`` or ``scenarios``.

    Installed, they are package data beside this file (``simulator/templates``); in a source
    checkout they sit at the repository's top level, where users find them.
    """
    installed = Path(__file__).resolve().parent / name
    if installed.is_dir():
        return installed
    with contextlib.suppress(ModuleNotFoundError, TypeError, NotImplementedError):
        # An editable install maps ``simulator.<name>`` onto the top-level folder.
        for entry in resources.files(f"simulator.{name}").iterdir():
            return Path(str(entry)).parent
    return _SOURCE_ROOT / name


def templates_dir() -> Path:
    return _shipped_dir("templates")


def scenarios_dir() -> Path:
    return _shipped_dir("scenarios")


def run_dir(scenario_path: str | os.PathLike[str], out: str | os.PathLike[str] | None) -> Path:
    """Default output directory ``runs/<scenario stem>/`` unless ``out`` is given."""
    if out is not None:
        return Path(out)
    return Path("runs") / Path(scenario_path).stem
