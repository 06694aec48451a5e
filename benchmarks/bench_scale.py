"""Scale benchmark: the full engine at 10k, 100k and 1M paths, serial and on 2 Dask workers.

Run from the repository root::

    python benchmarks/bench_scale.py                       # 10k, 100k, 1M serial; 1M on 2 workers
    python benchmarks/bench_scale.py --sizes 10000 100000 --workers-paths 100000

Each measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own. A
measurement times ``simulate()`` on the shipped ``base`` scenario: sampling, every engine
stage, the chunk reductions and the cube assembly; not the netCDF write or the report. The
floor is numpy's time to draw as many standard normals as the engine asked its ``Draws``
streams for (counted request by request), drawn in the same process in chunk-sized pieces.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def _count_draws() -> dict[str, int]:
    """Make ``simulator.parallel`` use a Draws that counts every value it hands out (serial only)."""
    from simulator import parallel
    from simulator.rng import Draws

    counts = {"normal": 0, "uniform": 0}

    class Counted(Draws):
        def _draw(self, stream, kind, cols):
            out = super()._draw(stream, kind, cols)
            counts[kind] += out.size
            return out

    parallel.Draws = Counted
    return counts


def _normal_floor(count: int, chunk: int) -> float:
    """Seconds numpy's default generator takes to draw ``count`` standard normals."""
    gen = np.random.default_rng(0)
    buf = np.empty(chunk, dtype=np.float64)
    start = time.perf_counter()
    for _ in range(count // chunk):
        gen.standard_normal(out=buf)
    gen.standard_normal(out=buf[:count % chunk])
    return time.perf_counter() - start


def measure(paths: int, workers: int | None, scenario_name: str) -> dict[str, float]:
    """One measurement, in this process."""
    from simulator.parallel import dask_client
    from simulator.scenario import load_scenario
    from simulator.simulate import simulate

    scenario = load_scenario(scenario_name)
    months = scenario.simulation.horizon_months
    simulate(scenario, paths=1_024, seed=1)  # warm imports and caches
    counts = _count_draws() if workers is None else None
    started = time.perf_counter()
    with dask_client(workers=workers) as client:
        ready = time.perf_counter()
        cube = simulate(scenario, paths=paths, seed=1, client=client)
        done = time.perf_counter()
        worker_rss = max(client.run(_peak_rss_mb).values()) if client is not None else 0.0
    out = {"paths": paths, "months": months, "workers": workers or 0, "wall_s": done - ready,
           "total_s": time.perf_counter() - started, "rss_mb": _peak_rss_mb(), "worker_rss_mb": worker_rss,
           "median_value": float(np.nanmedian(cube["value_per_share"].values))}
    if counts is not None:
        chunk = scenario.simulation.chunk_paths * months
        out.update(normals=counts["normal"], uniforms=counts["uniform"],
                   normal_floor_s=_normal_floor(counts["normal"], chunk))
    return out


def _run_child(paths: int, workers: int | None, scenario: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--one", str(paths), "--scenario", scenario]
    if workers:
        cmd += ["--workers", str(workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--workers-paths", type=int, default=1_000_000, help="size of the serial vs 2-worker run")
    ap.add_argument("--scenario", default="base")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.workers, args.scenario)))
        return
    print(f"{'paths':>10} {'months':>6} {'wall s':>8} {'path-months/s':>14} {'normals':>14} "
          f"{'floor s':>8} {'x floor':>8} {'peak RSS MB':>12}", flush=True)
    rows = {}
    for n in args.sizes:
        r = rows[n] = _run_child(n, None, args.scenario)
        print(f"{n:>10,} {r['months']:>6} {r['wall_s']:>8.1f} {n * r['months'] / r['wall_s']:>14,.0f} "
              f"{r['normals']:>14,} {r['normal_floor_s']:>8.2f} {r['wall_s'] / r['normal_floor_s']:>8.1f} "
              f"{r['rss_mb']:>12,.0f}", flush=True)
    sizes = sorted(rows)
    if len(sizes) > 1:
        a, b = sizes[-2], sizes[-1]
        print(f"scaling {b:,} / {a:,} paths: {rows[b]['wall_s'] / rows[a]['wall_s']:.1f}x time "
              f"for {b / a:.0f}x paths", flush=True)
    n = args.workers_paths
    serial = rows.get(n) or _run_child(n, None, args.scenario)
    par = _run_child(n, 2, args.scenario)
    print(f"{n:,} paths: serial {serial['wall_s']:.1f} s (peak RSS {serial['rss_mb']:,.0f} MB); "
          f"--workers 2 {par['wall_s']:.1f} s simulate, {par['total_s']:.1f} s with cluster start/stop "
          f"(peak RSS client {par['rss_mb']:,.0f} MB, worker {par['worker_rss_mb']:,.0f} MB); "
          f"speed-up {serial['wall_s'] / par['wall_s']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
