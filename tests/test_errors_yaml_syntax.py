"""``minersim validate`` on a YAML syntax error.

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


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nname: [a, b\nsites: []\n")
    assert validate(path) == (f"{path}:3: YAML syntax error: expected ',' or ']', but got ':' "
                              "(while parsing a flow sequence)\n")
