"""The peer group: company files in one shared market, each number sourced or marked assumed."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import load, load_scenario
from simulator.scenario.loader import trailing_comment
from simulator.scenario.facts import SHEETS_AS_OF, resolve
from simulator.scenario.loader import format_path, load_yaml
from simulator.scenario.provenance import provenance
from simulator.scenario.universe import company_files, load_universe

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "scenarios" / "peers.yaml"
COMPANIES = sorted((ROOT / "scenarios" / "companies").glob("*.yaml"))
SHARED = ("simulation", "market", "network", "valuation", "correlations")


def test_the_universe_lists_every_company_file_once():
    assert sorted(company_files(PEERS)) == COMPANIES
    assert [p.stem for p in COMPANIES] == sorted(["clsk", "mara", "riot", "iren", "cifr", "wulf", "corz"])


def test_every_company_loads_through_the_universe_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_universe(PEERS)
    shared = load_yaml(PEERS).data
    for company in loaded:
        assert company.scenario.company.ticker.lower() == company.path.stem
        for key in SHARED:
            assert company.resolved[key] == shared[key], (company.path, key)
            # Inherited values point at the universe file, the company's own at the company file.
            assert company.lines[(key,)][0].endswith("peers.yaml")
        assert company.lines[("company", "ticker")][0] == str(company.path)


def test_the_shared_world_is_base_yaml_s():
    base, peers = load_yaml(ROOT / "scenarios" / "base.yaml").data, load_yaml(PEERS).data
    assert {k: peers[k] for k in SHARED} == {k: base[k] for k in SHARED}


def _numbers(value, at=()):
    """(key path, number) of every numeric leaf, skipping booleans (and so names, dates, kinds)."""
    if isinstance(value, dict):
        if "dist" in value or "source" in value:
            yield at, value  # a distribution or the street: its own source or assumption covers it
            return
        for k, v in value.items():
            yield from _numbers(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, (*at, i))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield at, value


def _cites(text: str) -> list[str]:
    """Problems with the ids ``text`` cites: none found, one missing, or one after the as-of date."""
    cited = resolve(text)
    if not cited.ids:
        return ["cites no row"]
    out = [f"cites {i}, not a row" for i in cited.missing]
    for fact in cited.facts:
        as_of = fact.as_of_date()
        if fact.after_as_of or (as_of is not None and as_of > SHEETS_AS_OF):
            out.append(f"cites {fact.id}, known after {SHEETS_AS_OF}")
    return out


def _unsourced(path: Path) -> list[str]:
    doc = load_yaml(path)
    text = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for at, value in _numbers(doc.data):
        comment = trailing_comment(text[doc.lines[at][1] - 1]) or ""
        if isinstance(value, dict):
            if value.get("assumption") is True:
                continue
            problems = _cites(str(value["source"]["id"] if isinstance(value["source"], dict) else value["source"]))
        elif "assumption" in comment.lower():
            continue
        else:
            problems = _cites(comment)
        bad += [f"{path.name}:{doc.lines[at][1]}: {format_path(at)}: {p}" for p in problems]
    return bad


@pytest.mark.parametrize("path", COMPANIES, ids=lambda p: p.stem)
def test_every_number_cites_a_row_known_by_the_valuation_date_or_is_an_assumption(path):
    assert _unsourced(path) == []


def test_the_walk_finds_a_number_with_no_source(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("company:\n  basic_shares_m: 12   # seed article\n"
                    "  cash_usd_m: {dist: fixed, value: 3, source: \"MARA-Z9\"}\n"
                    "  share_price_usd: 9   # MARA-S3\n"
                    "  sga_usd_m_per_year: 4   # H-P4\n", encoding="utf-8")
    assert _unsourced(path) == [
        "x.yaml:2: company.basic_shares_m: cites no row",
        "x.yaml:3: company.cash_usd_m: cites MARA-Z9, not a row",
        f"x.yaml:5: company.sga_usd_m_per_year: cites H-P4, known after {SHEETS_AS_OF}",
    ]


@pytest.mark.parametrize("path", COMPANIES, ids=lambda p: p.stem)
def test_no_cited_input_is_unresolved_or_look_ahead(path):
    rows = provenance(load_scenario(path))
    assert rows
    assert [(r.key_path, r.status) for r in rows if r.status not in ("sourced", "assumption")] == []


def test_signed_leases_are_signed_at_the_valuation_date():
    signed = {(c.path.stem, s.name) for c in load_universe(PEERS) for s in c.scenario.sites
              if s.conversion is not None and s.conversion.signing_probability.support() == (1.0, 1.0)}
    assert signed == {("iren", "childress_microsoft"), ("cifr", "barber_lake"), ("cifr", "aws"),
                      ("wulf", "lake_mariner_fluidstack"), ("wulf", "lake_mariner_core42"),
                      ("wulf", "abernathy_jv"), ("corz", "coreweave")}
    for company in load_universe(PEERS):
        for site in company.scenario.sites:
            if (company.path.stem, site.name) in signed:
                assert site.conversion.signing_months.support() == (0.0, 0.0)


def test_a_universe_is_not_one_scenario():
    with pytest.raises(ScenarioError) as err:
        load(PEERS)
    assert err.value.key_path == "companies"
    assert "this is a universe file" in err.value.message


def test_a_company_that_does_not_extend_the_universe_is_named(tmp_path):
    (tmp_path / "companies").mkdir()
    (tmp_path / "companies" / "x.yaml").write_text("name: x\ncompany: {ticker: X, share_price_usd: 1, "
                                                   "basic_shares_m: 1}\n", encoding="utf-8")
    universe = tmp_path / "u.yaml"
    universe.write_text("name: u\ncompanies:\n  - companies/x.yaml\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_universe(universe)
    assert (err.value.line, err.value.key_path) == (3, "companies[0]")
    assert err.value.message == "companies/x.yaml does not extend u.yaml, so it would not share its market"


def test_clsk_alone_is_base_yaml():
    import simulator

    def value(path):
        scenario = load_scenario(path)
        # A small mark fit keeps this quick; both files get the same one.
        marks = scenario.valuation.marks.model_copy(update={"fit_paths": 512})
        scenario = scenario.model_copy(update={
            "valuation": scenario.valuation.model_copy(update={"marks": marks})})
        cube = simulator.simulate(scenario, paths=64, seed=3)
        return cube["value_per_share"].values, cube.attrs["fair_value_per_share"]

    (base_paths, base_fair), (clsk_paths, clsk_fair) = value("base"), value(PEERS.parent / "companies" / "clsk.yaml")
    assert base_fair == clsk_fair
    assert (base_paths == clsk_paths).all()
