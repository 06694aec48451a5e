"""``minersim calibrate`` (simulator/analysis/calibrate.py, report/calibration_report.py).

Recovery tests simulate each process with the engine's own functions (``engine/market.py``)
and check that the fit lands within 3 standard errors of every parameter, so they fail if
the fit's conventions drift from the engine's (drift vs log drift, per-year vs per-month
units, state order). Sample sizes and designs are chosen so the parameters are identified
(Merton's jumps are six diffusion sds large); seeds are fixed.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from simulator.analysis import calibrate as cal
from simulator.cli import cli
from simulator.engine import market

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "scenarios" / "data" / "btc-usd-monthly.csv"


def _log_returns(prices: np.ndarray) -> np.ndarray:
    """Monthly log returns of one simulated path that starts at 1."""
    return np.diff(np.log(np.concatenate([[1.0], prices[0]])))


def _within_3_se(fit: cal.Fit, truth: dict[str, float]) -> None:
    for key, value in truth.items():
        est = fit.params[key]
        assert np.isfinite(est.se) and est.se > 0, (key, est)
        assert abs(est.value - value) < 3 * est.se, (key, est, value)


# ------------------------------------------------------------------ recovery

def test_gbm_recovers_drift_and_volatility():
    # At sigma 0.9 over 200 years, drift (mu) and log drift (mu - sigma^2/2) are 6 SEs apart:
    # a fit that mixed them up would fail.
    n = 2_400
    z = np.random.default_rng(11).standard_normal((1, n))
    r = _log_returns(market.gbm(1.0, n, {"z": z}, mu=0.3, sigma=0.9))
    fit = cal.fit_gbm(r)
    _within_3_se(fit, {"drift": 0.3, "volatility": 0.9})
    assert fit.params["drift"].se < (0.9**2 / 2) / 5


def test_merton_recovers_its_five_parameters():
    n = 1_200
    g = np.random.default_rng(4)
    shocks = {"z": g.standard_normal((1, n)), "u_jump": g.random((1, n)),
              "z_jump": g.standard_normal((1, n))}
    truth = {"drift": 0.1, "volatility": 0.3, "jump_intensity_per_year": 1.0,
             "jump_mean": -0.5, "jump_sd": 0.15}
    r = _log_returns(market.merton(1.0, n, shocks, mu=0.1, sigma=0.3, jump_intensity_per_year=1.0,
                                   jump_mean=-0.5, jump_sd=0.15))
    fit = cal.fit_merton(r)
    assert fit.notes == ()
    _within_3_se(fit, truth)
    assert fit.loglik >= float(np.sum(cal.merton_logpdf(r, *truth.values())))


def test_regime_recovers_both_states_in_the_engine_order():
    n = 1_000
    g = np.random.default_rng(2)
    mu, sigma, stay = np.array([0.6, -0.5]), np.array([0.4, 0.9]), np.array([0.95, 0.9])
    r = _log_returns(market.regime(1.0, n, {"z": g.standard_normal((1, n)),
                                            "u_regime": g.random((1, n))},
                                   mu=mu, sigma=sigma, p_stay=stay))
    fit = cal.fit_regime(r)
    truth = {f"{key}[{s}]": float(v[s]) for key, v in
             (("drift", mu), ("volatility", sigma), ("stay_probability_monthly", stay)) for s in (0, 1)}
    _within_3_se(fit, truth)
    np.testing.assert_allclose(fit.extra["durations_months"], 1 / (1 - np.array(
        [fit.params[f"stay_probability_monthly[{s}]"].value for s in (0, 1)])))
    assert fit.extra["smoothed_wild"].shape == (n,)


def test_fees_ar1_recovers_median_log_sd_and_persistence():
    n = 600
    z = np.random.default_rng(3).standard_normal((1, n))
    fees = market.fees_per_block(0.03, 0.6, 0.8, n, z)[0]
    fit = cal.calibrate_fees(np.arange(n), fees).fit
    _within_3_se(fit, {"median_btc_per_block": 0.03, "log_sd": 0.6, "persistence_monthly": 0.8})


def test_hashrate_recovers_growth_and_volatility():
    n, g, vol = 240, math.log1p(0.4), 0.15
    steps = g / 12 + vol * math.sqrt(1 / 12) * np.random.default_rng(5).standard_normal(n)
    hashrate = 500 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    fit = cal.calibrate_hashrate(np.arange(n + 1), hashrate).fit
    _within_3_se(fit, {"growth_year1": 0.4, "volatility": vol})


def test_merton_density_integrates_to_one_with_the_engine_moments():
    """Against the engine's closed forms (market.merton, Notes): mass 1, mean m, variance s^2."""
    mu, sigma, lam, mj, sj = 0.2, 0.5, 3.0, -0.2, 0.15
    x = np.linspace(-4, 4, 40_001)
    f = np.exp(cal.merton_logpdf(x, mu, sigma, lam, mj, sj))
    dt, k = 1 / 12, math.expm1(mj + sj**2 / 2)
    mean = (mu - sigma**2 / 2 - lam * k) * dt + lam * dt * mj
    var = sigma**2 * dt + lam * dt * (mj**2 + sj**2)
    assert np.trapezoid(f, x) == pytest.approx(1, abs=1e-9)
    assert np.trapezoid(x * f, x) == pytest.approx(mean, abs=1e-9)
    assert np.trapezoid((x - mean) ** 2 * f, x) == pytest.approx(var, rel=1e-7)


