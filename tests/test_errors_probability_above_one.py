"""``minersim validate`` on a probability above 1.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_probability_above_one(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nsites:\n  - name: texas\n    conversion:\n      signing_probability: 1.2\n")
    assert validate(path) == (f"{path}:5: sites[1].conversion.signing_probability: "
                              "must be >= 0 and <= 1 (got 1.2)\n")
