"""``minersim validate`` on ``.nan`` and ``.inf`` where a finite number is needed.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

import pytest
from cli_validate import BASE, validate


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_number(tmp_path, value):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nnetwork:\n  hashrate_ehs: {value}\n")
    assert validate(path) == f"{path}:3: network.hashrate_ehs: must be a finite number (got {value})\n"
