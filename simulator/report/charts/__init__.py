"""Report charts: matplotlib figures rendered to self-contained SVG text or PNG bytes.

Every public function takes plain arrays (already reduced by ``analysis``), builds one
figure, renders it and lets it go; nothing is written to disk. SVG output has fonts as
paths, no metadata, no DOCTYPE and ids prefixed with a content hash, so several charts can
be inlined in one HTML page without id clashes or external references, and the same inputs
always give the same bytes. Each SVG opens with ``<title>`` (the chart's title) and
``<desc>`` (one sentence with the units; every chart function takes ``desc=`` to replace the
generated one) for screen readers. House style, rendering and the one-pass layout live in
:mod:`simulator.report.charts._style`.

Arrays over paths are reduced before they reach matplotlib (histograms binned, CDFs drawn
on a grid of quantiles), so drawing costs the same at 1,000 or 1,000,000 paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulator import units as u
from simulator.report.charts._style import (ACCENT, BAND_INNER, BAND_OUTER, BLUE, GREY, NAVY,
                                            NEG, RC, TEAL, TEAL_LIGHT, WIDTH, distinct_halvings,
                                            halving_lines, legend_top, money, new_figure, plain,
                                            plain_minor, render, styled)
from simulator.report.charts.compare import cdf_overlay, decoupling_overlay, tornado

_RC = RC  # the house rcParams, for callers that build figures with ``__wrapped__``

__all__ = ["WIDTH", "render", "value_hist_cdf", "fan_chart", "revenue_segments", "sotp_bridge",
           "site_timelines", "forward_values", "decoupling", "convergence", "tornado",
           "cdf_overlay", "decoupling_overlay", "distinct_halvings"]


@styled
def value_hist_cdf(values: np.ndarray, market_price: float | None = None, *,
                   title: str = "Value per share today",
                   xlabel: str = f"value per share [{u.USD_PER_SHARE}]") -> Figure:
    """Histogram and CDF of value per share, with the market price marked.

    Parameters
    ----------
    values : ndarray [path]
        Value per share [USD/share]; NaN (failed paths) ignored.
    market_price : float, optional
        Market share price [USD/share], drawn as a vertical line.

    Notes
    -----
    The x axis spans P0.5 to P99.5 so a few extreme paths do not squash the picture; the
    axis note says how many paths fall outside. The CDF uses every path, drawn through its
    values at 1,001 evenly spaced probabilities (0.1 % steps: finer than the line width), so
    the drawing does not grow with the path count.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    lo, hi = np.quantile(v, [0.005, 0.995])
    if market_price is not None:
        lo, hi = min(lo, market_price), max(hi, market_price)
    counts, edges = np.histogram(v, bins=60, range=(lo, hi))
    fig, ax = new_figure(3.6)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BAND_INNER,
           edgecolor="white", linewidth=0.4)
    ax.set(title=title, xlabel=xlabel, ylabel="paths per bin [count]", xlim=(lo, hi))
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    cdf = ax.twinx()
    p = np.linspace(0.0, 1.0, 1001)
    cdf.plot(np.quantile(v, p, method="inverted_cdf"), p, color=NAVY, lw=1.6)
    cdf.set(ylim=(0, 1.02), ylabel="cumulative share of paths [1]")
    cdf.grid(False)
    cdf.spines["right"].set_visible(True)
    med = float(np.median(v))
    ax.axvline(med, color=NAVY, ls="--", lw=1.1, label=f"median {money(med)}")
    if market_price is not None:
        ax.axvline(market_price, color=ACCENT, lw=1.8, label=f"market price {money(market_price)}")
    outside = int(np.sum((v < lo) | (v > hi)))
    ax.set_xlabel(f"{xlabel} ({v.size:,} paths; {outside:,} outside the axis range)")
    legend_top(ax, 2)
    return fig


