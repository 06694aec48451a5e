"""House style, rendering and layout shared by every chart in :mod:`simulator.report.charts`.

Layout is computed here in one pass from measured text (:func:`place`) instead of by
matplotlib's constrained layout, which draws each figure twice and measures every tick
label on each of its passes; on the report's twelve charts that was about half of the
rendering time. The margins come from the same quantities constrained layout uses: tick
label widths and heights (as formatted for the final view limits), axis labels, titles,
legends placed above the axes, and annotations outside the axes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from matplotlib.textpath import text_to_path  # noqa: E402

NAVY = "#1f3b57"
BLUE = "#4a7aa5"
BAND_OUTER = "#d3dee9"
BAND_INNER = "#9db5cc"
TEAL = "#2f7d6d"
TEAL_LIGHT = "#b9dbd3"
ACCENT = "#b5542b"
NEG = "#a8473a"
GREY = "#6b6b6b"
OVERLAY = (NAVY, ACCENT, TEAL, "#7a5195", GREY, BLUE)

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titley": 1.0,  # fixed: auto-placing titles measures every axis (0.3 s a report)
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
    "text.parse_math": False,  # "$4.73 ± $0.11": two dollar signs are prices, not TeX
}
WIDTH = 8.0  # [in]; 576 pt, about the report column width at 100 % zoom
PAD = 4.0  # [pt] space kept free at the figure edges and between decorations
TICK = 3.5 + 3.5  # [pt] tick length + tick-to-label pad (matplotlib defaults)
LABELPAD = 4.0  # [pt] axis label to tick labels (matplotlib default)
TITLEPAD = 6.0  # [pt] title to axes (matplotlib default)


def new_figure(height: float = 3.4, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    """A figure ``WIDTH`` x ``height`` [in] with ``ncols`` axes in one row."""
    fig = Figure(figsize=(WIDTH, height))
    axes = fig.subplots(1, ncols, **kw)
    return fig, axes


def render(fig: Figure, fmt: str = "svg", dpi: int = 150, *, title: str | None = None,
           desc: str | None = None) -> str | bytes:
    """Lay out ``fig`` and render it to SVG text (self-contained, inline-ready) or PNG bytes.

    Parameters
    ----------
    title, desc : str, optional
        The SVG's ``<title>`` and ``<desc>``, what a screen reader announces. Default: the
        chart's own title (:func:`chart_title`) and a sentence naming each axis with its
        units and the legend's entries (:func:`chart_desc`). Ignored for PNG.
    """
    with matplotlib.rc_context(RC):
        if fmt not in ("svg", "png"):
            raise ValueError(f"chart format must be 'svg' or 'png' (got {fmt!r})")
        place(fig)
        if fmt == "png":
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
            return buf.getvalue()
        text = io.StringIO()
        fig.savefig(text, format="svg", metadata={"Date": None, "Creator": None})
    return clean_svg(text.getvalue(), title=title or chart_title(fig),
                     desc=desc or chart_desc(fig))


def clean_svg(svg: str, *, title: str = "", desc: str = "") -> str:
    """Drop the XML prolog and metadata; prefix ids with a content hash (no clashes inline).

    ``title`` and ``desc``, when given, become the root's first children ``<title>`` and
    ``<desc>`` (escaped text), the SVG's accessible name and description.
    """
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    if title or desc:
        head = "".join(f"\n <{tag}>{escape(' '.join(text.split()))}</{tag}>"
                       for tag, text in (("title", title), ("desc", desc)) if text)
        svg = re.sub(r"<svg\b[^>]*>", lambda m: m[0] + head, svg, count=1)
    prefix = "c" + hashlib.sha1(svg.encode()).hexdigest()[:8] + "-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m[1]})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m[1]}"', svg)


def chart_title(fig: Figure) -> str:
    """The chart's title: the figure's suptitle, else its panels' titles joined by "; "."""
    if fig.get_suptitle():
        return fig.get_suptitle()
    return "; ".join(t for ax in fig.axes for t in (ax.get_title(loc=loc) for loc in
                                                     ("left", "center", "right")) if t)


