"""Turn pydantic validation failures into ``FILE:LINE: key.path: problem`` scenario errors.

Pydantic reports a location (``loc``) through its schema, which includes entries that are
not keys of the YAML: union member labels (``float``, ``tagged-union[...]``), tags of
discriminated unions (``triangular``), ``[key]`` markers. :func:`from_validation_error`
walks each ``loc`` through the model's annotations and the data side by side, so the key
path it reports names real keys (``sites[1].lease.rate_usd_per_kw_month``), then finds the
source line through the loader's line map. Stdlib and pydantic only.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from simulator.errors import ScenarioError, ScenarioErrors, clip
from simulator.scenario.extends import ResolvedDoc
from simulator.scenario.loader import KeyPath, format_path, locate

_ABSENT = object()
_BASIC_NAMES = {float: "float", int: "int", str: "str", bool: "bool", type(None): "none"}
# Errors that only say "this branch of a union wants another shape"; dropped when another
# branch explains the value better.
_SHAPE_TYPES = {"float_type", "float_parsing", "int_type", "int_parsing", "string_type", "bool_type",
                "bool_parsing", "model_type", "model_attributes_type", "dict_type", "list_type",
                "date_type", "date_parsing", "date_from_datetime_parsing", "is_instance_of"}
_PHRASES = {
    "float_type": "must be a number", "float_parsing": "must be a number",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "model_type": "must be a mapping of keys", "model_attributes_type": "must be a mapping of keys",
    "dict_type": "must be a mapping of keys", "list_type": "must be a list",
    "finite_number": "must be a finite number",
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} character(s) long",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "multiple_of": "must be a multiple of {multiple_of}",
    "date_type": "must be a date (YYYY-MM-DD)", "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
}


@dataclass
class _Step:
    """Result of mapping one pydantic ``loc`` onto the data and the model."""

    path: KeyPath
    value: object
    types: list
    union_branch: bool
    last_absent: str | None = None


def from_validation_error(exc: ValidationError, doc: ResolvedDoc, model_cls: type[BaseModel]) -> ScenarioErrors:
    """One :class:`ScenarioError` per problem pydantic found, with file, line and key path.

    Parameters
    ----------
    exc : pydantic.ValidationError
        From ``model_cls.model_validate(doc.data)``.
    doc : ResolvedDoc
        The data that was validated and its line map (a ``LoadedDoc`` works too).
    model_cls : type
        The model that was validated; used to name real keys and to suggest close field
        names for unknown keys.

    Returns
    -------
    ScenarioErrors
        Sorted by file and line; raise it.

    Notes
    -----
    A custom error whose ``ctx`` has ``at`` (a key path relative to the error's location, as
    a tuple or a ``"correlations[2].between"`` string) is reported at that key instead.
    """
    records = []
    for err in exc.errors(include_url=False):
        step = _walk(tuple(err["loc"]), doc.data, model_cls)
        records.append((step, err))
    records = _drop_branch_noise(records)
    out: list[ScenarioError] = []
    seen: set[str] = set()
    for step, err in records:
        error = _to_error(step, err, doc, model_cls)
        if error.render() not in seen:
            seen.add(error.render())
            out.append(error)
    out.sort(key=lambda e: (e.file != doc.file, e.file or "", e.line or 0))
    return ScenarioErrors(out)


# ------------------------------------------------------------------ walking loc

def _unwrap(t: object) -> tuple[object, list]:
    """Strip ``Annotated`` layers, returning the bare type and the metadata seen."""
    meta: list = []
    while typing.get_origin(t) is typing.Annotated:
        meta.extend(t.__metadata__)
        t = t.__origin__
    return t, meta


def _members(t: object) -> list | None:
    """Members of a union (``None`` dropped, as pydantic's nullable schema adds no loc)."""
    bare, _ = _unwrap(t)
    if typing.get_origin(bare) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(bare) if m is not type(None)]
        if len(members) > 1:
            return members
        return _members(members[0]) if members else None
    return None


def _model(t: object) -> type[BaseModel] | None:
    bare, _ = _unwrap(t)
    return bare if isinstance(bare, type) and issubclass(bare, BaseModel) else None


def _labels(member: object) -> set[str]:
    """Names pydantic may use in ``loc`` for a union member."""
    bare, meta = _unwrap(member)
    labels = {m.tag for m in meta if type(m).__name__ == "Tag"}
    labels.add(_BASIC_NAMES.get(bare, getattr(bare, "__name__", str(bare))))
    model = _model(bare)
    if model is not None:
        for field in model.model_fields.values():
            if typing.get_origin(field.annotation) is typing.Literal:
                labels.update(str(v) for v in typing.get_args(field.annotation))
    for sub in _members(bare) or []:
        sub_model = _model(sub)
        if sub_model is not None:
            labels.add(sub_model.__name__)
    return labels


