"""Bounds on run settings that the scenario schema and the command line both enforce.

``simulation.paths`` and ``simulation.seed`` in a scenario, and ``--paths``/``--seed`` on
the command line, take their ranges from here, so the two cannot drift apart. Stdlib only:
the ``minersim`` group imports this without loading pydantic.
"""

from __future__ import annotations

PATHS_MIN = 2
"""Fewest paths a run can summarise: a standard error needs two finite values."""

PATHS_MAX = 100_000_000

SEED_MIN = 0

SEED_MAX = 2**63 - 1
"""Largest seed: the cube stores it as a netCDF int64 attribute (``SeedSequence`` itself takes
any non-negative integer, but a larger one would be saved as an object and fail)."""
