"""Flexibility is worth something, never less than nothing (issue 16): the fair value with
curtailment by machine class is not below the fair value with every machine always on,
beyond 3 standard errors of the paired difference, scenario by scenario."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import synthetic_cube

from simulator.analysis.options import curtailment_option, with_curtailment
from simulator.report import run_report as report
from simulator.scenario import load_scenario


@pytest.mark.parametrize("name", ["base", "bull", "bear", "no-pivot"])
def test_curtailment_is_worth_at_least_nothing(name):
    opt = curtailment_option(load_scenario(name), paths=1024, seed=11)
    print(f"{name}: curtailment worth {opt['value']:.4f} +- {opt['se']:.4f} USD/share "
          f"(with {opt['with'][0]:.3f}, without {opt['without'][0]:.3f})")
    assert opt["value"] > -3 * opt["se"], opt
    assert opt["se"] > 0 and np.isfinite(opt["value"])
    # The paired difference is far more precise than either fair value alone.
    assert opt["se"] < 0.5 * min(opt["with"][1], opt["without"][1])
    assert len(opt["share_curtailing_by_year"]) == 10
    assert [b["j_per_th"] for b in opt["breakevens"]] == sorted(b["j_per_th"] for b in opt["breakevens"])


def test_switching_curtailment_off_changes_only_that_key():
    sc = load_scenario("base")
    off = with_curtailment(sc, False)
    assert off.company.power.curtail is False and sc.company.power.curtail is True
    a, b = sc.model_dump(mode="json"), off.model_dump(mode="json")
    b["company"]["power"]["curtail"] = True
    assert a == b


def test_report_shows_the_option_table():
    cube = synthetic_cube(paths=300, months=36)
    cube.attrs["options_json"] = json.dumps([{
        "name": "curtailment by machine class", "value": 0.0071, "se": 0.0015,
        "with": [4.55, 0.12], "without": [4.54, 0.12], "share_curtailing_by_year": [0.07, 0.16],
        "breakevens": [{"j_per_th": 13.5, "breakeven_usd_per_ph_day": 18.14}]}, {
        "name": "mothball, restart or sell the mining footprint", "value": 0.95, "se": 0.05,
        "with": [5.56, 0.1], "without": [4.61, 0.1], "switch_share_by_year": [0.02, 0.3, None],
        "boundary_hashprice_by_year": [None, 17.2, 25.4]}, {
        "name": "fleet renewal by machine cohort", "value": 0.05, "se": 0.01,
        "with": [4.66, 0.1], "without": [4.61, 0.1], "renewing_share_by_year": [0.64],
        "boundary_hashprice_by_year": [39.0]}, {
        "name": "conversion: accept a tenant offer or wait", "value": -0.0001, "se": 0.0001,
        "with": [4.61, 0.1], "without": [4.61, 0.1],
        "sign_share_by_year": {"Sandersville": [0.1, 0.2], "Texas": [0.0, 0.05]},
        "boundary_btc_by_year": {"Sandersville": [None, None], "Texas": [61000.0, 70000.0]}}])
    html = report.render_report(cube)
    section = html[html.index('<section id="options">'):html.index('<section id="methodology">')]
    assert "curtailment by machine class" in section and "$0.007" in section
    assert "13.5 J/TH below $18.14/PH/day" in section and "yr 1 7%" in section
    assert "mothballed or sold at a median hashprice of $17.20–$25.40/PH/day" in section
    assert "yr 1 2%, yr 2 30%" in section
    assert "cohorts renewed at a median hashprice of $39.00/PH/day" in section
    assert "Sandersville: every offer accepted" in section
    assert "Texas: offers accepted with BTC below $61,000–$70,000" in section
    assert "Sandersville: yr 1 10%, yr 2 20%" in section
    bare = report.render_report(synthetic_cube(paths=300, months=36))
    assert "<code>minersim run SCENARIO --drivers</code>" in bare
