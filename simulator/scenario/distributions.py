"""Distribution specs: the ``{dist: ...}`` mappings a scenario may put wherever a number goes.

Parameter checks only; nothing is sampled here. Each spec can hand back a frozen
``scipy.stats`` distribution (``frozen()``, scipy imported lazily so ``validate`` and
``--help`` stay fast) and describe itself in words for the report (``describe()``).
Dates are month offsets from the valuation date once resolved; a ``month_range`` stays a
pair of months until :meth:`MonthRange.offsets` turns it into integers.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simulator.scenario.citation import Source

_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

Finite = Annotated[float, Field(allow_inf_nan=False)]


def _require_order(low: float, high: float) -> None:
    if not low < high:
        raise PydanticCustomError("bounds_order", "low must be < high (got low={low}, high={high})",
                                  {"low": low, "high": high})


def _fmt(x: float) -> str:
    return f"{x:,.6g}"


class _Dist(BaseModel):
    """Base of every distribution spec."""

    model_config = _CONFIG

    source: Source | None = Field(
        None, description="Where the figure comes from: row ids of the shipped fact sheets (C-O1, N-V1..N-V7) "
                          "or words, or a mapping {id, as_of, url}.")
    assumption: bool = Field(False, description="Mark the input as an assumption; the report labels it.")

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take (may be infinite)."""
        return (-math.inf, math.inf)

    def describe(self) -> str:
        raise NotImplementedError

    def frozen(self) -> Any:
        raise NotImplementedError

    def central(self) -> float:
        """A representative value (mode, median or mean) used for deterministic previews."""
        return float(self.frozen().median())

    @property
    def is_fixed(self) -> bool:
        return False


class Fixed(_Dist):
    """A known number, written as ``{dist: fixed, value: 3}`` (or just ``3``)."""

    dist: Literal["fixed"]
    value: Finite

    def support(self) -> tuple[float, float]:
        return (self.value, self.value)

    def describe(self) -> str:
        return _fmt(self.value)

    def central(self) -> float:
        return self.value

    @property
    def is_fixed(self) -> bool:
        return True


class Uniform(_Dist):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: Finite
    high: Finite

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        _require_order(self.low, self.high)
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"uniform {_fmt(self.low)} to {_fmt(self.high)}"

    def frozen(self) -> Any:
        from scipy import stats

        return stats.uniform(loc=self.low, scale=self.high - self.low)


class _LowModeHigh(_Dist):
    low: Finite
    mode: Finite
    high: Finite

    @model_validator(mode="after")
    def _order(self) -> _LowModeHigh:
        _require_order(self.low, self.high)
        if not self.low <= self.mode <= self.high:
            raise PydanticCustomError(
                "mode_outside", "mode must lie in [low, high] (got mode={mode}; allowed {low} to {high})",
                {"mode": self.mode, "low": self.low, "high": self.high})
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def central(self) -> float:
        return self.mode


class Triangular(_LowModeHigh):
    """Triangular with the given low, mode and high."""

    dist: Literal["triangular"]

    def describe(self) -> str:
        return f"triangular {_fmt(self.low)} / {_fmt(self.mode)} / {_fmt(self.high)} (low / mode / high)"

    def frozen(self) -> Any:
        from scipy import stats

        width = self.high - self.low
        return stats.triang(c=(self.mode - self.low) / width, loc=self.low, scale=width)


class Pert(_LowModeHigh):
    """Beta-PERT: a smooth low / most likely / high estimate (``lamb`` = 4 is the classic)."""

    dist: Literal["pert"]
    lamb: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 4.0

    def describe(self) -> str:
        return f"PERT {_fmt(self.low)} / {_fmt(self.mode)} / {_fmt(self.high)} (low / most likely / high)"

    def frozen(self) -> Any:
        from scipy import stats

        width = self.high - self.low
        a = 1 + self.lamb * (self.mode - self.low) / width
        b = 1 + self.lamb * (self.high - self.mode) / width
        return stats.beta(a, b, loc=self.low, scale=width)


class Normal(_Dist):
    """Normal with mean and sd, optionally truncated to [low, high]."""

    dist: Literal["normal"]
    mean: Finite
    sd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    low: Finite | None = None
    high: Finite | None = None

    @model_validator(mode="after")
    def _order(self) -> Normal:
        if self.low is not None and self.high is not None:
            _require_order(self.low, self.high)
        return self

    def support(self) -> tuple[float, float]:
        return (-math.inf if self.low is None else self.low, math.inf if self.high is None else self.high)

    def describe(self) -> str:
        text = f"normal, mean {_fmt(self.mean)}, sd {_fmt(self.sd)}"
        if self.low is not None or self.high is not None:
            lo, hi = self.support()
            text += f", truncated to [{_fmt(lo)}, {_fmt(hi)}]"
        return text

    def frozen(self) -> Any:
        from scipy import stats

        if self.low is None and self.high is None:
            return stats.norm(self.mean, self.sd)
        lo, hi = self.support()
        return stats.truncnorm((lo - self.mean) / self.sd, (hi - self.mean) / self.sd,
                               loc=self.mean, scale=self.sd)

    def central(self) -> float:
        return float(self.frozen().median())


