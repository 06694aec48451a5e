"""The public API works by attribute access, any number of times, in any order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import simulator

ROOT = Path(__file__).resolve().parent.parent
API = ("load_scenario", "simulate", "save", "load")


def test_notebook_use_in_a_fresh_interpreter(tmp_path):
    # The README's notebook use, twice over and with submodules imported in between: in a fresh
    # interpreter, since this test process has imported every submodule already.
    code = textwrap.dedent(f"""
        import simulator
        s = simulator.load_scenario("base")
        a = simulator.simulate(s, paths=1024, seed=1, processes=1)
        b = simulator.simulate(s, paths=1024, seed=2, processes=1)
        import simulator.run, simulator.cube, simulator.scenario, simulator.report.run_report
        c = simulator.simulate(s, paths=1024, seed=1, processes=1)
        path = simulator.save(c, {str(tmp_path / "c.nc")!r})
        d = simulator.load(path)
        assert float(a.value_per_share.mean()) == float(c.value_per_share.mean())
        assert float(a.value_per_share.mean()) != float(b.value_per_share.mean())
        assert (d.value_per_share.values == c.value_per_share.values).all()
        for name in {API!r}:
            assert callable(getattr(simulator, name)), name
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_every_public_name_is_callable_here_too():
    for name in API:
        assert callable(getattr(simulator, name)), name
    assert set(API) <= set(dir(simulator))