@styled
def fan_chart(time: np.ndarray, bands: np.ndarray, *, title: str, ylabel: str,
              halvings: Sequence[Any] = (), log: bool = False,
              mean: np.ndarray | None = None, reference: float | None = None,
              reference_label: str = "") -> Figure:
    """Fan chart: P5-P95 and P25-P75 bands, median line, halving months dashed.

    Parameters
    ----------
    time : ndarray of datetime64 [time]
    bands : ndarray [5, time]
        P5, P25, P50, P75, P95 in display units (the caller scales, e.g. to USD M/month).
    halvings : sequence of datetime64
        Months drawn as vertical dashed lines, one per halving: months within six months of
        each other count once (:func:`distinct_halvings`).
    log : bool
        Logarithmic y axis (prices); stated in the axis label by the caller.
    mean : ndarray [time], optional
        Exact all-path mean, drawn dotted.
    """
    fig, ax = new_figure(3.2)
    t = np.asarray(time).astype("datetime64[D]")
    ax.fill_between(t, bands[0], bands[4], color=BAND_OUTER, lw=0, label="P5-P95")
    ax.fill_between(t, bands[1], bands[3], color=BAND_INNER, lw=0, label="P25-P75")
    ax.plot(t, bands[2], color=NAVY, lw=1.8, label="median")
    if mean is not None:
        ax.plot(t, mean, color=NAVY, lw=1.1, ls=":", label="mean (all paths)")
    if reference is not None:
        ax.axhline(reference, color=ACCENT, lw=1.2, label=reference_label or None)
    halving_lines(ax, halvings)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(plain))
        ax.yaxis.set_minor_formatter(FuncFormatter(plain_minor))
    elif np.nanmax(np.abs(bands)) >= 1_000:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:,.0f}"))
    ax.set(title=title, ylabel=ylabel, xlabel="month [calendar date]", xlim=(t[0], t[-1]))
    legend_top(ax, 5)
    return fig






@styled
def revenue_segments(time: np.ndarray, mining: np.ndarray, hpc: np.ndarray, *,
                     halvings: Sequence[Any] = (),
                     ylabel: str = "revenue [USD M/month]",
                     title: str = "Revenue by segment") -> Figure:
    """Mining vs HPC revenue: median lines with P25-P75 bands per segment.

    Parameters
    ----------
    mining, hpc : ndarray [5, time]
        P5, P25, P50, P75, P95 of each segment's revenue in display units.
    """
    fig, ax = new_figure(3.2)
    t = np.asarray(time).astype("datetime64[D]")
    for bands, dark, light, name in ((mining, NAVY, BAND_INNER, "mining"),
                                     (hpc, TEAL, TEAL_LIGHT, "HPC leases")):
        ax.fill_between(t, bands[1], bands[3], color=light, alpha=0.8, lw=0,
                        label=f"{name} P25-P75")
        ax.plot(t, bands[2], color=dark, lw=1.8, label=f"{name} median")
    halving_lines(ax, halvings)
    ax.set(title=title, ylabel=ylabel, xlabel="month [calendar date]",
           xlim=(t[0], t[-1]))
    ax.set_ylim(bottom=0)
    legend_top(ax, 3)
    return fig


@styled
def sotp_bridge(steps: Sequence[tuple[str, float]], total: float, *,
                market_price: float | None = None,
                ylabel: str = f"value per share [{u.USD_PER_SHARE}]",
                title: str = "Fair value by component (pricing measure)",
                total_label: str = "fair value",
                xlabel: str = "") -> Figure:
    """Waterfall from segment values to equity per share, against the market price.

    Parameters
    ----------
    steps : sequence of (label, value)
        Signed contributions [USD/share], in bridge order.
    total : float
        Equity value per diluted share [USD/share]; the last bar. Equals the sum of ``steps``.
    market_price : float, optional
        Market share price [USD/share], drawn as a dashed line labelled in the right margin.

    Notes
    -----
    The y axis spans every running total, the fair value, zero and the market price, with
    12 % headroom above the highest for the bars' value labels.
    """
    fig, ax = new_figure(3.6)
    labels = [s[0] for s in steps] + [total_label]
    vals = np.array([s[1] for s in steps], dtype=np.float64)
    ends = np.cumsum(vals)
    starts = ends - vals
    x = np.arange(len(labels))
    colors = [BLUE if v >= 0 else NEG for v in vals] + [NAVY]
    heights = np.append(vals, total)
    bottoms = np.append(starts, 0.0)
    ax.bar(x, heights, bottom=bottoms, color=colors, width=0.62)
    for i in range(len(vals) - 1):
        ax.plot([x[i] + 0.31, x[i + 1] - 0.31], [ends[i], ends[i]], color=GREY, lw=0.7)
    for xi, b, h in zip(x, bottoms, heights, strict=True):
        sign = "+" if h > 0 and xi < len(vals) else ""
        ax.annotate(f"{sign}{money(h)}", (xi, max(b, b + h)), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=9)
    levels = np.append(ends, [total, 0.0])
    if market_price is not None:
        levels = np.append(levels, market_price)
        ax.axhline(market_price, color=ACCENT, lw=1.4, ls="--")
        # Labelled at the line's end, in the right margin: no legend to find, nothing covered.
        ax.annotate(f"market price\n{money(market_price)}", (1.0, market_price),
                    xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=9, color=ACCENT)
    ax.axhline(0, color="#555555", lw=0.8)
    ax.set_xticks(x, labels, fontsize=9)
    top, bottom = float(np.max(levels)), float(np.min(levels))
    ax.set_ylim(bottom - 0.04 * (top - bottom) if bottom < 0 else 0.0,
                top + 0.12 * (top - bottom))
    ax.yaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title=title, ylabel=ylabel, xlabel=xlabel)
    ax.grid(axis="x", visible=False)
    return fig


