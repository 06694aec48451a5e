"""``minersim validate`` on ``extends:`` of a missing file.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import validate

from simulator._files import scenarios_dir


def test_extends_missing_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: mine\nextends: nothere.yaml\n")
    shipped = ", ".join(sorted(p.stem for p in scenarios_dir().glob("*.yaml")))
    assert validate(path) == (f"{path}:2: extends: cannot extend 'nothere.yaml': "
                              f"no such file {tmp_path / 'nothere.yaml'} (allowed: {shipped})\n")
