"""Shared by the tests/test_errors_*.py files: run ``minersim validate`` and expect a clean failure."""

from click.testing import CliRunner

from simulator._files import scenarios_dir
from simulator.cli import cli

BASE = scenarios_dir() / "base.yaml"


def validate(path):
    """Exit status 2, no traceback; return what went to stderr."""
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr
