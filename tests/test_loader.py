"""Tests for simulator/scenario/loader.py (safe YAML with lines, limits) and extends.py (merging)."""

from __future__ import annotations

import math
import os
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import ScenarioError
from simulator.scenario import extends, loader
from simulator.scenario.extends import resolve
from simulator.scenario.loader import find_scenario, format_path, load_yaml, locate


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(fn, *args) -> str:
    with pytest.raises(ScenarioError) as info:
        fn(*args)
    return info.value.render()


# ------------------------------------------------------------------ load_yaml

def test_every_node_has_its_line(tmp_path):
    path = write(tmp_path, "s.yaml", """
        # comment on line 1
        name: base
        company:
          shares_m: 280
        sites:
          - name: a
            lease: {rate: 150, term: 15}
          - name: b

            gross_mw: 50
        years: [1, 2]
    """)
    doc = load_yaml(path)
    f = str(path)
    assert doc.file == f
    assert doc.data == {"name": "base", "company": {"shares_m": 280},
                        "sites": [{"name": "a", "lease": {"rate": 150, "term": 15}},
                                  {"name": "b", "gross_mw": 50}],
                        "years": [1, 2]}
    expected = {
        (): 2, ("name",): 2, ("company",): 3, ("company", "shares_m"): 4, ("sites",): 5,
        ("sites", 0): 6, ("sites", 0, "name"): 6, ("sites", 0, "lease"): 7,
        ("sites", 0, "lease", "rate"): 7, ("sites", 0, "lease", "term"): 7,
        ("sites", 1): 8, ("sites", 1, "name"): 8, ("sites", 1, "gross_mw"): 10,
        ("years",): 11, ("years", 0): 11, ("years", 1): 11,
    }
    assert doc.lines == {k: (f, v) for k, v in expected.items()}


def test_scalars_keep_types_dates_stay_text_exponents_are_numbers(tmp_path):
    path = write(tmp_path, "s.yaml", """
        a: 1
        b: 2.5
        c: 1e6
        d: -2.5E-3
        e: 2025-06-30
        f: true
        g: ~
        h: "12"
        on: 1
        2026: x
        i: .nan
        j: -.inf
    """)
    doc = load_yaml(path)
    data = doc.data
    assert (data["a"], data["b"], data["c"], data["d"]) == (1, 2.5, 1e6, -2.5e-3)
    assert isinstance(data["a"], int) and isinstance(data["c"], float)
    assert data["e"] == "2025-06-30"
    assert data["f"] is True and data["g"] is None and data["h"] == "12"
    # Keys are the text typed, not YAML 1.1 booleans or ints.
    assert data["on"] == 1 and data["2026"] == "x"
    assert math.isnan(data["i"]) and data["j"] == -math.inf
    assert doc.lines[("i",)] == (str(path), 11) and doc.lines[("j",)] == (str(path), 12)


