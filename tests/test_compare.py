"""compare: paired deltas, assumption diffs, attribution, decoupling across scenarios."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from simulator.analysis import compare as cmp
from simulator.analysis import decoupling
from simulator.cli import cli
from simulator.report.compare_report import render_compare
from simulator.report.html import check_self_contained
from simulator.scenario import load
from simulator.run import simulate

PATHS = 1024


def test_compare_base_base_is_exactly_zero():
    result = cmp.compare(["base", "base"], paths=PATHS)
    for row in result["deltas"][0]["rows"]:
        assert row["delta"] == 0.0 and row["se"] == 0.0, row
    assert result["diff"] == []
    assert result["attribution"]["steps"] == [] and result["attribution"]["total"] == 0.0
    html = render_compare(result)
    assert "identical inputs" in html and "nothing to attribute" in html
    _check_compare_page(html, result)


def _check_compare_page(html, result):
    """Tables scroll inside their own box; each figure states its measure; the value chart
    is a CDF marking each fair value (a density was a spike at $0 with the rest flattened)."""
    import re
    import xml.etree.ElementTree as ET

    assert html.count("<table") == html.count('<div class="table-wrap"><table') > 0
    assert html.count("</table></div>") == html.count("<table")
    titles = {ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text: svg
              for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)}
    assert "Value per share today by scenario (pricing measure)" in titles
    assert "Value per share in 12 months by scenario (real-world measure)" in titles
    for svg in titles.values():
        desc = ET.fromstring(svg).find("{http://www.w3.org/2000/svg}desc").text
        assert "[USD/share]" in desc or "[1]" in desc, desc
    for cube, label in zip(result["cubes"], result["labels"], strict=True):
        fair = f"${cube.attrs['fair_value_per_share']:,.2f}"
        assert f"{label} fair value {fair}" in html  # in the chart's text alternative
    assert "pathwise values under the pricing measure" in html
    assert "its spread is not a forecast" in html and "across real-world paths" in html


def test_attribution_steps_add_up_to_the_total_delta():
    result = cmp.compare(["base", "bear"], paths=PATHS)
    att = result["attribution"]
    groups = [s["group"] for s in att["steps"]]
    assert "sites[sandersville]" in groups and "sites[texas]" in groups
    assert sum(s["move"] for s in att["steps"]) == pytest.approx(att["total"], abs=1e-9)
    assert att["residual"] == 0.0  # the last step is B itself, on the same random numbers
    a, b = result["values"]
    assert att["total"] == pytest.approx(np.median(b) - np.median(a), abs=1e-12)
    # SE of the paired mean difference by hand: sd(b - a) / sqrt(n).
    mean_row = result["deltas"][0]["rows"][0]
    assert mean_row["se"] == pytest.approx(np.std(b - a, ddof=1) / np.sqrt(a.size))
    keys = {r["key"] for r in result["diff"]}
    assert {"market.btc.process.kind", "sites[texas].conversion.signing_probability"} <= keys
    check_self_contained(render_compare(result))


def test_paired_quantile_se_against_closed_forms():
    rng = np.random.default_rng(11)
    a = rng.standard_normal(4000)
    # A pure shift moves every quantile of every resample by the shift: SE exactly 0.
    assert cmp.paired_quantile_se(a, a + 2.5, [0.05, 0.5, 0.95]) == pytest.approx(0, abs=1e-12)
    # Independent N(0,1): var(median) = (pi/2)/n each, so SE(diff) = sqrt(pi/n). The bootstrap
    # SE with 200 resamples has ~5% relative error; allow 4 of those.
    b = rng.standard_normal(4000)
    se = cmp.paired_quantile_se(a, b, [0.5])[0]
    assert se == pytest.approx(np.sqrt(np.pi / 4000), rel=0.2)


def test_flatten_and_diff_by_hand():
    a = {"name": "a", "x": {"p": 1, "d": {"dist": "uniform", "low": 0, "high": 1}},
         "sites": [{"name": "s1", "mw": 10}]}
    b = {"name": "b", "x": {"p": 1, "d": {"dist": "uniform", "low": 0, "high": 2}},
         "sites": [{"name": "s1", "mw": 12}, {"name": "s2", "mw": 5}]}
    assert cmp.flatten(a) == {"x.p": "1", "x.d": "uniform(low=0, high=1)", "sites[s1].mw": "10"}
    assert cmp.assumption_diff([a, b]) == [
        {"key": "sites[s1].mw", "values": ["10", "12"]},
        {"key": "sites[s2].mw", "values": [None, "5"]},
        {"key": "x.d", "values": ["uniform(low=0, high=1)", "uniform(low=0, high=2)"]}]
    assert cmp.groups(a, b) == ["x", "sites[s1]", "sites[s2]"]
    stepped = cmp.apply_group(cmp.apply_group(a, b, "sites[s2]"), b, "sites[s1]")
    assert stepped["sites"] == b["sites"]


def test_by_year_3_the_signed_campuses_decouple_the_stock_from_btc():
    """In base at year 3, on the real-world paths where every site has signed a tenant, the
    stock's 12-month return moves far less with BTC's than where only some have (beta, with
    its standard errors; R² is too noisy over these heavy-tailed returns to rank them).

    (Against the no-pivot case the comparison is muddied: without the leases most paths are
    worthless by year 3, and returns from near-zero marks dominate its regression.)"""
    cube = simulate(load("base").scenario, 2048, 7, store_paths=2048)
    rows = {r["state"]: r for r in decoupling.btc_beta(cube)["by_state"] if r["year"] == 3}
    every, some = rows["every site signed"], rows["some sites signed"]
    assert every["n"] > 200 and some["n"] > 100
    assert some["beta"] - every["beta"] > 3 * np.hypot(some["beta_se"], every["beta_se"]), rows


def test_cli_compare_with_a_saved_run(tmp_path, monkeypatch):
    from simulator import cli as cli_mod

    reports = []
    update = cli_mod._LabelledProgress.update

    def record(self, label, done, total):
        reports.append((label, done, total))
        update(self, label, done, total)

    monkeypatch.setattr(cli_mod._LabelledProgress, "update", record)
    runner = CliRunner()
    run_dir = tmp_path / "runs" / "base"
    res = runner.invoke(cli, ["run", "base", "--paths", str(PATHS), "--seed", "5", "--out",
                              str(run_dir), "--no-report"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "cmp.html"
    res = runner.invoke(cli, ["compare", "base", str(run_dir), "--paths", str(PATHS), "--seed",
                              "5", "--no-attribution", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "B: base - A: base: median +0.00 (SE 0.00)" in res.output
    # Each scenario's line leads with its fair value, the same for a run and its re-run.
    lines = [line for line in res.output.splitlines() if "fair value $" in line]
    assert len(lines) == 2 and "pricing measure" in lines[0]
    assert lines[0].split("fair value")[1] == lines[1].split("fair value")[1]
    # A is simulated and reports its chunks; B, a saved run used as saved, reports nothing.
    assert reports and {r[0] for r in reports} == {"A: base"} and reports[-1][1] == reports[-1][2]
    # Standard error is no terminal here (a CI log): no bar, no label.
    assert "A: base" not in res.stderr and "#" not in res.stderr and "%" not in res.stderr
    html = out.read_text(encoding="utf-8")
    assert "Saved runs used as saved: B: base." in html
    res = runner.invoke(cli, ["compare", "base"])
    assert res.exit_code == 2 and "at least two" in res.output


def test_progress_bar_per_simulation_on_a_terminal_only():
    import io

    from simulator.cli import _LabelledProgress

    for tty in (True, False):
        out = io.StringIO()
        with _LabelledProgress(file=out, tty=tty) as progress:
            for done in (1, 2, 3):
                progress.update("A: base", done, 3)
            progress.update("B: bear", 1, 1)  # one chunk: over before a bar could help
            progress.update("attribution: + market", 1, 2)
        text = out.getvalue()
        if tty:
            # click draws a bar on a terminal; on this StringIO it writes each label once.
            assert text.count("A: base") == 1 and "attribution: + market" in text
            assert "B: bear" not in text
        else:
            assert text == ""
