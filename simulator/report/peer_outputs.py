"""``minersim run <universe>.yaml`` as a function: simulate the peer group, write it all or nothing.

A peer run directory (default ``runs/<universe stem>/``) holds one complete single-run
directory per company (``<ticker>/results.nc`` and ``<ticker>/report.html``, so
``minersim export runs/peers/clsk`` works as for any run), the peer memo ``peers.html`` and
the machine-readable summary ``peers.json``.

Everything is written into a staging directory beside the target first. Only when every file
is complete does it take their place: the staging directory is renamed to the target if
there was none (one atomic rename), or each file is renamed over its old self (a rename
each, the same filesystem, no copying); other files in the target are left alone. A failed
or interrupted run removes its staging directory, and a run killed outright leaves one that
the next run in the same place removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator._files import (
    _alive,
    check_output_dir,
    run_dir,
    signals_held,
    sync,
    writing,
)
from simulator.errors import RunError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PeerRunResult:
    cubes: dict[str, Any]
    summary: dict[str, Any]
    out_dir: Path
    summary_path: Path
    report_path: Path | None
    company_dirs: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each phase [s]: ``simulate``, ``analysis`` (breakevens and company reports,
    side by side in the pool), ``write`` (peers.html, every file, the renames)."""

    def summary_lines(self, elapsed: float) -> list[str]:
        """The short table ``minersim run`` prints for a peer group."""
        man = self.summary["manifest"]
        lines = [(f"{man.get('universe_name', 'peers')}: {len(self.cubes)} companies, "
                 f"{int(man['paths']):,} shared paths, seed {man['seed']}, {man.get('sampling', '')} "
                 f"sampling, {elapsed:.1f} s"),
                 (f"  {'':<6} {'fair value (SE)':>17} {'price':>8} {'upside (SE)':>13} "
                 f"{'12m P50':>9} {'P(up)':>6} {'breakeven BTC':>14}"),
                 (f"  {'':<6} {'pricing':>17} {'market':>8} {'pricing':>13} {'real-world':>9} "
                 f"{'r-w':>6} {'pricing':>14}")]
        for r in self.summary["companies"]:
            f = r["forecast"]
            be = r.get("breakeven") or {}
            spot = ("" if not be else f"${be['value']:,.0f}" if be.get("status") == "found"
                    else "none")
            lines.append(f"  {r['ticker']:<6} {'$' + format(r['fair_value'], ',.2f'):>9} "
                         f"({r['fair_value_se']:.2f}) {'$' + format(r['share_price'], ',.2f'):>8} "
                         f"{r['upside']:>+6.0%} ({r['upside_se']:.1%}) "
                         f"{'$' + format(f['value']['p50'], ',.2f'):>9} "
                         f"{f['return']['prob_up']:>6.0%} {spot:>14}")
        ranked = self.summary["correlation"]["ranked"]
        if len(ranked) > 1:
            hi, lo = ranked[0], ranked[-1]
            lines.append(f"  12-month returns (real-world): most correlated {hi['a']}/{hi['b']} "
                         f"{hi['correlation']:.2f}, least {lo['a']}/{lo['b']} {lo['correlation']:.2f}")
        for p in self.summary["pairs"]:
            if "requested" in p["why"]:
                lines.append(f"  long {p['a']} / short {p['b']}, 12 months (real-world): mean "
                             f"{p['mean']:+.1%} (SE {p['mean_se']:.1%}), median "
                             f"{p['percentiles']['0.5']['value']:+.1%}, P(> 0) {p['prob_positive']:.1%}")
        if self.seconds:
            lines.append("  time: " + ", ".join(f"{k} {v:,.1f} s" for k, v in self.seconds.items()))
        lines.append(f"  companies: {self.out_dir}/<ticker>/results.nc"
                     + (" and report.html" if self.report_path is not None else ""))
        if self.report_path is not None:
            lines.append(f"  report:    {self.report_path}")
        lines.append(f"  summary:   {self.summary_path}")
        return lines


def company_dir(out_dir: Path, ticker: str) -> Path:
    """A company's run directory inside a peer run: ``<out>/<ticker in lower case>``."""
    return out_dir / ticker.lower()