# ------------------------------------------------------------------ the shipped history

def _shipped_returns() -> np.ndarray:
    with open(HISTORY, newline="") as fh:
        closes = [float(row["close"]) for row in csv.DictReader(fh)]
    return np.array([math.log(b / a) for a, b in itertools.pairwise(closes)])


def test_gbm_volatility_on_the_shipped_history_is_its_realised_volatility():
    from simulator.scenario.history import read_monthly_series

    series = read_monthly_series(HISTORY, "close")
    fit = cal.calibrate_btc(series.dates, series.values, ("gbm",)).fits["gbm"]
    r = _shipped_returns()
    realised = statistics.pstdev(r) * math.sqrt(12)  # population sd, annualised
    assert fit.params["volatility"].value == pytest.approx(realised, rel=1e-12, abs=0)
    assert 0.85 < realised < 0.95  # data/README.md: about 90%/yr over 2012-2024
    years = r.size / 12
    assert fit.extra["log_drift"].value == pytest.approx(12 * statistics.fmean(r), rel=1e-12)
    assert fit.extra["log_drift"].se == pytest.approx(realised / math.sqrt(years), rel=1e-12)
    v = statistics.pvariance(r)
    assert fit.loglik == pytest.approx(sum(-0.5 * math.log(2 * math.pi * v) - (x - statistics.fmean(r))**2
                                           / (2 * v) for x in r), rel=1e-12)


# ------------------------------------------------------------------ the command line

