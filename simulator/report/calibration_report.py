"""What ``minersim calibrate`` prints and writes: a YAML block to paste, and an HTML report.

The YAML uses the scenario's own keys and units (``market.btc.process``, ``market.fees``,
``network.model``), so a block pasted into a scenario validates; standard errors, the file,
its SHA-256, the sample and ``as_of`` (the sample's last date) are ``#`` comments, which
the run report then shows as each value's source. A fitted value outside what a scenario
accepts is brought to the nearest accepted one and the comment says so.

The HTML report follows the compare report (:mod:`simulator.report.compare_report`): a flat
context of formatted strings and inline SVG from :mod:`simulator.report.charts.calibration`,
rendered by ``templates/calibration.html.j2`` through the shared Jinja2 environment
(autoescaped), checked self-contained and written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from simulator._files import atomic_write
from simulator.analysis import calibrate as cal
from simulator.report.charts import calibration as charts
from simulator.report.html import check_self_contained, environment, figure

# What a scenario accepts (scenario/market_models.py), as (low, high, low open, high open).
_RATE = (-1.0, 5.0, True, True)
_VOL = (0.0, 5.0, False, False)
BOUNDS = {"drift": _RATE, "volatility": _VOL, "jump_intensity_per_year": (0.0, 100.0, False, False),
          "jump_mean": (-5.0, 5.0, True, True), "jump_sd": (0.0, 5.0, False, False),
          "stay_probability_monthly": (0.0, 1.0, False, False), "block_months": (1, 60, False, False),
          "median_btc_per_block": (0.0, math.inf, True, False), "log_sd": (0.0, math.inf, False, False),
          "persistence_monthly": (0.0, 1.0, False, True), "growth_year1": (-1.0, 5.0, True, False)}
UNITS = {"drift": "1/year, real-world", "volatility": "1/\u221ayear",
         "jump_intensity_per_year": "jumps/year", "jump_mean": "ln price", "jump_sd": "ln price",
         "stay_probability_monthly": "probability/month", "block_months": "months",
         "median_btc_per_block": "BTC/block", "log_sd": "ln BTC", "persistence_monthly": "1/month",
         "growth_year1": "1/year"}
LABELS = {"gbm": "GBM", "merton": "Merton jump diffusion", "regime": "two-state regime",
          "bootstrap": "block bootstrap", "fees": "fees AR(1) in logs",
          "hashrate": "hashrate log growth"}


def num(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant figures, never in exponent form (YAML 1.1 reads ``1e-05``
    as text)."""
    if not np.isfinite(x):
        return "n/a"
    return np.format_float_positional(float(x), precision=digits, unique=False, fractional=False,
                                      trim="-")


def _base(key: str) -> str:
    return key.split("[")[0]


def accepted(key: str, value: float) -> tuple[float, str]:
    """``value`` moved inside what the scenario accepts for ``key``, and a note if it moved."""
    lo, hi, lo_open, hi_open = BOUNDS[_base(key)]
    step = 0.01 if math.isfinite(hi - lo) and hi - lo > 0.5 else 1e-4
    low, high = (lo + step if lo_open else lo), (hi - step if hi_open else hi)
    if low <= value <= high:
        return value, ""
    moved = min(max(value, low), high)
    return moved, f"fit {num(value)} is outside the scenario's range, set to {num(moved)}; "


def _se(est: cal.Estimate) -> str:
    return f"SE {num(est.se)}" if np.isfinite(est.se) else "no SE"


# ---------------------------------------------------------------- YAML

def header(series: Any, window: Any, command: str, what: str,
           counted: tuple[str, str] = ("months", "monthly changes")) -> list[str]:
    """Comment lines naming the fit, the file, its SHA-256, the sample and ``as_of``.

    ``counted`` names the months and the changes between them (``month-end closes``,
    ``monthly log returns``).
    """
    first, last = window.dates[0], window.dates[-1]
    return [f"# {command}",
            f"# {what}",
            f"# file: {series.path}",
            f"# sha256: {series.sha256}",
            f"# sample: {first} to {last} ({window.dates.size} {counted[0]}, "
            f"{window.dates.size - 1} {counted[1]})",
            f"# as_of: {last}"]


def _line(indent: int, key: str, value: str, comment: str) -> str:
    text = f"{' ' * indent}{key}: {value}"
    return f"{text:<40} # {comment}" if comment else text


