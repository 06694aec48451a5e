"""``minersim validate`` on an unknown distribution name.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_unknown_distribution(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\ncompany:\n  power:\n    price_usd_per_mwh:\n      dist: triangulr\n"
                    "      low: 45\n      mode: 56\n      high: 65\n")
    assert validate(path) == (
        f"{path}:5: company.power.price_usd_per_mwh.dist: unknown dist 'triangulr' (allowed: fixed, uniform, "
        "triangular, pert, normal, lognormal, beta, bernoulli, choice, month_range, scipy); "
        "did you mean 'triangular'?\n")
