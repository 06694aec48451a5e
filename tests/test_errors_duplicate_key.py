"""``minersim validate`` on a duplicate key.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

from cli_validate import BASE, validate


def test_duplicate_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nnetwork:\n  hashrate_ehs: 1000\n  block_height: 925344\n  hashrate_ehs: 1100\n")
    assert validate(path) == f"{path}:5: network.hashrate_ehs: duplicate key 'hashrate_ehs' (first at line 3)\n"
