"""Charts: self-contained deterministic SVG, labelled axes with units, readable fonts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.text import Text
from synthetic import synthetic_cube

from simulator.report import charts
from simulator.analysis import decoupling, stats


@pytest.fixture(scope="module")
def cube():
    return synthetic_cube(paths=1_000, months=48)


@pytest.fixture(scope="module")
def calls(cube):
    """(function, args, kwargs) for every chart, from the synthetic cube."""
    time = cube["time"].values
    value = cube["value_per_share"].values
    beta = decoupling.btc_beta(cube)
    n, mean, se = stats.running_mean(value)
    halvings = [np.datetime64("2028-04-01")]
    return {
        "value_hist_cdf": (charts.value_hist_cdf, (value, 14.57), {}),
        "fan_chart": (charts.fan_chart, (time, stats.fan(cube, "btc_price")),
                      {"title": "BTC price", "ylabel": "BTC price [USD/BTC, log scale]",
                       "halvings": halvings, "log": True}),
        "revenue_segments": (charts.revenue_segments,
                             (time, stats.fan(cube, "mining_revenue") / 1e6,
                              stats.fan(cube, "hpc_revenue") / 1e6), {"halvings": halvings}),
        "sotp_bridge": (charts.sotp_bridge, ([("mining", 3.0), ("HPC", 9.0), ("debt", -4.0)],
                                             8.0), {"market_price": 14.57}),
        "site_timelines": (charts.site_timelines,
                           (cube["sign_month"].values, cube["energise_month"].values,
                            cube["site"].values.tolist(), time[0], time.size), {}),
        "forward_values": (charts.forward_values, (cube["forward_value_per_share"].values,
                                                   [1, 2, 3]),
                           {"today": value, "market_price": 14.57}),
        "decoupling": (charts.decoupling, (beta["rows"],), {}),
        "convergence": (charts.convergence, (n, mean, se), {}),
    }


NAMES = ["value_hist_cdf", "fan_chart", "revenue_segments", "sotp_bridge", "site_timelines",
         "forward_values", "decoupling", "convergence"]


@pytest.fixture(scope="module")
def rendered(calls):
    """Each chart rendered once (rendering is the slow part of these tests)."""
    return {name: fn(*args, **kw) for name, (fn, args, kw) in calls.items()}


@pytest.mark.parametrize("name", NAMES)
def test_svg_is_self_contained_and_deterministic(rendered, name):
    svg = rendered[name]
    assert svg.startswith("<svg")
    ET.fromstring(svg)  # well-formed XML
    assert "<!DOCTYPE" not in svg and "<metadata" not in svg
    # Namespace declarations are names, not fetches; nothing else may point outside.
    assert "http" not in re.sub(r'xmlns(:\w+)?="[^"]*"', "", svg)
    assert "<text" not in svg, "fonts must be embedded as paths"
    assert len(svg) < 250_000


@pytest.mark.parametrize("name", ["value_hist_cdf", "sotp_bridge"])
def test_svg_is_deterministic(calls, rendered, name):
    fn, args, kw = calls[name]
    assert fn(*args, **kw) == rendered[name]


@pytest.mark.parametrize("name", NAMES)
def test_titles_labels_and_font_sizes(calls, name):
    fn, args, kw = calls[name]
    import matplotlib
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, **kw)
    for ax in fig.axes:
        # Category axes (bridge components, site rows) carry names, not units.
        assert name == "site_timelines" or "[" in ax.get_ylabel(), ax.get_ylabel()
        twin = ax.get_ylabel().startswith("cumulative")  # shares its host's x axis
        assert twin or name == "sotp_bridge" or "[" in ax.get_xlabel(), ax.get_xlabel()
    assert any(ax.get_title(loc="left") for ax in fig.axes)
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert min(sizes) >= 8.5


def test_chart_ids_do_not_clash(rendered):
    ids = [set(re.findall(r'id="([^"]+)"', rendered[name])) for name in NAMES]
    assert all(ids)
    assert sum(len(s) for s in ids) == len(set().union(*ids))


def test_png_bytes(calls):
    fn, args, kw = calls["convergence"]
    png = fn(*args, fmt="png", dpi=72, **kw)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_format(calls):
    fn, args, kw = calls["convergence"]
    with pytest.raises(ValueError, match="'svg' or 'png'"):
        fn(*args, fmt="pdf", **kw)


def test_no_pyplot_figures_left_open(rendered):
    import sys
    assert rendered
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def _compare_calls(cube):
    value = cube["value_per_share"].values
    rows = [{"key": f"sites.sandersville.lease.rate_usd_per_kw_month.{i}", "median_low": 9.0 + i,
             "median_high": 15.0 - i} for i in range(6)]
    beta = decoupling.btc_beta(cube)["rows"]
    return {"tornado": (charts.tornado, (rows, 12.0), {"market_price": 14.57}),
            "value_overlay": (charts.value_overlay, ({"base": value, "bear": 0.7 * value},),
                              {"market_price": 14.57}),
            "decoupling_overlay": (charts.decoupling_overlay, ({"base": beta, "bull": beta},),
                                   {})}


@pytest.mark.parametrize("name", NAMES + ["tornado", "value_overlay", "decoupling_overlay"])
def test_layout_keeps_every_label_inside_the_figure(cube, calls, name):
    # The one-pass layout (charts._style.place) must leave room for all text: nothing
    # drawn outside the canvas, where SVG would clip it.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from simulator.report.charts import _style
    fn, args, kw = calls[name] if name in calls else _compare_calls(cube)[name]
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, **kw)
        _style.place(fig)
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        box = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    tol = 1.0 / 72  # one point
    assert box.x0 >= -tol and box.y0 >= -tol, box
    assert box.x1 <= w + tol and box.y1 <= h + tol, box
    axes = [ax.get_position() for ax in fig.axes if ax.yaxis.get_label_position() == "left"]
    for a, b in zip(axes, axes[1:]):
        assert a.x1 < b.x0  # side-by-side axes do not overlap


@pytest.mark.parametrize("n", [1_000, 200_000])
def test_cdf_is_drawn_from_quantiles_whatever_the_path_count(n):
    import matplotlib
    v = np.random.default_rng(n).lognormal(2.0, 0.6, n)
    with matplotlib.rc_context(charts._RC):
        fig = charts.value_hist_cdf.__wrapped__(v, 14.57)
    line = fig.axes[1].get_lines()[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert x.size == 1001
    grid = np.linspace(np.quantile(v, 0.01), np.quantile(v, 0.99), 50)
    ecdf = np.searchsorted(np.sort(v), grid, side="right") / n
    np.testing.assert_allclose(np.interp(grid, x, y), ecdf, atol=1.5e-3)
    bars = fig.axes[0].patches
    assert len(bars) == 60 and sum(b.get_height() for b in bars) <= n
