"""The stage order, and the company engine entered at the market-paths boundary.

:func:`run_company` runs sites, fleet, taxes, treasury, capital and valuation on market paths
the caller supplies (style point 3): the lead's chain feeds it simulated paths, a test feeds it
constant arrays. Parameter dataclasses hold per-path inputs as ``float | ndarray [P]``.

Order inside :func:`run_company` (domain.md, "Valuation"):

1. :func:`operations`: sites (MW off mining, rent, NOI, capex, project debt), run 12 months
   past the horizon so the lease's terminal year exists; the fleet on the MW the sites leave
   to mining; cash taxes; the operating streams with their terminal values; the state the
   mark reads at every month-end;
2. the mark ``V_t = op_t(state) + BTC held x price + cash - notes`` with ``op_t`` the fitted
   least-squares value of the operating streams after t (:func:`fit_marks`, fitted once per
   run on pricing paths of its own);
3. pass A: cash and treasury with every note treated as debt and no equity raises;
4. each convertible converts where the issuer's call or maturity makes it
   (``capital.conversion_month``, on the pass-A mark);
5. pass B: cash with conversions settled and equity raised at the pass-A mark when cash
   would go negative (a path where the mark is nothing then defaults);
6. value to equity per path (pricing measure) and the mark at 12, 24, 36 ... months
   (the forward values, read on real-world paths).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Mapping

import numpy as np

import simulator.engine.capital as capital
import simulator.engine.conversion as conversion
import simulator.engine.exercise as exercise
import simulator.engine.inputs as inputs_
import simulator.engine.market as market
import simulator.engine.marks as marks_
import simulator.engine.network as network
import simulator.engine.fleet as fleet
import simulator.engine.mothball as mothball
import simulator.engine.renewal as renewal
import simulator.engine.sites as sites
import simulator.engine.taxes as taxes
import simulator.engine.timegrid as timegrid
import simulator.engine.treasury as treasury
import simulator.engine.valuation as valuation
from simulator import units
from simulator.engine.params import (MONTHS_AHEAD, CapitalParams, CompanyParams, CompanyPaths,
                                     DebtParams, Deployment, FleetParams, MarketPaths, Num,
                                     RenewalParams, SiteParams, TaxParams, TreasuryParams,
                                     ValuationParams)

__all__ = ["CapitalParams", "CompanyParams", "CompanyPaths", "DebtParams", "Deployment",
           "FleetParams", "MarketPaths", "SiteParams", "TaxParams", "TreasuryParams",
           "ValuationParams", "MARK_STATE", "MONTHS_AHEAD", "Num", "company_shocks_needed",
           "World", "control_months", "control_names", "fit_marks", "operations", "run_company",
           "simulate_chunk", "world_paths", "follows_index"]

MARK_STATE = ("log_btc_price", "log_hashprice", "company_hashrate", "mining_headroom_usd_per_day",
              "hpc_noi_run_rate_usd_per_year", "hpc_noi_pending_usd_per_year",
              "hpc_capex_ahead_usd", "project_debt_usd", "hpc_pipeline_noi_usd_per_year",
              "sga_usd_per_month", "tax_loss_carryforward_usd", "mining_mw_mothballed")
"""The state at a month-end the mark regresses on (domain.md, "Valuation"), each known at that
month-end: BTC and hashprice (hence network hashrate and fees), the fleet's size and its margin
over breakeven, the leases' NOI run-rate, the NOI signed but not yet (or no longer) earned, the
fit-out still to pay on the build schedule, project debt, the NOI the unsigned sites could earn,
overheads, the tax losses carried, and the MW mothballed (zero on every path under the fixed
rule, so then left out of the basis). Cash, BTC held and the notes enter the mark exactly,
outside the regression. Where a site's offers follow the AI lease-rate index, its log
(``log_ai_lease_index``) is added: it prices the offers still to come."""

CONTROL_MONTHS = (6, 12, 24, 36, 48, 60, 84)
"""Months at which the discounted BTC price serves as a control variate (plus the horizon)."""


def control_months(months: int) -> list[int]:
    """The BTC columns of ``pricing_controls``: :data:`CONTROL_MONTHS` within the grid, and ``T``."""
    return [m for m in CONTROL_MONTHS if m < months] + [months]


def control_names(scenario) -> list[str]:
    """Names of the columns of ``pricing_controls`` (:func:`simulate_chunk`)."""
    return ([f"btc_m{m}" for m in control_months(scenario.simulation.horizon_months)]
            + [f"signs_{s.name}" for s in scenario.sites if s.conversion is not None])


def company_shocks_needed(params: CompanyParams, months: int) -> list[tuple[str, str, int]]:
    """Uniform shocks :func:`run_company` reads: ``(name, kind, columns)``.

    Sites run ``months + 12`` months so that the lease's first year after the horizon exists.
    """
    cols = months + MONTHS_AHEAD
    return [(f"{kind}_{s.name}", "uniform", cols)
            for s in params.sites for kind in ("tenant_default", "renewal")]


def _per_path(x, n: int, dtype=np.float64) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=dtype).reshape(-1), (n,))


def _run_sites(site_params, n: int, months: int, shocks, vp: ValuationParams):
    """Run every site over ``months`` (+12); returns summed arrays and per-site facts.

    Besides the summed series, ``tot["terminal"]`` is the leases' value at the horizon (a
    growing perpetuity of each site's first year after it, at r plus the tenant spread, plus
    the powered land of sites still unsigned) [USD], [P], and ``tot["pipeline"]`` the annual
    NOI each site could earn if signed, on months it is not yet signed [USD/yr], [P, T].
    """
    ext = months + MONTHS_AHEAD
    keys = ("off_mw", "mining_budget_mw", "hpc_mw_it", "rent", "noi", "capex", "draws", "interest",
            "principal", "balance")
    tot: dict[str, np.ndarray] = {}

    def add(key, a):
        # The first site's fresh arrays become the totals: no zeroed [P, T + 12] buffers.
        if key in tot:
            tot[key] += a
        else:
            tot[key] = a
    terminal = np.zeros(n)
    pipeline = np.zeros((n, months))
    pending = np.zeros((n, months))
    lease_years = []  # (NOI of the first year after the horizon [P], escalator) per site
    lease_rate = _per_path(vp.risk_free_rate, n) + _per_path(vp.tenant_credit_spread, n)
    t = np.arange(months)[None, :]
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
        unsigned_at_end = (sign_p < 0) | (sign_p >= months)
        first_year = r.noi[:, months:].sum(axis=1)
        terminal += valuation.gordon(first_year, lease_rate, s.escalator)
        lease_years.append((first_year, s.escalator))
        terminal += np.where(unsigned_at_end, _per_path(s.land_value_usd, n), 0.0)
        potential = (_per_path(s.gross_mw, n) / _per_path(s.gross_to_it, n) * units.KW_PER_MW
                     * _per_path(s.lease_rate_usd_per_kw_month, n) * _per_path(s.noi_margin, n)
                     * units.MONTHS_PER_YEAR)
        # Not yet signed at month t: the path never signs or signs after t (unknown at t).
        unsigned = (sign_p[:, None] < 0) | (sign_p[:, None] > t)
        pipeline += np.where(unsigned, potential[:, None], 0.0)
        # Signed, and not (or no longer) leasing its full IT load: the NOI still to come.
        it_mw = _per_path(s.gross_mw, n) / _per_path(s.gross_to_it, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            idle = np.clip(1.0 - r.hpc_mw_it[:, :months] / it_mw[:, None], 0.0, 1.0)
        pending += np.where(unsigned, 0.0, idle * potential[:, None])
        if s.financing == "project_debt":
            loan = sites.project_debt(r.capex, r.build_end_month, loan_to_cost=s.loan_to_cost,
                                      rate=s.debt_rate, amortisation_years=s.amortisation_years)
            for k, a in zip(("draws", "interest", "principal", "balance"), loan):
                add(k, a)
        sign.append(sign_p)
        energise.append(r.energise_month)
    for k in keys:
        if k not in tot:
            tot[k] = np.zeros((n, ext))
    tot["terminal"], tot["pipeline"], tot["pending"] = terminal, pipeline, pending
    tot["lease_years"] = lease_years
    stack = (lambda a: np.stack(a, axis=1)) if sign else (lambda a: np.zeros((n, 0), np.int64))
    return tot, stack(sign), stack(energise)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Note:
    """One instrument's schedule on a grid long enough to reach its maturity, and its value."""

    params: DebtParams
    balance: np.ndarray  #: closing balance [USD], [1, E] (E >= T covers the maturity)
    interest: np.ndarray  #: coupon [USD/month], [1, E]
    scheduled: np.ndarray  #: amortisation [USD/month], [1, E]
    balloon: np.ndarray  #: payment at maturity [USD/month], [1, E]
    ahead: np.ndarray
    """Value at each month-end on the grid of the payments after it, at r plus the company's
    credit spread [USD], [P or 1, T]."""

    @property
    def flows(self) -> np.ndarray:
        return self.interest + self.scheduled + self.balloon


def _notes(debt_params, months: int, rate) -> list[Note]:
    """Every note's schedule, and the value of its payments after each month-end."""
    out = []
    for d in debt_params:
        ext = max(months, d.maturity_month + 1)
        balance, interest, scheduled, balloon = capital.debt_schedule(
            d.principal_usd, d.coupon, d.maturity_month, d.amortisation, ext)
        flows = interest + scheduled + balloon
        beyond = (valuation.continuation(flows[:, months - 1:], rate)[:, 0] if ext > months
                  else 0.0)
        out.append(Note(d, balance, interest, scheduled, balloon,
                        valuation.continuation(flows[:, :months], rate, terminal=beyond)))
    return out


