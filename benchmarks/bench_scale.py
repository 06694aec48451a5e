"""Scale benchmark: the engine at 10k, 100k and 1M paths, in one process, on every core, on Dask.

Run from the repository root::

    python benchmarks/bench_scale.py                       # 10k, 100k, 1M serial; 1M parallel
    python benchmarks/bench_scale.py --sizes 10000 100000 --workers-paths 100000 --repeat 3
    python benchmarks/bench_scale.py --sizes 100000 --workers-paths 0   # serial only

Each measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own; with
``--repeat`` the fastest of the repeats is shown (the least disturbed by other load). A
measurement times ``simulate()`` on a shipped scenario: sampling, every engine stage, the
chunk reductions and the cube assembly; not the netCDF write or the report. Both wall and CPU
time are taken (CPU time is what to compare on a shared machine). The floor is numpy's time to
draw as many float64 standard normals as the engine asked its ``Draws`` streams for (counted
call by call), drawn in the same process in chunk-sized pieces into one buffer, timed the
same two ways. The serial rows run every chunk in one process (``processes=1``). The
parallel comparison runs the same paths as ``minersim run`` does by default (a process pool
of one worker per core; its wall time, since its workers' CPU time is not this process's) and on a
local Dask cluster of ``--workers`` processes, which warms its workers first (imports) as the
serial run warms itself, and reports the CPU time of the client and of all workers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _count_normals() -> list[int]:
    """Make chunks use a Draws that counts the normals it hands out (serial only)."""
    from simulator import rng
    from simulator.rng import Draws

    count = [0]

    class Counted(Draws):
        def normal(self, *args, **kwargs):
            out = super().normal(*args, **kwargs)
            count[0] += out.size
            return out

    rng.Draws = Counted  # run_chunk looks it up when it runs
    return count


def _normal_floor(count: int, chunk: int) -> tuple[float, float]:
    """Wall and CPU seconds numpy's default generator takes to draw ``count`` standard normals."""
    gen = np.random.default_rng(0)
    buf = np.empty(chunk, dtype=np.float64)
    gen.standard_normal(out=buf)  # first touch of the buffer is not drawing
    wall, cpu = time.perf_counter(), _cpu_s()
    for _ in range(count // chunk):
        gen.standard_normal(out=buf)
    gen.standard_normal(out=buf[:count % chunk])
    return time.perf_counter() - wall, _cpu_s() - cpu


def measure(paths: int, workers: int, scenario_name: str, processes: int = 1) -> dict[str, float]:
    """One measurement, in this process (``workers=0``: ``processes`` local processes)."""
    from simulator.run import simulate
    from simulator.run.execute import dask_client
    from simulator.scenario import load_scenario

    scenario = load_scenario(scenario_name)
    months = scenario.simulation.horizon_months
    simulate(scenario, paths=1_024, seed=1, processes=1)  # warm imports and caches
    counts = _count_normals() if not workers and processes == 1 else None
    started = time.perf_counter()
    with dask_client(workers=workers or None) as client:
        if client is not None:
            simulate(scenario, paths=2 * 1_024, seed=1, chunk_paths=1_024, client=client)
            workers_cpu = client.run(_cpu_s)
        ready, cpu = time.perf_counter(), _cpu_s()
        cube = simulate(scenario, paths=paths, seed=1, client=client,
                        processes=None if client is not None else processes)
        done, cpu = time.perf_counter(), _cpu_s() - cpu
        out = {"paths": paths, "months": months, "workers": workers, "processes": processes,
               "wall_s": done - ready, "cpu_s": cpu,
               "rss_mb": _peak_rss_mb(),
               "median_value": float(np.nanmedian(cube["value_per_share"].values))}
        if client is not None:
            after = client.run(_cpu_s)
            out.update(workers_cpu_s=sum(after[w] - workers_cpu[w] for w in after),
                       worker_rss_mb=max(client.run(_peak_rss_mb).values()))
    out["total_s"] = time.perf_counter() - started
    if counts is not None:
        floor_wall, floor_cpu = _normal_floor(counts[0], scenario.simulation.chunk_paths * months)
        out.update(normals=counts[0], floor_wall_s=floor_wall, floor_cpu_s=floor_cpu)
    return out


def _run_child(paths: int, workers: int, args: argparse.Namespace,
               processes: int = 1) -> dict[str, float]:
    """The fastest (by wall time) of ``args.repeat`` measurements, each in a fresh process."""
    cmd = [sys.executable, __file__, "--one", str(paths), "--workers", str(workers), "--scenario",
           args.scenario, "--processes", str(processes)]
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"measurement failed: {' '.join(cmd)}\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["wall_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                    help="paths of the serial runs")
    ap.add_argument("--workers-paths", type=int, default=1_000_000,
                    help="paths of the serial vs Dask run (0: no Dask run)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (one thread each)")
    ap.add_argument("--scenario", default="base", help="shipped scenario name or YAML path")
    ap.add_argument("--repeat", type=int, default=1, help="measurements per size; the fastest is shown")
    ap.add_argument("--processes", type=int, default=0,
                    help="local processes of the parallel comparison (default: one per core)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.workers, args.scenario, args.processes)))
        return
    print(f"{'paths':>10} {'months':>6} {'wall s':>7} {'CPU s':>7} {'path-months/s':>14} {'normals':>14} "
          f"{'floor s':>8} {'x floor':>8} {'peak RSS MB':>12}", flush=True)
    rows = {}
    for n in args.sizes:
        r = rows[n] = _run_child(n, 0, args)
        print(f"{n:>10,} {r['months']:>6} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
              f"{n * r['months'] / r['wall_s']:>14,.0f} {r['normals']:>14,} {r['floor_cpu_s']:>8.2f} "
              f"{r['cpu_s'] / r['floor_cpu_s']:>8.1f} {r['rss_mb']:>12,.0f}", flush=True)
    if rows:
        print("(x floor = CPU s / floor CPU s; floor = numpy drawing as many float64 normals)")
    sizes = sorted(rows)
    if len(sizes) > 1:
        a, b = sizes[-2], sizes[-1]
        print(f"scaling {b:,} / {a:,} paths: {rows[b]['cpu_s'] / rows[a]['cpu_s']:.2f}x CPU time "
              f"({rows[b]['wall_s'] / rows[a]['wall_s']:.2f}x wall) for {b / a:.0f}x paths", flush=True)
    n = args.workers_paths
    if n <= 0:
        return
    from simulator.run.execute import local_processes

    serial = rows.get(n) or _run_child(n, 0, args)
    procs = args.processes or local_processes()
    local = _run_child(n, 0, args, processes=procs)
    print(f"{n:,} paths: serial {serial['wall_s']:.1f} s wall, {serial['cpu_s']:.1f} s CPU "
          f"(peak RSS {serial['rss_mb']:,.0f} MB); {procs} local processes (the default) "
          f"{local['wall_s']:.1f} s wall (peak RSS {local['rss_mb']:,.0f} MB here); "
          f"speed-up {serial['wall_s'] / local['wall_s']:.2f}x", flush=True)
    par = _run_child(n, args.workers, args)
    print(f"{n:,} paths: --workers {args.workers} {par['wall_s']:.1f} s wall, "
          f"CPU {par['workers_cpu_s']:.1f} s workers + {par['cpu_s']:.1f} s client; "
          f"{par['total_s']:.1f} s with cluster start/stop (peak RSS client {par['rss_mb']:,.0f} MB, "
          f"worker {par['worker_rss_mb']:,.0f} MB); speed-up {serial['wall_s'] / par['wall_s']:.2f}x",
          flush=True)


if __name__ == "__main__":
    main()
