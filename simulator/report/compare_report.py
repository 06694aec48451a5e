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
    ctx["summary_rows"] = [
        {"label": lab, "median": usd(s["median"]), "median_se": usd(s["median_se"]),
         "mean": usd(s["mean"]), "p5": usd(s["percentiles"][0.05]["value"]),
         "p95": usd(s["percentiles"][0.95]["value"]), "above": pct(s["prob_above"]["p"])}
        for lab, s in zip(labels, result["summaries"], strict=True)]
    ctx["delta_tables"] = [
        {"label": d["label"], "rows": [
            {"stat": r["stat"], "a": (pct if "P(" in r["stat"] else usd)(r["a"]),
             "b": (pct if "P(" in r["stat"] else usd)(r["b"]),
             "delta": (f"{r['delta']:+.1%}" if "P(" in r["stat"] else
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
    ctx["charts"] = {
        "overlay": figure("overlay", "Value per share by scenario",
                           charts.value_overlay(dict(zip(labels, result["values"],
                                                         strict=True)), price),
                           "Step histograms (density) of value per diluted share on one bin "
                           "grid; dashed line: A's market price.",
                           "Overlaid distributions; medians are in the table."),
        "decoupling": figure("decoupling", "Decoupling by scenario",
                              charts.decoupling_overlay({lab: b["rows"] for lab, b in
                                                         zip(labels, result["beta"],
                                                             strict=True)}),
                              "BTC beta (left) and R² (right) of the stock's 12-month return "
                              "on BTC's across paths, by forward year, one line per "
                              "scenario.", "Decoupling lines; the numbers are in the tables.")}
    return ctx


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
