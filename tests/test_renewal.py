"""Fleet renewal as retire-and-replace deployments, against hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import fleet
from simulator.engine.renewal import aged_fleet, renewal_deployments


def _plan(months=36):
    cohorts = aged_fleet(50.0, 16.0, 5)
    deps = renewal_deployments(cohorts, months=months, life_years=5, frontier_j_per_th=12.0,
                               frontier_improvement_per_year=0.10, capex_usd_per_th=10.0,
                               capex_change_per_year=-0.5)
    return deps, fleet.planned_fleet(50.0, 16.0, deps, months)


def test_an_evenly_aged_fleet_retires_a_fifth_a_year():
    assert [m for m, *_ in aged_fleet(50.0, 16.0, 5)] == [-48, -36, -24, -12, 0]
    deps, _ = _plan(36)
    months = [m for m, *_ in deps]
    assert months == [12, 12, 24, 24]  # month 36 is past a 36-month grid


def test_hashrate_is_kept_and_efficiency_and_capex_follow_the_frontier():
    _, (planned, j, capex) = _plan(36)
    np.testing.assert_allclose(planned, 50.0)
    # Month 12: 10 EH/s at 16 J/TH replaced by 10 EH/s at 12 x 0.9 = 10.8 J/TH.
    assert j[0, 11] == pytest.approx(16.0)
    assert j[0, 12] == pytest.approx((40 * 16.0 + 10 * 10.8) / 50)
    # Month 24: another 10 EH/s at 12 x 0.81 = 9.72 J/TH.
    assert j[0, 24] == pytest.approx((30 * 16.0 + 10 * 10.8 + 10 * 9.72) / 50)
    # Capex: 10 EH/s = 1e7 TH at 10 x 0.5 = $5/TH in month 12, and 10 x 0.25 in month 24.
    assert capex[0, 12] == pytest.approx(1e7 * 5.0)
    assert capex[0, 24] == pytest.approx(1e7 * 2.5)
    assert capex.sum() == pytest.approx(1e7 * 7.5)


def test_replacements_retire_in_turn():
    cohorts = [(0, 10.0, 20.0)]
    deps = renewal_deployments(cohorts, months=60, life_years=2, frontier_j_per_th=10.0,
                               frontier_improvement_per_year=0.0, capex_usd_per_th=1.0)
    assert [(m, float(h), float(j)) for m, h, j, _ in deps] == [
        (24, -10.0, 20.0), (24, 10.0, 10.0), (48, -10.0, 10.0), (48, 10.0, 10.0)]
