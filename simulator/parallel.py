"""Chunk plan, serial or Dask execution of the engine, and the reductions over chunks.

Paths are split into chunks of whole :data:`~simulator.rng.BLOCK_PATHS` blocks. Each chunk
samples its inputs and draws its shocks from streams keyed by ``(seed, stream, block)``, so
the numbers of a path do not depend on how the run is split or where it runs. Reductions are
made per block and combined in block order, so the all-path mean and standard deviation are
bit-identical too. Dask is imported only when a cluster is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.engine import chain
from simulator.errors import RunError
from simulator.rng import BLOCK_PATHS, Draws, chunk_plan
from simulator.sampling import sample_inputs

Progress = Callable[[int, int], None]


def aligned_chunks(n_paths: int, chunk_paths: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of whole blocks (``chunk_paths`` rounded up to a block multiple)."""
    size = -(-max(chunk_paths, 1) // BLOCK_PATHS) * BLOCK_PATHS
    return chunk_plan(n_paths, size)


@dataclass(frozen=True)
class ChunkTask:
    """Everything one chunk needs; picklable so it can travel to a Dask worker."""

    scenario: Any
    dists: Mapping[str, Any]
    corr: np.ndarray | None
    seed: int
    sampling: str
    n_total: int
    store_paths: int
    start: int
    stop: int
    overrides: Mapping[str, float] = field(default_factory=dict)
    """Inputs held at one value on every path (tornado, breakevens); all else as sampled."""


@dataclass
class ChunkResult:
    start: int
    stop: int
    per_path: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    """``[path, time]`` series for the chunk's paths below ``store_paths`` (may be empty)."""
    block_stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    """Per block: (count [b], mean [b, T], M2 [b, T]) of each ``[path, time]`` variable."""
    inputs: dict[str, np.ndarray]


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Sample inputs and run the engine for one chunk of paths."""
    inputs = sample_inputs(task.dists, method=task.sampling, seed=task.seed, start=task.start,
                           stop=task.stop, n_total=task.n_total, corr=task.corr)
    for key, value in task.overrides.items():
        inputs[key] = np.full(task.stop - task.start, value, dtype=np.float64)
    draws = Draws(task.seed, task.start, task.stop, task.scenario.simulation.horizon_months)
    out = chain.simulate_chunk(task.scenario, inputs, draws)
    per_path, series, stats = {}, {}, {}
    keep = max(0, min(task.stop, task.store_paths) - task.start)
    for name, arr in out.items():
        if arr.ndim == 2 and name in chain.SERIES:
            stats[name] = _block_stats(arr, task.start)
            if keep:
                series[name] = np.ascontiguousarray(arr[:keep])
        else:
            per_path[name] = arr
    return ChunkResult(task.start, task.stop, per_path, series, stats, inputs)


def _block_stats(arr: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and M2 over paths of each global block inside this chunk."""
    edges = list(range(start, start + arr.shape[0], BLOCK_PATHS)) + [start + arr.shape[0]]
    counts, means, m2s = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = arr[lo - start:hi - start]
        mean = part.mean(axis=0)
        counts.append(hi - lo)
        means.append(mean)
        m2s.append(((part - mean) ** 2).sum(axis=0))
    return np.asarray(counts, dtype=np.float64), np.stack(means), np.stack(m2s)


@dataclass
class Reduced:
    """All chunks put back together in path order."""

    per_path: dict[str, np.ndarray] = field(default_factory=dict)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)


def reduce_chunks(results: Iterable[ChunkResult]) -> Reduced:
    """Concatenate per-path arrays and combine block statistics in block order (Chan et al.)."""
    ordered = sorted(results, key=lambda r: r.start)
    red = Reduced()
    first = ordered[0]
    for name in first.per_path:
        red.per_path[name] = np.concatenate([r.per_path[name] for r in ordered])
    for name in first.inputs:
        red.inputs[name] = np.concatenate([r.inputs[name] for r in ordered])
    for name in first.block_stats:
        series = [r.series[name] for r in ordered if name in r.series]
        if series:
            red.series[name] = np.concatenate(series)
        counts = np.concatenate([r.block_stats[name][0] for r in ordered])
        means = np.concatenate([r.block_stats[name][1] for r in ordered])
        m2s = np.concatenate([r.block_stats[name][2] for r in ordered])
        n, mean, m2 = counts[0], means[0].copy(), m2s[0].copy()
        for nb, mb, m2b in zip(counts[1:], means[1:], m2s[1:]):
            delta = mb - mean
            total = n + nb
            mean += delta * (nb / total)
            m2 += m2b + delta * delta * (n * nb / total)
            n = total
        red.summary[f"{name}_mean"] = mean
        red.summary[f"{name}_std"] = np.sqrt(m2 / max(n - 1, 1))
    return red


def execute(tasks: list[ChunkTask], *, client: Any = None, progress: Progress | None = None) -> Reduced:
    """Run every chunk serially, or on a Dask ``client``, and reduce them."""
    total = len(tasks)
    if client is None:
        results = []
        for i, task in enumerate(tasks):
            results.append(run_chunk(task))
            if progress:
                progress(i + 1, total)
        return reduce_chunks(results)
    return _execute_dask(tasks, client, progress)


def _execute_dask(tasks: list[ChunkTask], client: Any, progress: Progress | None) -> Reduced:
    from dask.distributed import as_completed

    futures = client.map(run_chunk, tasks, pure=False, retries=2)
    results = []
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            if progress:
                progress(done, len(tasks))
    except Exception as exc:  # noqa: BLE001 - any worker failure ends the run with a clear error
        raise RunError(f"a chunk failed on the Dask cluster: {type(exc).__name__}: {exc}") from exc
    return reduce_chunks(results)
