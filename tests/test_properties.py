"""Properties that hold for any input Hypothesis can find, not only for the cases we thought of.

Each property runs small simulations (a few hundred paths), so the example counts are kept
low and no example has a deadline; the seeds Hypothesis draws make each example a new set of
paths.
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import assert_same_data, short_scenario
from synthetic import synthetic_cube

from simulator import cube
from simulator.run import scenario_mark, simulate
from simulator.scenario import load_scenario

SIMULATIONS = settings(max_examples=12, deadline=None, derandomize=True,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])
SEEDS = st.integers(min_value=0, max_value=2**63 - 1)
SITES = ("sandersville", "texas")


BASE = load_scenario("base")


@functools.cache
def mark():
    """One fitted mark for every example: it is a function of the state, not of the inputs held."""
    return scenario_mark(BASE)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.integers(2, 200), months=st.integers(1, 36), failed=st.integers(0, 2),
       sample=st.one_of(st.none(), st.integers(1, 200)), seed=st.integers(0, 2**32 - 1))
def test_save_then_load_gives_the_cube_back_exactly(tmp_path, paths, months, failed, sample, seed):
    """Every value (float32 series, float64 per-path values, NaN of failed paths), coordinate
    and attribute survives the netCDF round trip bit for bit."""
    original = synthetic_cube(paths=paths, months=months, seed=seed, failed=min(failed, paths - 1),
                              sample=None if sample is None else min(sample, paths))
    back = cube.load(cube.save(original, tmp_path / "c.nc"))
    xr.testing.assert_identical(original, back)
    assert_same_data(original, back)


@SIMULATIONS
@given(seed=SEEDS, low=st.floats(60.0, 250.0), step=st.floats(0.01, 80.0))
def test_value_never_falls_when_the_lease_rate_rises(seed, low, step):
    """Common random numbers: the same paths with every site's rent raised. On no path whose
    capital decisions stay the same may the value per share fall (it stays equal where no tenant
    signs, or the equity is worth nothing), and the fair value never falls.

    A dearer lease can flip a decision taken on the mark (a note converts, a raise is bigger or
    smaller): such a path's value may then step either way, as a real holder's would."""
    def run(rate):
        held = {f"sites.{s}.lease.rate_usd_per_kw_month": rate for s in SITES}
        c = simulate(BASE, paths=128, seed=seed, overrides=held, processes=1, store_paths=0,
                     mark=mark())
        return c["value_per_share"].values, c["shares_issued"].values, c.attrs

    cheap, cheap_issued, cheap_attrs = run(low)
    dear, dear_issued, dear_attrs = run(low + step)
    np.testing.assert_array_equal(np.isnan(cheap), np.isnan(dear))
    same = ~np.isnan(cheap) & (cheap_issued == dear_issued)
    assert np.all(dear[same] >= cheap[same]), (dear - cheap)[same].min()
    assert dear_attrs["fair_value_plain_mean"] >= cheap_attrs["fair_value_plain_mean"]


@SIMULATIONS
@given(seed=SEEDS, sandersville=st.floats(0.0, 400.0), texas=st.floats(0.0, 600.0),
       build=st.floats(1.0, 30.0), signing=st.floats(0.0, 1.0))
def test_mining_and_hpc_megawatts_never_exceed_the_contracted_power(seed, sandersville, texas, build,
                                                                     signing):
    """Per path and month: MW mining + gross MW building, leased or down for HPC <= the power
    the company has: its contracted MW plus the MW of greenfield sites (those that do not mine
    until they convert).

    The two sites' sizes, build times and signing odds are held at values Hypothesis picks."""
    held = {"sites.sandersville.gross_mw": sandersville, "sites.texas.gross_mw": texas}
    for s in SITES:
        held[f"sites.{s}.conversion.build_months"] = build
        held[f"sites.{s}.conversion.signing_probability"] = signing
    c = simulate(BASE, paths=64, seed=seed, overrides=held, processes=1, store_paths=64, mark=mark())
    greenfield = sum(held[f"sites.{s.name}.gross_mw"] for s in BASE.sites if not s.mining_until_conversion)
    power = BASE.company.power.contracted_mw + greenfield
    used = c["mining_mw"].values.astype(np.float64) + c["hpc_mw_gross"].values
    assert used.max() <= power * (1 + 1e-6), (used.max(), power)  # float32 storage: 7 digits
    assert c["mining_mw"].values.min() >= 0.0 and c["hpc_mw_gross"].values.min() >= 0.0
    assert not c["mining_mw"].values[c["curtailed"].values == 1.0].any()  # a curtailed fleet draws nothing


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=SEEDS, paths=st.integers(2, 3_500), chunk=st.sampled_from([1, 1_024, 2_048, 4_096]),
       processes=st.sampled_from([1, 2]))
def test_results_do_not_depend_on_chunk_size_or_process_count(seed, paths, chunk, processes):
    """The cube of any chunking on any number of local processes equals the one-chunk run."""
    scenario = short_scenario(12)
    whole = simulate(scenario, paths=paths, seed=seed, chunk_paths=paths, processes=1)
    split = simulate(scenario, paths=paths, seed=seed, chunk_paths=chunk, processes=processes)
    assert_same_data(whole, split)