def btc_yaml(result: cal.BtcCalibration, series: Any, window: Any, command: str,
             models: tuple[str, ...]) -> str:
    """The YAML block of ``calibrate btc``: one document per model in ``models``."""
    top = header(series, window, command,
                 "BTC price process fitted to monthly log returns; '# SE' comments are standard "
                 "errors.", ("month-end closes", "monthly log returns"))
    top += ["# Drifts are real-world (P) figures, for the forecasts only: fair value prices BTC at",
            "# valuation.risk_free_rate whatever the drift says. A fitted volatility is a number,",
            "# not a distribution: drop a correlation that names it (base.yaml's correlations)."]
    if len(result.comparison) > 1:
        top.append("# model comparison on the same returns (lower AIC is better):")
        top += [f"#   {r['model']:<9} {_comparison_text(r)}" for r in result.comparison]
    docs = []
    for name in models:
        fit = result.fits[name]
        body = [f"# {LABELS[name]}" + (": " + "; ".join(fit.notes) if fit.notes else ""),
                "market:", "  btc:", "    process:", f"      kind: {name}"]
        body += _process_lines(fit, series)
        docs.append("\n".join(body))
    return "\n".join(top) + "\n" + "\n---\n".join(docs) + "\n"


def _comparison_text(r: dict[str, Any]) -> str:
    if not np.isfinite(r["loglik"]):
        return "no likelihood (resamples the history)"
    text = f"k={r['k']} loglik {r['loglik']:.2f} AIC {r['aic']:.2f} BIC {r['bic']:.2f}"
    if r["df"]:
        text += f" LR vs gbm {r['lr']:.2f} (df {r['df']}, nominal p {r['p']:.2g})"
    return text


def _process_lines(fit: cal.Fit, series: Any) -> list[str]:
    p = fit.params
    if fit.model == "bootstrap":
        x = fit.extra
        return [_line(6, "csv", str(Path(series.path).resolve()),
                      "the whole file: a bootstrap reads every row, whatever the window"),
                _line(6, "block_months", str(int(p["block_months"].value)),
                      f"Politis-White circular block {num(x['circular'], 3)} rounded up "
                      f"(stationary {num(x['stationary'], 3)}; on squared returns "
                      f"{num(x['circular_squared'], 3)})")]
    if fit.model == "regime":
        out = []
        for key in ("drift", "volatility", "stay_probability_monthly"):
            pair = [p[f"{key}[{s}]"] for s in (0, 1)]
            moved = [accepted(f"{key}[{s}]", e.value) for s, e in enumerate(pair)]
            note = "".join(m[1] for m in moved)
            out.append(_line(6, key, f"[{num(moved[0][0])}, {num(moved[1][0])}]",
                             f"{note}SE [{', '.join(num(e.se) for e in pair)}]"))
        x = fit.extra
        dur = ", ".join(num(d, 3) for d in x["durations_months"])
        out.append(_line(6, "initial_state", "stationary",
                         f"state 0 calm, 1 wild; expected stays [{dur}] months; P(wild) at the "
                         f"sample's end {num(x['smoothed_wild'][-1], 2)}"))
        return out
    out = []
    for key, est in p.items():
        value, note = accepted(key, est.value)
        comment = f"{note}{_se(est)}"
        if fit.model == "gbm" and key == "drift":
            ld = fit.extra["log_drift"]
            comment += (f"; mean log return {num(ld.value)}/yr (SE {num(ld.se)} = vol / "
                        f"sqrt({num(fit.extra['years'], 3)} years)) + vol^2/2")
        if fit.model == "gbm" and key == "volatility":
            comment += "; realised vol of monthly log returns, ddof=0, x sqrt(12)"
        out.append(_line(6, key, num(value), comment))
    return out


def fees_yaml(result: cal.SeriesCalibration, series: Any, window: Any, command: str) -> str:
    """The YAML block of ``calibrate fees`` (``market.fees``)."""
    fit = result.fit
    lines = header(series, window, command,
                   "fees per block: AR(1) in ln(monthly mean fees per block), exact maximum "
                   "likelihood; '# SE' comments are standard errors.")
    lines += [f"# {n}" for n in fit.notes]
    lines += ["market:", "  fees:"]
    explain = {"median_btc_per_block": "exp(mean of ln fees)",
               "log_sd": f"stationary sd of ln fees (innovation sd {num(fit.extra['innovation_sd'])})",
               "persistence_monthly": "AR(1) coefficient of ln fees"}
    for key, est in fit.params.items():
        value, note = accepted(key, est.value)
        lines.append(_line(4, key, num(value), f"{note}{_se(est)}; {explain[key]}"))
    lines.append("    # btc_correlation is not fitted here: keep the scenario's")
    return "\n".join(lines) + "\n"