def _paste(tmp_path: Path, block: str, name: str) -> Path:
    """A scenario on the shipped base case with ``block`` pasted at its end."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"extends: {ROOT / 'scenarios' / 'base.yaml'}\nname: {name}\ncorrelations: []\n"
                    + block)
    return path


def _validates(path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_calibrate_btc_gbm_prints_scenario_yaml_and_writes_the_report(tmp_path):
    out = tmp_path / "cal.html"
    result = CliRunner().invoke(cli, ["calibrate", "btc", str(HISTORY), "--model", "gbm",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    process = data["market"]["btc"]["process"]
    assert list(data) == ["market"] and set(process) == {"kind", "drift", "volatility"}
    assert process["kind"] == "gbm" and process["volatility"] == pytest.approx(0.8996, abs=1e-4)
    sha = hashlib.sha256(HISTORY.read_bytes()).hexdigest()
    assert f"# sha256: {sha}" in result.stdout
    assert "# as_of: 2024-12-31" in result.stdout
    assert "# sample: 2012-01-31 to 2024-12-31 (156 month-end closes, 155 monthly log returns)" \
        in result.stdout
    assert result.stderr == f"wrote {out}\n"
    html = out.read_text()
    assert sha in html and html.count("<svg") == 3  # density, QQ, autocorrelation
    for title in ("Monthly log returns: history and fitted densities",
                  "Quantiles: history against each model",
                  "Autocorrelation of returns and squared returns"):
        assert f"<title>{title}</title>" in html
    assert "Traceback" not in result.output
    _validates(_paste(tmp_path, result.stdout, "pasted"))


def test_calibrate_btc_all_models_paste_and_validate(tmp_path):
    out = tmp_path / "all.html"
    result = CliRunner().invoke(cli, ["calibrate", "btc", str(HISTORY), "--since", "2016-01-01",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["market"]["btc"]["process"]["kind"] for d in docs] == list(cal.BTC_MODELS)
    assert "# sample: 2016-01-31 to 2024-12-31 (108 month-end closes" in result.stdout
    for kind, block in zip(cal.BTC_MODELS, result.stdout.split("\n---\n"), strict=True):
        _validates(_paste(tmp_path, block, kind))
    html = out.read_text()
    assert "Model comparison" in html and html.count("<svg") == 4  # and the regime probabilities


@pytest.mark.parametrize("what", ["fees", "hashrate"])
def test_calibrate_fees_and_hashrate_paste_and_validate(what, tmp_path):
    rng = np.random.default_rng(8)
    months = np.arange("2019-01", "2025-01", dtype="datetime64[M]")
    if what == "fees":
        column, values = "fees_btc_per_block", market.fees_per_block(
            0.05, 0.5, 0.7, months.size, rng.standard_normal((1, months.size)))[0]
    else:
        column = "hashrate_ehs"
        values = 60 * np.exp(np.cumsum(0.03 + 0.04 * rng.standard_normal(months.size)))
    # Two rows a month (the 10th and the 20th): the command averages them.
    rows = [f"{m}-{day},{float(v * f)!r}" for m, v in zip(months, values, strict=True)
            for day, f in (("10", 0.9), ("20", 1.1))]
    data = tmp_path / f"{what}.csv"
    data.write_text(f"date,{column}\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["calibrate", what, str(data), "--out", str(tmp_path / "c.html")])
    assert result.exit_code == 0, result.output
    block = yaml.safe_load(result.stdout)
    section = block["market"]["fees"] if what == "fees" else block["network"]["model"]
    expected = ({"median_btc_per_block", "log_sd", "persistence_monthly"} if what == "fees" else
                {"kind", "growth_year1", "growth_decay_per_year", "btc_beta", "volatility"})
    assert set(section) == expected
    assert "# as_of: 2024-12-20" in result.stdout
    assert (tmp_path / "c.html").read_text().count("<svg") == 2
    _validates(_paste(tmp_path, result.stdout, what))


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.csv"
    path.write_text(text)
    return path


def _months(n: int, first: float = 100.0) -> list[str]:
    """``n`` month-end closes from January 2020, rising 1% a month."""
    ends = (np.arange("2020-01", "2040-01", dtype="datetime64[M]")[:n] + 1).astype("datetime64[D]") - 1
    return [f"{d},{first * 1.01**i}" for i, d in enumerate(ends)]


ROWS = {
    "missing file": (None, [], "{path}: file not found (expected a CSV with columns date,close)"),
    "no header": ("when,price\n2020-01-31,1\n", [],
                  "{path}:1: missing column(s) date, close (got header 'when,price'; expected "
                  "'date,close')"),
    "not a number": ("date,close\n2020-01-31,100\n2020-02-29,abc\n", [],
                     "{path}:3: close: not a number (got 'abc')"),
    "not positive": ("date,close\n2020-01-31,100\n2020-02-29,-5\n", [],
                     "{path}:3: close on 2020-02-29: must be a positive, finite number (got -5)"),
    "unsorted": ("date,close\n2020-01-31,100\n2020-03-31,102\n2020-02-29,101\n", [],
                 "{path}:4: date 2020-02-29 comes before the date 2020-03-31 on line 3 (dates must "
                 "increase, one row per date)"),
    "duplicate": ("date,close\n2020-01-31,100\n2020-01-31,101\n", [],
                  "{path}:3: date 2020-01-31 repeats the date 2020-01-31 on line 2 (dates must "
                  "increase, one row per date)"),
    "too few returns": ("date,close\n" + "\n".join(_months(30)) + "\n", ["--since", "2021-01-01"],
                        "{path}:14: only 17 monthly log returns from 2021-01-31 to 2022-06-30 (need "
                        "at least 24; the file covers 2020-01-31 to 2022-06-30)"),
    "unknown model": ("date,close\n" + "\n".join(_months(30)) + "\n", ["--model", "heston"],
                      "Usage: minersim calibrate btc [OPTIONS] PRICES\nTry 'minersim calibrate btc "
                      "--help' for help.\n\nError: Invalid value for '--model': 'heston' is not one of "
                      "'gbm', 'merton', 'regime', 'bootstrap', 'all'."),
}


@pytest.mark.parametrize("case", ROWS)
def test_bad_input_exits_2_with_file_and_line(case, tmp_path):
    text, extra, message = ROWS[case]
    path = tmp_path / "p.csv" if text is None else _csv(tmp_path, text)
    out = tmp_path / "c.html"
    result = CliRunner().invoke(cli, ["calibrate", "btc", str(path), *extra, "--out", str(out)],
                                prog_name="minersim")
    assert result.exit_code == 2, result.output
    assert result.stderr == message.format(path=path) + "\n"
    assert result.stdout == "" and "Traceback" not in result.output
    assert not out.exists()


def test_help_imports_no_numerical_library():
    code = ("import sys; from click.testing import CliRunner; from simulator.cli import cli\n"
            "for args in (['--help'], ['calibrate', '--help'], ['calibrate', 'btc', '--help']):\n"
            "    r = CliRunner().invoke(cli, args); assert r.exit_code == 0, r.output\n"
            "print(','.join(m for m in ('numpy', 'scipy', 'statsmodels', 'arch', 'matplotlib',"
            " 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------ the shipped bootstrap scenario

def test_shipped_bootstrap_scenario_validates_and_runs(tmp_path):
    import simulator

    result = CliRunner().invoke(cli, ["validate", "bootstrap"])
    assert result.exit_code == 0, result.output
    small = tmp_path / "small.yaml"
    small.write_text(f"extends: {ROOT / 'scenarios' / 'bootstrap.yaml'}\nname: small\n"
                     "simulation: {horizon_months: 12}\n"
                     "valuation: {forward_years: [1], marks: {fit_paths: 512}}\n")
    scenario = simulator.load_scenario(small)
    assert scenario.market.btc.process.csv == str(HISTORY)
    cube = simulator.simulate(scenario, paths=64, seed=3)
    assert cube.attrs["history_sha256"] == hashlib.sha256(HISTORY.read_bytes()).hexdigest()
    price = cube["btc_price"].values
    assert np.all(np.isfinite(price)) and np.all(price > 0)
    # Every month's return is one of the history's (blocks of consecutive months).
    first = np.log(price[:, 0] / scenario.market.btc.spot_usd)
    history = _shipped_returns()
    assert np.all(np.min(np.abs(first[:, None] - history[None, :]), axis=1) < 1e-6)  # btc_price is float32
