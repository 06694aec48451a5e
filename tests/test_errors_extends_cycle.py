"""``minersim validate`` on an ``extends:`` cycle.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import validate


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a.yaml\n")
    expected = f"{tmp_path / 'b.yaml'}:2: extends: extends cycle: a.yaml -> b.yaml -> a.yaml\n"
    assert validate(tmp_path / "a.yaml") == expected
