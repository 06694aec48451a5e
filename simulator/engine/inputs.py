"""The one adapter from a scenario and its sampled inputs to each stage's parameters.

The scenario is duck-typed (the engine imports no pydantic). An input is a scenario value that
is a number, a ``fixed`` spec, or a distribution whose per-path draws sit in ``inputs`` under its
dotted key path (:func:`value`). Money in ``_usd_m`` keys becomes USD here, annual hazards
become monthly ones; every other unit passes through as the key names it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator import units
from simulator.engine.params import (CapitalParams, CompanyParams, DebtParams, Deployment,
                                     FleetParams, MothballParams, Num, SiteParams, TaxParams, TreasuryParams,
                                     ValuationParams)


def value(inputs: Mapping[str, np.ndarray], key: str, spec):
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


def month_index(scenario, date) -> int:
    """Months from the valuation date to ``date`` (a month start)."""
    origin = scenario.simulation.valuation_date
    return (date.year - origin.year) * 12 + date.month - origin.month


@dataclass(frozen=True)
class MarketInputs:
    """What the market and network stages need for one chunk, from the scenario and its draws."""

    price_process: str
    """Key of :data:`simulator.engine.market.PRICE_PROCESSES`."""
    spot_usd: Num
    """BTC price at the valuation date [USD/BTC]."""
    price_params: dict
    """Keyword arguments of the price process (drift, volatility, ...; annual decimals)."""
    fees: dict
    """Keyword arguments of :func:`simulator.engine.market.fees_per_block` but the shocks."""
    network_model: str
    """``growth`` or ``cost_curve``."""
    network_params: dict
    """The network model's parameters, by engine name."""
    hashrate_ehs: Num
    """Network hashrate at the valuation date [EH/s]."""
    height0: int
    """Block height at the valuation date [blocks]."""
    halving_heights: tuple[int, ...]
    subsidy_btc: float
    """Block subsidy before the first halving in ``halving_heights`` [BTC]."""
    ai_lease: dict | None = None
    """Keyword arguments of :func:`simulator.engine.conversion.lease_index` but the shocks;
    None: no AI colocation lease-rate index."""


_NETWORK_FIELDS = {
    "growth": {"growth_year1": "growth_year1", "growth_decay_per_year": "growth_decay_per_year",
               "btc_beta": "btc_beta", "volatility": "vol", "btc_correlation": "rho_btc"},
    "cost_curve": {"marginal_j_per_th": "marginal_j_per_th",
                   "efficiency_improvement_per_year": "efficiency_improvement_per_year",
                   "power_price_usd_per_mwh": "power_usd_per_mwh", "entry_speed": "entry_speed",
                   "exit_speed": "exit_speed", "volatility": "vol"},
}
"""Scenario field -> engine parameter name, per network model."""


def market_inputs(scenario, inputs: Mapping[str, np.ndarray], history: np.ndarray | None) -> MarketInputs:
    """The market's and network's parameters; ``history`` is a bootstrap's monthly log returns."""
    btc = scenario.market.btc
    proc = btc.process
    key = "market.btc.process"
    if proc.kind == "gbm":
        params = dict(mu=value(inputs, f"{key}.drift", proc.drift),
                      sigma=value(inputs, f"{key}.volatility", proc.volatility))
    elif proc.kind == "merton":
        params = {"mu": value(inputs, f"{key}.drift", proc.drift),
                  "sigma": value(inputs, f"{key}.volatility", proc.volatility),
                  **{k: value(inputs, f"{key}.{k}", getattr(proc, k))
                     for k in ("jump_intensity_per_year", "jump_mean", "jump_sd")}}
    elif proc.kind == "regime":
        def pair(name):
            vals = [value(inputs, f"{key}.{name}.{i}", v) for i, v in enumerate(getattr(proc, name))]
            return np.stack(np.broadcast_arrays(*[np.asarray(v, np.float64) for v in vals]), axis=-1)
        initial = None if proc.initial_state == "stationary" else int(proc.initial_state)
        params = dict(mu=pair("drift"), sigma=pair("volatility"), p_stay=pair("stay_probability_monthly"),
                      initial_state=initial)
    else:
        if history is None:
            raise ValueError("a bootstrap BTC process needs its history's monthly log returns "
                             "(simulator.scenario.history.bootstrap_history, read once per run)")
        params = dict(returns=history, block_months=proc.block_months,
                      target_vol=value(inputs, f"{key}.target_volatility", proc.target_volatility))
    fees, fk = scenario.market.fees, "market.fees"
    fee_params = dict(
        median=value(inputs, f"{fk}.median_btc_per_block", fees.median_btc_per_block),
        log_sd=value(inputs, f"{fk}.log_sd", fees.log_sd),
        persistence=value(inputs, f"{fk}.persistence_monthly", fees.persistence_monthly),
        rho_btc=value(inputs, f"{fk}.btc_correlation", fees.btc_correlation))
    net = scenario.network
    model = net.model
    net_params = {engine_name: value(inputs, f"network.model.{field}", getattr(model, field))
                  for field, engine_name in _NETWORK_FIELDS[model.kind].items()}
    if model.kind == "growth":
        net_params["lag_months"] = model.lag_months
    days_to_valuation = (scenario.simulation.valuation_date - net.block_height_date).days
    ai, ak = scenario.market.ai_lease_index, "market.ai_lease_index"
    ai_lease = None if ai is None else dict(
        volatility=value(inputs, f"{ak}.volatility", ai.volatility),
        mean_reversion=value(inputs, f"{ak}.mean_reversion_per_year", ai.mean_reversion_per_year),
        correlation=value(inputs, f"{ak}.btc_correlation", ai.btc_correlation),
        long_run=value(inputs, f"{ak}.long_run_level", ai.long_run_level))
    return MarketInputs(
        price_process=proc.kind, spot_usd=value(inputs, "market.btc.spot_usd", btc.spot_usd),
        price_params=params, fees=fee_params, network_model=model.kind, network_params=net_params,
        hashrate_ehs=value(inputs, "network.hashrate_ehs", net.hashrate_ehs),
        height0=int(net.block_height + days_to_valuation * units.BLOCKS_PER_DAY),
        halving_heights=tuple(net.halving_heights), subsidy_btc=net.subsidy_btc, ai_lease=ai_lease)

def site_params(scenario, inputs, draws) -> tuple[SiteParams, ...]:
    """Per-site parameters; signing is a per-path Bernoulli draw from the stream ``sign.<site>``."""
    out = []
    n = draws.n_paths
    for site in scenario.sites:
        key = f"sites.{site.name}"
        conv = site.conversion
        lease = site.lease
        lk = f"{key}.lease"
        gross = value(inputs, f"{key}.gross_mw", site.gross_mw)
        if conv is None:
            sign = np.full(n, -1, dtype=np.int64)
            build = np.ones(n)
            conv_kw: dict = {"gross_to_it": 1.0}  # never used: a site without a conversion never signs
        else:
            ck = f"{key}.conversion"
            p_sign = value(inputs, f"{ck}.signing_probability", conv.signing_probability)
            u_sign = draws.uniform(f"sign.{site.name}", cols=1)[:, 0]
            when = np.rint(np.asarray(value(inputs, f"{ck}.signing_months", conv.signing_months), np.float64))
            sign = np.where(u_sign < p_sign, np.broadcast_to(when, (n,)), -1).astype(np.int64)
            build = np.broadcast_to(np.rint(np.asarray(
                value(inputs, f"{ck}.build_months", conv.build_months), np.float64)), (n,))
            if conv.converted_gross_mw is not None:
                gross = value(inputs, f"{ck}.converted_gross_mw", conv.converted_gross_mw)
            fin = conv.financing
            conv_kw = dict(
                gross_to_it=value(inputs, f"{ck}.gross_to_it", conv.gross_to_it),
                capex_usd_per_mw_it=np.asarray(value(inputs, f"{ck}.capex_usd_m_per_mw_it",
                                                      conv.capex_usd_m_per_mw_it)) * 1e6,
                # Tranche k energises delay_k months after the site's first energisation.
                tranches=tuple((t.fraction, build + t.delay_months) for t in conv.tranches),
                financing=fin.kind)
            conv_kw["follows_index"] = conv.rate_follows_index
            if conv.decision == "lsmc":  # the lottery's month is the first offer; later ones drawn
                conv_kw.update(decision="lsmc",
                               reoffer_probability_monthly=value(
                                   inputs, f"{ck}.reoffer_probability_monthly", conv.reoffer_probability_monthly),
                               u_offer=draws.uniform(f"offer.{site.name}"))
            if fin.kind == "project_debt":
                conv_kw.update(loan_to_cost=value(inputs, f"{ck}.financing.loan_to_cost", fin.loan_to_cost),
                               debt_rate=value(inputs, f"{ck}.financing.rate", fin.rate),
                               amortisation_years=fin.amortisation_years)
        hazard_annual = np.asarray(value(inputs, f"{lk}.tenant_default_probability_annual",
                                          lease.tenant_default_probability_annual), np.float64)
        out.append(SiteParams(
            name=site.name, gross_mw=gross, sign_month=sign, build_months=build,
            mines_until_conversion=site.mining_until_conversion,
            lease_rate_usd_per_kw_month=value(inputs, f"{lk}.rate_usd_per_kw_month", lease.rate_usd_per_kw_month),
            escalator=value(inputs, f"{lk}.escalator", lease.escalator),
            term_years=value(inputs, f"{lk}.term_years", lease.term_years),
            noi_margin=value(inputs, f"{lk}.noi_margin", lease.noi_margin),
            default_hazard_monthly=1.0 - (1.0 - hazard_annual) ** (1.0 / 12.0),
            downtime_months=value(inputs, f"{lk}.downtime_months", lease.downtime_months),
            relet_rate_usd_per_kw_month=(value(inputs, f"{lk}.relet_rate_usd_per_kw_month",
                                                lease.relet_rate_usd_per_kw_month)
                                         if lease.after_default == "relet" else None),
            renewal_probability=value(inputs, f"{lk}.renewal_probability", lease.renewal_probability),
            # A site that mines until it converts is valued through mining EBITDA until then.
            land_value_usd=0.0 if site.mining_until_conversion else np.asarray(gross, np.float64) * 1e6
            * np.asarray(value(inputs, f"{key}.powered_land_usd_m_per_mw", site.powered_land_usd_m_per_mw)),
            **conv_kw))
    return tuple(out)