class MarkState(Mapping):
    """:data:`MARK_STATE` at every month-end, ``name -> [P, T]``, each computed when first read.

    A run's marks read a few years of month-ends (the call windows, the forward dates, the
    months a raise is priced): :meth:`block` computes only the elements asked for, with the
    same elementwise arithmetic as the whole array, so the numbers are the same. Reading a
    variable whole (``state[name]``, as the fit does) computes it once and keeps it.
    """

    def __init__(self, read: Mapping[str, Callable[[tuple], np.ndarray]]) -> None:
        self._read, self._whole = dict(read), {}  #: name -> f(index into [P, T])

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._whole:
            self._whole[name] = self._read[name]((slice(None), slice(None)))
        return self._whole[name]

    def __iter__(self):
        return iter(self._read)

    def __len__(self) -> int:
        return len(self._read)

    def block(self, name: str, index: tuple) -> np.ndarray:
        """``self[name][index]``, computed on those elements only unless read whole already."""
        if name in self._whole:
            return self._whole[name][index]
        return self._read[name](index)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Operations:
    """Everything of a company's paths that does not depend on its capital decisions."""

    fleet: fleet.FleetResult
    sites: dict
    sign_month: np.ndarray  #: [P, S] int
    energise_month: np.ndarray  #: [P, S] int
    sga: np.ndarray  #: [USD/month], [P, T]
    fleet_capex: np.ndarray  #: machines and relocation [USD/month], [P, T]
    tax: taxes.TaxResult
    mining_stream: np.ndarray
    """Margin - site opex - fleet capex - SG&A - tax [USD/month], [P, T], discounted at r."""
    lease_stream: np.ndarray
    """NOI - fit-out capex + project-debt draws - its interest and principal [USD/month],
    [P, T], discounted at r plus the tenant spread."""
    terminal_r: np.ndarray
    """Mining less SG&A less tax after the horizon, valued at it [USD], [P]."""
    terminal_lease: np.ndarray
    """Leases and land after the horizon less project debt then owed, valued at it [USD], [P]."""
    parts: dict
    """Per-path present values today of the bridge's operating parts [USD], [P]."""
    state: MarkState
    """:data:`MARK_STATE` at every month-end, each [P, T], computed where read."""
    regime: np.ndarray | None = None
    """Mining footprint operating, mothballed or sold (``mothball.REGIMES``) [P, T] int8;
    None under the fixed rule."""
    land_sale: np.ndarray | None = None
    """Proceeds of selling the footprint's powered land [USD/month], [P, T]; None: none."""
    policy: object = None
    """The fitted mothball policy (``exercise.Policy``) the regimes followed."""
    renewal: object = None
    """Fleet renewal as decided (:class:`_Renewed`: each cohort's vintage by year and the
    policies); None unless ``company.fleet.renewal.decision`` is lsmc."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Groundwork:
    """What a company's paths do whatever BTC and the network do: the sites, the fleet as
    planned and moved, the fit-out's depreciation and SG&A. Both measures' runs of a chunk
    share one (:func:`groundwork`); nothing downstream writes into its arrays."""

    sites: dict
    """:func:`_run_sites`' totals over ``months + 12`` months."""
    now: dict
    """The same totals on the grid's ``months`` [P, T] (views)."""
    sign_month: np.ndarray  #: [P, S] int
    energise_month: np.ndarray  #: [P, S] int
    planned: np.ndarray  #: the fleet as planned [EH/s], [1, T]
    fleet_j: np.ndarray  #: its efficiency [J/TH], [1, T]
    class_hashrate: np.ndarray  #: the planned fleet by machine class [EH/s], [K, P or 1, T]
    class_j: np.ndarray  #: each class's efficiency [J/TH], [K, P or 1, 1]
    fleet_capex: np.ndarray  #: machines and relocation [USD/month], [P, T]
    available_mw: np.ndarray  #: MW the fleet may draw [MW], [P, T]
    offline_mw: np.ndarray | None  #: MW moving, so down [MW], [P, T]; None when nothing moves
    depreciation_hpc: np.ndarray  #: the fit-out's straight-line depreciation [USD/month], [P, T]
    capex_ahead: np.ndarray  #: fit-out still to pay after each month-end [USD], [P, T]
    sga: np.ndarray  #: [USD/month], [P, T]
    notes: list
    """Every note's schedule and value as debt (:func:`_notes`), at r plus the company spread."""
    earmarked_mw: np.ndarray | None = None
    """MW of the mining footprint's listed sites not yet signed at each month-end: kept for
    their conversion if the rest of the footprint is sold [MW], [P, T]."""
    lease_ops: np.ndarray | None = None
    """The leases' cash to equity before tax: NOI less fit-out capex, plus project-debt draws,
    less its interest and principal [USD/month], [P, T]."""
    notes_ahead: np.ndarray | None = None
    """Every note's payments after each month-end, valued there, as debt [USD], [P, T]."""


def groundwork(params: CompanyParams, shocks: Mapping[str, np.ndarray], n: int,
               months: int) -> Groundwork:
    """The market-independent stages of :func:`operations` for ``n`` paths."""
    fp, vp, tp = params.fleet, params.valuation, params.tax
    st, sign, energise = _run_sites(params.sites, n, months, shocks, vp)
    now = {k: a[:, :months] for k, a in st.items() if k not in ("terminal", "pipeline", "pending", "lease_years")}
    steps = [(d.month, d.hashrate_ehs, d.j_per_th, d.capex_usd_per_th) for d in fp.deployments]
    planned, fleet_j, fleet_capex = fleet.planned_fleet(fp.hashrate_ehs, fp.j_per_th, steps, months)
    class_hashrate, class_j = fleet.planned_classes(fp.hashrate_ehs, fp.j_per_th, steps, months)
    available = _per_path(fp.contracted_mw, n)[:, None] + now["mining_budget_mw"]
    offline = None
    if fp.relocation_downtime_months > 0 or np.any(np.asarray(fp.relocation_usd_per_mw) > 0):
        moved, offline = fleet.displacement(available, planned * fleet_j, fp.contracted_mw,
                                            int(fp.relocation_downtime_months))
        fleet_capex = fleet_capex + moved * _per_path(fp.relocation_usd_per_mw, n)[:, None]
    lease_ops = now["noi"] - now["capex"]
    lease_ops += now["draws"]
    lease_ops -= now["interest"]
    lease_ops -= now["principal"]
    notes = _notes(params.capital.debt, months,
                   _per_path(vp.risk_free_rate, n) + _per_path(vp.company_credit_spread, n))
    ahead = np.cumsum(now["capex"][:, ::-1], axis=1)[:, ::-1]
    ahead[:, :-1] = ahead[:, 1:].copy()
    ahead[:, -1] = 0.0
    return Groundwork(
        sites=st, now=now, sign_month=sign, energise_month=energise, planned=planned,
        fleet_j=fleet_j, class_hashrate=class_hashrate, class_j=class_j, fleet_capex=np.broadcast_to(fleet_capex, (n, months)),
        available_mw=available, offline_mw=offline,
        depreciation_hpc=taxes.straight_line(now["capex"], tp.depreciation_months_hpc),
        capex_ahead=ahead,
        sga=np.broadcast_to(fleet.sga_schedule(fp.sga_usd_per_month, fp.sga_growth, months),
                            (n, months)),
        notes=notes, earmarked_mw=_earmarked(params.sites, sign, n, months), lease_ops=lease_ops,
        notes_ahead=_notes_ahead(notes, n, months))


def _earmarked(site_params, sign: np.ndarray, n: int, months: int) -> np.ndarray:
    """MW of mining sites with a conversion not yet signed at each month-end [MW], [P, T]."""
    t = np.arange(months)[None, :]
    out = np.zeros((n, months))
    for i, s in enumerate(site_params):
        if s.mines_until_conversion:
            unsigned = (sign[:, i:i + 1] < 0) | (sign[:, i:i + 1] > t)
            out += unsigned * _per_path(s.gross_mw, n)[:, None]
    return out


def _operate_fleet(mp: MarketPaths, fp: FleetParams, g: Groundwork) -> fleet.FleetResult:
    """The fleet's classes of the groundwork ``g`` run on the market paths ``mp``."""
    return fleet.operate(
        g.class_hashrate, g.class_j, g.available_mw, network_hashrate=mp.network_hashrate,
        blocks=mp.blocks, subsidy=mp.subsidy, fees_per_block=mp.fees_per_block,
        btc_price=mp.btc_price, hashprice=mp.hashprice, days=mp.days,
        realisation=fp.realisation, power_price_usd_per_mwh=fp.power_price_usd_per_mwh,
        site_opex_usd_per_mw_month=fp.site_opex_usd_per_mw_month, offline_mw=g.offline_mw,
        demand_response_usd_per_mwh=fp.demand_response_usd_per_mwh, curtail=fp.curtail)


