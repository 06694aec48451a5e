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

import datetime as dt
from typing import Mapping

import numpy as np

import simulator.engine.capital as capital
import simulator.engine.fleet as fleet
import simulator.engine.renewal as renewal
import simulator.engine.sites as sites
import simulator.engine.treasury as treasury
import simulator.engine.valuation as valuation
from simulator import units
from simulator.engine.params import (MONTHS_AHEAD, CapitalParams, CompanyParams, CompanyPaths,
                                     DebtParams, Deployment, FleetParams, MarketPaths, Num,
                                     SiteParams, TreasuryParams, ValuationParams)

__all__ = ["CapitalParams", "CompanyParams", "CompanyPaths", "DebtParams", "Deployment",
           "FleetParams", "MarketPaths", "SiteParams", "TreasuryParams", "ValuationParams",
           "MONTHS_AHEAD", "Num", "SERIES", "PER_PATH", "company_shocks_needed", "month_starts",
           "run_company", "simulate_chunk"]


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
    keys = ("off_mw", "hpc_mw_it", "rent", "noi", "capex", "draws", "interest", "principal",
            "balance", "value")
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
    available = _per_path(fp.contracted_mw, n)[:, None] - now["off_mw"]
    fr = fleet.operate(
        planned, fleet_j, available, network_hashrate=market.network_hashrate,
        blocks=market.blocks, subsidy=market.subsidy, fees_per_block=market.fees_per_block,
        btc_price=market.btc_price, hashprice=market.hashprice, days=market.days,
        realisation=fp.realisation, power_price_usd_per_mwh=fp.power_price_usd_per_mwh,
        site_opex_usd_per_mw_month=fp.site_opex_usd_per_mw_month)
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
    diluted = basic[:, 0] + new_shares[:, -1] + issued
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
        fr.company_hashrate, fr.mining_mw, now["hpc_mw_it"], fr.curtailed, fr.btc_mined,
        fr.mining_revenue, fr.power_cost, fr.mining_margin, fr.site_opex, sga, now["rent"],
        now["noi"], capex, interest, fcf, b.btc_sold, b.btc_held, b.cash, debt, shares, vps,
        today.equity_value, today.pv_mining, today.pv_hpc, today.treasury_value,
        today.net_debt, today.pv_equity_raised, diluted, issued, failed, fwd, converted,
        tuple(d.name for d in cp.debt), tuple(s.name for s in params.sites), sign, energise,
        sign < 0)


# ------------------------------------------------------------------ the whole chain for one chunk
#
# Below, the scenario (duck-typed: the engine imports no pydantic) and the sampled inputs are
# mapped onto the stage calls. An input is a scenario value that is a number, a ``fixed``
# spec, or a distribution whose per-path draws sit in ``inputs`` under its dotted key path.

SERIES = ("btc_price", "fees_per_block", "subsidy", "block_height", "network_hashrate", "hashprice",
          "company_hashrate", "mining_mw", "hpc_mw_it", "curtailed", "btc_mined", "mining_revenue",
          "power_cost", "mining_margin", "hpc_revenue", "hpc_noi", "site_opex", "sga", "interest",
          "capex", "free_cash_flow", "btc_held", "btc_sold", "cash")
"""``[path, time]`` outputs of :func:`simulate_chunk` (the rest are per path or per site)."""

PER_PATH = ("value_per_share", "equity_value", "pv_mining", "pv_hpc", "treasury_value", "net_debt",
            "diluted_shares", "shares_issued", "path_failed", "value_per_share_forward",
            "sign_month", "energise_month")


def _value(inputs: Mapping[str, np.ndarray], key: str, spec):
    """The per-path draws of ``key`` if it was sampled, else its fixed number."""
    if key in inputs:
        return inputs[key]
    if spec is None or isinstance(spec, (int, float)):
        return spec
    if getattr(spec, "is_fixed", False):
        return spec.value
    raise KeyError(f"input {key!r} is uncertain but was not sampled")