def run_peers(universe: str | os.PathLike[str], *, paths: int | None = None, seed: int | None = None,
              sampling: str | None = None, out: str | os.PathLike[str] | None = None,
              chunk_paths: int | None = None, store_paths: int | None = None, report: bool = True,
              client: Any = None, workers: int | None = None, scheduler: str | None = None,
              scheduler_timeout: float = 10.0, processes: int | None = None,
              progress: Progress | None = None, pairs: Sequence[str] = (), breakevens: bool = True,
              breakeven_paths: int = 1_024, overwrite: bool = False,
              started: float | None = None) -> PeerRunResult:
    """Simulate every company of ``universe`` on shared paths and write the peer run directory.

    Parameters
    ----------
    universe : str or path
        A universe file (``scenarios/peers.yaml``) or its shipped name.
    pairs : sequence of str
        Pair trades ``"A/B"`` (long A, short B) to add to the most and least correlated pairs.
    breakevens, breakeven_paths : optional
        Find each company's breakeven BTC spot on ``breakeven_paths`` paths per re-run
        (:func:`simulator.analysis.peer_breakeven.breakeven_spot`; about 6 to 10 re-runs and
        one mark fit per company).
    report : bool
        Draw ``peers.html`` and each company's ``report.html``; without it, only
        ``results.nc`` per company and ``peers.json``.
    overwrite : bool
        Replace a peer run of another universe file (or a company run of another company file).

    Other parameters are those of :func:`simulator.report.outputs.run_scenario`.

    Raises
    ------
    RunError
        Before simulating: a bad ``--pair``, an output directory that cannot be written, one
        holding another run (without ``overwrite``). Later: anything the run raises.
    """
    from simulator.analysis import peer_breakeven, peers
    from simulator.report.outputs import _check_same_scenario, _terminate_as_exit
    from simulator.run import simulate_peers
    from simulator.run.execute import dask_client, local_executor, pool_processes
    from simulator.scenario.loader import find_scenario
    from simulator.scenario.universe import load_universe

    started = time.perf_counter() if started is None else started
    file = find_scenario(universe)
    loaded = load_universe(file)
    tickers = [c.scenario.company.ticker for c in loaded]
    chosen = peers.parse_pairs(pairs, tickers)
    out_dir = check_output_dir(run_dir(file, out))
    dirs = {t: company_dir(out_dir, t) for t in tickers}
    if not overwrite:
        _check_same_universe(out_dir, file)
        for t, c in zip(tickers, loaded, strict=True):
            _check_same_scenario(dirs[t] / "results.nc", c.path)
    remove_stale_staging(out_dir)
    seconds: dict[str, float] = {}
    planned = paths or loaded[0].scenario.simulation.paths
    with _terminate_as_exit(), contextlib.ExitStack() as running:
        pool = None
        if client is None and workers is None and scheduler is None:
            processes = pool_processes(planned * len(loaded)) if processes is None else processes
            pool = running.enter_context(local_executor(processes))
        elif client is None:
            client = running.enter_context(dask_client(workers=workers, scheduler=scheduler,
                                                       timeout=scheduler_timeout))
        extra = (len(loaded) if breakevens else 0) + (len(loaded) if report else 0)
        main, rest = _phases(progress, extra)
        t0 = time.perf_counter()
        cubes = simulate_peers(file, paths, seed, sampling, chunk_paths=chunk_paths,
                               store_paths=store_paths, client=client, processes=processes,
                               executor=pool, progress=main)
        seconds["simulate"] = time.perf_counter() - t0
        for c in loaded:
            _attach(cubes[c.scenario.company.ticker], c)
        executor = pool if pool is not None else client.get_executor(pure=False)
        run_seed = int(next(iter(cubes.values())).attrs["seed"])
        run_sampling = next(iter(cubes.values())).attrs.get("sampling")
        t0 = time.perf_counter()
        found = ({c.scenario.company.ticker: executor.submit(
            peer_breakeven.breakeven_spot, c.scenario, paths=breakeven_paths, seed=run_seed,
            sampling=run_sampling) for c in loaded} if breakevens else {})
        drawn = ({t: executor.submit(_company_report, cube, time.perf_counter() - started)
                  for t, cube in cubes.items()} if report else {})
        done = 0
        results = {}
        for t, future in found.items():
            results[t] = future.result()
            done += 1
            rest(done)
        html = {}
        for t, future in drawn.items():
            html[t] = future.result()
            done += 1
            rest(done)
        seconds["analysis"] = time.perf_counter() - t0
        summary = peers.peer_summary(cubes, chosen, results if breakevens else None)
        summary["manifest"].update(universe_file=str(file.resolve()),
                                   breakeven_paths=breakeven_paths if breakevens else None,
                                   seconds={k: round(v, 3) for k, v in seconds.items()})
        t0 = time.perf_counter()
        with staging(out_dir) as stage:
            written = _write_all(stage, out_dir, cubes, summary, html, report,
                                 time.perf_counter() - started)
        seconds["write"] = time.perf_counter() - t0
    return PeerRunResult(cubes, summary, out_dir, written["summary"], written.get("report"), dirs,
                         seconds)


