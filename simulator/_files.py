"""Atomic writes, run directories, and the shipped templates and scenarios.

Every file minersim writes goes through :func:`atomic_write` (temp file in the target
directory, fsync, ``os.replace``), so a failed or interrupted run never leaves a half file
or clobbers a good one.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from simulator.errors import RunError

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    On any exception (including KeyboardInterrupt, or SIGTERM turned into SystemExit) the
    temporary file is removed and ``target`` is left as it was. The temporary file's name
    carries this process's id, so a run killed outright (SIGKILL) leaves a file that
    :func:`remove_stale_temporaries` recognises and removes.

    Raises
    ------
    RunError
        If ``target`` exists and is not a regular file (a device, FIFO or directory is
        never replaced), its directory cannot be created or written, or a write fails
        (disk full, I/O error: any ``OSError`` of the block, see :func:`writing`).
    """
    target = Path(target)
    check_output_file(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{target.parent}: cannot create the output directory ({exc.strerror})") from None
    tmp_path: Path | None = None
    try:
        with signals_held():  # the file must not exist before its removal below is armed
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=_TMP_SUFFIX,
                                           dir=target.parent)
            except OSError as exc:
                raise RunError(f"{target.parent}: cannot write there ({exc.strerror})") from None
            tmp_path = Path(tmp)
            os.close(fd)
        with writing(target):
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
            yield tmp_path
            sync(tmp_path)
            os.replace(tmp_path, target)
    except BaseException:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise


@contextlib.contextmanager
def writing(target: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block (ENOSPC, EIO, EFBIG, ...) into a RunError naming ``target``.

    :func:`atomic_path` wraps its block in this; a caller that writes two temporary files in
    one block wraps each write, so that the message names the file whose write failed.
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise RunError(f"{target}: cannot write the file ({reason}); the previous file, "
                       "if any, is as it was") from None


_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def check_output_file(target: str | os.PathLike[str]) -> None:
    """Refuse an output path that is anything but a regular file or not there yet.

    Raises
    ------
    RunError
        If ``target`` is a directory, a device, a FIFO or a socket, or its parent exists
        and is not a directory.
    """
    target = Path(target)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise RunError(f"{target}: cannot write an output there ({exc.strerror})") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise RunError(f"{target}: is {kind}; minersim only ever replaces regular files "
                       "(give a file path)")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunError(f"{target}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunError(f"{target}: {parent} is not writable")
            break


def check_output_dir(directory: str | os.PathLike[str], option: str = "--out") -> Path:
    """Make sure ``directory`` is, or can become, a writable directory; return it.

    Called before a run simulates anything, so a bad ``--out`` (or ``option``) costs nothing.
    Nothing is created here: a run that fails before writing leaves no empty directory behind.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunError(f"{directory}: exists and is not a directory (give {option} a directory)")
    for existing in (directory, *directory.parents):
        if existing.exists():
            if not existing.is_dir():
                raise RunError(f"{directory}: {existing} is not a directory, so the output "
                               "directory cannot be created")
            if not os.access(existing, os.W_OK | os.X_OK):
                what = "the output directory" if existing == directory else f"{existing}"
                raise RunError(f"{directory}: {what} is not writable")
            break
    return directory


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary outputs left in ``directory`` by runs whose process is gone.

    A run killed outright (SIGKILL, power loss) cannot clean up after itself; the next run
    in the same directory does. Files of a process that is still alive are left alone.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in Path(directory).iterdir():
            match = _TMP_NAME.match(entry.name)
            if match and entry.is_file() and not _alive(int(match["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


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
