"""xarray without dask until dask is used: spares every run about 0.7 s of imports.

Called once by :mod:`simulator.cube` before any variable is built (so by every process that
makes or reads a cube); calling it again does nothing.
"""

from __future__ import annotations

import sys
from typing import Any


def dask_checked_lazily() -> None:
    """Stop xarray importing dask (about 0.7 s) to build its first variables.

    xarray asks, for every array it wraps, whether it is a dask array: to know the type it
    imports ``dask.array`` whenever dask is installed, and for index coordinates it asks
    ``dask.base`` too. No dask array or collection can exist before dask is imported, so
    "not dask" is the exact answer until then. Here xarray's record of dask looks the type
    up in ``sys.modules`` at each question (importing dask only if asked for its version),
    and its collection check says no while dask is not imported. A serial run and the
    report never import dask; a Dask run, or a user's ``xr.open_dataset(..., chunks=...)``,
    imports it and is recognised as before. Does nothing if these xarray internals change.
    """
    try:
        from xarray.namedarray import pycompat, utils
        cache = pycompat._cached_duck_array_modules
        base = pycompat.DuckArrayModule
        collection_check = utils.is_dask_collection
    except (ImportError, AttributeError):
        return
    if not isinstance(cache, dict) or "dask" in cache or not callable(collection_check):
        return

    def is_dask_collection(x: object) -> bool:
        return "dask" in sys.modules and collection_check(x)

    utils.is_dask_collection = is_dask_collection

    class _Dask(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:  # nothing imported here
            pass

        @property
        def type(self) -> tuple[type, ...]:  # type: ignore[override]
            array = getattr(sys.modules.get("dask.array"), "Array", None)
            return (array,) if isinstance(array, type) else ()

        def __getattr__(self, name: str) -> Any:  # module, version, available: the real record
            real = cache["dask"] = base("dask")
            return getattr(real, name)

    cache["dask"] = _Dask()
