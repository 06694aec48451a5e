"""Memo-ready pieces of a saved run: Markdown, CSV, JSON, and PNG/SVG charts.

Each text format is built as a string (``to_markdown``, ``to_csv``, ``to_json``) so the CLI
can print it or write it; files are written only through :mod:`simulator._files`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulator.report import charts
from simulator import units as u
from simulator._files import atomic_write, check_output_dir, check_output_file
from simulator.analysis import decoupling, stats
from simulator.cube import load, manifest_of
from simulator.errors import RunError

FORMATS = ("md", "csv", "json")
_FANS = (  # (variable, title, axis label, scale, log): the report's monthly fans
    ("btc_price", "BTC price", f"BTC price [{u.USD_PER_BTC}, log scale]", 1.0, True),
    ("network_hashrate", "Network hashrate", f"network hashrate [{u.EHS}]", 1.0, False),
    ("hashprice", "Hashprice", f"hashprice [{u.USD_PER_PH_DAY}]", 1.0, False),
    ("free_cash_flow", "Free cash flow", "free cash flow [USD M/month]", 1e-6, False),
    ("btc_held", "BTC held", f"BTC held [{u.BTC}]", 1.0, False),
)
_SVG_HEAD = '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'


def load_run(run: str | Path) -> Any:
    """The cube of a run directory (its ``results.nc``) or of a ``.nc`` file."""
    path = Path(run)
    return load(path / "results.nc" if path.is_dir() else path)


def _price(cube: Any) -> float | None:
    price = cube.attrs.get("share_price")
    return float(price) if price is not None else None


def _values(cube: Any) -> np.ndarray:
    return np.asarray(cube["value_per_share"].values, dtype=np.float64)


def _drift_words(man: dict[str, Any]) -> str:
    """The real-world BTC drift the scenario states, in words ("15% a year"), if it says one."""
    try:
        doc = json.loads(str(man.get("scenario_yaml", "")))
        drift = doc["market"]["btc"]["process"].get("drift")
    except (TypeError, ValueError, KeyError, AttributeError):
        return ""
    if isinstance(drift, Mapping) and drift.get("dist") == "fixed":
        drift = drift.get("value")
    if isinstance(drift, (int, float)):
        return f"{drift:.0%} a year"
    if isinstance(drift, Mapping) and "mode" in drift:
        return f"{drift.get('dist')} around {float(drift['mode']):.0%} a year"
    return ""


def _company(man: dict[str, Any]) -> str:
    ticker, name = str(man.get("ticker", "") or ""), str(man.get("company_name", "") or "")
    return f"{name} ({ticker})" if name and ticker else (name or ticker or "The company")


def memo_paragraph(cube: Any) -> str:
    """The fair value and the 12-month forecast in words an analyst can paste, measures named.

    One paragraph: the fair value (pricing-measure mean, its standard error, against the market
    price and the Street's range) and the 12-month forecast (real-world measure: median, P5 to
    P95, and the probability the mark ends above today's price, with its SE).
    """
    man, price = manifest_of(cube), _price(cube)
    fair, fair_se = man.get("fair_value_per_share"), man.get("fair_value_se")
    v = _values(cube)
    n = int(np.isfinite(v).sum())
    if fair is None:  # a cube from before the two measures: the plain mean stands in
        fair, fair_se = float(np.nanmean(v)), float(np.nanstd(v, ddof=1) / np.sqrt(max(n, 1)))
    fair, fair_se = float(fair), float(fair_se)
    text = (f"{_company(man)}, {man.get('scenario_name', '')} scenario, valued at "
            f"{man.get('valuation_date', '')}: a fair value of ${fair:,.2f} per share (standard "
            f"error ${fair_se:,.2f} over {n:,} Monte Carlo paths). That is a mean under the "
            "pricing measure, where bitcoin drifts at the risk-free rate and every cash flow is "
            "discounted at it plus the credit spreads; it is what a share is worth today under "
            "the scenario's assumptions, not a forecast")
    if price is not None:
        text += f", and it stands {fair / price - 1:+.0%} against the ${price:,.2f} market price"
    street = man.get("street_targets_usd")
    if isinstance(street, str):
        try:
            street = json.loads(street)
        except ValueError:
            street = None
    if isinstance(street, Mapping) and street.get("low") and street.get("high"):
        text += (f" and the Street's ${float(street['low']):,.2f} to ${float(street['high']):,.2f} "
                 "targets")
    text += "."
    if "forward_value_per_share" in cube and 12 in cube["horizon"].values:
        f12 = np.asarray(cube["forward_value_per_share"].sel(horizon=12).values, np.float64)
        f12 = f12[np.isfinite(f12)]
        if f12.size:
            q5, q50, q95 = np.quantile(f12, [0.05, 0.5, 0.95])
            drift = _drift_words(man)
            text += (" Twelve months on, under the real-world measure (bitcoin at the scenario's "
                     + (f"own drift of {drift}" if drift else "own drift")
                     + f"), the stock is marked at a median ${q50:,.2f}, with 90% of paths "
                     f"between ${q5:,.2f} and ${q95:,.2f}")
            if price is not None:
                p = float(np.mean(f12 > price))
                se = float(np.sqrt(p * (1 - p) / f12.size))
                text += (f"; the probability that it ends above today's ${price:,.2f} is "
                         f"{p:.1%} (SE {se:.1%})")
            text += ". That is a forecast, as good as the drift it assumes."
    return text


def to_markdown(cube: Any) -> str:
    """A memo paragraph, the forecast by year and the fair value's percentiles, in Markdown.

    The paragraph (:func:`memo_paragraph`) names each figure's measure. The first table gives
    the real-world forecasts by horizon; the second P5..P95 of the pricing-measure values per
    path [USD/share] (their mean is the fair value; their spread is not a forecast) with the
    Monte Carlo SE and the distribution-free 95 % confidence interval of
    :func:`simulator.analysis.stats.summary`.
    """
    man, price = manifest_of(cube), _price(cube)
    s = stats.summary(_values(cube), threshold=price)
    pct = s["percentiles"]
    lines = [memo_paragraph(cube), ""]
    if "forward_value_per_share" in cube:
        lines += ["| forecast (real-world measure) | P5 | median | P95 |"
                  + (f" P(> ${price:,.2f}) |" if price is not None else ""),
                  "| --- | ---: | ---: | ---: |" + (" ---: |" if price is not None else "")]
        for h in np.asarray(cube["horizon"].values).tolist():
            f = np.asarray(cube["forward_value_per_share"].sel(horizon=h).values, np.float64)
            f = f[np.isfinite(f)]
            if not f.size:
                continue
            q = np.quantile(f, [0.05, 0.5, 0.95])
            lines.append(f"| {int(h) // 12} year(s) | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} |"
                         + (f" {np.mean(f > price):.1%} |" if price is not None else ""))
        lines.append("")
    lines += ["| value per path (pricing measure; the mean is the fair value, the spread is not "
              "a forecast) [USD/share] | value | SE | 95% CI |",
              "| --- | ---: | ---: | ---: |"]
    for p, d in pct.items():
        lines.append(f"| P{round(p * 100)} | {d['value']:.2f} | {d['se']:.2f} | "
                     f"{d['ci_low']:.2f} to {d['ci_high']:.2f} |")
    lines.append(f"| plain mean | {s['mean']:.2f} | {s['mean_se']:.2f} | |")
    lines += ["", f"minersim {man.get('minersim_version', '')}, seed {man.get('seed', '')}, "
                  f"{int(man.get('paths', s['n'])):,} paths, scenario SHA-256 "
                  f"{str(man.get('scenario_sha256', ''))[:12]}."]
    return "\n".join(lines) + "\n"


def to_csv(cube: Any) -> str:
    """Per-path samples: path, value per share, forward values by year and every input.

    Columns: ``path``, ``value_per_share`` [USD/share], ``forward_value_per_share_y<k>``
    [USD/share], then each input under its scenario key path. Floats keep full precision
    (``repr``), so the file reproduces the cube exactly; NaN (failed paths) is written empty.
    """
    cols: dict[str, np.ndarray] = {"path": np.asarray(cube["path"].values),
                                   "value_per_share": _values(cube)}
    if "forward_value_per_share" in cube:
        fwd = cube["forward_value_per_share"].transpose("path", "horizon")
        for j, months in enumerate(np.asarray(cube["horizon"].values).tolist()):
            year = months // 12
            cols[f"forward_value_per_share_y{year}"] = np.asarray(fwd.values[:, j], np.float64)
    for name in cube.data_vars:
        if str(name).startswith("input_") and cube[name].dims == ("path",):
            cols[str(cube[name].attrs.get("key_path", name))] = np.asarray(cube[name].values)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(cols))
    table = [c.tolist() for c in cols.values()]
    writer.writerows([("" if isinstance(x, float) and math.isnan(x) else x) for x in row]
                     for row in zip(*table, strict=True))
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    """Plain JSON data: NaN/inf to null, NumPy scalars to Python, dict keys to str."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(cube: Any) -> str:
    """Summary with Monte Carlo errors, forward values, decoupling and the manifest, as JSON.

    Keys: ``summary`` (:func:`simulator.analysis.stats.summary` of value per share, percentile
    keys as strings such as ``"0.5"``), ``forward`` ({year: summary}), ``decoupling``
    (:func:`simulator.analysis.decoupling.btc_beta`), ``manifest`` (the run's attributes;
    ``scenario_yaml`` is the resolved scenario as JSON text), ``measure`` (which measure
    each of them is under: ``summary`` pricing, ``forward`` and ``decoupling`` real-world).
    """
    price = _price(cube)
    out: dict[str, Any] = {"summary": stats.summary(_values(cube), threshold=price),
                           "units": {"value_per_share": u.USD_PER_SHARE},
                           "measure": {"summary": "pricing", "forward": "real-world",
                                       "decoupling": "real-world"}}
    if "forward_value_per_share" in cube:
        out["forward"] = {
            str(y): stats.summary(cube["forward_value_per_share"].sel(horizon=12 * y).values,
                                  threshold=price)
            for y in (np.asarray(cube["horizon"].values) // 12).tolist()}
    if "btc_price" in cube and "forward_value_per_share" in cube:
        out["decoupling"] = decoupling.btc_beta(cube)
    out["manifest"] = manifest_of(cube)
    return json.dumps(_jsonable(out), indent=1, allow_nan=False) + "\n"


def chart_files(cube: Any) -> dict[str, Any]:
    """Chart name -> a renderer ``fmt -> bytes | str`` for the headline, fans and decoupling."""
    price, value = _price(cube), _values(cube)
    out: dict[str, Any] = {
        "headline": lambda fmt: charts.value_hist_cdf(
            value, price, title="Value per share today, pricing measure (not a forecast)",
            fmt=fmt, dpi=300)}
    time = cube["time"].values
    for var, title, label, scale, log in _FANS:
        if var in cube:
            bands = stats.fan(cube, var) * scale
            out[f"fan_{var}"] = (lambda fmt, b=bands, t=title, lab=label, lg=log:
                                 charts.fan_chart(time, b, title=t, ylabel=lab, log=lg,
                                                  fmt=fmt, dpi=300))
    if "btc_price" in cube and "forward_value_per_share" in cube:
        rows = [r for r in decoupling.btc_beta(cube)["rows"] if np.isfinite(r["beta"])]
        if rows:
            out["decoupling"] = lambda fmt: charts.decoupling(rows, fmt=fmt, dpi=300)
    return out


def write_charts(cube: Any, out_dir: str | Path) -> list[Path]:
    """Write ``<name>.png`` (300 dpi) and ``<name>.svg`` for every chart of :func:`chart_files`.

    Every target is checked (:func:`simulator._files.check_output_file`) before the first
    chart is drawn, so a FIFO or directory in the way costs no drawing.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, option="--charts")
    drawers = chart_files(cube)
    for name in drawers:
        for ext in ("png", "svg"):
            check_output_file(out_dir / f"{name}.{ext}")
    written = []
    for name, draw in drawers.items():
        written.append(atomic_write(out_dir / f"{name}.png", draw("png")))
        written.append(atomic_write(out_dir / f"{name}.svg", _SVG_HEAD + draw("svg")))
    return written


def export(run: str | Path, fmt: str, *, output: str | Path | None = None,
           charts_dir: str | Path | None = None) -> tuple[str, list[Path]]:
    """Export a saved run as ``fmt`` (md, csv or json); optionally write files.

    A peer run directory (it holds ``peers.json``) exports its peer table instead
    (:func:`simulator.report.peer_export.export_peers`); a company's directory inside it is
    a single run like any other.

    Returns
    -------
    (text, written)
        The exported text, and the paths written (``output`` if given, chart files).

    Raises
    ------
    RunError
        Before reading the run: an unknown ``fmt``, an ``output`` that is not a regular file
        (a device such as ``/dev/full``, a FIFO, a directory), a ``charts_dir`` that cannot
        be a directory. Later: a write that fails (disk full, I/O error).
    """
    if fmt not in FORMATS:
        raise RunError(f"export: format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    from simulator.report.peer_export import export_peers, is_peer_run

    if is_peer_run(run):
        if charts_dir is not None:
            raise RunError(f"--charts: {run} is a peer run; its charts are in peers.html, and "
                           f"each company's export with --charts: minersim export {Path(run) / '<ticker>'} "
                           "--charts DIR")
        return export_peers(run, fmt, output=output)
    if output is not None:
        check_output_file(output)
    if charts_dir is not None:
        check_output_dir(charts_dir, option="--charts")
    cube = load_run(run)
    text = {"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](cube)
    written = [atomic_write(output, text)] if output is not None else []
    if charts_dir is not None:
        written += write_charts(cube, charts_dir)
    return text, written
