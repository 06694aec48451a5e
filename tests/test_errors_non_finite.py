"""``minersim validate`` on ``.nan`` and ``.inf`` where a finite number is needed.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from click.testing import CliRunner

from simulator._files import scenarios_dir
from simulator.cli import cli

BASE = scenarios_dir() / "base.yaml"


def validate(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


import pytest


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_number(tmp_path, value):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nnetwork:\n  hashrate_ehs: {value}\n")
    assert validate(path) == f"{path}:3: network.hashrate_ehs: must be a finite number (got {value})\n"
