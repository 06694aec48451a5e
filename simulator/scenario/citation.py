"""``source:`` of a scenario input: the text that cites it, and optionally its date and link.

A source is text (``source: "C-O1, C-O2"``: row ids of the shipped fact sheets, or words
such as ``"seed article"``) or a mapping that also says when the figure was known and
where it was read (``source: {id: "C-O1", as_of: 2025-11-30, url: "https://..."}``).
Either way a model holds a :class:`Citation`, a ``str`` of the text with ``as_of`` and
``url`` attached, so whatever shows a source as text (report, compare, export) reads it
unchanged; it dumps back to the form it was written in. Stdlib and pydantic only.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
)
from pydantic_core import PydanticCustomError


class Citation(str):
    """The text of a ``source:``, with the ``as_of`` date and ``url`` of its mapping form."""

    as_of: dt.date | None
    url: str | None

    def __new__(cls, text: str, as_of: dt.date | None = None, url: str | None = None) -> Citation:
        self = super().__new__(cls, text)
        self.as_of, self.url = as_of, url
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        return (str.__eq__(self, other)
                and (self.as_of, self.url) == (getattr(other, "as_of", None), getattr(other, "url", None)))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__

    def dump(self) -> str | dict[str, Any]:
        """The form it was written in: the text, or ``{id, as_of, url}``."""
        if self.as_of is None and self.url is None:
            return str(self)
        out: dict[str, Any] = {"id": str(self)}
        if self.as_of is not None:
            out["as_of"] = self.as_of
        if self.url is not None:
            out["url"] = self.url
        return out


def _as_of(value: Any) -> dt.date | None:
    """A date from ``2025-11-30``; a month (``2025-11``) is as of its last day."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = int(text[:4]), int(text[5:])
            return dt.date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:  # 2025-13, 2025-02-30
        pass
    return None


def _date(value: Any) -> dt.date:
    parsed = _as_of(value)
    if parsed is None:
        raise PydanticCustomError("bad_date", "not a valid date (got {value}; allowed YYYY-MM-DD or YYYY-MM)",
                                  {"value": repr(value)})
    return parsed


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://\S+", value):
        raise PydanticCustomError("bad_url", "must be an http(s) URL (got {value})", {"value": repr(value)})
    return value


class SourceSpec(BaseModel):
    """The mapping form of ``source:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, description="Row ids of the fact sheets (C-O1, N-V1..N-V7) or words.")]
    as_of: Annotated[dt.date, BeforeValidator(_date)] | None = Field(
        None, description="When the figure was known (YYYY-MM-DD; a YYYY-MM month counts as its last day).")
    url: Annotated[str, AfterValidator(_url)] | None = Field(None, description="Where it was read (http or https).")


def _kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (dict, SourceSpec)):
        return "mapping"
    return None


def _cite(value: str | SourceSpec) -> Citation:
    if isinstance(value, Citation):
        return value
    if isinstance(value, SourceSpec):
        return Citation(value.id, as_of=value.as_of, url=value.url)
    return Citation(value)


Source = Annotated[
    Union[Annotated[str, Tag("text")], Annotated[SourceSpec, Tag("mapping")]],
    Discriminator(_kind, custom_error_type="source_type",
                  custom_error_message="must be text or a mapping {id: ..., as_of: ..., url: ...}"),
    AfterValidator(_cite),
    PlainSerializer(lambda c: c.dump() if isinstance(c, Citation) else c, return_type=Any),
]
"""A ``source:`` field: text or ``{id, as_of, url}``, held as a :class:`Citation`."""