def _attach(cube: Any, loaded: Any) -> None:
    """What ``minersim run`` adds to a company's cube: assumptions, memo text, scenario file."""
    from simulator.report.outputs import assumptions_json, memo_attrs

    cube.attrs["assumptions_json"] = assumptions_json(loaded)
    cube.attrs.update(memo_attrs(loaded, cube.attrs["assumptions_json"]))
    cube.attrs["scenario_file"] = str(Path(loaded.path).resolve())


def _company_report(cube: Any, wall_seconds: float) -> str:
    """One company's report.html (run in a pool worker)."""
    from simulator.report.run_report import render_report

    cube.attrs["wall_seconds"] = round(wall_seconds, 3)
    return render_report(cube)


def _write_all(stage: Path, out_dir: Path, cubes: dict[str, Any], summary: dict[str, Any],
               html: dict[str, str], report: bool, wall: float) -> dict[str, Path]:
    """Write every output into ``stage`` (laid out as ``out_dir``); the final paths."""
    from simulator.cube import write
    from simulator.report.peer_export import SUMMARY_FILE, summary_json
    from simulator.report.peer_report import render_peers

    out: dict[str, Path] = {}
    for t, cube in cubes.items():
        target = company_dir(stage, t)
        target.mkdir()
        if report:
            cube.attrs["wall_seconds"] = round(wall, 3)
        with writing(company_dir(out_dir, t) / "results.nc"):
            write(cube, target / "results.nc")
        if report:
            _text(target / "report.html", html[t], company_dir(out_dir, t) / "report.html")
    text = summary_json(summary)
    _text(stage / SUMMARY_FILE, text, out_dir / SUMMARY_FILE)
    out["summary"] = out_dir / SUMMARY_FILE
    if report:
        page = render_peers(json.loads(text), cubes, wall_seconds=wall)
        _text(stage / "peers.html", page, out_dir / "peers.html")
        out["report"] = out_dir / "peers.html"
    return out


def _text(path: Path, text: str, shown: Path) -> None:
    with writing(shown):
        path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# all or nothing

_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.staging$")


def _staging_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.{os.getpid()}.staging"


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh directory beside ``out_dir`` to write into; on success its files replace
    ``out_dir``'s (see the module docstring), on any exception it is removed.

    Raises
    ------
    RunError
        If the staging directory cannot be created, or a file cannot be synced or moved.
    """
    stage = _staging_path(out_dir)
    created = []
    try:
        with signals_held():  # created and its removal armed in one step
            for parent in reversed([out_dir.parent, *out_dir.parent.parents]):
                if not parent.exists():
                    created.append(parent)
            try:
                stage.mkdir(parents=True)
            except OSError as exc:
                raise RunError(f"{stage.parent}: cannot write there ({exc.strerror})") from None
        yield stage
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        for f in files:
            with writing(out_dir / f.relative_to(stage)):
                sync(f)
        _publish(stage, out_dir, files)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if still empty
        raise


def _publish(stage: Path, out_dir: Path, files: list[Path]) -> None:
    """Move the staged files into ``out_dir``: one rename if it does not exist yet."""
    if not out_dir.exists():
        try:
            os.rename(stage, out_dir)
            return
        except OSError:
            pass  # created meanwhile: fall back to file by file
    for f in files:
        target = out_dir / f.relative_to(stage)
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise OSError(21, "is a directory")
            os.replace(f, target)
    shutil.rmtree(stage, ignore_errors=True)


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove staging directories beside ``out_dir`` left by runs whose process is gone."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in out_dir.parent.iterdir():
            m = _STAGING.match(entry.name)
            if m and m["name"] == out_dir.name and entry.is_dir() and not _alive(int(m["pid"])):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _check_same_universe(out_dir: Path, file: Path) -> None:
    """Refuse to replace a peer run of another universe file (``--overwrite`` allows it)."""
    from simulator.report.peer_export import SUMMARY_FILE

    path = out_dir / SUMMARY_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))["manifest"].get("universe_file")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # not ours: replaced as any stale file
    here = str(file.resolve())
    if previous and previous != here:
        raise RunError(f"{out_dir}: holds a peer run of {previous}, not of {here}; give another "
                       "--out, or --overwrite to replace it")


def _phases(progress: Progress | None, extra: int) -> tuple[Progress | None, Callable[[int], None]]:
    """Split one progress bar between the chunks of the simulation and ``extra`` later steps."""
    if progress is None:
        return None, lambda done: None
    main_total = [0]

    def main(done: int, total: int) -> None:
        main_total[0] = total
        progress(done, total + extra)

    def rest(done: int) -> None:
        progress(main_total[0] + done, main_total[0] + extra)

    return main, rest
