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
    rows = [{"key": f"sites.sandersville.lease.rate_usd_per_kw_month.{i}",
             "median_low": 9.0 + i, "median_high": 15.0 - i} for i in range(6)]
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
                           {"today": value, "market_price": 14.57, "fair_value": 12.0}),
        "decoupling": (charts.decoupling, (beta["rows"],), {}),
        "convergence": (charts.convergence, (n, mean, se), {}),
        "tornado": (charts.tornado, (rows, 12.0), {"market_price": 14.57}),
        "cdf_overlay": (charts.cdf_overlay, ({"A: base": value, "B: bear": 0.7 * value},),
                        {"market_price": 14.57,
                         "fair_values": {"A: base": (12.1, 0.2), "B: bear": (8.4, 0.15)}}),
        "decoupling_overlay": (charts.decoupling_overlay,
                               ({"A: base": beta["rows"], "B: no-pivot": beta["rows"]},), {}),
    }


NAMES = ["value_hist_cdf", "fan_chart", "revenue_segments", "sotp_bridge", "site_timelines",
         "forward_values", "decoupling", "convergence", "tornado", "cdf_overlay",
         "decoupling_overlay"]


def test_every_chart_function_is_checked():
    drawn = {name for name in charts.__all__ if hasattr(getattr(charts, name), "__wrapped__")}
    assert drawn == set(NAMES)


def _figure(calls, name):
    """The chart's figure, laid out as :func:`charts.render` lays it out, with a renderer."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from simulator.report.charts import _style
    fn, args, kw = calls[name]
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, **kw)
        _style.place(fig)
        fig.set_dpi(150)  # as PNG renders; the SVG's glyph paths are what place() measures
        FigureCanvasAgg(fig)
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
    return fig, renderer


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
        assert name in ("site_timelines", "tornado") or "[" in ax.get_ylabel(), ax.get_ylabel()
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


@pytest.mark.parametrize("name", NAMES)
def test_layout_keeps_every_label_inside_the_figure(calls, name):
    # The one-pass layout (charts._style.place) must leave room for all text: nothing
    # drawn outside the canvas, where SVG would clip it.
    fig, renderer = _figure(calls, name)
    box = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    tol = 1.0 / 72  # one point
    assert box.x0 >= -tol and box.y0 >= -tol, box
    assert box.x1 <= w + tol and box.y1 <= h + tol, box
    axes = [ax.get_position() for ax in fig.axes if ax.yaxis.get_label_position() == "left"]
    for a, b in zip(axes, axes[1:]):
        assert a.x1 < b.x0  # side-by-side axes do not overlap


def _overlap(a, b, tol=0.5):
    """Whether two display boxes share more than ``tol`` pixels each way."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


@pytest.mark.parametrize("name", NAMES)
def test_no_legend_covers_a_title_a_label_or_the_data(calls, name):
    fig, renderer = _figure(calls, name)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    legends += list(fig.legends)
    texts = [t for ax in fig.axes for t in ax.get_children()
             if isinstance(t, Text) and t.get_text()
             and t.get_text() in {ax.get_title(loc=loc) for loc in ("left", "center", "right")}]
    assert len(texts) >= 1 and all(t.get_text() for t in texts)
    texts += [label for ax in fig.axes for label in (ax.xaxis.label, ax.yaxis.label)
              if label.get_text()]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for text in texts:
            assert not _overlap(box, text.get_window_extent(renderer)), (
                f"legend over {text.get_text()!r}")
        for ax in fig.axes:
            assert not _overlap(box, ax.get_window_extent(renderer)), "legend over the data"


def test_a_title_that_meets_the_legend_is_lifted_above_it():
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from simulator.report.charts import _style
    with matplotlib.rc_context(charts._RC):
        fig, ax = _style.new_figure(3.0)
        for i in range(4):
            ax.plot([0, 1], [i, i], label=f"a long legend entry number {i}")
        ax.set(title="A title long enough to reach the legend's columns", xlabel="x [1]",
               ylabel="y [1]")
        _style.legend_top(ax, 2)
        _style.place(fig)
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
    title = next(t for t in ax.get_children() if isinstance(t, Text)
                 and t.get_text() == ax.get_title(loc="left"))
    legend = ax.get_legend().get_window_extent(renderer)
    assert title.get_window_extent(renderer).y0 >= legend.y1  # above it, not beside it
    assert fig.get_tightbbox(renderer).y1 <= fig.get_size_inches()[1] + 1 / 72


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


SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", NAMES)
def test_svg_opens_with_title_and_description(calls, rendered, name):
    root = ET.fromstring(rendered[name])
    first, second = list(root)[:2]
    assert (first.tag, second.tag) == (SVG + "title", SVG + "desc")
    fn, args, kw = calls[name]
    import matplotlib
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, **kw)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert first.text == "; ".join(titles)
    # One sentence naming the axes with their units.
    assert second.text.endswith(".") and re.search(r"\[[^\]]+\]", second.text), second.text


