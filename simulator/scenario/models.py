"""The scenario language as frozen pydantic models: the :class:`Scenario` root.

Every section the engine reads is typed; cross-field rules live in the models, so code
downstream trusts its inputs. This module keeps the root, :class:`Scenario`, with the rules
that span sections (forward years within the horizon, correlations between uncertain
inputs), and the small sections ``simulation:``, ``valuation:`` and ``correlations:``. The
rest sit beside it: shared field types (``Num``: a plain number or a distribution spec from
``distributions.py``; ``Month``, ``Name``, ...) in :mod:`~simulator.scenario.fields`, the
market and network in :mod:`~simulator.scenario.market_models`, the company and its sites in
:mod:`~simulator.scenario.company_models`. Keys carry their units (``_usd_m`` = millions of
USD). NumPy is imported only inside the one validator that needs linear algebra.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simulator.errors import ScenarioWarning
from simulator.limits import PATHS_MAX, PATHS_MIN, SEED_MAX, SEED_MIN
from simulator.scenario.company_models import Company, Site
from simulator.scenario.distributions import Fixed
from simulator.scenario.fields import (
    Month,
    Name,
    Num,
    _Model,
    _unique_names,
)
from simulator.scenario.loader import format_path
from simulator.scenario.market_models import Market, Network

# ---------------------------------------------------------------- simulation

GENESIS = dt.date(2009, 1, 3)
"""Bitcoin's genesis block: no valuation date can come before its month."""

STALE_YEARS = 2
"""A valuation date more than this many years before today earns a warning."""

STALE_HEIGHT_DAYS = 90
"""A block height dated more than this many days before the valuation date earns a warning."""


def today() -> dt.date:
    """Today's date, against which a valuation date counts as stale (one place to pin in tests)."""
    return dt.date.today()


class Simulation(_Model):
    """How many paths, which draws, and over what calendar."""

    paths: Annotated[int, Field(ge=PATHS_MIN, le=PATHS_MAX)] = 10_000
    seed: Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX)] = 20251201
    sampling: Literal["random", "latin_hypercube", "sobol"] = "random"
    valuation_date: Month = dt.date(2025, 12, 1)
    horizon_months: Annotated[int, Field(ge=12, le=600)] = 120
    chunk_paths: Annotated[int, Field(ge=1, le=10_000_000)] = 8192
    store_paths: Annotated[int, Field(ge=0)] = 20_000
    stale_after_days: Annotated[int, Field(ge=1, le=36_500)] = 730
    """A cited source dated more than this many days before ``valuation_date`` earns a warning
    (``scenario/provenance.py``)."""

    @field_validator("valuation_date")
    @classmethod
    def _after_genesis(cls, v: dt.date) -> dt.date:
        if v < GENESIS.replace(day=1):
            raise PydanticCustomError(
                "before_genesis", "is before bitcoin's genesis block of {genesis} (got {got}; "
                "allowed {month} or later)",
                {"genesis": GENESIS.isoformat(), "got": f"{v:%Y-%m}", "month": f"{GENESIS:%Y-%m}"})
        return v


# ---------------------------------------------------------------- valuation

class Marks(_Model):
    """The least-squares Monte Carlo mark V_t(state) (domain.md, "Valuation")."""

    fit_paths: Annotated[int, Field(ge=512, le=1_000_000)] = 8192
    """Pricing-measure paths the mark is fitted on (even index) and scored on (odd index),
    drawn from their own streams before the run: the mark does not depend on the run's paths."""
    degree: Annotated[int, Field(ge=1, le=3)] = 2


def _upper(x: Any) -> float:
    return x if isinstance(x, float) else x.support()[1]


def _lower(x: Any) -> float:
    return x if isinstance(x, float) else x.support()[0]


