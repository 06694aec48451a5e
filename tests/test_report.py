"""The HTML report: content, escaping, self-containment, size."""

from __future__ import annotations

import json
import re
from html import escape


def html_escape(text: str) -> str:
    """As Jinja2's autoescape writes text (quotes as numeric entities)."""
    return escape(text, quote=True).replace("&#x27;", "&#39;")

import numpy as np
import pytest
from synthetic import ASSUMPTIONS, SHARE_PRICE, synthetic_cube

from simulator.report import run_report as report
from simulator.errors import RunError
from simulator.report.html import check_self_contained


HOSTILE = {"key": "x", "description": '<img src="x">', "source": "s", "assumption": True}


@pytest.fixture(scope="module")
def cube():
    """One cube (rendering is slow) with a hostile scenario name and assumption text."""
    c = synthetic_cube(paths=1_500, months=48, failed=3, name="<script>alert(1)</script>")
    c.attrs["assumptions_json"] = json.dumps([*ASSUMPTIONS, HOSTILE])
    return c


@pytest.fixture(scope="module")
def html(cube):
    return report.render_report(cube, notes=["BTC drift is real-world: a what-if."])


def test_headline_sentence_uses_independent_numbers(cube, html):
    """Fair value (pricing) against the market and the Street; the 12-month forecast (real-world)."""
    v = cube["value_per_share"].values
    v = v[~np.isnan(v)]
    fair, se = v.mean(), v.std(ddof=1) / np.sqrt(v.size)
    f12 = cube["forward_value_per_share"].sel(horizon=12).values
    f12 = f12[~np.isnan(f12)]
    sentence = (f"Fair value ${fair:,.2f} per share (± ${se:,.2f}, one standard error; pricing "
                f"measure, {v.size:,} paths) against a market price of ${SHARE_PRICE:,.2f} "
                f"({fair / SHARE_PRICE - 1:+.0%}); the Street's targets run from $14.00 to $30.00 "
                f"(consensus $23.20). In twelve months the stock is marked at a median "
                f"${np.median(f12):,.2f} (real-world measure), above today's ${SHARE_PRICE:,.2f} "
                f"on {np.mean(f12 > SHARE_PRICE):.0%} of paths.")
    assert html_escape(sentence) in html
    assert "3 failed path(s) excluded." in html
    assert "BTC drift is real-world: a what-if." in html


def test_sections_present(html):
    for section in ("headline", "assumptions", "bridge", "paths", "sites", "forward",
                    "decoupling", "convergence", "manifest"):
        assert f'id="{section}"' in html


def test_every_chart_is_a_figure_with_caption_and_text_alternative(html):
    figures = re.findall(r"<figure.*?</figure>", html, flags=re.S)
    # value, bridge, 5 fans + revenue, sites, forward, decoupling, convergence
    assert len(figures) == 12
    for fig in figures:
        assert re.search(r'role="img" aria-label="[^"]{20,}"', fig)
        assert re.search(r"<figcaption>[^<]{20,}</figcaption>", fig)
        assert fig.count("<svg") == 1


def test_fan_alt_text_states_numbers(cube, html):
    ok = ~cube["path_failed"].values
    med0, med_end = np.median(cube["btc_price"].values[ok][:, [0, -1]], axis=0)
    assert (f"BTC price: median {med0:,.2f} USD/BTC in 2025-12 and {med_end:,.2f} USD/BTC in "
            "2029-11") in html


def test_assumptions_badges(html):
    items = [*ASSUMPTIONS, HOSTILE]
    n_assumed = sum(a["assumption"] for a in items)
    assert html.count('<span class="badge">assumption</span>') == n_assumed
    assert html.count('<span class="badge sourced">sourced</span>') == len(items) - n_assumed
    assert "<code>sites[*].lease.escalator</code>" in html


