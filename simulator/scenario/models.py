"""The scenario language as frozen pydantic models.

Every section the engine reads is typed here; cross-field rules live in the models, so code
downstream trusts its inputs. Numeric inputs are ``Num``: a plain number or a distribution
spec (``distributions.py``). Keys carry their units (``_usd_m`` = millions of USD).
NumPy is imported only inside the one validator that needs linear algebra.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simulator.scenario.distributions import Dist, Fixed, MonthRange, parse_month

_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Model(BaseModel):
    model_config = _CONFIG


def _num_or_dist(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict) or hasattr(value, "dist"):
        return "dist"
    return None


def _bounds(ge: float | None, gt: float | None, le: float | None, lt: float | None):
    """Validator: a number, or every value a distribution can draw, lies within the bounds."""
    parts = []
    if ge is not None:
        parts.append(f">= {ge:g}")
    if gt is not None:
        parts.append(f"> {gt:g}")
    if le is not None:
        parts.append(f"<= {le:g}")
    if lt is not None:
        parts.append(f"< {lt:g}")
    allowed = " and ".join(parts)

    def check(value: Any) -> Any:
        lo, hi = (value, value) if isinstance(value, float) else value.support()
        bad = ((ge is not None and lo < ge) or (gt is not None and lo <= gt)
               or (le is not None and hi > le) or (lt is not None and hi >= lt))
        if bad:
            if isinstance(value, float):
                raise PydanticCustomError("out_of_range", "must be {allowed} (got {got})",
                                          {"allowed": allowed, "got": f"{value:g}"})
            raise PydanticCustomError(
                "out_of_range", "every draw must be {allowed} (the distribution reaches {lo} to {hi})",
                {"allowed": allowed, "lo": f"{lo:g}", "hi": f"{hi:g}"})
        return value

    return check


_NUM_ERROR = "must be a number or a distribution such as {dist: triangular, low: 1, mode: 2, high: 3}"


def Num(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
        lt: float | None = None) -> Any:
    """A number or a distribution, with optional bounds every draw must respect."""
    base = Annotated[
        Union[Annotated[float, Tag("number")], Annotated[Dist, Tag("dist")]],
        Discriminator(_num_or_dist, custom_error_type="number_or_dist", custom_error_message=_NUM_ERROR),
    ]
    if ge is gt is le is lt is None:
        return base
    return Annotated[base, AfterValidator(_bounds(ge, gt, le, lt))]


def _month(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    return parse_month(value)


Month = Annotated[dt.date, BeforeValidator(_month)]
"""A calendar month (first day), written ``2026-03`` or ``2026-03-15``."""

MonthOrRange = Annotated[
    Union[Annotated[Month, Tag("date")], Annotated[MonthRange, Tag("range")]],
    Discriminator(lambda v: "range" if isinstance(v, (dict, MonthRange)) else "date"),
]

Probability = Num(ge=0, le=1)
Positive = Num(gt=0)
NonNegative = Num(ge=0)
Rate = Num(gt=-1, lt=5)
Name = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_\-]+$")]


# ---------------------------------------------------------------- simulation

class Simulation(_Model):
    """How many paths, which draws, and over what calendar."""

    paths: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 20251201
    sampling: Literal["random", "latin_hypercube", "sobol"] = "random"
    valuation_date: Month = dt.date(2025, 12, 1)
    horizon_months: Annotated[int, Field(ge=12, le=600)] = 120
    chunk_paths: Annotated[int, Field(ge=1, le=10_000_000)] = 8192
    store_paths: Annotated[int, Field(ge=0)] = 20_000


# ---------------------------------------------------------------- market

class Gbm(_Model):
    """Geometric Brownian motion in log price."""

    kind: Literal["gbm"]
    drift: Rate = 0.04
    volatility: Num(ge=0, le=5) = 0.45


class Merton(_Model):
    """GBM plus compound-Poisson jumps in log price; drift compensated so E[S_t] = S0 e^{mu t}."""

    kind: Literal["merton"]
    drift: Rate = 0.04
    volatility: Num(ge=0, le=5) = 0.45
    jump_intensity_per_year: Num(ge=0, le=100) = 4.0
    jump_mean: Num(gt=-5, lt=5) = -0.03
    jump_sd: Num(ge=0, le=5) = 0.08


class Regime(_Model):
    """Two-state Markov chain (e.g. bull, bear), each state with its own drift and volatility."""

    kind: Literal["regime"]
    drift: Annotated[list[Rate], Field(min_length=2, max_length=2)] = [0.6, -0.5]
    volatility: Annotated[list[Num(ge=0, le=5)], Field(min_length=2, max_length=2)] = [0.40, 0.60]
    stay_probability_monthly: Annotated[list[Probability], Field(min_length=2, max_length=2)] = [0.95, 0.90]
    initial_state: Literal["stationary", 0, 1] = "stationary"


class Bootstrap(_Model):
    """Block bootstrap of monthly log returns from a user CSV with ``date,close`` columns."""

    kind: Literal["bootstrap"]
    csv: Annotated[str, Field(min_length=1)]
    block_months: Annotated[int, Field(ge=1, le=60)] = 6
    target_volatility: Num(gt=0, le=5) | None = None


PriceProcess = Annotated[Union[Gbm, Merton, Regime, Bootstrap], Field(discriminator="kind")]


class Btc(_Model):
    spot_usd: Positive = 84_500.0
    process: PriceProcess = Gbm(kind="gbm")


class Fees(_Model):
    """Transaction fees per block: lognormal around a median, AR(1) in logs."""

    median_btc_per_block: Positive = 0.03
    log_sd: NonNegative = 0.5
    persistence_monthly: Num(ge=0, lt=1) = 0.8
    btc_correlation: Num(ge=-1, le=1) = 0.3


class Market(_Model):
    btc: Btc = Btc()
    fees: Fees = Fees()


# ---------------------------------------------------------------- network

class Growth(_Model):
    """Log growth with a decaying drift, a lagged response to BTC returns, and correlated noise."""

    kind: Literal["growth"]
    growth_year1: Num(gt=-1, le=5) = 0.30
    growth_decay_per_year: NonNegative = 0.25
    btc_beta: Num(ge=-5, le=5) = 0.3
    lag_months: Annotated[int, Field(ge=0, le=24)] = 3
    volatility: Num(ge=0, le=5) = 0.10
    btc_correlation: Num(ge=-1, le=1) = 0.2


class CostCurve(_Model):
    """Hashprice mean-reverts toward the marginal machine's cash breakeven."""

    kind: Literal["cost_curve"]
    marginal_j_per_th: Positive = 28.0
    efficiency_improvement_per_year: Num(ge=0, lt=1) = 0.10
    power_price_usd_per_mwh: Positive = 55.0
    entry_speed: Num(ge=0, le=1) = 0.15
    exit_speed: Num(ge=0, le=1) = 0.25
    volatility: Num(ge=0, le=5) = 0.08


