"""Report charts: matplotlib figures rendered to self-contained SVG text or PNG bytes.

Every public function takes plain arrays (already reduced by ``analysis``), builds one
figure, renders it and lets it go; nothing is written to disk. SVG output has fonts as
paths, no metadata, no DOCTYPE and ids prefixed with a content hash, so several charts can
be inlined in one HTML page without id clashes or external references, and the same inputs
always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from simulator import units as u  # noqa: E402

NAVY = "#1f3b57"
BLUE = "#4a7aa5"
BAND_OUTER = "#d3dee9"
BAND_INNER = "#9db5cc"
TEAL = "#2f7d6d"
TEAL_LIGHT = "#b9dbd3"
ACCENT = "#b5542b"
NEG = "#a8473a"
GREY = "#6b6b6b"

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "svg.fonttype": "path",
    "svg.hashsalt": "minersim",
    "path.simplify": True,
    "axes.axisbelow": True,
}
WIDTH = 8.0  # [in]; 576 pt, about the report column width at 100 % zoom


def _fig(height: float = 3.4, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = fig.subplots(1, ncols, **kw)
    return fig, axes


def render(fig: Figure, fmt: str = "svg", dpi: int = 150) -> str | bytes:
    """Render ``fig`` to SVG text (self-contained, inline-ready) or PNG bytes."""
    with matplotlib.rc_context(_RC):
        if fmt == "png":
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
            return buf.getvalue()
        if fmt != "svg":
            raise ValueError(f"chart format must be 'svg' or 'png' (got {fmt!r})")
        text = io.StringIO()
        fig.savefig(text, format="svg", metadata={"Date": None, "Creator": None})
    return _clean_svg(text.getvalue())


def _clean_svg(svg: str) -> str:
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    prefix = "c" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m[1]})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m[1]}"', svg)


def _styled(build):
    """Run a figure builder under the house style and render its figure."""
    def wrapper(*args: Any, fmt: str = "svg", dpi: int = 150, **kw: Any) -> str | bytes:
        with matplotlib.rc_context(_RC):
            fig = build(*args, **kw)
            return render(fig, fmt, dpi)
    wrapper.__doc__ = build.__doc__
    wrapper.__name__ = build.__name__
    wrapper.__wrapped__ = build
    return wrapper


def _money(x: float, _pos: Any = None) -> str:
    sign = "\u2212" if x < 0 else ""
    x = abs(x)
    body = f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"
    return f"{sign}${body}"


def _plain(x: float, _pos: Any = None) -> str:
    return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def _plain_minor(x: float, _pos: Any = None) -> str:
    # Label only 2x and 5x minor ticks so a log axis spanning one decade still reads.
    lead = x / 10 ** np.floor(np.log10(x))
    return _plain(x) if round(lead) in (2, 5) else ""


@_styled
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
    axis note says how many paths fall outside. The CDF uses every path.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[~np.isnan(v)]
    lo, hi = np.quantile(v, [0.005, 0.995])
    if market_price is not None:
        lo, hi = min(lo, market_price), max(hi, market_price)
    fig, ax = _fig(3.6)
    ax.hist(v, bins=60, range=(lo, hi), color=BAND_INNER, edgecolor="white", linewidth=0.4)
    ax.set(title=title, xlabel=xlabel, ylabel="paths per bin [count]", xlim=(lo, hi))
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    cdf = ax.twinx()
    cdf.plot(v, np.arange(1, v.size + 1) / v.size, color=NAVY, lw=1.6)
    cdf.set(ylim=(0, 1.02), ylabel="cumulative share of paths [1]")
    cdf.grid(False)
    cdf.spines["right"].set_visible(True)
    med = float(np.median(v))
    ax.axvline(med, color=NAVY, ls="--", lw=1.1, label=f"median {_money(med)}")
    if market_price is not None:
        ax.axvline(market_price, color=ACCENT, lw=1.8, label=f"market price {_money(market_price)}")
    outside = int(np.sum((v < lo) | (v > hi)))
    ax.set_xlabel(f"{xlabel} ({v.size:,} paths; {outside:,} outside the axis range)")
    _legend_top(ax, 2)
    return fig


@_styled
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
        Months drawn as vertical dashed lines.
    log : bool
        Logarithmic y axis (prices); stated in the axis label by the caller.
    mean : ndarray [time], optional
        Exact all-path mean, drawn dotted.
    """
    fig, ax = _fig(3.2)
    t = np.asarray(time).astype("datetime64[D]")
    ax.fill_between(t, bands[0], bands[4], color=BAND_OUTER, lw=0, label="P5-P95")
    ax.fill_between(t, bands[1], bands[3], color=BAND_INNER, lw=0, label="P25-P75")
    ax.plot(t, bands[2], color=NAVY, lw=1.8, label="median")
    if mean is not None:
        ax.plot(t, mean, color=NAVY, lw=1.1, ls=":", label="mean (all paths)")
    if reference is not None:
        ax.axhline(reference, color=ACCENT, lw=1.2, label=reference_label or None)
    _halvings(ax, halvings)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax.yaxis.set_minor_formatter(FuncFormatter(_plain_minor))
    elif np.nanmax(np.abs(bands)) >= 1_000:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:,.0f}"))
    ax.set(title=title, ylabel=ylabel, xlabel="month [calendar date]", xlim=(t[0], t[-1]))
    _legend_top(ax, 5)
    return fig