def month_starts(scenario) -> np.ndarray:
    """Month starts of the simulation calendar, datetime64[M] [T]."""
    start = np.datetime64(scenario.simulation.valuation_date, "M")
    return start + np.arange(scenario.simulation.horizon_months)


def _month_index(scenario, date) -> int:
    """Months from the valuation date to ``date`` (a month start)."""
    origin = scenario.simulation.valuation_date
    return (date.year - origin.year) * 12 + date.month - origin.month


def _market(scenario, inputs, draws, history) -> tuple[MarketPaths, np.ndarray]:
    """BTC price, fees and the network for this chunk; also returns block heights [P, T].

    ``history`` is the bootstrap process's monthly log returns (None for other processes).
    """
    from simulator.engine import market, network, timegrid

    months = scenario.simulation.horizon_months
    cal = month_starts(scenario)
    days = timegrid.days_in_month(cal)
    btc = scenario.market.btc
    proc = btc.process
    key = "market.btc.process"
    s0 = _value(inputs, "market.btc.spot_usd", btc.spot_usd)
    shocks = {name: getattr(draws, kind)(f"btc_price.{name}") for name, kind in market.PRICE_SHOCKS[proc.kind]}
    if proc.kind == "gbm":
        params = dict(mu=_value(inputs, f"{key}.drift", proc.drift),
                      sigma=_value(inputs, f"{key}.volatility", proc.volatility))
    elif proc.kind == "merton":
        params = {"mu": _value(inputs, f"{key}.drift", proc.drift),
                  "sigma": _value(inputs, f"{key}.volatility", proc.volatility),
                  **{k: _value(inputs, f"{key}.{k}", getattr(proc, k))
                     for k in ("jump_intensity_per_year", "jump_mean", "jump_sd")}}
    elif proc.kind == "regime":
        def pair(name):
            vals = [_value(inputs, f"{key}.{name}.{i}", v) for i, v in enumerate(getattr(proc, name))]
            return np.stack(np.broadcast_arrays(*[np.asarray(v, np.float64) for v in vals]), axis=-1)
        initial = None if proc.initial_state == "stationary" else int(proc.initial_state)
        params = dict(mu=pair("drift"), sigma=pair("volatility"), p_stay=pair("stay_probability_monthly"),
                      initial_state=initial)
    else:
        if history is None:
            raise ValueError("a bootstrap BTC process needs its history's monthly log returns "
                             "(simulator.history.bootstrap_history, read once per run)")
        params = dict(returns=history, block_months=proc.block_months,
                      target_vol=_value(inputs, f"{key}.target_volatility", proc.target_volatility))
    # The process hands back the log returns it drew (no log pass over the prices) and the
    # same returns standardised ex ante, which fees and network noise correlate with.
    log_ret, btc_shock = np.empty((draws.n_paths, months)), np.empty((draws.n_paths, months))
    btc_price = market.PRICE_PROCESSES[proc.kind](s0, months, shocks, **params, log_returns_out=log_ret,
                                                  btc_shock_out=btc_shock)

    fees = scenario.market.fees
    fk = "market.fees"
    fee = market.fees_per_block(
        _value(inputs, f"{fk}.median_btc_per_block", fees.median_btc_per_block),
        _value(inputs, f"{fk}.log_sd", fees.log_sd),
        _value(inputs, f"{fk}.persistence_monthly", fees.persistence_monthly), months,
        draws.normal("fees.z"), btc_shock=btc_shock,
        rho_btc=_value(inputs, f"{fk}.btc_correlation", fees.btc_correlation))

    net = scenario.network
    model = net.model
    names = {"growth": {"growth_year1": "growth_year1", "growth_decay_per_year": "growth_decay_per_year",
                        "btc_beta": "btc_beta", "volatility": "vol", "btc_correlation": "rho_btc"},
             "cost_curve": {"marginal_j_per_th": "marginal_j_per_th",
                            "efficiency_improvement_per_year": "efficiency_improvement_per_year",
                            "power_price_usd_per_mwh": "power_usd_per_mwh", "entry_speed": "entry_speed",
                            "exit_speed": "exit_speed", "volatility": "vol"}}[model.kind]
    net_params = {engine_name: _value(inputs, f"network.model.{field}", getattr(model, field))
                  for field, engine_name in names.items()}
    if model.kind == "growth":
        net_params["lag_months"] = model.lag_months
    h0 = _value(inputs, "network.hashrate_ehs", net.hashrate_ehs)
    days_to_valuation = (scenario.simulation.valuation_date - net.block_height_date).days
    height0 = net.block_height + days_to_valuation * 144
    halvings = tuple(net.halving_heights)
    paths = network.simulate_network(
        model.kind, h0_ehs=h0, height0=height0, btc_price=btc_price, fees_per_block=fee, days=days,
        subsidy_fn=lambda h: timegrid.subsidy(h, halvings, net.subsidy_btc), z_hash=draws.normal("network.z"),
        params=net_params, btc_price0=s0, btc_log_return=log_ret, btc_shock=btc_shock)
    mp = MarketPaths(calendar=cal, days=days, btc_price=btc_price, fees_per_block=fee, subsidy=paths.subsidy,
                     blocks=paths.blocks, network_hashrate=paths.network_hashrate, hashprice=paths.hashprice,
                     btc_price0=s0)
    return mp, paths.block_height