def _mothball(inputs, mb) -> MothballParams | None:
    """The footprint's mothball options, or None for the fixed rule (absent or ``decision: fixed``)."""
    if mb is None or mb.decision == "fixed":
        return None
    key = "company.power.mothball"
    return MothballParams(
        cost_usd_per_mw_month=value(inputs, f"{key}.cost_usd_per_mw_month", mb.cost_usd_per_mw_month),
        restart_usd_per_mw=value(inputs, f"{key}.restart_usd_per_mw", mb.restart_usd_per_mw),
        land_usd_per_mw=np.asarray(value(inputs, f"{key}.land_usd_m_per_mw", mb.land_usd_m_per_mw),
                                   np.float64) * 1e6)


def company_params(scenario, inputs, sites_params) -> CompanyParams:
    """Fleet, treasury, capital and valuation parameters (fleet renewal apart: :func:`renewal_params`)."""
    co = scenario.company
    fl, pw = co.fleet, co.power
    deployments = []
    for i, d in enumerate(fl.deployments):
        dk = f"company.fleet.deployments.{i}"
        # A fixed date is a month index; a month_range was sampled as per-path month offsets.
        month = month_index(scenario, d.date) if isinstance(d.date, dt.date) else inputs[f"{dk}.date"]
        deployments.append(Deployment(month=month, hashrate_ehs=value(inputs, f"{dk}.hashrate_ehs", d.hashrate_ehs),
                                      j_per_th=value(inputs, f"{dk}.efficiency_j_per_th", d.efficiency_j_per_th),
                                      capex_usd_per_th=value(inputs, f"{dk}.capex_usd_per_th", d.capex_usd_per_th)))
    h0 = value(inputs, "company.fleet.hashrate_ehs", fl.hashrate_ehs)
    j0 = value(inputs, "company.fleet.efficiency_j_per_th", fl.efficiency_j_per_th)
    # Greenfield sites are not part of the mining footprint: chain.run_company adds their MW
    # to the mining budget only once built and reverted to mining.
    contracted = np.asarray(value(inputs, "company.power.contracted_mw", pw.contracted_mw), np.float64)
    moving = fl.relocation  # None: displaced machines move at no cost or downtime
    fleet_params = FleetParams(
        hashrate_ehs=h0, j_per_th=j0, contracted_mw=contracted, realisation=value(inputs, "company.fleet.realisation", fl.realisation),
        power_price_usd_per_mwh=value(inputs, "company.power.price_usd_per_mwh", pw.price_usd_per_mwh),
        site_opex_usd_per_mw_month=value(inputs, "company.power.site_opex_usd_per_mw_month",
                                          pw.site_opex_usd_per_mw_month),
        sga_usd_per_month=np.asarray(value(inputs, "company.sga_usd_m_per_year", co.sga_usd_m_per_year)) * 1e6 / 12,
        deployments=tuple(deployments),
        relocation_usd_per_mw=0.0 if moving is None else value(
            inputs, "company.fleet.relocation.cost_usd_per_mw", moving.cost_usd_per_mw),
        relocation_downtime_months=0 if moving is None else moving.downtime_months,
        demand_response_usd_per_mwh=value(inputs, "company.power.demand_response_usd_per_mwh",
                                          pw.demand_response_usd_per_mwh),
        curtail=pw.curtail, mothball=_mothball(inputs, pw.mothball))
    pol = co.treasury.policy
    treasury_params = TreasuryParams(
        btc_held0=value(inputs, "company.treasury.btc", co.treasury.btc), policy=pol.kind,
        sell_fraction=value(inputs, "company.treasury.policy.fraction", getattr(pol, "fraction", 0.0)),
        floor_usd=np.asarray(value(inputs, "company.treasury.policy.floor_usd_m",
                                    getattr(pol, "floor_usd_m", 0.0))) * 1e6)
    debt = tuple(DebtParams(
        name=d.name, kind=d.kind, principal_usd=d.principal_usd_m * 1e6, coupon=d.coupon,
        maturity_month=month_index(scenario, d.maturity),
        amortisation=0.0 if d.amortisation == "bullet" else 1.0 / max(
            month_index(scenario, d.maturity) / 12.0, 1.0 / 12.0),
        conversion_price=d.conversion_price_usd, capped_call_cap_price=d.capped_call_cap_usd,
        call_month=None if d.call_from is None else max(month_index(scenario, d.call_from), 0),
        call_trigger=d.call_trigger) for d in co.debt)
    capital_params = CapitalParams(
        cash0_usd=np.asarray(value(inputs, "company.cash_usd_m", co.cash_usd_m)) * 1e6,
        basic_shares=co.basic_shares_m * 1e6, debt=debt, allow_equity_raise=co.allow_equity_raise,
        min_issue_price_usd=co.min_issue_price_usd)
    val = scenario.valuation
    vk = "valuation"
    valuation_params = ValuationParams(
        risk_free_rate=value(inputs, f"{vk}.risk_free_rate", val.risk_free_rate),
        company_credit_spread=value(inputs, f"{vk}.company_credit_spread", val.company_credit_spread),
        tenant_credit_spread=value(inputs, f"{vk}.tenant_credit_spread", val.tenant_credit_spread),
        terminal_growth_mining=value(inputs, f"{vk}.terminal_growth_mining", val.terminal_growth_mining),
        terminal_growth_sga=value(inputs, f"{vk}.terminal_growth_sga", val.terminal_growth_sga),
        forward_years=max(val.forward_years))
    tx, tk = co.tax, "company.tax"
    tax_params = TaxParams(
        rate=value(inputs, f"{tk}.rate", tx.rate),
        depreciation_months_mining=round(tx.depreciation_years_mining * 12),
        depreciation_months_hpc=round(tx.depreciation_years_hpc * 12),
        existing_depreciation_usd_per_month=np.asarray(value(
            inputs, f"{tk}.existing_depreciation_usd_m_per_year", tx.existing_depreciation_usd_m_per_year)) * 1e6 / 12,
        existing_months=round(tx.existing_years * 12),
        loss_carryforward_usd=np.asarray(value(inputs, f"{tk}.loss_carryforward_usd_m",
                                               tx.loss_carryforward_usd_m)) * 1e6,
        loss_offset_limit=tx.loss_offset_limit)
    return CompanyParams(fleet=fleet_params, treasury=treasury_params, capital=capital_params,
                         valuation=valuation_params, sites=sites_params, tax=tax_params)


def renewal_params(scenario, inputs) -> dict | None:
    """Keyword arguments of :func:`simulator.engine.renewal.renewal_deployments`, or None."""
    rn, rk = scenario.company.fleet.renewal, "company.fleet.renewal"
    if rn is None:
        return None
    return dict(
        months=scenario.simulation.horizon_months, life_years=rn.machine_life_years,
        frontier_j_per_th=value(inputs, f"{rk}.frontier_j_per_th", rn.frontier_j_per_th),
        frontier_improvement_per_year=value(inputs, f"{rk}.frontier_improvement_per_year",
                                            rn.frontier_improvement_per_year),
        capex_usd_per_th=value(inputs, f"{rk}.capex_usd_per_th", rn.capex_usd_per_th),
        capex_change_per_year=value(inputs, f"{rk}.capex_change_per_year", rn.capex_change_per_year))
