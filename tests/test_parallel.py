"""Chunk plan, block-ordered reductions, and Dask runs that match serial runs bit for bit."""

from __future__ import annotations

import os
import signal
import socket

import numpy as np
import pytest

from simulator.scenario import history
from simulator.errors import RunError
from simulator.run.execute import InProcessExecutor, dask_client, run_chunks
from simulator.run.plan import aligned_chunks
from simulator.run.reduce import ChunkResult, Reducer, combine_stats
from simulator.rng import BLOCK_PATHS
from simulator.run import simulate
from support import assert_same_data


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


@pytest.mark.parametrize("paths, chunk, expected", [
    (5_000, 1_000, [(0, 1_024), (1_024, 2_048), (2_048, 3_072), (3_072, 4_096), (4_096, 5_000)]),
    (9_000, 7_777, [(0, 8_192), (8_192, 9_000)]),
    (100, 8_192, [(0, 100)]),
    (2_048, 1, [(0, 1_024), (1_024, 2_048)]),
])
def test_chunks_are_whole_blocks(paths, chunk, expected):
    assert BLOCK_PATHS == 1_024
    assert aligned_chunks(paths, chunk) == expected


def test_pooled_block_stats_equal_the_two_pass_formulas():
    rng = np.random.default_rng(0)
    x = rng.lognormal(3.0, 1.0, size=(2_500, 4))
    edges = [0, 1_024, 2_048, 2_500]
    parts = [x[a:b] for a, b in zip(edges[:-1], edges[1:])]
    counts = np.array([p.shape[0] for p in parts], dtype=float)
    means = np.stack([p.mean(axis=0) for p in parts])
    m2s = np.stack([((p - p.mean(axis=0)) ** 2).sum(axis=0) for p in parts])
    n, mean, m2 = combine_stats(counts, means, m2s)
    assert n == 2_500
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m2 / (n - 1), x.var(axis=0, ddof=1), rtol=1e-12)


def _fake(start: int, stop: int, store: int) -> ChunkResult:
    """A chunk whose values are functions of the path index, so placement can be checked."""
    idx = np.arange(start, stop, dtype=np.float64)
    series = np.outer(idx, [1.0, 2.0, 3.0])
    stats = {"btc_price": (np.array([stop - start], dtype=float), series.mean(axis=0)[None],
                           ((series - series.mean(axis=0)) ** 2).sum(axis=0)[None])}
    keep = max(0, min(stop, store) - start)
    return ChunkResult(start, stop, {"value_per_share": idx.copy()},
                       {"btc_price": series[:keep]} if keep else {}, stats, {"x": -idx})


def test_reducer_is_order_free_grows_and_drops_chunks_past_the_stop():
    plan = aligned_chunks(5_000, 1_024)
    reducer = Reducer(capacity=1_024, limit=5_000, store_paths=1_500)
    for a, b in reversed(plan):
        reducer.add(_fake(a, b, 1_500))
    full = reducer.finish(5_000)
    np.testing.assert_array_equal(full.per_path["value_per_share"], np.arange(5_000.0))
    np.testing.assert_array_equal(full.inputs["x"], -np.arange(5_000.0))
    np.testing.assert_array_equal(full.series["btc_price"], np.outer(np.arange(1_500.0), [1, 2, 3]))
    np.testing.assert_allclose(full.summary["btc_price_mean"], 2_499.5 * np.array([1, 2, 3]), rtol=1e-14)
    # var of 0..N-1 is N(N+1)/12 with ddof=1
    np.testing.assert_allclose(full.summary["btc_price_std"],
                               np.sqrt(5_000 * 5_001 / 12) * np.array([1, 2, 3]), rtol=1e-12)
    part = reducer.finish(2_048)
    assert part.per_path["value_per_share"].shape == (2_048,)
    assert part.series["btc_price"].shape == (1_500, 3)
    np.testing.assert_allclose(part.summary["btc_price_mean"], 1_023.5 * np.array([1, 2, 3]), rtol=1e-14)


def test_execute_refuses_an_empty_plan():
    with pytest.raises(RunError, match="nothing to simulate"):
        run_chunks(None, [], InProcessExecutor(), window=1)


def test_dask_run_is_bit_identical_to_serial(base12, client):
    """Two worker processes on loopback, chunks finishing in any order: same cube data."""
    serial = simulate(base12, paths=6_000, seed=21, chunk_paths=1_024, store_paths=2_500)
    seen = []
    dask = simulate(base12, paths=6_000, seed=21, chunk_paths=1_024, store_paths=2_500, client=client,
                    progress=lambda done, total: seen.append((done, total)))
    assert_same_data(serial, dask)
    assert seen == [(i, 6) for i in range(1, 7)]


def test_dask_adaptive_run_stops_where_the_serial_one_does(base12, client):
    fixed = simulate(base12, paths=4_096, seed=8, chunk_paths=1_024, store_paths=0)
    v = fixed["value_per_share"].values
    se2 = v[:2_048].std(ddof=1) / np.sqrt(2_048)
    serial = simulate(base12, seed=8, chunk_paths=1_024, store_paths=0, precision=se2 * 1.000001,
                      max_paths=8_192)
    dask = simulate(base12, seed=8, chunk_paths=1_024, store_paths=0, precision=se2 * 1.000001,
                    max_paths=8_192, client=client)
    assert serial.attrs["paths"] == dask.attrs["paths"] <= 2_048
    assert_same_data(serial, dask)


