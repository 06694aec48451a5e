"""Reductions of chunk results into one run: per-path buffers, the stored sample, block statistics.

A chunk of paths comes back from the engine as a :class:`ChunkResult`. The :class:`Reducer`
copies its per-path values and the rows of the stored sample (paths below ``store_paths``) into
buffers allocated once, in path order, and keeps per-block (count, mean, M2) of every
``[path, time]`` variable (:func:`block_stats`). :meth:`Reducer.finish` pools the blocks in block
order (:func:`combine_stats`), so the all-path monthly mean and standard deviation are
bit-identical however the run was chunked or scheduled. :class:`Precision` keeps the running
standard error that adaptive runs stop on. NumPy only: the chunk plan and the execution, serial
or on Dask, are :mod:`simulator.run.execute`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from simulator.cube import SERIES_DTYPE
from simulator.rng import BLOCK_PATHS


PRECISION_VARIABLE = "value_per_share"
"""The per-path variable whose standard error of the mean drives adaptive precision."""


@dataclass
class ChunkResult:
    start: int
    stop: int
    per_path: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    """``[path, time]`` rows of the chunk's paths below ``store_paths`` (may be empty)."""
    block_stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    """Per block: (count [b], mean [b, T], M2 [b, T]) of each ``[path, time]`` variable."""
    inputs: dict[str, np.ndarray]


