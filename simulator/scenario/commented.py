"""The resolved scenario written back as YAML, with its files' comments where they belong.

``LoadedScenario.resolved`` is plain data: the ``extends:`` chain merged, comments gone. The
report shows the scenario a run used, and the comments are where its authors explain their
figures (``# 30d realised 43.6% ...``), so :func:`commented_yaml` writes the data in its
files' key order and puts back, from the line map, the comment block above each key and the
comment at the end of its line, read from whichever file set that key. A key whose value
came from a parent scenario carries the parent's comments. Stdlib and PyYAML only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from simulator.scenario.loader import trailing_comment

__all__ = ["commented_yaml"]

_FLOW_WIDTH = 96
"""A mapping or list of scalars is written on one line (``{dist: triangular, low: 0.35}``),
as the shipped scenarios write distributions, when the line stays this short."""


def commented_yaml(resolved: Mapping[str, Any], lines: Mapping[tuple[Any, ...], tuple[str, int]],
                   header: str = "") -> str:
    """YAML text of ``resolved`` with the comments of the lines in ``lines``.

    Parameters
    ----------
    resolved : mapping
        The merged scenario data (``LoadedScenario.resolved``).
    lines : mapping of key path to (file, line)
        Where each key path's final value was set (``LoadedScenario.lines``).
    header : str
        Comment lines to put first (without ``#``), e.g. the file chain.

    Notes
    -----
    The text loads back (``yaml.safe_load``) to ``resolved``. Comments inside a value written on
    one line are kept only at its end; a file's opening comment block (before its first key)
    is kept as the first key's block.
    """
    comments = _Comments()
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    _mapping(resolved, (), 0, lines, comments, out)
    return "\n".join(out) + "\n"


class _Comments:
    """The lines of each file read once."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}
        self._used: set[tuple[str, int]] = set()

    def text(self, file: str) -> list[str]:
        if file not in self._files:
            try:
                self._files[file] = Path(file).read_text(encoding="utf-8").splitlines()
            except OSError:
                self._files[file] = []
        return self._files[file]

    def around(self, where: tuple[str, int] | None) -> tuple[list[str], str | None]:
        """The comment lines directly above ``(file, line)`` and the comment ending it; nothing
        for a line already asked about (the keys of a mapping written on one line share it)."""
        if where is None or where in self._used:
            return [], None
        self._used.add(where)
        text = self.text(where[0])
        i = where[1] - 1
        if not 0 <= i < len(text):
            return [], None
        above = []
        j = i - 1
        while j >= 0 and text[j].lstrip().startswith("#"):
            above.append(text[j].strip())
            j -= 1
        comment = trailing_comment(text[i])
        return above[::-1], (f"# {comment}" if comment else None)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _flow_scalar(value: Any) -> str:
    """A scalar as it must be written inside ``{...}`` or ``[...]`` (commas quoted)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=10_000, allow_unicode=True)
    return text.strip()[1:-1]


def _flat(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(not isinstance(v, (Mapping, list)) for v in value.values())
    if isinstance(value, list):
        return all(not isinstance(v, (Mapping, list)) for v in value)
    return True


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_flow_scalar(k)}: {_flow_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow_scalar(v) for v in value) + "]"
    return _scalar(value)


def _line(text: str, trailing: str | None) -> str:
    return f"{text}  {trailing}" if trailing else text


def _mapping(data: Mapping[str, Any], path: tuple[Any, ...], indent: int,
             lines: Mapping[tuple[Any, ...], tuple[str, int]], comments: _Comments,
             out: list[str], first_prefix: str | None = None) -> None:
    pad = " " * indent
    for n, (key, value) in enumerate(data.items()):
        here = (*path, key)
        above, trailing = comments.around(lines.get(here))
        lead = first_prefix if (n == 0 and first_prefix is not None) else pad
        out += [f"{pad}{c}" for c in above]  # a list item's first key: before its "- " line
        _entry(f"{lead}{_scalar(key)}:", value, here, indent, lines, comments, out, trailing)


def _entry(head: str, value: Any, path: tuple[Any, ...], indent: int,
           lines: Mapping[tuple[Any, ...], tuple[str, int]], comments: _Comments, out: list[str],
           trailing: str | None) -> None:
    """``head`` (``key:`` or ``-``) followed by ``value`` at ``indent``."""
    empty = isinstance(value, (Mapping, list)) and not value
    if empty or not isinstance(value, (Mapping, list)) or (
            _flat(value) and len(head) + 1 + len(_inline(value)) <= _FLOW_WIDTH):
        out.append(_line(f"{head} {_inline(value)}", trailing))
        return
    out.append(_line(head, trailing))
    if isinstance(value, Mapping):
        _mapping(value, path, indent + 2, lines, comments, out)
        return
    pad = " " * (indent + 2)
    for i, item in enumerate(value):
        here = (*path, i)
        above, item_trailing = comments.around(lines.get(here))
        if isinstance(item, Mapping) and item and not (
                _flat(item) and len(pad) + 2 + len(_inline(item)) <= _FLOW_WIDTH):
            _mapping(item, here, indent + 4, lines, comments, out, first_prefix=f"{pad}- ")
        else:
            out += [f"{pad}{c}" for c in above]
            _entry(f"{pad}-", item, here, indent + 2, lines, comments, out, item_trailing)
