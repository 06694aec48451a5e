"""minersim: Monte Carlo valuation of bitcoin miners converting megawatts to AI/HPC leases.

The public API is ``load_scenario``, ``simulate``, ``save`` and ``load``. It is loaded lazily,
so that ``minersim --help`` imports no numerical library, and each name is bound once on first
use: no submodule shares a name with it, so importing any submodule later never replaces it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_scenario": ("simulator.scenario", "load_scenario"),
    "simulate": ("simulator.run", "simulate"),
    "save": ("simulator.cube", "save"),
    "load": ("simulator.cube", "load"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}") from None
    value = globals()[name] = getattr(import_module(module), attr)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
