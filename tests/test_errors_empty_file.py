"""``minersim validate`` on an empty file.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import validate


def test_empty_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("# nothing but a comment\n")
    assert validate(path) == f"{path}: file is empty\n"
