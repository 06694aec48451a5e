"""Bad input, one row each: what a user gives minersim, and exactly what minersim says back.

Each row of :data:`ROWS` writes its files into a fresh directory, runs one command through
click's ``CliRunner`` and checks the exit status and the whole of stderr: exact text, or a
regular expression (``re.compile``) where a path or a number varies. ``{tmp}`` stands for
the row's directory, ``{base}`` for the shipped base scenario, ``{run}`` for a saved run.
No row may print a traceback. The tests after the table check what a row cannot see:
that nothing was written or touched, and that warnings and waivers let a command go on.
"""

from __future__ import annotations

import os
import re
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator import cli as cli_mod
from simulator._files import scenarios_dir
from simulator.cli import cli
from simulator.errors import ScenarioWarning

BASE = scenarios_dir() / "base.yaml"
SHIPPED = ", ".join(sorted(p.stem for p in scenarios_dir().glob("*.yaml")))
SHORT = ("extends: {base}\nname: short\nsimulation: {{horizon_months: 12}}\n"
         "valuation: {{forward_years: [1]}}\n")
"""A scenario file's text: the shipped base case over 12 months (fast to run)."""


# ------------------------------------------------------------------ file makers

def sparse(size: int) -> Callable[[Path], None]:
    """A file of ``size`` bytes that takes no disk space."""
    def make(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.truncate(size)
    return make


def fifo(path: Path) -> None:
    os.mkfifo(path)


def directory(path: Path) -> None:
    path.mkdir()


def closes(*values: float | str, first: int = 2019) -> str:
    """A bootstrap CSV: one close per month from January of ``first``, dated the 28th."""
    rows = [f"{first + m // 12}-{m % 12 + 1:02d}-28,{v}" for m, v in enumerate(values)]
    return "date,close\n" + "".join(row + "\n" for row in rows)


STEADY = [50_000 + 1_000 * m for m in range(30)]


def bootstrap(csv: str, extra: str = "") -> str:
    """A scenario on the base case whose BTC process resamples ``csv``."""
    return (f"extends: {{base}}\nname: bs\ncorrelations: []\nmarket:\n  btc:\n    process:\n"
            f"      kind: bootstrap\n      csv: {csv}\n{extra}")


def alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


BIG_TEXT = " ".join(f"word{i} other{i}" for i in range(60_000))[:900_000]
"""900 KB of text that YAML reads as one string: what ``extends:`` of a log file meets."""

PSD = ("market.btc.process.volatility", "market.fees.median_btc_per_block",
       "network.model.efficiency_improvement_per_year")


def literal(text: str) -> str:
    """``text`` as a regular expression, its ``{tmp}`` and ``{base}`` left for :func:`_fill`."""
    return "{tmp}".join("{base}".join(re.escape(p) for p in part.split("{base}"))
                        for part in text.split("{tmp}"))


def power_source(source: str) -> str:
    """A scenario on the base case whose power price cites ``source`` (YAML text), on line 4."""
    return ("extends: {base}\ncompany:\n  power:\n"
            f"    price_usd_per_mwh: {{dist: triangular, low: 45, mode: 56, high: 65, source: {source}}}\n")


LOOK_AHEAD_C_F12 = (
    "{{tmp}}/s.yaml:{line}: warning: company.power.price_usd_per_mwh.source: cites C-F12 (Power price Q1 "
    "FY26), tagged [after as-of] in domain-facts.md: published after 2025-12-01; cite rows known on "
    "simulation.valuation_date (2025-12-01)\n")


# ------------------------------------------------------------------ the table

@dataclass(frozen=True)
class Row:
    files: dict[str, str | Callable[[Path], None]]
    """Name -> text (``{tmp}``, ``{base}`` filled in) or a function that makes the file."""
    stderr: str | re.Pattern[str]
    args: tuple[str, ...] = ("validate", "{tmp}/s.yaml")
    status: int = 2
    needs: tuple[str, ...] = field(default=())
    """Fixtures the row's arguments name (``run``: a saved run)."""


def scenario(text: str, stderr: str | re.Pattern[str], **kw) -> Row:
    """A row that writes ``text`` to ``s.yaml`` and validates it."""
    return Row({"s.yaml": text}, stderr, **kw)


def usage(command: str, problem: str) -> re.Pattern[str]:
    """click's usage error (its help hint varies by version)."""
    return re.compile(rf"Usage: minersim {command} .*\n\nError: {re.escape(problem)}\n", re.S)


ROWS: dict[str, Row] = {
    # ---- reading the file
    "empty_file": scenario("# nothing but a comment\n", "{tmp}/s.yaml: file is empty\n"),
    "huge_file": Row({"huge.yaml": sparse(50_000_000)},
                     "{tmp}/huge.yaml: file is 50.0 MB; the limit is 1 MiB\n",
                     args=("validate", "{tmp}/huge.yaml")),
    "yaml_syntax": scenario(
        "extends: {base}\nname: [a, b\nsites: []\n",
        "{tmp}/s.yaml:3: YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow "
        "sequence)\n"),
    "top_level_not_mapping": scenario(
        "- name: base\n- name: bear\n",
        "{tmp}/s.yaml:1: the top level must be a mapping of keys, not a list\n"),
    "duplicate_key": scenario(
        "extends: {base}\nnetwork:\n  hashrate_ehs: 1000\n  block_height: 925344\n  hashrate_ehs: 1100\n",
        "{tmp}/s.yaml:5: network.hashrate_ehs: duplicate key 'hashrate_ehs' (first at line 3)\n"),
    # a4 alone expands to 9**5 = 59,049 strings (about 66,000 nodes), so a5 crosses 100,000.
    "alias_bomb": scenario(alias_bomb(), "{tmp}/s.yaml:6: a5: too many nodes after alias expansion "
                                         "(limit 100,000); is this an alias bomb?\n"),
    # ---- extends
    "extends_cycle": Row(
        {"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "name: b\nextends: a.yaml\n"},
        "{tmp}/b.yaml:2: extends: extends cycle: a.yaml -> b.yaml -> a.yaml\n",
        args=("validate", "{tmp}/a.yaml")),
    "extends_missing": scenario(
        "name: mine\nextends: nothere.yaml\n",
        "{tmp}/s.yaml:2: extends: cannot extend 'nothere.yaml': no such file {tmp}/nothere.yaml "
        "(allowed: {shipped})\n"),
    "extends_large_text_file": Row(
        {"s.yaml": "extends: big.txt\nname: x\n", "big.txt": BIG_TEXT},
        "{tmp}/big.txt:1: the top level must be a mapping of keys, not the value '"
        + BIG_TEXT[:116] + "...\n"),
    # ---- keys and types
    "unknown_key": scenario(
        "extends: {base}\nsites:\n  - name: texas\n    gros_mw: 300\n",
        "{tmp}/s.yaml:4: sites[1]: unknown key 'gros_mw'; did you mean 'gross_mw'?\n"),
    "missing_key": scenario(
        "extends: {base}\nsites:\n  - name: abilene\n    mining_until_conversion: true\n",
        "{tmp}/s.yaml:3: sites[2]: missing required key 'gross_mw'\n"),
    "wrong_type": scenario(
        "extends: {base}\nsimulation:\n  horizon_months: ten years\n",
        "{tmp}/s.yaml:3: simulation.horizon_months: must be a whole number (got 'ten years')\n"),
    "bad_date": scenario(
        "extends: {base}\nsimulation:\n  valuation_date: 2025-13-01\n",
        "{tmp}/s.yaml:3: simulation.valuation_date: not a valid date (got '2025-13-01'; allowed "
        "YYYY-MM or YYYY-MM-DD)\n"),
    **{f"non_finite_{name}": scenario(
        f"extends: {{base}}\nnetwork:\n  hashrate_ehs: {value}\n",
        f"{{tmp}}/s.yaml:3: network.hashrate_ehs: must be a finite number (got {value})\n")
       for name, value in (("nan", ".nan"), ("inf", ".inf"), ("minus_inf", "-.inf"))},
    # ---- numbers and distributions
    "negative_mw": scenario(
        "extends: {base}\nsites:\n  - name: texas\n    gross_mw: -5\n",
        "{tmp}/s.yaml:4: sites[1].gross_mw: must be >= 0 (got -5)\n"),
    "probability_above_one": scenario(
        "extends: {base}\nsites:\n  - name: texas\n    conversion:\n      signing_probability: 1.2\n",
        "{tmp}/s.yaml:5: sites[1].conversion.signing_probability: must be >= 0 and <= 1 (got 1.2)\n"),
    "converted_exceeds_gross": scenario(
        "extends: {base}\nsites:\n  - name: sandersville\n    conversion:\n      converted_gross_mw: 400\n",
        "{tmp}/s.yaml:5: sites[0].conversion.converted_gross_mw: must not exceed gross_mw (draws "
        "reach 400 > 250)\n"),
    "low_above_high": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: uniform, low: 70, high: 50}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: low must be < high (got low=70.0, "
        "high=50.0)\n"),
    "mode_outside": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: triangular, low: 45, "
        "mode: 80, high: 65}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: mode must lie in [low, high] (got "
        "mode=80.0; allowed 45.0 to 65.0)\n"),
    "unknown_distribution": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh:\n      dist: triangulr\n"
        "      low: 45\n      mode: 56\n      high: 65\n",
        "{tmp}/s.yaml:5: company.power.price_usd_per_mwh.dist: unknown dist 'triangulr' (allowed: "
        "fixed, uniform, triangular, pert, normal, lognormal, beta, bernoulli, choice, month_range, "
        "scipy); did you mean 'triangular'?\n"),
    "scipy_negative_scale": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: scipy, name: norm, "
        "params: {scale: -5}}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: scipy.stats.norm rejects params "
        "{scale: -5}: scale must be > 0\n"),
    "scipy_shape_out_of_range": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: scipy, name: gamma, "
        "params: {a: -1, scale: 50}}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: scipy.stats.gamma rejects params "
        "{a: -1, scale: 50}: a shape parameter (a) is outside the range scipy accepts\n"),
    "scipy_unknown_param": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: scipy, name: norm, "
        "params: {loc: 50, sclae: 5}}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: scipy.stats.norm rejects params "
        "{loc: 50, sclae: 5}: no parameter 'sclae' (allowed: loc, scale); did you mean 'scale'?\n"),
    "scipy_missing_shape": scenario(
        "extends: {base}\ncompany:\n  power:\n    price_usd_per_mwh: {dist: scipy, name: gamma}\n",
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh: scipy.stats.gamma rejects params {}: "
        "missing shape parameter(s) a (allowed: a, loc, scale)\n"),
    "correlation_unknown_input": scenario(
        "extends: {base}\ncorrelations:\n  - between: [market.btc.process.volatility, "
        "market.btc.process.volatilty]\n    rank_correlation: 0.3\n",
        "{tmp}/s.yaml:3: correlations[0].between[1]: 'market.btc.process.volatilty' is not an "
        "uncertain input; did you mean 'market.btc.process.volatility'?\n"),
    "correlation_not_psd": scenario(
        "extends: {base}\ncorrelations:\n"
        f"  - {{between: [{PSD[0]}, {PSD[1]}], rank_correlation: 0.9}}\n"
        f"  - {{between: [{PSD[0]}, {PSD[2]}], rank_correlation: 0.9}}\n"
        f"  - {{between: [{PSD[1]}, {PSD[2]}], rank_correlation: -0.9}}\n",
        f"{{tmp}}/s.yaml:2: correlations: the correlation matrix over {', '.join(PSD)} is not "
        "positive semi-definite; loosen the correlations\n"),
    # ---- run settings: one set of bounds for the scenario and the command line
    "paths_below_two": scenario(
        "extends: {base}\nsimulation:\n  paths: 1\n",
        "{tmp}/s.yaml:3: simulation.paths: must be >= 2 (got 1)\n"),
    "seed_beyond_int64": scenario(
        "extends: {base}\nsimulation:\n  seed: 9223372036854775808\n",
        "{tmp}/s.yaml:3: simulation.seed: must be <= 9223372036854775807 (got 9223372036854775808)\n"),
    "cli_paths_one": Row({}, usage("run", "Invalid value for '--paths': 1 is not in the range "
                                          "2<=x<=100000000."),
                         args=("run", "base", "--paths", "1", "--out", "{tmp}/out")),
    "cli_seed_negative": Row({}, usage("compare", "Invalid value for '--seed': -1 is not in the "
                                                  "range 0<=x<=9223372036854775807."),
                             args=("compare", "base", "base", "--seed", "-1", "-o", "{tmp}/c.html")),
    "cli_seed_beyond_int64": Row(
        {}, usage("run", "Invalid value for '--seed': 9223372036854775808 is not in the range "
                         "0<=x<=9223372036854775807."),
        args=("run", "base", "--seed", str(2**63), "--out", "{tmp}/out")),
    # ---- dates that cannot be
    "valuation_before_genesis": scenario(
        "extends: {base}\nsimulation:\n  valuation_date: 2008-06\n",
        "{tmp}/s.yaml:3: simulation.valuation_date: is before bitcoin's genesis block of "
        "2009-01-03 (got 2008-06; allowed 2009-01 or later)\n"),
    "block_height_after_valuation": scenario(
        "extends: {base}\nnetwork:\n  block_height_date: 2026-01-05\n",
        "{tmp}/s.yaml:3: network.block_height_date: is after simulation.valuation_date (got "
        "2026-01-05; allowed 2025-12 or before); block_height must be known on the valuation date\n"),
    "note_matured": scenario(
        "extends: {base}\ncompany:\n  debt:\n    - name: converts_2030\n      maturity: 2025-12-15\n",
        "{tmp}/s.yaml:5: company.debt[0].maturity: must be after simulation.valuation_date (got "
        "2025-12; allowed 2026-01 or later); a note that has matured is no longer outstanding\n"),
    "call_after_maturity": scenario(
        "extends: {base}\ncompany:\n  debt:\n    - name: converts_2030\n      call_from: 2031-01\n",
        "{tmp}/s.yaml:5: company.debt[0].call_from: must not be after maturity (got 2031-01; "
        "maturity 2030-06)\n"),
    "terminal_growth_not_below_rate": scenario(
        "extends: {base}\nvaluation:\n  terminal_growth_sga: 0.05\n",
        "{tmp}/s.yaml:3: valuation.terminal_growth_sga: must stay below valuation.risk_free_rate "
        "for a growing perpetuity to converge (draws reach 0.05 >= 0.04)\n"),
    "escalator_not_below_lease_rate": scenario(
        "extends: {base}\nsites:\n  - name: texas\n    lease:\n      escalator: 0.09\n",
        "{tmp}/s.yaml:5: sites[1].lease.escalator: must stay below valuation.risk_free_rate + "
        "tenant_credit_spread (0.06) for the lease's terminal perpetuity to converge (draws reach 0.09)\n"),
    "removed_multiple": scenario(
        "extends: {base}\nvaluation:\n  terminal_multiple_hpc: 18\n",
        re.compile(r".*s\.yaml:3: valuation: unknown key 'terminal_multiple_hpc'.*no longer used: "
                   r"the terminal value is a growing perpetuity.*", re.S)),
    "deployment_before_valuation": scenario(
        "extends: {base}\ncompany:\n  fleet:\n    deployments:\n      - date: 2025-11\n"
        "        hashrate_ehs: 5\n        efficiency_j_per_th: 13\n",
        "{tmp}/s.yaml:5: company.fleet.deployments[0].date: is before simulation.valuation_date "
        "(got 2025-11; allowed 2025-12 or later); machines already hashing belong in "
        "company.fleet.hashrate_ehs\n"),
    "deployment_range_before_valuation": scenario(
        "extends: {base}\ncompany:\n  fleet:\n    deployments:\n"
        "      - date: {dist: month_range, start: 2025-10, end: 2026-03}\n"
        "        hashrate_ehs: 5\n        efficiency_j_per_th: 13\n",
        "{tmp}/s.yaml:5: company.fleet.deployments[0].date.start: is before "
        "simulation.valuation_date (got 2025-10; allowed 2025-12 or later); machines already "
        "hashing belong in company.fleet.hashrate_ehs\n"),
    "halvings_not_increasing": scenario(
        "extends: {base}\nnetwork:\n  halving_heights: [1050000, 1050000]\n",
        "{tmp}/s.yaml:3: network.halving_heights: halving heights must increase (got [1050000, "
        "1050000])\n"),
    "halving_already_passed": scenario(
        "extends: {base}\nnetwork:\n  halving_heights: [840000, 1050000]\n",
        "{tmp}/s.yaml:3: network.halving_heights[0]: must be above network.block_height (got "
        "840000; allowed > 925344); list only the halvings still to come\n"),
    # ---- dates that can be, but seldom are meant: a warning, exit 0
    # Every source base cites is dated after 2020-01, so each also warns as a look-ahead.
    "stale_dates_warn": Row(
        {"s.yaml": "extends: {base}\nsimulation:\n  valuation_date: 2020-01\nnetwork:\n"
                   "  block_height: 600000\n  block_height_date: 2019-09-20\n"
                   "  halving_heights: [630000, 840000]\n"},
        re.compile(literal(
            "{tmp}/s.yaml:3: warning: simulation.valuation_date: 2020-01 is more than 2 years ago; are "
            "the spot price, hashrate, block height and balance sheet all as of that date?\n"
            "{tmp}/s.yaml:6: warning: network.block_height_date: 2019-09-20 is 103 days before "
            "simulation.valuation_date (2020-01); the block height is extrapolated at 144 blocks a "
            "day over more than 90 days\n")
            + r"(?:{base}:\d+: warning: \S+\.source: is as of [^\n]*, after simulation\.valuation_date "
              r"\(2020-01-01\); [^\n]*\n)+"),
        status=0),
    # ---- sources: ids of the fact sheets (docs/facts/), dated against the valuation date
    "source_unresolved": scenario(
        power_source('"C-F99"'),
        "{tmp}/s.yaml:4: warning: company.power.price_usd_per_mwh.source: cites C-F99, which is not a "
        "row of the fact sheets (docs/facts/domain-facts.md, peer-facts.md); did you mean C-F9?\n",
        status=0),
    "source_range_end_unresolved": scenario(
        power_source('"C-F11..C-F19"'),
        "{tmp}/s.yaml:4: warning: company.power.price_usd_per_mwh.source: cites C-F19, which is not a "
        "row of the fact sheets (docs/facts/domain-facts.md, peer-facts.md); did you mean C-F9?\n"
        + LOOK_AHEAD_C_F12.format(line=4), status=0),
    "source_tagged_after_as_of": scenario(
        power_source('"C-F11, C-F12"'), LOOK_AHEAD_C_F12.format(line=4), status=0),
    "source_tagged_after_as_of_strict": scenario(
        power_source('"C-F11, C-F12"'), LOOK_AHEAD_C_F12.format(line=4).replace(": warning:", ":"),
        args=("validate", "--strict", "{tmp}/s.yaml")),
    "source_dated_after_valuation_strict": scenario(
        power_source('{id: "C-F11", as_of: 2026-01-15, url: "https://example.com/call"}'),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source: is as of 2026-01-15 (source.as_of), after "
        "simulation.valuation_date (2025-12-01); cite a source known on that date\n",
        args=("validate", "--strict", "{tmp}/s.yaml")),
    "source_stale": scenario(
        power_source('"V-M5"'),
        "{tmp}/s.yaml:4: warning: company.power.price_usd_per_mwh.source: is as of 2018-12-31 (V-M5: "
        "'2018-H2'), more than simulation.stale_after_days (730) days before simulation.valuation_date "
        "(2025-12-01); cite a newer row, or raise stale_after_days\n",
        status=0),
    "source_stale_strict": scenario(
        power_source('"V-M5"'),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source: is as of 2018-12-31 (V-M5: "
        "'2018-H2'), more than simulation.stale_after_days (730) days before simulation.valuation_date "
        "(2025-12-01); cite a newer row, or raise stale_after_days\n",
        args=("validate", "--strict", "{tmp}/s.yaml")),
    "source_url_not_http": scenario(
        power_source('{id: "C-F11", url: "ftp://example.com/x"}'),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source.url: must be an http(s) URL (got "
        "'ftp://example.com/x')\n"),
    "source_as_of_not_a_date": scenario(
        power_source('{id: "C-F11", as_of: soon}'),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source.as_of: not a valid date (got 'soon'; "
        "allowed YYYY-MM-DD or YYYY-MM)\n"),
    "source_unknown_key": scenario(
        power_source('{id: "C-F11", asof: 2025-11}'),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source: unknown key 'asof'; did you mean "
        "'as_of'?\n"),
    "source_not_text": scenario(
        power_source("[C-F11]"),
        "{tmp}/s.yaml:4: company.power.price_usd_per_mwh.source: must be text or a mapping {id: ..., "
        "as_of: ..., url: ...}\n"),
    # ---- the bootstrap price history
    "history_header_only": Row(
        {"s.yaml": bootstrap("btc.csv"), "btc.csv": "date,close\n"},
        "{tmp}/btc.csv: no data rows under the header; need at least 13 monthly closes\n"),
    "history_too_short": Row(
        {"s.yaml": bootstrap("btc.csv"), "btc.csv": closes(*STEADY[:5])},
        "{tmp}/btc.csv: only 5 month(s) of closes; need at least 13 (12 monthly returns)\n"),
    **{f"history_close_{name}": Row(
        {"s.yaml": bootstrap("btc.csv"), "btc.csv": closes(*STEADY[:9], bad, *STEADY[10:])},
        f"{{tmp}}/btc.csv:11: close on 2019-10-28: must be a positive, finite number (got {bad})\n")
       for name, bad in (("zero", "0"), ("negative", "-5"), ("nan", "nan"), ("inf", "inf"))},
    "history_extreme_return": Row(
        {"s.yaml": bootstrap("btc.csv"), "btc.csv": closes(*STEADY[:9], 1, *STEADY[10:])},
        "{tmp}/btc.csv:11: close 1 on 2019-10-28 gives a monthly log return of -11.0 (|r| > 2 is "
        "implausible; fix the row or set market.btc.process.allow_extreme_returns: true)\n"),
    "history_extreme_first_row": Row(
        {"s.yaml": bootstrap("btc.csv"), "btc.csv": closes(1, *STEADY[1:])},
        "{tmp}/btc.csv:2: close 1 on 2019-01-28 gives a monthly log return of +10.8 (|r| > 2 is "
        "implausible; fix the row or set market.btc.process.allow_extreme_returns: true)\n"),
    "history_overflowing_close": Row(
        {"s.yaml": bootstrap("btc.csv", "      allow_extreme_returns: true\n"),
         "btc.csv": closes(*STEADY[:9], "1e300", *STEADY[10:])},
        "{tmp}/btc.csv:11: close 1e+300 on 2019-10-28 gives a monthly log return of +679.8 (|r| > "
        "5 is refused even with market.btc.process.allow_extreme_returns; fix the row)\n"),
    "history_flat_with_target_volatility": Row(
        {"s.yaml": bootstrap("flat.csv", "      target_volatility: 0.5\n"),
         "flat.csv": closes(*[50_000] * 24, first=2020)},
        "{tmp}/flat.csv: every monthly log return is 0, so there is no volatility to rescale to "
        "market.btc.process.target_volatility; give a history whose returns vary, or drop "
        "target_volatility\n",
        args=("run", "{tmp}/s.yaml", "--paths", "1024", "--out", "{tmp}/out")),
    # ---- outputs that are not regular files: refused before any work
    **{f"{command}_output_{name}": Row(
        {"target": make} if make else {},
        f"{target}: is {kind}; minersim only ever replaces regular files (give a file path)\n",
        args=(*args, "-o", target), needs=("run",) if command == "export" else ())
       for command, args in (("export", ("export", "{run}")), ("compare", ("compare", "base", "base")))
       for name, make, target, kind in (
           ("device", None, "/dev/full", "not a regular file"),
           ("fifo", fifo, "{tmp}/target", "not a regular file"),
           ("directory", directory, "{tmp}/target", "a directory"))},
    "export_charts_into_a_device": Row(
        {}, "/dev/full: exists and is not a directory (give --charts a directory)\n",
        args=("export", "{run}", "--charts", "/dev/full"), needs=("run",)),
}


def _fill(text: str, tmp: Path, run: Path | None, escape: bool = False) -> str:
    sub = (lambda s: re.escape(str(s))) if escape else str
    out = text.replace("{tmp}", sub(tmp)).replace("{base}", sub(BASE))
    out = out.replace("{shipped}", sub(SHIPPED))
    return out.replace("{run}", sub(run)) if run is not None else out


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_bad_input(row, tmp_path, request):
    run = request.getfixturevalue("saved_run") if "run" in row.needs else None
    for name, content in row.files.items():
        if callable(content):
            content(tmp_path / name)
        else:
            (tmp_path / name).write_text(_fill(content, tmp_path, run), encoding="utf-8")
    args = [_fill(a, tmp_path, run) for a in row.args]
    result = CliRunner().invoke(cli, args, prog_name="minersim")
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if isinstance(row.stderr, re.Pattern):
        assert re.fullmatch(_fill(row.stderr.pattern, tmp_path, run, escape=True), result.stderr,
                            row.stderr.flags), result.stderr
    else:
        assert result.stderr == _fill(row.stderr, tmp_path, run)
    assert result.exit_code == row.status, result.output
    assert not (tmp_path / "out").exists() or row.status == 0


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def saved_run(short, tmp_path_factory) -> Path:
    """A saved run of the short scenario (200 paths, no report), for export."""
    out = tmp_path_factory.mktemp("saved")
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "200", "--no-report",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------ outputs

@pytest.mark.parametrize("command", ["export", "compare"])
@pytest.mark.parametrize("target", ["/dev/full", "fifo", "dir"])
def test_a_refused_output_costs_no_work_and_is_left_untouched(command, target, tmp_path, monkeypatch,
                                                               saved_run):
    def never(*_args, **_kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr("simulator.report.export.load_run", never)
    monkeypatch.setattr("simulator.analysis.compare.compare", never)
    path = Path(target) if target.startswith("/") else tmp_path / target
    (fifo if target == "fifo" else directory if target == "dir" else lambda p: None)(path)
    before = path.stat()
    args = ["export", str(saved_run)] if command == "export" else ["compare", "base", "base"]
    result = CliRunner().invoke(cli, [*args, "-o", str(path)])
    assert result.exit_code == 2, result.output
    assert "wrote" not in result.output and "Traceback" not in result.output
    after = path.stat()
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([target] if path.parent == tmp_path else [])


def test_a_write_the_disk_refuses_is_an_error_and_keeps_the_previous_file(saved_run, tmp_path):
    """The console command under a 100-byte file-size limit: the write fails with EFBIG, as
    it would with ENOSPC on a full disk, and the file written before stays whole."""
    out = tmp_path / "memo.md"
    out.write_text("previous\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))  # Python ignores SIGXFSZ

    script = Path(sys.executable).with_name("minersim")
    result = subprocess.run([str(script), "export", str(saved_run), "-o", str(out)],
                            preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"{out}: cannot write the file (File too large); the previous "
                             "file, if any, is as it was\n")
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.md"]


def test_an_io_error_on_sync_is_an_error(saved_run, tmp_path, monkeypatch):
    def eio(_fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", eio)
    out = tmp_path / "memo.json"
    result = CliRunner().invoke(cli, ["export", str(saved_run), "--format", "json", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"{out}: cannot write the file (Input/output error); the previous "
                             "file, if any, is as it was\n")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_run_keeps_the_previous_outputs(short, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.nc", "report.html"):
        (out / name).write_bytes(b"previous")

    def full(_cube, _path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("simulator.cube.write", full)
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "200", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"{out / 'results.nc'}: cannot write the file (No space left on "
                             "device); the previous file, if any, is as it was\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        "results.nc": b"previous", "report.html": b"previous"}


def test_temporaries_of_a_killed_run_are_removed_by_the_next(short, tmp_path):
    """A run killed with SIGKILL leaves ``.NAME.PID.xxxx.tmp``; the next run in that
    directory removes it, and leaves the temporaries of a live process alone."""
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = out / f".results.nc.{gone.pid}.k1ll3d.tmp"
    live = out / f".report.html.{os.getpid()}.w0rk1n.tmp"
    dead.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "200", "--no-report",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not dead.exists()
    assert live.read_bytes() == b"being written"
    assert sorted(p.name for p in out.iterdir()) == [live.name, "results.nc"]


# ------------------------------------------------------------------ what must not fail

@pytest.mark.parametrize("source", ["data src=EDGAR filing", "<script>alert(1)</script>"])
def test_any_source_text_runs_and_is_shown_escaped(source, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SHORT.format(base=BASE) + "company:\n  cash_usd_m: {dist: triangular, low: 400, "
                    f"mode: 460, high: 550, source: {source!r}}}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--paths", "200", "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    escaped = source.replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in html
    assert "<script" not in html


def test_two_paths_run_end_to_end_with_a_report(short, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("short: 2 paths, ")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.nc"]


def test_extreme_returns_pass_when_the_scenario_allows_them(tmp_path):
    tripled = [*STEADY[:9], STEADY[9] * 20, *STEADY[10:]]  # log(20) = 3.0 up, then back
    (tmp_path / "btc.csv").write_text(closes(*tripled))
    path = tmp_path / "s.yaml"
    path.write_text(bootstrap("btc.csv", "      allow_extreme_returns: true\n").format(base=BASE))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok (bs; 26 uncertain inputs)\n"


def test_cli_bounds_are_the_schema_bounds():
    from simulator.scenario.models import Simulation

    def schema(name):
        meta = Simulation.model_fields[name].metadata
        return (next(m.ge for m in meta if hasattr(m, "ge")), next(m.le for m in meta if hasattr(m, "le")))

    for command, option, key in (("run", "paths", "paths"), ("run", "max_paths", "paths"),
                                 ("run", "seed", "seed"), ("compare", "paths", "paths"),
                                 ("compare", "seed", "seed")):
        param = next(p for p in cli.commands[command].params if p.name == option)
        assert (param.type.min, param.type.max) == schema(key), (command, option)
    assert not cli_mod._PATHS.min_open and not cli_mod._SEED.max_open


@pytest.mark.parametrize("target", ["/etc/passwd", "big.txt"])
def test_extends_of_a_large_file_quotes_only_its_start(target, tmp_path):
    if target == "/etc/passwd" and not os.path.isfile(target):
        pytest.skip("no /etc/passwd here")
    (tmp_path / "big.txt").write_text(BIG_TEXT)
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {target}\nname: x\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr) < 300 and result.stderr.count("\n") == 1, result.stderr
    assert "..." in result.stderr or len(Path(target if target.startswith("/") else
                                                  tmp_path / target).read_text()) < 100


# ------------------------------------------------------------------ warnings

def test_loading_warns_with_the_file_and_line(tmp_path):
    from simulator.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nnetwork:\n  block_height_date: 2025-06-01\n")
    with pytest.warns(ScenarioWarning) as caught:
        load_scenario(path)
    assert [str(w.message) for w in caught] == [
        f"{path}:3: warning: network.block_height_date: 2025-06-01 is 183 days before "
        "simulation.valuation_date (2025-12); the block height is extrapolated at 144 blocks a "
        "day over more than 90 days"]


def test_a_valuation_date_goes_stale_with_the_calendar(monkeypatch):
    """Which shipped scenario warns depends on today: ``models.today`` is the one clock."""
    import datetime as dt

    from simulator.scenario import load_scenario, models

    monkeypatch.setattr(models, "today", lambda: dt.date(2027, 12, 2))
    with pytest.warns(ScenarioWarning, match=r"base\.yaml:11: warning: simulation\.valuation_date: "
                                             r"2025-12 is more than 2 years ago"):
        load_scenario("base")
    monkeypatch.setattr(models, "today", lambda: dt.date(2027, 12, 1))
    load_scenario("base")  # exactly two years after 2025-12-01: no warning
