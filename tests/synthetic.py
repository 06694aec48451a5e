"""A realistic synthetic cube that follows design.md's table, for analysis/chart/report tests.

Not the engine: a compact stand-in with the right shapes, units and orders of magnitude
(CLSK-like: BTC $84,500, 50 EH/s of 1,069, two sites converting to HPC leases, converts).
Its forward values have a known BTC elasticity that falls as megawatts convert, so the
decoupling chart has something to show.
"""

from __future__ import annotations

import json

import numpy as np

from simulator import cube as cube_mod
from simulator import units as u

S0 = 84_500.0
SHARE_PRICE = 14.57
SITES = [("Sandersville", 250.0, 0.85), ("Austin County", 285.0, 0.7)]
ASSUMPTIONS = [
    {"key": "market.btc.sigma", "description": "BTC volatility 45%/yr (35-65%)",
     "source": "N-V1..N-V7", "assumption": False},
    {"key": "market.btc.jumps", "description": "Jumps 4/yr, mean -3%, sd 8%",
     "source": "none published", "assumption": True},
    {"key": "sites[*].lease.escalator", "description": "Lease escalator 2.5%/yr",
     "source": "H-D16 (rate not disclosed)", "assumption": True},
    {"key": "sites[*].lease.rate_usd_per_kw_month", "description": "Lease rate $154/kW-month",
     "source": "H-D16", "assumption": False},
]


