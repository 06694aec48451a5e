"""``minersim validate`` on negative megawatts.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_negative_mw(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: texas\n    gross_mw: -5\n")
    assert validate(path) == f"{path}:4: sites[1].gross_mw: must be >= 0 (got -5)\n"
