"""``minersim validate`` on a missing required key.

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


def test_missing_required_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: abilene\n    mining_until_conversion: true\n")
    assert validate(path) == f"{path}:3: sites[2]: missing required key 'gross_mw'\n"