def _sites(scenario, inputs, draws) -> tuple[SiteParams, ...]:
    """Per-site parameters; signing is a per-path Bernoulli draw from the stream ``sign.<site>``."""
    out = []
    n = draws.n_paths
    for site in scenario.sites:
        key = f"sites.{site.name}"
        conv = site.conversion
        lease = site.lease
        lk = f"{key}.lease"
        gross = _value(inputs, f"{key}.gross_mw", site.gross_mw)
        if conv is None:
            sign = np.full(n, -1, dtype=np.int64)
            build = np.ones(n)
            conv_kw: dict = {"gross_to_it": 1.0}  # never used: a site without a conversion never signs
        else:
            ck = f"{key}.conversion"
            p_sign = _value(inputs, f"{ck}.signing_probability", conv.signing_probability)
            u_sign = draws.uniform(f"sign.{site.name}", cols=1)[:, 0]
            when = np.rint(np.asarray(_value(inputs, f"{ck}.signing_months", conv.signing_months), np.float64))
            sign = np.where(u_sign < p_sign, np.broadcast_to(when, (n,)), -1).astype(np.int64)
            build = np.broadcast_to(np.rint(np.asarray(
                _value(inputs, f"{ck}.build_months", conv.build_months), np.float64)), (n,))
            if conv.converted_gross_mw is not None:
                gross = _value(inputs, f"{ck}.converted_gross_mw", conv.converted_gross_mw)
            fin = conv.financing
            conv_kw = dict(
                gross_to_it=_value(inputs, f"{ck}.gross_to_it", conv.gross_to_it),
                capex_usd_per_mw_it=np.asarray(_value(inputs, f"{ck}.capex_usd_m_per_mw_it",
                                                      conv.capex_usd_m_per_mw_it)) * 1e6,
                # Tranche k energises delay_k months after the site's first energisation.
                tranches=tuple((t.fraction, build + t.delay_months) for t in conv.tranches),
                financing=fin.kind)
            if fin.kind == "project_debt":
                conv_kw.update(loan_to_cost=_value(inputs, f"{ck}.financing.loan_to_cost", fin.loan_to_cost),
                               debt_rate=_value(inputs, f"{ck}.financing.rate", fin.rate),
                               amortisation_years=fin.amortisation_years)
        hazard_annual = np.asarray(_value(inputs, f"{lk}.tenant_default_probability_annual",
                                          lease.tenant_default_probability_annual), np.float64)
        out.append(SiteParams(
            name=site.name, gross_mw=gross, sign_month=sign, build_months=build,
            lease_rate_usd_per_kw_month=_value(inputs, f"{lk}.rate_usd_per_kw_month", lease.rate_usd_per_kw_month),
            escalator=_value(inputs, f"{lk}.escalator", lease.escalator),
            term_years=_value(inputs, f"{lk}.term_years", lease.term_years),
            noi_margin=_value(inputs, f"{lk}.noi_margin", lease.noi_margin),
            default_hazard_monthly=1.0 - (1.0 - hazard_annual) ** (1.0 / 12.0),
            downtime_months=_value(inputs, f"{lk}.downtime_months", lease.downtime_months),
            relet_rate_usd_per_kw_month=(_value(inputs, f"{lk}.relet_rate_usd_per_kw_month",
                                                lease.relet_rate_usd_per_kw_month)
                                         if lease.after_default == "relet" else None),
            renewal_probability=_value(inputs, f"{lk}.renewal_probability", lease.renewal_probability),
            # A site that mines until it converts is valued through mining EBITDA until then.
            land_value_usd=0.0 if site.mining_until_conversion else np.asarray(gross, np.float64) * 1e6
            * np.asarray(_value(inputs, f"{key}.powered_land_usd_m_per_mw", site.powered_land_usd_m_per_mw)),
            **conv_kw))
    return tuple(out)