@pytest.mark.parametrize("attrs, note", [
    ({}, "No assumptions list was attached to this run."),
    ({"assumptions_json": "{not json"}, "could not be read (invalid JSON)"),
    ({"assumptions_json": "[]"}, "The attached assumptions list is empty."),
])
def test_missing_or_bad_assumptions_handled(attrs, note):
    rows, text = report._assumptions(attrs)
    assert rows == [] and note in text


def test_bridge_adds_up_to_the_fair_value(cube):
    fair = cube.attrs["fair_value_per_share"]
    rows, caption, draw = report.fair_value_bridge(cube, SHARE_PRICE, fair)
    assert draw().startswith("<svg") and "pricing measure" in caption
    labels = [r["label"] for r in rows]
    assert labels[:8] == ["mining", "HPC leases", "SG&A", "taxes", "treasury BTC", "cash",
                          "convertible notes", "later equity raises"]
    values = [float(r["value"].replace("\u2212", "-").replace("$", "").replace(",", ""))
              for r in rows]
    assert sum(values[:-1]) == pytest.approx(values[-1], abs=0.01 * len(values))
    assert values[-1] == pytest.approx(fair, abs=0.005)
    # Each component is the mean over paths per basic share, computed here independently.
    ok = ~np.isnan(cube["value_per_share"].values)
    basic = (cube["diluted_shares"] - cube["shares_issued"]).values[ok]
    assert values[0] == pytest.approx(np.mean(cube["pv_mining"].values[ok] / basic), abs=0.005)
    assert values[6] == pytest.approx(-np.mean(cube["pv_notes"].values[ok] / basic), abs=0.005)


def test_fair_value_by_signing_state_adds_up(cube):
    rows = report.signing_rows(cube, cube.attrs["fair_value_per_share"])
    total = sum(float(r["contribution"].replace("\u2212", "-").replace("$", "")) for r in rows)
    assert total == pytest.approx(np.nanmean(cube["value_per_share"].values), abs=0.01 * len(rows))


def test_manifest_footer(html):
    footer = html[html.index('<footer id="manifest">'):]
    for text in ("ab" * 32, "random", "0.1.0", "1,500", "1.2 s", "$14.57 USD/share"):
        assert text in footer


def test_scenario_name_is_escaped(html):
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html


def test_assumption_text_is_escaped(html):
    assert "&lt;img src=&#34;x&#34;&gt;" in html


@pytest.mark.parametrize("bad", [
    '<img src="https://example.com/a.png">',
    '<script src="app.js"></script>',
    '<link rel="stylesheet" href="style.css">',
    "<style>@import 'x.css';</style>",
    "<div style=\"background: url('http://example.com/bg.png')\"></div>",
    '<img src="chart.png">',
    '<IMG SRC=chart.png>',
    '<object data="//x"></object>',
    "<svg><image xlink:href='https://e.com/a.png'/></svg>",
])
def test_check_self_contained_rejects(bad):
    with pytest.raises(RunError, match="report is not self-contained"):
        check_self_contained(f"<html><body>{bad}</body></html>")


@pytest.mark.parametrize("text", [
    "data src=EDGAR filing", "&lt;script src=x&gt;", "see src=//cdn", "url(http://x) @import y",
])
def test_check_self_contained_ignores_escaped_user_text(text):
    """User text reaches the page escaped: in a cell, or in an attribute we generate."""
    check_self_contained(f'<html><body><td title="{text}">{text}</td><p>{text}</p></body></html>')


def test_check_self_contained_reads_attributes_in_order():
    """A fetching attribute after a quoted value that looks like markup is still found."""
    with pytest.raises(RunError, match="<img src> to a file"):
        check_self_contained('<img alt="x src=#y" src="chart.png">')


def test_check_self_contained_accepts_links():
    """Links fetch nothing until followed: the sources appendix links every fact's page."""
    check_self_contained('<a href="#bridge">x</a><svg xmlns="http://www.w3.org/2000/svg">'
                         '<use xlink:href="#c1-glyph"/></svg><pre>see http://x.org</pre>'
                         '<a href="https://www.sec.gov/x" rel="noreferrer">10-K</a>')


