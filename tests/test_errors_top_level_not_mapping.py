"""``minersim validate`` on a top level that is not a mapping.

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


def test_top_level_is_a_list(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("- name: base\n- name: bear\n")
    assert validate(path) == f"{path}:1: the top level must be a mapping of keys, not a list\n"
