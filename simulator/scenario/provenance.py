"""Where each input of a scenario comes from, and whether that source can be used.

:func:`provenance` walks every input that cites a ``source:`` or says ``assumption: true``
(every distribution, ``fixed`` included, and ``company.street``), resolves its row ids in
the shipped fact sheets (:mod:`~simulator.scenario.facts`), dates it and gives it a status:

``sourced``
    Cites sources that resolve (or words, such as ``"seed article"``), known on the
    valuation date and not stale.
``assumption``
    Marked ``assumption: true``, with no problem in what it cites.
``unresolved``
    Cites an id that is no row of the sheets.
``look-ahead``
    Known only after ``simulation.valuation_date``: its as-of date is later, or it cites a
    row the sheets tag ``[after as-of]``.
``stale``
    Its as-of date is more than ``simulation.stale_after_days`` before the valuation date.

The as-of date of an input is the ``as_of`` of its source mapping (for ``company.street``,
its own ``as_of`` month, taken at its last day), else the latest as-of date of the rows it
cites (:meth:`~simulator.scenario.facts.Fact.as_of_date`), else unknown. The first status
in the order unresolved, look-ahead, stale wins; :attr:`ProvenanceRow.problems` lists each
problem in words, and :class:`~simulator.scenario.models.Scenario` warns with them at the
line of the ``source:``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from simulator.scenario.company_models import Street
from simulator.scenario.distributions import _Dist
from simulator.scenario.facts import SHEETS_AS_OF, Fact, load_facts, resolve
from simulator.scenario.loader import KeyPath, format_path

STATUSES = ("sourced", "assumption", "unresolved", "look-ahead", "stale")
"""Every status :func:`provenance` gives."""


@dataclass(frozen=True)
class ProvenanceRow:
    """One input with a source or an assumption flag."""

    at: KeyPath
    """Key path of the input, list items by index: ``('sites', 0, 'lease', 'rate_usd_per_kw_month')``."""
    key_path: str
    """The same as text, as in messages: ``sites[0].lease.rate_usd_per_kw_month``."""
    shown: str
    """The value in words: ``triangular 104 / 154 / 189 (low / mode / high)``."""
    source: str
    """The source text as written (``""`` if none)."""
    url: str | None
    """The ``url`` of the source mapping, if given."""
    ids: tuple[str, ...]
    """Row ids cited, ranges expanded."""
    facts: tuple[Fact, ...]
    """The rows of ``ids`` that exist: ``item``, ``value``, ``unit``, ``as_of``, ``url``, ...."""
    missing: tuple[str, ...]
    """Ids that name no row."""
    as_of: dt.date | None
    """The as-of date used (see the module docstring); None if unknown."""
    as_of_basis: str
    """Where ``as_of`` comes from: ``source.as_of``, ``street.as_of``, a row id, or ``""``."""
    assumption: bool
    status: str
    """One of :data:`STATUSES`."""
    problems: tuple[str, ...]
    """Each unresolved id, look-ahead and staleness, in words (the warnings' text)."""


def provenance(scenario: Any) -> list[ProvenanceRow]:
    """Every input of ``scenario`` that has a ``source:`` or ``assumption: true``, in order.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.

    Returns
    -------
    list of ProvenanceRow
    """
    sim = scenario.simulation
    return [_row(at, value, sim.valuation_date, sim.stale_after_days) for at, value in _cited(scenario, ())]


def problems(scenario: Any) -> Iterator[tuple[KeyPath, str]]:
    """``(key path of the source, message)`` for each problem :func:`provenance` finds."""
    for row in provenance(scenario):
        for message in row.problems:
            yield (*row.at, "source"), message


def _cited(value: Any, at: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, _Dist):
        if value.source or value.assumption:
            yield at, value
    elif isinstance(value, Street):
        if value.source:
            yield at, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _cited(getattr(value, name), (*at, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _cited(item, (*at, i))


def _shown(value: Any) -> str:
    if hasattr(value, "describe"):
        return value.describe()
    consensus = "" if value.consensus_usd is None else f", consensus {value.consensus_usd:,.6g}"
    return f"price targets {value.low_usd:,.6g} to {value.high_usd:,.6g}{consensus} USD/share"


def _stated_as_of(value: Any) -> tuple[dt.date | None, str]:
    source = value.source
    if getattr(source, "as_of", None) is not None:
        return source.as_of, "source.as_of"
    month = getattr(value, "as_of", None)  # company.street's own month
    if month is not None:
        return month.replace(day=calendar.monthrange(month.year, month.month)[1]), "street.as_of"
    return None, ""


def _row(at: KeyPath, value: Any, valuation: dt.date, stale_days: int) -> ProvenanceRow:
    source = value.source or ""
    cited = resolve(str(source))
    found: list[str] = []
    for fact_id in cited.missing:
        found.append(_unresolved(fact_id))
    for fact in cited.facts:
        if fact.after_as_of:
            item = fact.item.replace(" [after as-of]", "")
            found.append(f"cites {fact.id} ({item}), tagged [after as-of] in {fact.sheet}: published after "
                         f"{SHEETS_AS_OF.isoformat()}; cite rows known on simulation.valuation_date "
                         f"({valuation.isoformat()})")
    as_of, basis = _stated_as_of(value)
    if as_of is None:
        dated = [(f.as_of_date(), f) for f in cited.facts if f.as_of_date() is not None]
        if dated:
            as_of, latest = max(dated, key=lambda pair: pair[0])
            basis = latest.id
    look_ahead = any(f.after_as_of for f in cited.facts)
    if as_of is not None and as_of > valuation and not _tagged(basis, cited.facts):
        look_ahead = True
        hint = ("cite a source known on that date" if basis in ("source.as_of", "street.as_of") else
                "cite rows known on that date, or say when the figure was known: "
                "source: {id: ..., as_of: YYYY-MM-DD}")
        found.append(f"is as of {as_of.isoformat()} ({_basis(basis, cited.facts)}), after "
                     f"simulation.valuation_date ({valuation.isoformat()}); {hint}")
    stale = as_of is not None and (valuation - as_of).days > stale_days
    if stale:
        found.append(f"is as of {as_of.isoformat()} ({_basis(basis, cited.facts)}), more than "
                     f"simulation.stale_after_days ({stale_days}) days before simulation.valuation_date "
                     f"({valuation.isoformat()}); cite a newer row, or raise stale_after_days")
    assumption = bool(getattr(value, "assumption", False))
    status = ("unresolved" if cited.missing else "look-ahead" if look_ahead else "stale" if stale
              else "assumption" if assumption else "sourced")
    return ProvenanceRow(at=at, key_path=format_path(at), shown=_shown(value), source=str(source),
                         url=getattr(source, "url", None), ids=cited.ids, facts=cited.facts,
                         missing=cited.missing, as_of=as_of, as_of_basis=basis, assumption=assumption,
                         status=status, problems=tuple(found))


def _tagged(basis: str, facts: tuple[Fact, ...]) -> bool:
    """Whether the as-of date comes from a row already reported as tagged [after as-of]."""
    return any(f.id == basis and f.after_as_of for f in facts)


def _basis(basis: str, facts: tuple[Fact, ...]) -> str:
    for fact in facts:
        if fact.id == basis:
            return f"{fact.id}: '{fact.as_of}'"
    return basis


def _unresolved(fact_id: str) -> str:
    if ".." in fact_id:
        return f"cites the range {fact_id}, whose ends differ in prefix or run backwards"
    close = difflib.get_close_matches(fact_id, list(load_facts()), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return (f"cites {fact_id}, which is not a row of the fact sheets (docs/facts/domain-facts.md, "
            f"peer-facts.md){hint}")
