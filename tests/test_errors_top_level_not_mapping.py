"""``minersim validate`` on a top level that is not a mapping.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import validate


def test_top_level_is_a_list(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("- name: base\n- name: bear\n")
    assert validate(path) == f"{path}:1: the top level must be a mapping of keys, not a list\n"
