"""``minersim validate`` on a correlation matrix that is not positive semi-definite.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_correlation_matrix_not_psd(tmp_path):
    path = tmp_path / "s.yaml"
    a, b, c = "market.btc.process.volatility", "market.fees.median_btc_per_block", "network.model.efficiency_improvement_per_year"
    path.write_text(f"extends: {BASE}\ncorrelations:\n"
                    f"  - {{between: [{a}, {b}], rank_correlation: 0.9}}\n"
                    f"  - {{between: [{a}, {c}], rank_correlation: 0.9}}\n"
                    f"  - {{between: [{b}, {c}], rank_correlation: -0.9}}\n")
    assert validate(path) == (f"{path}:2: correlations: the correlation matrix over {a}, {b}, {c} "
                              "is not positive semi-definite; loosen the correlations\n")
