"""The layered layout of style.md, enforced by import-linter's contracts in pyproject.toml.

import-linter follows every import, ``from simulator import X`` and imports inside function
bodies included, so a back-edge fails here the moment it is written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_contracts_fail_on_a_back_edge(tmp_path, monkeypatch):
    """The layers contract is live: an analysis module importing the report breaks it."""
    broken = (ROOT / "pyproject.toml").read_text(encoding="utf-8").replace(
        '"simulator.report",\n    "simulator.analysis",', '"simulator.analysis",\n    "simulator.report",')
    config = tmp_path / "pyproject.toml"
    config.write_text(broken, encoding="utf-8")
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(config), no_cache=True, no_logo=True) == 1


def test_help_and_schema_import_no_numerical_library():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom simulator.cli import cli\n"
            "for args in (['--help'], ['run', '--help'], ['schema']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
            "heavy = {'numpy', 'scipy', 'xarray', 'pandas', 'matplotlib', 'dask'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
