"""Charts of the compare report and of the drivers analysis (several runs or inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulator import units as u
from simulator.report.charts._style import (ACCENT, BAND_INNER, GREY, NAVY, OVERLAY, legend_top, money,
                                     new_figure, styled)


@styled
def tornado(rows: Sequence[dict[str, Any]], base_median: float, *,
            market_price: float | None = None, top: int = 12) -> Figure:
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
    ax.set_yticks(y, [r["key"] for r in rows], fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title="Drivers of median value per share",
           xlabel=f"median value per share [{u.USD_PER_SHARE}]")
    ax.grid(axis="y", visible=False)
    # Below the axis: four entries beside a left-aligned title would collide with it.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4,
               handlelength=1.6)
    return fig


@styled
def value_overlay(values: dict[str, np.ndarray], market_price: float | None = None) -> Figure:
    """Overlaid distributions (step histograms) of value per share, one per scenario.

    Parameters
    ----------
    values : dict of str to ndarray [path]
        Scenario label -> value per share [USD/share]; NaN ignored.

    Notes
    -----
    All scenarios share one bin grid spanning the pooled P0.5 to P99.5, so bars compare.
    """
    clean = {k: np.asarray(v, dtype=np.float64)[~np.isnan(v)] for k, v in values.items()}
    lo, hi = np.quantile(np.concatenate(list(clean.values())), [0.005, 0.995])
    if market_price is not None:
        lo, hi = min(lo, market_price), max(hi, market_price)
    bins = np.linspace(lo, hi, 61)
    fig, ax = new_figure(3.6)
    for i, (label, v) in enumerate(clean.items()):
        color = OVERLAY[i % len(OVERLAY)]
        ax.hist(v, bins=bins, histtype="step", color=color, lw=1.6, density=True,
                label=f"{label} (median {money(float(np.median(v)))})")
    if market_price is not None:
        ax.axvline(market_price, color=ACCENT, lw=1.2, ls="--",
                   label=f"market {money(market_price)}")
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    ax.set(title="Value per share by scenario", xlim=(lo, hi), ylabel="density [1/(USD/share)]",
           xlabel=f"value per share [{u.USD_PER_SHARE}]")
    legend_top(ax, 2)
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
        color = OVERLAY[i % len(OVERLAY)]
        a1.plot(years, [r["beta"] for r in rows], "o-", color=color, lw=1.6, label=label)
        a2.plot(years, [r["r2"] for r in rows], "o-", color=color, lw=1.6, label=label)
    a1.set(title="BTC beta of forward value", xlabel="forward year [years]", ylabel="beta [1]",
           xticks=years)
    a2.set(title="Variance explained by BTC", xlabel="forward year [years]", ylabel="R² [1]",
           ylim=(0, 1.05), xticks=years)
    legend_top(a2, 1)
    return fig
