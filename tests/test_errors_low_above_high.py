"""``minersim validate`` on a distribution with low above high.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_low_above_high(tmp_path):
    path = tmp_path / "s.yaml"
    spec = "{dist: uniform, low: 70, high: 50}"
    path.write_text(f"extends: {BASE}\ncompany:\n  power:\n    price_usd_per_mwh: {spec}\n")
    assert validate(path) == (f"{path}:4: company.power.price_usd_per_mwh: "
                              "low must be < high (got low=70.0, high=50.0)\n")
