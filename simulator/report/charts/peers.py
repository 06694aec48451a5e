"""Charts of the peer report: several companies on the same paths, one row per company.

Every function takes numbers already reduced by :mod:`simulator.analysis.peers` (or, for the
distributions, arrays it reduces to a few quantiles before drawing), so a chart costs the
same at any path count. Companies run down the y axis in the order given; each panel of a
figure repeats that order, so a row reads across.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from simulator import units as u
from simulator.report.charts._style import (
    ACCENT,
    BAND_INNER,
    BAND_OUTER,
    GREY,
    NAVY,
    NEG,
    TEAL,
    legend_top,
    money,
    new_figure,
    styled,
)

_ROW = 0.36
"""Height per company row [in]."""


def _pct(x: float, _pos: Any = None) -> str:
    return ("\u2212" if x < 0 else "") + f"{abs(x):.0%}"


def _two(x: float) -> str:
    """Two decimals with a true minus sign and no "-0.00"."""
    text = f"{abs(x):.2f}"
    return ("\u2212" if x < 0 and float(text) else "") + text


def _rows(ax: Any, names: Sequence[str], labelled: bool = True) -> np.ndarray:
    """Company rows top to bottom on ``ax``; tick labels only when ``labelled`` (an unlabelled
    panel gets empty labels, so the layout measures nothing for them)."""
    y = np.arange(len(names))[::-1].astype(np.float64)
    ax.set_yticks(y, list(names) if labelled else [""] * len(names))
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.grid(axis="y", visible=False)
    return y


@styled
def fair_vs_price(tickers: Sequence[str], fair: Sequence[float], se: Sequence[float],
                  price: Sequence[float]) -> Figure:
    """Fair value per share ±2 SE against the market price, and the upside ±2 SE.

    Parameters
    ----------
    tickers : sequence of str
        Companies, top row first.
    fair, se : sequence of float
        Fair value per share and its standard error [USD/share] (pricing measure).
    price : sequence of float
        Market price per share [USD/share].

    Notes
    -----
    Left panel in USD/share; right panel the upside fair / price - 1 [1], whose SE is
    SE / price. Error bars span ±2 SE: the Monte Carlo error of the mean, not a range of
    outcomes.
    """
    fair, se, price = (np.asarray(x, np.float64) for x in (fair, se, price))
    fig, (a1, a2) = new_figure(1.3 + _ROW * len(tickers), ncols=2)
    y = _rows(a1, tickers)
    a1.errorbar(fair, y, xerr=2 * se, fmt="o", color=NAVY, ms=6, capsize=3, lw=1.4,
                label="fair value ±2 SE (pricing)")
    a1.plot(price, y, "D", color=ACCENT, ms=6, mec="white", ls="none", label="market price")
    for yi, f, p in zip(y, fair, price, strict=True):
        a1.plot([min(f, p), max(f, p)], [yi, yi], color=GREY, lw=0.8, zorder=0)
    a1.set_xlim(left=0, right=1.08 * float(np.nanmax(np.concatenate([fair + 2 * se, price]))))
    a1.xaxis.set_major_formatter(FuncFormatter(money))
    a1.set(title="Fair value and market price", xlabel=f"per share [{u.USD_PER_SHARE}]")
    legend_top(a1, 1)
    up, up_se = fair / price - 1.0, se / price
    _rows(a2, tickers, labelled=False)
    a2.barh(y, up, color=[TEAL if v >= 0 else NEG for v in up], height=0.6)
    a2.errorbar(up, y, xerr=2 * up_se, fmt="none", ecolor=NAVY, capsize=3, lw=1.2)
    a2.axvline(0, color="#555555", lw=0.8)
    a2.xaxis.set_major_formatter(FuncFormatter(_pct))
    lo, hi = float(np.nanmin(up - 2 * up_se)), float(np.nanmax(up + 2 * up_se))
    a2.set_xlim(min(lo, 0) - 0.05 * (hi - lo + 1e-9), max(hi, 0) + 0.05 * (hi - lo + 1e-9))
    a2.set(title="Upside to fair value", xlabel="fair value / price \u2212 1 [%] (pricing)")
    return fig


def box_stats_from(label: str, q: Mapping[str, float]) -> dict[str, Any]:
    """A box for :func:`forecast_boxes` from percentiles ``p10``, ``p25``, ``p50``, ``p75``,
    ``p90`` and ``mean`` (as :func:`simulator.analysis.peers.forecast` gives them)."""
    return {"label": label, "whislo": q["p10"], "q1": q["p25"], "med": q["p50"], "q3": q["p75"],
            "whishi": q["p90"], "mean": q["mean"], "fliers": []}


@styled
def forecast_boxes(boxes: Sequence[dict[str, Any]], prob_up: Sequence[float], *,
                   title: str = "Return to the 12-month mark (real-world measure)") -> Figure:
    """12-month returns from today's market price, one box per company.

    Parameters
    ----------
    boxes : sequence of dict
        :func:`box_stats_from` of each company's 12-month return [1], top row first.
    prob_up : sequence of float
        P(return > 0) per company [1], written in the right margin.

    Notes
    -----
    Box P25-P75 with the median, whiskers P10-P90, diamond the mean; the line at 0 is
    today's market price.
    """
    fig, ax = new_figure(1.3 + 0.42 * len(boxes))
    y = _rows(ax, [b["label"] for b in boxes])
    bp = ax.bxp(list(boxes), positions=y, orientation="horizontal", widths=0.55,
                patch_artist=True, showmeans=True, shownotches=False,
                medianprops={"color": NAVY, "lw": 1.8},
                meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": NAVY,
                           "ms": 5})
    for box in bp["boxes"]:
        box.set(facecolor=BAND_INNER, edgecolor=NAVY)
    ax.set_yticks(y, [b["label"] for b in boxes])
    ax.axvline(0, color=ACCENT, lw=1.4, ls="--", label="today's market price (0%)")
    ax.plot([], [], "D", mfc="white", mec=NAVY, ls="none", label="mean")
    for yi, p in zip(y, prob_up, strict=True):
        ax.annotate(f"P(up) {p:.0%}", (1.0, yi), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=9,
                    color=GREY)
    ax.xaxis.set_major_formatter(FuncFormatter(_pct))
    ax.set(title=title, xlabel="12-month mark / today's market price \u2212 1 [%]; "
           "box P25\u2013P75, whiskers P10\u2013P90")
    legend_top(ax, 2)
    return fig


_YEAR_STYLE = (("o", NAVY), ("s", TEAL), ("^", ACCENT), ("v", GREY))


@styled
def decoupling_ranking(tickers: Sequence[str], beta: np.ndarray, r2: np.ndarray,
                       years: Sequence[int]) -> Figure:
    """BTC beta and R² of each company's 12-month return, one marker per forward year.

    Parameters
    ----------
    tickers : sequence of str
        Companies, top row first (the report puts the most decoupled on top).
    beta, r2 : ndarray [company, year]
        OLS beta [1] and R² [1] of the 12-month return of the mark on BTC's (real-world);
        NaN where undefined (a stock worth nothing on every path).
    """
    beta, r2 = np.asarray(beta, np.float64), np.asarray(r2, np.float64)
    fig, (a1, a2) = new_figure(1.4 + _ROW * len(tickers), ncols=2)
    y = _rows(a1, tickers)
    _rows(a2, tickers, labelled=False)
    offsets = np.linspace(-0.22, 0.22, len(years)) if len(years) > 1 else [0.0]
    for j, yr in enumerate(years):
        marker, color = _YEAR_STYLE[j % len(_YEAR_STYLE)]
        style = {"marker": marker, "color": color, "ls": "none", "ms": 6,
                 "label": f"year {yr}"}
        a1.plot(beta[:, j], y + offsets[j], **style)
        a2.plot(r2[:, j], y + offsets[j], **style)
    for yi, ok in zip(y, np.isfinite(beta).any(axis=1), strict=True):
        if not ok:
            a1.annotate("n/a", (0.02, yi), xycoords=("axes fraction", "data"), va="center",
                        fontsize=9, color=GREY)
    a1.axvline(0, color="#555555", lw=0.8)
    a1.axvline(1, color=GREY, lw=0.8, ls=":")
    a1.set(title="BTC beta", xlabel="beta of the 12-month return [1]")
    a2.set(title="Variance explained by BTC", xlabel="R\u00b2 [1]", xlim=(0, 1.02))
    legend_top(a2, len(years))
    return fig


@styled
def footprint(tickers: Sequence[str], hpc_share: Sequence[float],
              fair_per_ehs: Sequence[float], market_per_ehs: Sequence[float],
              fair_per_mw: Sequence[float], market_per_mw: Sequence[float]) -> Figure:
    """HPC share of segment value, and equity value per EH/s and per MW, fair against market.

    Parameters
    ----------
    hpc_share : sequence of float
        Median pv_hpc / (pv_mining + pv_hpc) [1] (pricing measure).
    fair_per_ehs, market_per_ehs : sequence of float
        Fair equity value and market capitalisation per EH/s of today's hashrate [USD M/(EH/s)].
    fair_per_mw, market_per_mw : sequence of float
        The same per MW of contracted power [USD M/MW].
    """
    fig, axes = new_figure(1.4 + _ROW * len(tickers), ncols=3)
    y = _rows(axes[0], tickers)
    axes[0].barh(y, np.asarray(hpc_share, np.float64), color=TEAL, height=0.6)
    axes[0].set(title="HPC share of value", xlabel="HPC / (mining + HPC) [%]")
    axes[0].xaxis.set_major_formatter(FuncFormatter(_pct))
    for ax, fair, market, title, unit in (
            (axes[1], fair_per_ehs, market_per_ehs, "Per EH/s", "USD M per EH/s"),
            (axes[2], fair_per_mw, market_per_mw, "Per MW", "USD M per MW")):
        _rows(ax, tickers, labelled=False)
        ax.barh(y, np.asarray(fair, np.float64), color=BAND_INNER, edgecolor=NAVY, height=0.6,
                label="fair (pricing)")
        ax.plot(np.asarray(market, np.float64), y, "D", color=ACCENT, ms=5, mec="white",
                ls="none", label="market cap")
        ax.set(title=title, xlabel=f"equity value [{unit}]")
        ax.set_xlim(left=0)
    axes[2].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=1, borderaxespad=0.3,
                   handlelength=1.2)
    return fig


_DIVERGING = LinearSegmentedColormap.from_list("minersim_div", [ACCENT, "#f7f7f7", NAVY])


@styled
def correlation_heatmap(tickers: Sequence[str], matrix: np.ndarray, n: int) -> Figure:
    """Correlation of 12-month returns across paths, one cell per pair, value written in it.

    Parameters
    ----------
    matrix : ndarray [company, company]
        Pearson correlations [1] (real-world measure); NaN cells (a company whose return
        never varies) are drawn grey and marked n/a.
    n : int
        Paths behind the correlations, for the axis note.
    """
    m = np.asarray(matrix, np.float64)
    k = len(tickers)
    fig, ax = new_figure(1.2 + 0.42 * k)
    shown = np.ma.masked_invalid(m)
    cmap = _DIVERGING.with_extremes(bad="#d9d9d9")
    ax.imshow(shown, cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    for i in range(k):
        for j in range(k):
            text = "n/a" if not np.isfinite(m[i, j]) else _two(m[i, j])
            dark = np.isfinite(m[i, j]) and abs(m[i, j]) > 0.55
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if dark else "#1b1f24")
    ax.set_xticks(range(k), tickers)
    ax.set_yticks(range(k), tickers)
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set(title="Correlation of 12-month returns (real-world measure)",
           xlabel=f"Pearson correlation [1] across {n:,} shared paths; navy +1, orange \u22121")
    return fig


@styled
def pair_distribution(diff: np.ndarray, a: str, b: str, *, why: str = "") -> Figure:
    """Histogram of the long-A / short-B 12-month return r_A - r_B across paths.

    Parameters
    ----------
    diff : ndarray [path]
        r_A - r_B [1] (real-world measure); NaN ignored.
    a, b : str
        The long and the short leg.

    Notes
    -----
    The axis spans P0.5 to P99.5; the label says how many paths fall outside. Median dashed,
    P10-P90 shaded, 0 (the legs break even) solid.
    """
    d = np.asarray(diff, np.float64)
    d = d[np.isfinite(d)]
    lo, hi = np.quantile(d, [0.005, 0.995])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi <= lo:
        lo, hi = lo - 0.05, hi + 0.05
    counts, edges = np.histogram(d, bins=60, range=(lo, hi))
    p10, p50, p90 = np.quantile(d, [0.10, 0.50, 0.90])
    fig, ax = new_figure(3.0)
    ax.axvspan(p10, p90, color=BAND_OUTER, lw=0, label=f"P10\u2013P90 {_pct(p10)} to {_pct(p90)}")
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BAND_INNER,
           edgecolor="white", linewidth=0.4)
    ax.axvline(p50, color=NAVY, ls="--", lw=1.2, label=f"median {_pct(p50)}")
    ax.axvline(0, color=ACCENT, lw=1.6, label=f"P(> 0) {np.mean(d > 0):.0%}")
    outside = int(np.sum((d < lo) | (d > hi)))
    ax.xaxis.set_major_formatter(FuncFormatter(_pct))
    head = f"Long {a} / short {b}" + (f" ({why})" if why else "")
    ax.set(title=head, xlim=(lo, hi), ylabel="paths per bin [count]",
           xlabel=f"12-month return r_{a} \u2212 r_{b} [%], equal dollar legs "
                  f"({d.size:,} paths; {outside:,} outside the axis)")
    legend_top(ax, 3)
    return fig


@styled
def breakevens(tickers: Sequence[str], value: Sequence[float], se: Sequence[float],
               spot: float, *, limit_note: Mapping[str, str] | None = None) -> Figure:
    """Breakeven BTC spot per company (±2 SE) against today's spot, log axis.

    Parameters
    ----------
    value, se : sequence of float
        Breakeven spot and its Monte Carlo SE [USD/BTC]; NaN where not attained or not run.
    spot : float
        Today's BTC spot [USD/BTC], a vertical line.
    limit_note : mapping of ticker to str, optional
        Text for a company without a breakeven (e.g. "above $1,690,000"), written in its row.
    """
    v, s = np.asarray(value, np.float64), np.asarray(se, np.float64)
    fig, ax = new_figure(1.3 + _ROW * len(tickers))
    y = _rows(ax, tickers)
    ok = np.isfinite(v)
    lo = np.where(ok, np.maximum(v - 2 * s, v * 0.5), np.nan)
    hi = v + 2 * np.where(np.isfinite(s), s, 0)
    ax.errorbar(v[ok], y[ok], xerr=np.vstack([v[ok] - lo[ok], hi[ok] - v[ok]]), fmt="o",
                color=NAVY, ms=6, capsize=3, lw=1.4, label="breakeven ±2 SE")
    ax.axvline(spot, color=ACCENT, lw=1.6, ls="--", label=f"spot today {money(spot)}")
    ax.set_xscale("log")
    span = np.concatenate([lo[ok], hi[ok], [spot]])
    ax.set_xlim(float(np.nanmin(span)) / 1.3, float(np.nanmax(span)) * 1.3)
    for yi, t, good in zip(y, tickers, ok, strict=True):
        if not good:
            ax.annotate((limit_note or {}).get(t, "not attained"), (0.02, yi),
                        xycoords=("axes fraction", "data"), va="center", fontsize=9, color=GREY)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: money(x)))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _p: ""))
    ax.set(title="BTC spot at which fair value = market price (pricing measure)",
           xlabel=f"BTC spot [{u.USD_PER_BTC}, log scale]")
    legend_top(ax, 2)
    return fig
