"""The shipped fact sheets: the CSV made from them, resolving ``source:`` ids, dating them.

``simulator/scenario/facts.py`` and ``provenance.py``. Expected rows, ids and dates are
read off the markdown sheets by hand (quoted in each case) or by a regular expression of
their own, never from the CSV under test. The command-line cases (warnings, ``--strict``)
are rows of ``tests/test_bad_input.py``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import pickle
import re
import warnings
from pathlib import Path

import pytest

from simulator._files import scenarios_dir
from simulator.errors import ScenarioWarning
from simulator.scenario import load, load_scenario
from simulator.scenario.facts import SHEETS_AS_OF, load_facts, parse_as_of, resolve
from simulator.scenario.models import Scenario
from simulator.scenario.provenance import STATUSES, provenance
from simulator.scenario.universe import is_universe

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "docs" / "facts"
SHIPPED = sorted(p for p in scenarios_dir().glob("*.yaml") if not is_universe(p))  # peers.yaml: tests/test_peers.py


def _sheet_rows() -> dict[str, list[str]]:
    """Id -> the cells of its table row, read from the markdown with a pattern of our own."""
    rows = {}
    for name in ("domain-facts.md", "peer-facts.md"):
        for line in (FACTS / name).read_text(encoding="utf-8").splitlines():
            found = re.match(r"\| ([A-Z]+-[A-Z]*[0-9]+)(?: · | \| )", line)
            if found:
                rows[found.group(1)] = [c.strip() for c in line.strip()[1:-1].split("|")]
    return rows


# ------------------------------------------------------------------ the CSV

def test_csv_is_up_to_date_with_the_sheets():
    """``python docs/facts/build_facts.py`` has been run since the sheets last changed."""
    spec = importlib.util.spec_from_file_location("build_facts", FACTS / "build_facts.py")
    build_facts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_facts)
    text = build_facts.build()
    for path in (FACTS / "facts.csv", scenarios_dir() / "facts.csv"):
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python docs/facts/build_facts.py"


def test_every_sheet_row_is_a_fact_in_sheet_order():
    facts = load_facts()
    assert list(facts) == list(_sheet_rows())
    prefixes = {re.sub(r"\d+$", "", i) for i in facts}
    assert {"N-B", "N-HP", "C-O", "H-D", "V-M", "CHK-", "MARA-O", "CIFR-A", "BITF-S"} <= prefixes


@pytest.mark.parametrize(("fact_id", "field", "expected"), [
    # domain-facts.md, "1a": | N-B1 · Block subsidy since 4th halving | 3.125 | BTC/block | ...
    ("N-B1", "item", "Block subsidy since 4th halving"),
    ("N-B1", "value", "3.125"),
    ("N-B1", "unit", "BTC/block"),
    ("N-B1", "url", "https://www.damepsp.com/611.html"),
    ("N-B1", "section", "1a. Protocol, block height, halvings"),
    ("N-B2", "quality", "low-q"),                    # "[low-q] exchange post"
    ("N-H10", "url", ""),                            # "computed: H = D·2³²/600"
    ("C-D3", "url", "https://moomoo.com/news/notice/303511326/8-k-current-report"),  # "same ; ..."
    ("H-P2", "url", "http://amp.coincodex.com/article/73739/cipher-mining-inks-3-billion-deal-with-fluidstack-"
                    "welcomes-google-as-strategic-investor"),  # "H-D6, H-D7 URLs"
    ("C-F12", "quality", "after-as-of"),             # item "Power price Q1 FY26 [after as-of]"
    ("N-V2", "quality", "after-as-of"),              # as of "2025-12 (late) [after as-of]"
    ("N-A4", "quality", "after-as-of"),              # note "date uncertain, treat as [after as-of]"
    ("C-D9", "quality", ""),                         # note mentions a later figure, the row is 2025-11
    ("H-D16", "value", "colocation range $1.22–2.26M/MW-IT/yr ($102–189/kW-mo); central cluster "
                       "$1.79–1.91M ($149–159/kW-mo)"),  # bold markers dropped
    # peer-facts.md: | MARA-O1 | Energized hashrate | 60.4 | EH/s | 2025-09-30 (pub. 2025-11-04) | ...
    ("MARA-O1", "item", "Energized hashrate"),
    ("MARA-O1", "as_of", "2025-09-30 (pub. 2025-11-04)"),
    ("MARA-O1", "sheet", "peer-facts.md"),
])
def test_rows_read_as_written(fact_id, field, expected):
    assert getattr(load_facts()[fact_id], field) == expected


def test_sheets_were_compiled_for_the_date_the_code_assumes():
    """``SHEETS_AS_OF`` caps the coarse dates of untagged rows: it must be the sheets' own date."""
    for name in ("domain-facts.md", "peer-facts.md"):
        head = (FACTS / name).read_text(encoding="utf-8")[:1000]
        assert SHEETS_AS_OF.isoformat() in head, name