def block_stats(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and M2 over paths of each global block inside this chunk.

    Parameters
    ----------
    arr : numpy.ndarray
        ``[path, time]`` values of one chunk, in the variable's units. Chunks start on a block
        boundary (``parallel.aligned_chunks``), so every ``BLOCK_PATHS`` rows from row 0 are a block.

    Returns
    -------
    tuple of numpy.ndarray
        Paths per block ``[b]``, float64 mean ``[b, T]`` (units of ``arr``) and sum of squared
        deviations from it ``[b, T]`` (units squared).

    Notes
    -----
    Each block is summed row by row and its deviations are formed in a block-sized buffer,
    so a block is read from memory once and stays in cache for the second pass; ``einsum``
    squares and sums the deviations in one pass. A block's numbers depend only on its rows,
    so they are the same whatever chunk the block arrives in.
    """
    rows, months = arr.shape
    edges = np.append(np.arange(0, rows, BLOCK_PATHS), rows)
    counts = np.diff(edges).astype(np.float64)
    means = np.empty((counts.size, months), dtype=np.float64)
    m2s = np.empty_like(means)
    dev = np.empty((min(BLOCK_PATHS, rows), months), dtype=np.float64)
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        d = dev[:hi - lo]
        np.add.reduce(arr[lo:hi], axis=0, dtype=np.float64, out=means[i])
        means[i] /= counts[i]
        np.subtract(arr[lo:hi], means[i], out=d)
        np.einsum("pt,pt->t", d, d, out=m2s[i])
    return counts, means, m2s


def combine_stats(counts: np.ndarray, means: np.ndarray,
                  m2s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Pool per-block (count, mean, M2) in the given order into one (count, mean, M2).

    Notes
    -----
    Chan, Golub and LeVeque (1979): for groups A and B with ``delta = mean_B - mean_A``,
    ``mean = mean_A + delta n_B / n``, ``M2 = M2_A + M2_B + delta^2 n_A n_B / n``. The order
    is fixed (block order), so the result does not depend on chunking or scheduling.
    """
    n, mean, m2 = float(counts[0]), means[0].astype(np.float64), m2s[0].astype(np.float64)
    for nb, mb, m2b in zip(counts[1:], means[1:], m2s[1:]):
        delta = mb - mean
        total = n + nb
        mean += delta * (nb / total)
        m2 += m2b + delta * delta * (n * nb / total)
        n = total
    return n, mean, m2


@dataclass
class Reduced:
    """All chunks put back together in path order."""

    per_path: dict[str, np.ndarray] = field(default_factory=dict)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    paths: int = 0
    """Paths actually run (less than planned when adaptive precision stopped early)."""
    mean_se: float = float("nan")
    """Standard error of the mean of :data:`PRECISION_VARIABLE` [USD/share] over ``paths``."""


class Reducer:
    """Collects chunk results in any order into preallocated path-ordered buffers.

    Parameters
    ----------
    capacity : int
        Paths to allocate for at first; grows (doubling, up to ``limit``) if exceeded.
    limit : int
        Most paths the run can have.
    store_paths : int
        Rows of the stored ``[path, time]`` sample.
    """

    def __init__(self, capacity: int, limit: int, store_paths: int) -> None:
        self.capacity = min(capacity, limit)
        self.limit = limit
        self.store = min(store_paths, limit)
        self.per_path: dict[str, np.ndarray] = {}
        self.inputs: dict[str, np.ndarray] = {}
        self.series: dict[str, np.ndarray] = {}
        self.stats: dict[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def add(self, r: ChunkResult) -> None:
        """Copy a chunk's per-path values and sample rows into place; keep its block stats."""
        if r.stop > self.capacity:
            self._grow(r.stop)
        for target, source in ((self.per_path, r.per_path), (self.inputs, r.inputs)):
            for name, arr in source.items():
                buf = target.get(name)
                if buf is None:
                    buf = target[name] = np.empty((self.capacity, *arr.shape[1:]), dtype=arr.dtype)
                buf[r.start:r.stop] = arr
        for name, arr in r.series.items():
            buf = self.series.get(name)
            if buf is None:
                # The cube keeps floating series as float32 (cube.SERIES_DTYPE): casting while
                # copying halves this buffer and spares assemble() a second full pass.
                dtype = SERIES_DTYPE if arr.dtype.kind == "f" else arr.dtype
                buf = self.series[name] = np.empty((self.store, arr.shape[1]), dtype=dtype)
            buf[r.start:r.start + arr.shape[0]] = arr
        self.stats[r.start] = r.block_stats

    def _grow(self, stop: int) -> None:
        new = min(max(stop, 2 * self.capacity), self.limit)
        for target in (self.per_path, self.inputs):
            for name, buf in target.items():
                grown = np.empty((new, *buf.shape[1:]), dtype=buf.dtype)
                grown[:self.capacity] = buf[:self.capacity]
                target[name] = grown
        self.capacity = new

    def finish(self, paths: int) -> Reduced:
        """The reduction over paths ``[0, paths)``; later chunks (if any) are dropped."""
        red = Reduced(paths=paths)
        for target, source in ((red.per_path, self.per_path), (red.inputs, self.inputs)):
            for name, buf in source.items():
                target[name] = buf[:paths] if buf.shape[0] == paths else buf[:paths].copy()
        keep = min(self.store, paths)
        for name, buf in self.series.items():
            red.series[name] = buf if buf.shape[0] == keep else buf[:keep].copy()
        starts = sorted(s for s in self.stats if s < paths)
        names = list(self.stats[starts[0]])
        # Every variable has the same blocks: pool them all in one pass over the blocks,
        # side by side along the last axis (elementwise, so each number is as if alone).
        counts = np.concatenate([self.stats[s][names[0]][0] for s in starts])
        means, m2s = (np.concatenate([np.concatenate([self.stats[s][name][i] for name in names], axis=1)
                                      for s in starts]) for i in (1, 2))
        n, mean, m2 = combine_stats(counts, means, m2s)
        std = np.sqrt(m2 / max(n - 1.0, 1.0))
        months = mean.size // len(names)
        for k, name in enumerate(names):
            red.summary[f"{name}_mean"] = mean[k * months:(k + 1) * months]
            red.summary[f"{name}_std"] = std[k * months:(k + 1) * months]
        return red


class Precision:
    """Running (count, mean, M2) of the finite values of :data:`PRECISION_VARIABLE`, in path order."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0.0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        ok = values[~np.isnan(values)]
        if ok.size == 0:
            return
        nb, mb = float(ok.size), float(ok.mean())
        m2b = float(np.square(ok - mb).sum())
        delta, total = mb - self.mean, self.n + nb
        self.mean += delta * nb / total
        self.m2 += m2b + delta * delta * self.n * nb / total
        self.n = total

    @property
    def se(self) -> float:
        """``s / sqrt(n)`` with the ``n - 1`` sample standard deviation [USD/share]."""
        if self.n < 2:
            return float("inf")
        return float(np.sqrt(self.m2 / (self.n - 1.0) / self.n))
