"""Build ``facts.csv`` from the fact sheets beside this script (stdlib only; re-runnable).

Run ``python docs/facts/build_facts.py`` after editing ``domain-facts.md`` or
``peer-facts.md``; it writes ``docs/facts/facts.csv`` and the copy the package ships,
``scenarios/facts.csv`` (read by ``simulator.scenario.facts``). The sheets are the one source
of truth; ``tests/test_facts.py`` fails when either CSV differs from what this script makes.
``--check`` only compares, and exits 1 if a CSV is out of date.

Which rows are facts
    Every table row whose first cell starts with a row id: ``N-B1 · item`` in
    ``domain-facts.md`` (id and item share the cell), ``MARA-O1 | item`` in
    ``peer-facts.md`` (the id has its own cell). An id is upper-case letters, optionally a
    dash, optionally more letters, and a number: ``N-HP10``, ``C-O1``, ``CHK-1``,
    ``CIFR-A8``. The table of proposed defaults (section 0) and the summary tables cite ids
    but define none.

Columns
    ``id, sheet, section, item, value, unit, as_of, url, note, quality``. Cells are copied
    as written, without markdown bold (``**``). ``section`` is the nearest heading above
    the table. ``url`` is the first http(s) URL in the source cell; a source that says
    "same" or "same as C-O1" takes that row's URL, and one that names rows ("H-D6, H-D7
    URLs") the first named row's; a computed source ("computed from N-B2") has none.
    ``quality`` is ``after-as-of`` for a row published after the sheets' valuation date,
    tagged ``[after as-of]`` in its item, value, unit or as-of cell, or whose note says to
    "treat as [after as-of]" (notes also mention later figures for context, as C-D9's
    "Dec-31 LTD net $1.79B [after as-of]", which do not date the row); else ``low-q`` for
    a row tagged ``[low-q]`` anywhere; else empty.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHEETS = ("domain-facts.md", "peer-facts.md")
OUTPUTS = (HERE / "facts.csv", HERE.parent.parent / "scenarios" / "facts.csv")
COLUMNS = ("id", "sheet", "section", "item", "value", "unit", "as_of", "url", "note", "quality")

ID = r"[A-Z]+-[A-Z]*\d+"
_DOMAIN_ROW = re.compile(rf"^({ID}) · (.*)$")
_PEER_ROW = re.compile(rf"^({ID})$")
_URL = re.compile(r"https?://[^\s;)]+")
_NAMED = re.compile(rf"\b({ID})\b")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]


def _quality(item: str, value: str, unit: str, as_of: str, note: str, whole: str) -> str:
    if any("[after as-of]" in c for c in (item, value, unit, as_of)) or "treat as [after as-of]" in note:
        return "after-as-of"
    return "low-q" if "[low-q]" in whole else ""


def parse_sheet(name: str, text: str) -> list[dict[str, str]]:
    """The fact rows of one sheet, in order, with ``source`` (the raw cell) kept for URLs."""
    rows, section = [], ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            continue
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        domain = _DOMAIN_ROW.match(cells[0])
        peer = _PEER_ROW.match(cells[0])
        if domain:
            width, (fact_id, item), rest = 6, domain.groups(), cells[1:]
        elif peer:
            width, fact_id, item, rest = 7, peer.group(1), cells[1], cells[2:]
        else:
            continue
        if len(cells) != width:
            raise SystemExit(f"{name}:{number}: {fact_id}: expected {width} cells, found {len(cells)}")
        value, unit, as_of, source, note = rest
        rows.append({"id": fact_id, "sheet": name, "section": section, "item": item, "value": value,
                     "unit": unit, "as_of": as_of, "source": source, "note": note,
                     "quality": _quality(item, value, unit, as_of, note, line)})
    return rows


def _resolve_urls(rows: list[dict[str, str]]) -> None:
    """Fill ``url``: the cell's own URL, or that of the row the cell points to."""
    by_id = {r["id"]: r for r in rows}
    previous: dict[str, str] = {}
    for row in rows:
        source = row["source"]
        own = _URL.search(source)
        if source.startswith("same"):
            named = _NAMED.search(source.split(";")[0])
            row["url"] = by_id[named.group(1)]["url"] if named else previous.get(row["section"], "")
        elif own:
            row["url"] = own.group(0).rstrip(".,")
        elif re.search(r"\bURLs?\b", source) and _NAMED.search(source):
            row["url"] = by_id[_NAMED.search(source).group(1)]["url"]
        else:
            row["url"] = ""
        previous[row["section"]] = row["url"]


def build() -> str:
    """The CSV text for the sheets as they are now."""
    rows: list[dict[str, str]] = []
    for name in SHEETS:
        rows += parse_sheet(name, (HERE / name).read_text(encoding="utf-8"))
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            raise SystemExit(f"{row['sheet']}: {row['id']} is defined twice")
        seen.add(row["id"])
    _resolve_urls(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str]) -> int:
    text = build()
    stale = [p for p in OUTPUTS if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path}: out of date; run python {Path(__file__).relative_to(HERE.parent.parent)}")
        return 1 if stale else 0
    for path in stale:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
