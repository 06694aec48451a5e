"""``minersim run --drivers``: the tornado and breakevens reach the report, the summary and the progress bar."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator import cli as cli_mod
from simulator.cli import cli
from simulator.report.drivers import BREAKEVEN_STEPS, analysis_lines, analysis_steps
from simulator.scenario import load
from support import short_yaml

ROOT = Path(__file__).resolve().parent.parent
PATHS, DRIVERS_PATHS = "64", "32"


@pytest.fixture(scope="module")
def with_drivers(short, tmp_path_factory):
    """Summary, report and every progress call of one ``--drivers`` run."""
    out = tmp_path_factory.mktemp("drivers")
    calls: list[tuple[int, int]] = []
    update = cli_mod._Progress.update

    def spy(self, done: int, total: int) -> None:
        calls.append((done, total))
        update(self, done, total)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli_mod._Progress, "update", spy)
        result = CliRunner().invoke(cli, ["run", str(short), "--paths", PATHS, "--drivers",
                                          "--drivers-paths", DRIVERS_PATHS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, (out / "report.html").read_text(encoding="utf-8"), calls


@pytest.fixture(scope="module")
def without(tmp_path_factory):
    # Three years, not one: over a 12-month horizon base is worth $0 on every one of these
    # paths, and a value that never moves has no rank correlation to show.
    scenario = short_yaml(tmp_path_factory.mktemp("scenario36"), months=36)
    out = tmp_path_factory.mktemp("plain")
    result = CliRunner().invoke(cli, ["run", str(scenario), "--paths", PATHS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, (out / "report.html").read_text(encoding="utf-8")


def _breakeven_table(html: str) -> str:
    section = html[html.index('<section id="breakevens">'):]
    return section[:section.index("</section>")]


def test_report_has_tornado_and_both_breakevens_with_drivers(with_drivers, short):
    _, html, _ = with_drivers
    assert 'id="fig-tornado"' in html
    n_inputs = sum(1 for _ in load(short).scenario.uncertain_inputs())
    tornado = html[html.index("<th>input</th><th class=\"num\">P10</th>"):]
    assert tornado[:tornado.index("</table>")].count("<tr><td><code>") == n_inputs
    table = _breakeven_table(html)
    assert "<td>BTC spot price</td>" in table
    assert "<td>lease-signing probability (all sites)</td>" in table
    assert f"re-runs of {int(DRIVERS_PATHS):,} paths" in table
    for start, end in (('<section id="drivers">', '<section id="decoupling">'),
                       ('<section id="breakevens">', '<section id="methodology">')):
        assert "--drivers" not in html[html.index(start):html.index(end)]


def test_report_without_drivers_shows_rank_correlations_and_says_how(without):
    _, html = without
    drivers = (html[html.index('<section id="drivers">'):html.index('<section id="decoupling">')]
               + html[html.index('<section id="breakevens">'):html.index('<section id="methodology">')])
    assert 'id="fig-tornado"' not in html
    assert "Spearman &rho;" in drivers
    assert "<td>BTC spot price</td>" not in drivers
    # The hint names the commands as code, not as raw Markdown backticks.
    assert "<code>minersim run --drivers</code>" in drivers and "<code>minersim compare</code>" in drivers
    assert "`" not in drivers


def test_summary_prints_top_five_drivers_and_both_breakevens(with_drivers, without):
    out, _, _ = with_drivers
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("drivers (swing"))
    assert all(re.fullmatch(r"    \S+\s+\$\s*[\d.]+  \(SE [\d.]+\)", line) for line in lines[head + 1:head + 6])
    assert any(line.strip().startswith("breakeven BTC spot") for line in lines)
    assert any(line.strip().startswith("breakeven signing probability") for line in lines)
    assert "drivers (swing" not in without[0] and "breakeven" not in without[0]


def test_progress_covers_the_reruns(with_drivers, short):
    calls = with_drivers[2]
    steps = analysis_steps(load(short).scenario)
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {1 + steps}  # one chunk of 64 paths, then the re-runs
    assert done == sorted(done) and done[-1] == 1 + steps
    # one call for the chunk, one per tornado pair plus the unperturbed re-run, one per breakeven
    n_inputs = (steps - 1 - 2 * BREAKEVEN_STEPS) // 2
    assert len(calls) == 1 + 1 + n_inputs + 2


def test_analysis_lines_by_hand():
    tornado = {"paths": 1024, "rows": [{"key": f"k{i}", "swing": 10.0 - i, "swing_se": 0.25}
                                       for i in range(7)]}
    spot = {"units": "USD/BTC", "status": "found", "value": 91_234.4, "xtol": 250.0, "mc_se": 1_500.0}
    sign = {"units": "1", "status": "not_attained", "median_at_bracket": (0.0, 13.27), "target": 15.5}
    lines = analysis_lines(tornado, [spot, sign])
    assert lines[0] == "  drivers (swing in median, P10 to P90 of each input; 1,024 paths per re-run)"
    assert len(lines) == 1 + 5 + 2 and lines[5].startswith("    k4 ")
    assert lines[6] == "  breakeven BTC spot             $91,234  (tolerance ± $250, Monte Carlo SE $1,500)"
    assert lines[7] == ("  breakeven signing probability  not attained: median $0.00 to $13.27 over the "
                        "range, market $15.50")
    assert analysis_lines(None, [{"units": "1", "status": "no_sites"}]) == [
        "  breakeven signing probability  none: no site converts"]


def test_counting_and_summarising_the_drivers_imports_no_report_library():
    """The main process of ``minersim run --drivers`` needs analysis_steps and analysis_lines
    only; matplotlib and Jinja2 belong to the report child (about 0.9 s of imports)."""
    code = ("import sys\n"
            "from simulator.report.drivers import analysis_lines, analysis_steps\n"
            "print(','.join(m for m in ('matplotlib', 'jinja2') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == ""