def operations(market_paths: MarketPaths, params: CompanyParams, shocks: Mapping[str, np.ndarray],
               note_interest=None, terminal: bool = True, ground: Groundwork | None = None,
               policy=None, renewal_policy=None) -> Operations:
    """Sites, fleet, taxes and the operating streams of every path (see the module docstring).

    ``note_interest`` [USD/month], [1 or P, T] is the notes' coupon, deductible for tax.
    ``terminal=False`` skips what only a value today needs (the terminal values and the
    present values of the parts, left zero and NaN): the real-world paths are marked, not
    valued. ``ground`` is this chunk's :func:`groundwork`, computed here when not given.
    ``policy`` is the mothball policy fitted on the run's pricing paths (``fit_marks``); with
    ``company.power.mothball`` on and no policy, one is fitted on these paths (the hand
    calculation, where nothing is random). ``renewal_policy`` is the same for fleet renewal
    (``company.fleet.renewal.decision: lsmc``, :func:`_renewing`).
    """
    mp = market_paths
    n, months = mp.btc_price.shape
    fp, vp, tp = params.fleet, params.valuation, params.tax
    r = _per_path(vp.risk_free_rate, n)
    k_lease = r + _per_path(vp.tenant_credit_spread, n)
    g = groundwork(params, shocks, n, months) if ground is None else ground
    renewed = None
    if fp.renewal is not None:  # the fleet as renewed on this path: its own groundwork
        renewed = _renewing(mp, g, fp, r, _per_path(vp.terminal_growth_mining, n), renewal_policy)
        g = renewed.ground
    st, now, sign, energise = g.sites, g.now, g.sign_month, g.energise_month
    fleet_j, fleet_capex = g.fleet_j, g.fleet_capex
    fr = _operate_fleet(mp, fp, g)
    growth = _per_path(vp.terminal_growth_mining, n)
    dropped_at = np.full(n, months)
    sw = None
    if fp.mothball is not None:  # mothball, restart or sell, decided by least squares
        sw = _switching(mp, fr, g, fp, r, growth, policy, need_terminal=terminal or policy is None)
        fr_kept, fr, fleet_capex = fr, sw.fleet, fleet_capex * sw.kept
    # The fixed rule (no mothball): mining is let go at the first year-end where keeping the
    # fleet is worth nothing at any horizon (its site opex outweighs whatever margin it can
    # still earn, halvings counted); the same valuation, kept to its best year, is the
    # terminal value of a fleet still kept at the horizon (_mining_plan).
    checks = np.arange(units.MONTHS_PER_YEAR - 1, months - 1, units.MONTHS_PER_YEAR)
    for m in (checks if sw is None else ()):  # only the fleets still kept are looked at again
        rows = np.flatnonzero(dropped_at == months)
        if rows.size == 0:
            break
        run_rate = _mining_run_rate(mp, fr, fp, int(m), rows)
        # A fleet whose next year earns more than its site opex is kept (the best year to
        # stop is then at least one year away); only the others need the whole projection.
        doubt = _mining_flows(run_rate, growth[rows], years=1)[:, 0] <= 0.0
        if doubt.any():
            let_go = _mining_plan_from(tuple(x[doubt] for x in run_rate), r[rows[doubt]],
                                       growth[rows[doubt]], CHECK_YEARS)[2] == 0
            dropped_at[rows[doubt][let_go]] = m
    if sw is None:
        # The fleet as it would run, for the run-rate after the horizon: on the paths that
        # keep it to the horizon, the only ones that read it, it is the fleet as it runs.
        fr_kept = fr
    if (dropped_at < months).any():
        keep = np.arange(months)[None, :] <= dropped_at[:, None]
        _abandon(fr, keep)  # fr is this call's own (_operate_fleet)
        fleet_capex = fleet_capex * keep  # no machines bought or moved for a fleet let go
    sga = g.sga
    mine_ebitda = fr.mining_margin - fr.site_opex

    # Cash tax on income after depreciation and interest, losses carried forward.
    income = mine_ebitda - sga
    income += now["noi"]
    income -= now["interest"]
    if note_interest is not None:
        income -= note_interest
    dep = taxes.straight_line(fleet_capex, tp.depreciation_months_mining)
    dep += g.depreciation_hpc
    if tp.existing_months > 0:
        dep = dep + np.where(np.arange(months)[None, :] < tp.existing_months,
                             _per_path(tp.existing_depreciation_usd_per_month, n)[:, None], 0.0)
    tax = taxes.cash_tax(income, dep, rate=tp.rate, nol0=tp.loss_carryforward_usd,
                         nol_limit=tp.loss_offset_limit)

    # Each year's tax is split between the leases and the rest by their shares of the year's
    # positive income, and each part is discounted with the income it is levied on.
    w = units.MONTHS_PER_YEAR
    starts = np.arange(0, months, w)
    noi_year = np.add.reduceat(now["noi"], starts, axis=1)
    mine_year = np.maximum(np.add.reduceat(mine_ebitda, starts, axis=1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lease_share = np.where(noi_year + mine_year > 0, noi_year / (noi_year + mine_year), 0.0)
    tax_lease = tax.tax * np.repeat(lease_share, w, axis=1)[:, :months]
    tax_rest = tax.tax - tax_lease

    mining_ops = mine_ebitda - fleet_capex
    if sw is not None:
        mining_ops += sw.land_sale  # untaxed: the land's basis taken as its price
    mining_stream = mining_ops - sga
    mining_stream -= tax_rest
    lease_ops = g.lease_ops
    lease_stream = lease_ops - tax_lease

    if terminal:
        # After the horizon, year by year (domain.md: overheads and taxes go on): mining as it is
        # kept (nothing once abandoned), SG&A at its growth, each lease at its escalator
        # (_run_sites), depreciation and project-debt interest as scheduled, and the tax on what
        # they leave, losses carried, split and discounted as inside the horizon.
        kept = dropped_at >= months
        if sw is None:
            tv_mining, mine_after, years_kept = _mining_plan(mp, fr_kept, fp, months - 1, vp.risk_free_rate,
                                                             vp.terminal_growth_mining)
            tv_mining = np.where(kept, tv_mining, 0.0)
        else:  # the regime of the last month continues: the projection, restart or sale
            end = sw.regime[:, -1]
            tv_mining = np.choose(end, sw.terminal)
            mine_after, years_kept = sw.after, sw.years_kept
            kept = (end == mothball.OPERATING) | ((end == mothball.MOTHBALLED) & sw.restarts)
        sga_first = valuation.terminal_run_rate(sga, vp.terminal_growth_sga)
        tv_sga = valuation.gordon(sga_first, r, vp.terminal_growth_sga)
        years = TERMINAL_YEARS
        y = np.arange(years, dtype=np.float64)[None, :]
        mine_after *= (kept[:, None] & (np.arange(1, years + 1)[None, :] <= years_kept[:, None]))
        noi_after = sum((first[:, None] * np.exp(valuation.rate_col(g) * y)
                         for first, g in st["lease_years"]), np.zeros((n, years)))
        income_after = mine_after + noi_after
        income_after -= sga_first[:, None] * np.exp(valuation.rate_col(vp.terminal_growth_sga) * y)
        income_after -= taxes.depreciation_by_year(fleet_capex, tp.depreciation_months_mining, years)
        income_after -= taxes.depreciation_by_year(now["capex"], tp.depreciation_months_hpc, years)
        if tp.existing_months > months:
            left = np.clip(tp.existing_months - months - w * y, 0, w)
            income_after -= left * _per_path(tp.existing_depreciation_usd_per_month, n)[:, None]
        income_after -= _interest_by_year(st, months, years)
        tax_after = taxes.tax_by_year(income_after, tax.nol[:, -1], rate=tp.rate,
                                      nol_limit=tp.loss_offset_limit)
        pos_mine = np.maximum(mine_after, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share_after = np.where(noi_after + pos_mine > 0, noi_after / (noi_after + pos_mine), 0.0)
        tv_tax_lease = valuation.annual_value(tax_after * share_after, k_lease)
        tv_tax_rest = valuation.annual_value(tax_after * (1.0 - share_after), vp.risk_free_rate)
        debt_left = st["balance"][:, months - 1]
        terminal_r = tv_mining - tv_sga - tv_tax_rest
        terminal_lease = st["terminal"] - debt_left - tv_tax_lease

        at_r, at_lease = valuation.at_horizon(r, months), valuation.at_horizon(k_lease, months)
        parts = dict(
            pv_mining=valuation.present_value(mining_ops, r) + tv_mining * at_r,
            pv_sga=-(valuation.present_value(sga, r) + tv_sga * at_r),
            pv_taxes=-(valuation.present_value(tax_rest, r) + tv_tax_rest * at_r
                       + valuation.present_value(tax_lease, k_lease) + tv_tax_lease * at_lease),
            pv_hpc=valuation.present_value(lease_ops, k_lease)
            + (st["terminal"] - debt_left) * at_lease)
    else:  # real-world paths: their cash flows and marks, not a value today
        terminal_r = terminal_lease = np.zeros(n)
        parts = {k: np.full(n, np.nan) for k in ("pv_mining", "pv_sga", "pv_taxes", "pv_hpc")}

    def whole(x):  # [P, T] or a broadcast view of it, indexed like the state
        return np.broadcast_to(x, (n, months))

    btc, hashprice, hashrate = mp.btc_price, whole(mp.hashprice), fr.company_hashrate
    fleet_j_t, power = whole(fleet_j), whole(_per_path(fp.power_price_usd_per_mwh, n)[:, None])

    def headroom(ix):
        return hashrate[ix] * units.PH_PER_EH * (
            hashprice[ix] - fleet.breakeven_hashprice(fleet_j_t[ix], power[ix]))
    noi = now["noi"]
    mothballed = (np.zeros((n, months)) if sw is None else  # zero pages, untouched unless read
                  fr_kept.mining_mw * (sw.regime == mothball.MOTHBALLED))
    read = {
        "log_btc_price": lambda ix: np.log(btc[ix]),
        "log_hashprice": lambda ix: np.log(np.maximum(hashprice[ix], 1e-9)),
        "company_hashrate": lambda ix: hashrate[ix],
        "mining_headroom_usd_per_day": headroom,
        "hpc_noi_run_rate_usd_per_year": lambda ix: noi[ix] * units.MONTHS_PER_YEAR,
        "hpc_noi_pending_usd_per_year": whole(st["pending"]).__getitem__,
        "hpc_capex_ahead_usd": whole(g.capex_ahead).__getitem__,
        "project_debt_usd": whole(now["balance"]).__getitem__,
        "hpc_pipeline_noi_usd_per_year": whole(st["pipeline"]).__getitem__,
        "sga_usd_per_month": whole(sga).__getitem__,
        "tax_loss_carryforward_usd": whole(tax.nol).__getitem__,
        "mining_mw_mothballed": mothballed.__getitem__,
    }
    read = {k: read[k] for k in MARK_STATE}  # the documented variables, in their order
    if any(s.follows_index for s in params.sites) and mp.ai_lease_index is not None:
        index = whole(mp.ai_lease_index)
        read["log_ai_lease_index"] = lambda ix: np.log(index[ix])  # future offers' rate
    state = MarkState(read)
    return Operations(fr, now, sign, energise, sga, fleet_capex, tax, mining_stream, lease_stream,
                      terminal_r, terminal_lease, parts, state,
                      *((None, None, None) if sw is None else (sw.regime, sw.land_sale, sw.policy)),
                      renewal=renewed)


POLICY_STATE = ("log_btc_price", "log_hashprice", "mining_headroom_usd_per_day",
                "site_opex_usd_per_month", "company_hashrate", "land_value_usd")
"""The state the mothball decision regresses on at a month-end, all of the fleet as it would
run (so it does not depend on the decision): BTC, hashprice, the margin over breakeven, the
site opex it would pay, its hashrate, and what the land would fetch. The regime itself is not
regressed on: each regime has its own continuation value."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Switched:
    regime: np.ndarray  #: [P, T] int8
    fleet: fleet.FleetResult  #: the fleet as it ran under the regimes
    kept: np.ndarray  #: 1 until sold [P, T]
    land_sale: np.ndarray  #: [USD/month], [P, T]
    policy: object
    terminal: list  #: value after the horizon by regime of the last month [USD], 3 x [P]
    restarts: np.ndarray  #: a mothballed footprint restarts at the horizon [P] bool
    after: np.ndarray | None  #: the running footprint's projected flows [USD/yr], [P, Y]
    years_kept: np.ndarray | None  #: years it runs after the horizon [P]


def _switching(mp: MarketPaths, fr, g: Groundwork, fp: FleetParams, r, growth, policy,
               need_terminal: bool) -> _Switched:
    """The mining footprint operating, mothballed or sold, month by month (issue 16, item 3).

    The decision is the footprint's as a whole (the fleet on the MW it is allocated; the
    engine knows no separate mining sites), taken at each month-end from month 0's on the
    pricing-measure least-squares policy (``exercise``), pre-tax and before financing, as the
    fixed rule's was. ``policy`` None fits it on these paths (then in sample).
    """
    n, months = mp.btc_price.shape
    mb = fp.mothball
    sale_mw = np.maximum(g.available_mw - g.earmarked_mw, 0.0)
    flows, moves, land = mothball.regime_flows(
        fr.mining_margin - fr.site_opex, g.fleet_capex, fr.mining_mw, sale_mw,
        cost_usd_per_mw_month=mb.cost_usd_per_mw_month, restart_usd_per_mw=mb.restart_usd_per_mw,
        land_usd_per_mw=mb.land_usd_per_mw)
    state = {
        "log_btc_price": np.log(mp.btc_price),
        "log_hashprice": np.log(np.maximum(mp.hashprice, 1e-9)),
        "mining_headroom_usd_per_day": fr.company_hashrate * units.PH_PER_EH * (
            mp.hashprice - fleet.breakeven_hashprice(
                g.fleet_j, _per_path(fp.power_price_usd_per_mwh, n)[:, None])),
        "site_opex_usd_per_month": fr.site_opex,
        "company_hashrate": fr.company_hashrate,
        "land_value_usd": land,
    }
    terminal, restarts, after, years_kept = None, None, None, None
    if need_terminal:
        land_end = land[:, -1]
        value, after, years_kept = _mining_plan_from(
            _mining_run_rate(mp, fr, fp, months - 1), r, growth, TERMINAL_YEARS, land=land_end)
        terminal, restarts = mothball.terminal_values(
            value, fr.mining_mw[:, -1] * _per_path(mb.restart_usd_per_mw, n), land_end)
    if policy is None:
        policy, _ = exercise.fit_switching(flows, moves, terminal, state, np.exp(-r / units.MONTHS_PER_YEAR))
    regime = exercise.apply_switching(policy, moves, state)
    running, kept, opex, land_sale = mothball.settle(
        regime, fr.site_opex, fr.mining_mw, land, cost_usd_per_mw_month=mb.cost_usd_per_mw_month,
        restart_usd_per_mw=mb.restart_usd_per_mw)
    scaled = {f: getattr(fr, f) * running for f in ("company_hashrate", "btc_mined", "mining_revenue",
                                                    "power_cost", "mining_margin", "running_mw")}
    ran = fleet.FleetResult(curtailed=np.where(running > 0, fr.curtailed, 1.0),
                            mining_mw=fr.mining_mw * kept, site_opex=opex, **scaled)
    return _Switched(regime, ran, kept, land_sale, policy, terminal, restarts, after, years_kept)


RENEWAL_STATE = ("log_btc_price", "revenue_usd_per_ph_day", "power_price_usd_per_mwh",
                 "site_opex_usd_per_mw_month", "frontier_j_per_th")
"""The state a renewal decision regresses on at a year-end: BTC, what a PH/s earns a day
(hashprice x realisation), the power price and site opex (per path inputs), and the frontier's
efficiency. Per-path constants that do not vary on the fitting paths drop out of the basis."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Renewed:
    ground: Groundwork  #: the groundwork with the fleet as renewed on each path
    machines: list  #: the cohorts (``renewal.cohorts``): (landing, EH/s, J/TH, retirement)
    regimes: tuple  #: each cohort's vintage in each year, [P, Y] int8 (0: its own machines)
    policies: tuple  #: one ``exercise.Policy`` per cohort


def _renewing(mp: MarketPaths, g: Groundwork, fp: FleetParams, r, growth, policies) -> _Renewed:
    """Fleet renewal decided by least squares, cohort by cohort (issue 16, item 5).

    The fleet is the cohorts of ``renewal.cohorts`` (the fleet at the valuation date aged
    evenly, each deployment), each retiring at the end of its life. At each year-end each
    cohort may be replaced by the frontier machine landing the next month, paid then; its
    regimes are its vintages (``exercise.fit_switching`` on a grid of years, each year's cash
    flows valued at its end; :func:`_vintage_values`). ``policies`` None fits them on these
    paths (in sample). The cohorts' vintages then make this path's fleet
    (:func:`_renewed_ground`).
    """
    n, months = mp.btc_price.shape
    rn, w = fp.renewal, units.MONTHS_PER_YEAR
    years = -(-months // w)
    steps = [(d.month, d.hashrate_ehs, d.j_per_th, d.capex_usd_per_th) for d in fp.deployments]
    machines = renewal.cohorts(fp.hashrate_ehs, fp.j_per_th, steps, rn.life_years)
    vintages = renewal.frontier(years - 1, rn.frontier_j_per_th, rn.frontier_improvement_per_year,
                                rn.capex_usd_per_th, rn.capex_change_per_year)
    ends = np.minimum(w * np.arange(years) + w - 1, months - 1)

    def per_year(x):
        return np.ascontiguousarray(np.broadcast_to(x, (n, months))[:, ends])
    state = {"log_btc_price": per_year(np.log(mp.btc_price)),
             "revenue_usd_per_ph_day": per_year(mp.hashprice * _per_path(fp.realisation, n)[:, None]),
             "power_price_usd_per_mwh": per_year(_per_path(fp.power_price_usd_per_mwh, n)[:, None]),
             "site_opex_usd_per_mw_month": per_year(_per_path(fp.site_opex_usd_per_mw_month, n)[:, None]),
             "frontier_j_per_th": per_year(_per_path(rn.frontier_j_per_th, n)[:, None])}
    state = {k: state[k] for k in RENEWAL_STATE}  # the documented variables, in their order
    moves = renewal.moves(vintages, r, years)
    if policies is None:
        value = _vintage_values(mp, fp, r, growth)
        new = [value(jv, w * v, w * (v + rn.life_years)) for v, (jv, _) in enumerate(vintages, start=1)]
    regimes, fitted = [], []
    for c, (land, _, j, retire) in enumerate(machines):
        consider = renewal.eligible(land, n, years)
        if policies is None:
            own = value(j, land, retire)
            policy, _ = exercise.fit_switching([own[0], *(x[0] for x in new)], moves,
                                               [own[1], *(x[1] for x in new)], state, np.exp(-r),
                                               consider=consider)
        else:
            policy = policies[c]
        regimes.append(exercise.apply_switching(policy, moves, state, consider=consider))
        fitted.append(policy)
    ground = _renewed_ground(g, fp, steps, renewal.renewed_classes(regimes, machines, vintages, months,
                                                                  rn.life_years))
    return _Renewed(ground, machines, tuple(regimes), tuple(fitted))


def _vintage_values(mp: MarketPaths, fp: FleetParams, r, growth):
    """``value(j, landing, retirement)``: what 1 EH/s of machines at ``j`` J/TH in service from
    ``landing`` to ``retirement`` earns, as ``(flows, after)``: the margin less site opex of
    each year valued at its end (``renewal.by_year``) [USD], [P, Y], as ``fleet.operate`` runs
    one class on its planned MW (pre-tax, before financing, as the mothball decision); and,
    if in service in the last month, the run-rate projection after the horizon
    (:func:`_mining_plan_from`, at the mining terminal ``growth``), valued at the last year's
    end [USD], [P]."""
    n, months = mp.btc_price.shape
    w = units.MONTHS_PER_YEAR
    revenue = mp.blocks * (mp.subsidy + mp.fees_per_block) * mp.btc_price / mp.network_hashrate
    revenue *= _per_path(fp.realisation, n)[:, None]
    margin = functools.partial(
        renewal.unit_margin, revenue_per_ehs=revenue, hashprice=mp.hashprice,
        hours=units.HOURS_PER_DAY * np.asarray(mp.days, np.float64),
        power_price_usd_per_mwh=fp.power_price_usd_per_mwh,
        site_opex_usd_per_mw_month=fp.site_opex_usd_per_mw_month,
        demand_response_usd_per_mwh=fp.demand_response_usd_per_mwh, curtail=fp.curtail)
    ones = np.broadcast_to(1.0, (n, months))  # 1 EH/s drawing 1 MW: the run-rate per J/TH
    unit = types.SimpleNamespace(company_hashrate=ones, mining_mw=ones, site_opex=np.broadcast_to(
        _per_path(fp.site_opex_usd_per_mw_month, n)[:, None], (n, months)))
    rev, power, opex, share, to_halving = _mining_run_rate(mp, unit, fp, months - 1)
    to_end = np.exp(r * (w * -(-months // w) - months) / w)  # a partial last year's end

    projected: dict[bytes, np.ndarray] = {}  # by J/TH: the aged cohorts share one

    def value(j, landing, retirement):
        on = renewal.alive(landing, retirement, months)
        jp = _per_path(j, n)
        key = jp.tobytes()
        if key not in projected:
            projected[key] = _mining_plan_from((rev, jp * power, jp * opex, share, to_halving), r,
                                               growth, TERMINAL_YEARS)[0] * to_end
        return (renewal.by_year(margin(j, on), r),
                np.where(np.broadcast_to(on[:, -1], (n,)), projected[key], 0.0))
    return value


def _renewed_ground(g: Groundwork, fp: FleetParams, steps, classes) -> Groundwork:
    """The groundwork with the fleet as renewed on each path: its classes
    (``renewal.renewed_classes``), plan and blended J/TH, the deployments' and the frontier
    machines' capex, and the displacement of machines off converting MW recomputed on it."""
    hashrate, effs, bought = classes
    _, n, months = hashrate.shape
    planned, mw = np.zeros((n, months)), np.zeros((n, months))
    for h_k, j_k in zip(hashrate, effs):  # class by class, in a fixed order: chunk-invariant sums
        planned += h_k
        mw += h_k * j_k
    with np.errstate(invalid="ignore", divide="ignore"):
        fleet_j = np.where(planned > 0, mw / planned, _per_path(fp.j_per_th, n)[:, None])
    capex = fleet.planned_fleet(fp.hashrate_ehs, fp.j_per_th, steps, months)[2] + bought
    offline = None
    if g.offline_mw is not None:
        moved, offline = fleet.displacement(g.available_mw, mw, fp.contracted_mw,
                                            int(fp.relocation_downtime_months))
        capex = capex + moved * _per_path(fp.relocation_usd_per_mw, n)[:, None]
    return dataclasses.replace(g, planned=planned, fleet_j=fleet_j, class_hashrate=hashrate,
                               class_j=effs, fleet_capex=np.broadcast_to(capex, (n, months)),
                               offline_mw=offline)


TERMINAL_YEARS = 150
"""Years projected after the horizon for mining and taxes (``valuation.annual_value``)."""


def _mining_run_rate(mp: MarketPaths, fr, fp: FleetParams, m: int, rows=slice(None)):
    """The fleet's full-run revenue and power cost and its site opex over the 12 months to
    month-end ``m`` [USD/yr], the subsidy's share of the block reward and the years to the
    next halving there, each [P] (or [len(rows)])."""
    n, months = mp.btc_price.shape
    w = units.MONTHS_PER_YEAR
    lo = max(m + 1 - w, 0)
    cols = slice(lo, m + 1)
    scale = w / (m + 1 - lo)
    days = np.asarray(mp.days, np.float64)[None, cols]
    # Most paths asked for: sum every path's months in place and keep the rows asked for,
    # rather than gathering them first (the same sums either way).
    most = isinstance(rows, slice) or 2 * len(rows) > n
    at, keep = (slice(None), rows) if most else (rows, slice(None))
    revenue = (fr.company_hashrate[at, cols] * units.PH_PER_EH
               * np.broadcast_to(mp.hashprice, (n, months))[at, cols] * days).sum(axis=1)[keep]
    revenue *= _per_path(fp.realisation, n)[rows] * scale
    power = (fr.mining_mw[at, cols] * (units.HOURS_PER_DAY * days)).sum(axis=1)[keep]
    power *= _per_path(fp.power_price_usd_per_mwh, n)[rows] * scale
    opex = fr.site_opex[at, cols].sum(axis=1)[keep] * scale
    subsidy = np.broadcast_to(mp.subsidy, (n, months))[rows, m]
    fees = np.broadcast_to(mp.fees_per_block, (n, months))[rows, m]
    share = subsidy / np.maximum(subsidy + fees, 1e-12)
    if mp.block_height is None:
        to_halving = np.full(share.shape, np.inf)
    else:
        height = mp.block_height[rows, m]
        interval = valuation.HALVING_INTERVAL_BLOCKS
        left = (np.floor(height / interval) + 1) * interval - height
        per_year = np.broadcast_to(mp.blocks, (n, months))[at, cols].sum(axis=1)[keep] * scale
        to_halving = left / np.maximum(per_year, 1.0)
    return revenue, power, opex, share, to_halving


CHECK_YEARS = 20
"""Years the year-end decision to let the fleet go looks ahead: with revenue that does not
grow (apart from the halvings, which only cut it) the best year to stop comes within a few;
the terminal value looks :data:`TERMINAL_YEARS` ahead."""


def _mining_plan(mp: MarketPaths, fr, fp: FleetParams, m: int, rate, growth,
                 years: int = TERMINAL_YEARS, rows=slice(None)):
    """The fleet kept from month-end ``m`` on its run-rate, and let go at the best year.

    Returns ``(value, flows, years_kept)``: the value at ``m`` of keeping the fleet until the
    year that makes it worth most, zero if no year does [USD], [P]; the projected margin less
    site opex in each year after ``m`` [USD/yr], [P, Y]; and that year [yr], [P] int (0: let
    go now).

    Notes
    -----
    The run-rate of the 12 months to ``m`` (:func:`_mining_run_rate`) carries on at ``growth``
    with the halvings still to come (``valuation.mining_years``), curtailing in a year whose
    revenue does not cover power; site opex is paid while the fleet is kept. With that
    projection the best time to let go is the year A maximising the discounted sum of the
    flows to A, so a fleet that earns until the next halving and only costs after it is kept
    until then.
    """
    return _mining_plan_from(_mining_run_rate(mp, fr, fp, m, rows), rate, growth, years)


def _mining_flows(run_rate, growth, years: int) -> np.ndarray:
    """Margin less site opex in each year after the run-rate's month [USD/yr], [P, Y]."""
    revenue, power, opex, share, to_halving = run_rate
    flows = valuation.mining_years(revenue, power, subsidy_share=share, years_to_halving=to_halving,
                                   growth=growth, years=years)
    flows -= opex[:, None]
    return flows


def _mining_plan_from(run_rate, rate, growth, years: int, land=None):
    """:func:`_mining_plan` on a run-rate already computed (:func:`_mining_run_rate`).

    ``land`` [USD], [P]: the footprint is sold for it when let go (year 0 included), so the
    value is at least ``land`` and the best year weighs the sale's discounting too.
    """
    flows = _mining_flows(run_rate, growth, years)
    y = np.arange(1, years + 1, dtype=np.float64)[None, :]
    running = np.cumsum(flows * np.exp(-valuation.rate_col(rate) * y), axis=1)
    if land is not None:
        running += land[:, None] * np.exp(-valuation.rate_col(rate) * y)
        best = running.max(axis=1)
        years_kept = np.where(best > land, np.argmax(running, axis=1) + 1, 0)
        return np.maximum(best, land), flows, years_kept
    best = running.max(axis=1)
    years_kept = np.where(best > 0.0, np.argmax(running, axis=1) + 1, 0)
    return np.maximum(best, 0.0), flows, years_kept


def _interest_by_year(st: dict, months: int, years: int) -> np.ndarray:
    """Project-debt interest in each year after the horizon [USD/yr], [P, Y].

    The balance left amortises at the last month's pace, N more months, at the loan's own
    monthly rate i (the last month's interest over the balance before it): month j after the
    horizon pays ``i B (1 - (j - 1) / N)`` for j <= N, summed by year in closed form.
    """
    balance = st["balance"][:, months - 1]
    principal = st["principal"][:, months - 1]
    before = balance + principal
    with np.errstate(invalid="ignore", divide="ignore"):
        i = np.where(before > 0, st["interest"][:, months - 1] / before, 0.0)
        n_left = np.where(principal > 0, np.ceil(balance / np.maximum(principal, 1e-9)), 0.0)
    w = units.MONTHS_PER_YEAR
    out = np.zeros((balance.shape[0], years))
    paying = min(years, int(np.ceil(n_left.max(initial=0.0) / w)))  # years with a loan left
    first = w * np.arange(paying, dtype=np.float64)[None, :] + 1.0  # first month j of year y
    last = np.minimum(first + w - 1.0, n_left[:, None])
    count = np.maximum(last - first + 1.0, 0.0)
    # sum over j = a..b of (j - 1) is (a - 1 + b - 1) count / 2
    ramp = (first - 1.0 + last - 1.0) * count / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_left[:, None] > 0, count - ramp / np.maximum(n_left, 1.0)[:, None], 0.0)
    np.multiply((i * balance)[:, None], frac, out=out[:, :paying])
    return out


def _abandon(fr: fleet.FleetResult, keep: np.ndarray) -> None:
    """Let the fleet go where ``keep`` [P, T] is False, in place: off for good, so it mines,
    draws and costs nothing and counts as curtailed."""
    k = keep.astype(np.float64)
    done = set()  # a fleet that never curtails runs all it has: two fields may be one array
    for f in ("company_hashrate", "mining_mw", "btc_mined", "mining_revenue", "power_cost",
              "mining_margin", "site_opex", "running_mw"):
        a = getattr(fr, f)
        if id(a) not in done:
            a *= k
            done.add(id(a))
    fr.curtailed[~keep] = 1.0


CONVERSION_STATE = ("log_btc_price", "log_hashprice", "site_mining_usd_per_month",
                    "offer_value_usd", "offered", "log_ai_lease_index")
"""The state a conversion decision regresses on at the start of a month (the end of the one
before): BTC, hashprice, the mining cash flow the site would give up, what the offer standing
then (or one at today's index) is worth net of fit-out, whether a first offer has come (later
ones then come at the re-offer rate), and the lease-rate index. Today's hashprice and mining
flow are not known on the grid: column 0 holds constants, which the regression drops."""


CONVERSION_DEGREE = (2, False)
"""Degree and cross terms of the conversion regressions: quadratic in each state variable,
without the pairwise products. Offers come to few paths in the early months, and with the
products (21 columns for five variables) the fitted waiting value wandered enough to let
profitable offers lapse: bull lost 0.0034 +- 0.0013 USD/share against signing every first
offer, 0.0000 without them (1,024 paths, seed 11)."""

GREENFIELD_DROPS = ("log_btc_price", "log_hashprice", "site_mining_usd_per_month")


def _deciding(params: CompanyParams) -> bool:
    """Whether any site's signing depends on the market path: decided by least squares, or
    leased at the AI lease-rate index of its signing month."""
    return any(s.decision == "lsmc" or s.follows_index for s in params.sites)


def _at_index(s: SiteParams, sign: np.ndarray, index: np.ndarray) -> SiteParams:
    """The site leased at its rate times the index at the start of its signing month (today's
    index, 1, for a site that never signs: the rate its pipeline NOI is marked at)."""
    if not s.follows_index:
        return s
    n = sign.shape[0]
    rate = _per_path(s.lease_rate_usd_per_kw_month, n) * index[np.arange(n), np.maximum(sign, 0)]
    return dataclasses.replace(s, lease_rate_usd_per_kw_month=rate)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Decided:
    params: CompanyParams  #: the sites with their decided signing months
    offer_month: np.ndarray  #: first offer (the signing lottery) [P, S] int, -1 none
    policies: dict  #: site name -> exercise.Policy
    used: dict  #: site name -> conversion.exercise_summary (when asked for)


def _decide_conversions(mp: MarketPaths, params: CompanyParams, shocks: Mapping[str, np.ndarray],
                        policies: Mapping | None = None, summary: bool = False) -> _Decided:
    """Accept or let lapse each decided site's tenant offers (issue 16, items 1 and 4).

    Each site is decided on its own against the fleet as it would run with every decided site
    unsigned: its regimes are unsigned (the mining flow the site carries, ``conversion.
    site_mining_flow``) and signed (nothing after; the signing's value is the switch's
    proceeds, ``conversion.lease_package`` at the offer's rate, discounted at r plus the
    tenant spread as the leases are); a switch is possible only where an offer stands. After
    the horizon an unsigned site is worth its mining run-rate as a perpetuity at the mining
    terminal growth, or its powered land. ``policies`` maps a site to the policy fitted on the
    run's pricing paths; a site without one is fitted on these paths (in sample).
    """
    n, months = mp.btc_price.shape
    fp, vp = params.fleet, params.valuation
    base = dataclasses.replace(params, sites=tuple(
        dataclasses.replace(s, sign_month=np.full(n, -1, np.int64)) if s.decision == "lsmc" else s
        for s in params.sites))
    g = groundwork(base, shocks, n, months)
    fr = _operate_fleet(mp, fp, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_mw = np.where(fr.mining_mw > 0, (fr.mining_margin - fr.site_opex) / fr.mining_mw, 0.0)
    r = _per_path(vp.risk_free_rate, n)
    k = r + _per_path(vp.tenant_credit_spread, n)
    d_r = np.exp(-r / units.MONTHS_PER_YEAR)
    # From the lease's discounting to the grid's: a value at the start of month j, discounted
    # at k to today, is d_r^(j+1) x this on the exercise's grid (the common d_r apart).
    to_grid = np.exp(-(k - r)[:, None] / units.MONTHS_PER_YEAR * np.arange(months + 1)[None, :])

    def grid(x, first):
        out = np.empty((n, months + 1))
        out[:, 0], out[:, 1:] = first, x
        return out
    follow = any(s.follows_index for s in params.sites) and mp.ai_lease_index is not None
    index = (np.ones((n, months + 1)) if not follow
             else grid(np.broadcast_to(mp.ai_lease_index, (n, months)), 1.0))
    shared = {"log_btc_price": grid(np.log(mp.btc_price), np.log(_per_path(mp.btc_price0, n))),
              "log_hashprice": grid(np.log(np.maximum(mp.hashprice, 1e-9)), 0.0),
              "log_ai_lease_index": np.log(index)}
    sites_out, offers, fitted, used = [], [], {}, {}
    for s in params.sites:
        first = _per_path(s.sign_month, n, np.int64)
        offers.append(first)
        if s.decision != "lsmc":
            sites_out.append(_at_index(s, first, index))
            continue
        fractions, offsets = sites.tranche_schedule(np.zeros(n, np.int64), s.build_months, s.tranches, n)
        noi_per_rate, capex = conversion.lease_package(
            gross_mw=s.gross_mw, gross_to_it=s.gross_to_it, noi_margin=s.noi_margin,
            escalator=s.escalator, fractions=fractions, offsets=offsets,
            capex_usd_per_mw_it=s.capex_usd_per_mw_it, rate=k)
        rate = _per_path(s.lease_rate_usd_per_kw_month, n)[:, None] * (index if s.follows_index else 1.0)
        value = np.broadcast_to(noi_per_rate[:, None] * rate - capex[:, None], (n, months + 1))
        flow = np.zeros((n, months + 1))
        if s.mines_until_conversion:
            flow[:, 1:] = conversion.site_mining_flow(g.planned * g.fleet_j, g.available_mw,
                                                      _per_path(s.gross_mw, n), per_mw)
            tail = flow[:, -min(units.MONTHS_PER_YEAR, months):].sum(axis=1) * (
                units.MONTHS_PER_YEAR / min(units.MONTHS_PER_YEAR, months))
            after = valuation.gordon(np.maximum(tail, 0.0), r, _per_path(vp.terminal_growth_mining, n))
        else:
            after = _per_path(s.land_value_usd, n).copy()
        offer, offered = conversion.offer_months(first, s.u_offer, s.reoffer_probability_monthly)
        moves = {(conversion.UNSIGNED, conversion.SIGNED): np.where(offer, -value * to_grid, np.inf)}
        state = dict(shared, site_mining_usd_per_month=grid(flow[:, 1:], 0.0),
                     offer_value_usd=value, offered=offered)
        # A greenfield site mines nothing: BTC would only add noise to its regression.
        state = {name: state[name] for name in CONVERSION_STATE
                 if s.mines_until_conversion or name not in GREENFIELD_DROPS}
        # Only a path with a first offer behind it can sign from then on: the regressions are
        # fitted on those (Longstaff and Schwartz's in-the-money paths).
        may = offered > 0
        policy = None if policies is None else policies.get(s.name)
        if policy is None:
            policy, _ = exercise.fit_switching([flow, 0.0], moves, [after, np.zeros(n)], state, d_r,
                                               consider=may, degree=CONVERSION_DEGREE[0],
                                               cross=CONVERSION_DEGREE[1])
        sign = conversion.sign_months(exercise.apply_switching(policy, moves, state, consider=may))
        fitted[s.name] = policy
        if summary:
            used[s.name] = conversion.exercise_summary(sign, offer, mp.btc_price, mp.hashprice,
                                                       index if s.follows_index else None)
        sites_out.append(_at_index(dataclasses.replace(s, sign_month=sign), sign, index))
    return _Decided(dataclasses.replace(params, sites=tuple(sites_out)),
                    np.stack(offers, axis=1), fitted, used)


def operating_targets(ops: Operations, vp: ValuationParams) -> np.ndarray:
    """Value at each month-end of the operating streams after it [USD], [P, T]: what the mark fits."""
    n = ops.mining_stream.shape[0]
    r = _per_path(vp.risk_free_rate, n)
    out = valuation.continuation(ops.mining_stream, r, ops.terminal_r)
    out += valuation.continuation(ops.lease_stream, r + _per_path(vp.tenant_credit_spread, n),
                                  ops.terminal_lease)
    return out


def fit_marks(market_paths: MarketPaths, params: CompanyParams, shocks: Mapping[str, np.ndarray],
              degree: int = 2) -> marks_.MarkSeries:
    """Fit the operating mark on pricing-measure paths: even paths fit, odd paths test.

    The notes' coupons enter through the tax deduction; their values stay outside the fit.
    """
    mp = market_paths
    n, months = mp.btc_price.shape
    decided = _decide_conversions(mp, params, shocks, summary=True) if _deciding(params) else None
    if decided is not None:
        params = decided.params
    vp = params.valuation
    r = _per_path(vp.risk_free_rate, n)
    ground = groundwork(params, shocks, n, months)
    notes = ground.notes
    coupons = sum((x.interest[:, :months] for x in notes), np.zeros((1, months)))
    ops = operations(mp, params, shocks, note_interest=coupons, ground=ground)
    target = operating_targets(ops, vp)
    fit = np.arange(target.shape[0]) % 2 == 0
    series = marks_.fit_series(ops.state, target, fit_mask=fit, degree=degree)
    # The forward values' mark: the value to equity with limited liability at each forward
    # month-end, regressed on the state and the net financial position there (pass A: notes
    # as debt, no raises).
    a, price, _ = _pass_a(mp, params, ops, notes, r)
    ahead = _notes_ahead(notes, n, months)
    floored = {}
    for m in _forward_months(vp.forward_years, months):
        net = a.btc_held[:, m] * price[:, m] + a.cash[:, m] - ahead[:, m]
        state = {k: v[:, m] for k, v in ops.state.items()}
        state[NET_FINANCIAL] = net
        floored[m] = marks_.fit_mark(state, np.maximum(target[:, m] + net, 0.0), fit_mask=fit,
                                     degree=degree)
    used = ({} if ops.regime is None else
            mothball.exercise_summary(ops.regime, mp.hashprice, mp.btc_price))
    if decided is not None:
        series = dataclasses.replace(series, conversions=decided.policies, converted=decided.used)
    if ops.renewal is not None:
        rn = ops.renewal
        series = dataclasses.replace(series, renewal_policy=rn.policies, renewed=renewal.exercise_summary(
            rn.regimes, [m[1] for m in rn.machines], mp.hashprice, mp.btc_price))
    return dataclasses.replace(series, floored=floored, policy=ops.policy, exercised=used)


NET_FINANCIAL = "net_financial_usd"
"""BTC held x price + cash - the notes' payments still due (valued): the state the equity mark
adds to the operating state [USD]."""


def _forward_months(years: int, months: int) -> list[int]:
    """Month-ends of the forward values, 12k - 1 within the grid."""
    return [k * units.MONTHS_PER_YEAR - 1 for k in range(1, years + 1)
            if k * units.MONTHS_PER_YEAR - 1 < months]


def _notes_ahead(notes, n: int, months: int) -> np.ndarray:
    """Every note's payments after each month-end, valued there, as debt [USD], [P, T]."""
    return sum((np.broadcast_to(x.ahead, (n, months)) for x in notes), np.zeros((n, months)))


def _pass_a(mp: MarketPaths, params: CompanyParams, ops: Operations, notes, r):
    """Pass A: cash and treasury with every note as debt and no raises; and the price paths."""
    n, months = mp.btc_price.shape
    cp, tp = params.capital, params.treasury
    # Mined coins go to the treasury, not to cash: cash moves only when BTC is sold.
    pre_cf = ops.mining_stream - ops.fleet.mining_revenue
    pre_cf += ops.lease_stream
    for x in notes:
        pre_cf -= x.flows[:, :months]
    price = np.broadcast_to(mp.btc_price, (n, months))
    rule = treasury.sell_rule(tp.policy, fraction=tp.sell_fraction, floor_usd=tp.floor_usd)
    a = capital.cash_loop(pre_cf, btc_mined=ops.fleet.btc_mined, btc_price=price,
                          cash0=cp.cash0_usd, btc_held0=tp.btc_held0, sell=rule, cash_yield=r)
    return a, price, pre_cf


def _rows(x, rows, n: int) -> np.ndarray:
    """A scalar or per-path ``[P]`` input restricted to ``rows``."""
    return _per_path(x, n)[rows]


def _pass_b(a, pre_cf, kept_cash, btc_mined, btc_price, cp: CapitalParams, tp: TreasuryParams,
            issue_value, issue_shares, cash_yield):
    """Pass B: cash with conversions settled and equity raised at the pass-A mark.

    Returns the result, the rows rerun (an index array or a slice) and the month the
    rerun starts.

    Notes
    -----
    Pass B repeats pass A's arithmetic until a path's cash flow changes (a converted note is
    not repaid) or its cash would go negative (``capital.divergence``). It is rerun from the
    first such month, starting from pass A's state, on those paths (on every path when they
    are most of them), and written over ``a``'s arrays. Equity is raised at the mark of the
    path as it stands: ``issue_value(m, rows)`` is the value to equity other than cash and
    BTC held at month-end ``m`` on paths ``rows`` [USD], asked for only where a raise is
    priced; ``issue_shares`` [P, T] the shares before raises (``capital.cash_loop``).
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
    # views; pass A raised nothing, so its raise arrays are zero as cash_loop's out needs);
    # on a subset it runs into new arrays that are patched in.
    every = isinstance(rows, slice)
    sub = capital.cash_loop(
        pre_cf[rows, cols] + kept_cash[rows, cols],
        np.broadcast_to(btc_mined, (n, months))[rows, cols],
        np.broadcast_to(btc_price, (n, months))[rows, cols], cash0=cash0, btc_held0=held0,
        sell=rule, raise_target_usd=_rows(cp.raise_target_usd, rows, n),
        min_issue_price=cp.min_issue_price_usd,
        issue_value=(lambda t, sub: issue_value(t0 + t, sub if every else rows[sub]))
        if cp.allow_equity_raise else None,
        issue_shares=issue_shares[rows, cols],
        cash_yield=_rows(cash_yield, rows, n),
        out=capital.CashResult(*(getattr(a, k)[:, cols] for k in capital.CASH_SERIES), a.short)
        if every else None)
    if every:
        a.short[:] = sub.short
        return a, rows, t0
    return capital.patch(a, sub, rows, t0), rows, t0


class _MonthEnds:
    """``[P, T]`` variables read one month-end at a time, on every path or on a few.

    The year of month-ends around a month is transposed into contiguous month rows
    (``marks.month_rows``) the first time one of them is read on every path or on a quarter
    of them or more, so each later read of that year is a contiguous row instead of a strided
    column. Fewer paths (a raise) read their own elements: a year's transpose costs about
    three strided reads of every path, a gather one read of each path asked for. The numbers
    are the same either way.

    ``read(name, index)`` is ``variable[index]`` (``MarkState.block``, or a plain array's
    ``__getitem__``); ``names(y)`` the variables read in year ``y``.
    """

    MONTHS = units.MONTHS_PER_YEAR

    def __init__(self, read: Callable[[str, tuple], np.ndarray],
                 names: Callable[[int], tuple[str, ...]], n: int) -> None:
        self._read, self._names, self._n, self._years = read, names, n, {}

    def at(self, m: int, rows=slice(None)) -> dict[str, np.ndarray]:
        """Each variable at month-end ``m`` on paths ``rows`` [P or len(rows)]."""
        y, w = divmod(m, self.MONTHS)
        if y not in self._years:
            names = self._names(y)
            if not isinstance(rows, slice) and 4 * rows.size < self._n:
                return {k: self._read(k, (rows, m)) for k in names}
            cols = slice(y * self.MONTHS, (y + 1) * self.MONTHS)
            self._years[y] = marks_.month_rows({k: self._read(k, (slice(None), cols)) for k in names},
                                               names)
        return {k: v[w][rows] for k, v in self._years[y].items()}


def _read_in(mark: marks_.MarkSeries, names: tuple[str, ...], y: int) -> tuple[str, ...]:
    """The state variables the marks of year ``y``'s month-ends read (a variable constant on
    the fitting paths is left out of a month's basis), in the order of ``names``."""
    w = _MonthEnds.MONTHS  # the reader's year of month-ends
    read = set()
    for t in range(y * w, min((y + 1) * w, len(mark.marks))):
        read.update(mark.marks[t].scaling.names)
        if t in mark.floored:
            read.update(mark.floored[t].scaling.names)
    return tuple(k for k in names if k in read)


class _Operating:
    """The operating mark where a run asks for it, each month-end's computed once.

    Conversions, calls and forecasts read a few dozen of the 120 month-ends on every path; a
    raise reads one month-end on the paths short of cash. Marking only those spares the rest.
    ``mark`` None: each path's own continuation value (the hand calculation).
    """

    def __init__(self, ops: Operations, vp: ValuationParams, mark) -> None:
        self._ops, self._mark, self._cols = ops, mark, {}
        self._exact = operating_targets(ops, vp) if mark is None else None
        # No reference back to self (a cycle would keep the run's arrays until a collection).
        self._state = None if mark is None else _MonthEnds(
            ops.state.block, functools.partial(_read_in, mark, tuple(ops.state)),
            ops.fleet.curtailed.shape[0])

    def state_at(self, m: int, rows=slice(None)) -> dict[str, np.ndarray]:
        """The state at month-end ``m`` on paths ``rows``, each [P] (contiguous for all paths):
        the variables the fitted marks of that year's month-ends read (:class:`_MonthEnds`)."""
        return self._state.at(m, rows)

    def col(self, m: int) -> np.ndarray:
        """Every path's mark at month-end ``m`` [USD], [P]."""
        if m not in self._cols:
            self._cols[m] = (self._exact[:, m] if self._mark is None
                             else self._mark.marks[m].predict(self.state_at(m)))
        return self._cols[m]

    def at(self, m: int, rows: np.ndarray) -> np.ndarray:
        """The mark at month-end ``m`` on paths ``rows`` (an index array) [USD]: the same
        numbers as :meth:`col`'s, a path's mark being a sum over that path's state alone."""
        if self._mark is None or m in self._cols:
            return self.col(m)[rows]
        return self._mark.marks[m].predict(self.state_at(m, rows))


def run_company(market_paths: MarketPaths, params: CompanyParams, shocks: Mapping[str, np.ndarray],
                mark: marks_.MarkSeries | None, value: bool = True,
                ground: Groundwork | None = None, series: bool = True) -> CompanyPaths:
    """Run the company engine on supplied market paths (see the module docstring).

    ``mark`` is the operating mark fitted by :func:`fit_marks` on pricing paths; None marks
    each path with its own realised continuation value, which is the mark when nothing after
    the mark date is random (the zero-volatility hand calculation). The per-path values are
    those of the measure ``market_paths`` were drawn under: read ``value_per_share`` on
    pricing paths, ``value_per_share_forward`` on real-world ones. ``value=False`` (real-world
    paths) skips the value today: its fields are NaN. ``series=False`` (pricing paths whose
    run reads its time series and forward values from real-world paths) skips the monthly
    series built here (``capex``, ``interest``, ``free_cash_flow``, ``debt``,
    ``shares_outstanding``: None) and the forward values (NaN). ``ground`` is the
    chunk's :func:`groundwork` when another run of the same paths has it already.
    """
    mp = market_paths
    n, months = mp.btc_price.shape
    offer_month = None
    if _deciding(params):  # signing depends on the path: the groundwork is this measure's own
        decided = _decide_conversions(mp, params, shocks, None if mark is None else mark.conversions)
        params, offer_month, ground = decided.params, decided.offer_month, None
    cp, tp, vp = params.capital, params.treasury, params.valuation
    r = _per_path(vp.risk_free_rate, n)
    k_notes = r + _per_path(vp.company_credit_spread, n)
    ground = groundwork(params, shocks, n, months) if ground is None else ground
    notes = ground.notes
    coupons = sum((x.interest[:, :months] for x in notes), np.zeros((1, months)))
    ops = operations(mp, params, shocks, note_interest=coupons, terminal=value or mark is None,
                     ground=ground, policy=None if mark is None else mark.policy,
                     renewal_policy=None if mark is None else mark.renewal_policy)
    fr, now = ops.fleet, ops.sites
    op = _Operating(ops, params.valuation, mark)

    a, price, pre_cf = _pass_a(mp, params, ops, notes, r)
    notes_ahead = ground.notes_ahead
    basic = _per_path(cp.basic_shares, n)[:, None]

    # The pass-A mark per share [USD/share], [P, T]: notes as debt, no raises. Read before
    # pass B, which writes over pass A's arrays.
    financial = {"held": lambda ix: a.btc_held[ix] * price[ix], "cash": a.cash.__getitem__,
                 "ahead": notes_ahead.__getitem__}
    position = _MonthEnds(lambda k, ix: financial[k](ix), lambda y: tuple(financial), n)

    def mark_a(m: int, rows=slice(None)) -> np.ndarray:
        """The pass-A mark per share at month-end ``m`` [USD/share]: notes as debt."""
        f = position.at(m, rows)
        equity = op.col(m)[rows] + f["held"]
        equity += f["cash"]
        equity -= f["ahead"]
        return np.maximum(equity, 0.0) / basic[rows, 0]

    # Conversions and calls on the pass-A mark; a converted note pays no principal after it.
    conv_month = np.full((n, len(notes)), -1, dtype=np.int64)
    new_shares = np.zeros((n, months))
    kept_cash = np.zeros((n, months))
    t = np.arange(months)[None, :]
    notes_ahead_b = np.zeros((n, months))
    for i, x in enumerate(notes):
        d = x.params
        if d.kind != "convertible":
            notes_ahead_b += x.ahead
            continue
        m = capital.conversion_month(mark_a, d.conversion_price,
                                     maturity_month=d.maturity_month, months=months, n=n,
                                     call_month=d.call_month, call_trigger=d.call_trigger)
        conv_month[:, i] = m
        conv = m >= 0
        mm = np.where(conv, m, 0)
        # Face converting at month m: what is owed before that month's principal payment.
        owed = x.balance[0, :months] + x.scheduled[0, :months] + x.balloon[0, :months]
        face = np.where(conv, owed[mm], 0.0)
        at_conversion = np.zeros(n)
        for month in np.unique(mm[conv]):
            rows = np.flatnonzero(conv & (mm == month))
            at_conversion[rows] = mark_a(int(month), rows)
        shares = capital.conversion_shares(face, d.conversion_price, at_conversion,
                                           d.capped_call_cap_price)
        # Only the converting paths change from their conversion month on: their rows are
        # written (every row when most convert, where gathering them costs more).
        rows = np.flatnonzero(conv)
        if 2 * rows.size > n:
            rows = slice(None)
        after = conv[rows, None] & (t >= mm[rows, None])
        new_shares[rows] += np.where(after, shares[rows, None], 0.0)
        # The conversion month's coupon is paid; principal from that month on is not.
        kept_cash[rows] += np.where(after, x.scheduled[:, :months] + x.balloon[:, :months], 0.0)
        kept_cash[rows] += np.where(after & (t > mm[rows, None]), x.interest[:, :months], 0.0)
        ahead = np.broadcast_to(x.ahead, (n, months))
        settled = notes_ahead_b[rows] + np.where(after, 0.0, ahead[rows])
        notes_ahead_b += ahead
        notes_ahead_b[rows] = settled

    shares = basic + new_shares
    b, rerun, t0 = _pass_b(a, pre_cf, kept_cash, fr.btc_mined, price, cp, tp,
                           lambda m, rows: op.at(m, rows) - notes_ahead_b[rows, m], shares, r)
    if series:
        shares[rerun, t0:] += np.cumsum(b.shares_issued[rerun, t0:], axis=1)

    # Value to equity on this path: cash today, the discounted streams, the treasury as BTC
    # on the path, less the notes' payments in cash, plus the proceeds of later raises. The
    # mined coins are in pv_mining at their month's price, so the treasury is what the opening
    # coins and the later gains and losses on held coins are worth on the path (its mean under
    # the pricing measure is BTC held today x spot).
    cash0 = _per_path(cp.cash0_usd, n)
    if value:
        treasury_value = (b.btc_held[:, -1] * price[:, -1]) * valuation.at_horizon(r, months)
        treasury_value += valuation.present_value(b.btc_sold * price - fr.mining_revenue, r)
        paid = sum((x.flows[:, :months] for x in notes), np.zeros((1, months))) - kept_cash
        beyond = np.zeros(n)  # notes still owed at the horizon: their later payments, valued there
        for i, x in enumerate(notes):
            if x.balance.shape[1] > months:
                beyond += (conv_month[:, i] < 0) * np.broadcast_to(x.ahead[:, -1], (n,))
        pv_notes = valuation.present_value(paid, k_notes) + beyond * valuation.at_horizon(k_notes, months)
        pv_raised = valuation.present_value(b.raised_usd, r)
        equity = (ops.parts["pv_mining"] + ops.parts["pv_hpc"] + ops.parts["pv_sga"]
                  + ops.parts["pv_taxes"] + treasury_value + cash0 - pv_notes + pv_raised)
    else:  # real-world paths are marked, not valued
        treasury_value, pv_notes, pv_raised, equity = (np.full(n, np.nan) for _ in range(4))

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
    vps = np.where(failed, np.nan, np.where(insolvent, 0.0, np.maximum(equity, 0.0) / diluted))

    # The mark at each forward date on the settled path: the value to equity with limited
    # liability (the fitted E[max(equity, 0) | state], or each path's own when unfitted), per
    # share, zero after a default.
    fwd = np.full((n, vp.forward_years), np.nan)
    for j, m in enumerate(_forward_months(vp.forward_years, months) if series else ()):
        net = b.btc_held[:, m] * price[:, m] + b.cash[:, m] - notes_ahead_b[:, m]
        if mark is not None and m in mark.floored:
            state = op.state_at(m)
            state[NET_FINANCIAL] = net
            equity_m = np.maximum(mark.floored[m].predict(state), 0.0)
        else:
            equity_m = np.maximum(op.col(m) + net, 0.0)
        marked = np.where(default_month <= m, 0.0, equity_m / shares[:, m])
        fwd[:, j] = np.where(failed, np.nan, marked)

    s0 = _per_path(mp.btc_price0, n)
    controls = np.stack([price[:, m - 1] * np.exp(-r * m / units.MONTHS_PER_YEAR) / s0 - 1.0
                         for m in control_months(months)], axis=1)
    interest = capex = fcf = debt = None
    if series:
        interest = now["interest"] + coupons
        capex = now["capex"] + ops.fleet_capex
        fcf = valuation.free_cash_flow(fr.mining_margin, fr.site_opex, now["noi"], ops.sga, capex,
                                       interest, ops.tax.tax)
        if ops.land_sale is not None:
            fcf = fcf + ops.land_sale
        debt = now["balance"] + sum((x.balance[:, :months] for x in notes), np.zeros((1, months)))
    return CompanyPaths(
        company_hashrate=fr.company_hashrate, mining_mw=fr.running_mw,
        hpc_mw_it=now["hpc_mw_it"],
        hpc_mw_gross=now["off_mw"], curtailed=fr.curtailed, btc_mined=fr.btc_mined,
        mining_revenue=fr.mining_revenue, power_cost=fr.power_cost, mining_margin=fr.mining_margin,
        site_opex=fr.site_opex, sga=ops.sga, hpc_revenue=now["rent"], hpc_noi=now["noi"], capex=capex,
        interest=interest, tax=ops.tax.tax, free_cash_flow=fcf, btc_sold=b.btc_sold,
        btc_held=b.btc_held, cash=b.cash, debt=debt, shares_outstanding=shares if series else None,
        value_per_share=vps, equity_value=equity, pv_mining=ops.parts["pv_mining"],
        pv_hpc=ops.parts["pv_hpc"], pv_sga=ops.parts["pv_sga"], pv_taxes=ops.parts["pv_taxes"],
        treasury_value=treasury_value, cash0=cash0, pv_notes=pv_notes,
        net_debt=pv_notes - cash0, pv_equity_raised=pv_raised, diluted_shares=diluted,
        shares_issued=issued, path_failed=failed, value_per_share_forward=fwd,
        converted=conv_month >= 0, conversion_month=conv_month, default_month=default_month,
        pricing_controls=controls,
        debt_names=tuple(d.name for d in cp.debt), site_names=tuple(s.name for s in params.sites),
        sign_month=ops.sign_month, energise_month=ops.energise_month, never_signs=ops.sign_month < 0,
        offer_month=ops.sign_month if offer_month is None else offer_month)


# ------------------------------------------------------------------ the whole chain for one chunk

def follows_index(scenario) -> bool:
    """Whether a site of ``scenario`` offers at the AI lease-rate index (``rate_follows_index``).

    Only then is the index (``market.ai_lease_index``) drawn and built: nothing else reads it.
    """
    return any(s.conversion is not None and s.conversion.rate_follows_index for s in scenario.sites)


def run_market(mi: inputs_.MarketInputs, calendar: np.ndarray, draws,
               lease_index: bool = True) -> tuple[MarketPaths, np.ndarray]:
    """BTC price, fees and the network for one chunk; also returns block heights [P, T].

    ``lease_index=False`` leaves the AI lease-rate index out (None) where no site follows it
    (:func:`follows_index`). It is a stream of its own, so leaving it out moves no other draw.
    """
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
    # AI colocation lease rates: a world stream, untraded (the same under both measures).
    index = (None if mi.ai_lease is None or not lease_index else
             conversion.lease_index(draws.normal("ai_lease_index.z"), btc_shock, **mi.ai_lease))
    mp = MarketPaths(calendar=calendar, days=days, btc_price=btc_price, fees_per_block=fee,
                     subsidy=paths.subsidy, blocks=paths.blocks, network_hashrate=paths.network_hashrate,
                     hashprice=paths.hashprice, btc_price0=mi.spot_usd, block_height=paths.block_height,
                     ai_lease_index=index)
    return mp, paths.block_height


def _renewed(fleet_params: FleetParams, renewal_kw: dict | None, decision: str = "fixed") -> FleetParams:
    """The fleet with its retire-and-replace deployments added (fleet renewal switched on), or,
    with ``decision`` ``lsmc``, the renewal's terms, for :func:`operations` to decide on."""
    if renewal_kw is None:
        return fleet_params
    if decision == "lsmc":
        terms = {k: v for k, v in renewal_kw.items() if k != "months"}
        return dataclasses.replace(fleet_params, renewal=RenewalParams(**terms))
    cohorts = renewal.aged_fleet(fleet_params.hashrate_ehs, fleet_params.j_per_th, renewal_kw["life_years"])
    cohorts += [(d.month, d.hashrate_ehs, d.j_per_th) for d in fleet_params.deployments]
    extra = [Deployment(*dep) for dep in renewal.renewal_deployments(cohorts, **renewal_kw)]
    return dataclasses.replace(fleet_params, deployments=fleet_params.deployments + tuple(extra))


def _company(scenario, inputs: Mapping[str, np.ndarray], draws):
    """Company parameters and shocks for one chunk (the same under both measures).

    The company's own streams (its sites' signing, its shocks) are named by its ticker
    (:class:`_Within`), so that two companies on the same paths draw independent numbers.
    """
    months = scenario.simulation.horizon_months
    draws = _Within(draws, scenario.company.ticker)
    params = inputs_.company_params(scenario, inputs, inputs_.site_params(scenario, inputs, draws))
    rn = scenario.company.fleet.renewal
    params = dataclasses.replace(params, fleet=_renewed(params.fleet, inputs_.renewal_params(scenario, inputs),
                                                        "fixed" if rn is None else rn.decision))
    shocks = {name: getattr(draws, kind)(f"company.{name}", cols=cols)
              for name, kind, cols in company_shocks_needed(params, months)}
    return params, shocks


def _pricing(mi: inputs_.MarketInputs, risk_free_rate: Num) -> inputs_.MarketInputs:
    """The market inputs under the pricing measure: BTC drifts at the risk-free rate."""
    return dataclasses.replace(mi, price_params=market.risk_neutral(
        mi.price_process, mi.price_params, risk_free_rate))


def _risk_free_rate(scenario, inputs: Mapping[str, np.ndarray]) -> Num:
    """The risk-free rate of the chunk's paths (a world input: ``valuation.risk_free_rate``)."""
    return inputs_.value(inputs, "valuation.risk_free_rate", scenario.valuation.risk_free_rate)


@dataclasses.dataclass(frozen=True)
class World:
    """One chunk's market and network paths under both measures, which every company of a peer
    group runs on. Built from the world's inputs and streams alone (market, network, valuation:
    ``simulator.scenario.universe.WORLD_SECTIONS``), so any company's scenario builds the same."""

    pricing: MarketPaths
    real_world: MarketPaths
    block_height: np.ndarray
    """Block height at month end on the real-world paths [P, T]."""


def world_paths(scenario, inputs: Mapping[str, np.ndarray], draws, history: np.ndarray | None = None,
                *, real_world: bool = True, lease_index: bool | None = None) -> World:
    """The chunk's market paths under the pricing measure and (``real_world``) the real-world one.

    The two measures read the same draws; only BTC's drift differs. ``real_world=False``
    (fitting the mark) leaves ``real_world`` and ``block_height`` None. ``lease_index``: build
    the AI lease-rate index (a peer group builds it when any of its companies follows it);
    None: when a site of ``scenario`` follows it.
    """
    calendar = inputs_.month_starts(scenario)
    mi = inputs_.market_inputs(scenario, inputs, history)
    draws = draws if isinstance(draws, _Reused) else _Reused(draws)
    index = follows_index(scenario) if lease_index is None else lease_index
    mq, _ = run_market(_pricing(mi, _risk_free_rate(scenario, inputs)), calendar, draws, index)
    if not real_world:
        return World(mq, None, None)
    mp, height = run_market(mi, calendar, draws, index)
    return World(mq, mp, height)


def fit_chunk_marks(scenario, inputs: Mapping[str, np.ndarray], draws,
                    history: np.ndarray | None = None, world: World | None = None) -> marks_.MarkSeries:
    """Fit the mark on the pricing-measure paths of ``draws`` (the run's fitting paths).

    ``world``: the fitting paths' market when another company of a peer group built it.
    """
    if world is None:
        world = world_paths(scenario, inputs, draws, history, real_world=False)
    params, shocks = _company(scenario, inputs, draws)
    return fit_marks(world.pricing, params, shocks, degree=scenario.valuation.marks.degree)


def _signing_controls(scenario, inputs: Mapping[str, np.ndarray], co: CompanyPaths) -> np.ndarray:
    """1 where a site signs less its probability on the path [1], [P, S converting]: mean zero
    whatever else happens, and the signing lottery is much of the spread of value per share."""
    cols = []
    for i, site in enumerate(scenario.sites):
        if site.conversion is None:
            continue
        p = inputs_.value(inputs, f"sites.{site.name}.conversion.signing_probability",
                          site.conversion.signing_probability)
        # The lottery (a first offer), which a decided conversion may decline: mean zero still.
        cols.append((co.offer_month[:, i] >= 0) - np.broadcast_to(np.asarray(p, np.float64),
                                                                  co.offer_month[:, i].shape))
    n = co.sign_month.shape[0]
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


class _Within:
    """A company's view of the chunk's draws: every stream it asks for is named ``<ticker>/<stream>``."""

    def __init__(self, draws, ticker: str) -> None:
        self._draws, self._prefix = draws, f"{ticker}/"
        self.n_paths, self.n_months = draws.n_paths, draws.n_months

    def normal(self, stream: str, cols: int | None = None) -> np.ndarray:
        return self._draws.normal(self._prefix + stream, cols)

    def uniform(self, stream: str, cols: int | None = None) -> np.ndarray:
        return self._draws.uniform(self._prefix + stream, cols)


class _Reused:
    """A chunk's draws, each stream drawn once and handed out again: the two measures' market
    paths read the same numbers without drawing them twice."""

    def __init__(self, draws) -> None:
        self._draws, self._seen = draws, {}
        self.n_paths, self.n_months = draws.n_paths, draws.n_months

    def _get(self, kind: str, stream: str, cols):
        key = (kind, stream, cols)
        if key not in self._seen:
            self._seen[key] = getattr(self._draws, kind)(stream, cols)
        return self._seen[key]

    def normal(self, stream: str, cols: int | None = None) -> np.ndarray:
        return self._get("normal", stream, cols)

    def uniform(self, stream: str, cols: int | None = None) -> np.ndarray:
        return self._get("uniform", stream, cols)


def simulate_chunk(scenario, inputs: Mapping[str, np.ndarray], draws, mark: marks_.MarkSeries,
                   history: np.ndarray | None = None, world: World | None = None) -> dict[str, np.ndarray]:
    """Run every stage for one chunk of paths under both measures; arrays named as the cube names them.

    ``draws`` is a :class:`simulator.rng.Draws` for the chunk (duck-typed here): every random
    number comes from a named stream of it, so a path's numbers do not depend on the chunking.
    The pricing-measure (Q) and real-world (P) paths share every random number; only BTC's
    drift differs. Per-path values come from Q, the time series and the forward marks from P.
    ``mark`` is the run's fitted operating mark (:func:`fit_chunk_marks`). ``history`` is the
    monthly log returns a ``bootstrap`` BTC process resamples, read once per run outside the
    engine (``simulator.scenario.history.bootstrap_history``); None otherwise. ``world`` is the
    chunk's market paths when a peer group's run built them once for all its companies
    (:func:`world_paths`); without it this company builds its own, one measure at a time.
    """
    draws = _Reused(draws)
    params, shocks = _company(scenario, inputs, draws)
    # Decided conversions sign where the market takes them: each measure builds its own.
    ground = None if _deciding(params) else groundwork(params, shocks, draws.n_paths, draws.n_months)
    if world is None:
        mi = inputs_.market_inputs(scenario, inputs, history)
        calendar = inputs_.month_starts(scenario)
        index = follows_index(scenario)
        mq, _ = run_market(_pricing(mi, params.valuation.risk_free_rate), calendar, draws, index)
        q = run_company(mq, params, shocks, mark, ground=ground, series=False)
        del mq
        mp, height = run_market(mi, calendar, draws, index)
    else:
        q = run_company(world.pricing, params, shocks, mark, ground=ground, series=False)
        mp, height = world.real_world, world.block_height
    p = run_company(mp, params, shocks, mark, value=False, ground=ground)
    years = np.asarray(scenario.valuation.forward_years) - 1
    return dict(
        btc_price=mp.btc_price, fees_per_block=mp.fees_per_block, subsidy=mp.subsidy, block_height=height,
        network_hashrate=mp.network_hashrate, hashprice=mp.hashprice,
        company_hashrate=p.company_hashrate, mining_mw=p.mining_mw, hpc_mw_it=p.hpc_mw_it,
        hpc_mw_gross=p.hpc_mw_gross,
        curtailed=p.curtailed, btc_mined=p.btc_mined, mining_revenue=p.mining_revenue,
        power_cost=p.power_cost, mining_margin=p.mining_margin, hpc_revenue=p.hpc_revenue,
        hpc_noi=p.hpc_noi, site_opex=p.site_opex, sga=p.sga, interest=p.interest, tax=p.tax,
        capex=p.capex, free_cash_flow=p.free_cash_flow, btc_held=p.btc_held, btc_sold=p.btc_sold,
        cash=p.cash,
        value_per_share=q.value_per_share, equity_value=q.equity_value, pv_mining=q.pv_mining,
        pv_hpc=q.pv_hpc, pv_sga=q.pv_sga, pv_taxes=q.pv_taxes, treasury_value=q.treasury_value,
        cash0=q.cash0, pv_notes=q.pv_notes, net_debt=q.net_debt,
        pv_equity_raised=q.pv_equity_raised, diluted_shares=q.diluted_shares,
        shares_issued=q.shares_issued, path_failed=q.path_failed,
        pricing_controls=np.concatenate([q.pricing_controls, _signing_controls(scenario, inputs, q)],
                                        axis=1),
        forward_value_per_share=p.value_per_share_forward[:, years],
        sign_month=p.sign_month, energise_month=p.energise_month)
