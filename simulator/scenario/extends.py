"""Resolve ``extends:``: merge a child scenario onto its parent, keeping every value's line.

:func:`resolve` finds a scenario (a path or a shipped name), reads it and each file its
``extends:`` chain names with :func:`~simulator.scenario.loader.load_yaml`, and deep-merges
them child over parent. The merged :class:`ResolvedDoc` keeps, for every key path, the file
and line its final value came from, so a validation error in an inherited value still points
at the file that set it. Relative data-file paths (:data:`FILE_KEYS`) are anchored to the
folder of the scenario that states them.

Reading and limiting a single file is :mod:`simulator.scenario.loader`'s job; this module
only follows and merges, and imports from there (never the other way round). Stdlib only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from simulator._files import scenarios_dir
from simulator.errors import ScenarioError, clip
from simulator.scenario.loader import (
    KeyPath,
    Lines,
    LoadedDoc,
    find_scenario,
    format_path,
    load_yaml,
    locate,
    shipped_names,
)

MAX_EXTENDS = 16
NOT_INHERITED = ("companies",)
"""Top-level keys a child never inherits: a universe file's ``companies:`` list names the
files that extend it (``simulator/scenario/universe.py``), and is no part of any one scenario."""
# A mapping holding one of these keys is a tagged variant (a distribution spec, a process
# kind): a child that switches the tag replaces the parent's mapping instead of merging into
# it, so no parameter of the old variant leaks into the new one.
DISCRIMINATORS = ("dist", "kind")


@dataclass(frozen=True)
class ResolvedDoc(LoadedDoc):
    """A scenario with its ``extends:`` chain merged in (``extends`` itself removed).

    ``lines`` gives, for every key path, the file and line its final value came from;
    ``chain`` lists the files read, the requested one first.
    """

    chain: tuple[str, ...] = field(default=())


def _extends_target(value: object, doc: LoadedDoc) -> Path:
    file, line = doc.lines[("extends",)]
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError("must be the name of a scenario file", file=file, line=line,
                            key_path="extends", got=clip(repr(value)))
    target = Path(doc.file).parent / value
    candidates = [target]
    if not target.suffix:
        candidates.append(target.with_name(target.name + ".yaml"))
    if "/" not in value and os.sep not in value:
        candidates += [scenarios_dir() / value, scenarios_dir() / f"{value}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ScenarioError(f"cannot extend '{clip(value)}': no such file {clip(str(target))}", file=file, line=line,
                        key_path="extends", allowed=", ".join(shipped_names()) or None)


def resolve(path: str | os.PathLike[str]) -> ResolvedDoc:
    """Load a scenario (a path or a shipped name) and merge its ``extends:`` chain.

    Parameters
    ----------
    path : str or path-like
        A scenario file, or the name of a shipped scenario (see :func:`find_scenario`).

    Returns
    -------
    ResolvedDoc
        Merged data without ``extends``, with the source of every final value.

    Raises
    ------
    ScenarioError
        Anything :func:`load_yaml` rejects, a missing ``extends`` target (at the ``extends:``
        line), an ``extends`` cycle, or a chain longer than ``MAX_EXTENDS``.

    Notes
    -----
    Merge rules (child over parent): a parent's :data:`NOT_INHERITED` keys are dropped;
    mappings merge key by key; scalars and plain lists are
    replaced; lists whose items are all mappings with a ``name`` merge item by item by
    ``name`` (same name updates, new names are appended in order, ``remove: true`` deletes
    the parent's item); a mapping whose ``dist`` or ``kind`` differs from the parent's
    replaces it whole.
    """
    top = find_scenario(path)
    docs = [load_yaml(top)]
    seen = [top.resolve()]
    while "extends" in docs[-1].data:
        doc = docs[-1]
        target = _extends_target(doc.data["extends"], doc)
        if target.resolve() in seen or len(docs) >= MAX_EXTENDS:
            file, line = doc.lines[("extends",)]
            cycle = target.resolve() in seen
            names = " -> ".join([p.name for p in seen] + [target.name])
            problem = "extends cycle: " if cycle else f"extends chain longer than {MAX_EXTENDS}: "
            raise ScenarioError(problem + names, file=file, line=line, key_path="extends")
        seen.append(target.resolve())
        docs.append(load_yaml(target))
    data: object = None
    lines: Lines = {}
    for doc in reversed(docs):
        # A parent's universe-only keys (its list of companies) are not inherited.
        dropped = ("extends",) if doc is docs[0] else ("extends", *NOT_INHERITED)
        child = {k: v for k, v in doc.data.items() if k not in dropped}
        child_lines = {k: v for k, v in doc.lines.items() if k[:1] not in {(d,) for d in dropped}}
        if data is None:
            data, lines = child, child_lines
        else:
            out: Lines = {}
            data = _merge(data, lines, child, child_lines, (), out)
            lines = out
    return ResolvedDoc(data=_anchor_files(data, lines), lines=lines, file=docs[0].file,
                       chain=tuple(d.file for d in docs))


FILE_KEYS: tuple[KeyPath, ...] = (("market", "btc", "process", "csv"),)
"""Key paths whose value names a data file: relative to the scenario file that states it."""


def _anchor_files(data: dict, lines: Lines) -> dict:
    """``data`` with each relative :data:`FILE_KEYS` path joined to its stating file's folder.

    Like ``extends:``, a data file is found beside the scenario that names it (the parent's
    folder when an ``extends`` parent states it), not in the directory the command runs from.
    """
    for key in FILE_KEYS:
        *parents, name = key
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(name) if isinstance(node, dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute() and key in lines:
            node[name] = str(Path(lines[key][0]).parent / value)
    return data


def _copy_lines(value: object, src: Lines, src_path: KeyPath, dst_path: KeyPath, out: Lines) -> None:
    """Copy the lines of ``value``'s subtree from ``src_path`` in ``src`` to ``dst_path`` in ``out``."""
    if src_path in src:
        out[dst_path] = src[src_path]
    if isinstance(value, dict):
        for k, v in value.items():
            _copy_lines(v, src, src_path + (k,), dst_path + (k,), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _copy_lines(v, src, src_path + (i,), dst_path + (i,), out)


def _is_named_list(value: object) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value))


