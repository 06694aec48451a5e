"""Scenario models of the outside world: the BTC market and the Bitcoin network.

``market:`` holds the BTC spot price, its price process (a discriminated union on
``kind``: ``gbm``, ``merton``, ``regime``, ``bootstrap``) and transaction fees per block;
``network:`` holds hashrate, block height, halvings and the hashrate model (``growth`` or
``cost_curve``). Each ``kind`` names an entry of the engine's registries
(``engine/market.py``, ``engine/network.py``). Field types come from
:mod:`~simulator.scenario.fields`; :class:`~simulator.scenario.models.Scenario` puts
:class:`Market` and :class:`Network` together with the company.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simulator.scenario.fields import (
    NonNegative,
    Num,
    Positive,
    Probability,
    Rate,
    _Model,
)

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
    drift: Annotated[list[Rate], Field(min_length=2, max_length=2)] = [0.6, -0.5]  # noqa: RUF012
    volatility: Annotated[list[Num(ge=0, le=5)], Field(min_length=2, max_length=2)] = [0.40, 0.60]  # noqa: RUF012
    stay_probability_monthly: Annotated[list[Probability], Field(min_length=2, max_length=2)] = [0.95, 0.90]  # noqa: RUF012
    initial_state: Literal["stationary", 0, 1] = "stationary"


class Bootstrap(_Model):
    """Block bootstrap of monthly log returns from a user CSV with ``date,close`` columns."""

    kind: Literal["bootstrap"]
    csv: Annotated[str, Field(min_length=1)]
    block_months: Annotated[int, Field(ge=1, le=60)] = 6
    target_volatility: Num(gt=0, le=5) | None = None
    allow_extreme_returns: bool = Field(
        False, description="Accept monthly log returns beyond +-2 (a 7x move in a month) in the "
                           "CSV; without it such a row is taken for a typo and refused.")


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


class AiLeaseIndex(_Model):
    """AI colocation lease rates as a multiple of today's: a mean-reverting lognormal index
    whose monthly shock correlates with BTC's (``engine/conversion.py::lease_index``). Sites
    whose ``conversion.rate_follows_index`` is true are offered their lease rate times it."""

    volatility: Num(ge=0, le=3) = 0.15
    mean_reversion_per_year: Num(gt=0, le=20) = 0.5
    btc_correlation: Num(ge=-1, le=1) = 0.2
    long_run_level: Positive = 1.0


class Market(_Model):
    btc: Btc = Btc()
    fees: Fees = Fees()
    ai_lease_index: AiLeaseIndex | None = None
    """The AI colocation lease-rate index, a world process every company of a peer group shares;
    None: no index (every offer at its site's own rate)."""


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
    halving_heights: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)] = [1_050_000, 1_260_000]  # noqa: RUF012
    subsidy_btc: Annotated[float, Field(gt=0)] = 3.125
    model: HashrateModel = Growth(kind="growth")

    @field_validator("halving_heights")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(v, v[1:])):
            raise PydanticCustomError("not_increasing", "halving heights must increase (got {v})", {"v": v})
        return v

    @model_validator(mode="after")
    def _halvings_ahead(self) -> Network:
        for i, height in enumerate(self.halving_heights):
            if height <= self.block_height:
                raise PydanticCustomError(
                    "halving_passed",
                    "must be above network.block_height (got {h}; allowed > {b}); list only "
                    "the halvings still to come",
                    {"h": height, "b": self.block_height, "at": ("halving_heights", i)})
        return self


def _day(value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("bad_date", "not a valid date (got {value}; allowed YYYY-MM-DD)", {"value": repr(value)})