HashrateModel = Annotated[Union[Growth, CostCurve], Field(discriminator="kind")]


class Network(_Model):
    hashrate_ehs: Positive = 1_069.0
    block_height: Annotated[int, Field(ge=0)] = 925_344
    block_height_date: Annotated[dt.date, BeforeValidator(lambda v: v if isinstance(v, dt.date) else _day(v))] = \
        dt.date(2025, 11, 27)
    halving_heights: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)] = [1_050_000, 1_260_000]
    subsidy_btc: Annotated[float, Field(gt=0)] = 3.125
    model: HashrateModel = Growth(kind="growth")

    @field_validator("halving_heights")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(v, v[1:])):
            raise PydanticCustomError("not_increasing", "halving heights must increase (got {v})", {"v": v})
        return v


def _day(value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("bad_date", "not a valid date (got {value}; allowed YYYY-MM-DD)", {"value": repr(value)})


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


class Fleet(_Model):
    hashrate_ehs: NonNegative = 50.0
    efficiency_j_per_th: Positive = 16.07
    deployments: list[Deployment] = []
    realisation: Num(gt=0, le=1) = 0.92
    renewal: Renewal | None = None


class Power(_Model):
    price_usd_per_mwh: NonNegative = 56.0
    contracted_mw: NonNegative = 1_027.0
    site_opex_usd_per_mw_month: NonNegative = 4_000.0
    curtail: bool = True


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

    @model_validator(mode="after")
    def _convertible_terms(self) -> Debt:
        if self.kind == "convertible" and self.conversion_price_usd is None:
            raise PydanticCustomError("missing_conversion", "a convertible needs conversion_price_usd", {})
        if self.kind == "straight" and (self.conversion_price_usd or self.capped_call_cap_usd):
            raise PydanticCustomError(
                "straight_terms", "conversion_price_usd and capped_call_cap_usd apply only to kind: convertible", {})
        if (self.capped_call_cap_usd is not None and self.conversion_price_usd is not None
                and self.capped_call_cap_usd <= self.conversion_price_usd):
            raise PydanticCustomError(
                "cap_below_conversion",
                "capped_call_cap_usd must be above conversion_price_usd (got cap {cap} <= {conv})",
                {"cap": f"{self.capped_call_cap_usd:g}", "conv": f"{self.conversion_price_usd:g}"})
        return self


class Company(_Model):
    ticker: Annotated[str, Field(min_length=1, max_length=12)]
    share_price_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    basic_shares_m: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    fleet: Fleet = Fleet()
    power: Power = Power()
    sga_usd_m_per_year: NonNegative = 120.0
    treasury: Treasury = Treasury()
    cash_usd_m: Num(ge=0) = 460.0
    allow_equity_raise: bool = True
    debt: list[Debt] = []

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
    tranches: list[Tranche] = []
    converted_gross_mw: NonNegative | None = None
    gross_to_it: Num(ge=1, le=3) = 1.4
    capex_usd_m_per_mw_it: NonNegative = 10.0
    financing: Financing = ProjectDebt(kind="project_debt")

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


# ---------------------------------------------------------------- valuation

class Valuation(_Model):
    discount_rate_mining: Num(gt=0, lt=1) = 0.20
    discount_rate_hpc: Num(gt=0, lt=1) = 0.10
    terminal_multiple_mining: NonNegative = 8.0
    terminal_multiple_hpc: NonNegative = 18.0
    forward_years: Annotated[list[Annotated[int, Field(ge=1, le=30)]], Field(min_length=1)] = [1, 2, 3]


class Correlation(_Model):
    """A rank correlation between two uncertain inputs, named by key path."""

    between: Annotated[list[str], Field(min_length=2, max_length=2)]
    rank_correlation: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]


