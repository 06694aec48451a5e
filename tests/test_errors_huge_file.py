"""``minersim validate`` on a 50 MB file.

Expect exit 2, one ``file:line: key.path: message`` line on stderr, no traceback.
"""

import time

from cli_validate import validate


def test_fifty_megabyte_file(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:  # sparse, so nothing is written to disk
        fh.truncate(50_000_000)
    start = time.perf_counter()
    assert validate(path) == f"{path}: file is 50.0 MB; the limit is 1 MiB\n"
    assert time.perf_counter() - start < 1
