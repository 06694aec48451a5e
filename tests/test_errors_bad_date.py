"""``minersim validate`` on an impossible date.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_bad_date(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsimulation:\n  valuation_date: 2025-13-01\n")
    assert validate(path) == (f"{path}:3: simulation.valuation_date: not a valid date "
                              "(got '2025-13-01'; allowed YYYY-MM or YYYY-MM-DD)\n")
