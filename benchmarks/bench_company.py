"""Wall time of ``run_company`` at 100,000 paths x 120 months on synthetic market arrays.

Run: ``python benchmarks/bench_company.py [paths] [months]``. The market arrays are a GBM
BTC price with 2.5%-a-month network growth and a halving at month 28; two sites (one with
project debt, tenant default and re-let), two convertibles with a capped call on the first,
and a cash-floor treasury, so every stage runs.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from simulator.engine.chain import (CapitalParams, CompanyParams, DebtParams, Deployment,
                                    FleetParams, MarketPaths, SiteParams, TreasuryParams,
                                    company_shocks_needed, run_company)


def synthetic(paths: int, months: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((paths, months))
    sigma, dt = 0.45, 1 / 12
    price = 84_500.0 * np.exp(np.cumsum((0.04 - sigma**2 / 2) * dt + sigma * np.sqrt(dt) * z,
                                        axis=1))
    network = 1069.0 * 1.025 ** np.arange(months)[None, :] * np.ones((paths, 1))
    subsidy = np.where(np.arange(months) < 28, 3.125, 1.5625)[None, :] * np.ones((paths, 1))
    fees = np.full((paths, months), 0.03)
    hashprice = (subsidy + fees) * 144 * price / (network * 1000)
    days = np.full(months, 30.4375)
    market = MarketPaths(np.arange(months).astype("datetime64[M]"), days, price, fees, subsidy,
                         days[None, :] * 144 * np.ones((paths, 1)), network, hashprice, 84_500.0)
    sites = (
        SiteParams("sandersville", 250.0, rng.uniform(1.3, 1.45, paths),
                   rng.integers(-1, 24, paths), rng.integers(8, 25, paths),
                   rng.triangular(102, 154, 189, paths), escalator=0.025, term_years=15,
                   capex_usd_per_mw_it=10e6, financing="project_debt", loan_to_cost=0.8,
                   debt_rate=0.071, amortisation_years=10, default_hazard_monthly=0.002,
                   downtime_months=6, relet_rate_usd_per_kw_month=130.0,
                   renewal_probability=0.7),
        SiteParams("texas", 285.0, 1.35, rng.integers(6, 30, paths), rng.integers(12, 25, paths),
                   154.0, escalator=0.025, capex_usd_per_mw_it=10e6,
                   tranches=((0.7, 18), (0.3, 24))),
    )
    params = CompanyParams(
        fleet=FleetParams(50.0, 16.07, 1027.0 + 285.0, 0.92, rng.uniform(45, 65, paths),
                          site_opex_usd_per_mw_month=5_000.0, sga_usd_per_month=15e6,
                          sga_growth=0.03, deployments=(Deployment(3, 5.7, 13.5, 15.0),)),
        treasury=TreasuryParams(13_011.0, "cash_floor", floor_usd=100e6),
        capital=CapitalParams(460e6, 255.58e6, (
            DebtParams("notes_2030", "convertible", 650e6, maturity_month=54,
                       conversion_price=14.80, capped_call_cap_price=24.66),
            DebtParams("notes_2032", "convertible", 1150e6, maturity_month=74,
                       conversion_price=19.16))),
        sites=sites)
    shocks = {k: rng.random((paths, c)) for k, _, c in company_shocks_needed(params, months)}
    return market, params, shocks


def main(paths: int = 100_000, months: int = 120, chunk: int = 10_000) -> None:
    market, params, shocks = synthetic(paths, months)
    start = time.perf_counter()
    out = run_company(market, params, shocks)
    wall = time.perf_counter() - start
    print(f"run_company: {paths:,} paths x {months} months in one call: {wall:.2f} s "
          f"({wall / paths * 1e6:.1f} us/path); median value/share "
          f"{np.nanmedian(out.value_per_share):.2f} USD")
    wall = 0.0
    for seed in range(paths // chunk):
        market, params, shocks = synthetic(chunk, months, seed)
        start = time.perf_counter()
        run_company(market, params, shocks)
        wall += time.perf_counter() - start
    print(f"run_company: {paths // chunk} chunks of {chunk:,} paths: {wall:.2f} s in total")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
