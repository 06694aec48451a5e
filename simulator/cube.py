"""The cube: one xarray.Dataset per run, assembled from a declarative variable table.

``VARIABLES`` is the contract between the engine and everything that reads a run (analysis,
report, export, other tools): name → (dims, units, long_name). :func:`assemble` refuses names
that are not in it, so the table and the files never drift apart. :func:`save` / :func:`load`
own the on-disk form (netCDF4 through the ``h5netcdf`` engine, written atomically).

At large path counts the engine keeps every per-path variable for all ``N`` paths but full
``[path, time]`` series only for a stored sample of the first ``K`` paths (design.md, "Scale").
The series then sit on a ``sample`` dimension whose coordinate holds their path ids, and the
exact all-path per-month mean and standard deviation are stored as ``<name>_mean`` /
``<name>_std`` over ``time``. Use :func:`path_dim` to find which of the two a variable uses.

Storage precision: per-path values (``[path]``, ``[path, site]``, ``[path, horizon]``),
the all-path summaries and the inputs stay float64. Floating ``[path, time]`` series are
stored as float32 (about 7 significant digits: $100 on $1 bn of cash, 0.0001 BTC on 10,000
BTC), ample for monthly USD and BTC figures and half the bytes; the engine still accumulates
money in float64 before :func:`assemble` rounds. Files are written zlib-compressed (level
:data:`ZLIB_LEVEL`) behind the HDF5 byte-shuffle filter, in chunks of about 1 MB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simulator import units as u
from simulator._files import atomic_path
from simulator.errors import RunError

SERIES_DTYPE = np.float32
"""Storage dtype of floating ``[path, time]`` series (in the reducer's sample buffers and in the
file): about 7 significant digits, half the bytes of float64."""

PT = ("path", "time")
P = ("path",)
PS = ("path", "site")

#: name → (dims, units, long_name). The one list of what a cube may hold. Floating
#: ``[path, time]`` series are stored as :data:`SERIES_DTYPE` (float32); everything else keeps
#: the engine's dtype (float64, int64, bool).
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    # market and network
    "btc_price": (PT, u.USD_PER_BTC, "BTC price"),
    "fees_per_block": (PT, u.BTC_PER_BLOCK, "transaction fees per block"),
    "subsidy": (PT, u.BTC_PER_BLOCK, "block subsidy"),
    "block_height": (PT, u.BLOCKS, "block height at month end"),
    "network_hashrate": (PT, u.EHS, "network hashrate"),
    "hashprice": (PT, u.USD_PER_PH_DAY, "hashprice"),
    # fleet and mining P&L
    "company_hashrate": (PT, u.EHS, "company hashrate"),
    "mining_mw": (PT, u.MW, "power drawn by mining (0 in curtailed months)"),
    "hpc_mw_it": (PT, u.MW, "leased HPC critical IT load"),
    "hpc_mw_gross": (PT, u.MW, "gross site MW out of mining for HPC (build, lease, downtime)"),
    "curtailed": (PT, u.ONE, "fleet curtailed for the month (1) or running (0)"),
    "btc_mined": (PT, u.BTC_PER_MONTH, "BTC mined"),
    "mining_revenue": (PT, u.USD_PER_MONTH, "mining revenue"),
    "power_cost": (PT, u.USD_PER_MONTH, "mining power cost"),
    "mining_margin": (PT, u.USD_PER_MONTH, "mining margin"),
    # sites and cash flow
    "hpc_revenue": (PT, u.USD_PER_MONTH, "HPC lease revenue"),
    "hpc_noi": (PT, u.USD_PER_MONTH, "HPC net operating income"),
    "site_opex": (PT, u.USD_PER_MONTH, "site operating expense"),
    "sga": (PT, u.USD_PER_MONTH, "selling, general and administrative expense"),
    "interest": (PT, u.USD_PER_MONTH, "interest paid"),
    "tax": (PT, u.USD_PER_MONTH, "cash tax paid"),
    "capex": (PT, u.USD_PER_MONTH, "capital expenditure"),
    "free_cash_flow": (PT, u.USD_PER_MONTH, "free cash flow"),
    # treasury and capital
    "btc_held": (PT, u.BTC, "BTC held at month end"),
    "btc_sold": (PT, u.BTC_PER_MONTH, "BTC sold"),
    "cash": (PT, u.USD, "cash at month end"),
    # valuation (per path)
    "value_per_share": (P, u.USD_PER_SHARE, "value to equity per diluted share today on the path; "
                        "its mean is the fair value"),
    "equity_value": (P, u.USD, "value to equity today on the path, before limited liability"),
    "pv_mining": (P, u.USD, "mining margin less site opex and fleet capex, discounted, "
                            "with its terminal value"),
    "pv_hpc": (P, u.USD, "leases of every site (signed on the path or not) net of fit-out and "
                         "project debt, discounted, with their terminal value and unsigned land"),
    "pv_sga": (P, u.USD, "SG&A, discounted, with its terminal value (negative)"),
    "pv_taxes": (P, u.USD, "cash taxes, discounted, with their terminal value (negative)"),
    "treasury_value": (P, u.USD, "the BTC held today, valued on the path"),
    "cash0": (P, u.USD, "cash at the valuation date"),
    "pv_notes": (P, u.USD, "the notes' payments in cash, discounted at r plus the company spread"),
    "net_debt": (P, u.USD, "pv_notes less cash at the valuation date"),
    "pv_equity_raised": (P, u.USD, "proceeds of later equity raises, discounted"),
    "diluted_shares": (P, u.SHARES, "diluted shares at the horizon"),
    "shares_issued": (P, u.SHARES, "shares issued by conversion (net of the capped call) or equity raises"),
    "path_failed": (P, u.ONE, "path failed (values are NaN)"),
    "pricing_controls": (("path", "control"), u.ONE,
                         "controls of the fair value, each of mean zero under the pricing measure: "
                         "the discounted BTC price over spot less one, exp(-r m/12) S_m/S_0 - 1, "
                         "at month m (btc_m<m>); a site's signing, 1 if it signs less its "
                         "probability (signs_<site>)"),
    "forward_value_per_share": (("path", "horizon"), u.USD_PER_SHARE,
                                "value per share marked at the forward date, V_t(state) / shares"),
    # sites
    "sign_month": (PS, u.MONTHS, "month index of lease signing (-1 = never)"),
    "energise_month": (PS, u.MONTHS, "month index of energisation (-1 = never)"),
}

PRICING, REAL_WORLD = "pricing", "real-world"

_PRICING_VARIABLES = frozenset({
    "value_per_share", "equity_value", "pv_mining", "pv_hpc", "pv_sga", "pv_taxes",
    "treasury_value", "cash0", "pv_notes", "net_debt", "pv_equity_raised", "diluted_shares",
    "shares_issued", "path_failed", "pricing_controls"})
_NO_MEASURE = frozenset({"sign_month", "energise_month"})


def measure_of(name: str) -> str | None:
    """The measure a variable is under (domain.md, "Valuation"): ``pricing`` for today's value
    and its parts (their mean is a fair value), ``real-world`` for the monthly series and the
    forward marks (forecasts), None for what no measure changes (signing, energisation)."""
    if name in _NO_MEASURE or name.startswith("input_"):
        return None
    base = name.rsplit("_", 1)[0] if name.endswith(("_mean", "_std")) else name
    return PRICING if base in _PRICING_VARIABLES else REAL_WORLD


ZLIB_LEVEL = 1  # shuffled float32 compresses about as well at 1 as at 4, several times faster
_CHUNK_BYTES = 1 << 20

_MANIFEST_KEYS = ("scenario_name", "scenario_yaml", "scenario_sha256", "history_sha256", "seed",
                  "paths", "sampling", "minersim_version", "created", "valuation_date",
                  "share_price", "runtime_seconds")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def assemble(arrays: Mapping[str, np.ndarray], *, calendar: Any, sites: list[str],
             forward_years: list[int], controls: list[str] | None = None,
             inputs: Mapping[str, tuple[np.ndarray, str, str]] | None = None,
             manifest: Mapping[str, Any] | None = None,
             summary: Mapping[str, np.ndarray] | None = None) -> xr.Dataset:
    """Build the run's Dataset from engine arrays, sampled inputs and the manifest.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        Names from :data:`VARIABLES`; shapes follow their dims. ``[path, time]`` arrays may
        hold fewer rows (``K``) than the per-path arrays (``N``): the stored sample of the
        first ``K`` paths, placed on a ``sample`` dimension.
    calendar : array-like of dates
        Month starts of the time axis (anything ``numpy.datetime64`` accepts).
    sites : list of str
        Site names, in the column order of ``[path, site]`` arrays.
    forward_years : list of int
        Horizons [years] of the columns of ``forward_value_per_share`` (the ``horizon``
        coordinate holds them in months: 12, 24, 36).
    controls : list of str, optional
        Names of the columns of ``pricing_controls``.
    inputs : mapping of str to (ndarray [path], units, long_name)
        Every sampled input, keyed by its scenario key path; stored as ``input_<key>`` with
        non-identifier characters replaced by ``_`` and the key kept in attr ``key_path``.
    manifest : mapping
        Run attributes (``scenario_name``, ``seed``, ``paths``, ...). Lists and dicts are
        stored as JSON strings, dates as ISO strings, booleans as 0/1, ``None`` is dropped.
    summary : mapping of str to ndarray [time], optional
        Exact all-path ``<name>_mean`` / ``<name>_std`` of ``[path, time]`` variables.

    Returns
    -------
    xarray.Dataset
        Coordinates ``path`` (int64), ``time`` (datetime64[ns]), ``site`` (str),
        ``horizon`` [months] (int64), ``control`` (str) and, with a stored sample, ``sample`` (int64 path ids).

    Raises
    ------
    RunError
        For a name missing from the table or an array whose shape does not fit.
    """
    unknown = sorted(set(arrays) - set(VARIABLES))
    if unknown:
        raise RunError(f"cube: unknown variable(s) {unknown}; add them to "
                       "simulator.cube.VARIABLES (the table is the contract)")
    time = _month_starts(calendar)
    n_path = _path_count(arrays, inputs)
    n_sample = _sample_count(arrays, n_path)
    coords: dict[str, Any] = {
        "path": np.arange(n_path, dtype=np.int64),
        "time": time,
        "site": np.asarray(list(sites), dtype=str),
        "horizon": np.asarray([12 * y for y in forward_years], dtype=np.int64),
        "control": np.asarray(list(controls or []), dtype=str),
    }
    if n_sample != n_path:
        coords["sample"] = np.arange(n_sample, dtype=np.int64)
    sizes = {k: np.shape(v)[0] for k, v in coords.items()}
    data_vars: dict[str, xr.Variable] = {}
    for name, values in arrays.items():
        dims, unit, long_name = VARIABLES[name]
        if dims == PT:
            dims = PT if n_sample == n_path else ("sample", "time")
        data_vars[name] = _variable(name, values, dims, sizes, unit, long_name)
    for key, (values, unit, long_name) in (inputs or {}).items():
        name = "input_" + _SAFE_NAME.sub("_", key.removeprefix("input_"))
        var = _variable(name, values, P, sizes, unit, long_name)
        var.attrs["key_path"] = key
        data_vars[name] = var
    for name, values in (summary or {}).items():
        data_vars[name] = _summary_variable(name, values, sizes)
    # One constructor call: setting variables one by one re-aligns the whole Dataset each time.
    return xr.Dataset(data_vars, coords=_coords(coords),
                      attrs=_clean_attrs(manifest or {}))


def _month_starts(calendar: Any) -> np.ndarray:
    months = np.asarray(calendar).astype("datetime64[M]")
    time = months.astype("datetime64[ns]")
    if not np.array_equal(time, np.asarray(calendar).astype("datetime64[ns]")):
        raise RunError("cube: calendar must hold month starts (first of the month, 00:00)")
    return time


def _path_count(arrays: Mapping[str, np.ndarray], inputs: Mapping | None) -> int:
    counts = {np.shape(v)[0] for k, v in arrays.items() if VARIABLES[k][0][0] == "path"
              and VARIABLES[k][0] != PT}
    counts |= {np.shape(v[0])[0] for v in (inputs or {}).values()}
    if not counts:
        counts = {np.shape(v)[0] for v in arrays.values()}
    if len(counts) != 1:
        raise RunError(f"cube: per-path arrays disagree on the number of paths {sorted(counts)}")
    return counts.pop()


def _sample_count(arrays: Mapping[str, np.ndarray], n_path: int) -> int:
    counts = {np.shape(v)[0] for k, v in arrays.items() if VARIABLES[k][0] == PT}
    if len(counts) > 1:
        raise RunError(f"cube: [path, time] arrays disagree on rows {sorted(counts)}")
    n_sample = counts.pop() if counts else n_path
    if n_sample > n_path:
        raise RunError(f"cube: stored sample of {n_sample} paths exceeds {n_path} paths")
    return n_sample


def _variable(name: str, values: np.ndarray, dims: tuple[str, ...], sizes: Mapping[str, int],
              unit: str, long_name: str) -> xr.Variable:
    values = np.asarray(values)
    if name == "path_failed":
        values = values.astype(bool)
    elif dims[-1:] == ("time",) and len(dims) == 2 and values.dtype.kind == "f":
        values = values.astype(SERIES_DTYPE, copy=False)
    want = tuple(sizes[d] for d in dims)
    if values.shape != want:
        raise RunError(f"cube: {name} has shape {values.shape}, expected {want} for dims {dims}")
    attrs = {"units": unit, "long_name": long_name}
    measure = measure_of(name)
    if measure:
        attrs["measure"] = measure
    return xr.Variable(dims, values, attrs=attrs)


def _summary_variable(name: str, values: np.ndarray, sizes: Mapping[str, int]) -> xr.Variable:
    base, _, stat = name.rpartition("_")
    if stat not in ("mean", "std") or VARIABLES.get(base, ((),))[0] != PT:
        raise RunError(f"cube: summary {name!r} must be '<name>_mean' or '<name>_std' of a "
                       "[path, time] variable in simulator.cube.VARIABLES")
    _, unit, long_name = VARIABLES[base]
    what = "mean" if stat == "mean" else "standard deviation"
    return _variable(name, values, ("time",), sizes, unit, f"{long_name}, {what} over all paths")


_COORD_ATTRS = {
    "path": {"long_name": "simulated path"},
    "time": {"long_name": "simulated month, labelled by its first day",
             "comment": "flows (USD/month, BTC/month) are over the month; prices, balances "
                        "(cash, BTC held, debt), block height and hashrate are at its end"},
    "site": {"long_name": "site name"},
    "horizon": {"long_name": "forward horizon", "units": "months"},
    "control": {"long_name": "control variate of the fair value"},
    "sample": {"long_name": "path id of the stored [path, time] sample"},
}


def _coords(values: Mapping[str, np.ndarray]) -> dict[str, xr.Variable]:
    return {k: xr.Variable(k, v, attrs=dict(_COORD_ATTRS[k])) for k, v in values.items()}


def _clean_attrs(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in manifest.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, (datetime, date)):
            value = value.isoformat()
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, sort_keys=True, default=str)
        out[key] = value
    return out


def path_dim(cube: xr.Dataset, name: str) -> str:
    """``"sample"`` if ``name`` is stored for the path sample only, else ``"path"``."""
    return "sample" if "sample" in cube[name].dims else "path"


def manifest_of(cube: xr.Dataset) -> dict[str, Any]:
    """The run's attributes as a plain dict (standard manifest keys first)."""
    attrs = dict(cube.attrs)
    ordered = {k: attrs.pop(k) for k in _MANIFEST_KEYS if k in attrs}
    ordered.update(attrs)
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ordered.items()}


