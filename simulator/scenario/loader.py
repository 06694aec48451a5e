"""Read scenario YAML safely, with a source line for every node, and resolve ``extends:``.

:func:`load_yaml` reads one file into plain dicts, lists and scalars plus a map from every
key path to the ``(file, line)`` it came from. :func:`resolve` follows ``extends:`` chains
and deep-merges them, keeping for every key path the place its final value came from, so a
validation error in an inherited value still points at the file that set it.

The YAML is composed into nodes by a ``yaml.SafeLoader`` subclass and constructed here by
hand, which is where the limits live: file size, node count after alias expansion (alias
bombs), nesting depth, duplicate keys and unsupported tags. Stdlib and PyYAML only.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from simulator._files import scenarios_dir
from simulator.errors import ScenarioError

MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_EXTENDS = 16
# A mapping holding one of these keys is a tagged variant (a distribution spec, a process
# kind): a child that switches the tag replaces the parent's mapping instead of merging into
# it, so no parameter of the old variant leaks into the new one.
DISCRIMINATORS = ("dist", "kind")

KeyPath = tuple[str | int, ...]
Lines = dict[KeyPath, tuple[str, int]]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("null", "bool", "int", "float", "str", "timestamp")}


@dataclass(frozen=True)
class LoadedDoc:
    """One YAML file as plain data.

    Attributes
    ----------
    data : dict
        The top-level mapping; values are dicts, lists, str, int, float, bool or None.
        Dates stay strings (``"2025-06-30"``) for the models to parse.
    lines : dict
        ``key path -> (file, line)`` for every node; a key path is a tuple of str keys and
        int list indices, ``()`` being the whole document. Lines are 1-based.
    file : str
        The path as given (used in messages).
    """

    data: dict
    lines: Lines
    file: str

    def locate(self, path: KeyPath) -> tuple[str, int]:
        """``(file, line)`` of ``path`` or of its nearest ancestor with a known line."""
        return locate(self.lines, path, self.file)


@dataclass(frozen=True)
class ResolvedDoc(LoadedDoc):
    """A scenario with its ``extends:`` chain merged in (``extends`` itself removed).

    ``lines`` gives, for every key path, the file and line its final value came from;
    ``chain`` lists the files read, the requested one first.
    """

    chain: tuple[str, ...] = field(default=())


def locate(lines: Lines, path: KeyPath, default_file: str = "<scenario>") -> tuple[str, int]:
    """``(file, line)`` for ``path``, walking up to the nearest ancestor that has a line."""
    path = tuple(path)
    for n in range(len(path), -1, -1):
        hit = lines.get(path[:n])
        if hit is not None:
            return hit
    return (default_file, 1)


def format_path(path: KeyPath) -> str:
    """``('sites', 1, 'lease', 'rate')`` -> ``'sites[1].lease.rate'``."""
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


class _SafeComposer(yaml.SafeLoader):
    """SafeLoader that bounds nesting while composing and reads YAML 1.2 exponent floats."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        self._depth += 1
        self._composed += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Limit(f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1)
        if self._composed > MAX_NODES:
            raise _Limit(f"too many nodes (limit {MAX_NODES:,})", self.peek_event().start_mark.line + 1)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 reads ``1e6`` as a string; scenario authors mean a number.
_SafeComposer.add_implicit_resolver(
    f"{_TAG}float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _Limit(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Builder:
    """Construct plain data from composed nodes, recording a line for every key path."""

    def __init__(self, file: str, loader: _SafeComposer) -> None:
        self.file, self.loader = file, loader
        self.lines: Lines = {}
        self.count = 0
        self.seen: set[int] = set()
        self.expanded = False
        self.stack: set[int] = set()

    def fail(self, message: str, node: yaml.Node, path: KeyPath, **kw) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=node.start_mark.line + 1,
                             key_path=format_path(path) or None, **kw)

    def build(self, node: yaml.Node, path: KeyPath, depth: int) -> object:
        self.count += 1
        if id(node) in self.seen:
            self.expanded = True
        self.seen.add(id(node))
        if self.count > MAX_NODES:
            what = "after alias expansion " if self.expanded else ""
            hint = "; is this an alias bomb?" if self.expanded else ""
            # Blame the top-level key being built: deeper nodes of an expanded alias carry the
            # line of their anchor, which is not where the expansion happened.
            file, line = self.lines.get(path[:1], (self.file, node.start_mark.line + 1))
            raise ScenarioError(f"too many nodes {what}(limit {MAX_NODES:,}){hint}", file=file,
                                line=line, key_path=format_path(path[:1]) or None)
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels after alias expansion", node, path)
        if id(node) in self.stack:
            raise self.fail("an alias refers to a mapping or list that contains it", node, path)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self.check_tag(node, f"{_TAG}seq", path)
                out = []
                for i, item in enumerate(node.value):
                    self.lines[path + (i,)] = (self.file, item.start_mark.line + 1)
                    out.append(self.build(item, path + (i,), depth + 1))
                return out
            self.check_tag(node, f"{_TAG}map", path)
            out_map: dict = {}
            self.fill(node, path, depth, out_map, explicit=True)
            return out_map
        finally:
            self.stack.discard(id(node))

    def check_tag(self, node: yaml.Node, tag: str, path: KeyPath) -> None:
        if node.tag != tag:
            raise self.fail(f"unsupported YAML tag '{node.tag}'", node, path)

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> object:
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(f"unsupported YAML tag '{node.tag}'", node, path)
        if node.tag.endswith(("str", "timestamp")):
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise self.fail(f"cannot read the number {text!r} ({exc})", node, path) from None

    def key(self, node: yaml.Node, path: KeyPath) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail("mapping keys must be plain words, not lists or mappings", node, path)
        # The key's source text, so that ``on:`` or ``2026:`` stay the strings the author typed.
        return node.value

    def fill(self, node: yaml.MappingNode, path: KeyPath, depth: int, out: dict, explicit: bool) -> None:
        """Add ``node``'s entries to ``out``; ``<<`` merge sources only fill keys not yet set."""
        first: dict[str, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in first:
                raise self.fail(f"duplicate key '{key}' (first at line {first[key]})",
                                key_node, path + (key,))
            first[key] = line
            if not explicit and key in out:
                continue
            self.lines[path + (key,)] = (self.file, line)
            out[key] = self.build(value_node, path + (key,), depth + 1)
        for source in merges:
            items = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for item in items:
                if not isinstance(item, yaml.MappingNode):
                    raise self.fail("a '<<' merge needs a mapping or a list of mappings", item, path)
                if id(item) in self.stack:
                    raise self.fail("a '<<' merge refers to the mapping that contains it", item, path)
                self.stack.add(id(item))
                self.fill(item, path, depth, out, explicit=False)
                self.stack.discard(id(item))


def _read_text(path: Path, file: str) -> str:
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            raise ScenarioError(f"file is {size / 1e6:.1f} MB; the limit is 1 MiB", file=file)
        with open(path, "rb") as fh:
            # Read one byte past the limit: stat can under-report (pipes, growing files).
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError("file not found", file=file) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file", file=file) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read the file ({exc.strerror})", file=file) from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError("file is larger than the 1 MiB limit", file=file)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file=file, line=line) from None