def chart_desc(fig: Figure) -> str:
    """One sentence for a screen reader: each panel's axes with their units, the labels in
    the margin, and the legend.

    E.g. "Chart: paths per bin [count] against value per share [USD/share]; legend: median
    $13.17, market price $14.57."
    """
    hosts = [ax for ax in fig.axes if ax.yaxis.get_label_position() == "left"]
    names = (["left", "right"] if len(hosts) == 2 else
             [f"panel {i + 1}" for i in range(len(hosts))])
    parts = []
    for name, ax in zip(names, hosts, strict=False):
        ys = [ax.get_ylabel()] + [t.get_ylabel() for t in fig.axes if t not in hosts
                                   and t.get_position().x0 == ax.get_position().x0]
        part = (f"{' and '.join(y for y in ys if y) or _categories(ax.yaxis)} against "
                f"{ax.get_xlabel().split(chr(10))[0] or _categories(ax.xaxis)}")
        margin = [t.get_text().replace("\n", " ") for t in _margin_notes(ax)]
        if margin:
            part += " (marked: " + ", ".join(margin) + ")"
        parts.append(f"{name}, {ax.get_title(loc='left')}: {part}" if len(hosts) > 1 else part)
    entries = [t.get_text() for ax in fig.axes if ax.get_legend() is not None
               for t in ax.get_legend().texts]
    entries += [t.get_text() for legend in fig.legends for t in legend.texts]
    text = "Chart: " + "; ".join(parts)
    if entries:
        text += "; legend: " + ", ".join(dict.fromkeys(entries))
    return text + "."


def _categories(axis: Any, most: int = 6) -> str:
    names = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
    shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most
                                       else "")
    return f"the categories {shown}" if names else "categories"


def styled(build):
    """Run a figure builder under the house style and render its figure.

    The wrapper takes ``fmt`` and ``dpi`` (see :func:`render`) and ``desc``, the SVG's
    one-sentence description for screen readers (default: generated from the axes, see
    :func:`chart_desc`); the SVG's title is the chart's title (:func:`chart_title`).
    """
    def wrapper(*args: Any, fmt: str = "svg", dpi: int = 150, desc: str | None = None,
                **kw: Any) -> str | bytes:
        with matplotlib.rc_context(RC):
            fig = build(*args, **kw)
            return render(fig, fmt, dpi, desc=desc)
    wrapper.__doc__ = build.__doc__
    wrapper.__name__ = build.__name__
    wrapper.__wrapped__ = build
    return wrapper


def money(x: float, _pos: Any = None) -> str:
    sign = "\u2212" if x < 0 else ""
    x = abs(x)
    body = f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"
    return f"{sign}${body}"


def plain(x: float, _pos: Any = None) -> str:
    return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def plain_minor(x: float, _pos: Any = None) -> str:
    # Label only 2x and 5x minor ticks so a log axis spanning one decade still reads.
    lead = x / 10 ** np.floor(np.log10(x))
    return plain(x) if round(lead) in (2, 5) else ""


def legend_top(ax: Any, ncols: int) -> None:
    """Legend above the plot, right-aligned, so it never hides data.

    It shares the title's line when both fit; otherwise :func:`place` raises the title above
    it, so the legend never covers the title either.
    """
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=ncols, borderaxespad=0.3,
              handlelength=1.6, columnspacing=1.2)


def distinct_halvings(months: Sequence[Any], window: int = 6) -> list[Any]:
    """One month per halving: the first of every run of months within ``window`` of each other.

    Parameters
    ----------
    months : sequence of datetime64
        Months where a halving shows, e.g. where the median subsidy across paths drops
        (:func:`simulator.report.run_report.halving_months`). A halving inside a month shows
        twice there, in its own month (partly halved average) and in the next.
    window : int
        Months within which two entries count as the same halving [months]; halvings are
        about 48 months apart.

    Returns
    -------
    list of datetime64
        The first month of each halving, in time order, as given.
    """
    out: list[Any] = []
    first: np.datetime64 | None = None
    for month in sorted(months, key=lambda m: np.datetime64(m, "M")):
        m = np.datetime64(month, "M")
        if first is None or (m - first).astype(int) > window:
            out.append(month)
            first = m
    return out


def halving_lines(ax: Any, halvings: Any) -> None:
    """One dashed vertical line per distinct halving (:func:`distinct_halvings`)."""
    for i, h in enumerate(distinct_halvings(list(halvings))):
        ax.axvline(np.datetime64(h, "D"), color=GREY, ls="--", lw=1.0,
                   label="halving" if i == 0 else None)


# ----------------------------------------------------------------------------- layout

RASTER = 1.03
"""Width allowance for PNG: Agg's hinted text runs about 2 % wider at 150 dpi (5 % at 100)
than the SVG backend's glyph paths, which :func:`_extent` measures."""


