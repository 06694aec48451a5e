"""The self-contained HTML report of ``minersim compare``: several scenarios side by side.

Same approach as :mod:`simulator.report.run_report`, with the formatters, Jinja2 environment and
self-containment check every minersim page shares (:mod:`simulator.report.html`): Python
prepares a flat context of formatted strings and inline SVG, and ``templates/compare.html.j2``
only branches and loops.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulator.report import charts
from simulator._files import atomic_write
from simulator.report.html import check_self_contained, environment, figure, num, usd


def render_compare(result: Mapping[str, Any]) -> str:
    """Render a :func:`simulator.analysis.compare.compare` result as one HTML string."""
    html = environment().get_template("compare.html.j2").render(**compare_context(result))
    check_self_contained(html)
    return html


def write_compare(result: Mapping[str, Any], path: str | Path) -> Path:
    """Render the compare report and write it atomically to ``path``."""
    return atomic_write(path, render_compare(result))


def compare_context(result: Mapping[str, Any]) -> dict[str, Any]:
    """Flat context of the compare report: formatted rows and inline SVG."""
    labels, price = list(result["labels"]), float(result["price"])
    pct = lambda x: f"{x:.1%}"  # noqa: E731 - local formatter
    ctx: dict[str, Any] = {"labels": labels, "price": usd(price),
                           "settings": (f"{int(result['paths']):,} paths per scenario, seed "
                                        f"{result['seed']}, {result['sampling']} sampling")}
    ctx["reused_note"] = (f"Saved runs used as saved: {', '.join(result['reused'])}."
                          if result["reused"] else "")
    fair = [fair_value(c, v) for c, v in zip(result["cubes"], result["values"], strict=True)]
    ctx["summary_rows"] = [
        {"label": lab, "fair": usd(f), "fair_se": usd(se), "median": usd(s["median"]),
         "median_se": usd(s["median_se"]), "mean": usd(s["mean"]),
         "p5": usd(s["percentiles"][0.05]["value"]),
         "p95": usd(s["percentiles"][0.95]["value"]), "above": pct(s["prob_above"]["p"])}
        for lab, s, (f, se) in zip(labels, result["summaries"], fair, strict=True)]
    ctx["delta_tables"] = [
        {"label": d["label"], "rows": [
            {"stat": r["stat"], "a": (pct if "P(" in r["stat"] else usd)(r["a"]),
             "b": (pct if "P(" in r["stat"] else usd)(r["b"]),
             "delta": (f"{r['delta']:+.1%}".replace("-", "\u2212") if "P(" in r["stat"] else
                       ("+" if r["delta"] >= 0 else "") + usd(r["delta"])),
             "se": (pct if "P(" in r["stat"] else usd)(r["se"])} for r in d["rows"]]}
        for d in result["deltas"]]
    ctx["diff_rows"] = [{"key": r["key"], "values": ["\u2014" if v is None else v
                                                     for v in r["values"]]}
                        for r in result["diff"]]
    ctx["attribution"] = _attribution_rows(result.get("attribution"), labels)
    ctx["beta_tables"] = [
        {"label": lab, "share": num(100 * b["hpc_share_median"], 0) + "%",
         "rows": [{"year": str(r["year"]), "beta": num(r["beta"], 2),
                   "se": num(r["beta_se"], 3), "r2": num(r["r2"], 2)} for r in b["rows"]]}
        for lab, b in zip(labels, result["beta"], strict=True)]
    forward = _forward_12(labels, result["cubes"])
    ctx["forecast_rows"] = _forecast_rows(forward, price)
    ctx["charts"] = {
        "overlay": _value_chart(labels, result["values"], fair, price),
        "forecast": _forecast_chart(forward, price) if forward else None,
        "decoupling": figure("decoupling", "Decoupling by scenario",
                              charts.decoupling_overlay(
                                  {lab: b["rows"] for lab, b in zip(labels, result["beta"],
                                                                    strict=True)},
                                  desc="BTC beta [1] (left) and R² [1] (right) of the stock's "
                                  "12-month return on BTC's, by forward year [years], one line "
                                  "per scenario (real-world measure)."),
                              "BTC beta (left) and R² (right) of the stock's 12-month return "
                              "on BTC's across real-world paths, by forward year, one line per "
                              "scenario.", "Decoupling lines; the numbers are in the tables.")}
    return ctx


def fair_value(cube: Any, values: Any) -> tuple[float, float]:
    """A run's fair value per share and its standard error [USD/share] (pricing measure).

    From the cube's attrs; a cube saved before they existed gets the plain mean over its
    paths and that mean's standard error, as the run report does.
    """
    fair, se = cube.attrs.get("fair_value_per_share"), cube.attrs.get("fair_value_se")
    if fair is not None and se is not None:
        return float(fair), float(se)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def _forward_12(labels: list[str], cubes: list[Any]) -> dict[str, np.ndarray]:
    """Scenario label -> forecast value per share in 12 months [USD/share], where a cube has it."""
    return {lab: np.asarray(c["forward_value_per_share"].sel(horizon=12).values, np.float64)
            for lab, c in zip(labels, cubes, strict=True)
            if "forward_value_per_share" in c and 12 in c["horizon"].values}


def _forecast_rows(forward: Mapping[str, np.ndarray], price: float) -> list[dict[str, str]]:
    rows = []
    for lab, v in forward.items():
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        p = float(np.mean(v > price))
        q = np.quantile(v, [0.05, 0.5, 0.95])
        rows.append({"label": lab, "p5": usd(q[0]), "median": usd(q[1]), "p95": usd(q[2]),
                     "above": f"{p:.1%}", "above_se": f"{np.sqrt(p * (1 - p) / v.size):.1%}"})
    return rows


def _value_chart(labels: list[str], values: list[Any], fair: list[tuple[float, float]],
                 price: float) -> dict[str, Any]:
    marks = dict(zip(labels, fair, strict=True))
    facts = "; ".join(f"{lab} fair value {usd(f)}" for lab, (f, _se) in marks.items())
    svg = charts.cdf_overlay(
        dict(zip(labels, values, strict=True)), price, fair_values=marks,
        desc=f"Cumulative distributions of value per share today [USD/share], pathwise values "
             f"under the pricing measure, one line per scenario; {facts}; market price "
             f"{usd(price)}.")
    return figure("overlay", "Value per share today by scenario (pricing measure)", svg,
                  "Empirical cumulative distributions of the value per diluted share across "
                  "paths, one line per scenario, on common random numbers. These are pathwise "
                  "values under the pricing measure: each distribution's mean is the fair value "
                  "(diamond; the legend gives it with its standard error), and its spread is "
                  "not a forecast of the share price. A jump at $0 is the share of paths "
                  f"where equity is worthless. Vertical line: A's market price {usd(price)}. "
                  "The x axis ends at the pooled 99th percentile.",
                  f"Cumulative distributions of value per share by scenario; {facts}.")


def _forecast_chart(forward: Mapping[str, np.ndarray], price: float) -> dict[str, Any]:
    medians = "; ".join(f"{lab} median {usd(float(np.nanmedian(v)))}"
                        for lab, v in forward.items())
    svg = charts.cdf_overlay(
        dict(forward), price, medians=True, market_label="market price today",
        title="Value per share in 12 months by scenario (real-world measure)",
        xlabel="value per share in 12 months [USD/share]",
        note="the mark 12 months on, across real-world paths: a forecast under each "
             "scenario's BTC drift",
        desc=f"Cumulative distributions of the value per share forecast 12 months on "
             f"[USD/share], real-world measure, one line per scenario; {medians}; market "
             f"price today {usd(price)}.")
    return figure("forecast", "Value per share in 12 months by scenario (real-world measure)",
                  svg, "Empirical cumulative distributions of the value per share marked twelve "
                  "months on, across real-world paths: a forecast, under each scenario's BTC "
                  "drift. Read off the share of paths below any price; the legend gives each "
                  f"median. Vertical line: A's market price today {usd(price)}. The x axis "
                  "ends at the pooled 99th percentile.",
                  f"Twelve-month forecast distributions by scenario; {medians}.")


def _attribution_rows(att: Mapping[str, Any] | None, labels: list[str]) -> dict[str, Any]:
    if not att:
        return {"rows": [], "note": "Attribution was not computed."}
    rows = [{"group": labels[0], "median": usd(att["start"]), "move": ""}]
    rows += [{"group": "+ " + s["group"], "median": usd(s["median"]),
              "move": ("+" if s["move"] >= 0 else "") + usd(s["move"])} for s in att["steps"]]
    note = (f"From {labels[0]} to {labels[1]}, switching one input group (a top-level section "
            "or one site) at a time in B's order, each step re-simulated on the same random "
            f"numbers. The moves add up to the total change {usd(att['total'])}; interactions "
            "fall in the later step, so the split depends on the order.")
    if not att["steps"]:
        note = f"{labels[0]} and {labels[1]} have the same inputs: nothing to attribute."
    elif abs(att["residual"]) > 1e-9:
        note += f" The last step misses B's median by {usd(att['residual'], 4)}."
    return {"rows": rows, "note": note}