def test_svg_title_and_description_are_escaped_text(calls):
    fn, args, kw = calls["convergence"]
    svg = fn(*args, desc='Mean < $12 & "rising" [USD/share].', title="A <b>bold</b> claim", **kw)
    title, desc = list(ET.fromstring(svg))[:2]
    assert title.text == "A <b>bold</b> claim"
    assert desc.text == 'Mean < $12 & "rising" [USD/share].'
    assert "<b>" not in svg


@pytest.mark.parametrize("price", [14.57, 30.0])
def test_bridge_axis_spans_the_market_price_and_the_fair_value(calls, price):
    import matplotlib
    fn, args, _kw = calls["sotp_bridge"]
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, market_price=price)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo <= 0.0 and hi > price and hi > 12.0  # 12 = mining + HPC, the highest step
    line = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [price, price]]
    assert len(line) == 1
    label = [t.get_text() for t in ax.texts if "market price" in t.get_text()]
    assert label == [f"market price\n${price:.2f}"]


def test_distinct_halvings_keeps_the_first_month_of_each():
    m = [np.datetime64(d, "ns") for d in ("2032-05-01", "2028-04-01", "2028-05-01",
                                          "2032-04-01")]
    assert charts.distinct_halvings(m) == [np.datetime64("2028-04-01", "ns"),
                                           np.datetime64("2032-04-01", "ns")]
    assert charts.distinct_halvings([]) == []
    # Six months apart is still one halving; seven months apart is two.
    assert len(charts.distinct_halvings([np.datetime64("2028-04"), np.datetime64("2028-10")])) == 1
    assert len(charts.distinct_halvings([np.datetime64("2028-04"), np.datetime64("2028-11")])) == 2


@pytest.mark.parametrize("name", ["fan_chart", "revenue_segments"])
def test_one_halving_line_per_halving(calls, name):
    import matplotlib
    fn, args, kw = calls[name]
    months = [np.datetime64(d) for d in ("2028-04-01", "2028-05-01", "2029-04-01", "2029-05-01")]
    with matplotlib.rc_context(charts._RC):
        fig = fn.__wrapped__(*args, **{**kw, "halvings": months})
    ax = fig.axes[0]
    vertical = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(vertical) == 2
    assert [t.get_text() for t in ax.get_legend().texts].count("halving") == 1


def _step_value(x, y, at):
    """The value of a steps-post line through (x, y) at each of ``at``."""
    return y[np.searchsorted(x, at, side="right") - 1]


def test_cdf_overlay_draws_each_empirical_cdf_with_its_fair_value():
    import matplotlib
    rng = np.random.default_rng(3)
    n = 20_000
    # Many worthless paths: the CDF must jump at $0 (a density would spike there).
    a = np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(2.0, 0.6, n))
    b = np.where(rng.random(n) < 0.9, 0.0, rng.lognormal(1.5, 0.6, n))
    fair = {"A": (float(a.mean()), 0.05), "B": (float(b.mean()), 0.02)}
    with matplotlib.rc_context(charts._RC):
        fig = charts.cdf_overlay.__wrapped__({"A": a, "B": b}, 14.57, fair_values=fair)
    ax = fig.axes[0]
    steps = [ln for ln in ax.get_lines() if ln.get_drawstyle() == "steps-post"]
    assert len(steps) == 2
    lo, hi = ax.get_xlim()
    pooled = np.concatenate([a, b])
    assert lo < 0.0 <= lo + 0.02 * (hi - lo) and hi >= np.quantile(pooled, 0.99)
    grid = np.concatenate([[0.0], np.linspace(0.01, np.quantile(pooled, 0.99), 200)])
    for line, v in zip(steps, (a, b), strict=True):
        x, y = line.get_xdata(), line.get_ydata()
        exact = np.searchsorted(np.sort(v), grid, side="right") / n
        assert np.max(np.abs(_step_value(x, y, grid) - exact)) <= 1e-3 + 1 / n
    assert _step_value(*steps[0].get_data(), np.array([0.0]))[0] == pytest.approx(
        np.mean(a == 0.0), abs=1e-3)
    diamonds = [ln for ln in ax.get_lines() if ln.get_marker() == "D" and len(ln.get_xdata())]
    for ln, (label, v) in zip(diamonds, (("A", a), ("B", b)), strict=True):
        fv = fair[label][0]
        assert ln.get_xdata()[0] == fv and ln.get_ydata()[0] == pytest.approx(np.mean(v <= fv))
    market = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [14.57, 14.57]]
    assert len(market) == 1
    texts = [t.get_text() for t in ax.get_legend().texts]
    assert any("market price $14.57" in t for t in texts)
    assert any(t.startswith("A (fair value $") and "of paths at $0" in t for t in texts)
    assert "share of paths" in ax.get_ylabel() and "[1]" in ax.get_ylabel()
    assert "[USD/share]" in ax.get_xlabel() and "pricing measure" in ax.get_xlabel()