def test_merge_keys_fill_only_unset_keys(tmp_path):
    path = write(tmp_path, "s.yaml", """
        defaults: &d {low: 1, high: 3, mode: 2}
        x:
          <<: *d
          mode: 2.5
    """)
    doc = load_yaml(path)
    assert doc.data["x"] == {"mode": 2.5, "low": 1, "high": 3}
    f = str(path)
    assert doc.lines[("x", "mode")] == (f, 4)
    assert doc.lines[("x", "low")] == (f, 1)


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "{f}:4: b.c: duplicate key 'c' (first at line 3)"),
    ("", "{f}: file is empty"),
    ("# only a comment\n\n", "{f}: file is empty"),
    ("- 1\n- 2\n", "{f}:1: the top level must be a mapping of keys, not a list"),
    ("just text\n", "{f}:1: the top level must be a mapping of keys, not the value 'just text'"),
    ("a: 1\nb: [1, 2\nc: 3\n", "{f}:3: YAML syntax error: expected ',' or ']', but got ':' "
                                "(while parsing a flow sequence)"),
    ("a: 1\n b: 2\n", "{f}:2: YAML syntax error: mapping values are not allowed here"),
    ("a: *nope\n", "{f}:1: YAML syntax error: found undefined alias 'nope'"),
    ("a: 1\n---\nb: 2\n", "{f}:2: YAML syntax error: but found another document "
                          "(expected a single document in the stream)"),
    ("a: !!python/object:os.system x\n", "{f}:1: a: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"),
    ("a: !!binary aGVsbG8=\n", "{f}:1: a: unsupported YAML tag 'tag:yaml.org,2002:binary'"),
    ("a: !!set {x}\n", "{f}:1: a: unsupported YAML tag 'tag:yaml.org,2002:set'"),
    ("? [a, b]\n: 1\n", "{f}:1: mapping keys must be plain words, not lists or mappings"),
    ("a: &x [1, *x]\n", "{f}:1: a[1]: an alias refers to a mapping or list that contains it"),
    ("a: 1\nb: \x07\n", "{f}:2: YAML syntax error: character #x0007 is not allowed"),
])
def test_rejected_documents(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert error_of(load_yaml, path) == message.format(f=path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nb: caf\u00e9\n".encode("latin-1"))
    assert error_of(load_yaml, path) == f"{path}:2: not UTF-8 text (byte 0xe9)"


def test_missing_file_and_directory(tmp_path):
    assert error_of(load_yaml, tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: file not found"
    assert error_of(load_yaml, tmp_path) == f"{tmp_path}: is a directory, not a scenario file"


def test_huge_file_is_rejected_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:  # sparse: no 50 MB actually written
        fh.truncate(50_000_000)
    assert error_of(load_yaml, path) == f"{path}: file is 50.0 MB; the limit is 1 MiB"


def test_just_over_the_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (loader.MAX_BYTES - 4))
    assert error_of(load_yaml, path) == f"{path}: file is 1.0 MB; the limit is 1 MiB"


def test_alias_bomb(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    message = error_of(load_yaml, path)
    # a4 expands to about 66,000 nodes, so the count passes 100,000 while building a5 (line 6).
    assert message == f"{path}:6: a5: too many nodes after alias expansion (limit 100,000); is this an alias bomb?"


def test_too_many_plain_nodes(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 50)
    path = tmp_path / "many.yaml"
    path.write_text("a: [" + ", ".join(["1"] * 60) + "]\n")
    assert error_of(load_yaml, path) == f"{path}:1: too many nodes (limit 50)"


def test_deep_nesting(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 200 + "]" * 200 + "\n")
    assert error_of(load_yaml, path) == f"{path}:1: nesting deeper than 64 levels"


def test_huge_integer_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "int.yaml"
    path.write_text("a: " + "9" * 5000 + "\n")
    assert error_of(load_yaml, path).startswith(f"{path}:1: a: cannot read the number '99999")


# Text that reads as an exponent number ("0E0", "1e6") is where the loader departs from
# yaml.safe_load on purpose (YAML 1.2 floats); test_scalars_keep_types_... covers it.
_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, width=64),
                    st.text(max_size=8).filter(lambda t: not _EXPONENT.match(t)))
keys = st.text(st.characters(categories=["Ll", "Nd"]), min_size=1, max_size=6).filter(
    lambda k: not k.isdigit())
docs = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
                    max_leaves=20)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, docs, min_size=1, max_size=5), st.booleans())
def test_agrees_with_safe_load_and_lines_cover_every_path(tmp_path_factory, data, flow):
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False, allow_unicode=True)
    path = tmp_path_factory.mktemp("prop") / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    doc = load_yaml(path)
    assert doc.data == yaml.safe_load(text)
    assert set(doc.lines) == set(_paths(doc.data))
    n_lines = text.count("\n") + 1
    assert all(1 <= line <= n_lines for _, line in doc.lines.values())


def test_locate_and_format_path():
    lines = {(): ("f", 1), ("sites",): ("f", 5), ("sites", 1): ("g", 9)}
    assert locate(lines, ("sites", 1, "lease", "rate")) == ("g", 9)
    assert locate(lines, ("market", "btc")) == ("f", 1)
    assert locate({}, ("x",), "h") == ("h", 1)
    assert format_path(("sites", 1, "lease", "rate_usd_per_kw_month")) == "sites[1].lease.rate_usd_per_kw_month"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""


# ------------------------------------------------------------------ resolve / extends

BASE = """
    name: base
    company:
      shares_m: 280
      ticker: CLSK
    years: [1, 2, 3]
    price: {dist: triangular, low: 1, mode: 2, high: 3}
    vol: {dist: triangular, low: 0.3, mode: 0.4, high: 0.6}
    sites:
      - name: a
        gross_mw: 100
        lease: {rate: 150, term: 15}
      - name: b
        gross_mw: 50
      - name: c
        gross_mw: 20
    debt:
      - name: cv
        kind: convertible
        principal: 650
        conversion_price: 14.8
"""

