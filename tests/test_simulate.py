"""simulate(): reproducibility across chunkings, the stored sample, bounded memory, adaptive precision."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from simulator.errors import RunError
from simulator.run.execute import InProcessExecutor, run_chunks
from simulator.run.plan import RunSpec, aligned_chunks
from simulator.run import correlation, sampled_dists, simulate
from support import assert_same_data, short_scenario


def se_of_mean(values):
    """s / sqrt(n) over the finite values, written out independently of the package."""
    ok = values[~np.isnan(values)]
    return ok.std(ddof=1) / np.sqrt(ok.size)


def test_same_seed_is_bit_identical_for_any_chunking(base12):
    """Chunks of 1,000 and 7,777 paths round up to whole 1,024-path blocks (1,024 and 8,192),
    so 9,000 paths run as nine chunks, as two (8,192 + 808), and as one; the cubes agree bit for
    bit, including the all-path monthly mean and std that are pooled block by block."""
    cubes = [simulate(base12, paths=9_000, seed=11, chunk_paths=c, store_paths=9_000)
             for c in (1_000, 7_777, 9_000)]
    assert [len(aligned_chunks(9_000, c)) for c in (1_000, 7_777, 9_000)] == [9, 2, 1]
    for other in cubes[1:]:
        assert_same_data(cubes[0], other)
    assert cubes[0].sizes["path"] == 9_000


def test_different_seeds_differ(base12):
    a = simulate(base12, paths=1_024, seed=1)
    b = simulate(base12, paths=1_024, seed=2)
    assert not np.array_equal(a["btc_price"].values, b["btc_price"].values)
    assert not np.array_equal(a["value_per_share"].values, b["value_per_share"].values, equal_nan=True)


def test_stored_sample_keeps_exact_all_path_mean_and_std(base12):
    """5,000 paths with a 1,000-path sample: the sample rows equal the full run's first rows,
    and the monthly mean/std over all paths equal numpy's over the full run's series."""
    full = simulate(base12, paths=5_000, seed=5, chunk_paths=2_048, store_paths=5_000)
    part = simulate(base12, paths=5_000, seed=5, chunk_paths=2_048, store_paths=1_000)
    assert part.sizes["sample"] == 1_000 and part.sizes["path"] == 5_000
    assert "sample" not in full.dims
    for name in ("btc_price", "network_hashrate", "cash", "hpc_revenue", "block_height"):
        stored = full[name].values
        np.testing.assert_array_equal(part[name].values, stored[:1_000])
        np.testing.assert_array_equal(part[f"{name}_mean"].values, full[f"{name}_mean"].values)
        # The pooled stats come from the engine's values; the cube may store them rounded to
        # its dtype (unit roundoff u). Rounding each value by at most u |x| moves the mean and
        # the std by at most u rms(x) (x 1.01 for n/(n-1)); 1e-12 covers float64 summation order.
        x = stored.astype(np.float64)
        u = np.finfo(stored.dtype).eps / 2 if stored.dtype.kind == "f" else 0.0
        tol = (1.01 * u + 1e-12) * np.sqrt(np.mean(x * x, axis=0))
        np.testing.assert_array_less(np.abs(part[f"{name}_mean"].values - x.mean(axis=0)), tol + 1e-300)
        np.testing.assert_array_less(np.abs(part[f"{name}_std"].values - x.std(axis=0, ddof=1)), tol + 1e-300)
    for name in ("value_per_share", "equity_value", "sign_month"):
        np.testing.assert_array_equal(part[name].values, full[name].values)


@pytest.mark.slow
def test_fifty_thousand_paths_store_a_two_thousand_path_sample():
    """Fifty thousand paths in 8,192-path chunks keep [path, time] rows for 2,000 only."""
    cube = simulate(short_scenario(12), paths=50_000, seed=3, store_paths=2_000)
    assert cube.sizes["path"] == 50_000 and cube.sizes["sample"] == 2_000
    assert cube["btc_price"].dims == ("sample", "time")
    assert cube["value_per_share"].dims == ("path",)
    assert cube.attrs["store_paths"] == 2_000
    assert np.isfinite(cube["btc_price_mean"].values).all()


def _peak_bytes(scenario, paths: int) -> int:
    dists = sampled_dists(scenario)
    corr = correlation(scenario, list(dists))
    run = RunSpec(scenario, dists, corr, 1, "random", paths, 1_024)
    chunks = aligned_chunks(paths, 1_024)
    tracemalloc.start()
    try:
        run_chunks(run, chunks, InProcessExecutor(), window=1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_grows_with_per_path_values_only():
    """Doubling the paths (2,048 -> 4,096) with a fixed 1,024-path sample and chunk adds the
    per-path arrays only, far less than keeping the [path, time] series of the extra paths."""
    base60 = short_scenario(60)
    small, large = _peak_bytes(base60, 2_048), _peak_bytes(base60, 4_096)
    cube = simulate(base60, paths=1_024, seed=1, store_paths=1_024)
    per_path = sum(v.nbytes for v in cube.data_vars.values() if v.dims[0] == "path" and "time" not in v.dims) / 1_024
    series = sum(v.nbytes for v in cube.data_vars.values() if v.dims == ("path", "time")) / 1_024
    extra = large - small
    assert series > 5 * per_path
    assert extra < 2_048 * (per_path + 0.2 * series)


def test_a_run_leaves_nothing_of_the_engine_to_the_cycle_collector(base12):
    """A chunk's arrays go when the chunk is done, not at the next garbage collection: an
    engine object in a reference cycle (a mark reader holding a bound method of its owner)
    once kept every chunk's arrays alive, 1.3 GB growing to 3.5 GB at 100,000 paths."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        simulate(base12, paths=2_048, seed=3, chunk_paths=1_024, processes=1)
        gc.collect()
        engine = sorted({type(o).__qualname__ for o in gc.garbage
                         if any(str(getattr(x, "__module__", "")).startswith("simulator.engine")
                                for x in (o, type(o)))})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert engine == []