class Valuation(_Model):
    """Two measures, one mark (domain.md, "Valuation"). Rates are continuously compounded."""

    risk_free_rate: Num(ge=0, lt=0.5) = 0.04
    company_credit_spread: Num(ge=0, lt=0.5) = 0.05
    tenant_credit_spread: Num(ge=0, lt=0.5) = 0.03
    terminal_growth_mining: Num(gt=-1, lt=0.5) = -0.08
    terminal_growth_sga: Num(gt=-1, lt=0.5) = 0.0
    forward_years: Annotated[list[Annotated[int, Field(ge=1, le=30)]], Field(min_length=1)] = [1, 2, 3]  # noqa: RUF012
    marks: Marks = Marks()

    @model_validator(mode="after")
    def _growth_below_rate(self) -> Valuation:
        r = _lower(self.risk_free_rate)
        for key in ("terminal_growth_mining", "terminal_growth_sga"):
            g = _upper(getattr(self, key))
            if g >= r:
                raise PydanticCustomError(
                    "growth_not_below_rate",
                    "must stay below valuation.risk_free_rate for a growing perpetuity to converge "
                    "(draws reach {g} >= {r})", {"g": f"{g:g}", "r": f"{r:g}", "at": (key,)})
        return self


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
    sites: list[Site] = []  # noqa: RUF012
    valuation: Valuation = Valuation()
    correlations: list[Correlation] = []  # noqa: RUF012

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
    def _escalators_below_lease_rate(self) -> Scenario:
        k = _lower(self.valuation.risk_free_rate) + _lower(self.valuation.tenant_credit_spread)
        for i, site in enumerate(self.sites):
            g = _upper(site.lease.escalator)
            if g >= k:
                raise PydanticCustomError(
                    "growth_not_below_rate",
                    "must stay below valuation.risk_free_rate + tenant_credit_spread ({k}) for the "
                    "lease's terminal perpetuity to converge (draws reach {g})",
                    {"g": f"{g:g}", "k": f"{k:g}", "at": ("sites", i, "lease", "escalator")})
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

    @model_validator(mode="after")
    def _dates_possible(self) -> Scenario:
        """Dates that cannot be: a block height known after the valuation date, debt already
        matured, machines landing before the valuation month."""
        val = self.simulation.valuation_date
        net = self.network
        if net.block_height_date.replace(day=1) > val:
            raise PydanticCustomError(
                "height_after_valuation",
                "is after simulation.valuation_date (got {got}; allowed {val} or before); "
                "block_height must be known on the valuation date",
                {"got": net.block_height_date.isoformat(), "val": f"{val:%Y-%m}",
                 "at": ("network", "block_height_date")})
        for i, debt in enumerate(self.company.debt):
            if debt.maturity <= val:
                raise PydanticCustomError(
                    "matured", "must be after simulation.valuation_date (got {got}; allowed "
                    "{after} or later); a note that has matured is no longer outstanding",
                    {"got": f"{debt.maturity:%Y-%m}", "after": _next_month(val),
                     "at": ("company", "debt", i, "maturity")})
            if debt.call_from is not None and debt.call_from > debt.maturity:
                raise PydanticCustomError(
                    "call_after_maturity", "must not be after maturity (got {call}; maturity {mat})",
                    {"call": f"{debt.call_from:%Y-%m}", "mat": f"{debt.maturity:%Y-%m}",
                     "at": ("company", "debt", i, "call_from")})
        for i, dep in enumerate(self.company.fleet.deployments):
            first = dep.date if isinstance(dep.date, dt.date) else dep.date.start
            if first < val:
                at = ("company", "fleet", "deployments", i, "date")
                raise PydanticCustomError(
                    "deployed_before_valuation",
                    "is before simulation.valuation_date (got {got}; allowed {val} or later); "
                    "machines already hashing belong in company.fleet.hashrate_ehs",
                    {"got": f"{first:%Y-%m}", "val": f"{val:%Y-%m}",
                     "at": at if isinstance(dep.date, dt.date) else (*at, "start")})
        return self

    @model_validator(mode="after")
    def _dates_odd(self) -> Scenario:
        """Dates that can be but seldom are meant: warnings, not errors."""
        val, now = self.simulation.valuation_date, today()
        if now > val.replace(year=val.year + STALE_YEARS):  # val is a month start: always a date
            _warn(("simulation", "valuation_date"),
                  f"{val:%Y-%m} is more than {STALE_YEARS} years ago; are the spot price, "
                  "hashrate, block height and balance sheet all as of that date?")
        height_date = self.network.block_height_date
        if (val - height_date).days > STALE_HEIGHT_DAYS:
            _warn(("network", "block_height_date"),
                  f"{height_date.isoformat()} is {(val - height_date).days} days before "
                  f"simulation.valuation_date ({val:%Y-%m}); the block height is extrapolated "
                  f"at 144 blocks a day over more than {STALE_HEIGHT_DAYS} days")
        return self

    @model_validator(mode="after")
    def _sources_usable(self) -> Scenario:
        """Sources that name no row of the fact sheets, postdate the valuation date or have gone
        stale: warnings at the line of the ``source:`` (``scenario/provenance.py``)."""
        from simulator.scenario.provenance import problems

        for at, message in problems(self):
            _warn(at, message)
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



def _next_month(d: dt.date) -> str:
    return f"{d.year + d.month // 12}-{d.month % 12 + 1:02d}"


def _warn(at: tuple[str | int, ...], message: str) -> None:
    """Warn about the value at key path ``at``; ``load`` adds its file and line."""
    warnings.warn(ScenarioWarning(message, at=at, key_path=format_path(at)), stacklevel=3)


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
