"""Tests for simulator/scenario/diagnostics.py with small models defined here."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Annotated, Any, Literal, Union

import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from simulator.errors import ScenarioError, ScenarioErrors
from simulator.scenario.diagnostics import from_validation_error
from simulator.scenario.extends import resolve
from simulator.scenario.loader import load_yaml

CFG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Tri(BaseModel):
    model_config = CFG
    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _order(self) -> Tri:
        if not self.low <= self.mode <= self.high:
            raise PydanticCustomError("mode_outside", "mode must lie in [low, high] (got mode={mode})",
                                      {"mode": f"{self.mode:g}"})
        return self


class Uni(BaseModel):
    model_config = CFG
    dist: Literal["uniform"]
    low: float
    high: float


Dist = Annotated[Union[Tri, Uni], Field(discriminator="dist")]
# As the scenario models do it: a callable discriminator whose tag for specs is 'dist',
# the same word as the key inside the spec.
Num = Annotated[
    Union[Annotated[float, Tag("number")], Annotated[Dist, Tag("dist")]],
    Discriminator(lambda v: "dist" if isinstance(v, dict) else "number"),
]


class Lease(BaseModel):
    model_config = CFG
    rate_usd_per_kw_month: Annotated[float, Field(gt=0)]
    term_years: int = 15
    after_default: Literal["relet", "vacant"] = "relet"


class Site(BaseModel):
    model_config = CFG
    name: str
    gross_mw: Annotated[float, Field(ge=0)]
    lease: Lease | None = None
    probability: Annotated[float, Field(ge=0, le=1)] = 0.5
    price: Num = 1.0


class Process(BaseModel):
    model_config = CFG
    kind: Literal["gbm"]
    volatility: float | Dist


class Jump(BaseModel):
    model_config = CFG
    kind: Literal["merton"]
    jump_rate: Annotated[float, Field(ge=0)]


class Scenario(BaseModel):
    model_config = CFG
    name: str
    start: dt.date = dt.date(2025, 1, 1)
    sites: list[Site] = []
    process: Annotated[Union[Process, Jump], Field(discriminator="kind")] = Process(kind="gbm", volatility=0.5)
    tables: dict[str, Lease] = {}
    between: list[str] = []

    @model_validator(mode="after")
    def _known(self) -> Scenario:
        for i, key in enumerate(self.between):
            if key not in {"a", "b"}:
                raise PydanticCustomError("unknown_input", "names '{key}', which is not an uncertain input",
                                          {"key": key, "at": ("between", i)})
        return self


def diagnose(tmp_path, text: str, model: Any = Scenario, name: str = "s.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    doc = resolve(path)
    with pytest.raises(ValidationError) as info:
        model.model_validate(doc.data)
    errors = from_validation_error(info.value, doc, model)
    assert isinstance(errors, ScenarioErrors) and isinstance(errors, ScenarioError)
    assert errors.exit_code == 2
    return errors.render().replace(str(path), "F").splitlines()


def test_bound_in_a_list_matches_the_documented_form(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        sites:
          - {name: a, gross_mw: 1}
          - name: b
            gross_mw: 2
            lease:
              rate_usd_per_kw_month: -12
    """) == ["F:7: sites[1].lease.rate_usd_per_kw_month: must be > 0 (got -12)"]


