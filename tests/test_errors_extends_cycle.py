"""``minersim validate`` on an ``extends:`` cycle.

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


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a.yaml\n")
    expected = f"{tmp_path / 'b.yaml'}:2: extends: extends cycle: a.yaml -> b.yaml -> a.yaml\n"
    assert validate(tmp_path / "a.yaml") == expected
