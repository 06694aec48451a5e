"""Helpers the test modules share (fixtures built on them live in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_YAML = ROOT / "scenarios" / "base.yaml"


def short_scenario(months: int = 12):
    """The shipped base scenario over a shorter horizon (validated again), to keep tests fast."""
    from simulator.scenario import load_scenario

    sc = load_scenario("base")
    data = sc.model_dump()
    data["simulation"]["horizon_months"] = months
    data["valuation"]["forward_years"] = [1]
    return type(sc).model_validate(data)


def short_yaml(directory: Path, months: int = 12, name: str = "short") -> Path:
    """A scenario file extending the shipped base case over ``months`` (forward years to 3)."""
    years = list(range(1, min(3, months // 12) + 1))
    path = directory / f"{name}.yaml"
    path.write_text(f"extends: {BASE_YAML}\nname: {name}\n"
                    f"simulation: {{horizon_months: {months}}}\nvaluation: {{forward_years: {years}}}\n")
    return path


def assert_same_data(a, b):
    """Bit-identical data variables and coordinates (attrs such as ``created`` may differ)."""
    assert sorted(a.data_vars) == sorted(b.data_vars)
    assert sorted(a.coords) == sorted(b.coords)
    for name in [*a.data_vars, *a.coords]:
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs"
