"""The peer table as a memo's pieces: Markdown, CSV and JSON of a peer run's summary.

A peer run directory (``minersim run scenarios/peers.yaml``) holds ``peers.json``, the
summary of :func:`simulator.analysis.peers.peer_summary` with the flat table of
:func:`table` added. Every export format is built from that one file, so the three formats
and the HTML page carry the same numbers. :data:`COLUMNS` is the one list of the table's
columns: key, units and measure (``pricing``, ``real-world``, ``market`` for an observed
figure, ``input`` for a scenario figure).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator import units as u
from simulator._files import atomic_write, check_output_file
from simulator.errors import RunError

SUMMARY_FILE = "peers.json"
"""The machine-readable summary in a peer run directory."""


@dataclass(frozen=True)
class Column:
    key: str
    unit: str
    measure: str
    description: str
    get: Callable[[Mapping[str, Any]], Any]

    @property
    def header(self) -> str:
        """``key [unit; measure]``, the CSV and Markdown header."""
        label = "; ".join(x for x in (self.unit, self.measure) if x)
        return f"{self.key} [{label}]" if label else self.key


def _at(*keys: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(row: Mapping[str, Any]) -> Any:
        node: Any = row
        for k in keys:
            if node is None:
                return None
            node = node[k] if not isinstance(node, list) else node[int(k)]
        return node
    return get


def _breakeven(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: (row.get("breakeven") or {}).get(key)


def _millions(*keys: str) -> Callable[[Mapping[str, Any]], Any]:
    get = _at(*keys)
    return lambda row: None if get(row) is None else get(row) / u.USD_PER_MILLION


PR, RW, MK, IN = "pricing", "real-world", "market", "input"
USD_M = "USD M"

COLUMNS: tuple[Column, ...] = (
    Column("ticker", "", "", "ticker", _at("ticker")),
    Column("company", "", "", "company name", _at("company")),
    Column("share_price", u.USD_PER_SHARE, MK, "market price at the valuation date", _at("share_price")),
    Column("fair_value", u.USD_PER_SHARE, PR, "mean over pricing paths of value per share", _at("fair_value")),
    Column("fair_value_se", u.USD_PER_SHARE, PR, "its Monte Carlo standard error", _at("fair_value_se")),
    Column("upside", u.ONE, PR, "fair value / market price - 1", _at("upside")),
    Column("upside_se", u.ONE, PR, "standard error of the upside (SE / price)", _at("upside_se")),
    Column("value_12m_p10", u.USD_PER_SHARE, RW, "P10 of the 12-month mark", _at("forecast", "value", "p10")),
    Column("value_12m_p50", u.USD_PER_SHARE, RW, "median of the 12-month mark", _at("forecast", "value", "p50")),
    Column("value_12m_p90", u.USD_PER_SHARE, RW, "P90 of the 12-month mark", _at("forecast", "value", "p90")),
    Column("return_12m_mean", u.ONE, RW, "mean of 12-month mark / price - 1", _at("forecast", "return", "mean")),
    Column("return_12m_mean_se", u.ONE, RW, "its standard error", _at("forecast", "return", "mean_se")),
    Column("return_12m_p50", u.ONE, RW, "median 12-month return", _at("forecast", "return", "p50")),
    Column("prob_up_12m", u.ONE, RW, "P(12-month mark > market price)", _at("forecast", "return", "prob_up")),
    Column("prob_up_12m_se", u.ONE, RW, "its standard error", _at("forecast", "return", "prob_up_se")),
)
"""The fixed columns; :func:`columns` adds one beta and R² per forward year and the rest."""

_TAIL: tuple[Column, ...] = (
    Column("btc_beta_pooled", u.ONE, RW, "BTC beta, all forward years pooled", _at("decoupling", "pooled", "beta")),
    Column("btc_r2_pooled", u.ONE, RW, "R² of the pooled regression", _at("decoupling", "pooled", "r2")),
    Column("hpc_share", u.ONE, PR, "median of pv_hpc / (pv_mining + pv_hpc)", _at("decoupling", "hpc_share")),
    Column("hashrate_ehs", u.EHS, IN, "operational hashrate today (company.fleet.hashrate_ehs)", _at("footprint", "hashrate_ehs")),
    Column("contracted_mw", u.MW, IN, "contracted power today (company.power.contracted_mw)", _at("footprint", "contracted_mw")),
    Column("fair_equity", USD_M, PR, "fair value per share x basic shares", _millions("footprint", "fair_equity_usd")),
    Column("market_cap", USD_M, MK, "market price x basic shares", _millions("footprint", "market_cap_usd")),
    Column("fair_equity_per_ehs", "USD M/(EH/s)", PR, "fair equity per EH/s", _millions("footprint", "fair_usd_per_ehs")),
    Column("market_cap_per_ehs", "USD M/(EH/s)", MK, "market cap per EH/s", _millions("footprint", "market_usd_per_ehs")),
    Column("fair_equity_per_mw", "USD M/MW", PR, "fair equity per contracted MW", _millions("footprint", "fair_usd_per_mw")),
    Column("market_cap_per_mw", "USD M/MW", MK, "market cap per contracted MW", _millions("footprint", "market_usd_per_mw")),
    Column("breakeven_btc", u.USD_PER_BTC, PR, "BTC spot at which fair value = market price", _breakeven("value")),
    Column("breakeven_btc_se", u.USD_PER_BTC, PR, "its Monte Carlo standard error", _breakeven("mc_se")),
    Column("breakeven_status", "", "", "found, not_attained, or empty if not run", _breakeven("status")),
)


def columns(summary: Mapping[str, Any]) -> list[Column]:
    """Every column of the peer table, beta and R² by the forward years the run has."""
    years = [r["year"] for r in summary["companies"][0]["decoupling"]["years"]]
    by_year = []
    for i, y in enumerate(years):
        by_year += [Column(f"btc_beta_y{y}", u.ONE, RW, f"BTC beta of the return over year {y}",
                           _at("decoupling", "years", str(i), "beta")),
                    Column(f"btc_r2_y{y}", u.ONE, RW, f"R² of that regression, year {y}",
                           _at("decoupling", "years", str(i), "r2"))]
    return [*COLUMNS, *by_year, *_TAIL]


def table(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The flat peer table: ``columns`` [{key, unit, measure, description}] and ``rows``
    (one dict per company, by key)."""
    cols = columns(summary)
    return {"columns": [{"key": c.key, "unit": c.unit, "measure": c.measure,
                         "description": c.description} for c in cols],
            "rows": [{c.key: c.get(row) for c in cols} for row in summary["companies"]]}


