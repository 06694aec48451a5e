"""Shared fixtures; helper modules in tests/ (``support``, ``synthetic``) are importable."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import short_scenario, short_yaml  # noqa: E402

TODAY = __import__("datetime").date(2026, 12, 7)
"""The suite's calendar: the shipped scenarios (valued 2025-12-01) are fresh on it, whatever
the machine's date. A valuation date more than two years old warns, and warnings are errors."""


@pytest.fixture(scope="session", autouse=True)
def pinned_today():
    """Pin the one clock the scenario checks read (``models.today``) in this process, before
    any fixture loads a scenario. Subprocesses keep the real clock: they never treat a
    warning as an error."""
    from simulator.scenario import models

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(models, "today", lambda: TODAY)
        yield


@pytest.fixture(scope="session")
def base12():
    """The shipped base scenario over 12 months, validated (forward value at year 1 only)."""
    return short_scenario(12)


@pytest.fixture(scope="session")
def short(tmp_path_factory):
    """A scenario file: the shipped base case over 12 months, named ``short``."""
    return short_yaml(tmp_path_factory.mktemp("scenario"))
