"""``minersim validate`` on ``extends:`` of a missing file.

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


def test_extends_missing_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: mine\nextends: nothere.yaml\n")
    shipped = ", ".join(sorted(p.stem for p in scenarios_dir().glob("*.yaml")))
    assert validate(path) == (f"{path}:2: extends: cannot extend 'nothere.yaml': "
                              f"no such file {tmp_path / 'nothere.yaml'} (allowed: {shipped})\n")
