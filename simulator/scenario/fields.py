"""Shared field types and helpers for the scenario models.

Every scenario model derives from ``_Model`` (frozen, unknown keys rejected, no NaN or
infinity). Numeric inputs are ``Num``: a plain number or a distribution spec
(``distributions.py``), told apart by a callable discriminator, with optional bounds that
every draw must respect; ``Probability``, ``Positive``, ``NonNegative`` and ``Rate`` are the
common cases. ``Month`` and ``MonthOrRange`` parse calendar months, ``Name`` is the key
that names list entries, and ``_unique_names`` checks that those keys do not repeat.
:mod:`~simulator.scenario.market_models`, :mod:`~simulator.scenario.company_models` and
:mod:`~simulator.scenario.models` build on this module; it imports only ``distributions``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)
from pydantic_core import PydanticCustomError

from simulator.scenario.distributions import Dist, MonthRange, parse_month

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


def _unique_names(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise PydanticCustomError("duplicate_name", "two {what} entries are named '{name}'",
                                      {"what": what, "name": item.name})
        seen.add(item.name)
    return items

