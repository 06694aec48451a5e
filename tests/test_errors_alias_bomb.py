"""``minersim validate`` on an alias bomb.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

import time

from cli_validate import validate


def test_alias_bomb(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    stderr = validate(path)
    assert time.perf_counter() - start < 5
    # a4 alone expands to 9**5 = 59,049 strings (about 66,000 nodes), so a5 crosses 100,000.
    assert stderr == (f"{path}:6: a5: too many nodes after alias expansion "
                      "(limit 100,000); is this an alias bomb?\n")