def save(cube: xr.Dataset, path: str | Path) -> Path:
    """Write ``cube`` to netCDF4 at ``path`` atomically and return ``path``.

    xarray's own ``to_netcdf`` through the ``h5netcdf`` engine, into a temporary file beside
    ``path`` that replaces it only once complete: a failed write leaves any previous file at
    ``path`` untouched.

    Notes
    -----
    Numeric variables are stored in chunks of whole rows of about 1 MB (a month's fan reads
    every chunk once, one path's series one chunk), behind the HDF5 shuffle filter (it groups
    the bytes of each value by significance, so exponents and high mantissa bytes compress)
    and zlib at level :data:`ZLIB_LEVEL`: shuffled float32 compresses about as well at 1 as
    at 4, several times faster.
    """
    with atomic_path(path) as tmp:
        write(cube, tmp)
    return Path(path)


def write(cube: xr.Dataset, path: str | Path) -> None:
    """Write ``cube`` to ``path`` in place, not atomically: for a caller that owns a temporary
    file and its rename (``minersim run`` renames results.nc and report.html together)."""
    cube.to_netcdf(path, engine="h5netcdf", encoding=_encoding(cube))


def _chunk_rows(var: xr.Variable) -> int:
    row_bytes = var.dtype.itemsize * int(np.prod(var.shape[1:], dtype=np.int64))
    return max(1, min(var.shape[0], _CHUNK_BYTES // max(row_bytes, 1)))


def _encoding(cube: xr.Dataset) -> dict[str, dict[str, Any]]:
    encoding = {}
    for name, var in cube.variables.items():
        if var.dtype.kind not in "biuf" or var.ndim == 0 or var.size == 0:
            continue
        encoding[name] = {"zlib": True, "complevel": ZLIB_LEVEL, "shuffle": True,
                          "chunksizes": (_chunk_rows(var), *var.shape[1:])}
    return encoding


def load(path: str | Path) -> xr.Dataset:
    """Read a saved cube fully into memory; the file is closed on return.

    Raises
    ------
    RunError
        If ``path`` is missing or is not a netCDF4/HDF5 file.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no such cube file")
    try:
        return xr.load_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: not a readable minersim cube (netCDF4): {exc}") from exc