def jsonable(obj: Any) -> Any:
    """Plain JSON data: NaN and infinity to null, NumPy scalars and tuples to Python."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def summary_json(summary: Mapping[str, Any]) -> str:
    """``peers.json``: the summary with its flat ``table``, NaN written as null."""
    return json.dumps(jsonable({**summary, "table": table(summary)}), indent=1,
                      allow_nan=False) + "\n"


def is_peer_run(path: str | Path) -> bool:
    """Whether ``path`` is a peer run directory (it holds ``peers.json``)."""
    return Path(path).is_dir() and (Path(path) / SUMMARY_FILE).is_file()


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """Read a peer run directory's ``peers.json``.

    Raises
    ------
    RunError
        If it is missing or not the JSON a peer run writes.
    """
    path = Path(run_dir) / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: not a readable peer summary ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not {"companies", "table", "correlation", "pairs"} <= set(data):
        raise RunError(f"{path}: not a peer summary (no companies, table, correlation and pairs)")
    return data


def _is_pct(key: str) -> bool:
    """Columns of fractions [1] that the Markdown shows in percent."""
    return key.startswith(("upside", "return_", "prob_", "hpc_share"))


def _cell(x: Any, key: str) -> str:
    """A Markdown cell: percentages for returns and shares, money with 2 decimals, else as is."""
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x.replace("|", "\\|")
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if _is_pct(key):
        return f"{100 * x:+.1f}%" if key.startswith(("upside", "return_")) and not key.endswith("_se") \
            else f"{100 * x:.1f}%"
    if key.startswith(("btc_beta", "btc_r2")):
        return f"{x:.2f}"
    if key.startswith("breakeven_btc"):
        return f"{x:,.0f}"
    return f"{x:,.2f}"


_MD_SECTIONS = (
    ("Fair value against the market price (pricing measure; the price is the market's)",
     ("ticker", "share_price", "fair_value", "fair_value_se", "upside", "upside_se")),
    ("The 12-month mark and the return from today's price (real-world measure)",
     ("ticker", "value_12m_p10", "value_12m_p50", "value_12m_p90", "return_12m_mean",
      "return_12m_p50", "prob_up_12m", "prob_up_12m_se")),
    (("Decoupling: BTC beta and R² of the 12-month return (real-world measure); HPC share of "
     "value (pricing)"), ("ticker", "btc_beta_y*", "btc_r2_y*", "btc_beta_pooled", "btc_r2_pooled",
                         "hpc_share")),
    ("Value per EH/s and per MW: equity value, fair (pricing) against market cap (market)",
     ("ticker", "hashrate_ehs", "contracted_mw", "fair_equity_per_ehs", "market_cap_per_ehs",
      "fair_equity_per_mw", "market_cap_per_mw")),
    ("Breakeven BTC spot: fair value = market price (pricing measure)",
     ("ticker", "breakeven_btc", "breakeven_btc_se", "breakeven_status")),
)


def to_markdown(summary: Mapping[str, Any]) -> str:
    """The peer table in five Markdown tables, then the correlations and the pair trades."""
    tab = summary["table"]
    spec = {c["key"]: c for c in tab["columns"]}
    man = summary.get("manifest", {})
    lines = [(f"Peer group {man.get('universe_name', '')}: {len(tab['rows'])} companies on "
             f"{int(man.get('paths', 0)):,} shared paths, seed {man.get('seed', '')}, valued at "
             f"{man.get('valuation_date', '')}."), ""]
    ran = any(row.get("breakeven_status") for row in tab["rows"])
    for title, keys in _MD_SECTIONS if ran else _MD_SECTIONS[:-1]:
        keys = [k for pat in keys for k in (sorted(x for x in spec if x.startswith(pat[:-1]))
                                            if pat.endswith("*") else [pat])]
        heads = [k if not spec[k]["unit"] else f"{k} [{'%' if _is_pct(k) else spec[k]['unit']}]"
                 for k in keys]
        lines += [f"**{title}**", "", "| " + " | ".join(heads) + " |",
                  "| --- |" + " ---: |" * (len(keys) - 1)]
        lines += ["| " + " | ".join(_cell(row[k], k) for k in keys) + " |" for row in tab["rows"]]
        lines.append("")
    corr = summary["correlation"]
    t = corr["tickers"]
    lines += [f"**Correlation of 12-month returns (real-world measure, {int(corr['n']):,} paths)**",
              "", "| | " + " | ".join(t) + " |", "| --- |" + " ---: |" * len(t)]
    lines += ["| " + a + " | " + " | ".join("n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"
                                            for x in row) + " |"
              for a, row in zip(t, corr["matrix"], strict=True)]
    lines += ["", ("**Pair trades, long A / short B, equal dollar legs: r_A - r_B over 12 months "
              "(real-world measure)**"), "",
              "| pair | why | mean | SE | P10 | median | P90 | P(> 0) | SE | correlation |",
              "| --- | --- |" + " ---: |" * 8]
    for p in summary["pairs"]:
        q = p["percentiles"]
        lines.append(f"| {p['a']}/{p['b']} | {p['why']} | {_pct(p['mean'])} | {_pct(p['mean_se'], '')} | "
                     f"{_pct(q['0.1']['value'])} | {_pct(q['0.5']['value'])} | "
                     f"{_pct(q['0.9']['value'])} | {100 * p['prob_positive']:.1f}% | "
                     f"{100 * p['prob_positive_se']:.1f}% | "
                     + ("n/a" if p["correlation"] is None else f"{p['correlation']:.2f}") + " |")
    lines += ["", ("" if ran else "Breakevens were not run (--no-breakevens). ")
              + f"minersim {man.get('minersim_version', '')}, seed {man.get('seed', '')}, universe "
              f"SHA-256 {str(man.get('universe_sha256', ''))[:12] or 'n/a'}."]
    return "\n".join(lines) + "\n"


def _pct(x: float | None, sign: str = "+") -> str:
    return "n/a" if x is None else f"{100 * x:{sign}.1f}%"


def to_csv(summary: Mapping[str, Any]) -> str:
    """One row per company, every column of the table, headed ``key [unit; measure]``.

    Numbers keep full precision (``repr``); a missing one (NaN, or a breakeven not run) is
    written empty.
    """
    tab = summary["table"]
    heads = [Column(c["key"], c["unit"], c["measure"], "", _at()).header for c in tab["columns"]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(heads)
    for row in tab["rows"]:
        writer.writerow(["" if row[c["key"]] is None else row[c["key"]] for c in tab["columns"]])
    return buf.getvalue()


def to_json(summary: Mapping[str, Any]) -> str:
    """The summary as the run wrote it (``peers.json``): table, correlations, pairs, manifest."""
    return json.dumps(summary, indent=1, allow_nan=False) + "\n"


def export_peers(run_dir: str | Path, fmt: str, *, output: str | Path | None = None
                 ) -> tuple[str, list[Path]]:
    """Export a peer run directory's table as ``fmt`` (md, csv or json); optionally write it."""
    if output is not None:
        check_output_file(output)
    summary = load_summary(run_dir)
    text = {"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](summary)
    return text, ([atomic_write(output, text)] if output is not None else [])