def _adaptive_case(scenario):
    """SE after each of six 1,024-path chunks, from a fixed 6,144-path run."""
    fixed = simulate(scenario, paths=6_144, seed=9, chunk_paths=1_024, store_paths=1_024)
    v = fixed["value_per_share"].values
    return [se_of_mean(v[:k]) for k in range(1_024, 6_145, 1_024)]


def test_precision_stops_where_the_standard_error_first_falls_below_target(base12):
    ses = _adaptive_case(base12)
    target = float(np.mean([ses[1], ses[2]]))  # between the 2nd and 3rd chunk's SE
    expected_n = 1_024 * (1 + next(i for i, se in enumerate(ses) if se < target))
    assert expected_n > 1_024
    cube = simulate(base12, seed=9, chunk_paths=1_024, store_paths=1_024, precision=target,
                    max_paths=6_144)
    assert cube.attrs["paths"] == expected_n
    assert cube.attrs["precision_target_usd"] == target
    assert cube.attrs["precision_reached"] == 1
    np.testing.assert_allclose(cube.attrs["precision_se_usd"], ses[expected_n // 1_024 - 1], rtol=1e-10)
    fixed = simulate(base12, paths=expected_n, seed=9, chunk_paths=1_024, store_paths=1_024)
    assert_same_data(cube, fixed)


def test_precision_stops_at_the_path_cap(base12):
    """A cap that is not a block multiple: the last chunk is cut at the cap, as in a fixed run
    of that many paths (the Latin hypercube sizes its last block by the cap in both)."""
    cube = simulate(base12, seed=4, sampling="latin_hypercube", chunk_paths=1_024, store_paths=512,
                    precision=1e-6, max_paths=1_500)
    assert cube.attrs["paths"] == 1_500 and cube.attrs["precision_reached"] == 0
    assert cube.attrs["precision_se_usd"] > 1e-6
    fixed = simulate(base12, paths=1_500, seed=4, sampling="latin_hypercube", chunk_paths=1_024,
                     store_paths=512)
    assert_same_data(cube, fixed)


@pytest.mark.parametrize("kwargs, message", [
    ({"paths": 1_000, "precision": 0.1}, "--paths and --precision exclude each other"),
    ({"precision": 0.0}, "--precision must be > 0 USD/share (got 0.0)"),
    ({"precision": 0.1, "max_paths": 0}, "--max-paths must be >= 1 (got 0)"),
])
def test_precision_arguments_are_checked(base12, kwargs, message):
    with pytest.raises(RunError) as info:
        simulate(base12, **kwargs)
    assert str(info.value).startswith(message)


def test_bootstrap_run_records_its_history_file_hash(base12, tmp_path):
    """The scenario hash covers the CSV's path only; the manifest also pins what it held."""
    import hashlib

    closes = 30_000 * np.exp(np.cumsum(np.random.default_rng(8).normal(0.01, 0.12, 48)))
    text = "date,close\n" + "".join(f"{2021 + m // 12}-{m % 12 + 1:02d}-28,{c:.2f}\n"
                                    for m, c in enumerate(closes))
    csv = tmp_path / "btc.csv"
    csv.write_text(text)
    data = base12.model_dump()
    data["market"]["btc"]["process"] = {"kind": "bootstrap", "csv": str(csv)}
    data["correlations"] = []
    cube = simulate(type(base12).model_validate(data), paths=1_024, seed=2)
    assert cube.attrs["history_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert "history_sha256" not in simulate(base12, paths=1_024, seed=2).attrs


@pytest.mark.parametrize("kwargs, message", [
    ({"paths": 1}, r"paths must be 2 to 100,000,000 \(got 1\)"),
    ({"paths": 2, "seed": -1}, r"seed must be 0 to 2\*\*63 - 1 \(got -1\)"),
    ({"paths": 2, "seed": 2**64}, r"seed must be 0 to 2\*\*63 - 1 \(got 18446744073709551616\)"),
])
def test_simulate_refuses_what_the_schema_refuses(base12, kwargs, message):
    """Called from Python, as from the command line: a clear error before any work."""
    with pytest.raises(RunError, match=message):
        simulate(base12, **kwargs)
