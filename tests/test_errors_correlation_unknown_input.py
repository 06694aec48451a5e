"""``minersim validate`` on a correlation naming an unknown input.

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


def test_correlation_names_unknown_input(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\ncorrelations:\n"
                    "  - between: [market.btc.process.volatility, market.btc.process.volatilty]\n"
                    "    rank_correlation: 0.3\n")
    assert validate(path) == (f"{path}:3: correlations[0].between[1]: 'market.btc.process.volatilty' is not "
                              "an uncertain input; did you mean 'market.btc.process.volatility'?\n")
