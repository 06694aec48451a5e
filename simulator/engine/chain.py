"""The stage order, and the company engine entered at the market-paths boundary.

:func:`run_company` runs sites, fleet, treasury, capital and valuation on market paths the
caller supplies (style point 3): the lead's chain feeds it simulated paths, a test feeds it
constant arrays. Parameter dataclasses hold per-path inputs as ``float | ndarray [P]``.

Order inside :func:`run_company`:

1. sites (MW off mining, rent, NOI, capex, project debt), run 12 months past the horizon so
   forward NOI exists at every month;
2. fleet on the MW the sites leave to mining;
3. pass A: cash and treasury with every note treated as debt and no equity raises, marked
   per share every month by multiples (``valuation.mark``);
4. each convertible converts where the pass-A mark at its maturity exceeds its conversion
   price (notes maturing after the horizon: the mark at the last month);
5. pass B: cash with conversions settled and equity raised at the pass-A mark when cash
   would go negative (or the path fails when raises are not allowed);
6. sum of the parts today and forward marks at 12, 24, 36 ... months.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

import simulator.engine.capital as capital
import simulator.engine.inputs as inputs_
import simulator.engine.market as market
import simulator.engine.network as network
import simulator.engine.fleet as fleet
import simulator.engine.renewal as renewal
import simulator.engine.sites as sites
import simulator.engine.timegrid as timegrid
import simulator.engine.treasury as treasury
import simulator.engine.valuation as valuation
from simulator import units
from simulator.engine.params import (MONTHS_AHEAD, CapitalParams, CompanyParams, CompanyPaths,
                                     DebtParams, Deployment, FleetParams, MarketPaths, Num,
                                     SiteParams, TreasuryParams, ValuationParams)

__all__ = ["CapitalParams", "CompanyParams", "CompanyPaths", "DebtParams", "Deployment",
           "FleetParams", "MarketPaths", "SiteParams", "TreasuryParams", "ValuationParams",
           "MONTHS_AHEAD", "Num", "company_shocks_needed", "run_company", "simulate_chunk"]


def company_shocks_needed(params: CompanyParams, months: int) -> list[tuple[str, str, int]]:
    """Uniform shocks :func:`run_company` reads: ``(name, kind, columns)``.

    Sites run ``months + 12`` months so that forward NOI exists at the horizon.
    """
    cols = months + MONTHS_AHEAD
    return [(f"{kind}_{s.name}", "uniform", cols)
            for s in params.sites for kind in ("tenant_default", "renewal")]


def _per_path(x, n: int, dtype=np.float64) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=dtype).reshape(-1), (n,))


def _run_sites(site_params, n: int, months: int, shocks, vp: ValuationParams):
    """Run every site over ``months`` (+12); returns summed arrays and per-site months.

    ``value`` is the sites' value marked at every month (``valuation.site_value``) and
    ``land_at_horizon`` the powered land of sites still unsigned at the horizon [USD].
    """
    ext = months + MONTHS_AHEAD
    keys = ("off_mw", "mining_budget_mw", "hpc_mw_it", "rent", "noi", "capex", "draws", "interest",
            "principal", "balance", "value")
    tot: dict[str, np.ndarray] = {}

    def add(key, a):
        # The first site's fresh arrays become the totals: no zeroed [P, T + 12] buffers.
        if key in tot:
            tot[key] += a
        else:
            tot[key] = a
    land = np.zeros(n)
    sign, energise = [], []
    for s in site_params:
        r = sites.site_paths(
            gross_mw=s.gross_mw, gross_to_it=s.gross_to_it, sign_month=s.sign_month,
            build_months=s.build_months, tranches=s.tranches,
            lease_rate_usd_per_kw_month=s.lease_rate_usd_per_kw_month, escalator=s.escalator,
            term_years=s.term_years, noi_margin=s.noi_margin,
            capex_usd_per_mw_it=s.capex_usd_per_mw_it,
            default_hazard_monthly=s.default_hazard_monthly, downtime_months=s.downtime_months,
            relet_rate_usd_per_kw_month=s.relet_rate_usd_per_kw_month,
            renewal_probability=s.renewal_probability,
            u_default=shocks[f"tenant_default_{s.name}"][:, :ext],
            u_renewal=shocks[f"renewal_{s.name}"][:, :ext])
        for k in ("off_mw", "hpc_mw_it", "rent", "noi", "capex"):
            add(k, getattr(r, k))
        # What the site does to the MW the fleet may draw: a mining site loses the MW it
        # builds, leases or holds down; a greenfield site adds its MW only once built and
        # reverted to mining (domain.md, "Sites").
        if s.mines_until_conversion:
            add("mining_budget_mw", -r.off_mw)
        else:
            add("mining_budget_mw", (r.state == sites.REVERTED) * _per_path(s.gross_mw, n)[:, None])
        sign_p = _per_path(s.sign_month, n, np.int64)
        add("value", valuation.site_value(
            r.noi, r.capex, sign_p, r.build_end_month, months=months, rate=vp.hpc_discount_rate,
            multiple=vp.hpc_multiple, land_value_usd=s.land_value_usd))
        unsigned_at_end = (sign_p < 0) | (sign_p >= months)
        land += np.where(unsigned_at_end, np.broadcast_to(np.asarray(s.land_value_usd, np.float64), (n,)), 0.0)
        if s.financing == "project_debt":
            loan = sites.project_debt(r.capex, r.build_end_month, loan_to_cost=s.loan_to_cost,
                                      rate=s.debt_rate, amortisation_years=s.amortisation_years)
            for k, a in zip(("draws", "interest", "principal", "balance"), loan):
                add(k, a)
        sign.append(sign_p)
        energise.append(r.energise_month)
    for k in keys:
        if k not in tot:
            tot[k] = np.zeros((n, months if k == "value" else ext))
    stack = (lambda a: np.stack(a, axis=1)) if sign else (lambda a: np.zeros((n, 0), np.int64))
    return tot, stack(sign), stack(energise), land


def _notes(debt_params, months: int):
    """Debt schedules, each as (params, balance, interest, scheduled, balloon) [P or 1, T]."""
    return [(d, *capital.debt_schedule(d.principal_usd, d.coupon, d.maturity_month,
                                       d.amortisation, months)) for d in debt_params]


def _note_sum(notes, k: int, months: int) -> np.ndarray:
    """Sum over notes of schedule item ``k`` (1 balance, 2 interest), [P or 1, T]."""
    # Summed on their own (mostly [1, T]) before meeting [P, T] arrays: same order, fewer passes.
    return sum((x[k] for x in notes), np.zeros((1, months)))


def _settle(notes, share_value_at, n: int, months: int):
    """Conversion flags [P, D], net new shares by month [P, T], cash not repaid [P, T].

    ``share_value_at(m)`` is the pass-A mark at month ``m`` [USD/share], [P].
    """
    converted = np.zeros((n, len(notes)), dtype=bool)
    new_shares = np.zeros((n, months))
    kept_cash = np.zeros((n, months))
    for i, (d, balance, _, _, balloon) in enumerate(notes):
        if d.kind != "convertible":
            continue
        m = min(d.maturity_month, months - 1)
        face = np.broadcast_to(balloon[:, m] if d.maturity_month < months else balance[:, m],
                               (n,))
        share_value = share_value_at(m)
        conv = capital.converts(share_value, d.conversion_price)
        shares = capital.conversion_shares(face, d.conversion_price, share_value,
                                           d.capped_call_cap_price)
        converted[:, i] = conv
        # Shares count from the maturity month; the balloon falls in it alone.
        new_shares[:, m:] += np.where(conv, shares, 0.0)[:, None]
        if d.maturity_month < months:
            kept_cash[:, m] += conv * balloon[:, m]
    return converted, new_shares, kept_cash


def _rows(x, rows: np.ndarray, n: int) -> np.ndarray:
    """A scalar or per-path ``[P]`` input restricted to ``rows``."""
    return _per_path(x, n)[rows]


def _pass_b(a, pre_cf, kept_cash, btc_mined, btc_price, cp: CapitalParams, tp: TreasuryParams,
            issue_price):
    """Pass B: cash with conversions settled and equity raised at the pass-A mark.

    Returns the result, the rows rerun (an index array or a slice) and the month the
    rerun starts.

    Notes
    -----
    Pass B repeats pass A's arithmetic until a path's cash flow changes (a converted note is
    not repaid) or its cash would go negative (``capital.divergence``). It is rerun from the
    first such month, starting from pass A's state, on those paths (on every path when they
    are most of them), and written over ``a``'s arrays. ``issue_price(rows, cols)`` is the
    pass-A mark on that block [USD/share].
    """
    n, months = pre_cf.shape
    start = capital.divergence(a, kept_cash)
    rows = np.flatnonzero(start < months)
    if rows.size == 0:
        return a, rows, months
    t0 = int(start[rows].min())
    cols = slice(t0, months)
    if 2 * rows.size > n:
        # Gathering most rows costs more than rerunning the rest, whose arithmetic from
        # pass A's state repeats pass A's exactly.
        rows = slice(None)
    if t0 > 0:
        cash0, held0 = a.cash[rows, t0 - 1], a.btc_held[rows, t0 - 1]
    else:
        cash0, held0 = _rows(cp.cash0_usd, rows, n), _rows(tp.btc_held0, rows, n)
    rule = treasury.sell_rule(tp.policy, fraction=_rows(tp.sell_fraction, rows, n),
                              floor_usd=_rows(tp.floor_usd, rows, n))
    # On every path the rerun writes straight into a's months t0 onwards (basic slices are
    # views); on a subset it runs into new arrays that are patched in.
    every = isinstance(rows, slice)
    sub = capital.cash_loop(
        pre_cf[rows, cols] + kept_cash[rows, cols],
        np.broadcast_to(btc_mined, (n, months))[rows, cols],
        np.broadcast_to(btc_price, (n, months))[rows, cols], cash0=cash0, btc_held0=held0,
        sell=rule, raise_target_usd=_rows(cp.raise_target_usd, rows, n),
        issue_price=issue_price(rows, cols) if cp.allow_equity_raise else None,
        out=capital.CashResult(*(getattr(a, k)[:, cols] for k in capital.CASH_SERIES), a.short)
        if every else None)
    if every:
        a.short[:] = sub.short
        return a, rows, t0
    return capital.patch(a, sub, rows, t0), rows, t0


def run_company(market: MarketPaths, params: CompanyParams,
                shocks: Mapping[str, np.ndarray]) -> CompanyPaths:
    """Run the company engine on supplied market paths (see the module docstring)."""
    n, months = market.btc_price.shape
    fp, cp, tp, vp = params.fleet, params.capital, params.treasury, params.valuation
    st, sign, energise, land_at_horizon = _run_sites(params.sites, n, months, shocks, vp)
    now = {k: a[:, :months] for k, a in st.items()}

    planned, fleet_j, fleet_capex = fleet.planned_fleet(
        fp.hashrate_ehs, fp.j_per_th,
        [(d.month, d.hashrate_ehs, d.j_per_th, d.capex_usd_per_th) for d in fp.deployments],
        months)
    available = _per_path(fp.contracted_mw, n)[:, None] + now["mining_budget_mw"]
    offline = None
    if fp.relocation_downtime_months > 0 or np.any(np.asarray(fp.relocation_usd_per_mw) > 0):
        moved, offline = fleet.displacement(available, planned * fleet_j, fp.contracted_mw,
                                            int(fp.relocation_downtime_months))
        fleet_capex = fleet_capex + moved * _per_path(fp.relocation_usd_per_mw, n)[:, None]
    fr = fleet.operate(
        planned, fleet_j, available, network_hashrate=market.network_hashrate,
        blocks=market.blocks, subsidy=market.subsidy, fees_per_block=market.fees_per_block,
        btc_price=market.btc_price, hashprice=market.hashprice, days=market.days,
        realisation=fp.realisation, power_price_usd_per_mwh=fp.power_price_usd_per_mwh,
        site_opex_usd_per_mw_month=fp.site_opex_usd_per_mw_month, offline_mw=offline)
    sga = np.broadcast_to(fleet.sga_schedule(fp.sga_usd_per_month, fp.sga_growth, months),
                          (n, months))
    ebitda = fr.mining_margin - fr.site_opex
    ebitda -= sga
    capex = now["capex"] + fleet_capex

    notes = _notes(cp.debt, months)
    interest = now["interest"] + _note_sum(notes, 2, months)
    debt = now["balance"] + _note_sum(notes, 1, months)
    # Mined coins go to the treasury, not to cash: cash moves only when BTC is sold.
    pre_cf = ebitda - fr.mining_revenue
    site_cf = now["noi"] - capex  # in place, in the order of noi - capex + draws - ...
    site_cf += now["draws"]
    site_cf -= now["principal"]
    site_cf -= interest
    pre_cf += site_cf
    for _, _, _, scheduled, balloon in notes:
        pre_cf -= scheduled + balloon

    rule = treasury.sell_rule(tp.policy, fraction=tp.sell_fraction, floor_usd=tp.floor_usd)
    price = np.broadcast_to(market.btc_price, (n, months))
    cash_args = dict(btc_mined=fr.btc_mined, btc_price=price, cash0=cp.cash0_usd,
                     btc_held0=tp.btc_held0, sell=rule)
    trailing = valuation.trailing_12(ebitda)
    hpc_value = st["value"]  # marked over the horizon only: [P, months]
    basic = _per_path(cp.basic_shares, n)[:, None]

    a = capital.cash_loop(pre_cf, **cash_args)

    def mark_a(rows, cols):
        """The pass-A mark on a block of paths and months [USD/share]."""
        return valuation.mark(
            trailing_mining_ebitda=trailing[rows, cols], hpc_value=hpc_value[rows, cols],
            btc_held=a.btc_held[rows, cols], btc_price=price[rows, cols],
            cash=a.cash[rows, cols], debt=debt[rows, cols], shares=basic[rows],
            mining_multiple=_rows(vp.mining_multiple, rows, n))

    every = slice(None)
    converted, new_shares, kept_cash = _settle(
        notes, lambda m: mark_a(every, slice(m, m + 1))[:, 0], n, months)
    b, rerun, t0 = _pass_b(a, pre_cf, kept_cash, fr.btc_mined, price, cp, tp, mark_a)
    shares = basic + new_shares
    shares[rerun, t0:] += np.cumsum(b.shares_issued[rerun, t0:], axis=1)
    # The forward values read the pass-B mark at months 12k - 1 only.
    fwd_months = [k * units.MONTHS_PER_YEAR - 1 for k in range(1, vp.forward_years + 1)
                  if k * units.MONTHS_PER_YEAR - 1 < months]
    mark_b = valuation.mark(
        trailing_mining_ebitda=trailing[:, fwd_months], hpc_value=hpc_value[:, fwd_months],
        btc_held=b.btc_held[:, fwd_months], btc_price=price[:, fwd_months],
        cash=b.cash[:, fwd_months], debt=debt[:, fwd_months], shares=shares[:, fwd_months],
        mining_multiple=vp.mining_multiple)

    repaid = sum((np.broadcast_to(np.asarray(d.principal_usd, np.float64), (n,))
                  * ~converted[:, i] for i, (d, *_) in enumerate(notes)), np.zeros(n))
    today = valuation.sum_of_parts(
        mining_cash_flow=ebitda - fleet_capex, mining_ebitda=ebitda,
        hpc_cash_flow=now["noi"] - now["capex"], noi_ext=st["noi"],
        mining_rate=vp.mining_discount_rate, hpc_rate=vp.hpc_discount_rate,
        btc_held0=tp.btc_held0, btc_price0=market.btc_price0, debt_repaid_in_cash=repaid,
        cash0=cp.cash0_usd, raised_usd=b.raised_usd, land_at_horizon=land_at_horizon,
        mining_multiple=vp.mining_multiple, hpc_multiple=vp.hpc_multiple)
    issued = np.zeros(n)
    issued[rerun] = b.shares_issued[rerun].sum(axis=1)  # whole rows: the same summation order
    issued += new_shares[:, -1]  # and the notes' conversion shares (net of the capped call)
    diluted = basic[:, 0] + issued
    # Cash short with no raise possible. With raises allowed that means the equity was worth
    # nothing when money was needed: the path defaults and, by limited liability, the shares
    # are worth zero from then on. With raises switched off the path fails visibly (NaN).
    failed = b.short & (not cp.allow_equity_raise)
    insolvent = b.short & cp.allow_equity_raise
    default_month = np.full(n, months)
    short = np.flatnonzero(b.short)
    default_month[short] = np.argmax(b.cash[short] < 0.0, axis=1)
    # Limited liability: the shares are worth at least nothing, whatever the sum of the parts.
    vps = np.where(failed, np.nan, np.where(insolvent, 0.0, np.maximum(today.equity_value, 0.0) / diluted))
    fwd = np.full((n, vp.forward_years), np.nan)
    for j, m in enumerate(fwd_months):
        marked = np.where(default_month <= m, 0.0, np.maximum(mark_b[:, j], 0.0))
        fwd[:, j] = np.where(failed, np.nan, marked)
    fcf = valuation.free_cash_flow(fr.mining_margin, fr.site_opex, now["noi"], sga, capex,
                                   interest)
    return CompanyPaths(
        company_hashrate=fr.company_hashrate, mining_mw=fr.mining_mw * (1.0 - fr.curtailed),
        hpc_mw_it=now["hpc_mw_it"],
        hpc_mw_gross=now["off_mw"], curtailed=fr.curtailed, btc_mined=fr.btc_mined,
        mining_revenue=fr.mining_revenue, power_cost=fr.power_cost, mining_margin=fr.mining_margin,
        site_opex=fr.site_opex, sga=sga, hpc_revenue=now["rent"], hpc_noi=now["noi"], capex=capex,
        interest=interest, free_cash_flow=fcf, btc_sold=b.btc_sold, btc_held=b.btc_held, cash=b.cash,
        debt=debt, shares_outstanding=shares, value_per_share=vps, equity_value=today.equity_value,
        pv_mining=today.pv_mining, pv_hpc=today.pv_hpc, treasury_value=today.treasury_value,
        net_debt=today.net_debt, pv_equity_raised=today.pv_equity_raised, diluted_shares=diluted,
        shares_issued=issued, path_failed=failed, value_per_share_forward=fwd, converted=converted,
        debt_names=tuple(d.name for d in cp.debt), site_names=tuple(s.name for s in params.sites),
        sign_month=sign, energise_month=energise, never_signs=sign < 0)


# ------------------------------------------------------------------ the whole chain for one chunk

def run_market(mi: inputs_.MarketInputs, calendar: np.ndarray, draws) -> tuple[MarketPaths, np.ndarray]:
    """BTC price, fees and the network for one chunk; also returns block heights [P, T]."""
    months = draws.n_months
    days = timegrid.days_in_month(calendar)
    shocks = {name: getattr(draws, kind)(f"btc_price.{name}")
              for name, kind in market.PRICE_SHOCKS[mi.price_process]}
    # The process hands back the log returns it drew (no log pass over the prices) and the
    # same returns standardised ex ante, which fees and network noise correlate with.
    log_ret, btc_shock = np.empty((draws.n_paths, months)), np.empty((draws.n_paths, months))
    btc_price = market.PRICE_PROCESSES[mi.price_process](
        mi.spot_usd, months, shocks, **mi.price_params, log_returns_out=log_ret, btc_shock_out=btc_shock)
    f = mi.fees
    fee = market.fees_per_block(f["median"], f["log_sd"], f["persistence"], months, draws.normal("fees.z"),
                                btc_shock=btc_shock, rho_btc=f["rho_btc"])
    halvings, subsidy0 = mi.halving_heights, mi.subsidy_btc
    paths = network.simulate_network(
        mi.network_model, h0_ehs=mi.hashrate_ehs, height0=mi.height0, btc_price=btc_price,
        fees_per_block=fee, days=days, subsidy_fn=lambda h: timegrid.subsidy(h, halvings, subsidy0),
        z_hash=draws.normal("network.z"), params=mi.network_params, btc_price0=mi.spot_usd,
        btc_log_return=log_ret, btc_shock=btc_shock)
    mp = MarketPaths(calendar=calendar, days=days, btc_price=btc_price, fees_per_block=fee,
                     subsidy=paths.subsidy, blocks=paths.blocks, network_hashrate=paths.network_hashrate,
                     hashprice=paths.hashprice, btc_price0=mi.spot_usd)
    return mp, paths.block_height


def _renewed(fleet_params: FleetParams, renewal_kw: dict | None) -> FleetParams:
    """The fleet with its retire-and-replace deployments added (fleet renewal switched on)."""
    if renewal_kw is None:
        return fleet_params
    cohorts = renewal.aged_fleet(fleet_params.hashrate_ehs, fleet_params.j_per_th, renewal_kw["life_years"])
    cohorts += [(d.month, d.hashrate_ehs, d.j_per_th) for d in fleet_params.deployments]
    extra = [Deployment(*dep) for dep in renewal.renewal_deployments(cohorts, **renewal_kw)]
    return dataclasses.replace(fleet_params, deployments=fleet_params.deployments + tuple(extra))


def simulate_chunk(scenario, inputs: Mapping[str, np.ndarray], draws,
                   history: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run every stage for one chunk of paths; returns arrays named as the cube names them.

    ``draws`` is a :class:`simulator.rng.Draws` for the chunk (duck-typed here): every random
    number comes from a named stream of it, so a path's numbers do not depend on the chunking.
    ``history`` is the monthly log returns a ``bootstrap`` BTC process resamples, read once per
    run outside the engine (``simulator.scenario.history.bootstrap_history``); None otherwise.
    """
    months = scenario.simulation.horizon_months
    mp, height = run_market(inputs_.market_inputs(scenario, inputs, history),
                            inputs_.month_starts(scenario), draws)
    params = inputs_.company_params(scenario, inputs, inputs_.site_params(scenario, inputs, draws))
    params = dataclasses.replace(params, fleet=_renewed(params.fleet, inputs_.renewal_params(scenario, inputs)))
    shocks = {name: getattr(draws, kind)(f"company.{name}", cols=cols)
              for name, kind, cols in company_shocks_needed(params, months)}
    co = run_company(mp, params, shocks)
    years = np.asarray(scenario.valuation.forward_years) - 1
    return dict(
        btc_price=mp.btc_price, fees_per_block=mp.fees_per_block, subsidy=mp.subsidy, block_height=height,
        network_hashrate=mp.network_hashrate, hashprice=mp.hashprice,
        company_hashrate=co.company_hashrate, mining_mw=co.mining_mw, hpc_mw_it=co.hpc_mw_it,
        hpc_mw_gross=co.hpc_mw_gross,
        curtailed=co.curtailed, btc_mined=co.btc_mined, mining_revenue=co.mining_revenue,
        power_cost=co.power_cost, mining_margin=co.mining_margin, hpc_revenue=co.hpc_revenue,
        hpc_noi=co.hpc_noi, site_opex=co.site_opex, sga=co.sga, interest=co.interest, capex=co.capex,
        free_cash_flow=co.free_cash_flow, btc_held=co.btc_held, btc_sold=co.btc_sold, cash=co.cash,
        value_per_share=co.value_per_share, equity_value=co.equity_value, pv_mining=co.pv_mining,
        pv_hpc=co.pv_hpc, treasury_value=co.treasury_value, net_debt=co.net_debt,
        diluted_shares=co.diluted_shares, shares_issued=co.shares_issued, path_failed=co.path_failed,
        value_per_share_forward=co.value_per_share_forward[:, years], sign_month=co.sign_month,
        energise_month=co.energise_month)