def _worker_settings() -> tuple[str | None, bool]:
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get("distributed.worker.profile.enabled")


@pytest.mark.skipif("MALLOC_TRIM_THRESHOLD_" in os.environ, reason="set in the environment the workers inherit")
def test_local_workers_keep_glibc_defaults_and_no_profiler(client):
    """Workers allocate as a serial run does (no MALLOC_TRIM_THRESHOLD_, which pins the mmap
    threshold) and do not sample their own stacks for a dashboard that is not served."""
    assert set(client.run(_worker_settings).values()) == {(None, False)}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_run_error():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(RunError) as info:
        with dask_client(scheduler=address, timeout=0.5):
            pass
    message = str(info.value)
    assert message.startswith(f"cannot reach the Dask scheduler at {address}: ")
    assert message.endswith("(is `dask scheduler` running there, and is the address right?)")
    assert info.value.exit_code == 2


def test_workers_and_scheduler_exclude_each_other():
    with pytest.raises(RunError, match="not both"):
        with dask_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass


@pytest.mark.slow
def test_a_lost_worker_chunks_are_recomputed(base12):
    """SIGKILL one worker process after the first chunk lands; the nanny restarts it, the
    scheduler reruns its chunks, and the cube still equals the serial one."""
    serial = simulate(base12, paths=8_192, seed=4, chunk_paths=1_024, store_paths=1_024)
    with dask_client(workers=2) as c:
        pids = list(c.run(os.getpid).values())
        killed = []

        def kill_once(done: int, total: int) -> None:
            if not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        dask = simulate(base12, paths=8_192, seed=4, chunk_paths=1_024, store_paths=1_024, client=c,
                        progress=kill_once)
        assert killed and pids[0] not in c.run(os.getpid).values()
    assert_same_data(serial, dask)


def test_bootstrap_history_is_read_once_and_workers_need_no_copy(base12, client, monkeypatch):
    """The CSV path names no file at all: only the client 'reads' it (stubbed here), once per
    run, so the Dask workers, which never see the stub, must get the returns with the run."""
    data = base12.model_dump()
    data["market"]["btc"]["process"] = {"kind": "bootstrap", "csv": "/nonexistent/minersim.csv",
                                        "block_months": 3}
    data["correlations"] = []
    scenario = type(base12).model_validate(data)
    returns = np.random.default_rng(5).normal(0.01, 0.15, 60)
    calls = []

    def read(path, **_options):
        calls.append(path)
        return returns

    monkeypatch.setattr(history, "read_close_csv", read)
    monkeypatch.setattr(history, "file_sha256", lambda path: "f" * 64)
    serial = simulate(scenario, paths=3_000, seed=4, chunk_paths=1_024)
    assert calls == ["/nonexistent/minersim.csv"]  # three chunks, one read
    on_dask = simulate(scenario, paths=3_000, seed=4, chunk_paths=1_024, client=client)
    assert_same_data(serial, on_dask)
    assert len(calls) == 2
    assert serial.attrs["history_sha256"] == on_dask.attrs["history_sha256"] == "f" * 64


_POOLED_RUNS = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from simulator.run import simulate
from support import short_scenario

def digest(cube):
    h = hashlib.sha256()
    for name in sorted([*cube.data_vars, *cube.coords]):
        values = cube[name].values
        h.update(name.encode())
        h.update(values.tobytes() if values.dtype.kind != "O" else repr(values.tolist()).encode())
    return h.hexdigest()

sc = short_scenario(24)
runs = {
    "here": simulate(sc, 2_500, 11, processes=1),
    "2 processes": simulate(sc, 2_500, 11, processes=2),
    "3 processes, 1,024-path chunks": simulate(sc, 2_500, 11, processes=3, chunk_paths=1_024),
    "latin hypercube here": simulate(sc, 2_500, 11, "latin_hypercube", processes=1),
    "latin hypercube, 2 processes": simulate(sc, 2_500, 11, "latin_hypercube", processes=2),
}
print(runs["2 processes"].attrs["chunk_paths"], runs["here"].attrs["chunk_paths"])
print(len({digest(runs[k]) for k in list(runs)[:3]}), len({digest(runs[k]) for k in list(runs)[3:]}))
adaptive = simulate(sc, seed=11, precision=1e9, max_paths=6_144, chunk_paths=1_024, processes=2)
fixed = simulate(sc, adaptive.attrs["paths"], 11, processes=1, chunk_paths=1_024)
print(adaptive.attrs["paths"], digest(adaptive) == digest(fixed))
"""


def test_pooled_processes_give_the_serial_numbers():
    """Chunks on a local process pool: the same cube bit for bit, whatever the split.

    In a fresh interpreter, so the pool's forkserver starts from a clean process. The default
    chunk shrinks so that each process has one (2,500 paths on two: 1,250 rounded up to whole
    blocks, 2,048 + 452). An adaptive run that has its paths after the first chunk equals the
    fixed run of as many paths.
    """
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", _POOLED_RUNS, str(Path(__file__).parent)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["2048 2500", "1 1", "1024 True"]
