"""The price history a ``bootstrap`` BTC process resamples, read once per :func:`simulate` call.

A scenario whose BTC process is ``bootstrap`` names a CSV of ``date,close`` rows (relative
paths are anchored to the scenario file that states them, :mod:`simulator.scenario.extends`).
:func:`bootstrap_history` reads it once, on the machine that starts the run, into monthly log
returns that travel with the run's settings to every chunk (``parallel.RunSpec.history``): the
engine never opens a file, the CSV is parsed once rather than once per chunk, and workers of a
remote Dask cluster need no copy of it. Each ``simulate`` call reads it again, so the re-runs
of ``minersim run --drivers`` do too (tens of milliseconds each for years of daily rows). The
run's manifest records the file's SHA-256 (``history_sha256``). Every problem with the file is an
:class:`~simulator.errors.InputDataError` naming the file and line (exit status 2).
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputDataError


@dataclass(frozen=True)
class History:
    """A bootstrap history as a run uses it."""

    returns: np.ndarray
    """float64 monthly log returns (:func:`read_close_csv`)."""
    sha256: str
    """SHA-256 of the CSV's bytes, for the run's manifest: the scenario's own hash covers the
    file's path, not what it held."""


def bootstrap_history(scenario: Any) -> History | None:
    """The scenario's bootstrap history, or None when its BTC process is not ``bootstrap``.

    Raises
    ------
    InputDataError
        The CSV is unusable (:func:`read_close_csv`), or it never moves while the scenario
        asks to rescale it to a ``target_volatility``.
    """
    proc = scenario.market.btc.process
    if proc.kind != "bootstrap":
        return None
    returns = read_close_csv(proc.csv, allow_extreme_returns=proc.allow_extreme_returns)
    if proc.target_volatility is not None and np.ptp(returns) == 0:
        raise InputDataError(
            f"{proc.csv}: every monthly log return is {returns[0]:.4g}, so "
            f"there is no volatility to rescale to market.btc.process.target_volatility; give a "
            f"history whose returns vary, or drop target_volatility")
    return History(returns, file_sha256(proc.csv))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise InputDataError(f"{path}: cannot read file ({exc})") from None


MAX_ABS_RETURN = 2.0
"""Largest plausible monthly log return (a 7.4x rise or an 86 % fall in one month); beyond
it a close is taken for a typo unless the scenario sets ``allow_extreme_returns``."""

MAX_ABS_RETURN_ALLOWED = 5.0
"""Largest monthly log return even with ``allow_extreme_returns`` (a 148x move): beyond it a
close is a typo (a price of 1e300), and resampled over decades it would overflow the paths."""

MIN_MONTHS = 13
"""Fewest month-end closes: 12 monthly returns."""