@styled
def site_timelines(sign_month: np.ndarray, energise_month: np.ndarray, sites: Sequence[str],
                   start: Any, months: int, *, title: str = "Site conversion timelines") -> Figure:
    """Per site: distribution of signing and energisation dates, and the share never signing.

    Parameters
    ----------
    sign_month, energise_month : ndarray [path, site] of int
        Month index (0 = first simulated month); -1 = never within the horizon.
    start : datetime64
        First month of the time axis.
    months : int
        Horizon length [months].

    Notes
    -----
    Boxes span P25-P75 with the median; whiskers P5-P95 of the paths where the event
    happens. The right margin states the share of paths where it never happens.
    """
    n = len(sites)
    fig, ax = new_figure(1.0 + 0.95 * n)
    y0 = np.datetime64(start, "M").astype(int) / 12 + 1970
    ticks, labels = [], []
    for k, site in enumerate(sites):
        for j, (arr, name, color) in enumerate(((sign_month, "signs", BAND_INNER),
                                                (energise_month, "energised", TEAL_LIGHT))):
            col = np.asarray(arr)[:, k]
            hit = col[col >= 0]
            pos = (n - 1 - k) * 2.4 + (1 - j)
            never = 1 - hit.size / col.size
            if hit.size:
                bp = ax.boxplot(y0 + hit / 12, positions=[pos], orientation="horizontal",
                                whis=(5, 95), showfliers=False, widths=0.6, patch_artist=True,
                                medianprops={"color": NAVY, "lw": 1.6})
                bp["boxes"][0].set(facecolor=color, edgecolor=NAVY)
            ax.annotate(f"never {name}: {never:.0%}", (1.0, pos), xycoords=("axes fraction",
                        "data"), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize=9, color=GREY)
            ticks.append(pos)
            labels.append(f"{site}: {'signing' if j == 0 else 'energisation'}")
    ax.set_yticks(ticks, labels)
    last = max(int(np.max(sign_month)), int(np.max(energise_month)), 0)
    ax.set_xlim(y0, y0 + min(months, last + 12) / 12)
    ax.set(title=title, xlabel="date [calendar year]")
    ax.grid(axis="y", visible=False)
    return fig


