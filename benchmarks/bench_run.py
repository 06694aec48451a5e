"""Wall time of ``minersim run`` piece by piece: import, simulate, save, report, and the sizes.

(The 5-second target of issue 5 was withdrawn by issue 13: this script reports where the time
goes, it does not judge it.)

    python benchmarks/bench_run.py [--scenario base] [--paths 10000] [--repeat 1] [--out DIR]
    python benchmarks/bench_run.py --command 9      # the whole command, nine times

``--command N`` times what the user waits for: ``python -m simulator run`` in a fresh
process, N times, and prints each run's wall time with their median and minimum (CPU time
includes every process of the run). Otherwise each phase is timed with
``time.perf_counter`` (wall) and ``time.process_time`` (CPU of this process; on a shared
machine CPU time is the steadier number to compare). Imports are
timed as the CLI pays them, in a fresh interpreter, so run this script as a new process.
Save and report are timed alone, then as the runner does them (both into temporary files,
renamed together).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_T0 = (time.perf_counter(), time.process_time())

from simulator.cube import save  # noqa: E402
from simulator.report.run_report import render_report  # noqa: E402
from simulator.report.outputs import _write_outputs  # noqa: E402
from simulator.scenario import load  # noqa: E402
from simulator.run import simulate  # noqa: E402

_T_IMPORT = (time.perf_counter() - _T0[0], time.process_time() - _T0[1])


class _Clock:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    def __call__(self, name: str, fn, *args, **kw):
        wall, cpu = time.perf_counter(), _cpu()
        out = fn(*args, **kw)
        self.rows.append((name, time.perf_counter() - wall, _cpu() - cpu))
        return out


def _cpu() -> float:
    """CPU seconds of this process and of its finished children."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def _as_run(cube, out: Path) -> None:
    _write_outputs(cube, out / "results.nc", out / "report.html", {}, time.perf_counter())


def _calibration() -> float:
    """Seconds numpy takes to draw 10 M float64 standard normals, best of five."""
    import numpy as np

    gen, buf = np.random.default_rng(0), np.empty(10_000_000)
    gen.standard_normal(out=buf)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        gen.standard_normal(out=buf)
        best = min(best, time.perf_counter() - start)
    return best


def _command(scenario: str, paths: int | None, times: int, out: Path) -> None:
    """Wall and CPU time of the whole ``minersim run`` command, ``times`` times, fresh each time."""
    cmd = [sys.executable, "-m", "simulator", "run", scenario, "--out", str(out)]
    cmd += ["--paths", str(paths)] if paths else []
    print(f"this machine today: numpy draws 10 M standard normals in {_calibration():.3f} s "
          "(the same VM has measured 0.118 to 0.150 s on different days; timings scale with it)")
    walls = []
    for i in range(times):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"  run {i + 1:2d}: {walls[-1]:5.2f} s wall  {cpu:5.2f} s cpu (every process)")
    print(f"{' '.join(cmd[1:])}: median {statistics.median(walls):.2f} s, "
          f"min {min(walls):.2f} s, max {max(walls):.2f} s over {times} runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="base")
    ap.add_argument("--paths", type=int, default=None,
                    help="default: the scenario's (10,000 for base)")
    ap.add_argument("--repeat", type=int, default=1, help="runs after the first (warm) one")
    ap.add_argument("--out", type=Path, default=None, help="keep results.nc/report.html here")
    ap.add_argument("--command", type=int, default=0, metavar="N",
                    help="time the whole command N times instead of its phases")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_run_"))
    out.mkdir(parents=True, exist_ok=True)
    if args.command:
        _command(args.scenario, args.paths, args.command, out)
        return
    print(f"imports (simulate, save, report): {_T_IMPORT[0]:6.2f} s wall  {_T_IMPORT[1]:6.2f} s cpu")
    for run in range(1 + args.repeat):
        clock = _Clock()
        loaded = clock("load scenario", load, args.scenario)
        cube = clock("simulate", simulate, loaded.scenario, args.paths,
                     scenario_yaml=loaded.yaml_text, scenario_sha256=loaded.sha256)
        nc = clock("save results.nc", save, cube, out / "results.nc")
        html = clock("render report", render_report, cube)
        clock("save || report", _as_run, cube, out)
        label = "first run (cold caches)" if run == 0 else f"repeat {run}"
        print(f"\n{args.scenario}, {int(cube.attrs['paths']):,} paths, {label}:")
        for name, wall, cpu in clock.rows:
            print(f"  {name:18s} {wall:6.2f} s wall  {cpu:6.2f} s cpu")
        as_run = [r for r in clock.rows if r[0] not in ("save results.nc", "render report")]
        wall = sum(r[1] for r in as_run)
        cpu = sum(r[2] for r in as_run)
        print(f"  {'total as run':18s} {wall:6.2f} s wall  {cpu:6.2f} s cpu"
              + (f"   (+ imports: {wall + _T_IMPORT[0]:.2f} s wall)" if run == 0 else ""))
        print(f"  results.nc  {nc.stat().st_size / 1e6:7.1f} MB")
        print(f"  report.html {len(html.encode()) / 1e6:7.2f} MB")
    print(f"\noutputs in {out}")


if __name__ == "__main__":
    main()
