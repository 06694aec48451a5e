"""``minersim validate`` on a YAML syntax error.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nname: [a, b\nsites: []\n")
    assert validate(path) == (f"{path}:3: YAML syntax error: expected ',' or ']', but got ':' "
                              "(while parsing a flow sequence)\n")