def test_stored_sample_note():
    c = synthetic_cube(paths=400, months=36, sample=100)
    assert "use the stored sample of 100 of 400 paths" in report._sample_note(c)
    assert report._sample_note(synthetic_cube(paths=50, months=36)) == ""


def test_write_report_and_size_at_10k_paths(tmp_path):
    c = synthetic_cube(paths=10_000, months=120)
    path = report.write_report(c, tmp_path / "report.html")
    size = path.stat().st_size
    assert size < 3_000_000, f"report is {size / 1e6:.2f} MB"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("name", ["base", "bull", "bear", "no-pivot"])
def test_resolved_scenario_yaml_keeps_its_comments_and_loads_back(name):
    import yaml

    from simulator.scenario import load
    from simulator.scenario.commented import commented_yaml

    loaded = load(name)
    text = commented_yaml(loaded.resolved, loaded.lines, header="chain")
    assert json.dumps(yaml.safe_load(text), sort_keys=True, default=str) == json.dumps(
        loaded.resolved, sort_keys=True, default=str)
    # A comment set in base.yaml travels with its key into a scenario that extends base.
    assert re.search(r"^    hashrate_ehs: 50  # C-O1$", text, re.M), text[:2000]
    # Each source line's comment is written once, not on every key of a one-line mapping.
    assert text.count("# N-A1..N-A3: S21 17.5 -> S23 9.7 J/TH at the frontier") <= 1


def test_notes_render_backticks_as_code_and_escape_the_rest():
    from simulator.report.html import inline_code

    out = str(inline_code("run `minersim run X --drivers` then <script>alert(1)</script>"))
    assert "<code>minersim run X --drivers</code>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_manifest_labels_the_command_and_engine_times():
    rows = dict(report._manifest_rows({"wall_seconds": 11.04, "runtime_seconds": 2.9}))
    assert rows["command wall time, start to drawing this report"] == "11.0 s"
    assert rows["engine time (simulate: sampling, paths, reductions)"] == "2.9 s"


def test_methodology_and_limitations_follow_the_scenario():
    from simulator.report.memo import limitations, methodology
    from simulator.scenario import load

    base, nopivot = load("base").scenario, load("no-pivot").scenario
    text = " ".join(m["text"] for m in methodology(base))
    assert "geometric Brownian motion" in text and "15.0%" in text and "4.0%" in text
    assert "8,192 pricing paths" in text
    assert any("Only the sites listed" in x for x in limitations(base))
    if not nopivot.sites:
        assert any("pure miner" in x for x in limitations(nopivot))


def test_assumption_status_shows_look_ahead_and_stale_inputs():
    rows = [{"key": "market.btc.process.volatility", "description": "0.45", "source": "N-V2",
             "assumption": False, "status": "look-ahead"},
            {"key": "company.cash_usd_m", "description": "460", "source": "C-B4",
             "assumption": False, "status": "stale"},
            {"key": "company.tax.rate", "description": "0.25", "source": "", "assumption": True,
             "status": ""}]
    groups, summary = report._assumption_groups(rows, {"C-B4"})
    status = {r["key"]: r["status"] for g in groups for r in g["rows"]}
    assert status == {"market.btc.process.volatility": "look-ahead", "company.cash_usd_m": "stale",
                      "company.tax.rate": "assumption"}
    cash = next(r for g in groups for r in g["rows"] if r["key"] == "company.cash_usd_m")
    assert cash["source_parts"] == [{"text": "C-B4", "id": "C-B4"}]


def test_a_pure_miner_with_no_sites_gets_a_report():
    """A company with no site (MARA in the peer files) has an empty site axis: no timeline."""
    cube = synthetic_cube(paths=300, months=36).isel(site=slice(0, 0))
    html = report.render_report(cube)
    assert "No site conversions in this scenario." in html
    assert 'id="fig-sites"' not in html