def _company_params(scenario, inputs, draws, sites_params) -> CompanyParams:
    co = scenario.company
    fl, pw = co.fleet, co.power
    deployments = []
    for i, d in enumerate(fl.deployments):
        dk = f"company.fleet.deployments.{i}"
        # A fixed date is a month index; a month_range was sampled as per-path month offsets.
        month = _month_index(scenario, d.date) if isinstance(d.date, dt.date) else inputs[f"{dk}.date"]
        deployments.append(Deployment(month=month, hashrate_ehs=_value(inputs, f"{dk}.hashrate_ehs", d.hashrate_ehs),
                                      j_per_th=_value(inputs, f"{dk}.efficiency_j_per_th", d.efficiency_j_per_th),
                                      capex_usd_per_th=_value(inputs, f"{dk}.capex_usd_per_th", d.capex_usd_per_th)))
    h0 = _value(inputs, "company.fleet.hashrate_ehs", fl.hashrate_ehs)
    j0 = _value(inputs, "company.fleet.efficiency_j_per_th", fl.efficiency_j_per_th)
    if fl.renewal is not None:
        rn, rk = fl.renewal, "company.fleet.renewal"
        cohorts = renewal.aged_fleet(h0, j0, rn.machine_life_years)
        cohorts += [(d.month, d.hashrate_ehs, d.j_per_th) for d in deployments]
        deployments += [Deployment(*dep) for dep in renewal.renewal_deployments(
            cohorts, months=scenario.simulation.horizon_months, life_years=rn.machine_life_years,
            frontier_j_per_th=_value(inputs, f"{rk}.frontier_j_per_th", rn.frontier_j_per_th),
            frontier_improvement_per_year=_value(inputs, f"{rk}.frontier_improvement_per_year",
                                                 rn.frontier_improvement_per_year),
            capex_usd_per_th=_value(inputs, f"{rk}.capex_usd_per_th", rn.capex_usd_per_th),
            capex_change_per_year=_value(inputs, f"{rk}.capex_change_per_year", rn.capex_change_per_year))]
    # Greenfield sites never were part of the mining footprint: their MW come on top of it.
    contracted = np.asarray(_value(inputs, "company.power.contracted_mw", pw.contracted_mw), np.float64)
    for s, p in zip(scenario.sites, sites_params):
        if not s.mining_until_conversion:
            contracted = contracted + np.asarray(p.gross_mw, np.float64)
    fleet_params = FleetParams(
        hashrate_ehs=h0, j_per_th=j0, contracted_mw=contracted, realisation=_value(inputs, "company.fleet.realisation", fl.realisation),
        power_price_usd_per_mwh=_value(inputs, "company.power.price_usd_per_mwh", pw.price_usd_per_mwh),
        site_opex_usd_per_mw_month=_value(inputs, "company.power.site_opex_usd_per_mw_month",
                                          pw.site_opex_usd_per_mw_month),
        sga_usd_per_month=np.asarray(_value(inputs, "company.sga_usd_m_per_year", co.sga_usd_m_per_year)) * 1e6 / 12,
        deployments=tuple(deployments))
    pol = co.treasury.policy
    treasury_params = TreasuryParams(
        btc_held0=_value(inputs, "company.treasury.btc", co.treasury.btc), policy=pol.kind,
        sell_fraction=_value(inputs, "company.treasury.policy.fraction", getattr(pol, "fraction", 0.0)),
        floor_usd=np.asarray(_value(inputs, "company.treasury.policy.floor_usd_m",
                                    getattr(pol, "floor_usd_m", 0.0))) * 1e6)
    debt = tuple(DebtParams(
        name=d.name, kind=d.kind, principal_usd=d.principal_usd_m * 1e6, coupon=d.coupon,
        maturity_month=_month_index(scenario, d.maturity),
        amortisation=0.0 if d.amortisation == "bullet" else 1.0 / max(
            _month_index(scenario, d.maturity) / 12.0, 1.0 / 12.0),
        conversion_price=d.conversion_price_usd, capped_call_cap_price=d.capped_call_cap_usd) for d in co.debt)
    capital_params = CapitalParams(
        cash0_usd=np.asarray(_value(inputs, "company.cash_usd_m", co.cash_usd_m)) * 1e6,
        basic_shares=co.basic_shares_m * 1e6, debt=debt, allow_equity_raise=co.allow_equity_raise)
    val = scenario.valuation
    vk = "valuation"
    valuation_params = ValuationParams(
        mining_discount_rate=_value(inputs, f"{vk}.discount_rate_mining", val.discount_rate_mining),
        hpc_discount_rate=_value(inputs, f"{vk}.discount_rate_hpc", val.discount_rate_hpc),
        mining_multiple=_value(inputs, f"{vk}.terminal_multiple_mining", val.terminal_multiple_mining),
        hpc_multiple=_value(inputs, f"{vk}.terminal_multiple_hpc", val.terminal_multiple_hpc),
        forward_years=max(val.forward_years))
    return CompanyParams(fleet=fleet_params, treasury=treasury_params, capital=capital_params,
                         valuation=valuation_params, sites=sites_params)