CHILD = """
    extends: base.yaml
    company:
      shares_m: 300
    years: [5]
    price: {dist: uniform, low: 1, high: 4}
    vol: {dist: triangular, high: 0.7}
    sites:
      - name: b
        remove: true
      - name: a
        lease: {rate: 170}
      - name: d
        gross_mw: 30
    debt:
      - name: cv
        kind: straight
        principal: 500
"""


def test_deep_merge_rules_and_lines(tmp_path):
    base = write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", CHILD)
    doc = resolve(child)
    assert doc.data == {
        "name": "base",
        "company": {"shares_m": 300, "ticker": "CLSK"},
        "years": [5],
        # a new ``dist`` replaces the whole spec: no 'mode' leaks from the triangular
        "price": {"dist": "uniform", "low": 1, "high": 4},
        # the same ``dist`` merges, so one parameter can be overridden
        "vol": {"dist": "triangular", "low": 0.3, "mode": 0.4, "high": 0.7},
        "sites": [{"name": "a", "gross_mw": 100, "lease": {"rate": 170, "term": 15}},
                  {"name": "c", "gross_mw": 20},
                  {"name": "d", "gross_mw": 30}],
        "debt": [{"name": "cv", "kind": "straight", "principal": 500}],
    }
    b, c = str(base), str(child)
    assert doc.file == c and doc.chain == (c, b)
    assert doc.lines[("name",)] == (b, 1)
    assert doc.lines[("company", "shares_m")] == (c, 3)
    assert doc.lines[("company", "ticker")] == (b, 4)
    assert doc.lines[("years", 0)] == (c, 4)
    assert ("years", 1) not in doc.lines
    assert doc.lines[("price", "high")] == (c, 5)
    assert ("price", "mode") not in doc.lines
    assert doc.lines[("vol", "mode")] == (b, 7) and doc.lines[("vol", "high")] == (c, 6)
    assert doc.lines[("sites", 0, "gross_mw")] == (b, 10)
    assert doc.lines[("sites", 0, "lease", "rate")] == (c, 11)
    assert doc.lines[("sites", 0, "lease", "term")] == (b, 11)
    assert doc.lines[("sites", 1)] == (b, 14) and doc.lines[("sites", 1, "gross_mw")] == (b, 15)
    assert doc.lines[("sites", 2, "gross_mw")] == (c, 13)
    assert doc.lines[("debt", 0, "kind")] == (c, 16)
    assert not any(k[:1] == ("extends",) for k in doc.lines)
    assert set(doc.lines) == set(_paths(doc.data))


