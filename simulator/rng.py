"""Chunk-invariant random streams.

Paths are numbered ``0 .. N-1`` and grouped into blocks of :data:`BLOCK_PATHS` consecutive
paths. Every random array is drawn one whole block at a time, from a generator keyed by
``(seed, stream name, block index)``, and then sliced. A path therefore receives the same
numbers whether the run is split into chunks of 1,000, 7,777 or all paths, serially or on a
cluster.

Reproducibility contract
------------------------
The numbers a path receives depend on exactly three things: the integer ``seed``, the
*stream name* (hashed with CRC-32 into the spawn key) and the path index. Renaming a
stream, changing :data:`BLOCK_PATHS`, or changing the column count requested for a stream
changes the draws. Stream names are therefore part of the public contract: pick them once
(e.g. ``"btc_price.z"``, ``"fees.z"``, ``"network.z"``) and never reuse a name for a
different quantity.

A company's own streams are named by its ticker (``CLSK/sign.Sandersville``; the engine's
chain adds the prefix), the world's are not (``btc_price.z``): the same world for every
company of a peer group, independent risks for each.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["BLOCK_PATHS", "Draws", "block_generator", "chunk_plan", "derived_seed"]

BLOCK_PATHS = 1024
"""Paths per block: the unit of randomness. Changing it changes every draw."""


def _stream_id(stream: str) -> int:
    """Stable non-negative integer for a stream name (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(stream.encode("utf-8"))


def block_generator(seed: int, stream: str, block: int) -> np.random.Generator:
    """Generator for one block of paths of one named stream.

    Parameters
    ----------
    seed : int
        The run seed (non-negative).
    stream : str
        Stream name; part of the reproducibility contract (see module docstring).
    block : int
        Block index; the block holds paths ``[block*BLOCK_PATHS, (block+1)*BLOCK_PATHS)``.

    Returns
    -------
    numpy.random.Generator
        PCG64 seeded by ``SeedSequence(seed, spawn_key=(crc32(stream), block))``.

    Notes
    -----
    ``SeedSequence`` hashes the entropy and the spawn key together, so distinct
    ``(stream, block)`` pairs give statistically independent streams.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(_stream_id(stream), int(block)))
    return np.random.Generator(np.random.PCG64(ss))


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for a purpose of its own (e.g. the mark's fitting paths), fixed by the run seed.

    ``SeedSequence(seed, spawn_key=(crc32(purpose),))`` hashed down to 63 bits: its streams are
    independent of the run's paths, whose spawn keys are ``(crc32(stream), block)``.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(_stream_id(purpose),))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def chunk_plan(n_paths: int, chunk_paths: int) -> list[tuple[int, int]]:
    """Split paths ``0 .. n_paths-1`` into consecutive ``[start, stop)`` chunks.

    Parameters
    ----------
    n_paths : int
        Total number of paths (>= 1).
    chunk_paths : int
        Paths per chunk (>= 1); the last chunk may be shorter. A multiple of
        :data:`BLOCK_PATHS` wastes no draws, but any size gives identical numbers.

    Returns
    -------
    list of (int, int)
        Slices covering ``0 .. n_paths-1`` exactly once, in order.
    """
    if n_paths < 1 or chunk_paths < 1:
        raise ValueError(f"n_paths and chunk_paths must be >= 1 (got {n_paths}, {chunk_paths})")
    return [(a, min(a + chunk_paths, n_paths)) for a in range(0, n_paths, chunk_paths)]


class Draws:
    """Named random streams for the path slice ``[start, stop)``.

    Parameters
    ----------
    seed : int
        Run seed.
    start, stop : int
        First path and one past the last path of the chunk.
    n_months : int
        Default column count of each request.

    Notes
    -----
    Each stream may be requested once per ``Draws`` (asking again with the same kind and
    column count returns the same numbers again; asking with a different kind or column
    count raises ``ValueError``, because it would silently give correlated or shifted
    draws).
    """

    def __init__(self, seed: int, start: int, stop: int, n_months: int) -> None:
        if not 0 <= start < stop:
            raise ValueError(f"need 0 <= start < stop (got start={start}, stop={stop})")
        self.seed = int(seed)
        self.start = int(start)
        self.stop = int(stop)
        self.n_months = int(n_months)
        self._requested: dict[str, tuple[str, int]] = {}

    @property
    def n_paths(self) -> int:
        """Number of paths in the slice."""
        return self.stop - self.start

    def normal(self, stream: str, cols: int | None = None) -> np.ndarray:
        """Standard normal draws, float64 ``[stop-start, cols]`` (``cols`` defaults to months)."""
        return self._draw(stream, "normal", cols)

    def uniform(self, stream: str, cols: int | None = None) -> np.ndarray:
        """Uniform draws on [0, 1), float64 ``[stop-start, cols]`` (``cols`` defaults to months)."""
        return self._draw(stream, "uniform", cols)

    def _draw(self, stream: str, kind: str, cols: int | None) -> np.ndarray:
        cols = self.n_months if cols is None else int(cols)
        seen = self._requested.setdefault(stream, (kind, cols))
        if seen != (kind, cols):
            raise ValueError(
                f"stream {stream!r} already requested as {seen[0]} with {seen[1]} columns; "
                f"now {kind} with {cols}: use a different stream name"
            )
        out = np.empty((self.n_paths, cols), dtype=np.float64)
        first, last = self.start // BLOCK_PATHS, (self.stop - 1) // BLOCK_PATHS
        for block in range(first, last + 1):
            gen = block_generator(self.seed, stream, block)
            fill = gen.standard_normal if kind == "normal" else gen.random
            b0 = block * BLOCK_PATHS
            lo, hi = max(self.start, b0), min(self.stop, b0 + BLOCK_PATHS)
            dst = out[lo - self.start : hi - self.start]
            if lo == b0 and hi == b0 + BLOCK_PATHS:
                # Whole block inside the chunk: draw straight into the output (no copy).
                fill(out=dst)
            else:
                full = np.empty((BLOCK_PATHS, cols), dtype=np.float64)
                fill(out=full)
                dst[...] = full[lo - b0 : hi - b0]
        return out
