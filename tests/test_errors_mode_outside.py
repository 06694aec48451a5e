"""``minersim validate`` on a triangular mode outside [low, high].

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_mode_outside_low_high(tmp_path):
    path = tmp_path / "s.yaml"
    spec = "{dist: triangular, low: 45, mode: 80, high: 65}"
    path.write_text(f"extends: {BASE}\ncompany:\n  power:\n    price_usd_per_mwh: {spec}\n")
    assert validate(path) == (f"{path}:4: company.power.price_usd_per_mwh: "
                              "mode must lie in [low, high] (got mode=80.0; allowed 45.0 to 65.0)\n")
