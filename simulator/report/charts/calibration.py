"""Charts of the calibration report (``minersim calibrate``): a fit against its history.

Each takes arrays already computed by :mod:`simulator.analysis.calibrate` (densities on a
grid, quantiles, autocorrelations) and draws one figure in the house style.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from simulator.report.charts._style import (
    ACCENT,
    BAND_INNER,
    BAND_OUTER,
    GREY,
    NAVY,
    OVERLAY,
    legend_top,
    new_figure,
    styled,
)


@styled
def fitted_density(sample: np.ndarray, densities: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                   title: str, xlabel: str, ylabel: str) -> Figure:
    """Histogram (density) of ``sample`` with each fitted density drawn over it.

    Parameters
    ----------
    sample : ndarray [n]
        The observations, e.g. monthly log returns.
    densities : mapping of label to (x [grid], pdf [grid])
        Fitted densities on a grid, in the units of ``sample`` and ``1 / unit``.
    """
    fig, ax = new_figure(3.4)
    bins = min(60, max(10, int(2 * np.sqrt(sample.size))))
    ax.hist(sample, bins=bins, density=True, color=BAND_OUTER, edgecolor=BAND_INNER, lw=0.6,
            label=f"history ({sample.size} months)")
    for i, (label, (x, pdf)) in enumerate(densities.items()):
        ax.plot(x, pdf, color=OVERLAY[i % len(OVERLAY)], lw=1.6, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    legend_top(ax, min(len(densities) + 1, 4))
    return fig


@styled
def qq_plot(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str, unit: str) -> Figure:
    """Quantile-quantile plot: sorted observations against each model's quantiles.

    Parameters
    ----------
    pairs : mapping of label to (model quantiles [n], sorted sample [n])
        From :func:`simulator.analysis.calibrate.qq`.
    unit : str
        Unit of both axes, e.g. ``"monthly log return"``.
    """
    fig, ax = new_figure(3.6)
    lo = min(min(q.min(), s.min()) for q, s in pairs.values())
    hi = max(max(q.max(), s.max()) for q, s in pairs.values())
    ax.plot([lo, hi], [lo, hi], color=GREY, lw=1.0, ls="--", label="perfect fit")
    for i, (label, (q, s)) in enumerate(pairs.items()):
        ax.plot(q, s, "o", ms=3.2, color=OVERLAY[i % len(OVERLAY)], alpha=0.8, label=label)
    ax.set(title=title, xlabel=f"model quantile [{unit}]", ylabel=f"observed quantile [{unit}]")
    legend_top(ax, min(len(pairs) + 1, 4))
    return fig


@styled
def autocorrelation(lags: np.ndarray, observed: Mapping[str, np.ndarray], band: float, *,
                    title: str, model: Mapping[str, np.ndarray] | None = None) -> Figure:
    """Sample autocorrelations by lag, with the ±``band`` white-noise limits.

    Parameters
    ----------
    lags : ndarray [k] of int
        Lags [months].
    observed : mapping of label to ndarray [k]
        Sample autocorrelations, drawn as bars side by side.
    band : float
        Half-width of the 95 % band under independence (``1.96 / sqrt(n)``).
    model : mapping of label to ndarray [k], optional
        A fitted model's autocorrelations, drawn as lines.
    """
    fig, ax = new_figure(3.0)
    width = 0.8 / max(len(observed), 1)
    for i, (label, values) in enumerate(observed.items()):
        ax.bar(lags + (i - (len(observed) - 1) / 2) * width, values, width=width,
               color=(NAVY, BAND_INNER, ACCENT)[i % 3], label=label)
    for label, values in (model or {}).items():
        ax.plot(lags, values, color=ACCENT, lw=1.6, label=label)
    ax.axhspan(-band, band, color=BAND_OUTER, alpha=0.6, lw=0, zorder=0,
               label="95% band if independent")
    ax.axhline(0, color="#555555", lw=0.8)
    ax.set(title=title, xlabel="lag [months]", ylabel="autocorrelation [1]")
    legend_top(ax, len(observed) + len(model or {}) + 1)
    return fig


@styled
def regime_probability(dates: np.ndarray, prob: np.ndarray, *, title: str, label: str) -> Figure:
    """Smoothed probability of one regime, month by month.

    Parameters
    ----------
    dates : ndarray of datetime64 [n]
        The month each probability belongs to.
    prob : ndarray [n]
        ``P(state | all the data)`` in [0, 1].
    """
    fig, ax = new_figure(3.0)
    t = np.asarray(dates).astype("datetime64[D]")
    ax.fill_between(t, 0, prob, step="mid", color=BAND_INNER, lw=0)
    ax.step(t, prob, where="mid", color=NAVY, lw=1.2, label=label)
    ax.set(title=title, xlabel="month [calendar date]", ylabel="probability [0-1]", ylim=(0, 1.02),
           xlim=(t[0], t[-1]))
    legend_top(ax, 1)
    return fig


@styled
def series_fit(dates: np.ndarray, observed: np.ndarray, fitted: np.ndarray, *, title: str,
               ylabel: str, fitted_label: str, band: tuple[np.ndarray, np.ndarray] | None = None,
               band_label: str = "") -> Figure:
    """A monthly series in logs with the fitted level (and an optional band) over it.

    Parameters
    ----------
    dates : ndarray of datetime64 [n]
    observed, fitted : ndarray [n]
        The series and the fit's level, in the units of ``ylabel``.
    band : (ndarray [n], ndarray [n]), optional
        Lower and upper edges of a band around the fit.
    """
    fig, ax = new_figure(3.2)
    t = np.asarray(dates).astype("datetime64[D]")
    if band is not None:
        ax.fill_between(t, band[0], band[1], color=BAND_OUTER, lw=0, label=band_label or None)
    ax.plot(t, observed, color=NAVY, lw=1.4, label="history")
    ax.plot(t, fitted, color=ACCENT, lw=1.4, ls="--", label=fitted_label)
    ax.set(title=title, xlabel="month [calendar date]", ylabel=ylabel, xlim=(t[0], t[-1]))
    legend_top(ax, 3 if band is not None else 2)
    return fig
