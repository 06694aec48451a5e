"""Shared fixtures; helper modules in tests/ (``support``, ``synthetic``) are importable."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import short_scenario, short_yaml  # noqa: E402


@pytest.fixture(scope="session")
def base12():
    """The shipped base scenario over 12 months, validated (forward value at year 1 only)."""
    return short_scenario(12)


@pytest.fixture(scope="session")
def short(tmp_path_factory):
    """A scenario file: the shipped base case over 12 months, named ``short``."""
    return short_yaml(tmp_path_factory.mktemp("scenario"))
