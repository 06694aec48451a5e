"""Read one scenario YAML file safely, with a source line for every node.

:func:`load_yaml` reads one file into plain dicts, lists and scalars plus a map from every
key path to the ``(file, line)`` it came from; :func:`find_scenario` turns a path or the
name of a shipped scenario into a file. Following ``extends:`` chains and merging them is
:mod:`simulator.scenario.extends`, which builds on this module.

The YAML is composed into nodes by a ``yaml.SafeLoader`` subclass and constructed here by
hand, which is where the limits live: file size, node count after alias expansion (alias
bombs), nesting depth, duplicate keys and unsupported tags. Stdlib and PyYAML only.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from simulator._files import scenarios_dir
from simulator.errors import ScenarioError, clip

MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64

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
            raise self.fail(f"unsupported YAML tag '{clip(node.tag)}'", node, path)

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> object:
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(f"unsupported YAML tag '{clip(node.tag)}'", node, path)
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
                raise self.fail(f"duplicate key '{clip(key)}' (first at line {first[key]})",
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
        kind = "a list" if isinstance(data, list) else f"the value {clip(repr(data))}"
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
    raise ScenarioError(f"no scenario file or shipped scenario named '{clip(text)}'",
                        allowed=", ".join(names) or "(no shipped scenarios)",
                        hint=f"did you mean '{close[0]}'?" if close else None)


def trailing_comment(text: str) -> str | None:
    """The text of the ``# comment`` ending a YAML line (outside quotes), or None."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[i + 1:].strip() or None
    return None
