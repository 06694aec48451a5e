"""Chunk-invariant random streams (simulator/rng.py)."""

import zlib

import numpy as np
import pytest

from simulator.rng import BLOCK_PATHS, Draws, block_generator, chunk_plan

N_PATHS = 9_000
MONTHS = 7


def _chunked(kind: str, chunk: int, stream: str = "btc_price.z", seed: int = 11) -> np.ndarray:
    parts = []
    for a, b in chunk_plan(N_PATHS, chunk):
        draws = Draws(seed, a, b, MONTHS)
        parts.append(getattr(draws, kind)(stream))
    return np.concatenate(parts)


@pytest.mark.parametrize("kind", ["normal", "uniform"])
@pytest.mark.parametrize("chunk", [1, 1000, 7777, BLOCK_PATHS, N_PATHS])
def test_any_chunk_split_gives_identical_rows(kind, chunk):
    if chunk == 1:
        # Single-path chunks at block edges and inside blocks, against a whole run.
        whole = Draws(11, 0, N_PATHS, MONTHS)
        ref = getattr(whole, kind)("btc_price.z")
        for p in (0, 1023, 1024, 5000, N_PATHS - 1):
            row = getattr(Draws(11, p, p + 1, MONTHS), kind)("btc_price.z")
            assert np.array_equal(row[0], ref[p])
        return
    assert np.array_equal(_chunked(kind, chunk), _chunked(kind, N_PATHS))


def test_block_rows_come_from_the_documented_seed_sequence():
    # The reproducibility contract, written out independently of rng.py.
    ss = np.random.SeedSequence(5, spawn_key=(zlib.crc32(b"fees.z"), 1))
    expected = np.random.Generator(np.random.PCG64(ss)).standard_normal((BLOCK_PATHS, MONTHS))
    got = Draws(5, BLOCK_PATHS + 10, BLOCK_PATHS + 20, MONTHS).normal("fees.z")
    assert np.array_equal(got, expected[10:20])
    assert np.array_equal(block_generator(5, "fees.z", 1).standard_normal(3), expected[0, :3])


def test_seeds_streams_and_blocks_differ():
    a = Draws(1, 0, 2048, MONTHS)
    z = a.normal("a")
    assert not np.array_equal(z, a.normal("b"))
    assert not np.array_equal(z, Draws(2, 0, 2048, MONTHS).normal("a"))
    assert not np.array_equal(z[:BLOCK_PATHS], z[BLOCK_PATHS:])


def test_draws_have_the_right_moments():
    n = 50 * BLOCK_PATHS
    draws = Draws(3, 0, n, 4)
    z, u = draws.normal("z"), draws.uniform("u", cols=2)
    assert z.shape == (n, 4) and u.shape == (n, 2) and z.dtype == np.float64
    m = z.size
    assert abs(z.mean()) < 4 / np.sqrt(m)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2.0 / m)
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    assert u.min() >= 0.0 and u.max() < 1.0


def test_a_stream_is_requested_once():
    draws = Draws(1, 0, 100, MONTHS)
    z = draws.normal("z")
    assert np.array_equal(draws.normal("z"), z)  # same request, same numbers
    with pytest.raises(ValueError, match="stream 'z' already requested as normal with 7 columns; "
                                         "now normal with 3"):
        draws.normal("z", cols=3)
    with pytest.raises(ValueError, match="now uniform with 7"):
        draws.uniform("z")


@pytest.mark.parametrize(("n", "chunk", "expected"), [
    (10, 4, [(0, 4), (4, 8), (8, 10)]),
    (8, 8, [(0, 8)]),
    (3, 10, [(0, 3)]),
])
def test_chunk_plan(n, chunk, expected):
    assert chunk_plan(n, chunk) == expected


def test_chunk_plan_rejects_empty():
    with pytest.raises(ValueError, match="must be >= 1"):
        chunk_plan(0, 10)
    with pytest.raises(ValueError, match="start < stop"):
        Draws(1, 5, 5, 3)