@functools.lru_cache(maxsize=4096)
def _extent(text: str, size: float, weight: str = "normal") -> tuple[float, float]:
    """Width (with :data:`RASTER`) and line height of text [pt], lines split at newlines."""
    if not text:
        return 0.0, 0.0
    prop = FontProperties(family=RC["font.family"], size=size, weight=weight)
    width = max(text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0]
                for line in text.split("\n"))
    return RASTER * width, 1.2 * size * (text.count("\n") + 1)


def _tick_strings(axis: Any) -> list[str]:
    """The tick labels ``axis`` will draw for its current view limits."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(abs(hi - lo), 1e-300)
    out: list[str] = []
    for locs, fmt in ((axis.get_majorticklocs(), axis.get_major_formatter()),
                      (axis.get_minorticklocs(), axis.get_minor_formatter())):
        locs = [x for x in np.asarray(locs, dtype=np.float64) if lo - tol <= x <= hi + tol]
        if locs:
            out += [s for s in fmt.format_ticks(locs) if s]
    return out


def _ticks_width(axis: Any) -> float:
    size = float(matplotlib.rcParams["ytick.labelsize"])
    return max((_extent(s, size)[0] for s in _tick_strings(axis)), default=0.0)


def _label_height(label: Any) -> float:
    return _extent(label.get_text(), label.get_fontsize())[1]


def _side_widths(ax: Any) -> tuple[float, float]:
    """Decoration widths left and right of ``ax`` (y tick labels, y label) [pt]."""
    width = TICK + _ticks_width(ax.yaxis) if ax.yaxis.get_visible() else 0.0
    if ax.get_ylabel():
        width += LABELPAD + _label_height(ax.yaxis.label)
    if ax.yaxis.get_label_position() == "right":
        return 0.0, width
    return width, 0.0


def _margin_notes(ax: Any) -> list[Annotation]:
    """Annotations placed right of the axes (x in axes fraction >= 1)."""
    notes = []
    for text in ax.texts:
        if not isinstance(text, Annotation) or text.xy[0] < 1.0:
            continue
        coords = text.xycoords if isinstance(text.xycoords, tuple) else (text.xycoords,)
        if coords[0] == "axes fraction":
            notes.append(text)
    return notes


def _outside_right(ax: Any) -> float:
    """Width of annotations placed right of the axes [pt]."""
    width = 0.0
    for text in _margin_notes(ax):
        offset = text.xyann[0] if text.anncoords == "offset points" else 0.0
        width = max(width, offset + _extent(text.get_text(), text.get_fontsize())[0])
    return width


def _legend_height(legend: Any) -> float:
    size = float(matplotlib.rcParams["legend.fontsize"])
    rows = math.ceil(len(legend.texts) / max(getattr(legend, "_ncols", 1), 1))
    return rows * 1.2 * size + (rows - 1) * 0.5 * size + 2 * 0.4 * size + 0.5 * size


def _figure_legends(fig: Figure) -> tuple[float, float]:
    """Heights of figure legends along the bottom and the top edge [pt]."""
    bottom = top = 0.0
    for legend in fig.legends:
        # Legend location codes 8 (lower center), 3, 4 sit at the bottom; 9, 1, 2 on top.
        loc = getattr(legend, "_loc", None)
        if loc in (3, 4, 8):
            bottom = max(bottom, _legend_height(legend))
        elif loc in (1, 2, 9):
            top = max(top, _legend_height(legend))
    return bottom, top


def _top_legend(ax: Any) -> Any:
    """The legend :func:`legend_top` put above ``ax``, or None."""
    legend = ax.get_legend()
    if legend is not None and legend.get_bbox_to_anchor().y0 >= ax.bbox.y1 - 1e-6:
        return legend
    return None


def _legend_width(legend: Any) -> float:
    """Width of ``legend`` [pt]: columns of handle, pad and text, split as matplotlib splits
    its entries (``np.array_split`` over the columns)."""
    size = float(matplotlib.rcParams["legend.fontsize"])
    texts = np.array([t.get_text() for t in legend.texts], dtype=object)
    cols = [c for c in np.array_split(texts, max(getattr(legend, "_ncols", 1), 1)) if c.size]
    body = sum((legend.handlelength + legend.handletextpad) * size
               + max(_extent(str(t), size)[0] for t in col) for col in cols)
    return body + ((len(cols) - 1) * legend.columnspacing + 2 * legend.borderpad) * size


def _title_width(ax: Any) -> float:
    size = float(matplotlib.rcParams["axes.titlesize"])
    return sum(_extent(ax.get_title(loc=loc), size, "bold")[0]
               for loc in ("left", "center", "right"))


def _title_pad(fig: Figure, w_pt: float) -> float:
    """Title-to-axes distance [pt] for every panel: :data:`TITLEPAD`, or, when a legend above
    the axes does not fit beside its panel's title, enough to lift the titles over it.

    Narrows a legend wider than its axes to fewer columns first.
    """
    pad = TITLEPAD
    for ax in fig.axes:
        legend = _top_legend(ax)
        if legend is None:
            continue
        width = ax.get_position().width * w_pt
        while _legend_width(legend) > width and getattr(legend, "_ncols", 1) > 1:
            legend.set_ncols(legend._ncols - 1)
        title = _title_width(ax)
        if title and title + _legend_width(legend) + 3 * PAD > width:
            pad = max(pad, TITLEPAD + _legend_height(legend))
    return pad


def _set_title_pad(fig: Figure, pad: float) -> None:
    for ax in fig.axes:
        for loc in ("left", "center", "right"):
            if ax.get_title(loc=loc):
                ax.set_title(ax.get_title(loc=loc), loc=loc, pad=pad)


def _above(ax: Any, pad: float = TITLEPAD) -> float:
    """Height of the title (``pad`` [pt] above the axes) and of a legend above the axes [pt]."""
    titled = any(ax.get_title(loc=loc) for loc in ("left", "center", "right"))
    height = pad + 1.2 * float(matplotlib.rcParams["axes.titlesize"]) if titled else 0.0
    legend = _top_legend(ax)
    if legend is not None:
        height = max(height, _legend_height(legend))
    return height


def _below(ax: Any) -> float:
    """Height of x tick labels and x label [pt]."""
    size = float(matplotlib.rcParams["xtick.labelsize"])
    height = TICK + 1.2 * size if _tick_strings(ax.xaxis) else 0.0
    if ax.get_xlabel():
        height += LABELPAD + _label_height(ax.xaxis.label)
    return height


def place(fig: Figure) -> None:
    """Set the subplot margins of a one-row figure from its measured decorations.

    Run twice: tick locators pick their ticks from the axes length, so the labels measured
    at the default margins can differ from those at the final ones. A third pass runs if
    the final axes width changes where the titles go (beside or above a top legend).

    Notes
    -----
    Left margin: y label + tick labels of the first axes; right margin: twin-axis
    decorations or outside annotations of the last; gaps between columns: the right
    decorations of one plus the left decorations of the next; top and bottom: the
    tallest title-or-legend and x decorations. Every term adds :data:`PAD`. A title that
    would run into a legend above its axes is lifted above the legend (in every panel, so
    the titles stay in line).
    """
    pad = TITLEPAD
    for i in range(3):
        new = _title_pad(fig, fig.get_figwidth() * 72.0)
        if i == 2 and new == pad:
            return
        if new != pad:
            _set_title_pad(fig, new)
            pad = new
        _place_once(fig, pad)


def _place_once(fig: Figure, pad: float = TITLEPAD) -> None:
    if not fig.axes:
        return
    w_pt, h_pt = fig.get_figwidth() * 72.0, fig.get_figheight() * 72.0
    hosts = [ax for ax in fig.axes if ax.yaxis.get_label_position() == "left"]
    twins = [ax for ax in fig.axes if ax not in hosts]
    lefts, rights = [], []
    for ax in hosts:
        left, right = _side_widths(ax)
        for twin in twins:
            if twin.get_position().x0 == ax.get_position().x0:
                right = max(right, _side_widths(twin)[1])
        lefts.append(left)
        rights.append(max(right, _outside_right(ax)))
    x_half = max((_extent(s, 9.0)[0] / 2 for ax in hosts for s in _tick_strings(ax.xaxis)),
                 default=0.0)
    left = PAD + max(lefts[0], x_half)
    right = PAD + max(rights[-1], x_half)
    legend_bottom, legend_top_ = _figure_legends(fig)
    top = PAD + max(_above(ax, pad) for ax in fig.axes) + legend_top_
    bottom = PAD + max(_below(ax) for ax in hosts) + legend_bottom
    n = len(hosts)
    gap = max((rights[i] + lefts[i + 1] for i in range(n - 1)), default=0.0) + 3 * PAD
    axes_w = max((w_pt - left - right - (n - 1) * gap) / n, 1.0)
    fig.subplots_adjust(left=left / w_pt, right=1 - right / w_pt, bottom=bottom / h_pt,
                        top=1 - top / h_pt, wspace=gap / axes_w if n > 1 else None)
