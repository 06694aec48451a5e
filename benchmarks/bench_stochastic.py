"""Benchmark the stochastic stage: draws + BTC price + fees + network.

Compares the stage's wall and CPU time (best of ``--repeat``) with the time numpy alone needs
to draw the same number of float64 standard normals (``default_rng().standard_normal``), for
both network models, run chunk by chunk as ``chain._market`` runs it. Target: ratio <= 2.
Also prints a lower bound for any NumPy version of the stage (:func:`_bound`): drawing the
normals plus the three ``exp`` and two ``cumsum`` passes that its outputs cannot do without.

    python benchmarks/bench_stochastic.py [--paths 100000] [--months 120] [--chunk 10240]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from simulator.engine import market, network, timegrid
from simulator.rng import Draws, chunk_plan

S0 = 84_500.0
NORMAL_STREAMS = ("btc_price.z", "fees.z", "network.z")


def run_stage(seed: int, start: int, stop: int, months: int, model: str) -> network.NetworkPaths:
    """One chunk of the stochastic stage, as the chain runs it."""
    draws = Draws(seed, start, stop, months)
    days = timegrid.days_in_month(timegrid.calendar(np.datetime64("2025-12"), months))
    ret, shock = np.empty((stop - start, months)), np.empty((stop - start, months))
    price = market.gbm(S0, months, {"z": draws.normal("btc_price.z")}, mu=0.04, sigma=0.45,
                       log_returns_out=ret, btc_shock_out=shock)
    fees = market.fees_per_block(0.03, 0.5, 0.8, months, draws.normal("fees.z"), shock, 0.3)
    params = ({"growth_year1": 0.30, "growth_decay_per_year": 0.3, "btc_beta": 0.2,
               "vol": 0.15, "rho_btc": 0.3} if model == "growth" else
              {"marginal_j_per_th": 25.0, "efficiency_improvement_per_year": 0.1,
               "power_usd_per_mwh": 60.0, "entry_speed": 0.2, "exit_speed": 0.1, "vol": 0.15})
    return network.simulate_network(
        model, h0_ehs=1_068.7, height0=925_920, btc_price=price, fees_per_block=fees, days=days,
        subsidy_fn=functools.partial(timegrid.subsidy, halving_heights=timegrid.HALVING_HEIGHTS),
        z_hash=draws.normal("network.z"), params=params, btc_price0=S0, btc_log_return=ret,
        btc_shock=shock)


def _bound(start: int, stop: int, months: int) -> None:
    """The least any NumPy version of the stage must do: draw its normals, then one ``exp``
    for each of the three outputs that are exponentials (BTC price, fees, network hashrate)
    and one ``cumsum`` for each of the two random walks (log price, log hashrate)."""
    draws = Draws(1, start, stop, months)
    z = [draws.normal(s) for s in NORMAL_STREAMS]
    np.cumsum(z[0], axis=1, out=z[0])
    np.cumsum(z[2], axis=1, out=z[2])
    for x in z:
        np.exp(x, out=x)


def _best(fn, repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``repeat`` runs (CPU time is steadier on a shared host)."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--chunk", type=int, default=10_240)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, months = args.paths, args.months
    count = len(NORMAL_STREAMS) * n * months

    def baseline():
        gen = np.random.default_rng(1)
        # Same count of normals, drawn per stream as the stage does.
        for _ in NORMAL_STREAMS:
            gen.standard_normal((n, months))

    w_base, c_base = _best(baseline, args.repeat)
    print(f"numpy standard_normal, {count:,} normals: wall {w_base:.3f} s, cpu {c_base:.3f} s")
    w_bound, c_bound = _best(lambda: [_bound(a, b, months) for a, b in chunk_plan(n, args.chunk)],
                             args.repeat)
    print(f"lower bound (the normals + 3 exp + 2 cumsum, float64, chunks of {args.chunk:,}): "
          f"wall {w_bound:.3f} s (ratio {w_bound / w_base:.2f}), cpu {c_bound:.3f} s "
          f"(ratio {c_bound / c_base:.2f})")
    for model in ("growth", "cost_curve"):
        for chunk in (args.chunk, n):
            plan = chunk_plan(n, chunk)
            w, c = _best(lambda: [run_stage(1, a, b, months, model) for a, b in plan], args.repeat)
            print(f"stage ({model}, chunks of {chunk:,}): wall {w:.3f} s (ratio {w / w_base:.2f}), "
                  f"cpu {c:.3f} s (ratio {c / c_base:.2f})")


if __name__ == "__main__":
    main()
