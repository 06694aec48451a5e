"""``minersim validate`` on a correlation naming an unknown input.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_correlation_names_unknown_input(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\ncorrelations:\n"
                    "  - between: [market.btc.process.volatility, market.btc.process.volatilty]\n"
                    "    rank_correlation: 0.3\n")
    assert validate(path) == (f"{path}:3: correlations[0].between[1]: 'market.btc.process.volatilty' is not "
                              "an uncertain input; did you mean 'market.btc.process.volatility'?\n")
