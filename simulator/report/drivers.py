"""The drivers and breakevens of one run: re-runs for the tornado and breakevens, and their texts.

:func:`analyse` re-simulates the cube's scenario for the tornado and both breakevens (see
:mod:`simulator.analysis.drivers` and :mod:`simulator.analysis.breakeven`), counting progress in
:func:`analysis_steps` units; :func:`analysis_lines` gives the terminal's lines for them and
:func:`drivers_context` the flat context and figures of the report's drivers and breakeven
sections, which :func:`simulator.report.render_report` merges into its own. The runner counts
progress and prints the summary lines in the main process before and after the simulation, so
matplotlib and Jinja2 are imported only by the two functions that build report sections (the
report itself is rendered in a child process that has them already).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

BREAKEVEN_STEPS = 8
"""Progress units counted for each breakeven: a typical number of root-finding re-runs."""


def analysis_steps(scenario: Any) -> int:
    """Progress units :func:`analyse` reports: one per tornado re-run, a budget per breakeven."""
    return 1 + 2 * sum(1 for _ in scenario.uncertain_inputs()) + 2 * BREAKEVEN_STEPS


def analyse(cube: Any, paths: int, *, scenario: Any, client: Any = None,
            progress: Callable[[int, int], None] | None = None
            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Tornado and both breakevens for the cube's scenario, ``paths`` paths per re-run.

    Parameters
    ----------
    cube : xarray.Dataset
        The main run; its seed and sampling are reused (common random numbers).
    paths : int
        Paths per re-run.
    scenario : Scenario
        The run's scenario.
    client : dask.distributed.Client, optional
        Run the re-runs on this cluster.
    progress : callable(done, total), optional
        Called after each tornado re-run and each breakeven, in :func:`analysis_steps` units.
    """
    from simulator.analysis import breakeven, drivers

    total = analysis_steps(scenario)
    tornado_runs = total - 2 * BREAKEVEN_STEPS
    seed = int(cube.attrs.get("seed", scenario.simulation.seed))
    kw = {"paths": paths, "seed": seed, "sampling": cube.attrs.get("sampling"), "client": client}
    tick = (lambda done, _total: progress(done, total)) if progress else None
    result = drivers.tornado(scenario, progress=tick, **kw)
    found = []
    for i, solve in enumerate((breakeven.breakeven_spot, breakeven.breakeven_signing)):
        found.append(solve(scenario, **kw))
        if progress:
            progress(tornado_runs + (i + 1) * BREAKEVEN_STEPS, total)
    return result, found


def analysis_lines(tornado: Mapping[str, Any] | None,
                   breakevens: Sequence[Mapping[str, Any]] | None, top: int = 5) -> list[str]:
    """Plain-text lines for the terminal: the ``top`` drivers and each breakeven."""
    lines = []
    if tornado and tornado["rows"]:
        lines.append(f"  drivers (swing in median, P10 to P90 of each input; "
                     f"{tornado['paths']:,} paths per re-run)")
        rows = tornado["rows"][:top]
        width = max(len(r["key"]) for r in rows)
        lines += [f"    {r['key']:<{width}}  ${r['swing']:8.2f}  (SE {r['swing_se']:.2f})"
                  for r in rows]
    for r in breakevens or []:
        spot = r.get("units") == "USD/BTC"
        label = "breakeven BTC spot" if spot else "breakeven signing probability"
        if r["status"] == "found":
            val, tol, se = ((f"${r['value']:,.0f}", f"${r['xtol']:,.0f}", f"${r['mc_se']:,.0f}")
                            if spot else (f"{r['value']:.3f}", f"{r['xtol']:.3f}",
                                          f"{r['mc_se']:.3f}"))
            lines.append(f"  {label:<30} {val}  (tolerance ± {tol}, Monte Carlo SE {se})")
        elif r["status"] == "no_sites":
            lines.append(f"  {label:<30} none: no site converts")
        else:
            lo, hi = r["median_at_bracket"]
            lines.append(f"  {label:<30} not attained: median ${lo:.2f} to ${hi:.2f} over "
                         f"the range, market ${r['target']:.2f}")
    return lines


def _g(x: float) -> str:
    return f"{x:,.4g}" if np.isfinite(x) else "n/a"


