"""``minersim validate`` on an unknown key.

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


def test_unknown_key_with_did_you_mean(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: texas\n    gros_mw: 300\n")
    assert validate(path) == f"{path}:4: sites[1]: unknown key 'gros_mw'; did you mean 'gross_mw'?\n"
