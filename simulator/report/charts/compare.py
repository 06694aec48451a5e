"""Charts of the compare report and of the drivers analysis (several runs or inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulator import units as u
from simulator.report.charts._style import (ACCENT, BAND_INNER, GREY, NAVY, OVERLAY, legend_top,
                                            money, new_figure, styled)


@styled
def tornado(rows: Sequence[dict[str, Any]], base_median: float, *,
            market_price: float | None = None, top: int = 12,
            title: str = "Drivers of median value per share") -> Figure:
    """Tornado of median value per share with each input at its P10 and its P90.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`simulator.analysis.drivers.tornado`, largest swing first (key,
        median_low, median_high [USD/share]).
    base_median : float
        Median value per share with nothing held fixed [USD/share]; the bars' axis.
    top : int
        Draw only the ``top`` largest swings.
    """
    rows = list(rows)[:top]
    fig, ax = new_figure(0.9 + 0.34 * max(len(rows), 1))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows, strict=True):
        for val, color, name in ((r["median_low"], BAND_INNER, "input at P10"),
                                 (r["median_high"], NAVY, "input at P90")):
            ax.barh(yi, val - base_median, left=base_median, color=color, height=0.62,
                    label=name if yi == y[0] else None)
    ax.axvline(base_median, color=GREY, lw=1.0, label=f"all sampled {money(base_median)}")
    if market_price is not None:
        ax.axvline(market_price, color=ACCENT, lw=1.4, ls="--",
                   label=f"market price {money(market_price)}")
    ax.set_yticks(y, [r["key"] for r in rows], fontsize=9)
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title=title,
           xlabel=f"median value per share [{u.USD_PER_SHARE}]")
    ax.grid(axis="y", visible=False)
    # Below the axis: four entries beside a left-aligned title would collide with it.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4,
               handlelength=1.6)
    return fig


_DASHES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)))
"""Line styles of the scenarios, so the lines part without colour too."""


@styled
def cdf_overlay(values: dict[str, np.ndarray], market_price: float | None = None, *,
                fair_values: dict[str, tuple[float, float]] | None = None,
                title: str = "Value per share today by scenario (pricing measure)",
                xlabel: str = f"value per share [{u.USD_PER_SHARE}]",
                note: str = ("pathwise value, pricing measure; its mean is the fair value, "
                             "the spread is not a forecast"),
                market_label: str = "market price", medians: bool = False,
                upper: float = 0.99) -> Figure:
    """Empirical cumulative distributions of value per share, one step line per scenario.

    Parameters
    ----------
    values : dict of str to ndarray [path]
        Scenario label -> value per share [USD/share]; NaN (failed paths) ignored.
    market_price : float, optional
        Market share price [USD/share], a vertical dashed line.
    fair_values : dict of str to (float, float), optional
        Scenario label -> (fair value, its standard error) [USD/share], marked with a diamond
        on that scenario's line and given in its legend entry.
    note : str
        What the values are and under which measure; the axis label's second line.
    medians : bool
        Give each scenario's median in its legend entry (for forecasts; under the pricing
        measure the fair value is the number to read).
    upper : float
        The x axis ends at this quantile of the pooled values (or at the market price or a
        fair value, if higher); the axis label says how many paths lie beyond.

    Notes
    -----
    Lines differ in dash as well as colour, and none takes the market price's colour. Unlike
    a density, a CDF shows a mass of worthless paths as a jump at $0 without
    flattening the rest. Each line is drawn through its quantiles at 1,001 evenly spaced
    probabilities (``inverted_cdf``, steps after each point): within 0.1 % of the exact
    empirical CDF at any path count. The x axis starts at 0 (or the pooled P1 if values go
    below it), 1.5 % of the range to the left so that a jump at 0 is not hidden by the axis.
    """
    clean = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    clean = {k: v[~np.isnan(v)] for k, v in clean.items()}
    pooled = np.concatenate(list(clean.values()))
    marks = [] if market_price is None else [market_price]
    marks += [fv for fv, _se in (fair_values or {}).values()]
    lo = min(0.0, float(np.quantile(pooled, 0.01)))
    hi = max([float(np.quantile(pooled, upper))] + marks)
    hi = hi if hi > lo else lo + 1.0
    left, right = lo - 0.015 * (hi - lo), hi + 0.02 * (hi - lo)
    p = np.linspace(0.0, 1.0, 1001)
    fig, ax = new_figure(3.6 + 0.21 * (len(clean) + 2))
    palette = [c for c in OVERLAY if c != ACCENT]
    for i, (label, v) in enumerate(clean.items()):
        color, dash = palette[i % len(palette)], _DASHES[i % len(_DASHES)]
        x = np.concatenate([[left], np.quantile(v, p, method="inverted_cdf"), [right]])
        y = np.concatenate([[0.0], p, [1.0]])
        facts = [f"median {money(float(np.median(v)))}"] if medians else []
        if fair_values and label in fair_values:
            fv, se = fair_values[label]
            facts.append(f"fair value {money(fv)} ± {money(se)}")
            ax.plot([fv], [np.mean(v <= fv)], marker="D", ms=7, color=color, mec="white",
                    mew=1.0, ls="none", zorder=4)
        zero = float(np.mean(v <= 0.0))
        if zero >= 0.005:
            facts.append(f"{zero:.0%} of paths at $0" if v.min() == 0.0 else
                         f"{zero:.0%} of paths at or below $0")
        text = label + (f" ({'; '.join(facts)})" if facts else "")
        ax.plot(x, y, drawstyle="steps-post", color=color, ls=dash, lw=1.7, label=text)
    if fair_values:
        ax.plot([], [], marker="D", ms=7, color=GREY, mec="white", ls="none",
                label="fair value (mean over paths)")
    if market_price is not None:
        ax.axvline(market_price, color=ACCENT, lw=1.8,
                   label=f"{market_label} {money(market_price)}")
    beyond = int(np.sum(pooled > hi))
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title=title, xlim=(left, right), ylim=(0.0, 1.02),
           ylabel="share of paths \u2264 x [1]",
           xlabel=(f"{xlabel}; {beyond:,} of {pooled.size:,} paths beyond the axis\n{note}"
                   if note else f"{xlabel}; {beyond:,} of {pooled.size:,} paths beyond the axis"))
    legend_top(ax, 1)
    return fig


@styled
def decoupling_overlay(series: dict[str, Sequence[dict[str, Any]]]) -> Figure:
    """BTC beta and R² by forward year, one line per scenario.

    Parameters
    ----------
    series : dict of str to sequence of dict
        Scenario label -> rows of :func:`simulator.analysis.decoupling.btc_beta`.
    """
    fig, (a1, a2) = new_figure(3.0, ncols=2)
    years: np.ndarray = np.array([])
    for i, (label, rows) in enumerate(series.items()):
        rows = [r for r in rows if np.isfinite(r["beta"])]
        years = np.array([r["year"] for r in rows])
        style = {"color": OVERLAY[i % len(OVERLAY)], "ls": _DASHES[i % len(_DASHES)],
                 "marker": "o", "lw": 1.6, "label": label}
        a1.plot(years, [r["beta"] for r in rows], **style)
        a2.plot(years, [r["r2"] for r in rows], **style)
    a1.set(title="BTC beta of forward value", xlabel="forward year [years]", ylabel="beta [1]",
           xticks=years)
    a2.set(title="Variance explained by BTC", xlabel="forward year [years]", ylabel="R² [1]",
           ylim=(0, 1.05), xticks=years)
    # One legend for both panels, below them: above, it ran into the right panel's title.
    fig.legend(*a1.get_legend_handles_labels(), loc="outside lower center",
               ncols=min(len(series), 4), handlelength=1.6)
    return fig