def synthetic_cube(paths: int = 2_000, months: int = 120, seed: int = 0,
                   sample: int | None = None, name: str = "base", failed: int = 0):
    """Build a cube with ``paths`` paths and ``months`` months (first month 2025-12).

    ``sample`` keeps [path, time] series for the first ``sample`` paths only (with exact
    all-path mean/std summaries), as large runs do. ``failed`` marks that many paths failed.
    """
    rng = np.random.default_rng(seed)
    dt = 1 / 12
    t = np.arange(1, months + 1)
    z = rng.standard_normal((paths, months))
    log_ret = (0.04 - 0.45**2 / 2) * dt + 0.45 * np.sqrt(dt) * z
    btc = S0 * np.exp(np.cumsum(log_ret, axis=1))
    fees = 0.03 * np.exp(0.3 * rng.standard_normal((paths, months)))
    height = 925_344 + np.cumsum(np.full((paths, months), 144 * u.DAYS_PER_MONTH * 1.015), axis=1)
    height += rng.normal(0, 800, (paths, 1)) * np.sqrt(t)
    subsidy = 3.125 / 2.0 ** np.floor((height - 840_000) / 210_000)
    growth = np.cumsum(0.30 * np.exp(-t / 36) * dt + 0.3 * log_ret + 0.05 * np.sqrt(dt)
                       * rng.standard_normal((paths, months)), axis=1)
    network = 1_069.0 * np.exp(growth)
    hashprice = (subsidy + fees) * u.BLOCKS_PER_DAY * btc / (network * u.PH_PER_EH)

    sign, energise, it_mw, gross_converted, building = _sites(rng, paths, months)
    fleet = np.minimum(50 + 5.7 * t / 4, 55.7) * np.ones((paths, 1))
    mining_mw = np.maximum(u.mw_from_hashrate(fleet, 16.07) - gross_converted, 0.0)
    company = mining_mw / 16.07
    blocks = u.BLOCKS_PER_DAY * u.DAYS_PER_MONTH
    btc_mined = company / network * blocks * (subsidy + fees) * 0.92
    power_price = rng.triangular(45, 56, 65, (paths, 1))
    power_cost = mining_mw * u.HOURS_PER_MONTH * power_price
    revenue = btc_mined * btc
    curtailed = np.clip((power_cost - revenue) / np.maximum(power_cost, 1), 0, 1)
    power_cost *= 1 - curtailed
    margin = revenue - power_cost
    rate = rng.triangular(120, 154, 189, (paths, 1))
    hpc_revenue = it_mw * u.KW_PER_MW * rate * 1.025 ** (t / 12)
    hpc_noi = 0.85 * hpc_revenue
    capex = building * 10e6 / 15
    site_opex = mining_mw * 4_000.0
    sga = np.full((paths, months), 6e6)
    interest = np.full((paths, months), 1.5e6) + np.cumsum(capex, axis=1) * 0.8 * 0.071 / 12
    btc_sold = 0.5 * btc_mined
    fcf = margin - site_opex + hpc_noi - sga - capex - interest + btc_sold * btc
    btc_held = 13_011 + np.cumsum(btc_mined - btc_sold, axis=1)
    cash = 460e6 + np.cumsum(fcf, axis=1)

    disc_m = np.exp(-0.04 * (t + 1) / 12)
    disc_h = np.exp(-0.07 * (t + 1) / 12)
    pv_mining = ((margin - site_opex) * disc_m).sum(1) + 5 * (margin - site_opex)[:, -12:].sum(1).clip(0) * disc_m[-1]
    pv_sga = -(sga * disc_m).sum(1) - 24 * 12 * sga[:, -1] * disc_m[-1]
    pv_hpc = ((hpc_noi - capex) * disc_h).sum(1) + 18 * 12 * hpc_noi[:, -1] * disc_h[-1]
    pv_taxes = -0.1 * np.maximum(pv_mining + pv_hpc + pv_sga, 0.0)
    treasury = 13_011 * btc[:, -1] * disc_m[-1]
    cash0 = np.full(paths, 460e6)
    pv_notes = np.full(paths, 1_800e6 * np.exp(-0.09 * 5))
    pv_raised = np.zeros(paths)
    net_debt = pv_notes - cash0
    equity = pv_mining + pv_hpc + pv_sga + pv_taxes + treasury + cash0 - pv_notes + pv_raised
    basic = 255.58e6
    issued = np.where(equity / basic > 14.80, 650e6 / 14.80, 0.0) \
        + np.where(equity / basic > 19.16, 1_150e6 / 19.16, 0.0)
    diluted = basic + issued
    value = np.maximum(equity, 0.0) / diluted

    years = [1, 2, 3]
    fwd = np.empty((paths, len(years)))
    for j, y in enumerate(years):
        m = min(12 * y, months) - 1
        ratio = btc[:, m] / S0
        hpc_frac = it_mw[:, m].clip(0) / (it_mw[:, m] + mining_mw[:, 0] / 3)
        elasticity = 1.6 * (1 - hpc_frac) + 0.3 * hpc_frac
        noise = np.exp(0.15 * rng.standard_normal(paths))
        fwd[:, j] = np.abs(value) * ratio**elasticity * noise

    path_failed = np.zeros(paths, bool)
    if failed:
        path_failed[rng.choice(paths, failed, replace=False)] = True
        for arr in (value, equity, fwd):
            arr[path_failed] = np.nan
    ok = ~path_failed
    fair, fair_se = float(value[ok].mean()), float(value[ok].std(ddof=1) / np.sqrt(ok.sum()))

    series = dict(btc_price=btc, fees_per_block=fees, subsidy=subsidy, block_height=height,
                  network_hashrate=network, hashprice=hashprice, company_hashrate=company,
                  mining_mw=mining_mw, hpc_mw_it=it_mw, hpc_mw_gross=1.3 * it_mw, curtailed=curtailed,
                  btc_mined=btc_mined,
                  mining_revenue=revenue, power_cost=power_cost, mining_margin=margin,
                  hpc_revenue=hpc_revenue, hpc_noi=hpc_noi, site_opex=site_opex, sga=sga,
                  interest=interest, capex=capex, free_cash_flow=fcf, btc_held=btc_held,
                  btc_sold=btc_sold, cash=cash)
    summary = None
    if sample is not None:
        summary = {}
        for key in ("btc_price", "free_cash_flow"):
            summary[f"{key}_mean"] = series[key].mean(0)
            summary[f"{key}_std"] = series[key].std(0, ddof=1)
        series = {k: v[:sample] for k, v in series.items()}
    arrays = dict(series, value_per_share=value, equity_value=equity, pv_mining=pv_mining,
                  pv_hpc=pv_hpc, pv_sga=pv_sga, pv_taxes=pv_taxes, treasury_value=treasury,
                  cash0=cash0, pv_notes=pv_notes, pv_equity_raised=pv_raised, net_debt=net_debt,
                  diluted_shares=diluted, shares_issued=issued, path_failed=path_failed,
                  forward_value_per_share=fwd, sign_month=sign, energise_month=energise)
    calendar = np.arange(np.datetime64("2025-12"), np.datetime64("2025-12") + months)
    inputs = {"market.btc.sigma": (np.full(paths, 0.45), u.ONE, "BTC volatility"),
              "power.price_usd_per_mwh": (power_price[:, 0], u.USD_PER_MWH, "power price"),
              "sites[0].lease.rate_usd_per_kw_month": (rate[:, 0], u.USD_PER_KW_MONTH,
                                                      "lease rate")}
    manifest = {"scenario_name": name, "scenario_yaml": f"name: {name}\n",
                "scenario_sha256": "ab" * 32, "seed": seed, "paths": paths,
                "sampling": "random", "minersim_version": "0.1.0",
                "created": "2025-12-01T12:00:00+00:00", "valuation_date": "2025-12-01",
                "share_price": SHARE_PRICE, "btc_spot_usd": S0, "runtime_seconds": 1.25,
                "fair_value_per_share": fair, "fair_value_se": fair_se,
                "fair_value_plain_mean": fair, "fair_value_plain_se": fair_se,
                "street_targets_usd": {"low": 14.0, "high": 30.0, "consensus": 23.2, "source": "C-A1..C-A7"},
                "assumptions_json": json.dumps(ASSUMPTIONS)}
    return cube_mod.assemble(arrays, calendar=calendar, sites=[s[0] for s in SITES],
                             forward_years=years, inputs=inputs, manifest=manifest,
                             summary=summary)


def _sites(rng, paths: int, months: int):
    """Signing / energisation months per site and the MW they move, arrays over paths."""
    n = len(SITES)
    sign = np.full((paths, n), -1, np.int64)
    energise = np.full((paths, n), -1, np.int64)
    it_mw = np.zeros((paths, months))
    converted = np.zeros((paths, months))
    building = np.zeros((paths, months))
    m = np.arange(months)
    for k, (_, gross, p_sign) in enumerate(SITES):
        signs = rng.random(paths) < p_sign
        s = np.round(rng.triangular(3, 9, 24, paths)).astype(np.int64) + 6 * k
        e = s + np.round(rng.triangular(8, 15, 24, paths)).astype(np.int64)
        sign[signs, k] = s[signs]
        energise[signs & (e < months), k] = e[signs & (e < months)]
        started = signs[:, None] & (m[None, :] >= s[:, None])
        live = signs[:, None] & (m[None, :] >= e[:, None])
        it = gross / 1.35
        converted += np.where(started, gross, 0.0)
        it_mw += np.where(live, it, 0.0)
        building += np.where(started & ~live, it, 0.0)
    return sign, energise, it_mw, converted, building
