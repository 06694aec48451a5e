"""What every minersim HTML page shares: number formatters, figures, Jinja2, self-containment.

The one-run report (:mod:`simulator.report.run_report`), its drivers and breakevens sections
(:mod:`simulator.report.drivers`) and the compare report (:mod:`simulator.report.compare_report`) all
format numbers with :func:`usd` and :func:`num`, wrap chart SVG with :func:`figure`, render
through :func:`environment` (shipped templates, autoescaped) and pass the result through
:func:`check_self_contained`, which refuses HTML that would fetch anything when opened. Pure
functions; nothing here touches the filesystem beyond reading templates.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from simulator._files import templates_dir
from simulator.errors import RunError

_EXTERNAL = [
    (re.compile(r"""\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.I),
         "src/href to a remote address"),
    (re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.I), "url() to a remote address"),
    (re.compile(r"<script\b[^>]*\bsrc\s*=", re.I), "<script src>"),
    (re.compile(r"<link\b[^>]*\brel\s*=\s*[\"']?stylesheet", re.I), "<link rel=stylesheet>"),
    (re.compile(r"@import\b", re.I), "@import"),
    (re.compile(r"""\bsrc\s*=\s*["']?(?!data:|#)[\w./-]+""", re.I), "src to a file"),
]
# Every pattern above starts with one of these words. A page is mostly chart path data
# (digits, spaces, M, L, z) where they never occur, so one scan for the words and a try of
# the patterns where a word starts takes half the time of six scans of the whole page
# (0.06 against 0.11 s on the base report).
_STARTS = re.compile(r"src|href|action|poster|data|url\(|<script|<link|@import", re.I)


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of every minersim report: shipped templates, autoescaped.

    One per process, so each template is compiled once (Jinja2 caches them per environment).
    """
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def check_self_contained(html: str) -> None:
    """Raise RunError if ``html`` would load anything external when opened."""
    starts = [m.start() for m in _STARTS.finditer(html)]
    found = [f"{why}: {m.group(0)[:80]!r}" for rx, why in _EXTERNAL
             for m in (rx.match(html, i) for i in starts) if m]
    if found:
        raise RunError("report is not self-contained: " + "; ".join(found[:5]))


def usd(x: float, digits: int = 2) -> str:
    """``$1,234.50`` with a true minus sign for negatives; "n/a" if not finite."""
    if not np.isfinite(x):
        return "n/a"
    return ("\u2212" if x < 0 else "") + f"${abs(x):,.{digits}f}"


def num(x: float, digits: int = 0) -> str:
    """Thousands-separated number with ``digits`` decimals; "n/a" if not finite."""
    return f"{x:,.{digits}f}" if np.isfinite(x) else "n/a"


def figure(key: str, title: str, svg: str, caption: str, alt: str) -> dict[str, Any]:
    """One chart of a report: our own inline SVG (the only markup marked safe) and its texts."""
    return {"id": key, "title": title, "svg": Markup(svg), "caption": caption, "alt": alt}