def _compose(text: str, file: str) -> tuple[yaml.Node | None, _SafeComposer]:
    loader = None
    try:
        # The reader checks the characters of the whole text in its constructor.
        loader = _SafeComposer(text)
        return loader.get_single_node(), loader
    except _Limit as exc:
        raise ScenarioError(exc.message, file=file, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ScenarioError(f"YAML syntax error: {message}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ScenarioError(f"YAML syntax error: character #x{code:04x} is not allowed",
                            file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML syntax error: {exc}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | os.PathLike[str]) -> LoadedDoc:
    """Read one scenario file into plain data with a line for every node.

    Parameters
    ----------
    path : str or path-like
        The YAML file. Its text as given is the file name in messages.

    Returns
    -------
    LoadedDoc

    Raises
    ------
    ScenarioError
        File missing, larger than ``MAX_BYTES``, not UTF-8, empty, a YAML syntax error, a
        duplicate key, an unsupported tag, more than ``MAX_NODES`` nodes after alias
        expansion, nesting deeper than ``MAX_DEPTH``, or a top level that is not a mapping.

    Notes
    -----
    ``.nan`` and ``.inf`` load as floats (the models reject them where a finite number is
    needed); dates load as their text. ``<<`` merge keys work as in YAML 1.1.
    """
    file = os.fspath(path)
    text = _read_text(Path(path), file)
    root, loader = _compose(text, file)
    if root is None:
        raise ScenarioError("file is empty", file=file)
    builder = _Builder(file, loader)
    builder.lines[()] = (file, root.start_mark.line + 1)
    data = builder.build(root, (), 0)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the value {data!r}"
        raise ScenarioError(f"the top level must be a mapping of keys, not {kind}",
                            file=file, line=root.start_mark.line + 1)
    return LoadedDoc(data=data, lines=builder.lines, file=file)


def shipped_names() -> list[str]:
    """Names of the scenarios shipped with minersim (``base``, ``bear``, ...)."""
    folder = scenarios_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_scenario(name_or_path: str | os.PathLike[str]) -> Path:
    """An existing file path, else the shipped scenario of that name (``.yaml`` optional).

    Raises
    ------
    ScenarioError
        Neither exists; the message lists the shipped names.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    text = os.fspath(name_or_path)
    if os.sep not in text and "/" not in text:
        for candidate in (scenarios_dir() / text, scenarios_dir() / f"{text}.yaml"):
            if candidate.is_file():
                return candidate
    names = shipped_names()
    close = difflib.get_close_matches(Path(text).stem, names, n=1)
    raise ScenarioError(f"no scenario file or shipped scenario named '{text}'",
                        allowed=", ".join(names) or "(no shipped scenarios)",
                        hint=f"did you mean '{close[0]}'?" if close else None)


def _extends_target(value: object, doc: LoadedDoc) -> Path:
    file, line = doc.lines[("extends",)]
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError("must be the name of a scenario file", file=file, line=line,
                            key_path="extends", got=repr(value))
    target = Path(doc.file).parent / value
    candidates = [target]
    if not target.suffix:
        candidates.append(target.with_name(target.name + ".yaml"))
    if "/" not in value and os.sep not in value:
        candidates += [scenarios_dir() / value, scenarios_dir() / f"{value}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ScenarioError(f"cannot extend '{value}': no such file {target}", file=file, line=line,
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
    Merge rules (child over parent): mappings merge key by key; scalars and plain lists are
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
        child = {k: v for k, v in doc.data.items() if k != "extends"}
        child_lines = {k: v for k, v in doc.lines.items() if k[:1] != ("extends",)}
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