def read_close_csv(path: str | Path, *, allow_extreme_returns: bool = False) -> np.ndarray:
    """Monthly log returns from a CSV of ``date,close`` (daily or monthly rows).

    Parameters
    ----------
    path : str or Path
        CSV with a header naming ``date`` (ISO ``YYYY-MM-DD`` or ``YYYY-MM``) and ``close``
        [USD/BTC]; other columns are ignored.
    allow_extreme_returns : bool
        Accept monthly log returns with ``|r| >`` :data:`MAX_ABS_RETURN` (up to
        :data:`MAX_ABS_RETURN_ALLOWED`).

    Returns
    -------
    numpy.ndarray
        float64 ``[M-1]`` log returns between consecutive month-end closes (the last row of
        each calendar month; a final partial month counts as its own close).

    Raises
    ------
    InputDataError
        Missing file, missing columns, no data rows, unparseable date or number, a close
        that is not a positive finite number, a calendar month with no rows, fewer than
        :data:`MIN_MONTHS` months, or a monthly log return beyond :data:`MAX_ABS_RETURN`
        (unless allowed; beyond :data:`MAX_ABS_RETURN_ALLOWED` always), each naming the CSV row.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines, dates, closes = _parse_rows(path, csv.reader(fh))
    except FileNotFoundError:
        raise InputDataError(
            f"{path}: file not found (expected a CSV with columns date,close)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: cannot read file ({exc})") from None
    if not closes.size:
        raise InputDataError(f"{path}: no data rows under the header; need at least {MIN_MONTHS} "
                             "monthly closes")
    order = np.argsort(dates, kind="stable")
    months = dates[order].astype("datetime64[M]")
    last = np.append(months[1:] != months[:-1], True)
    month_ends, month_closes, month_lines = months[last], closes[order][last], lines[order][last]
    month_days = dates[order][last]
    gap = np.flatnonzero(np.diff(month_ends.astype(np.int64)) != 1)
    if gap.size:
        k = gap[0]
        raise InputDataError(f"{path}:{month_lines[k + 1]}: no rows between {month_ends[k]} and "
                             f"{month_ends[k + 1]}; monthly closes must be consecutive")
    if month_closes.size < MIN_MONTHS:
        raise InputDataError(f"{path}: only {month_closes.size} month(s) of closes; need at least "
                             f"{MIN_MONTHS} (12 monthly returns)")
    logs = np.log(month_closes)
    returns = np.diff(logs)
    _check_extreme(path, returns, logs, month_days, month_closes, month_lines, allow_extreme_returns)
    return returns


def _check_extreme(path: Path, returns: np.ndarray, logs: np.ndarray, month_days: np.ndarray,
                   month_closes: np.ndarray, month_lines: np.ndarray, allowed: bool) -> None:
    """Refuse the first monthly return beyond :data:`MAX_ABS_RETURN` (or, when ``allowed``,
    :data:`MAX_ABS_RETURN_ALLOWED`), naming the row to blame.

    Of the two closes that make the return, the one further (in log) from the median close
    is blamed, so a single mistyped close is named whether it spikes up, drops, or opens
    the file.
    """
    limit = MAX_ABS_RETURN_ALLOWED if allowed else MAX_ABS_RETURN
    bad = np.flatnonzero(np.abs(returns) > limit)
    if not bad.size:
        return
    k = int(bad[0])
    centre = np.median(logs)
    row = k if abs(logs[k] - centre) > abs(logs[k + 1] - centre) else k + 1
    close, day = month_closes[row], month_days[row]
    why = (f"|r| > {limit:g} is refused even with market.btc.process.allow_extreme_returns; "
           "fix the row" if allowed else f"|r| > {limit:g} is implausible; fix the row or set "
           "market.btc.process.allow_extreme_returns: true")
    raise InputDataError(f"{path}:{month_lines[row]}: close {close:g} on {day} gives a monthly "
                         f"log return of {returns[k]:+.1f} ({why})")


def _parse_rows(path: Path, reader, column: str = "close"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    header = next(reader, None)
    names = [h.strip().lower() for h in header] if header else []
    missing = [c for c in ("date", column) if c not in names]
    if missing:
        raise InputDataError(f"{path}:1: missing column(s) {', '.join(missing)} "
                             f"(got header {','.join(header or [])!r}; expected 'date,{column}')")
    di, ci = names.index("date"), names.index(column)
    lines, dates, closes = [], [], []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(di, ci):
            raise InputDataError(f"{path}:{line}: expected {len(names)} columns (got {len(row)})")
        text = row[di].strip()
        try:
            date = np.datetime64(text, "D")
        except ValueError:
            date = np.datetime64("NaT")
        if np.isnat(date):
            raise InputDataError(
                f"{path}:{line}: date: cannot parse {text!r} (expected YYYY-MM-DD)")
        cell = row[ci].strip()
        try:
            close = float(cell)
        except ValueError:
            raise InputDataError(f"{path}:{line}: {column}: not a number (got {cell!r})") from None
        if not (math.isfinite(close) and close > 0):
            raise InputDataError(f"{path}:{line}: {column} on {date}: must be a positive, finite "
                                 f"number (got {cell})")
        lines.append(line)
        dates.append(date)
        closes.append(close)
    return (np.asarray(lines, dtype=np.int64), np.asarray(dates, dtype="datetime64[D]"),
            np.asarray(closes, dtype=np.float64))


# ---------------------------------------------------------------- series for calibration

@dataclass(frozen=True)
class MonthlySeries:
    """One value per calendar month from a ``date,<column>`` CSV, as ``minersim calibrate`` reads it."""

    path: Path
    column: str
    dates: np.ndarray
    """datetime64[D] ``[M]``: the last date of each month in the file (a month-end close's date)."""
    values: np.ndarray
    """float64 ``[M]``: the month's last value (``how="last"``) or the mean of its rows."""
    lines: np.ndarray
    """int64 ``[M]``: CSV line of each month's last row, for messages."""
    sha256: str
    """SHA-256 of the file's bytes."""

    def window(self, since: Any = None, until: Any = None, *, min_steps: int = 24,
               what: str = "monthly log returns") -> MonthlySeries:
        """The months dated from ``since`` to ``until`` (inclusive; ``datetime.date`` or None).

        Raises
        ------
        InputDataError
            Fewer than ``min_steps`` month-to-month changes remain, citing the window's first row.
        """
        keep = np.ones(self.dates.size, dtype=bool)
        if since is not None:
            keep &= self.dates >= np.datetime64(since, "D")
        if until is not None:
            keep &= self.dates <= np.datetime64(until, "D")
        span = f"{self.dates[0]} to {self.dates[-1]}"
        if not keep.any():
            raise InputDataError(f"{self.path}: no rows from {since or 'the start'} to "
                                 f"{until or 'the end'} (the file covers {span})")
        steps = int(keep.sum()) - 1
        if steps < min_steps:
            first = int(np.flatnonzero(keep)[0])
            raise InputDataError(
                f"{self.path}:{self.lines[first]}: only {steps} {what} from {self.dates[keep][0]} "
                f"to {self.dates[keep][-1]} (need at least {min_steps}; the file covers {span})")
        return MonthlySeries(self.path, self.column, self.dates[keep], self.values[keep],
                             self.lines[keep], self.sha256)


def read_monthly_series(path: str | Path, column: str, *, how: str = "last") -> MonthlySeries:
    """One value per calendar month from a CSV of ``date,<column>`` rows, strictly in date order.

    Parameters
    ----------
    path : str or Path
        CSV whose header names ``date`` (``YYYY-MM-DD``) and ``column``; other columns are
        ignored. Rows may be month-ends or more frequent (daily), but dates must increase.
    column : str
        The value column (``close`` [USD/BTC], ``fees_btc_per_block`` [BTC],
        ``hashrate_ehs`` [EH/s]); every value must be a positive finite number.
    how : {"last", "mean"}
        A month's value: its last row (a month-end close) or the mean of its rows (fees and
        hashrate are flows and noisy estimates; their monthly mean is the month's level).

    Raises
    ------
    InputDataError
        Missing file or column, an unparseable date or number, a value that is not positive
        and finite, a date that repeats or comes before the row above it, a calendar month with
        no rows, or a month-to-month log change beyond :data:`MAX_ABS_RETURN_ALLOWED` (a typo),
        each naming the CSV line.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines, dates, values = _parse_rows(path, csv.reader(fh), column)
    except FileNotFoundError:
        raise InputDataError(
            f"{path}: file not found (expected a CSV with columns date,{column})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: cannot read file ({exc})") from None
    if not values.size:
        raise InputDataError(f"{path}: no data rows under the header (expected date,{column} rows)")
    back = np.flatnonzero(dates[1:] <= dates[:-1])
    if back.size:
        k = int(back[0]) + 1
        problem = "repeats the date" if dates[k] == dates[k - 1] else "comes before the date"
        raise InputDataError(f"{path}:{lines[k]}: date {dates[k]} {problem} {dates[k - 1]} on line "
                             f"{lines[k - 1]} (dates must increase, one row per date)")
    months = dates.astype("datetime64[M]")
    last = np.append(months[1:] != months[:-1], True)
    if how == "mean":
        group = np.cumsum(np.append(True, last[:-1])) - 1  # a new month starts after each last row
        month_values = np.bincount(group, weights=values) / np.bincount(group)
    elif how == "last":
        month_values = values[last]
    else:
        raise ValueError(f"how must be 'last' or 'mean' (got {how!r})")
    month_lines, month_dates = lines[last], dates[last]
    gap = np.flatnonzero(np.diff(months[last].astype(np.int64)) != 1)
    if gap.size:
        k = int(gap[0])
        raise InputDataError(f"{path}:{month_lines[k + 1]}: no rows between {month_dates[k]} and "
                             f"{month_dates[k + 1]} (monthly rows must be consecutive)")
    change = np.abs(np.diff(np.log(month_values)))
    wild = np.flatnonzero(change > MAX_ABS_RETURN_ALLOWED)
    if wild.size:
        k = int(wild[0]) + 1
        raise InputDataError(f"{path}:{month_lines[k]}: {column} {month_values[k]:g} on "
                             f"{month_dates[k]} is {change[k - 1]:.1f} in log from the month before "
                             f"(at most {MAX_ABS_RETURN_ALLOWED:g}: a typo?)")
    return MonthlySeries(path, column, month_dates, month_values, month_lines, file_sha256(path))