def test_three_level_chain_and_extension_optional(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "mid.yaml", "extends: base\ncompany:\n  ticker: X\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    top = write(sub, "top.yaml", "extends: ../mid.yaml\ncompany:\n  shares_m: 1\n")
    doc = resolve(top)
    assert doc.data["company"] == {"shares_m": 1, "ticker": "X"}
    assert doc.chain == (str(top), str(sub / "../mid.yaml"), str(sub / "../base.yaml"))
    assert doc.lines[("company", "ticker")] == (str(sub / "../mid.yaml"), 3)


def test_extends_falls_back_to_a_shipped_name(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    write(shipped, "base.yaml", BASE)
    monkeypatch.setattr(loader, "scenarios_dir", lambda: shipped)
    monkeypatch.setattr(extends, "scenarios_dir", lambda: shipped)
    work = tmp_path / "work"
    work.mkdir()
    child = write(work, "child.yaml", "extends: base\nname: mine\n")
    doc = resolve(child)
    assert doc.data["name"] == "mine" and doc.data["company"]["ticker"] == "CLSK"
    assert doc.lines[("company", "ticker")] == (str(shipped / "base.yaml"), 4)
    # and a bare shipped name as the top-level file
    assert resolve("base").data["name"] == "base"
    assert find_scenario("base") == shipped / "base.yaml"
    assert find_scenario("base.yaml") == shipped / "base.yaml"


def test_find_scenario_unknown_lists_shipped(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in ("base", "bear", "bull"):
        (shipped / f"{name}.yaml").write_text("name: x\n")
    monkeypatch.setattr(loader, "scenarios_dir", lambda: shipped)
    assert error_of(find_scenario, "baes") == (
        "<scenario>: no scenario file or shipped scenario named 'baes' "
        "(allowed: base, bear, bull); did you mean 'base'?")
    assert find_scenario(shipped / "bear.yaml") == shipped / "bear.yaml"


def test_extends_missing_target(tmp_path):
    child = write(tmp_path, "child.yaml", "name: x\nextends: nothere.yaml\n")
    message = error_of(resolve, child)
    assert message.startswith(
        f"{child}:2: extends: cannot extend 'nothere.yaml': no such file {tmp_path / 'nothere.yaml'}")


def test_extends_must_be_a_name(tmp_path):
    child = write(tmp_path, "child.yaml", "extends: [a, b]\n")
    assert error_of(resolve, child) == f"{child}:1: extends: must be the name of a scenario file (got ['a', 'b'])"


def test_extends_cycle(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    b = write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\n")
    assert error_of(resolve, a) == f"{b}:2: extends: extends cycle: a.yaml -> b.yaml -> a.yaml"
    selfref = write(tmp_path, "s.yaml", "extends: s.yaml\n")
    assert error_of(resolve, selfref) == f"{selfref}:1: extends: extends cycle: s.yaml -> s.yaml"


def test_extends_chain_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(extends, "MAX_EXTENDS", 3)
    write(tmp_path, "f0.yaml", "name: x\n")
    for i in range(1, 5):
        write(tmp_path, f"f{i}.yaml", f"extends: f{i - 1}.yaml\n")
    message = error_of(resolve, tmp_path / "f4.yaml")
    assert message == (f"{tmp_path / 'f2.yaml'}:1: extends: extends chain longer than 3: "
                       "f4.yaml -> f3.yaml -> f2.yaml -> f1.yaml")


def test_remove_of_unknown_name(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nsites:\n  - name: zz\n    remove: true\n")
    assert error_of(resolve, child) == (
        f"{child}:4: sites[0]: remove: true, but the parent has no item named 'zz' (allowed: 'a', 'b', 'c')")


def test_duplicate_names_in_a_merged_list(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nsites:\n  - name: a\n  - name: a\n")
    assert error_of(resolve, child) == f"{child}:4: sites[1].name: duplicate name 'a' (also item 0)"


def test_empty_child_list_replaces_and_plain_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nsites: []\nyears: [9, 10]\n")
    doc = resolve(child)
    assert doc.data["sites"] == [] and doc.data["years"] == [9, 10]
    assert doc.lines[("sites",)] == (str(child), 2)


def test_no_extends_is_the_loaded_doc(tmp_path):
    base = write(tmp_path, "base.yaml", BASE)
    loaded, resolved = load_yaml(base), resolve(base)
    assert resolved.data == loaded.data and resolved.lines == loaded.lines
    assert resolved.chain == (str(base),)


def test_resolve_reports_errors_of_the_parent_file(tmp_path):
    parent = write(tmp_path, "base.yaml", "a: 1\na: 2\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\n")
    assert error_of(resolve, child) == f"{parent}:2: a: duplicate key 'a' (first at line 1)"


def test_no_unsafe_loader_anywhere():
    source = Path(loader.__file__).read_text(encoding="utf-8")
    assert "yaml.Loader" not in source and "yaml.load(" not in source and "UnsafeLoader" not in source
    assert issubclass(loader._SafeComposer, yaml.SafeLoader)
    assert os.path.basename(loader.__file__) == "loader.py"


def test_data_files_are_found_beside_the_scenario_that_names_them(tmp_path, monkeypatch):
    (tmp_path / "parent").mkdir()
    (tmp_path / "child").mkdir()
    (tmp_path / "parent" / "p.yaml").write_text(
        "name: p\nmarket:\n  btc:\n    process: {kind: bootstrap, csv: history.csv}\n")
    (tmp_path / "child" / "c.yaml").write_text("extends: ../parent/p.yaml\nname: c\n")
    (tmp_path / "child" / "abs.yaml").write_text(
        f"extends: ../parent/p.yaml\nmarket:\n  btc:\n    process: {{csv: {tmp_path / 'x.csv'}}}\n")
    monkeypatch.chdir(tmp_path / "child")  # the command's directory does not matter
    csv = extends.resolve(tmp_path / "child" / "c.yaml").data["market"]["btc"]["process"]["csv"]
    assert Path(csv).resolve() == (tmp_path / "parent" / "history.csv").resolve()
    absolute = extends.resolve(tmp_path / "child" / "abs.yaml").data["market"]["btc"]["process"]["csv"]
    assert absolute == str(tmp_path / "x.csv")
