"""The shipped fact sheets as data: row ids in a ``source:`` resolved to facts with dates.

A scenario cites its figures by the row ids of the project's fact sheets
(``docs/facts/domain-facts.md`` for CleanSpark and the market, ``peer-facts.md`` for the
listed peers). ``docs/facts/build_facts.py`` turns both into one table, shipped as
``scenarios/facts.csv``; :func:`load_facts` reads it, :func:`resolve` finds the rows a
``source:`` text names, and :func:`parse_as_of` dates a row. Stdlib only.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path

SHEETS_AS_OF = dt.date(2025, 12, 1)
"""The date both sheets were compiled for (their titles). Each says that a row not tagged
``[after as-of]`` was published by then (domain-facts.md, "Read this before using the
numbers"; peer-facts.md, "Rules used"); see :func:`Fact.as_of_date`."""

ID = r"[A-Z]+-[A-Z]*\d+"
"""A row id: ``N-B1``, ``N-HP10``, ``C-O1``, ``CHK-1``, ``MARA-O1``."""

_SPLIT = re.compile(r"^([A-Z]+-[A-Z]*?)(\d+)$")
# A range (N-V1..N-V7, N-V1–N-V7 with an en dash, C-D1..D4, C-D1..4) or a single id.
_CITED = re.compile(rf"\b(?:(?P<first>{ID})\s*(?:\.\.|–)\s*(?P<last>(?:[A-Z]+-)?[A-Z]*\d+)|(?P<one>{ID}))\b")


@dataclass(frozen=True)
class Fact:
    """One row of a fact sheet, as written there (columns of ``facts.csv``)."""

    id: str
    sheet: str
    """``domain-facts.md`` or ``peer-facts.md``."""
    section: str
    item: str
    value: str
    unit: str
    as_of: str
    """The sheet's as-of cell, verbatim (``2025-11-27 01:16 UTC``, ``~Dec 2025``, ``FY2025``)."""
    url: str
    """The first http(s) URL of the row's source, or of the row it points to; ``""`` if none."""
    note: str
    quality: str
    """``after-as-of`` (published after :data:`SHEETS_AS_OF`), ``low-q`` or ``""``."""

    @property
    def after_as_of(self) -> bool:
        return self.quality == "after-as-of"

    def as_of_date(self) -> dt.date | None:
        """The last day the row can describe, or None if its as-of cell has no usable date.

        The end of :func:`parse_as_of`'s period, except that a month, quarter, half or year
        running past :data:`SHEETS_AS_OF` ends there for a row not tagged ``[after as-of]``:
        the sheets say such rows were published by then (``2025 (late)`` in a sheet compiled
        for 2025-12-01 is as of 2025-12-01). An explicit day is never moved.
        """
        period = parse_as_of(self.as_of)
        if period is None:
            return None
        if not self.after_as_of and period.coarse and period.start <= SHEETS_AS_OF < period.end:
            return SHEETS_AS_OF
        return period.end


@dataclass(frozen=True)
class Period:
    """The span an as-of cell names: one day, or a month, quarter, half or year."""

    start: dt.date
    end: dt.date

    @property
    def coarse(self) -> bool:
        return self.start != self.end


@dataclass(frozen=True)
class Resolution:
    """What a ``source:`` text cites."""

    text: str
    ids: tuple[str, ...]
    """Every id cited, ranges expanded to the rows that exist, in order, without repeats."""
    facts: tuple[Fact, ...]
    """The rows of ``ids`` that exist."""
    missing: tuple[str, ...]
    """Ids that name no row (a range's end that is not a row counts)."""


def _csv_path() -> Path:
    from simulator._files import scenarios_dir

    return scenarios_dir() / "facts.csv"


@functools.cache
def load_facts() -> dict[str, Fact]:
    """Every row of the shipped sheets by id, in sheet order (read once per process)."""
    with open(_csv_path(), encoding="utf-8", newline="") as fh:
        return {row["id"]: Fact(**row) for row in csv.DictReader(fh)}


def _split(fact_id: str) -> tuple[str, int]:
    prefix, number = _SPLIT.match(fact_id).groups()
    return prefix, int(number)


def _range_end(first: str, end: str) -> str:
    """``C-D1..D4`` and ``C-D1..4`` mean ``C-D1..C-D4``."""
    if re.fullmatch(ID, end):
        return end
    prefix, _ = _split(first)
    head = prefix.split("-", 1)[0]
    return f"{head}-{end}" if end[0].isalpha() else f"{prefix}{end}"


@functools.lru_cache(maxsize=4096)
def resolve(source: str) -> Resolution:
    """The facts a ``source:`` text cites: ids, lists and ranges anywhere in free text.

    Parameters
    ----------
    source : str
        As written in a scenario: ``"C-O1"``, ``"C-F11, C-F12"``, ``"N-V1..N-V7"``,
        ``"N-V1–N-V7"`` (en dash), ``"C-D1..D4"``, ``"seed article; N-P4..N-P6"``.

    Returns
    -------
    Resolution
        A range expands to the rows that exist with the same prefix whose numbers lie
        between its ends (``N-V1..N-V7`` is N-V1, N-V2, ..., N-V7); a range whose ends differ
        in prefix, or an end that is no row, is reported in ``missing``. A word counts as an
        id only if it starts like the sheets' ids (``N-``, ``C-``, ``CHK-``, ``MARA-``, ...),
        so ``C-Z1`` is reported missing while ``Form S-1`` is just words; text without ids
        (``"seed article"``) cites nothing.
    """
    facts = load_facts()
    ids: list[str] = []
    missing: list[str] = []

    def cite(fact_id: str) -> None:
        if fact_id not in ids:
            ids.append(fact_id)
        if fact_id not in facts and fact_id not in missing:
            missing.append(fact_id)

    families = {fact_id.split("-", 1)[0] for fact_id in facts}
    for match in _CITED.finditer(source):
        if (match["one"] or match["first"]).split("-", 1)[0] not in families:
            continue  # words that look like an id: "Form S-1", "COVID-19"
        if match["one"]:
            cite(match["one"])
            continue
        first, last = match["first"], _range_end(match["first"], match["last"])
        (prefix, lo), (other, hi) = _split(first), _split(last)
        if prefix != other or lo > hi:
            cite(f"{first}..{last}")
            continue
        for fact_id in facts:
            p, n = _split(fact_id)
            if p == prefix and lo <= n <= hi:
                cite(fact_id)
        for end in (first, last):
            cite(end)  # a no-op for a row just cited; a typo in an end is reported
    return Resolution(text=source, ids=tuple(ids), facts=tuple(facts[i] for i in ids if i in facts),
                      missing=tuple(missing))


# ------------------------------------------------------------------ dates

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MON = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_DATES = re.compile(
    r"(?<![\d/])(?:"
    r"(?P<day>(?P<dy>\d{4})-(?P<dm>\d{2})-(?P<dd>\d{2})(?:/(?P<dd2>\d{2})\b)?)"
    r"|(?P<part>(?P<py>\d{4})-(?P<pk>[QH])(?P<pn>[1-4]))"
    r"|(?P<quarter>\bQ(?P<qn>[1-4])-(?P<qy>\d{2})\b)"
    r"|(?P<month>(?P<my>\d{4})-(?P<mm>\d{2})(?:/(?P<mm2>\d{2}))?(?![\d-]))"
    rf"|(?P<named>\b{_MON}[ -](?P<ny>\d{{4}}|\d{{2}})\b)"
    r"|(?P<year>(?<!FY)(?<![A-Za-z])(?P<yy>(?:19|20)\d{2})\b(?!-\d))"
    r")"
)


def _month(year: int, month: int) -> Period:
    return Period(dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1]))


