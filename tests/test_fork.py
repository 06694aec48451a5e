"""Forked children: the prepared one that renders the report, and the helpers sharing calls.

Results, errors and deaths reach the parent; no child outlives what forked it. Each case runs
in a fresh interpreter: ``forked`` and ``imap_forked`` fall back to this process while other
threads are alive, and a pytest process that has used Dask keeps one, so in the suite's own
process nothing would be forked.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PRELUDE = """
import os, signal, sys, threading
from simulator._fork import forked, imap_forked, map_forked
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
    # Large arrays reach the child through shared memory, whole and writable (copy on write:
    # the child's writes never reach the parent).
    "arrays": """
import numpy as np
def fn(path, arrays, meta):
    a, b = arrays["a"], arrays["b"]
    ok = a.flags.writeable and a.sum() == 2 ** 21 * (2 ** 21 - 1) // 2 and b.T.tolist() == meta
    address = a.ctypes.data
    mapped = "not linux"
    if sys.platform.startswith("linux"):
        for line in open("/proc/self/maps"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                mapped = "memfd:minersim-job" in line
    a[:] = -1
    with open(path, "w") as f:
        f.write(f"{ok} {mapped}")
arrays = {"a": np.arange(2 ** 21, dtype=np.int64), "b": np.asfortranarray(np.ones((3, 2)))}
with forked(lambda: None, fn) as job:
    job.submit(sys.argv[1], arrays, np.ones((2, 3)).tolist())
print(open(sys.argv[1]).read(), int(arrays["a"][-1]))
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

HELPER_CASES = {
    # Results come back in call order, each computed in the process its share names.
    "order": """
calls = [lambda i=i: (i, os.getpid()) for i in range(7)]
out = map_forked(calls, processes=3)
pids = {pid for _, pid in out}
shares = [[pid for i, pid in out if i % 3 == k] for k in range(3)]
print([i for i, _ in out], len(pids), all(len(set(s)) == 1 for s in shares), out[0][1] == os.getpid())
""",
    # A helper's exception is raised here; the helpers are reaped (no child is left).
    "error": """
def bad():
    raise ValueError("bad call")
try:
    map_forked([lambda: 1, bad, lambda: 3, lambda: 4], processes=2)
except ValueError as exc:
    print("ValueError", exc)
try:
    os.wait()
    print("a child was left")
except ChildProcessError:
    print("no child left")
""",
    # A helper that dies without a word is a RunError naming the signal.
    "killed": """
try:
    map_forked([lambda: 1, lambda: os.kill(os.getpid(), signal.SIGKILL)], processes=2)
except RunError as exc:
    print("RunError", exc)
""",
    # Closing the iterator early (an adaptive run that has enough paths) kills the helpers.
    "close": """
import time
def slow(i):
    time.sleep(0 if i % 2 == 0 else 30)
    return i
it = imap_forked([lambda i=i: slow(i) for i in range(6)], processes=2)
first = next(it)
it.close()
try:
    os.wait()
    print(first, "a child was left")
except ChildProcessError:
    print(first, "no child left")
""",
    # A helper dies with the process that forked it (Linux: PR_SET_PDEATHSIG).
    "orphan": """
import time
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    def report_pid():
        os.write(w, str(os.getpid()).encode())
        time.sleep(60)
    gen = imap_forked([lambda: time.sleep(60), report_pid], processes=2)
    next(gen)
    os._exit(0)
helper = int(os.read(r, 32))
os.kill(middle, signal.SIGKILL)
os.waitpid(middle, 0)
for _ in range(100):
    try:
        os.kill(helper, 0)
    except ProcessLookupError:
        print("helper gone")
        break
    time.sleep(0.05)
else:
    print("helper alive")
""",
    # Explicit shares: the helper takes calls 0, 1 and 3; a share past the processes is refused.
    "shares": """
out = map_forked([os.getpid] * 5, processes=2, shares=[1, 1, 0, 1, 0])
print([pid == os.getpid() for pid in out])
try:
    map_forked([os.getpid] * 2, processes=2, shares=[0, 2])
except ValueError as exc:
    print(str(exc).split(" (")[0])
""",
    # With another thread alive every call runs here, in order.
    "threads": """
import time
t = threading.Thread(target=time.sleep, args=(2,))
t.start()
print({pid for pid in map_forked([os.getpid] * 4, processes=2)} == {os.getpid()})
""",
}

HELPER_EXPECTED = {
    "order": "[0, 1, 2, 3, 4, 5, 6] 3 True True",
    "error": "ValueError bad call\nno child left",
    "killed": "RunError a forked helper process died (killed by signal 9)",
    "close": "0 no child left",
    "orphan": "helper gone",
    "threads": "True",
    "shares": "[False, False, True, False, True]\nshares must give each of the 2 calls a process in 0..1",
}

EXPECTED = {
    "result": "True True",
    "arrays": "True True 2097151",
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and PR_SET_PDEATHSIG: Linux")
@pytest.mark.parametrize("case", sorted(HELPER_CASES))
def test_forked_helpers(case):
    done = subprocess.run([sys.executable, "-c", _PRELUDE + HELPER_CASES[case]],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == HELPER_EXPECTED[case]