# ---------------------------------------------------------------- scenario

class Scenario(_Model):
    """A complete, validated scenario."""

    name: Name
    description: str = ""
    simulation: Simulation = Simulation()
    market: Market = Market()
    network: Network = Network()
    company: Company
    sites: list[Site] = []
    valuation: Valuation = Valuation()
    correlations: list[Correlation] = []

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, v: list[Site]) -> list[Site]:
        return _unique_names(v, "site")

    @model_validator(mode="after")
    def _horizon_covers_forward_years(self) -> Scenario:
        last = max(self.valuation.forward_years)
        if last * 12 > self.simulation.horizon_months:
            raise PydanticCustomError(
                "forward_beyond_horizon",
                "valuation.forward_years reaches year {last} beyond simulation.horizon_months ({h})",
                {"last": last, "h": self.simulation.horizon_months})
        return self

    @model_validator(mode="after")
    def _correlations_valid(self) -> Scenario:
        if not self.correlations:
            return self
        uncertain = dict(self.uncertain_inputs())
        for i, corr in enumerate(self.correlations):
            for j, key in enumerate(corr.between):
                if key not in uncertain:
                    import difflib

                    close = difflib.get_close_matches(key, list(uncertain), n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    raise PydanticCustomError(
                        "unknown_input", "'{key}' is not an uncertain input{hint}",
                        {"key": key, "hint": hint, "at": ("correlations", i, "between", j)})
            if corr.between[0] == corr.between[1]:
                raise PydanticCustomError(
                    "self_correlation", "pairs '{key}' with itself",
                    {"key": corr.between[0], "at": ("correlations", i, "between")})
        keys, matrix = self.correlation_matrix()
        import numpy as np

        try:
            np.linalg.cholesky(np.asarray(matrix) + 1e-12 * np.eye(len(keys)))
        except np.linalg.LinAlgError:
            raise PydanticCustomError(
                "not_psd",
                "the correlation matrix over {keys} is not positive semi-definite; loosen the correlations",
                {"keys": ", ".join(keys), "at": ("correlations",)}) from None
        return self

    def uncertain_inputs(self) -> Iterator[tuple[str, Any]]:
        """Every distribution (other than ``fixed``) in the scenario, by dotted key path.

        Sites are addressed by name: ``sites.sandersville.lease.rate_usd_per_kw_month``.
        """
        yield from _walk_dists(self, "")

    def correlation_matrix(self) -> tuple[list[str], list[list[float]]]:
        """Keys named in ``correlations`` and their rank-correlation matrix (identity elsewhere)."""
        keys: list[str] = []
        for corr in self.correlations:
            for key in corr.between:
                if key not in keys:
                    keys.append(key)
        matrix = [[1.0 if i == j else 0.0 for j in range(len(keys))] for i in range(len(keys))]
        for corr in self.correlations:
            i, j = keys.index(corr.between[0]), keys.index(corr.between[1])
            matrix[i][j] = matrix[j][i] = corr.rank_correlation
        return keys, matrix


def _unique_names(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise PydanticCustomError("duplicate_name", "two {what} entries are named '{name}'",
                                      {"what": what, "name": item.name})
        seen.add(item.name)
    return items


def _walk_dists(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    from simulator.scenario.distributions import _Dist

    if isinstance(value, _Dist):
        if not isinstance(value, Fixed):
            yield prefix, value
        return
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _walk_dists(getattr(value, field), f"{prefix}.{field}" if prefix else field)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            label = getattr(item, "name", None) or str(i)
            yield from _walk_dists(item, f"{prefix}.{label}")
