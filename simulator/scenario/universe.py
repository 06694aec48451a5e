"""A universe file: one shared world and the company files that live in it.

``scenarios/peers.yaml`` states ``simulation``, ``market``, ``network``, ``valuation`` (and
world-level ``correlations``) once, and lists company files under ``companies:``. Each company
file says ``extends: ../peers.yaml`` and states its own ``name``, ``company`` and ``sites``, so
it is a complete scenario on its own, and :func:`load_universe` is :func:`~simulator.scenario.load`
on each listed file: the same merge, the same validation, the file and line of every value.
``extends`` never passes ``companies:`` on to a child (:data:`~simulator.scenario.extends.NOT_INHERITED`).
Stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path

from simulator.errors import ScenarioError, clip
from simulator.scenario.extends import resolve
from simulator.scenario.loader import find_scenario, format_path, load_yaml

KEY = "companies"
"""The top-level key that makes a file a universe."""

WORLD_SECTIONS = ("market", "network", "valuation")
"""The sections a universe states once for every company: BTC, fees, the network and the rates.
Their uncertain inputs and random streams are the world's, drawn the same whatever the company
(``simulator.run.sampling``); every other input and stream is the company's own, named by its
ticker, so two companies' own risks are independent unless a scenario correlates them."""


def is_world_key(key: str) -> bool:
    """Whether the dotted input key (``market.btc.process.volatility``) belongs to the world."""
    return key.split(".", 1)[0] in WORLD_SECTIONS


def is_universe(path: str | os.PathLike[str]) -> bool:
    """Whether the scenario file (or shipped name) at ``path`` lists ``companies:``."""
    return KEY in load_yaml(find_scenario(path)).data


def company_files(path: str | os.PathLike[str]) -> list[Path]:
    """The company files a universe lists, in order, each checked to exist and to extend it.

    Raises
    ------
    ScenarioError
        ``companies`` missing, not a non-empty list of file names, a file listed twice, a
        file that does not exist, or one whose ``extends:`` chain does not reach the universe;
        each at the line of the entry.
    """
    file = find_scenario(path)
    doc = load_yaml(file)
    entries = doc.data.get(KEY)
    if not isinstance(entries, list) or not entries:
        at = doc.locate((KEY,))
        raise ScenarioError("must list company files (companies/mara.yaml, ...)", file=at[0], line=at[1],
                            key_path=KEY, got=clip(repr(entries)))
    universe = file.resolve()
    out: list[Path] = []
    for i, entry in enumerate(entries):
        at_file, at_line = doc.locate((KEY, i))
        where = {"file": at_file, "line": at_line, "key_path": format_path((KEY, i))}
        if not isinstance(entry, str) or not entry.strip():
            raise ScenarioError("must be the path of a company file", got=clip(repr(entry)), **where)
        company = file.parent / entry
        if not company.is_file():
            raise ScenarioError(f"no such file {clip(str(company))}", **where)
        if company.resolve() in {p.resolve() for p in out}:
            raise ScenarioError(f"'{clip(entry)}' is listed twice", **where)
        chain = [Path(f).resolve() for f in resolve(company).chain]
        if universe not in chain[1:]:
            raise ScenarioError(f"{clip(entry)} does not extend {file.name}, so it would not share its market",
                                hint=f"add 'extends: {os.path.relpath(file, company.parent)}' to {company}",
                                **where)
        out.append(company)
    return out


def load_universe(path: str | os.PathLike[str]) -> list:
    """Load and validate every company of a universe file in its shared world.

    Parameters
    ----------
    path : str or path-like
        A universe file (``scenarios/peers.yaml``) or its shipped name (``peers``).

    Returns
    -------
    list of LoadedScenario
        One per listed company file, in order: the universe's sections merged with the
        company file's (the company's replace the universe's), validated, with the file and
        line of every value.

    Raises
    ------
    ScenarioError
        Anything :func:`company_files` or :func:`~simulator.scenario.load` rejects.
    """
    from simulator.scenario import load

    return [load(company) for company in company_files(path)]
