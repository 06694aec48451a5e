"""``minersim validate`` on a correlation matrix that is not positive semi-definite.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from click.testing import CliRunner

from simulator._files import scenarios_dir
from simulator.cli import cli

BASE = scenarios_dir() / "base.yaml"


def validate(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_correlation_matrix_not_psd(tmp_path):
    path = tmp_path / "s.yaml"
    a, b, c = "market.btc.process.volatility", "market.fees.median_btc_per_block", "network.model.efficiency_improvement_per_year"
    path.write_text(f"extends: {BASE}\ncorrelations:\n"
                    f"  - {{between: [{a}, {b}], rank_correlation: 0.9}}\n"
                    f"  - {{between: [{a}, {c}], rank_correlation: 0.9}}\n"
                    f"  - {{between: [{b}, {c}], rank_correlation: -0.9}}\n")
    assert validate(path) == (f"{path}:2: correlations: the correlation matrix over {a}, {b}, {c} "
                              "is not positive semi-definite; loosen the correlations\n")