def hashrate_yaml(result: cal.SeriesCalibration, series: Any, window: Any, command: str) -> str:
    """The YAML block of ``calibrate hashrate`` (``network.model``, kind ``growth``)."""
    fit = result.fit
    g = fit.extra["log_growth"]
    lines = header(series, window, command,
                   "network hashrate: log growth per year and volatility of monthly log changes; "
                   "'# SE' comments are standard errors.")
    lines += [f"# last month's mean hashrate {num(math.exp(result.values[-1]))} EH/s "
              f"({window.dates[-1]}): network.hashrate_ehs is the valuation date's figure",
              "network:", "  model:", "    kind: growth"]
    est = fit.params["growth_year1"]
    value, note = accepted("growth_year1", est.value)
    lines.append(_line(4, "growth_year1", num(value),
                       f"{note}{_se(est)}; e^g - 1, log growth g {num(g.value)}/yr (Newey-West SE "
                       f"{num(g.se)}; i.i.d. {num(fit.extra['iid_se'])})"))
    lines.append(_line(4, "growth_decay_per_year", "0", "the fit assumes constant growth"))
    lines.append(_line(4, "btc_beta", "0", "not fitted: the growth above already holds BTC's pull"))
    est = fit.params["volatility"]
    value, note = accepted("volatility", est.value)
    lines.append(_line(4, "volatility", num(value), f"{note}{_se(est)}; sd of monthly log changes "
                       "x sqrt(12), ddof=0"))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML

def write_report(context: dict[str, Any], path: str | Path) -> Path:
    """Render the calibration report from ``context`` and write it atomically to ``path``."""
    html = environment().get_template("calibration.html.j2").render(**context)
    check_self_contained(html)
    return atomic_write(path, html)


def _param_rows(fit: cal.Fit) -> list[dict[str, str]]:
    return [{"key": k, "value": num(e.value), "se": num(e.se) if np.isfinite(e.se) else "\u2014",
             "unit": UNITS[_base(k)]} for k, e in fit.params.items()]


def _context(title: str, series: Any, window: Any, yaml_text: str, command: str) -> dict[str, Any]:
    return {"title": title, "command": command, "file": str(series.path), "sha256": series.sha256,
            "window": f"{window.dates[0]} to {window.dates[-1]}", "as_of": str(window.dates[-1]),
            "months": f"{window.dates.size}", "yaml": yaml_text, "fits": [], "comparison": [],
            "charts": [], "notes": []}


def btc_context(result: cal.BtcCalibration, series: Any, window: Any, yaml_text: str,
                command: str) -> dict[str, Any]:
    """Flat context of the BTC calibration report."""
    r = result.returns
    ctx = _context("BTC price process", series, window, yaml_text, command)
    ctx["fits"] = [{"name": LABELS[m], "rows": _param_rows(f), "notes": list(f.notes)}
                   for m, f in result.fits.items()]
    ctx["comparison"] = [{"model": LABELS[row["model"]], "k": str(row["k"]),
                          "loglik": num(row["loglik"], 5), "aic": num(row["aic"], 5),
                          "bic": num(row["bic"], 5), "delta": num(row["delta_aic"], 3),
                          "lr": num(row["lr"], 4) if row["df"] else "\u2014",
                          "p": f"{row['p']:.2g} (df {row['df']})" if row["df"] else "\u2014"}
                         for row in result.comparison] if len(result.comparison) > 1 else []
    parametric = {m: f for m, f in result.fits.items() if m != "bootstrap"}
    sd = float(r.std())
    grid = np.linspace(r.min() - sd, r.max() + sd, 400)
    unit = "monthly log return"
    ctx["charts"] = [
        figure("density", "Fitted and observed distribution", charts.fitted_density(
            r, {LABELS[m]: (grid, cal.model_pdf(f, grid)) for m, f in parametric.items()},
            title="Monthly log returns: history and fitted densities",
            xlabel="monthly log return [ln(S_t / S_t-1)]", ylabel="density [1/log return]"),
            "Histogram of the sample's monthly log returns (density) with each fitted model's "
            "density; the regime model's is its stationary mixture.",
            "Histogram of returns with fitted densities."),
        figure("qq", "QQ plot", charts.qq_plot(
            {LABELS[m]: cal.qq(f, r) for m, f in parametric.items()},
            title="Quantiles: history against each model", unit=unit),
            "Sorted monthly log returns against each model's quantiles at (i - 1/2)/n; points "
            "off the dashed line are months the model finds too unlikely (tails).",
            "QQ plot of returns against the fitted models."),
        figure("acf", "Autocorrelation", charts.autocorrelation(
            np.arange(1, 25), {"returns": cal.acf(r, 24), "squared returns": cal.acf(r**2, 24)},
            1.96 / math.sqrt(r.size), title="Autocorrelation of returns and squared returns"),
            "Sample autocorrelation at lags of 1 to 24 months. Squared returns outside the band "
            "mean volatility clusters, which GBM and Merton ignore and the regime model and a "
            "block bootstrap keep.", "Autocorrelation bars by lag.")]
    if "regime" in result.fits:
        wild = result.fits["regime"].extra["smoothed_wild"]
        ctx["charts"].append(figure("regimes", "Regime probabilities", charts.regime_probability(
            result.dates, wild, title="Smoothed probability of the wild (higher-volatility) regime",
            label="P(wild regime | all months)"),
            "Probability of state 1, the higher-volatility regime, in each month given the whole "
            "sample (Kim smoother).", "Regime probability over time."))
    ctx["notes"] = [
        "Volatility convention: annualised as sqrt(12) times the standard deviation of monthly "
        "log returns with ddof = 0 (the maximum likelihood estimate), so GBM's volatility is "
        "the sample's realised volatility.",
        f"Drift: the data say little about it. Over {num(r.size / 12, 3)} years the mean log "
        f"return has a standard error of volatility / sqrt(years) = "
        f"{num(result.fits['gbm'].extra['log_drift'].se, 3)} a year. Every drift here is a "
        "real-world figure for the forecasts; fair value prices BTC at the risk-free rate.",
        "Merton: exact likelihood of the Poisson mixture, truncated at "
        f"{cal.MERTON_MAX_JUMPS} jumps a month; SEs from the inverse of a finite-difference "
        "Hessian. Monthly data separate jumps from diffusion only when the jumps are large.",
        "Likelihood ratios against GBM use nominal chi-square p-values: the Merton intensity "
        "is on its boundary under GBM and the regime model's transitions are not identified, so "
        "the true p-values differ; AIC and BIC are on the same returns."]
    return ctx