def test_unknown_key_with_did_you_mean_at_the_key_line(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        sites:
          - name: a
            gros_mw: 10
    """) == ["F:3: sites[0]: missing required key 'gross_mw'",
             "F:4: sites[0]: unknown key 'gros_mw'; did you mean 'gross_mw'?"]


def test_unknown_top_level_key_and_missing_top_level_key(tmp_path):
    assert diagnose(tmp_path, """
        # header
        nmae: x
    """) == ["F:2: missing required key 'name'",
             "F:2: unknown key 'nmae'; did you mean 'name'?"]


def test_unknown_key_with_no_close_match(tmp_path):
    assert diagnose(tmp_path, "name: x\nzzz: 1\n") == ["F:2: unknown key 'zzz'"]


@pytest.mark.parametrize(("value", "line"), [
    ("-3", "sites[0].gross_mw: must be >= 0 (got -3)"),
    ("abc", "sites[0].gross_mw: must be a number (got 'abc')"),
    ("{a: 1}", "sites[0].gross_mw: must be a number"),
    (".nan", "sites[0].gross_mw: must be a finite number (got .nan)"),
    (".inf", "sites[0].gross_mw: must be a finite number (got .inf)"),
    ("-.inf", "sites[0].gross_mw: must be a finite number (got -.inf)"),
    ("", "sites[0].gross_mw: must be a number (got null)"),
    ("[1, 2]", "sites[0].gross_mw: must be a number"),
])
def test_number_problems(tmp_path, value, line):
    assert diagnose(tmp_path, f"name: x\nsites:\n  - name: a\n    gross_mw: {value}\n") == [f"F:4: {line}"]


def test_probability_above_one(tmp_path):
    assert diagnose(tmp_path, "name: x\nsites:\n  - {name: a, gross_mw: 1, probability: 1.5}\n") == [
        "F:3: sites[0].probability: must be <= 1 (got 1.5)"]


def test_literal_with_hint(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        sites:
          - name: a
            gross_mw: 1
            lease: {rate_usd_per_kw_month: 150, after_default: relett}
    """) == ["F:5: sites[0].lease.after_default: not an allowed value (got 'relett'; allowed: relet, vacant); "
             "did you mean 'relet'?"]


def test_tagged_branch_named_like_a_key_is_not_a_key(tmp_path):
    # pydantic's loc is ('sites', 0, 'price', 'dist', 'triangular'): the first 'dist' is the
    # Tag of the callable discriminator, not the spec's 'dist' key.
    assert diagnose(tmp_path, """
        name: x
        sites:
          - name: a
            gross_mw: 1
            price:
              dist: triangular
              low: 1
              mode: 5
              high: 3
    """) == ["F:5: sites[0].price: mode must lie in [low, high] (got mode=5)"]


def test_missing_and_unknown_keys_inside_a_distribution(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        sites:
          - name: a
            gross_mw: 1
            price: {dist: triangular, low: 1, mode: 2, hihg: 3}
    """) == ["F:5: sites[0].price: missing required key 'high'",
             "F:5: sites[0].price: unknown key 'hihg'; did you mean 'high'?"]


def test_unknown_distribution_points_at_the_dist_key(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        process:
          kind: gbm
          volatility:
            low: 1
            dist: triangle
    """) == ["F:6: process.volatility.dist: unknown dist 'triangle' (allowed: triangular, uniform); "
             "did you mean 'triangular'?"]


def test_unknown_kind_and_missing_kind(tmp_path):
    assert diagnose(tmp_path, "name: x\nprocess: {kind: gmb, volatility: 1}\n") == [
        "F:2: process.kind: unknown kind 'gmb' (allowed: gbm, merton); did you mean 'gbm'?"]
    assert diagnose(tmp_path, "name: x\nprocess:\n  volatility: 1\n") == [
        "F:2: process: missing required key 'kind'"]


def test_smart_union_branches_collapse_to_one_message(tmp_path):
    assert diagnose(tmp_path, "name: x\nprocess: {kind: gbm, volatility: high}\n") == [
        "F:2: process.volatility: must be a number or a mapping of keys (got 'high')"]