@styled
def forward_values(forward: np.ndarray, years: Sequence[int], *, today: np.ndarray | None = None,
                   market_price: float | None = None, fair_value: float | None = None,
                   title: str = "Forecast value per share (real-world measure)") -> Figure:
    """Box plots of the forecast value per share at 1/2/3 years, against the market price.

    Parameters
    ----------
    forward : ndarray [path, year]
        Forward value per share, the mark on real-world paths [USD/share]; NaN ignored.
    today : ndarray [path], optional
        A distribution of value per share at the valuation date to box first [USD/share].
    market_price, fair_value : float, optional
        Today's market price and fair value (pricing measure) [USD/share], drawn as lines.

    Notes
    -----
    Boxes P25-P75 with median, whiskers P5-P95; outliers not drawn.
    """
    cols = [] if today is None else [np.asarray(today, dtype=np.float64)]
    cols += [np.asarray(forward, dtype=np.float64)[:, j] for j in range(len(years))]
    cols = [c[~np.isnan(c)] for c in cols]
    labels = ([] if today is None else ["today"]) + [f"year {y}" for y in years]
    fig, ax = new_figure(3.4)
    bp = ax.boxplot(cols, tick_labels=labels, whis=(5, 95), showfliers=False, widths=0.5,
                    patch_artist=True, medianprops={"color": NAVY, "lw": 1.8})
    for box in bp["boxes"]:
        box.set(facecolor=BAND_INNER, edgecolor=NAVY)
    lines = 0
    if market_price is not None:
        ax.axhline(market_price, color=ACCENT, lw=1.4, ls="--",
                   label=f"market price today {money(market_price)}")
        lines += 1
    if fair_value is not None:
        ax.axhline(fair_value, color=NAVY, lw=1.2, ls=":",
                   label=f"fair value today {money(fair_value)} (pricing)")
        lines += 1
    if lines:
        legend_top(ax, lines)
    ax.yaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title=title,
           ylabel=f"value per share [{u.USD_PER_SHARE}]",
           xlabel="horizon from the valuation date [years]")
    ax.grid(axis="x", visible=False)
    return fig


@styled
def decoupling(rows: Sequence[dict[str, Any]]) -> Figure:
    """BTC beta (with ±2 SE) and R² of the stock's 12-month return on BTC's, by year.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`simulator.analysis.decoupling.btc_beta` (year, beta, beta_se, r2).
    """
    years = np.array([r["year"] for r in rows])
    beta = np.array([r["beta"] for r in rows], dtype=np.float64)
    se = np.array([r["beta_se"] for r in rows], dtype=np.float64)
    r2 = np.array([r["r2"] for r in rows], dtype=np.float64)
    fig, (a1, a2) = new_figure(3.0, ncols=2)
    a1.errorbar(years, beta, yerr=2 * se, fmt="o-", color=NAVY, capsize=4, lw=1.6)
    a1.axhline(1.0, color=GREY, ls=":", lw=1.0)
    a1.set(title="BTC beta of the 12-month return", xlabel="forward year [years]",
           ylabel="beta [1] (±2 SE)", xticks=years)
    a1.set_ylim(bottom=min(0.0, float(np.nanmin(beta - 2 * se)) if beta.size else 0.0))
    a2.bar(years, r2, color=BAND_INNER, edgecolor=NAVY, width=0.5)
    for y, v in zip(years, r2, strict=True):
        a2.annotate(f"{v:.2f}", (y, v), xytext=(0, 3), textcoords="offset points",
                    ha="center")
    a2.set(title="Variance explained by BTC", xlabel="forward year [years]", ylabel="R² [1]",
           ylim=(0, 1.05), xticks=years)
    a2.grid(axis="x", visible=False)
    return fig


@styled
def convergence(n: np.ndarray, mean: np.ndarray, se: np.ndarray, *,
                ylabel: str = f"mean value per share [{u.USD_PER_SHARE}]",
                title: str = "Convergence of the mean") -> Figure:
    """Running mean ±2 SE against the number of paths (log x axis)."""
    fig, ax = new_figure(3.0)
    ax.fill_between(n, mean - 2 * se, mean + 2 * se, color=BAND_OUTER, lw=0, label="±2 SE")
    ax.plot(n, mean, color=NAVY, lw=1.6, label="running mean")
    ax.axhline(mean[-1], color=GREY, ls=":", lw=1.0, label=f"final {money(mean[-1])}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(plain))
    # Fewer than 10 paths give one point: widen the axis around it rather than collapse it.
    xlim = (n[0], n[-1]) if n[-1] > n[0] else (n[0] / 1.5, n[0] * 1.5)
    ax.set(title=title, xlabel="paths [count, log scale]", ylabel=ylabel,
           xlim=xlim)
    ax.yaxis.set_major_formatter(FuncFormatter(money))
    legend_top(ax, 3)
    return fig