# ------------------------------------------------------------------ resolving

@pytest.mark.parametrize(("source", "ids", "missing"), [
    ("C-O1", ["C-O1"], []),
    ("C-O1, C-O2", ["C-O1", "C-O2"], []),
    ("N-V1..N-V7", [f"N-V{i}" for i in range(1, 8)], []),
    ("N-V1–N-V3", ["N-V1", "N-V2", "N-V3"], []),                 # en dash
    ("C-D1..D4", ["C-D1", "C-D2", "C-D3", "C-D4"], []),
    ("N-HP10..N-HP12", ["N-HP10", "N-HP11", "N-HP12"], []),
    ("CHK-1..CHK-2", ["CHK-1", "CHK-2"], []),
    ("N-V1, N-V3..N-V5", ["N-V1", "N-V3", "N-V4", "N-V5"], []),
    ("seed article; N-P4..N-P6", ["N-P4", "N-P5", "N-P6"], []),
    ("H-D16 (rate not disclosed)", ["H-D16"], []),
    ("seed article", [], []),
    ("Form S-1 filing", [], []),                                 # not the sheets' kind of id
    ("C-Z1", ["C-Z1"], ["C-Z1"]),
    ("N-V9..N-V12", ["N-V9", "N-V10", "N-V12"], ["N-V12"]),     # the sheet stops at N-V10
    ("N-V3..N-V1", ["N-V3..N-V1"], ["N-V3..N-V1"]),
])
def test_resolve_lists_ranges_and_words(source, ids, missing):
    cited = resolve(source)
    assert list(cited.ids) == ids
    assert list(cited.missing) == missing
    assert [f.id for f in cited.facts] == [i for i in ids if i not in missing]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_id_the_shipped_scenarios_cite_resolves_with_its_link(path):
    sheet = _sheet_rows()
    rows = provenance(load_scenario(path))
    assert rows, "the shipped scenarios cite their sources"
    for row in rows:
        assert row.status in ("sourced", "assumption"), (row.key_path, row.problems)
        assert not row.missing
        for fact in row.facts:
            source_cell = sheet[fact.id][-2]  # a URL, "same (as X)", "X URL", or "computed ..."
            if "http" in source_cell or source_cell.startswith("same") or "URL" in source_cell:
                assert fact.url.startswith("http") and fact.url in (FACTS / fact.sheet).read_text(), fact.id
            else:
                assert fact.url == "", fact.id


# ------------------------------------------------------------------ dates

@pytest.mark.parametrize(("text", "end"), [
    ("2025-11-27 01:16 UTC", dt.date(2025, 11, 27)),
    ("≈2025-11-18/20", dt.date(2025, 11, 20)),
    ("2025-11", dt.date(2025, 11, 30)),
    ("2025-11/12", dt.date(2025, 12, 31)),
    ("~Dec 2025 (height 929,606 quoted)", dt.date(2025, 12, 31)),
    ("Aug-25", dt.date(2025, 8, 31)),
    ("2025-Q3", dt.date(2025, 9, 30)),
    ("Q3-25", dt.date(2025, 9, 30)),
    ("2024-H1", dt.date(2024, 6, 30)),
    ("2025", dt.date(2025, 12, 31)),
    ("2020–early 2025", dt.date(2025, 12, 31)),
    ("2025-06 / 2025-09-30", dt.date(2025, 9, 30)),
    ("2025-09-30 (pub. 2025-11-04)", dt.date(2025, 11, 4)),
    ("since 2024-04-20 (block 840,000)", None),
    ("FY2025", None),
    ("Q4 FY25", None),
    ("derived", None),
    ("announced 2025-08-11; pending at 12/1", dt.date(2025, 8, 11)),
])
def test_as_of_cells_parse_to_the_end_of_their_period(text, end):
    period = parse_as_of(text)
    assert (period.end if period else None) == end


@pytest.mark.parametrize(("fact_id", "as_of"), [
    ("N-F1", SHEETS_AS_OF),             # "2025 (late)", untagged: published by 2025-12-01
    ("N-V2", dt.date(2025, 12, 31)),    # "2025-12 (late) [after as-of]": its month's end
    ("V-R1", dt.date(2025, 12, 5)),     # "2025-11-26 / 2025-12-05": a day is never moved
    ("C-F9", None),                     # "FY2025"
])
def test_a_facts_date_is_capped_by_its_sheet_only_when_coarse_and_untagged(fact_id, as_of):
    assert load_facts()[fact_id].as_of_date() == as_of


