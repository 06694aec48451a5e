"""Print the README's "Findings" tables: where the shipped scenarios land, and why.

Runs ``simulate()`` on base, bull, bear and no-pivot at 8,192 paths with seed 20251201 and
prints two Markdown tables.

1. One row per scenario: the fair value per share [USD/share] with its Monte Carlo SE
   (pricing measure), the share of pricing paths worth nothing, the 12-month forecast median
   and P5 - P95 and the probability the 12-month mark exceeds today's market price
   (real-world measure), the forecast medians at years 1/2/3, and the BTC beta and R² of the
   stock's 12-month return at years 1/2/3 over every real-world path (one that ends worthless
   included).
2. The base case's fair value by component (the report's bridge): the pricing-measure mean
   over paths of each part per basic share, then limited liability and dilution.

    python docs/findings.py [--paths 8192] [--seed 20251201]
"""

from __future__ import annotations

import argparse

import numpy as np

from simulator.analysis import decoupling, stats
from simulator.report.run_report import fair_value_bridge, signing_rows
from simulator.run import simulate
from simulator.scenario import load_scenario

SCENARIOS = ("base", "bull", "bear", "no-pivot")
YEARS = (1, 2, 3)
"""Forward years shown [years after the valuation date]."""


def row(name: str, paths: int, seed: int):
    """One table row for scenario ``name``, its market price [USD/share] and its cube."""
    scenario = load_scenario(name)
    price = scenario.company.share_price_usd
    # Keep every path's series: the regressions run over all paths, not a stored sample.
    cube = simulate(scenario, paths=paths, seed=seed, store_paths=paths)
    value = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    forward = cube["forward_value_per_share"]
    f12 = stats.summary(forward.sel(horizon=12).values, threshold=price)
    medians = [stats.summary(forward.sel(horizon=12 * y).values)["median"] for y in YEARS]
    beta = {r["year"]: r for r in decoupling.btc_beta(cube)["rows"]}
    cells = [
        name,
        f"{cube.attrs['fair_value_per_share']:.2f} ({cube.attrs['fair_value_se']:.2f})",
        f"{np.mean(value[~np.isnan(value)] <= 0):.0%}",
        f"{f12['median']:.2f} ({f12['percentiles'][0.05]['value']:.2f} - "
        f"{f12['percentiles'][0.95]['value']:.2f})",
        f"{f12['prob_above']['p']:.1%}",
        " / ".join(f"{m:.2f}" for m in medians),
        " / ".join(f"{beta[y]['beta']:.2f}" for y in YEARS),
        " / ".join(f"{beta[y]['r2']:.2f}" for y in YEARS),
    ]
    return "| " + " | ".join(cells) + " |", price, cube


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=8_192)
    ap.add_argument("--seed", type=int, default=20_251_201)
    args = ap.parse_args()
    rows = [row(name, args.paths, args.seed) for name in SCENARIOS]
    price = rows[0][1]
    print(f"`simulate()` at {args.paths:,} paths, seed {args.seed}, market price ${price:.2f}:\n")
    print(f"| scenario | fair value $/share (SE) | pricing paths at $0 | 12-month forecast "
          f"median (P5 - P95) $/share | P(12-month mark > ${price:.2f}) | forecast median yr 1 / 2 / 3 "
          f"| BTC beta yr 1 / 2 / 3 | R² on BTC yr 1 / 2 / 3 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for text, _, _ in rows:
        print(text)
    base = rows[0][2]
    fair = float(base.attrs["fair_value_per_share"])
    bridge, _, _ = fair_value_bridge(base, price, fair)
    print("\nBase fair value by component (pricing measure, per basic share):\n")
    print("| component | $/share |")
    print("| --- | --- |")
    for r in bridge:
        print(f"| {r['label']} | {r['value']} |")
    print("\nBase fair value by signing state (pricing measure):\n")
    print("| by the horizon | share of paths | mean $/share (SE) | contribution |")
    print("| --- | --- | --- | --- |")
    for r in signing_rows(base, fair):
        print(f"| {r['state']} | {r['share']} | {r['mean']} ({r['se']}) | {r['contribution']} |")


if __name__ == "__main__":
    main()
