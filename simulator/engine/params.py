"""Parameter and result containers of the company engine, shared by the chain and its callers.

Frozen dataclasses only: every numeric field is ``float | ndarray [P]`` (a per-path input) unless
the comment says otherwise, with units in the comment. ``engine/chain.py`` fills them from a
scenario; tests fill them by hand to run the company engine on market paths they supply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simulator import units

Num = float | np.ndarray
MONTHS_AHEAD = units.MONTHS_PER_YEAR  # sites run this far past the horizon (forward NOI)


@dataclass(frozen=True, slots=True)
class MarketPaths:
    """Market and network paths the company engine runs on."""

    calendar: np.ndarray  #: month starts [T], datetime64[M]
    days: np.ndarray  #: days in each month [T]
    btc_price: np.ndarray  #: month-end BTC price [P, T] [USD/BTC]
    fees_per_block: np.ndarray  #: [P, T] [BTC]
    subsidy: np.ndarray  #: [P, T] [BTC/block]
    blocks: np.ndarray  #: blocks found in the month [P, T] [blocks]
    network_hashrate: np.ndarray  #: [P, T] [EH/s]
    hashprice: np.ndarray  #: [P, T] [USD/PH/day]
    btc_price0: Num  #: spot at the valuation date [USD/BTC]
    block_height: np.ndarray | None = None  #: height at month end [P, T] [blocks]; None: no halving after the horizon
    ai_lease_index: np.ndarray | None = None
    """AI colocation lease rates as a multiple of today's, at month end [P, T] [1]; None: no
    index (every offer at the site's own rate)."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """Machines that start hashing at ``month``."""

    month: int  #: month index [month]
    hashrate_ehs: Num  #: [EH/s]
    j_per_th: Num  #: [J/TH]
    capex_usd_per_th: Num = 0.0  #: paid in ``month`` [USD/TH]


@dataclass(frozen=True, slots=True)
class MothballParams:
    """The mining footprint's options to mothball, restart and sell (issue 16, item 3),
    decided by least squares on the pricing measure (``engine/exercise.py``)."""

    cost_usd_per_mw_month: Num = 0.0  #: upkeep of a mothballed MW, instead of site opex [USD/MW-month]
    restart_usd_per_mw: Num = 0.0  #: bringing a mothballed MW back to mining [USD/MW]
    land_usd_per_mw: Num = 0.0  #: sale price of the powered land [USD/MW] (V-M8, C-G3)


@dataclass(frozen=True, slots=True)
class RenewalParams:
    """Fleet renewal decided by least squares (issue 16, item 5): at each year-end each cohort
    may be replaced by the frontier machine of that date (``engine/renewal.py``)."""

    life_years: int = 5  #: machine life [yr]: a cohort not replaced stops at its end
    frontier_j_per_th: Num = 13.5  #: best machine bought at the valuation date [J/TH] (N-A1..N-A3)
    frontier_improvement_per_year: Num = 0.08  #: yearly fall of the frontier J/TH [1/yr]
    capex_usd_per_th: Num = 12.0  #: price of a new machine at the valuation date [USD/TH] (N-A6, N-A7)
    capex_change_per_year: Num = 0.0  #: its yearly change [1/yr]


@dataclass(frozen=True, slots=True)
class FleetParams:
    hashrate_ehs: Num  #: operating fleet at month 0 [EH/s] (C-O1)
    j_per_th: Num  #: its efficiency [J/TH] (C-O3)
    contracted_mw: Num  #: energised MW of the mining footprint, its mining sites included [MW] (C-O6)
    realisation: Num  #: uptime x (1 - pool fee) [1] (CHK-2)
    power_price_usd_per_mwh: Num  #: all-in [USD/MWh] (C-F11, C-F12)
    site_opex_usd_per_mw_month: Num = 0.0  #: on MW allocated to mining [USD/MW-month]
    sga_usd_per_month: Num = 0.0  #: [USD/month]
    sga_growth: Num = 0.0  #: annual step-up [1/yr]
    deployments: tuple[Deployment, ...] = ()
    relocation_usd_per_mw: Num = 0.0  #: moving displaced machines to spare capacity [USD/MW]
    relocation_downtime_months: int = 0  #: months a moved machine is offline [month]
    demand_response_usd_per_mwh: Num = 0.0  #: paid for energy not drawn while curtailed [USD/MWh]
    curtail: bool = True  #: classes stop in months below their breakeven hashprice
    mothball: MothballParams | None = None
    """Mothball, restart or sell the mining footprint by least squares; None: the fixed rule
    (the fleet is let go at the first year-end its projection is worth nothing)."""
    renewal: RenewalParams | None = None
    """Renew the fleet cohort by cohort by least squares; None: no renewal, or the fixed
    retire-and-replace rule already laid out as ``deployments`` (``engine/renewal.py``)."""


@dataclass(frozen=True, slots=True)
class SiteParams:
    name: str
    gross_mw: Num  #: [MW]
    gross_to_it: Num  #: gross MW per IT MW [1]
    sign_month: np.ndarray  #: build start per path, -1 = never signs [P] int
    build_months: np.ndarray  #: build start to energisation [P] [month]
    lease_rate_usd_per_kw_month: Num  #: [USD/kW-month] (H-D16)
    escalator: Num = 0.0  #: [1/yr]
    term_years: Num = 15.0  #: [yr]
    noi_margin: Num = 0.85  #: [1] (H-M rows)
    capex_usd_per_mw_it: Num = 0.0  #: [USD/MW IT] (H-C rows)
    tranches: tuple[tuple[Num, Num], ...] = ()  #: (IT fraction, months after build start)
    financing: Literal["equity", "project_debt"] = "equity"
    loan_to_cost: Num = 0.0  #: [1] (H-F1)
    debt_rate: Num = 0.0  #: [1/yr] (H-F3)
    amortisation_years: Num = 10.0  #: [yr]
    default_hazard_monthly: Num = 0.0  #: [1/month]
    downtime_months: Num = 0  #: [month]
    relet_rate_usd_per_kw_month: Num | None = None  #: None: revert to mining after default
    renewal_probability: Num = 0.0  #: [1]
    land_value_usd: Num = 0.0  #: powered land while unsigned; 0 for a site that mines [USD] (V-M8)
    mines_until_conversion: bool = True
    """A site of the mining footprint (its MW are in ``contracted_mw`` and mine until the build
    starts), or a greenfield site (False): not energised, it adds nothing to the mining budget
    unless it is built and then reverts to mining after a tenant default."""
    decision: Literal["fixed", "lsmc"] = "fixed"
    """fixed: the build starts at ``sign_month``; lsmc: ``sign_month`` is the first tenant
    offer, accepted or let lapse by least squares (``engine/conversion.py``)."""
    reoffer_probability_monthly: Num = 0.0  #: chance of a new offer each month after a lapse [1/month]
    u_offer: np.ndarray | None = None  #: uniform draws of those later offers [P, T]
    follows_index: bool = False  #: an offer's rate is the lease rate x the AI lease-rate index


@dataclass(frozen=True, slots=True)
class TreasuryParams:
    btc_held0: Num  #: [BTC] (C-B1, C-B2)
    policy: Literal["hold", "sell_production", "cash_floor"] = "hold"
    sell_fraction: Num = 0.0  #: share of production sold [1]
    floor_usd: Num = 0.0  #: cash floor [USD]


@dataclass(frozen=True, slots=True)
class DebtParams:
    name: str
    kind: Literal["straight", "convertible"]
    principal_usd: Num  #: [USD]
    coupon: Num = 0.0  #: annual [1/yr]
    maturity_month: int = 0  #: month index of the final payment [month]
    amortisation: Num = 0.0  #: share of face repaid per year before maturity [1/yr]
    conversion_price: float | None = None  #: [USD/share]
    capped_call_cap_price: float | None = None  #: [USD/share]
    call_month: int | None = None  #: first month the issuer may call (None: never) [month]
    call_trigger: float = 1.3  #: the call needs the share value at this multiple of K [1]


@dataclass(frozen=True, slots=True)
class CapitalParams:
    cash0_usd: Num  #: [USD] (C-B4, C-B5)
    basic_shares: Num  #: [shares] (C-E1)
    debt: tuple[DebtParams, ...] = ()
    allow_equity_raise: bool = True
    min_issue_price_usd: float = 0.0  #: no raise below this price a share [USD/share]
    raise_target_usd: Num = 0.0  #: cash left after a raise [USD]


@dataclass(frozen=True, slots=True)
class ValuationParams:
    """Discounting (continuously compounded rates) and the terminal value (domain.md, "Valuation")."""

    risk_free_rate: Num = 0.04  #: r [1/yr] (V-R1)
    company_credit_spread: Num = 0.05  #: on the company's notes [1/yr]
    tenant_credit_spread: Num = 0.03  #: on lease cash flows [1/yr]
    terminal_growth_mining: Num = -0.08  #: mining revenue after the horizon, halvings apart [1/yr]
    terminal_growth_sga: Num = 0.0  #: SG&A after the horizon [1/yr]
    forward_years: int = 3


@dataclass(frozen=True, slots=True)
class TaxParams:
    rate: Num = 0.0  #: [1]
    depreciation_months_mining: int = 60  #: straight-line life of fleet capex [month]
    depreciation_months_hpc: int = 180  #: straight-line life of fit-out capex [month]
    existing_depreciation_usd_per_month: Num = 0.0  #: assets owned at month 0 [USD/month]
    existing_months: int = 0  #: months that depreciation lasts [month]
    loss_carryforward_usd: Num = 0.0  #: opening NOL [USD]
    loss_offset_limit: float = 0.8  #: share of taxable income NOLs may offset [1]


@dataclass(frozen=True, slots=True)
class CompanyParams:
    fleet: FleetParams
    treasury: TreasuryParams
    capital: CapitalParams
    valuation: ValuationParams = field(default_factory=ValuationParams)
    sites: tuple[SiteParams, ...] = ()
    tax: TaxParams = field(default_factory=TaxParams)


@dataclass(frozen=True, slots=True)
class CompanyPaths:
    """Every company output. [P, T] series, [P] values, [P, S] per site, [P, D] per note.

    ``capex``, ``interest``, ``free_cash_flow``, ``debt`` and ``shares_outstanding`` are None,
    and ``value_per_share_forward`` NaN, from a run that skips its series
    (``run_company(..., series=False)``)."""

    company_hashrate: np.ndarray  #: [EH/s]
    mining_mw: np.ndarray  #: drawn, 0 in curtailed months [MW]
    hpc_mw_it: np.ndarray  #: [MW]
    hpc_mw_gross: np.ndarray  #: gross MW out of mining for HPC (build, lease, downtime) [MW]
    curtailed: np.ndarray  #: [1]
    btc_mined: np.ndarray  #: [BTC/month]
    mining_revenue: np.ndarray  #: [USD/month]
    power_cost: np.ndarray  #: [USD/month]
    mining_margin: np.ndarray  #: [USD/month]
    site_opex: np.ndarray  #: [USD/month]
    sga: np.ndarray  #: [USD/month]
    hpc_revenue: np.ndarray  #: [USD/month]
    hpc_noi: np.ndarray  #: [USD/month]
    capex: np.ndarray  #: fleet + fit-out [USD/month]
    interest: np.ndarray  #: notes + project debt [USD/month]
    tax: np.ndarray  #: cash tax [USD/month]
    free_cash_flow: np.ndarray  #: [USD/month]
    btc_sold: np.ndarray  #: [BTC/month]
    btc_held: np.ndarray  #: [BTC]
    cash: np.ndarray  #: [USD]
    debt: np.ndarray  #: notes as debt until settled + project debt [USD]
    shares_outstanding: np.ndarray  #: [shares]
    value_per_share: np.ndarray  #: value to equity per diluted share [USD/share], NaN where path_failed
    equity_value: np.ndarray  #: value to equity before limited liability [USD]
    pv_mining: np.ndarray  #: mining margin - site opex - fleet capex, with its terminal value [USD]
    pv_hpc: np.ndarray  #: leases net of fit-out and project debt, with their terminal value [USD]
    pv_sga: np.ndarray  #: SG&A, with its terminal value (negative) [USD]
    pv_taxes: np.ndarray  #: cash taxes, with their terminal value (negative) [USD]
    treasury_value: np.ndarray  #: the BTC held today on the path [USD]
    cash0: np.ndarray  #: cash today [USD]
    pv_notes: np.ndarray  #: the notes' payments in cash [USD]
    net_debt: np.ndarray  #: pv_notes - cash0 [USD]
    pv_equity_raised: np.ndarray  #: [USD]
    diluted_shares: np.ndarray  #: [shares]
    shares_issued: np.ndarray  #: by conversion (net of the capped call) and equity raises [shares]
    path_failed: np.ndarray  #: bool
    value_per_share_forward: np.ndarray  #: the mark at months 12k - 1, [P, forward_years] [USD/share]
    converted: np.ndarray  #: [P, D] bool (all-False column for straight debt)
    conversion_month: np.ndarray  #: [P, D] int, -1 never
    default_month: np.ndarray  #: [P] int, T if never
    pricing_controls: np.ndarray  #: exp(-r m / 12) S_m / S0 - 1 at CONTROL_MONTHS and T [P, K]
    debt_names: tuple[str, ...]
    site_names: tuple[str, ...]
    sign_month: np.ndarray  #: [P, S] int
    energise_month: np.ndarray  #: first rent month [P, S] int, -1 never
    never_signs: np.ndarray  #: [P, S] bool
    offer_month: np.ndarray | None = None
    """First tenant offer (the signing lottery's month) [P, S] int, -1 none; equal to
    ``sign_month`` under the fixed rule."""
