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
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simulator.limits import PATHS_MAX, PATHS_MIN, SEED_MAX, SEED_MIN
from simulator.scenario.company_models import Company, Site
from simulator.scenario.distributions import Fixed
from simulator.scenario.fields import (
    Month,
    Name,
    NonNegative,
    Num,
    _Model,
    _unique_names,
)
from simulator.scenario.market_models import Market, Network

# ---------------------------------------------------------------- simulation

class Simulation(_Model):
    """How many paths, which draws, and over what calendar."""

    paths: Annotated[int, Field(ge=PATHS_MIN, le=PATHS_MAX)] = 10_000
    seed: Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX)] = 20251201
    sampling: Literal["random", "latin_hypercube", "sobol"] = "random"
    valuation_date: Month = dt.date(2025, 12, 1)
    horizon_months: Annotated[int, Field(ge=12, le=600)] = 120
    chunk_paths: Annotated[int, Field(ge=1, le=10_000_000)] = 8192
    store_paths: Annotated[int, Field(ge=0)] = 20_000


# ---------------------------------------------------------------- valuation

class Valuation(_Model):
    discount_rate_mining: Num(gt=0, lt=1) = 0.20
    discount_rate_hpc: Num(gt=0, lt=1) = 0.10
    terminal_multiple_mining: NonNegative = 8.0
    terminal_multiple_hpc: NonNegative = 18.0
    forward_years: Annotated[list[Annotated[int, Field(ge=1, le=30)]], Field(min_length=1)] = [1, 2, 3]  # noqa: RUF012


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