def _legend_top(ax: Any, ncols: int) -> None:
    """Legend above the plot, right-aligned, so it never hides data."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=ncols, borderaxespad=0.3,
              handlelength=1.6, columnspacing=1.2)


def _halvings(ax: Any, halvings: Sequence[Any]) -> None:
    for i, h in enumerate(halvings):
        ax.axvline(np.datetime64(h, "D"), color=GREY, ls="--", lw=1.0,
                   label="halving" if i == 0 else None)


@_styled
def revenue_segments(time: np.ndarray, mining: np.ndarray, hpc: np.ndarray, *,
                     halvings: Sequence[Any] = (),
                     ylabel: str = "revenue [USD M/month]") -> Figure:
    """Mining vs HPC revenue: median lines with P25-P75 bands per segment.

    Parameters
    ----------
    mining, hpc : ndarray [5, time]
        P5, P25, P50, P75, P95 of each segment's revenue in display units.
    """
    fig, ax = _fig(3.2)
    t = np.asarray(time).astype("datetime64[D]")
    for bands, dark, light, name in ((mining, NAVY, BAND_INNER, "mining"),
                                     (hpc, TEAL, TEAL_LIGHT, "HPC leases")):
        ax.fill_between(t, bands[1], bands[3], color=light, alpha=0.8, lw=0,
                        label=f"{name} P25-P75")
        ax.plot(t, bands[2], color=dark, lw=1.8, label=f"{name} median")
    _halvings(ax, halvings)
    ax.set(title="Revenue by segment", ylabel=ylabel, xlabel="month [calendar date]",
           xlim=(t[0], t[-1]))
    ax.set_ylim(bottom=0)
    _legend_top(ax, 3)
    return fig


@_styled
def sotp_bridge(steps: Sequence[tuple[str, float]], total: float, *,
                market_price: float | None = None,
                ylabel: str = f"value per share [{u.USD_PER_SHARE}]",
                title: str = "Sum of the parts at the median") -> Figure:
    """Waterfall from segment values to equity per share.

    Parameters
    ----------
    steps : sequence of (label, value)
        Signed contributions [USD/share], in bridge order.
    total : float
        Equity value per diluted share [USD/share]; equals the sum of ``steps``.
    """
    fig, ax = _fig(3.6)
    labels = [s[0] for s in steps] + ["equity per share"]
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
        ax.annotate(f"{sign}{_money(h)}", (xi, max(b, b + h)), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=9)
    if market_price is not None:
        ax.axhline(market_price, color=ACCENT, lw=1.4, ls="--",
                   label=f"market price {_money(market_price)}")
        _legend_top(ax, 1)
    ax.axhline(0, color="#555555", lw=0.8)
    ax.set_xticks(x, labels)
    top = float(np.max(np.append(ends, [total, 0.0])))
    ax.set_ylim(top=top + 0.12 * (top - min(0.0, float(np.min(np.append(ends, total))))))
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.set(title=title, ylabel=ylabel, xlabel="component of value (averaged over the median band)")
    ax.grid(axis="x", visible=False)
    return fig


@_styled
def site_timelines(sign_month: np.ndarray, energise_month: np.ndarray, sites: Sequence[str],
                   start: Any, months: int) -> Figure:
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
    fig, ax = _fig(1.0 + 0.95 * n)
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
    ax.set(title="Site conversion timelines", xlabel="date [calendar year]")
    ax.grid(axis="y", visible=False)
    return fig


@_styled
def forward_values(forward: np.ndarray, years: Sequence[int], *, today: np.ndarray | None = None,
                   market_price: float | None = None) -> Figure:
    """Box plots of value per share today and at 1/2/3 years, against the market price.

    Parameters
    ----------
    forward : ndarray [path, year]
        Forward value per share [USD/share]; NaN ignored.
    today : ndarray [path], optional
        Value per share at the valuation date [USD/share].

    Notes
    -----
    Boxes P25-P75 with median, whiskers P5-P95; outliers not drawn.
    """
    cols = [] if today is None else [np.asarray(today, dtype=np.float64)]
    cols += [np.asarray(forward, dtype=np.float64)[:, j] for j in range(len(years))]
    cols = [c[~np.isnan(c)] for c in cols]
    labels = ([] if today is None else ["today"]) + [f"year {y}" for y in years]
    fig, ax = _fig(3.4)
    bp = ax.boxplot(cols, tick_labels=labels, whis=(5, 95), showfliers=False, widths=0.5,
                    patch_artist=True, medianprops={"color": NAVY, "lw": 1.8})
    for box in bp["boxes"]:
        box.set(facecolor=BAND_INNER, edgecolor=NAVY)
    if market_price is not None:
        ax.axhline(market_price, color=ACCENT, lw=1.4, ls="--",
                   label=f"market price today {_money(market_price)}")
        _legend_top(ax, 1)
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.set(title="Forward value per share", ylabel=f"value per share [{u.USD_PER_SHARE}]",
           xlabel="horizon from the valuation date [years]")
    ax.grid(axis="x", visible=False)
    return fig


@_styled
def decoupling(rows: Sequence[dict[str, Any]]) -> Figure:
    """BTC beta (with ±2 SE) and R² of ln forward value on ln BTC price, by year.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`simulator.analysis.decoupling.btc_beta` (year, beta, beta_se, r2).
    """
    years = np.array([r["year"] for r in rows])
    beta = np.array([r["beta"] for r in rows], dtype=np.float64)
    se = np.array([r["beta_se"] for r in rows], dtype=np.float64)
    r2 = np.array([r["r2"] for r in rows], dtype=np.float64)
    fig, (a1, a2) = _fig(3.0, ncols=2)
    a1.errorbar(years, beta, yerr=2 * se, fmt="o-", color=NAVY, capsize=4, lw=1.6)
    a1.axhline(1.0, color=GREY, ls=":", lw=1.0)
    a1.set(title="BTC beta of forward value", xlabel="forward year [years]",
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


@_styled
def convergence(n: np.ndarray, mean: np.ndarray, se: np.ndarray, *,
                ylabel: str = f"mean value per share [{u.USD_PER_SHARE}]") -> Figure:
    """Running mean ±2 SE against the number of paths (log x axis)."""
    fig, ax = _fig(3.0)
    ax.fill_between(n, mean - 2 * se, mean + 2 * se, color=BAND_OUTER, lw=0, label="±2 SE")
    ax.plot(n, mean, color=NAVY, lw=1.6, label="running mean")
    ax.axhline(mean[-1], color=GREY, ls=":", lw=1.0, label=f"final {_money(mean[-1])}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_plain))
    ax.set(title="Convergence of the mean", xlabel="paths [count, log scale]", ylabel=ylabel,
           xlim=(n[0], n[-1]))
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    _legend_top(ax, 3)
    return fig