def _match_member(members: list, item: str) -> object | None:
    for m in members:
        if item in _labels(m):
            return m
    # Smart-union labels such as 'function-after[check(), Triangular]' or 'tagged-union[A,B]'.
    if "[" in item:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item))
        for m in members:
            if _labels(m) & words:
                return m
    return None


def _field(model: type[BaseModel], item: str) -> object | None:
    for name, field in model.model_fields.items():
        if item in (name, field.alias, field.validation_alias):
            if field.metadata:
                return typing.Annotated[(field.annotation, *field.metadata)]
            return field.annotation
    return None


def _descend(value: object, item: object) -> object:
    if isinstance(value, dict) and item in value:
        return value[item]
    if isinstance(value, list) and isinstance(item, int) and 0 <= item < len(value):
        return value[item]
    return _ABSENT


def _walk(loc: tuple, data: object, model_cls: object) -> _Step:
    """Map a pydantic ``loc`` onto key paths of ``data`` and annotations of ``model_cls``."""
    step = _Step(path=(), value=data, types=[model_cls], union_branch=False)
    for item in loc:
        step.types, consumed = _advance(step.types, item)
        if consumed == "label":
            step.union_branch = True
            continue
        if consumed == "skip":
            continue
        if consumed == "unknown" and _descend(step.value, item) is _ABSENT:
            continue
        child = _descend(step.value, item)
        if child is _ABSENT:
            step.last_absent = str(item)
            return step
        step.path += (item,)
        step.value = child
    return step


def _advance(frontier: list, item: object) -> tuple[list, str]:
    """Next candidate annotations after ``item``, and whether it was a key, label or skip."""
    if isinstance(item, str) and item.startswith("[") and item.endswith("]"):
        return frontier, "skip"
    for t in frontier:
        members = _members(t)
        if members is not None:
            match = _match_member(members, str(item))
            return ([match] if match is not None else members), "label"
    nxt = []
    for t in frontier:
        bare, _ = _unwrap(t)
        model = _model(bare)
        origin = typing.get_origin(bare)
        args = typing.get_args(bare)
        if model is not None and isinstance(item, str):
            ann = _field(model, item)
            if ann is not None:
                nxt.append(ann)
        elif origin in (list, tuple, set, frozenset) and isinstance(item, int) and args:
            nxt.append(args[0])
        elif origin is dict and isinstance(item, str) and len(args) == 2:
            nxt.append(args[1])
    return (nxt, "key") if nxt else ([], "unknown")


def _drop_branch_noise(records: list) -> list:
    """Drop "wrong shape" errors of union branches when another error explains the value."""
    def noisy(step: _Step, err: dict) -> bool:
        return step.union_branch and err["type"] in _SHAPE_TYPES
    keep = []
    for step, err in records:
        if noisy(step, err) and any(
            other is not err and not noisy(s, other) and s.path[:len(step.path)] == step.path
            for s, other in records
        ):
            continue
        keep.append((step, err))
    return _merge_shapes(keep)


def _merge_shapes(records: list) -> list:
    """Several branches all rejecting the shape of one value become one 'must be X or Y'."""
    out, by_path = [], {}
    for step, err in records:
        if step.union_branch and err["type"] in _SHAPE_TYPES:
            if step.path in by_path:
                first = by_path[step.path][1]
                phrase = _PHRASES.get(err["type"], "").removeprefix("must be ")
                if phrase and phrase not in first["msg"]:
                    first["msg"] = f"{first['msg']} or {phrase}"
                continue
            err = dict(err, type="wrong_type", msg=_PHRASES.get(err["type"], err["msg"]))
            by_path[step.path] = (step, err)
        out.append((step, err))
    return out


# ------------------------------------------------------------------ messages