def _switches_variant(parent: dict, child: dict) -> bool:
    return any(k in child and child[k] != parent.get(k) for k in DISCRIMINATORS)


def _merge(parent: object, p_lines: Lines, child: object, c_lines: Lines,
           path: KeyPath, out: Lines, p_path: KeyPath | None = None,
           c_path: KeyPath | None = None) -> object:
    """Merge ``child`` over ``parent`` (found at ``p_path`` / ``c_path`` in their docs) into ``path``.

    Lines of the result are written to ``out``: a value taken from the child keeps the
    child's line, an inherited one keeps the parent's.
    """
    p_path = path if p_path is None else p_path
    c_path = path if c_path is None else c_path
    if isinstance(parent, dict) and isinstance(child, dict) and not _switches_variant(parent, child):
        _copy_lines(None, c_lines if c_path in c_lines else p_lines,
                    c_path if c_path in c_lines else p_path, path, out)
        merged = {}
        for key, value in parent.items():
            if key in child:
                merged[key] = _merge(value, p_lines, child[key], c_lines, path + (key,), out,
                                     p_path + (key,), c_path + (key,))
            else:
                merged[key] = value
                _copy_lines(value, p_lines, p_path + (key,), path + (key,), out)
        for key, value in child.items():
            if key not in parent:
                merged[key] = value
                _copy_lines(value, c_lines, c_path + (key,), path + (key,), out)
        return merged
    if _is_named_list(parent) and _is_named_list(child):
        return _merge_named(parent, p_lines, child, c_lines, path, out, p_path, c_path)
    _copy_lines(child, c_lines, c_path, path, out)
    return child


def _index_by_name(items: list[dict], lines: Lines, path: KeyPath) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["name"] in index:
            file, line = locate(lines, path + (i, "name"))
            raise ScenarioError(f"duplicate name '{item['name']}' (also item {index[item['name']]})",
                                file=file, line=line, key_path=format_path(path + (i, "name")))
        index[item["name"]] = i
    return index


def _merge_named(parent: list[dict], p_lines: Lines, child: list[dict], c_lines: Lines,
                 path: KeyPath, out: Lines, p_path: KeyPath, c_path: KeyPath) -> list[dict]:
    """Merge two lists of named mappings item by item on ``name`` (see :func:`resolve`)."""
    _copy_lines(None, c_lines, c_path, path, out)
    p_index = _index_by_name(parent, p_lines, p_path)
    c_index = _index_by_name(child, c_lines, c_path)
    for name, j in c_index.items():
        if child[j].get("remove") is True and name not in p_index:
            file, line = locate(c_lines, c_path + (j, "remove"))
            raise ScenarioError(f"remove: true, but the parent has no item named '{name}'",
                                file=file, line=line, key_path=format_path(c_path + (j,)),
                                allowed=", ".join(repr(n) for n in p_index))
    merged: list[dict] = []
    for i, item in enumerate(parent):
        j = c_index.get(item["name"])
        if j is None:
            _copy_lines(item, p_lines, p_path + (i,), path + (len(merged),), out)
            merged.append(item)
        elif child[j].get("remove") is not True:
            update = {k: v for k, v in child[j].items() if k != "remove"}
            merged.append(_merge(item, p_lines, update, c_lines, path + (len(merged),), out,
                                 p_path + (i,), c_path + (j,)))
    for j, item in enumerate(child):
        if item["name"] not in p_index:
            update = {k: v for k, v in item.items() if k != "remove"}
            _copy_lines(update, c_lines, c_path + (j,), path + (len(merged),), out)
            merged.append(update)
    return merged