# ------------------------------------------------------------------ provenance

def _scenario(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {scenarios_dir() / 'base.yaml'}\nname: s\n{text}", encoding="utf-8")
    return path


def test_each_status_with_its_warning_at_the_source_line(tmp_path):
    path = _scenario(tmp_path, (
        "company:\n"
        "  power:\n"
        "    price_usd_per_mwh: {dist: triangular, low: 45, mode: 56, high: 65, source: \"C-F11, C-F12\"}\n"
        "    site_opex_usd_per_mw_month: {dist: fixed, value: 4500, source: \"C-Q7\"}\n"
        "  cash_usd_m: {dist: fixed, value: 460, source: {id: \"C-B4\", as_of: 2023-06-30, url: \"https://x.org/c\"}}\n"
        "  sga_usd_m_per_year: {dist: fixed, value: 130, source: \"C-G2\"}\n"))
    with pytest.warns(ScenarioWarning) as caught:
        loaded = load(path)
    rows = {r.key_path: r for r in provenance(loaded.scenario)}
    assert rows["company.power.price_usd_per_mwh"].status == "look-ahead"
    assert rows["company.power.site_opex_usd_per_mw_month"].status == "unresolved"
    stale = rows["company.cash_usd_m"]
    assert (stale.status, stale.as_of, stale.as_of_basis, stale.url) == (
        "stale", dt.date(2023, 6, 30), "source.as_of", "https://x.org/c")
    sourced = rows["company.sga_usd_m_per_year"]  # C-G2: | 2025-11-25 | https://up2info.com/...
    assert (sourced.status, sourced.as_of, sourced.ids) == ("sourced", dt.date(2025, 11, 25), ("C-G2",))
    assert sourced.facts[0].item == "Opex guidance"
    assert rows["valuation.company_credit_spread"].status == "assumption"
    assert {r.status for r in rows.values()} <= set(STATUSES)
    assert sorted(str(w.message).split(": warning: ")[0] for w in caught) == [
        f"{path}:5", f"{path}:6", f"{path}:7"]


def test_a_look_ahead_by_date_and_a_stale_limit_in_the_scenario(tmp_path):
    # C-O8 · Contracted power after November | ... | 2025-11-30; C-T4 · Brazoria County | 2026-01-14
    path = _scenario(tmp_path, (
        "simulation: {valuation_date: 2025-11, stale_after_days: 3000}\n"
        "network: {block_height_date: 2025-11-01}\n"
        "company:\n"
        "  cash_usd_m: {dist: fixed, value: 460, source: \"C-O8\"}\n"
        "  sga_usd_m_per_year: {dist: fixed, value: 130, source: \"V-M5\"}\n"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scenario = load_scenario(path)
    rows = {r.key_path: r for r in provenance(scenario)}
    assert rows["company.cash_usd_m"].status == "look-ahead"
    assert rows["company.sga_usd_m_per_year"].status == "sourced"  # 2018-H2, within 3000 days
    assert any("company.cash_usd_m.source: is as of 2025-11-30 (C-O8: '2025-11-30'), after "
               "simulation.valuation_date (2025-11-01)" in str(w.message) for w in caught)


def test_the_shipped_scenarios_load_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in SHIPPED:
            load_scenario(path)


def test_a_mapping_source_round_trips_and_reads_as_its_text(tmp_path):
    path = _scenario(tmp_path, (
        "company:\n"
        "  cash_usd_m: {dist: fixed, value: 460, source: {id: \"C-B4\", as_of: 2025-11, url: \"https://x.org/c\"}}\n"))
    scenario = load_scenario(path)
    source = scenario.company.cash_usd_m.source
    assert (str(source), source.as_of, source.url) == ("C-B4", dt.date(2025, 11, 30), "https://x.org/c")
    assert f"[{source}]" == "[C-B4]"
    dumped = scenario.model_dump(mode="json")["company"]["cash_usd_m"]["source"]
    assert dumped == {"id": "C-B4", "as_of": "2025-11-30", "url": "https://x.org/c"}
    assert Scenario.model_validate(scenario.model_dump(mode="json")) == scenario
    assert pickle.loads(pickle.dumps(scenario)) == scenario
    plain = load_scenario("base").company.cash_usd_m.source
    assert scenario.company.cash_usd_m.source != type(source)("C-B4")  # the date and link count
    assert plain == "C-B4, C-D10" and load_scenario("base").model_dump()["company"]["cash_usd_m"]["source"] == plain