def _periods(text: str) -> list[Period]:
    out: list[Period] = []
    for m in _DATES.finditer(text):
        try:
            if m["day"]:
                y, mo = int(m["dy"]), int(m["dm"])
                for d in filter(None, (m["dd"], m["dd2"])):
                    day = dt.date(y, mo, int(d))
                    out.append(Period(day, day))
            elif m["part"]:
                y, n = int(m["py"]), int(m["pn"])
                size = 3 if m["pk"] == "Q" else 6
                if m["pk"] == "H" and n > 2:
                    continue
                out.append(Period(_month(y, (n - 1) * size + 1).start, _month(y, n * size).end))
            elif m["quarter"]:
                y, n = 2000 + int(m["qy"]), int(m["qn"])
                out.append(Period(_month(y, 3 * n - 2).start, _month(y, 3 * n).end))
            elif m["month"]:
                y = int(m["my"])
                out += [_month(y, int(mo)) for mo in filter(None, (m["mm"], m["mm2"]))]
            elif m["named"]:
                y = int(m["ny"]) + (2000 if len(m["ny"]) == 2 else 0)
                out.append(_month(y, _MONTHS[m["mon"][:3].lower()]))
            else:
                y = int(m["yy"])
                out.append(Period(dt.date(y, 1, 1), dt.date(y, 12, 31)))
        except ValueError:  # 2025-13 or 2025-02-30: not a date
            continue
    return out


@functools.lru_cache(maxsize=4096)
def parse_as_of(text: str) -> Period | None:
    """The latest period an as-of cell names, or None if it names none that can be read.

    Read: a day (``2025-11-27``, ``2025-11-27 01:16 UTC``, ``≈2025-11-18/20``: both days),
    a month (``2025-11``, ``2025-11/12``: both, ``Aug-25``, ``~Dec 2025``), a calendar
    quarter or half (``2025-Q3``, ``Q3-25``, ``2024-H1``) and a year (``2025``,
    ``2025 (late)``, ``mid-2025``). Where a cell names several (``2025-06 / 2025-09-30``,
    ``2025-09-30 (pub. 2025-11-04)``, ``2020–early 2025``), the one that ends last counts,
    which is the publication date when one is given.

    Not read, so the row's date is unknown: fiscal periods (``FY2025``, ``Q4 FY25``:
    fiscal years end in different months for different companies), ``since 2024-04-20``
    (a state that began then and still held when the sheet was written), days without a
    year (``pending at 12/1``), and words alone (``derived``, ``–``).

    A period is compared with other dates by its last day (:attr:`Period.end`): a fact
    dated ``2025`` may describe any day of 2025, so it is looked ahead of a valuation date
    inside 2025 unless its sheet says otherwise (:meth:`Fact.as_of_date`).
    """
    if text.strip().lower().startswith("since"):
        return None
    periods = _periods(text)
    return max(periods, key=lambda p: (p.end, p.start)) if periods else None
