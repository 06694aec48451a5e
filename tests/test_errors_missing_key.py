"""``minersim validate`` on a missing required key.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_missing_required_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: abilene\n    mining_until_conversion: true\n")
    assert validate(path) == f"{path}:3: sites[2]: missing required key 'gross_mw'\n"