def fees_context(result: cal.SeriesCalibration, series: Any, window: Any, yaml_text: str,
                 command: str) -> dict[str, Any]:
    """Flat context of the fee calibration report."""
    fit, y = result.fit, result.values
    ctx = _context("Transaction fees per block", series, window, yaml_text, command)
    ctx["fits"] = [{"name": LABELS["fees"], "rows": _param_rows(fit), "notes": list(fit.notes)}]
    mu, sd = fit.extra["mean_log"], fit.params["log_sd"].value
    phi = fit.params["persistence_monthly"].value
    lags = np.arange(1, min(24, y.size // 2) + 1)
    ctx["charts"] = [
        figure("series", "Fees over time", charts.series_fit(
            result.dates, y, np.full(y.size, mu), title="Log fees per block and the fitted median",
            ylabel="ln(fees per block) [ln BTC]", fitted_label="ln median",
            band=(np.full(y.size, mu - sd), np.full(y.size, mu + sd)), band_label="± log_sd"),
            "Monthly mean fees per block in logs, the fitted median and one stationary sd.",
            "Log fees over time with the fitted median."),
        figure("acf", "Autocorrelation", charts.autocorrelation(
            lags, {"ln fees": cal.acf(y, lags.size)}, 1.96 / math.sqrt(y.size),
            title="Autocorrelation of log fees", model={"AR(1): phi^lag": phi**lags}),
            "Sample autocorrelation of log fees against the fitted AR(1)'s phi^lag.",
            "Autocorrelation of log fees.")]
    ctx["notes"] = ["Each month is the mean of the file's rows in that month (fees are a flow).",
                    "ARIMA(1,0,0) by exact Gaussian maximum likelihood (statsmodels); SEs of "
                    "median and log_sd by the delta method."]
    return ctx


def hashrate_context(result: cal.SeriesCalibration, series: Any, window: Any, yaml_text: str,
                     command: str) -> dict[str, Any]:
    """Flat context of the hashrate calibration report."""
    fit, y = result.fit, result.values
    g = fit.extra["log_growth"].value
    d = fit.extra["increments"]
    ctx = _context("Network hashrate growth", series, window, yaml_text, command)
    ctx["fits"] = [{"name": LABELS["hashrate"], "rows": _param_rows(fit), "notes": list(fit.notes)}]
    months = np.arange(y.size)
    m, sd = float(d.mean()), float(d.std())
    grid = np.linspace(d.min() - sd, d.max() + sd, 300)
    ctx["charts"] = [
        figure("series", "Hashrate over time", charts.series_fit(
            result.dates, y, y[0] + g * months / 12, title="Log network hashrate and the fitted trend",
            ylabel="ln(hashrate) [ln EH/s]", fitted_label="constant log growth"),
            "Monthly mean hashrate in logs against the fitted constant growth from the first month.",
            "Log hashrate over time with the trend."),
        figure("density", "Monthly log changes", charts.fitted_density(
            d, {"normal fit": (grid, np.exp(-0.5 * ((grid - m) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)))},
            title="Monthly log changes of hashrate", xlabel="monthly log change [ln(H_t / H_t-1)]",
            ylabel="density [1/log change]"),
            "Histogram of monthly log changes with the normal distribution of the fit.",
            "Histogram of hashrate changes.")]
    ctx["notes"] = ["Each month is the mean of the file's rows in that month.",
                    "growth_year1 = e^g - 1 with g the mean monthly log change times 12; its SE is "
                    "Newey-West because monthly growth is autocorrelated."]
    return ctx
