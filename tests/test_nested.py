"""The least-squares mark against a nested simulation (issue 14).

From the state of an outer pricing path at month t, 2,000 inner paths share the outer path's
random numbers up to t and draw fresh ones after it; the mean of their discounted operating
cash flows after t is the value the mark estimates. Every uncertain input is held at its
median, so that the state at t carries everything the future depends on (a per-path draw such
as a volatility would be known at t but is not in the mark's basis).
"""

from __future__ import annotations

import numpy as np
import pytest

import simulator
from simulator.engine import chain
from simulator.rng import Draws
from simulator.run import correlation, sampled_dists
from simulator.run.plan import RunSpec, fit_mark
from simulator.run.sampling import sample_inputs
from simulator.scenario import load_scenario

OUTER, INNER, MONTH = 12, 2_000, 24
T_INDEX = MONTH - 1  # the end of month 24


class SplicedDraws:
    """The draws of outer path ``row`` up to month ``t`` (and its one-column draws, such as the
    signing lottery) followed by the inner paths' own draws."""

    def __init__(self, outer: Draws, row: int, inner: Draws, t: int) -> None:
        self.outer, self.row, self.inner, self.t = outer, row, inner, t
        self.n_paths, self.n_months = inner.n_paths, inner.n_months

    def _splice(self, kind, stream, cols):
        mine = getattr(self.inner, kind)(stream, cols)
        theirs = getattr(self.outer, kind)(stream, cols)[self.row]
        if mine.shape[1] == 1:
            mine[:] = theirs
        else:
            mine[:, :self.t + 1] = theirs[:self.t + 1]
        return mine

    def normal(self, stream, cols=None):
        return self._splice("normal", stream, cols)

    def uniform(self, stream, cols=None):
        return self._splice("uniform", stream, cols)


@pytest.fixture(scope="module")
def fixed_inputs():
    sc = load_scenario("base")
    data = sc.model_dump(mode="json")
    data["valuation"]["marks"]["fit_paths"] = 8192
    sc = type(sc).model_validate(data)
    dists = sampled_dists(sc)
    medians = {k: float(d.ppf(0.5)) if hasattr(d, "ppf") else float(np.median(d.rvs(1001, random_state=1)))
               for k, d in dists.items()}
    return sc, dists, medians


def _inputs(dists, medians, n):
    inputs = sample_inputs(dists, method="random", seed=1, start=0, stop=n, n_total=n)
    return {k: np.full(n, medians[k]) for k in inputs}


def _operations(sc, inputs, draws):
    mi = chain.inputs_.market_inputs(sc, inputs, None)
    params, shocks = chain._company(sc, inputs, draws)
    mq, _ = chain.run_market(chain._pricing(mi, params.valuation.risk_free_rate), chain.inputs_.month_starts(sc), draws)
    return chain.operations(mq, params, shocks), params


def test_the_mark_agrees_with_a_nested_simulation(fixed_inputs):
    sc, dists, medians = fixed_inputs
    run = RunSpec(sc, dists, correlation(sc, list(dists)), 41, "random", OUTER, 0, overrides=medians)
    mark = fit_mark(run)
    months = sc.simulation.horizon_months
    outer = Draws(901, 0, OUTER, months)
    ops, params = _operations(sc, _inputs(dists, medians, OUTER), outer)
    marked = mark.at(ops.state, T_INDEX)
    inner_inputs = _inputs(dists, medians, INNER)
    nested, se = np.empty(OUTER), np.empty(OUTER)
    for i in range(OUTER):
        draws = SplicedDraws(outer, i, Draws(7_000 + i, 0, INNER, months), T_INDEX)
        inner_ops, inner_params = _operations(sc, inner_inputs, draws)
        # The inner paths start from the outer path's state at t.
        for name, x in inner_ops.state.items():
            np.testing.assert_allclose(x[:, T_INDEX], ops.state[name][i, T_INDEX], rtol=1e-9,
                                       err_msg=name)
        y = chain.operating_targets(inner_ops, inner_params.valuation)[:, T_INDEX]
        nested[i], se[i] = y.mean(), y.std(ddof=1) / np.sqrt(INNER)

    cube = simulator.simulate(sc, paths=4096, seed=41, overrides=medians, mark=mark)
    equity = cube.attrs["fair_value_per_share"] * sc.company.basic_shares_m * 1e6
    error = np.sqrt(np.mean((marked - nested) ** 2)) / equity
    print(f"mark vs nested at month {MONTH}: RMS error {error:.2%} of the fair value to equity "
          f"({equity / 1e6:,.0f} M USD); nested SE up to {se.max() / 1e6:,.1f} M USD; "
          f"states span {np.ptp(nested) / 1e6:,.0f} M USD")
    assert error < 0.05
    # The states differ enough for the check to mean something.
    assert np.ptp(nested) > 10 * se.max()
