"""``minersim validate`` on a value of the wrong type.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_wrong_type(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsimulation:\n  horizon_months: ten years\n")
    assert validate(path) == f"{path}:3: simulation.horizon_months: must be a whole number (got 'ten years')\n"
