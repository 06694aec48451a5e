"""Print the README's "Findings" table: where the shipped scenarios land.

Runs ``simulate()`` on base, bull, bear and no-pivot at 8,192 paths with seed 20251201 and
prints one Markdown row per scenario: median value per share [USD/share] with its Monte Carlo
SE, P5 - P95, P(value > market price), the share of paths at $0, the forward medians at years
1/2/3 and the R² of ln(forward value) on ln(BTC price) at years 1/2/3 over the paths with a
positive forward value. Every statistic comes from :mod:`simulator.analysis`.

    python docs/findings.py [--paths 8192] [--seed 20251201]
"""

from __future__ import annotations

import argparse

import numpy as np

from simulator.analysis import decoupling, stats
from simulator.scenario import load_scenario
from simulator.run import simulate

SCENARIOS = ("base", "bull", "bear", "no-pivot")
YEARS = (1, 2, 3)
"""Forward years shown [years after the valuation date]."""


def row(name: str, paths: int, seed: int) -> tuple[str, float]:
    """One table row for scenario ``name``, and its market price [USD/share]."""
    scenario = load_scenario(name)
    price = scenario.company.share_price_usd
    # Keep every path's series: the R² runs over all paths, not a stored sample.
    cube = simulate(scenario, paths=paths, seed=seed, store_paths=paths)
    value = np.asarray(cube["value_per_share"].values, dtype=np.float64)
    s = stats.summary(value, threshold=price)
    forward = cube["value_per_share_forward"]
    medians = [stats.summary(forward.sel(horizon_year=y).values)["median"] for y in YEARS]
    r2 = {r["year"]: r["r2"] for r in decoupling.btc_beta(cube)["rows"]}
    cells = [
        name,
        f"{s['median']:.2f} ({s['median_se']:.2f})",
        f"{s['percentiles'][0.05]['value']:.2f} - {s['percentiles'][0.95]['value']:.2f}",
        f"{s['prob_above']['p']:.1%}",
        f"{np.mean(value[~np.isnan(value)] <= 0):.0%}",
        " / ".join(f"{m:.2f}" for m in medians),
        " / ".join(f"{r2[y]:.2f}" for y in YEARS),
    ]
    return "| " + " | ".join(cells) + " |", price


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=8_192)
    ap.add_argument("--seed", type=int, default=20_251_201)
    args = ap.parse_args()
    rows = [row(name, args.paths, args.seed) for name in SCENARIOS]
    price = rows[0][1]
    print(f"`simulate()` at {args.paths:,} paths, seed {args.seed}, market price ${price:.2f}:\n")
    print(f"| scenario | median $/share (SE) | P5 - P95 $/share | P(value > ${price:.2f}) | paths at $0 "
          f"| forward median $/share yr 1 / 2 / 3 | R² on BTC yr 1 / 2 / 3 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for text, _ in rows:
        print(text)


if __name__ == "__main__":
    main()
