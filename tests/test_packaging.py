"""The wheel ships templates and scenarios: an installed minersim works outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_wheel_validates_shipped_scenario_elsewhere(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # Build from a clean copy: setuptools' build/ directory in the checkout can hold stale modules.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
                   check=True, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH"}}
    out = subprocess.run([bin_dir / "minersim", "validate", "base", "no-pivot"], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "base.yaml: ok" in out.stdout and "no-pivot.yaml: ok" in out.stdout
    where = subprocess.run(
        [python, "-c", "import simulator, simulator._files as f; print(simulator.__file__);"
                       "print(f.scenarios_dir()); print(f.templates_dir());"
                       "print(sorted(p.name for p in f.templates_dir().iterdir()))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert str(env_dir) in where[0], "the installed package, not the source tree, was imported"
    assert str(env_dir) in where[1] and str(env_dir) in where[2]
    assert "report.html.j2" in where[3]


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject.toml names the packages one by one: a new folder left out breaks the install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "simulator").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
