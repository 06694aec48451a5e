"""Bad input: a bootstrap history whose price never moves, asked to be rescaled to a volatility.

Found only when the run reads the CSV, so this runs ``minersim run`` rather than ``validate``.
"""

from click.testing import CliRunner

from simulator.cli import cli


def test_flat_history_with_target_volatility_exits_2_and_writes_nothing(tmp_path):
    closes = "".join(f"{2020 + m // 12}-{m % 12 + 1:02d}-01,50000\n" for m in range(24))
    (tmp_path / "flat.csv").write_text("date,close\n" + closes)
    scenario = tmp_path / "flat.yaml"
    scenario.write_text("extends: base\nname: flat\ncorrelations: []\nmarket:\n  btc:\n    process:\n"
                        "      kind: bootstrap\n      csv: flat.csv\n      target_volatility: 0.5\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(scenario), "--paths", "1024", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().endswith(
        "flat.csv: every monthly log return is 0, so there is no volatility to rescale to "
        "market.btc.process.target_volatility; give a history whose returns vary, or drop "
        "target_volatility")
    assert not out.exists() or not any(out.iterdir())
