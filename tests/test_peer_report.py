"""The peer memo (issue 17): table, correlations, pairs, exports, and ``minersim run <universe>``.

One small peer run of two companies (CLSK and WULF from the shipped files, on a copy of
``scenarios/peers.yaml`` with 24 months and a small mark fit) goes through the command line
once; every test reads its outputs. Statistics are checked against numpy written out here.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from simulator.analysis import peers
from simulator.cli import cli
from simulator.cube import load
from simulator.errors import RunError
from simulator.report.html import check_self_contained

ROOT = Path(__file__).resolve().parent.parent
TICKERS = ("CLSK", "WULF")
PATHS, SEED = 256, 3


def write_universe(directory: Path, tickers=TICKERS) -> Path:
    """A copy of the shipped universe listing only ``tickers``, over 24 months, with the company
    files beside it (they say ``extends: ../peers.yaml``)."""
    (directory / "companies").mkdir(parents=True)
    for t in tickers:
        src = ROOT / "scenarios" / "companies" / f"{t.lower()}.yaml"
        (directory / "companies" / src.name).write_text(src.read_text())
    text = (ROOT / "scenarios" / "peers.yaml").read_text()
    text = re.sub(r"companies:\n(  - .*\n)+", "companies:\n" + "".join(
        f"  - companies/{t.lower()}.yaml\n" for t in tickers), text)
    text = text.replace("horizon_months: 120", "horizon_months: 24")
    text = text.replace("  forward_years: [1, 2, 3]\n", "  forward_years: [1, 2]\n  marks: {fit_paths: 512}\n")
    assert "fit_paths: 512" in text and "horizon_months: 24" in text
    path = directory / "peers.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    return write_universe(tmp_path_factory.mktemp("universe"))


@pytest.fixture(scope="module")
def run_dir(universe):
    out = universe.parent / "runs" / "duo"
    result = CliRunner().invoke(cli, ["run", str(universe), "--paths", str(PATHS), "--seed", str(SEED),
                                      "--pair", "CLSK/WULF", "--pair", "wulf/clsk",
                                      "--breakeven-paths", "128", "--processes", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def summary(run_dir):
    return json.loads((run_dir / "peers.json").read_text())


@pytest.fixture(scope="module")
def cubes(run_dir):
    return {t: load(run_dir / t.lower() / "results.nc") for t in TICKERS}


def hand_returns(cube) -> np.ndarray:
    """r = F12 / P - 1, written out from the cube."""
    f12 = cube["forward_value_per_share"].sel(horizon=12).values.astype(np.float64)
    return f12 / float(cube.attrs["share_price"]) - 1.0


def test_run_writes_a_complete_directory_per_company_and_the_peer_files(run_dir, cubes):
    assert sorted(p.name for p in run_dir.iterdir()) == ["clsk", "peers.html", "peers.json", "wulf"]
    for t in TICKERS:
        assert sorted(p.name for p in (run_dir / t.lower()).iterdir()) == ["report.html", "results.nc"]
        assert cubes[t].attrs["ticker"] == t and cubes[t].attrs["universe_name"] == "peers"
    assert not list(run_dir.parent.glob(".*staging"))
    one = CliRunner().invoke(cli, ["export", str(run_dir / "clsk"), "--format", "json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["manifest"]["ticker"] == "CLSK"


def test_correlation_is_numpy_s_across_shared_paths(summary, cubes):
    np.testing.assert_array_equal(cubes["CLSK"]["btc_price"].values, cubes["WULF"]["btc_price"].values)
    r = np.column_stack([hand_returns(cubes[t]) for t in TICKERS])
    want = np.corrcoef(r.T)
    got = np.array(summary["correlation"]["matrix"], dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert summary["correlation"]["n"] == PATHS
    assert summary["correlation"]["tickers"] == list(TICKERS)


def test_pair_trades_are_numpy_s_differences(summary, cubes):
    d = hand_returns(cubes["CLSK"]) - hand_returns(cubes["WULF"])
    pairs = {(p["a"], p["b"]): p for p in summary["pairs"]}
    assert set(pairs) == {("CLSK", "WULF"), ("WULF", "CLSK")}
    assert pairs["CLSK", "WULF"]["why"] == "requested; the only pair"
    for (a, b), sign in ((("CLSK", "WULF"), 1.0), (("WULF", "CLSK"), -1.0)):
        p, x = pairs[a, b], sign * d
        assert p["n"] == PATHS
        assert p["mean"] == pytest.approx(x.mean(), abs=1e-12)
        assert p["mean_se"] == pytest.approx(x.std(ddof=1) / np.sqrt(PATHS), rel=1e-9)
        up = np.mean(x > 0)
        assert p["prob_positive"] == up
        assert p["prob_positive_se"] == pytest.approx(np.sqrt(up * (1 - up) / PATHS), rel=1e-12)
        for q in (0.05, 0.1, 0.5, 0.9, 0.95):
            assert p["percentiles"][f"{q:g}"]["value"] == pytest.approx(np.quantile(x, q), abs=1e-12)
        rho = np.corrcoef(hand_returns(cubes["CLSK"]), hand_returns(cubes["WULF"]))[0, 1]
        assert p["correlation"] == pytest.approx(rho, abs=1e-12)


def test_most_and_least_correlated_pairs_by_hand(cubes):
    """A third company whose return is minus CLSK's is CLSK's least correlated peer."""
    anti = copy.deepcopy(cubes["CLSK"])
    anti.attrs["ticker"] = "ANTI"
    f = anti["forward_value_per_share"]
    anti["forward_value_per_share"] = 2 * float(anti.attrs["share_price"]) - f
    group = {**cubes, "ANTI": anti}
    s = peers.peer_summary(group)
    r = np.column_stack([hand_returns(c) for c in group.values()])
    m = np.corrcoef(r.T)
    ranked = sorted(((m[i, j], a, b) for i, a in enumerate(group) for j, b in enumerate(group) if i < j),
                    reverse=True)
    assert [(p["a"], p["b"]) for p in s["correlation"]["ranked"]] == [(a, b) for _, a, b in ranked]
    assert s["correlation"]["ranked"][-1]["correlation"] == pytest.approx(-1.0, abs=1e-12)
    whys = {(p["a"], p["b"]): p["why"] for p in s["pairs"]}
    assert whys == {ranked[0][1:]: "most correlated", ranked[-1][1:]: "least correlated"}


def test_fair_value_upside_and_their_standard_errors(summary, cubes):
    rows = {r["ticker"]: r for r in summary["table"]["rows"]}
    for t in TICKERS:
        a = cubes[t].attrs
        fair, se, price = float(a["fair_value_per_share"]), float(a["fair_value_se"]), float(a["share_price"])
        row = rows[t]
        assert (row["fair_value"], row["fair_value_se"], row["share_price"]) == (fair, se, price)
        assert row["upside"] == pytest.approx(fair / price - 1, abs=1e-15)
        assert row["upside_se"] == pytest.approx(se / price, abs=1e-15)
        f12 = cubes[t]["forward_value_per_share"].sel(horizon=12).values
        assert row["value_12m_p50"] == pytest.approx(np.median(f12), abs=1e-12)
        assert row["prob_up_12m"] == np.mean(f12 > price)
    assert summary["rankings"]["upside"] == sorted(TICKERS, key=lambda t: -rows[t]["upside"])


def test_every_figure_names_its_measure(summary):
    measure = {c["key"]: c["measure"] for c in summary["table"]["columns"]}
    unlabelled = {k for k, m in measure.items() if not m}
    assert unlabelled == {"ticker", "company", "breakeven_status"}
    assert {measure[k] for k in ("fair_value", "upside", "upside_se", "hpc_share", "fair_equity_per_ehs",
                                 "fair_equity_per_mw", "breakeven_btc")} == {"pricing"}
    assert {measure[k] for k in measure if k.startswith(("value_12m", "return_12m", "prob_up", "btc_"))} \
        == {"real-world"}
    assert {measure[k] for k in ("share_price", "market_cap", "market_cap_per_ehs")} == {"market"}
    for section in ("fair_value", "upside", "forecast", "correlation", "pairs", "decoupling", "breakeven"):
        assert summary["measures"][section].startswith(("pricing", "real-world"))


def test_value_per_ehs_and_mw_use_today_s_hashrate_and_contracted_power(summary):
    rows = {r["ticker"]: r for r in summary["table"]["rows"]}
    # CLSK: 50 EH/s and 1,027 MW contracted (scenarios/companies/clsk.yaml, C-O1 and C-O6).
    clsk = rows["CLSK"]
    assert (clsk["hashrate_ehs"], clsk["contracted_mw"]) == (50.0, 1027.0)
    assert clsk["market_cap"] == pytest.approx(14.57 * 255.58, rel=1e-9)
    assert clsk["market_cap_per_ehs"] == pytest.approx(14.57 * 255.58 / 50, rel=1e-9)
    assert clsk["fair_equity_per_mw"] == pytest.approx(clsk["fair_value"] * 255.58 / 1027, rel=1e-9)


def test_breakevens_stop_where_the_fair_value_meets_the_price(summary):
    for row in summary["companies"]:
        b = row["breakeven"]
        assert b["paths"] == 128 and b["evaluations"] >= 2
        if b["status"] == "found":
            # Brent stops within xtol of the root, where fair value - price changes sign.
            assert abs(b["fair_at_root"] - b["target"]) <= abs(b["slope"]) * b["xtol"] + 1e-9
            assert (b["value"] > b["spot"]) == (row["fair_value"] < row["share_price"])
        else:
            lo, hi = b["fair_at_limits"]
            assert (lo - b["target"]) * (hi - b["target"]) > 0


def test_exports_parse_and_carry_the_run_s_numbers(run_dir, summary):
    runner = CliRunner()
    out = {fmt: runner.invoke(cli, ["export", str(run_dir), "--format", fmt]) for fmt in ("md", "csv", "json")}
    assert all(r.exit_code == 0 for r in out.values()), {k: r.output for k, r in out.items()}
    assert json.loads(out["json"].output) == summary
    rows = list(csv.DictReader(io.StringIO(out["csv"].output)))
    assert [r["ticker"] for r in rows] == list(TICKERS)
    table = {r["ticker"]: r for r in summary["table"]["rows"]}
    for r in rows:
        assert float(r["fair_value [USD/share; pricing]"]) == table[r["ticker"]]["fair_value"]
        assert float(r["prob_up_12m [1; real-world]"]) == table[r["ticker"]]["prob_up_12m"]
        assert float(r["btc_beta_y1 [1; real-world]"]) == table[r["ticker"]]["btc_beta_y1"]
    md = out["md"].output
    clsk = table["CLSK"]
    assert f"| CLSK | {clsk['share_price']:,.2f} | {clsk['fair_value']:,.2f} | " in md
    assert "(real-world measure" in md and "(pricing measure" in md
    corr = summary["correlation"]["matrix"][0][1]
    assert f"| CLSK | 1.00 | {corr:.2f} |" in md


def test_peer_memo_is_self_contained_and_labels_its_measures(run_dir, summary):
    html = (run_dir / "peers.html").read_text()
    check_self_contained(html)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    for section in ("value", "forecast", "decoupling", "footprint", "correlation", "pairs", "breakevens",
                    "methodology", "manifest"):
        assert f'id="{section}"' in html
    for h2 in ("Fair value against the market price (pricing measure)", "Twelve months on (real-world measure)",
               "Correlation of 12-month returns (real-world measure)", "Pair trades (real-world measure)",
               "Breakeven BTC spot (pricing measure)"):
        assert f"<h2>{h2}</h2>" in html
    assert summary["manifest"]["universe_sha256"] in html
    assert html.count("<figure") == 6 + len(summary["pairs"])


@pytest.mark.parametrize("args, message", [
    (["--pair", "CLSK/XYZ"], "--pair 'CLSK/XYZ': XYZ is not in the peer group (CLSK, WULF)"),
    (["--pair", "CLSK"], "--pair 'CLSK': give two tickers as A/B (e.g. CLSK/WULF)"),
    (["--pair", "wulf/WULF"], "--pair 'wulf/WULF': a pair needs two different companies"),
    (["--precision", "0.1"], ("--precision: not available for a peer group; give --paths, or run a "
                             "company file alone (scenarios/companies/<ticker>.yaml)")),
])
def test_bad_input_exits_2_with_one_line_before_simulating(universe, tmp_path, args, message):
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["run", str(universe), "--out", str(out), *args])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert not out.exists()


def test_pair_on_one_company_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(ROOT / "scenarios" / "companies" / "clsk.yaml"),
                                      "--pair", "CLSK/WULF", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stderr == (f"--pair: {ROOT / 'scenarios' / 'companies' / 'clsk.yaml'} is one company; "
                             "pair trades need a universe file that lists companies: (e.g. "
                             "scenarios/peers.yaml)\n")


def test_cubes_of_different_worlds_are_refused(cubes):
    other = copy.deepcopy(cubes["WULF"])
    other["btc_price"] = other["btc_price"] * 1.01
    with pytest.raises(RunError, match="do not share their BTC price paths"):
        peers.peer_summary({"CLSK": cubes["CLSK"], "WULF": other})


def test_a_failed_run_leaves_the_previous_one_as_it_was(run_dir, universe, cubes, monkeypatch):
    """The write fails after the companies' results are staged: nothing in the run changes."""
    import simulator.run
    from simulator.report import peer_export

    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}

    def broken(summary):
        raise RunError("disk on fire")

    # The simulation is not what this test is about: the saved cubes stand in for it.
    monkeypatch.setattr(simulator.run, "simulate_peers", lambda *a, **k: copy.deepcopy(cubes))
    monkeypatch.setattr(peer_export, "summary_json", broken)
    result = CliRunner().invoke(cli, ["run", str(universe), "--paths", str(PATHS), "--seed", "4",
                                      "--no-breakevens", "--no-report", "--processes", "1",
                                      "--out", str(run_dir)])
    assert result.exit_code == 2 and result.stderr == "disk on fire\n"
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert not list(run_dir.parent.glob(".*staging"))
