"""Scenario models of the company and its sites.

``company:`` holds the mining fleet (deployments, renewal), power, SG&A, the BTC treasury
and its sale policy (a discriminated union on ``kind``: ``hold``, ``sell_production``,
``cash_floor``, as in the engine's ``treasury`` registry), cash and debt (straight or
convertible). ``sites:`` lists the company's campuses, each with its conversion from
mining to leased IT load (tranches, financing) and its lease. Cross-field rules of these
sections (convertible terms, tranche fractions, converted MW within gross MW, unique
names) live on the models. Field types come from :mod:`~simulator.scenario.fields`;
:class:`~simulator.scenario.models.Scenario` puts :class:`Company` and :class:`Site`
together with the market.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simulator.scenario.citation import Source
from simulator.scenario.fields import (
    Month,
    MonthOrRange,
    Name,
    NonNegative,
    Num,
    Positive,
    Probability,
    _Model,
    _unique_names,
)

# ---------------------------------------------------------------- company

class Deployment(_Model):
    """Machines added to the fleet in a month."""

    date: MonthOrRange
    hashrate_ehs: Positive
    efficiency_j_per_th: Positive
    capex_usd_per_th: NonNegative = 0.0


class Renewal(_Model):
    """Machines retire after ``machine_life_years`` and are replaced by the frontier model.

    Without renewal the fleet ages while the marginal machine improves, so mining drifts to
    the margin and stops earning; with it, mining keeps its place on the cost curve and pays
    for it in capex.
    """

    machine_life_years: Annotated[int, Field(ge=1, le=20)] = 5
    frontier_j_per_th: Positive = 13.5
    frontier_improvement_per_year: Num(ge=0, lt=1) = 0.08
    capex_usd_per_th: NonNegative = 12.0
    capex_change_per_year: Num(gt=-1, le=1) = 0.0
    decision: Literal["fixed", "lsmc"] = "fixed"
    """fixed: every cohort is replaced at the end of its life (the rule above); lsmc: at each
    year-end each cohort is replaced by the frontier machine of that date where the new
    machines' value net of their capex beats keeping the old ones, by least squares on the
    pricing measure (issue 16, item 5); a cohort not replaced stops at the end of its life."""


class Relocation(_Model):
    """Machines on MW that leave mining (a site's build starts) move into spare energised
    capacity at ``cost_usd_per_mw`` and are offline for ``downtime_months``; those that do
    not fit are retired (domain.md, "Sites")."""

    cost_usd_per_mw: NonNegative = 25_000.0
    downtime_months: Annotated[int, Field(ge=0, le=24)] = 1


class Fleet(_Model):
    hashrate_ehs: NonNegative = 50.0
    efficiency_j_per_th: Positive = 16.07
    deployments: list[Deployment] = []  # noqa: RUF012
    realisation: Num(gt=0, le=1) = 0.92
    renewal: Renewal | None = None
    relocation: Relocation | None = None


class Mothball(_Model):
    """The mining footprint may be mothballed, restarted or sold as powered land, decided month
    by month by least squares on the pricing measure (issue 16, item 3); ``decision: fixed``
    keeps the fixed rule instead (the fleet is let go, for nothing, at the first year-end its
    projection is worth nothing)."""

    decision: Literal["lsmc", "fixed"] = "lsmc"
    cost_usd_per_mw_month: NonNegative = 1_000.0
    """Upkeep of a mothballed MW, paid instead of site opex [USD/MW-month]."""
    restart_usd_per_mw: NonNegative = 25_000.0
    """Bringing a mothballed MW back to mining [USD/MW]."""
    land_usd_m_per_mw: NonNegative = 0.32
    """Price of the powered land if the footprint is sold [USD M/MW]: the lower of CLSK's two
    2024 site purchases (C-G3; V-M8, published after the valuation date, has $0.10-0.25M for
    weak sites and $0.40-0.55M for competitive ones)."""


class Power(_Model):
    price_usd_per_mwh: NonNegative = 56.0
    contracted_mw: NonNegative = 1_027.0
    site_opex_usd_per_mw_month: NonNegative = 4_000.0
    curtail: bool = True
    """Each machine class stops in a month whose hashprice is below its power cost (and the
    demand-response credit it would give up); False runs every machine whatever it earns."""
    demand_response_usd_per_mwh: NonNegative = 0.0
    """Credit for energy not drawn while curtailed [USD/MWh], where the power market pays one
    (ERCOT's programmes; Riot reports its power cost net of such credits, V-E2). 0: none."""
    mothball: Mothball | None = None
    """Mothball, restart and sale of the mining footprint; None: the fixed rule."""


class Hold(_Model):
    kind: Literal["hold"]


class SellProduction(_Model):
    kind: Literal["sell_production"]
    fraction: Probability = 1.0


class CashFloor(_Model):
    kind: Literal["cash_floor"]
    floor_usd_m: NonNegative = 200.0


TreasuryPolicy = Annotated[Union[Hold, SellProduction, CashFloor], Field(discriminator="kind")]


class Treasury(_Model):
    btc: NonNegative = 13_011.0
    policy: TreasuryPolicy = Hold(kind="hold")


class Debt(_Model):
    """A straight loan/bond or a convertible note."""

    name: Name
    kind: Literal["straight", "convertible"]
    principal_usd_m: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    coupon: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0
    maturity: Month
    amortisation: Literal["bullet", "linear"] = "bullet"
    conversion_price_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    capped_call_cap_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    call_from: Month | None = Field(
        None, description="First month the issuer may redeem a convertible (a provisional call); "
                          "holders then convert. None: no issuer call.")
    call_trigger: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] = 1.3
    """The call needs the stock at this multiple of the conversion price or above (130%: C-D8)."""

    @model_validator(mode="after")
    def _convertible_terms(self) -> Debt:
        if self.kind == "convertible" and self.conversion_price_usd is None:
            raise PydanticCustomError("missing_conversion", "a convertible needs conversion_price_usd", {})
        if self.kind == "straight" and (self.conversion_price_usd or self.capped_call_cap_usd
                                        or self.call_from):
            raise PydanticCustomError(
                "straight_terms",
                "conversion_price_usd, capped_call_cap_usd and call_from apply only to kind: convertible", {})
        if (self.capped_call_cap_usd is not None and self.conversion_price_usd is not None
                and self.capped_call_cap_usd <= self.conversion_price_usd):
            raise PydanticCustomError(
                "cap_below_conversion",
                "capped_call_cap_usd must be above conversion_price_usd (got cap {cap} <= {conv})",
                {"cap": f"{self.capped_call_cap_usd:g}", "conv": f"{self.conversion_price_usd:g}"})
        return self


class Tax(_Model):
    """Cash tax on positive taxable income after straight-line depreciation, with loss
    carry-forwards (domain.md, "Valuation")."""

    rate: Num(ge=0, lt=1) = 0.21
    depreciation_years_mining: Annotated[float, Field(gt=0, le=50)] = 5.0
    depreciation_years_hpc: Annotated[float, Field(gt=0, le=50)] = 15.0
    existing_depreciation_usd_m_per_year: NonNegative = 0.0
    """Depreciation of the assets owned at the valuation date [USD m/yr], for ``existing_years``."""
    existing_years: Annotated[float, Field(ge=0, le=50)] = 0.0
    loss_carryforward_usd_m: NonNegative = 0.0
    loss_offset_limit: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Share of a year's taxable income carried losses may offset (US: 80% since 2018)."""


class Street(_Model):
    """Published analysts' price targets, a reference the report sets the fair value against."""

    low_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    high_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    consensus_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    as_of: Month | None = None
    """The month of the targets; provenance takes it as their as-of date unless ``source`` has one."""
    source: Source = ""

    @model_validator(mode="after")
    def _ordered(self) -> Street:
        if self.high_usd < self.low_usd:
            raise PydanticCustomError("street_order", "high_usd ({hi}) is below low_usd ({lo})",
                                      {"hi": f"{self.high_usd:g}", "lo": f"{self.low_usd:g}"})
        return self


class Company(_Model):
    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    """The company's name as the report's title gives it (``CleanSpark``); the ticker if absent."""
    ticker: Annotated[str, Field(min_length=1, max_length=12)]
    share_price_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    basic_shares_m: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    fleet: Fleet = Fleet()
    power: Power = Power()
    sga_usd_m_per_year: NonNegative = 120.0
    treasury: Treasury = Treasury()
    cash_usd_m: Num(ge=0) = 460.0
    allow_equity_raise: bool = True
    min_issue_price_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    """No equity is raised below this price a share: under $1 a Nasdaq listing is lost (Listing
    Rule 5550(a)(2), minimum bid price), and a path that needs cash then defaults."""
    debt: list[Debt] = []  # noqa: RUF012
    tax: Tax = Tax()
    street: Street | None = None

    @field_validator("debt")
    @classmethod
    def _unique_debt(cls, v: list[Debt]) -> list[Debt]:
        return _unique_names(v, "debt")


# ---------------------------------------------------------------- sites

class Tranche(_Model):
    """A share of the site's IT MW delivered ``delay_months`` after its first energisation."""

    fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    delay_months: Annotated[int, Field(ge=0, le=120)] = 0


class EquityFinancing(_Model):
    kind: Literal["equity"]


class ProjectDebt(_Model):
    kind: Literal["project_debt"]
    loan_to_cost: Num(ge=0, le=1) = 0.8
    rate: Num(ge=0, lt=1) = 0.071
    amortisation_years: Annotated[float, Field(gt=0, le=50)] = 15.0


Financing = Annotated[Union[EquityFinancing, ProjectDebt], Field(discriminator="kind")]


class Conversion(_Model):
    """How and when a site's megawatts turn from mining into leased IT load."""

    signing_probability: Probability = 0.75
    signing_months: Num(ge=0, le=600) = 9.0
    build_months: Num(ge=1, le=120) = 15.0
    tranches: list[Tranche] = []  # noqa: RUF012
    converted_gross_mw: NonNegative | None = None
    gross_to_it: Num(ge=1, le=3) = 1.4
    capex_usd_m_per_mw_it: NonNegative = 10.0
    financing: Financing = ProjectDebt(kind="project_debt")
    decision: Literal["fixed", "lsmc"] = "fixed"
    """fixed: the tenant signs at ``signing_months`` with ``signing_probability`` (today's rule);
    lsmc: that is the first tenant offer, which the owner accepts where the lease net of
    fit-out beats mining on plus waiting for another offer, by least squares on the pricing
    measure (issue 16, item 1); after a lapse another offer comes each month with
    ``reoffer_probability_monthly``."""
    reoffer_probability_monthly: Probability = 0.1
    """Chance of a new offer in each month after one lapsed (decision: lsmc) [1/month]; an
    assumption: no source counts offers a miner turned down."""
    rate_follows_index: bool = False
    """An offer's rate is the lease's rate times the AI colocation lease-rate index
    (``market.ai_lease_index``) at the offer's date; false: always the lease's own rate."""

    @field_validator("tranches")
    @classmethod
    def _tranches_sum(cls, v: list[Tranche]) -> list[Tranche]:
        if v and not math.isclose(sum(t.fraction for t in v), 1.0, abs_tol=1e-9):
            raise PydanticCustomError(
                "tranche_sum", "tranche fractions must add up to 1 (got {total})",
                {"total": f"{sum(t.fraction for t in v):g}"})
        return v


class Lease(_Model):
    rate_usd_per_kw_month: Positive = 154.0
    escalator: Num(ge=-0.5, le=0.5) = 0.025
    term_years: Num(ge=1, le=50) = 15.0
    noi_margin: Num(ge=0, le=1) = 0.85
    tenant_default_probability_annual: Probability = 0.01
    downtime_months: Num(ge=0, le=120) = 6.0
    after_default: Literal["relet", "mining"] = "relet"
    relet_rate_usd_per_kw_month: Positive = 140.0
    renewal_probability: Probability = 0.7


class Site(_Model):
    name: Name
    gross_mw: NonNegative
    mining_until_conversion: bool = Field(
        True, description="The site's MW are part of company.power.contracted_mw and mine until the build "
                          "starts; false for a greenfield campus that never mined.")
    powered_land_usd_m_per_mw: NonNegative = 0.0
    conversion: Conversion | None = None
    lease: Lease = Lease()

    @model_validator(mode="after")
    def _converted_within_gross(self) -> Site:
        conv = self.conversion
        if conv is not None and conv.converted_gross_mw is not None:
            hi = conv.converted_gross_mw if isinstance(conv.converted_gross_mw, float) \
                else conv.converted_gross_mw.support()[1]
            lo = self.gross_mw if isinstance(self.gross_mw, float) else self.gross_mw.support()[0]
            if hi > lo:
                raise PydanticCustomError(
                    "converted_exceeds_gross",
                    "must not exceed gross_mw (draws reach {hi} > {lo})",
                    {"hi": f"{hi:g}", "lo": f"{lo:g}", "at": ("conversion", "converted_gross_mw")})
        return self

