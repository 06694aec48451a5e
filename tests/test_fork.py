"""The prepared forked child that renders the report: results, errors and deaths reach the parent.

Each case runs in a fresh interpreter: ``forked`` falls back to an in-process job while other
threads are alive, and a pytest process that has used Dask keeps one, so in the suite's own
process the child would never be forked.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PRELUDE = """
import os, signal, sys, threading
from simulator._fork import forked
from simulator.errors import RunError
assert threading.active_count() == 1
"""

CASES = {
    # fn runs in another process, after prepare, with the arguments submitted later.
    "result": """
def fn(path, parent):
    with open(path, "w") as f:
        f.write(f"{os.getpid() != parent} {PREPARED}")
PREPARED = False
def prepare():
    global PREPARED
    PREPARED = True
out = sys.argv[1]
with forked(prepare, fn) as job:
    assert job.concurrent
    job.submit(out, os.getpid())
print(open(out).read())
""",
    # An exception raised by fn in the child is raised again by the parent's join.
    "error": """
def fn():
    raise ValueError("bad chart")
try:
    with forked(lambda: None, fn) as job:
        job.submit()
except ValueError as exc:
    print("ValueError", exc)
""",
    # A child that dies without a word is a RunError naming the signal.
    "killed": """
def fn():
    os.kill(os.getpid(), signal.SIGKILL)
try:
    with forked(lambda: None, fn) as job:
        job.submit()
except RunError as exc:
    print("RunError", exc)
""",
    # The body failing kills and reaps the child before the exception leaves the with.
    "body_fails": """
import time
def fn():
    time.sleep(60)
pid = None
try:
    with forked(lambda: None, fn) as job:
        pid = job._pid
        job.submit()
        raise KeyboardInterrupt
except KeyboardInterrupt:
    try:
        os.kill(pid, 0)
        print("child alive")
    except ProcessLookupError:
        print("child gone")
""",
}

EXPECTED = {
    "result": "True True",
    "error": "ValueError bad chart",
    "killed": "RunError the process rendering the report died (killed by signal 9)",
    "body_fails": "child gone",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forked_child(case, tmp_path):
    done = subprocess.run([sys.executable, "-c", _PRELUDE + CASES[case], str(tmp_path / "out.txt")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == EXPECTED[case]
