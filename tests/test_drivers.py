"""Tornado with common random numbers, rank correlations, and the report's drivers section."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats as sps

from simulator.analysis import drivers
from simulator.scenario import load
from simulator.scenario.models import Scenario
from simulator.run import sampled_dists, simulate

PATHS = 1024
DOMINANT = "company.power.price_usd_per_mwh"


def _set(doc: dict, key: str, value) -> None:
    """Set a dotted input key path (sites addressed by name, lists by index) in a plain doc."""
    parts = key.split(".")
    node = doc
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = next(x for x in node if x.get("name") == part) if not part.isdigit() \
                else node[int(part)]
        else:
            node = node[part]
    node[parts[-1]] = value


def dominated_scenario() -> Scenario:
    """Base with every uncertain input fixed at its median except three.

    Power price spans 10-150 USD/MWh (it drives every month's mining margin on ~1 GW, and
    whether the fleet is kept at all);
    SG&A and the tenant credit spread vary over a sliver. Power price dominates by construction.
    """
    base = load("base").scenario
    doc = json.loads(json.dumps(base.model_dump(mode="json")))
    dists = sampled_dists(base)
    for key, _ in base.uncertain_inputs():
        if key.endswith(".date"):
            _set(doc, key, "2026-02-01")
        else:
            _set(doc, key, {"dist": "fixed", "value": float(dists[key].ppf(0.5))})
    _set(doc, DOMINANT, {"dist": "uniform", "low": 10.0, "high": 150.0})
    _set(doc, "company.sga_usd_m_per_year", {"dist": "uniform", "low": 129.0, "high": 131.0})
    _set(doc, "valuation.tenant_credit_spread", {"dist": "uniform", "low": 0.0295, "high": 0.0305})
    doc["correlations"] = []
    return Scenario.model_validate(doc)


@pytest.fixture(scope="module")
def scen() -> Scenario:
    return dominated_scenario()


def test_tornado_puts_the_dominant_input_first(scen):
    keys = [k for k, _ in scen.uncertain_inputs()]
    assert sorted(keys) == sorted([DOMINANT, "company.sga_usd_m_per_year",
                                   "valuation.tenant_credit_spread"])
    result = drivers.tornado(scen, paths=PATHS)
    rows = result["rows"]
    assert rows[0]["key"] == DOMINANT
    assert result["runs"] == 7
    # P10 / P90 of U(10, 150) by hand: 10 + 0.1 * 140 and 10 + 0.9 * 140.
    assert rows[0]["low"] == pytest.approx(24.0) and rows[0]["high"] == pytest.approx(136.0)
    # Dearer power can only lower value: the swing's sign is known.
    assert rows[0]["median_high"] < rows[0]["median_low"]
    # The dominant swing exceeds the next by far more than their Monte Carlo errors.
    gap = rows[0]["swing"] - rows[1]["swing"]
    assert gap > 5 * np.hypot(rows[0]["swing_se"], rows[1]["swing_se"])
    assert [r["swing"] for r in rows] == sorted((r["swing"] for r in rows), reverse=True)


def test_spearman_ranks_the_dominant_input_first(scen):
    cube = simulate(scen, PATHS, store_paths=0)
    rows = drivers.rank_correlations(cube)
    assert rows[0]["key"] == DOMINANT and rows[0]["rho"] < 0
    v = cube["value_per_share"].values
    x = cube["input_company_power_price_usd_per_mwh"].values
    assert rows[0]["rho"] == pytest.approx(sps.spearmanr(x, v).statistic, abs=1e-12)
    assert rows[0]["ci_low"] < rows[0]["rho"] < rows[0]["ci_high"]


def test_rank_correlations_match_scipy_and_skip_constants():
    rng = np.random.default_rng(3)
    n = 500
    v = rng.standard_normal(n)
    a = v + rng.standard_normal(n)
    b = rng.standard_normal(n)
    cube = xr.Dataset({"value_per_share": ("path", v),
                       "input_a": ("path", a, {"key_path": "x.a"}),
                       "input_b": ("path", b, {"key_path": "x.b"}),
                       "input_c": ("path", np.full(n, 2.0), {"key_path": "x.c"})})
    rows = drivers.rank_correlations(cube)
    assert [r["key"] for r in rows] == ["x.a", "x.b"]
    assert rows[0]["rho"] == pytest.approx(sps.spearmanr(a, v).statistic, abs=1e-12)
    assert rows[1]["rho"] == pytest.approx(sps.spearmanr(b, v).statistic, abs=1e-12)
    # Fisher-z half-width by hand: 1.96 * 1.03 / sqrt(497) in z units.
    half = sps.norm.ppf(0.975) * 1.03 / np.sqrt(n - 3)
    assert np.arctanh(rows[0]["ci_high"]) - np.arctanh(rows[0]["rho"]) == pytest.approx(half)


def test_a_value_that_never_moves_ranks_nothing_and_warns_nothing():
    """IREN in the peer group is worth $0 on every path: no correlation, and no 0/0 warning."""
    n = 200
    cube = xr.Dataset({"value_per_share": ("path", np.zeros(n)),
                       "input_a": ("path", np.arange(n, dtype=float), {"key_path": "x.a"})})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert drivers.rank_correlations(cube) == []


def test_report_shows_drivers_and_breakevens():
    from synthetic import synthetic_cube

    from simulator.report.run_report import render_report
    from simulator.report.drivers import drivers_context

    cube = synthetic_cube(paths=400, months=40)
    tornado = {"rows": [{"key": "sites.texas.lease.rate_usd_per_kw_month", "units": "USD/kW-month",
                         "low": 120.0, "high": 170.0, "median_low": 6.0, "median_high": 9.5,
                         "swing": 3.5, "swing_se": 0.2}],
               "base_median": 7.7, "paths": 2000, "seed": 1, "probs": (0.1, 0.9), "runs": 3}
    be = [{"status": "found", "value": 165000.0, "xtol": 211.0, "mc_se": 3400.0,
           "spot": 84500.0, "units": "USD/BTC", "target": 14.57, "paths": 2000,
           "definition": "BTC spot price held on every path"},
          {"status": "not_attained", "value": float("nan"), "bracket": (0.0, 1.0),
           "median_at_bracket": (0.0, 11.94), "target": 14.57, "units": "1", "paths": 2000,
           "definition": "every site's signing probability set to one common value q"}]
    html = render_report(cube, drivers=tornado, breakevens=be)
    assert 'id="drivers"' in html and 'id="breakevens"' in html
    assert "sites.texas.lease.rate_usd_per_kw_month" in html
    assert "2,000 paths each" in html
    assert "$165,000" in html and "1.95x today" in html
    assert "not attained" in html and "$11.94 at 1.000" in html
    ctx, figures = drivers_context(cube, None, None)
    assert ctx["tornado_note"].startswith("The tornado was not computed") and not figures
    assert ctx["breakeven_note"] == ("Breakevens were not computed for this report; "
                                     "run `minersim run SCENARIO --drivers` for them.")
    assert {r["key"] for r in ctx["spearman_rows"]} >= {"power.price_usd_per_mwh"}
