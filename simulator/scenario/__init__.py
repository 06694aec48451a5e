"""Load and validate scenarios: YAML on disk -> a frozen :class:`Scenario`.

``load_scenario`` accepts a path or the bare name of a shipped scenario (``base``).
No NumPy at import time, so ``minersim validate`` and ``schema`` stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulator.errors import ScenarioError, ScenarioWarning
from simulator.scenario.diagnostics import from_validation_error
from simulator.scenario.extends import resolve
from simulator.scenario.loader import find_scenario, load_yaml, locate, trailing_comment
from simulator.scenario.models import Scenario
from simulator.scenario.universe import KEY as UNIVERSE_KEY
from simulator.scenario.universe import is_universe

__all__ = ["Scenario", "LoadedScenario", "load_scenario", "load", "json_schema", "shipped_scenarios"]


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from."""

    scenario: Scenario
    path: Path
    resolved: dict[str, Any]
    """The merged plain data after ``extends:`` (what was validated)."""
    lines: dict[tuple[Any, ...], tuple[str, int]]
    """(file, line) of every key path, for messages and source comments."""

    @property
    def yaml_text(self) -> str:
        """The resolved scenario as canonical YAML-compatible JSON (stable for hashing)."""
        return json.dumps(self.resolved, sort_keys=True, default=str, indent=1)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.yaml_text.encode("utf-8")).hexdigest()

    def comment(self, key_path: tuple[Any, ...]) -> str | None:
        """The ``# comment`` on the line that sets ``key_path``, if any (used as a source note)."""
        where = self.lines.get(key_path)
        if where is None:
            return None
        file, line = where
        try:
            text = Path(file).read_text(encoding="utf-8").splitlines()[line - 1]
        except (OSError, IndexError):
            return None
        return trailing_comment(text)


def load(path: str | os.PathLike[str]) -> LoadedScenario:
    """Load, merge and validate a scenario file (or shipped name) with its line map.

    Odd but possible inputs are warned about (:class:`~simulator.errors.ScenarioWarning`,
    through :func:`warnings.warn`) with the file and line of the value.
    """
    file = find_scenario(path)
    doc = resolve(file)
    if UNIVERSE_KEY in doc.data:
        at_file, at_line = doc.locate((UNIVERSE_KEY,))
        raise ScenarioError("this is a universe file (a shared market and a list of companies), not one scenario",
                            file=at_file, line=at_line, key_path=UNIVERSE_KEY,
                            hint="validate it with 'minersim validate', or run one of the company files it lists")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScenarioWarning)
        try:
            scenario = Scenario.model_validate(doc.data)
        except ValidationError as exc:
            raise from_validation_error(exc, doc, Scenario) from None
    for w in caught:
        if isinstance(w.message, ScenarioWarning):
            warnings.warn(w.message.located(*locate(doc.lines, w.message.at, doc.file)), stacklevel=2)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return LoadedScenario(scenario=scenario, path=file, resolved=doc.data, lines=doc.lines)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load a scenario file (or the name of a shipped scenario) into a validated ``Scenario``."""
    return load(path).scenario


def json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario language, for editors' YAML plugins."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "minersim scenario"
    props = schema.setdefault("properties", {})
    props["extends"] = {"type": "string", "description": "A scenario file (relative path or shipped name) to inherit."}
    return schema


def shipped_scenarios() -> list[tuple[str, str]]:
    """(name, one-line description) of every scenario shipped with minersim."""
    from simulator._files import scenarios_dir

    out = []
    for file in sorted(scenarios_dir().glob("*.yaml")):
        try:
            if is_universe(file):
                description = str(load_yaml(file).data.get("description", ""))
            else:
                description = load(file).scenario.description
        except Exception as exc:  # noqa: BLE001 - a broken shipped file is listed, not fatal
            description = f"(invalid: {exc})"
        out.append((file.stem, description.splitlines()[0] if description else ""))
    return out
