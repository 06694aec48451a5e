"""The layered layout of style.md, enforced: no back-edges, no heavy imports where they don't belong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "simulator"

# layer of each module (style.md, "Layout of simulator/"); a module may import only smaller layers.
LAYERS = {
    "errors": 0, "units": 0, "_files": 0,
    "_xarray": 0.5,  # keeps xarray from importing dask until dask is in use
    "_fork": 0.5,  # prepared child and forked helpers; uses _files' signal guard and errors
    "_memory": 0,  # glibc's malloc told to keep freed pages; the console command calls it
    "scenario": 1,
    "history": 1.5,  # reads the bootstrap CSV a scenario names, once per run, for the engine
    "rng": 2, "sampling": 2.5,  # sampling draws its unit hypercube from rng (style.md notes it)
    "engine": 3,  # engine/chain.py alone imports other engine modules (params holds its dataclasses)
    "reduce": 3.9,  # chunk results into one run: buffers, stored sample, block statistics
    "parallel": 4, "cube": 4,
    "simulate": 5,
    "analysis": 6,
    "charts": 7,
    "report_html": 7.8,  # formatters, figures, Jinja2 and self-containment shared by every HTML page
    "report_drivers": 7.9,  # drivers and breakevens of one run; report renders them, runner calls analyse
    "report": 8, "export": 8,
    "report_compare": 8.2,  # the compare page; shares report_html with the one-run report
    "runner": 8.5,  # runner writes the cube and the report together
    "cli": 9,
}
HEAVY_FOR_ENGINE = {"xarray", "matplotlib", "jinja2", "click", "yaml", "pydantic", "scipy", "dask", "pandas"}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.name in {"__init__", "__main__"} and len(rel.parts) == 1:
            continue
        yield rel.parts, path


def _imports(path: Path, top_level_only: bool = False):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _layer(parts: tuple[str, ...]) -> int:
    return LAYERS[parts[0]]


@pytest.mark.parametrize("parts,path", list(_modules()), ids=lambda x: "/".join(x) if isinstance(x, tuple) else "")
def test_imports_point_down(parts, path):
    assert parts[0] in LAYERS, f"{path}: add this module to style.md's layer table and to LAYERS"
    own = _layer(parts)
    for name in _imports(path):
        if not name.startswith("simulator."):
            continue
        target = tuple(name.split(".")[1:])
        if target[0] == parts[0] and len(parts) > 1:
            continue  # within a package (scenario/*, engine/* are checked separately)
        assert _layer(target) < own or target[0] == parts[0], f"{path}: imports upward: {name}"


def test_engine_imports_only_numpy_units_errors():
    for path in sorted((PKG / "engine").glob("*.py")):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in HEAVY_FOR_ENGINE, f"{path}: engine imports {name}"
            if name.startswith("simulator."):
                allowed = name in {"simulator.units", "simulator.errors"} or (
                    path.stem == "chain" and name.startswith("simulator.engine"))
                assert allowed, f"{path}: engine stage imports {name}"


def test_scenario_imports_no_numpy_at_module_level():
    for path in sorted((PKG / "scenario").glob("*.py")):
        for name in _imports(path, top_level_only=True):
            assert name.split(".")[0] not in {"numpy", "scipy", "xarray", "matplotlib"}, f"{path}: {name}"


def test_charts_and_analysis_do_not_import_presentation_upward():
    for path in sorted((PKG / "analysis").glob("*.py")):
        assert not any(n.startswith("simulator.charts") for n in _imports(path)), path
    if (PKG / "charts.py").exists():
        assert not any(n.startswith("simulator.report") for n in _imports(PKG / "charts.py"))
