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

# Autoescaping turns every ``<`` of user text into ``&lt;``, so a ``<`` followed by a letter
# opens a tag we generated; text outside tags (a source note reading "data src=EDGAR filing")
# and attribute values other than the fetching ones below can never load anything.
_TAG = re.compile(r"""<([A-Za-z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>""")
_ATTR = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_FETCHING = {"src", "href", "xlink:href", "action", "formaction", "poster", "data", "srcset",
             "background"}
_LOCAL = re.compile(r"\s*(?:#|data:)", re.I)
_REMOTE = re.compile(r"\s*(?:[a-z][\w+.-]*:)?//", re.I)
_CSS_URL = re.compile(r"""url\(\s*["']?(?!\s*(?:#|data:))[^)]*\)""", re.I)
_CSS_IMPORT = re.compile(r"@import\b", re.I)
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of every minersim report: shipped templates, autoescaped.

    One per process, so each template is compiled once (Jinja2 caches them per environment).
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["inline_code"] = inline_code
    return env


_CODE = re.compile(r"`([^`\n]+)`")


def inline_code(text: str) -> Markup:
    """Plain text with backtick-quoted spans as ``<code>`` (the one Markdown our notes use),
    everything escaped first, so no other markup can get through."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(Markup.escape(text))))


def check_self_contained(html: str) -> None:
    """Raise RunError if ``html`` would load anything external when opened.

    Only markup is checked: every tag's attributes that fetch (``src``, ``href``, ``data``,
    ...; so ``<script src>``, ``<img src>``, ``<link href>``), and ``url()`` or ``@import``
    in ``<style>`` blocks and ``style`` attributes. Escaped user text (a scenario's
    ``source: "data src=EDGAR filing"``, in a cell or in a ``title``) is not markup and never
    trips it. About 0.06 s on a 10,000-path report, most of it in the attributes of the
    charts' SVG elements.
    """
    found = _external(html)
    if found:
        raise RunError("report is not self-contained: " + "; ".join(found[:5]))


def _external(html: str) -> list[str]:
    """What in the tags and ``<style>`` blocks of ``html`` would fetch something, in words."""
    found = []
    for tag in _TAG.finditer(html):
        if "=" not in tag.group(2):
            continue
        name, shown = tag.group(1).lower(), repr(tag.group(0)[:80])
        for attr in _ATTR.finditer(tag.group(2)):
            key = attr.group(1).lower()
            value = next((v for v in attr.group(2, 3, 4) if v is not None), None)
            if value is None:
                continue
            if key == "style":
                found += [f"{why} in a style attribute: {shown}" for why in _css(value)]
            elif key in _FETCHING and not _LOCAL.match(value):
                remote = _REMOTE.match(value) is not None
                if name == "a" and key == "href":
                    continue  # a link fetches nothing until it is followed (the sources' URLs)
                found.append(f"<{name} {key}> to {'a remote address' if remote else 'a file'}: {shown}")
    for block in _STYLE.finditer(html):
        found += [f"{why} in <style>" for why in _css(block.group(1))]
    return found


def _css(text: str) -> list[str]:
    out = [f"url() to {m.group(0)[:80]!r}" for m in _CSS_URL.finditer(text)]
    return out + ["@import" for _ in _CSS_IMPORT.finditer(text)]


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