def _fmt(value: object) -> str | None:
    """A value as the author would have typed it in YAML; ``None`` for mappings and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return f"{value:g}" if abs(value) < 1e16 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return None


def _fill_placeholders(message: str, ctx: dict) -> str:
    """Format ``{got:g}`` / ``{value!r}`` left in a custom message: pydantic substitutes only ``{name}``."""
    def sub(match: re.Match) -> str:
        name, conv, spec = match.group(1), match.group(2), match.group(3) or ""
        if name not in ctx:
            return match.group(0)
        value = ctx[name]
        value = {"r": repr, "s": str, "a": ascii}[conv](value) if conv else value
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)
    return re.sub(r"\{(\w+)(?:!([rsa]))?(?::([^{}]*))?\}", sub, message)


def _bound(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _quoted(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _hint(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    # Keys carry their units, so 'gross' or 'rate' usually means 'gross_mw' or 'rate_usd_...'.
    close = close or [o for o in options if len(word) >= 3 and o.startswith(word + "_")][:1]
    return f"did you mean '{close[0]}'?" if close else None


def _field_names(frontier: list, present: object) -> tuple[list[str], list[str]]:
    """Field names (and aliases) of the models in ``frontier``: those not set yet, and all."""
    names: list[str] = []
    for t in frontier:
        for m in _members(t) or [t]:
            model = _model(m)
            if model is None:
                continue
            for name, field in model.model_fields.items():
                names.extend(n for n in (name, field.alias) if isinstance(n, str) and n not in names)
    unset = [n for n in names if not (isinstance(present, dict) and n in present)]
    return unset, names


def _relative_at(at: object) -> KeyPath:
    if isinstance(at, (tuple, list)):
        return tuple(at)
    parts: list = []
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", str(at)):
        parts.append(int(index) if index else key)
    return tuple(parts)


REMOVED = {
    **dict.fromkeys(("discount_rate_mining", "discount_rate_hpc"),
                    "no longer used: cash flows are discounted at valuation.risk_free_rate plus "
                    "tenant_credit_spread (leases) or company_credit_spread (notes); BTC risk is in "
                    "the pricing measure (domain.md, 'Valuation')"),
    **dict.fromkeys(("terminal_multiple_mining", "terminal_multiple_hpc"),
                    "no longer used: the terminal value is a growing perpetuity at the rate used "
                    "inside the horizon; set valuation.terminal_growth_mining (leases grow at their "
                    "escalator)"),
}
"""Keys earlier versions accepted, with what replaced them."""


def _to_error(step: _Step, err: dict, doc: ResolvedDoc, model_cls: object) -> ScenarioError:
    kind, ctx = err["type"], err.get("ctx") or {}
    path, got, allowed, hint = step.path, _fmt(err.get("input")), None, None
    message = _PHRASES.get(kind, "").format(**{k: _bound(v) for k, v in ctx.items()}) if kind in _PHRASES else None
    if kind == "wrong_type":
        message = err["msg"]
    elif kind == "missing":
        message, got = f"missing required key '{step.last_absent}'", None
    elif kind == "extra_forbidden":
        key = path[-1] if path else "?"
        parent = _walk(tuple(err["loc"])[:-1], doc.data, model_cls)
        message, got = f"unknown key '{clip(str(key))}'", None
        unset, names = _field_names(parent.types, parent.value)
        hint = REMOVED.get(str(key)) or _hint(str(key), unset) or _hint(str(key), names)
        file, line = locate(doc.lines, path, doc.file)
        return ScenarioError(message, file=file, line=line, key_path=format_path(path[:-1]) or None, hint=hint)
    elif kind == "literal_error" or kind == "enum":
        options = _quoted(str(ctx.get("expected", "")))
        message, allowed = "not an allowed value", ", ".join(options) or None
        hint = _hint(str(err.get("input")), options)
    elif kind == "union_tag_invalid":
        key = str(ctx.get("discriminator", "")).strip("'\"")
        options = _quoted(str(ctx.get("expected_tags", "")))
        if isinstance(step.value, dict) and key in step.value:
            path += (key,)
        message, got, allowed = f"unknown {key} '{clip(str(ctx.get('tag')))}'", None, ", ".join(options)
        hint = _hint(str(ctx.get("tag")), options)
    elif kind == "union_tag_not_found":
        message, got = f"missing required key '{str(ctx.get('discriminator', '')).strip(chr(39))}'", None
    elif kind == "date_from_datetime_parsing" and ctx.get("error"):
        message = f"must be a date (YYYY-MM-DD): {ctx['error']}"
    elif message is None:
        message = re.sub(r"^(Value error|Assertion failed), ", "", _fill_placeholders(err["msg"], ctx))
        message = message.replace("Input should be", "must be")
        if "at" in ctx:
            path += _relative_at(ctx["at"])
    if got is not None and ("(got " in message or isinstance(err.get("input"), (dict, list))):
        got = None
    file, line = locate(doc.lines, path, doc.file)
    return ScenarioError(message, file=file, line=line, key_path=format_path(path) or None,
                         got=got, allowed=allowed, hint=hint)
