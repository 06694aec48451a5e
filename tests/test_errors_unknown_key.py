"""``minersim validate`` on an unknown key.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_unknown_key_with_did_you_mean(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: texas\n    gros_mw: 300\n")
    assert validate(path) == f"{path}:4: sites[1]: unknown key 'gros_mw'; did you mean 'gross_mw'?\n"