def test_smart_union_keeps_the_error_of_the_branch_that_fits(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        process:
          kind: gbm
          volatility: {dist: uniform, low: 1, high: 2, extra: 3}
    """) == ["F:4: process.volatility: unknown key 'extra'"]


def test_merton_branch_fields(tmp_path):
    assert diagnose(tmp_path, "name: x\nprocess:\n  kind: merton\n  jump_rate: -1\n  jump_rat: 2\n") == [
        "F:4: process.jump_rate: must be >= 0 (got -1)",
        "F:5: process: unknown key 'jump_rat'; did you mean 'jump_rate'?"]


def test_dict_of_models(tmp_path):
    assert diagnose(tmp_path, """
        name: x
        tables:
          low_case: {rate_usd_per_kw_month: 0}
          high_case: {rate: 1, rate_usd_per_kw_month: 5}
    """) == ["F:3: tables.low_case.rate_usd_per_kw_month: must be > 0 (got 0)",
             "F:4: tables.high_case: unknown key 'rate'; did you mean 'rate_usd_per_kw_month'?"]


def test_bad_date(tmp_path):
    assert diagnose(tmp_path, "name: x\nstart: 2025-13-01\n") == [
        "F:2: start: must be a date (YYYY-MM-DD): month value is outside expected range of 1-12 "
        "(got '2025-13-01')"]


def test_wrong_type_for_a_list_and_a_mapping(tmp_path):
    assert diagnose(tmp_path, "name: x\nsites: {a: 1}\n") == ["F:2: sites: must be a list"]
    assert diagnose(tmp_path, "name: x\nsites:\n  - just-a-name\n") == [
        "F:3: sites[0]: must be a mapping of keys (got 'just-a-name')"]


def test_custom_error_pointing_at_a_sub_key(tmp_path):
    assert diagnose(tmp_path, "name: x\nbetween:\n  - a\n  - c\n") == [
        "F:4: between[1]: names 'c', which is not an uncertain input"]


def test_value_error_prefix_is_dropped(tmp_path):
    class Pair(BaseModel):
        model_config = CFG
        low: float
        high: float

        @model_validator(mode="after")
        def _order(self) -> Pair:
            if self.low > self.high:
                raise ValueError("low must be <= high")
            return self

    class Top(BaseModel):
        model_config = CFG
        pair: Pair

    assert diagnose(tmp_path, "pair:\n  low: 3\n  high: 1\n", Top) == ["F:1: pair: low must be <= high"]


def test_errors_point_into_the_parent_file_after_extends(tmp_path):
    base = "name: x\nsites:\n  - name: a\n    gross_mw: -5\n  - name: b\n    gross_mw: 1\n"
    (tmp_path / "base.yaml").write_text(base)
    lines = diagnose(tmp_path, "extends: base.yaml\nsites:\n  - name: b\n    gross_mw: -1\n", name="child.yaml")
    # the child's own error first, then the inherited one, with the parent's file and line
    assert lines == ["F:4: sites[1].gross_mw: must be >= 0 (got -1)",
                     f"{tmp_path / 'base.yaml'}:4: sites[0].gross_mw: must be >= 0 (got -5)"]


def test_structured_fields_of_an_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsites:\n  - {name: a, gross_mw: 1, probability: 2}\n")
    doc = load_yaml(path)
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(doc.data)
    (error,) = from_validation_error(info.value, doc, Scenario).errors
    assert (error.file, error.line, error.key_path) == (str(path), 3, "sites[0].probability")
    assert (error.message, error.got) == ("must be <= 1", "2")


def test_identical_problems_are_reported_once(tmp_path):
    class Either(BaseModel):
        model_config = CFG
        x: Union[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0, lt=10)]]

    lines = diagnose(tmp_path, "x: -1\n", Either)
    assert lines == ["F:1: x: must be > 0 (got -1)"]


def test_format_specs_in_custom_messages_are_filled(tmp_path):
    class Spec(BaseModel):
        model_config = CFG
        x: float

        @model_validator(mode="after")
        def _check(self) -> Spec:
            # pydantic substitutes only plain {name}; diagnostics fills the rest
            raise PydanticCustomError("bad", "x is {x:.1f}, {label!r} {missing:g}",
                                      {"x": self.x, "label": "ok", "at": "x"})

    assert diagnose(tmp_path, "x: 2\n", Spec) == ["F:1: x: x is 2.0, 'ok' {missing:g}"]