def simulate_chunk(scenario, inputs: Mapping[str, np.ndarray], draws,
                   history: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run every stage for one chunk of paths; returns cube-named arrays.

    ``draws`` is a :class:`simulator.rng.Draws` for the chunk (duck-typed here): every random
    number comes from a named stream of it, so a path's numbers do not depend on the chunking.
    ``history`` is the monthly log returns a ``bootstrap`` BTC process resamples, read once per
    run outside the engine (``simulator.history.bootstrap_history``); None for other processes.
    """
    months = scenario.simulation.horizon_months
    mp, height = _market(scenario, inputs, draws, history)
    params = _company_params(scenario, inputs, draws, _sites(scenario, inputs, draws))
    shocks = {name: getattr(draws, kind)(f"company.{name}", cols=cols)
              for name, kind, cols in company_shocks_needed(params, months)}
    co = run_company(mp, params, shocks)
    out = {name: getattr(co, name) for name in SERIES if hasattr(co, name)}
    out.update(btc_price=mp.btc_price, fees_per_block=mp.fees_per_block, subsidy=mp.subsidy,
               block_height=height, network_hashrate=mp.network_hashrate, hashprice=mp.hashprice)
    for name in PER_PATH:
        out[name] = getattr(co, name)
    years = np.asarray(scenario.valuation.forward_years) - 1
    out["value_per_share_forward"] = out["value_per_share_forward"][:, years]
    return out
