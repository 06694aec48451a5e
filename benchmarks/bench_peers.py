"""Peer benchmark: a peer run against its companies run one by one, and against the world alone.

Run from the repository root::

    python benchmarks/bench_peers.py                      # the shipped universe, 10,000 paths
    python benchmarks/bench_peers.py --paths 20000 --repeat 3

Issue 17's bound: a peer run of N companies costs no more than N company engines plus one
market and network simulation. A company's own run is its engine plus its world (the market
and network under both measures at the run's paths, and under the pricing measure at the
mark's fitting paths), so the bound is::

    sum over companies of (single run - world at the run's paths - world at the fit paths)
        + world at the run's paths + world at the fit paths

Everything runs in this process (``processes=1``), one measurement after another; CPU time is
what to compare on a shared machine, and ``--repeat`` keeps the fastest of each. The ratio
printed last is the peer run's CPU time over the bound: at most 1 meets it.
"""

from __future__ import annotations

import argparse
import time


def _timed(fn, repeat: int) -> tuple[float, float]:
    """Fastest (wall, CPU) seconds of ``repeat`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--universe", default="peers")
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import simulator.run as run_
    from simulator.scenario.universe import load_universe

    companies = load_universe(args.universe)
    first = companies[0].scenario
    fit_paths = first.valuation.marks.fit_paths
    kw = {"paths": args.paths, "seed": args.seed, "processes": 1}

    def single(company):
        run_._MARKS.clear()  # each run fits its own mark, as a fresh process would
        run_.simulate(company.scenario, store_paths=1_000, **kw)

    world = _timed(lambda: run_.simulate_market(first, paths=args.paths, seed=args.seed,
                                                store_paths=args.paths), args.repeat)
    world_fit = _timed(lambda: run_.simulate_market(first, paths=fit_paths, seed=args.seed,
                                                    store_paths=fit_paths), args.repeat)
    print(f"{args.paths:,} paths, {len(companies)} companies, fastest of {args.repeat}; wall / CPU s")
    print(f"  world alone at {args.paths:,} paths   {world[0]:7.1f} {world[1]:7.1f}")
    print(f"  world alone at {fit_paths:,} fit paths  {world_fit[0]:7.1f} {world_fit[1]:7.1f}")
    singles = []
    for company in companies:
        t = _timed(lambda c=company: single(c), args.repeat)
        singles.append(t)
        print(f"  {company.scenario.company.ticker:<6} alone                {t[0]:7.1f} {t[1]:7.1f}")
    peer = _timed(lambda: run_.simulate_peers(companies, store_paths=1_000, **kw), args.repeat)
    total = [sum(t[i] for t in singles) for i in (0, 1)]
    bound = [total[i] - (len(companies) - 1) * (world[i] + world_fit[i]) for i in (0, 1)]
    print(f"  sum of the companies alone     {total[0]:7.1f} {total[1]:7.1f}")
    print(f"  bound: N engines + one world   {bound[0]:7.1f} {bound[1]:7.1f}")
    print(f"  peer run                       {peer[0]:7.1f} {peer[1]:7.1f}")
    print(f"peer run / bound: {peer[0] / bound[0]:.3f} wall, {peer[1] / bound[1]:.3f} CPU; "
          f"peer run / sum alone: {peer[0] / total[0]:.3f} wall, {peer[1] / total[1]:.3f} CPU")


if __name__ == "__main__":
    main()
