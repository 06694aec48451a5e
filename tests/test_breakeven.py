"""Breakevens by Brent's method on common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.analysis import breakeven
from simulator.analysis.drivers import value_samples
from simulator.scenario import load
from simulator.run import scenario_mark, simulate

PATHS = 1024


@pytest.fixture(scope="module")
def base():
    return load("base").scenario


def test_solve_finds_a_hand_computed_root():
    # median(2x + offsets) = 2x + median(offsets) = 2x; solving 2x = 3 gives x = 1.5.
    offsets = np.linspace(-1.0, 1.0, 11)
    out = breakeven._solve(lambda x: 2 * x + offsets, 3.0, 0.0, 10.0, xtol=1e-6)
    assert out["status"] == "found"
    assert out["value"] == pytest.approx(1.5, abs=1e-6)
    assert out["slope"] == pytest.approx(2.0)
    assert abs(out["median_at_root"] - 3.0) <= out["value_tol"] <= 2 * 1e-6 * 2 + 1e-12


def test_solve_reports_a_target_out_of_reach():
    out = breakeven._solve(lambda x: np.full(5, x), 3.0, 0.0, 1.0, xtol=1e-3)
    assert out["status"] == "not_attained"
    assert out["median_at_bracket"] == (0.0, 1.0)


def test_resimulating_at_breakeven_spot_gives_the_market_price(base):
    out = breakeven.breakeven_spot(base, paths=PATHS)
    assert out["status"] == "found", out
    assert out["xtol"] == pytest.approx(0.0025 * base.market.btc.spot_usd)
    assert out["mc_se"] > 0 and np.isfinite(out["mc_se"])
    # An independent run at the breakeven spot, same seed and the run's mark (the breakeven's
    # re-runs share it): median within the stated tolerance.
    cube = simulate(base, PATHS, base.simulation.seed, store_paths=0,
                    overrides={breakeven.SPOT_KEY: out["value"]}, mark=scenario_mark(base))
    median = float(np.nanmedian(cube["value_per_share"].values))
    assert abs(median - base.company.share_price_usd) <= out["value_tol"]
    # The root lies inside its bracket, which straddles the market price.
    lo, hi = out["bracket"]
    assert lo <= out["value"] <= hi


@pytest.mark.slow
def test_signing_breakeven_hits_a_target_between_the_extremes(base):
    keys = breakeven.signing_keys(base)
    assert keys == ["sites.sandersville.conversion.signing_probability",
                    "sites.texas.conversion.signing_probability"]
    mark = scenario_mark(base)
    ends = [float(np.nanmedian(value_samples(base, paths=PATHS, overrides=dict.fromkeys(keys, q),
                                             mark=mark)))
            for q in (0.0, 1.0)]
    assert ends[0] < ends[1]
    target = 0.5 * (ends[0] + ends[1])
    out = breakeven.breakeven_signing(base, paths=PATHS, target=target)
    assert out["status"] == "found" and 0.0 < out["value"] < 1.0
    again = value_samples(base, paths=PATHS, overrides=dict.fromkeys(keys, out["value"]), mark=mark)
    assert abs(float(np.nanmedian(again)) - target) <= out["value_tol"]