_Z95 = 1.6448536269514722  # standard normal 95th percentile


class LogNormal(_Dist):
    """Lognormal by ``median`` and ``sigma`` (sd of the log), or by ``p05`` and ``p95``."""

    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    sigma: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    p05: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    p95: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> LogNormal:
        by_median = self.median is not None and self.sigma is not None
        by_pct = self.p05 is not None and self.p95 is not None
        given = [k for k in ("median", "sigma", "p05", "p95") if getattr(self, k) is not None]
        if by_median == by_pct or len(given) != 2:
            raise PydanticCustomError(
                "lognormal_form",
                "give either median and sigma, or p05 and p95 (got {given})",
                {"given": ", ".join(given) or "none"})
        if by_pct and not self.p05 < self.p95:
            raise PydanticCustomError(
                "bounds_order", "p05 must be < p95 (got p05={low}, p95={high})",
                {"low": self.p05, "high": self.p95})
        return self

    def params(self) -> tuple[float, float]:
        """(median, sigma) whichever way the spec was written."""
        if self.median is not None and self.sigma is not None:
            return self.median, self.sigma
        assert self.p05 is not None and self.p95 is not None  # guaranteed by _one_form
        mu = 0.5 * (math.log(self.p05) + math.log(self.p95))
        return math.exp(mu), (math.log(self.p95) - math.log(self.p05)) / (2 * _Z95)

    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)

    def describe(self) -> str:
        median, sigma = self.params()
        return f"lognormal, median {_fmt(median)}, log-sd {_fmt(sigma)}"

    def frozen(self) -> Any:
        from scipy import stats

        median, sigma = self.params()
        return stats.lognorm(s=sigma, scale=median)

    def central(self) -> float:
        return self.params()[0]


class Beta(_Dist):
    """Beta(a, b) scaled to [low, high] (default [0, 1])."""

    dist: Literal["beta"]
    a: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    b: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    low: Finite = 0.0
    high: Finite = 1.0

    @model_validator(mode="after")
    def _order(self) -> Beta:
        _require_order(self.low, self.high)
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"beta(a={_fmt(self.a)}, b={_fmt(self.b)}) on [{_fmt(self.low)}, {_fmt(self.high)}]"

    def frozen(self) -> Any:
        from scipy import stats

        return stats.beta(self.a, self.b, loc=self.low, scale=self.high - self.low)