def _signed(x: float) -> str:
    """``+0.12`` / ``-0.12``; a value that rounds to zero shows as ``0.00``, not ``-0.00``."""
    text = f"{x:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def drivers_context(cube: Any, tornado: Mapping[str, Any] | None,
                    breakevens: Sequence[Mapping[str, Any]] | None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat context and figures of the drivers and breakeven sections."""
    from simulator.report import charts
    from simulator.analysis.drivers import rank_correlations
    from simulator.report.html import figure, usd

    price = cube.attrs.get("share_price")
    price = float(price) if price is not None else None
    ctx: dict[str, Any] = {"tornado_rows": [], "breakeven_rows": []}
    figures: dict[str, Any] = {}
    if tornado and tornado["rows"]:
        ctx["tornado_rows"] = [
            {"key": r["key"], "low": _g(r["low"]), "high": _g(r["high"]), "units": r["units"],
             "median_low": usd(r["median_low"]), "median_high": usd(r["median_high"]),
             "swing": usd(r["swing"]), "se": usd(r["swing_se"])} for r in tornado["rows"]]
        ctx["tornado_note"] = (
            f"Each of the {len(tornado['rows'])} uncertain inputs is held at its P10, then at "
            "its P90, on every path while every other draw stays as sampled (common random "
            f"numbers, seed {tornado['seed']}); rows sorted by the swing in median value per "
            f"share. Re-runs use {tornado['paths']:,} paths each ({tornado['runs']} runs), so "
            f"their medians (unperturbed: {usd(tornado['base_median'])}) differ from the "
            "headline's by Monte Carlo error; the swing is a paired difference, with a paired "
            "bootstrap SE. Units 1 means dimensionless (fraction, probability or multiple).")
        figures["tornado"] = figure(
            "tornado", "Drivers", charts.tornado(tornado["rows"], tornado["base_median"],
                                                 market_price=price),
            "Median value per share with one input at its P10 (light) and P90 (dark); "
            "the twelve largest swings.", "Tornado chart; the numbers are in the table.")
    else:
        ctx["tornado_note"] = (
            "The tornado was not computed for this report: it and the breakevens re-run the "
            "scenario about twice per uncertain input, so they come with `minersim run "
            "--drivers` (and `minersim compare` gives the differences between scenarios); "
            "the rank correlations below come from this run alone.")
    rho = rank_correlations(cube)
    ctx["spearman_rows"] = [{"key": r["key"], "rho": _signed(r["rho"]),
                             "ci": f"{_signed(r['ci_low'])} to {_signed(r['ci_high'])}"}
                            for r in rho]
    ctx["spearman_note"] = (f"Over the {rho[0]['n']:,} paths of the main run; 95% CI from "
                            "Fisher's z." if rho else "")
    ctx["breakeven_rows"], ctx["breakeven_note"] = _breakeven_rows(breakevens or [], price)
    return ctx, figures


def _breakeven_rows(results: Sequence[Mapping[str, Any]],
                    price: float | None) -> tuple[list[dict[str, str]], str]:
    from simulator.report.html import usd

    if not results:
        return [], "Breakevens were not computed for this report; run `minersim run SCENARIO --drivers` for them."
    rows, notes = [], []
    for r in results:
        spot = r.get("units") == "USD/BTC"
        label = "BTC spot price" if spot else "lease-signing probability (all sites)"
        fmt = (lambda x: usd(x, 0)) if spot else (lambda x: f"{x:.3f}")
        row = {"label": label, "definition": str(r.get("definition", "")), "tol": "\u2014",
               "se": "\u2014"}
        if r["status"] == "found":
            row["value"] = fmt(r["value"]) + (f" ({r['value'] / r['spot']:.2f}x today)"
                                              if spot else "")
            row["tol"] = "± " + fmt(r["xtol"])
            row["se"] = fmt(r["mc_se"])
        elif r["status"] == "no_sites":
            row["value"] = "no site converts"
        else:
            lo, hi = r["median_at_bracket"]
            a, b = r["bracket"]
            row["value"] = "not attained"
            notes.append(f"{label[0].upper() + label[1:]}: the median value per share is {usd(lo)} at {fmt(a)} and "
                         f"{usd(hi)} at {fmt(b)}, so no value in that range matches the "
                         f"{usd(r['target'])} market price.")
        rows.append(row)
    paths = results[0].get("paths", 0)
    notes.insert(0, f"Median value per share = market price, solved by Brent's method on re-runs "
                    f"of {paths:,} paths with common random numbers. The tolerance is the "
                    "root-finding bracket; the Monte Carlo SE (SE of the median / slope of the "
                    "median in the input) is usually the larger error.")
    return rows, " ".join(notes)