class Bernoulli(_Dist):
    """1 with probability ``p``, else 0."""

    dist: Literal["bernoulli"]
    p: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

    def support(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def describe(self) -> str:
        return f"1 with probability {_fmt(self.p)}, else 0"

    def frozen(self) -> Any:
        from scipy import stats

        return stats.bernoulli(self.p)

    def central(self) -> float:
        return self.p


class Choice(_Dist):
    """One of ``values`` with optional ``weights`` (normalised; equal if omitted)."""

    dist: Literal["choice"]
    values: Annotated[list[Finite], Field(min_length=1)]
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None

    @model_validator(mode="after")
    def _weights(self) -> Choice:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise PydanticCustomError(
                    "weights_length", "weights must have one entry per value (got {w} weights for {v} values)",
                    {"w": len(self.weights), "v": len(self.values)})
            if sum(self.weights) <= 0:
                raise PydanticCustomError("weights_sum", "weights must not all be zero", {})
        return self

    def probabilities(self) -> list[float]:
        w = self.weights or [1.0] * len(self.values)
        total = sum(w)
        return [x / total for x in w]

    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    def describe(self) -> str:
        pairs = ", ".join(f"{_fmt(v)} ({p:.0%})" for v, p in zip(self.values, self.probabilities(), strict=True))
        return f"one of {pairs}"

    def frozen(self) -> Any:
        return _ChoicePPF(self.values, self.probabilities())

    def central(self) -> float:
        return float(self.frozen().ppf(0.5))


class _ChoicePPF:
    """Inverse CDF of a discrete choice over arbitrary (sorted) values."""

    def __init__(self, values: list[float], probabilities: list[float]) -> None:
        import numpy as np

        order = np.argsort(values)
        self.values = np.asarray(values, dtype=float)[order]
        self.cdf = np.cumsum(np.asarray(probabilities, dtype=float)[order])
        self.cdf[-1] = 1.0

    def ppf(self, q: Any) -> Any:
        import numpy as np

        return self.values[np.searchsorted(self.cdf, q, side="left").clip(0, len(self.values) - 1)]

    def median(self) -> float:
        return float(self.ppf(0.5))


def parse_month(value: Any) -> dt.date:
    """A month start from ``2026-03``, ``2026-03-15`` or a YAML date."""
    if isinstance(value, dt.datetime):
        return value.date().replace(day=1)
    if isinstance(value, dt.date):
        return value.replace(day=1)
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%Y-%m"):
            try:
                return dt.datetime.strptime(text, fmt).date().replace(day=1)
            except ValueError:
                continue
    raise PydanticCustomError(
        "bad_date", "not a valid date (got {value}; allowed YYYY-MM or YYYY-MM-DD)", {"value": repr(value)})




class MonthRange(_Dist):
    """A date drawn uniformly among the months from ``start`` to ``end`` inclusive."""

    dist: Literal["month_range"]
    start: dt.date
    end: dt.date

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("start", "end"):
                if key in data:
                    data[key] = parse_month(data[key])
        return data

    @model_validator(mode="after")
    def _order(self) -> MonthRange:
        if self.end < self.start:
            raise PydanticCustomError(
                "bounds_order", "start must not be after end (got start={low}, end={high})",
                {"low": self.start.isoformat()[:7], "high": self.end.isoformat()[:7]})
        return self

    def offsets(self, origin: dt.date) -> tuple[int, int]:
        """Month offsets of start and end from ``origin`` (a month start)."""
        def months(d: dt.date) -> int:
            return (d.year - origin.year) * 12 + d.month - origin.month

        return months(self.start), months(self.end)

    def describe(self) -> str:
        return f"a month from {self.start:%Y-%m} to {self.end:%Y-%m}, equally likely"

    def frozen(self) -> Any:
        raise TypeError("a month_range is resolved against the valuation date; use offsets()")


class ScipyDist(_Dist):
    """Escape hatch: any ``scipy.stats`` continuous or discrete distribution by name."""

    dist: Literal["scipy"]
    name: str
    params: dict[str, Finite] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exists(self) -> ScipyDist:
        from scipy import stats

        family = getattr(stats, self.name, None)
        if not isinstance(family, (stats.rv_continuous, stats.rv_discrete)):
            import difflib

            names = [n for n in dir(stats) if isinstance(getattr(stats, n), (stats.rv_continuous, stats.rv_discrete))]
            close = difflib.get_close_matches(self.name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise PydanticCustomError(
                "unknown_scipy", "unknown scipy.stats distribution '{name}'{hint}", {"name": self.name, "hint": hint})
        problem = _scipy_problem(family, self.params)
        if problem is not None:
            params = "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in self.params.items()) + "}"
            raise PydanticCustomError("scipy_params", "scipy.stats.{name} rejects params {params}: {problem}",
                                      {"name": self.name, "params": params, "problem": problem})
        return self

    def support(self) -> tuple[float, float]:
        lo, hi = self.frozen().support()
        return (float(lo), float(hi))

    def describe(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"scipy.stats.{self.name}({args})"

    def frozen(self) -> Any:
        from scipy import stats

        return getattr(stats, self.name)(**self.params)


def _scipy_problem(family: Any, params: dict[str, float]) -> str | None:
    """What is wrong with ``params`` for a scipy.stats ``family``, in words; None if nothing.

    scipy answers a bad shape or a negative scale with NaN rather than an exception, so the
    frozen distribution's support and median are checked too.
    """
    import difflib

    from scipy import stats

    shapes = [x.strip() for x in (family.shapes or "").split(",") if x.strip()]
    names = [*shapes, "loc"] + ([] if isinstance(family, stats.rv_discrete) else ["scale"])
    for key in params:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return f"no parameter '{key}' (allowed: {', '.join(names)}){hint}"
    missing = [x for x in shapes if x not in params]
    if missing:
        return f"missing shape parameter(s) {', '.join(missing)} (allowed: {', '.join(names)})"
    if params.get("scale", 1.0) <= 0:
        return "scale must be > 0"
    try:
        frozen = family(**params)
        lo, hi = (float(x) for x in frozen.support())
        median = float(frozen.ppf(0.5))
    except (TypeError, ValueError, ArithmeticError) as exc:
        return str(exc)
    if math.isnan(lo) or math.isnan(hi):
        return f"a shape parameter ({', '.join(shapes)}) is outside the range scipy accepts"
    if not math.isfinite(median):
        return f"its median is {median}"
    return None


DIST_KINDS = ("fixed", "uniform", "triangular", "pert", "normal", "lognormal", "beta", "bernoulli",
              "choice", "month_range", "scipy")

Dist = Annotated[
    Union[Fixed, Uniform, Triangular, Pert, Normal, LogNormal, Beta, Bernoulli, Choice, MonthRange, ScipyDist],
    Field(discriminator="dist"),
]
