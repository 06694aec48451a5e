"""``minersim run`` as a function: load, check where outputs go, simulate, write them together.

Both outputs are prepared in temporary files beside their targets and renamed only when the
whole run has succeeded, so a failed or interrupted run leaves the previous outputs as they
were and no partial files; a run killed outright leaves temporary files that the next run in
the same directory removes. Where the outputs go is checked before anything is simulated.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator._files import (atomic_path, check_output_dir, check_output_file,
                              remove_stale_temporaries, run_dir, writing)
from simulator.errors import RunError

if TYPE_CHECKING:
    from simulator.run.execute import Progress


@dataclass(frozen=True)
class RunResult:
    cube: Any
    out_dir: Path
    results_path: Path
    report_path: Path | None
    analysis: dict[str, Any] = field(default_factory=dict)
    """``drivers`` (tornado) and ``breakevens`` of a ``--drivers`` run; empty otherwise."""

    def summary_lines(self, elapsed: float) -> list[str]:
        """The short table ``minersim run`` prints."""
        from simulator.analysis.stats import summary

        cube = self.cube
        price = float(cube.attrs["share_price"])
        s = summary(cube["value_per_share"].values, threshold=price)
        fair, fair_se = float(cube.attrs["fair_value_per_share"]), float(cube.attrs["fair_value_se"])
        lines = [
            f"{cube.attrs['scenario_name']}: {int(cube.attrs['paths']):,} paths, seed {cube.attrs['seed']}, "
            f"{cube.attrs['sampling']} sampling, {elapsed:.1f} s",
            f"  fair value per share      ${fair:8.2f}  (SE {fair_se:.2f}; pricing measure)",
            f"  market price              ${price:8.2f}  ({fair / price - 1:+.0%})",
        ]
        if "forward_value_per_share" in cube and 12 in cube["horizon"].values:
            f12 = summary(cube["forward_value_per_share"].sel(horizon=12).values, threshold=price)
            p5, p95, up = f12["percentiles"][0.05], f12["percentiles"][0.95], f12["prob_above"]
            lines += [
                f"  in 12 months, median      ${f12['median']:8.2f}  (SE {f12['median_se']:.2f}; real-world measure)",
                f"  in 12 months, P5 to P95   ${p5['value']:8.2f} to ${p95['value']:.2f}",
                f"  P(12-month mark > ${price:.2f}) {up['p']:6.1%}  (SE {up['se']:.1%})",
            ]
        if "precision_target_usd" in cube.attrs:
            target, se = float(cube.attrs["precision_target_usd"]), float(cube.attrs["precision_se_usd"])
            if int(cube.attrs["precision_reached"]):
                lines.append(f"  precision                 SE of mean ${se:.4f} < target ${target:.4f}"
                             f" after {int(cube.attrs['paths']):,} paths")
            else:
                lines.append(f"  precision                 target ${target:.4f} NOT reached: path cap "
                             f"{int(cube.attrs['max_paths']):,} hit with SE ${se:.4f}")
        if s.get("n_failed"):
            lines.append(f"  failed paths              {s['n_failed']:,} (cash ran out with equity raises off)")
        if self.analysis:
            from simulator.report.drivers import analysis_lines

            lines += analysis_lines(self.analysis["drivers"], self.analysis["breakevens"])
        lines.append(f"  results: {self.results_path}")
        if self.report_path is not None:
            lines.append(f"  report:  {self.report_path}")
        return lines


def run_scenario(scenario: str | os.PathLike[str], *, paths: int | None = None, seed: int | None = None,
                 sampling: str | None = None, out: str | os.PathLike[str] | None = None,
                 chunk_paths: int | None = None, store_paths: int | None = None, report: bool = True,
                 client: Any = None, workers: int | None = None, scheduler: str | None = None,
                 scheduler_timeout: float = 10.0, precision: float | None = None,
                 max_paths: int | None = None, progress: Progress | None = None,
                 drivers: bool = False, drivers_paths: int = 1024, processes: int | None = None,
                 overwrite: bool = False, started: float | None = None) -> RunResult:
    """Simulate ``scenario`` and write ``results.nc`` (and ``report.html``) into the run directory.

    Parameters
    ----------
    client : dask.distributed.Client, optional
        Run chunks on this cluster.
    workers : int, optional
        Start a LocalCluster of this many single-threaded worker processes for the run.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); unreachable within
        ``scheduler_timeout`` [s] raises :class:`RunError`.
    precision, max_paths : optional
        Adaptive run: stop once the standard error of the mean value per share is below
        ``precision`` [USD/share], or at ``max_paths`` (default 1,000,000).
    drivers, drivers_paths : optional
        Also run the tornado and both breakevens (about 60 re-runs of ``drivers_paths`` paths
        each, same seed) and put them in the report and ``RunResult.analysis``.
    overwrite : bool
        Replace a run directory that holds a run of another scenario file. Without it that
        is refused before anything is simulated.
    started : float, optional
        ``time.perf_counter()`` when the command started (the CLI's), so the report's wall
        time is the command's up to drawing it; this call's start when omitted.

    Other parameters are those of :func:`simulator.run.simulate`. Results do not depend
    on ``chunk_paths`` or on where the chunks run.
    """
    from simulator.run import DEFAULT_MAX_PATHS, simulate
    from simulator.run.execute import dask_client, local_executor, pool_processes
    from simulator.scenario import load

    started = time.perf_counter() if started is None else started
    loaded = load(scenario)
    out_dir = check_output_dir(run_dir(loaded.path, out))
    results_path = out_dir / "results.nc"
    report_path = out_dir / "report.html" if report else None
    for target in (results_path, report_path):
        if target is not None:
            check_output_file(target)
    if not overwrite:
        _check_same_scenario(results_path, loaded.path)
    remove_stale_temporaries(out_dir)
    max_paths = DEFAULT_MAX_PATHS if max_paths is None else max_paths
    with _terminate_as_exit(), contextlib.ExitStack() as stack:
        # The report's drawer starts now, so it imports matplotlib while the run simulates.
        drawer = None
        if report:
            drawer = stack.enter_context(_ThreadDrawer() if processes == 1 else _ProcessDrawer())
        main_progress, analysis_progress = _phases(progress, loaded.scenario if drivers else None)
        analysis: dict[str, Any] = {}
        with contextlib.ExitStack() as running:
            pool, pooled = None, None
            if client is None and workers is None and scheduler is None:
                # The pool starts now, so its workers import the engine while this process does.
                planned = max_paths if precision is not None else (paths or loaded.scenario.simulation.paths)
                pooled = pool_processes(planned) if processes is None else processes
                pool = running.enter_context(local_executor(pooled))
            elif client is None:
                client = running.enter_context(dask_client(workers=workers, scheduler=scheduler,
                                                           timeout=scheduler_timeout))
            cube = simulate(loaded.scenario, paths, seed, sampling, chunk_paths=chunk_paths,
                            store_paths=store_paths, client=client, progress=main_progress,
                            precision=precision, processes=pooled, executor=pool, max_paths=max_paths,
                            scenario_yaml=loaded.yaml_text, scenario_sha256=loaded.sha256)
            if drivers:
                from simulator.report.drivers import analyse

                analysis["drivers"], analysis["breakevens"] = analyse(
                    cube, drivers_paths, scenario=loaded.scenario, client=client,
                    progress=analysis_progress)
                from simulator.analysis.options import every_option

                # The report reads the option values from the cube, as a re-drawn report would.
                cube.attrs["options_json"] = json.dumps(every_option(
                    loaded.scenario, paths=drivers_paths, seed=int(cube.attrs["seed"]),
                    sampling=cube.attrs.get("sampling"), client=client))
        cube.attrs["assumptions_json"] = assumptions_json(loaded)
        cube.attrs.update(memo_attrs(loaded, cube.attrs["assumptions_json"]))
        cube.attrs["scenario_file"] = str(Path(loaded.path).resolve())
        _write_outputs(cube, results_path, report_path, analysis, started, drawer)
    return RunResult(cube, out_dir, results_path, report_path, analysis)


def _check_same_scenario(results_path: Path, scenario_path: str | os.PathLike[str]) -> None:
    """Refuse to replace a saved run of a different scenario file (``--overwrite`` allows it)."""
    if not results_path.is_file():
        return
    import h5py  # the one attribute, without xarray: a run that is refused costs nothing

    try:
        with h5py.File(results_path, "r") as f:
            previous = f.attrs.get("scenario_file")
    except OSError:
        return  # not a cube: the atomic rename replaces it as any stale file
    if isinstance(previous, bytes):
        previous = previous.decode("utf-8", "replace")
    here = str(Path(scenario_path).resolve())
    if previous and previous != here:
        raise RunError(f"{results_path.parent}: holds a run of {previous}, not of {here}; give another "
                       "--out, or --overwrite to replace it")


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so temporary files are cleaned up on the way out."""
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_outputs(cube: Any, results_path: Path, report_path: Path | None,
                   analysis: dict[str, Any], started: float, drawer: Any) -> None:
    """Write results.nc and report.html into temporary files; rename both once both exist.

    The report is drawn by ``drawer`` (another process, or a thread of this one) while this
    thread writes results.nc. Only this thread touches files, so an interrupt stops the run
    here at once, and the drawer, which holds nothing but memory, is stopped on the way out.
    """
    from simulator.cube import write

    with atomic_path(results_path) as tmp_results, \
            (atomic_path(report_path) if report_path else contextlib.nullcontext()) as tmp_report:
        if tmp_report is not None:
            cube.attrs["wall_seconds"] = round(time.perf_counter() - started, 3)
            drawer.submit(cube, analysis)
        with writing(results_path):
            write(cube, tmp_results)
        if tmp_report is not None:
            html = drawer.result()
            with writing(report_path):  # each write names its own file if the disk fails it
                tmp_report.write_text(html, encoding="utf-8")


REPORT_MODULES = ("matplotlib", "jinja2", "simulator.report.run_report")
"""What drawing the report imports: the drawing process imports it while the run simulates."""


class _ThreadDrawer(contextlib.AbstractContextManager):
    """Draws the report in a daemon thread of this process (``--processes 1``).

    A daemon thread, so that an interrupted run need not wait for it: it holds nothing but
    memory. Drawing is mostly Python, so it shares the core with the write (HDF5 compresses
    in C and lets it run now and then).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._value: Any = None
        self._error: BaseException | None = None

    def submit(self, cube: Any, analysis: dict[str, Any]) -> None:
        def target() -> None:
            from simulator.report.run_report import render_report

            try:
                self._value = render_report(cube, **analysis)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=target, name="minersim-report", daemon=True)
        self._thread.start()

    def result(self) -> str:
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def __exit__(self, *exc: Any) -> None:
        """Nothing to stop: a daemon thread ends with the process."""


class _ProcessDrawer(contextlib.AbstractContextManager):
    """Draws the report in a process of its own, started before the run simulates.

    The process comes from :func:`simulator.run.execute.local_context` (a forkserver that
    imports :data:`REPORT_MODULES`), imports what drawing needs while the run simulates, then
    waits for the cube on a pipe and sends back the HTML. Starting it blocks until the
    forkserver has imported, so a thread starts it. On the way out it is terminated if still
    running: it holds nothing but memory.
    """

    def __init__(self) -> None:
        from simulator.run.execute import local_context

        context = local_context(REPORT_MODULES)
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_draw_in_child, args=(child,), name="minersim-report",
                                        daemon=True)
        self._starter = threading.Thread(target=self._process.start, name="minersim-report-start",
                                         daemon=True)
        self._starter.start()
        self._child = child
        self._sender: threading.Thread | None = None

    def submit(self, cube: Any, analysis: dict[str, Any]) -> None:
        """Hand the cube over from a thread: the pipe takes it as fast as the child reads,
        and this thread has results.nc to write meanwhile."""
        def send() -> None:
            self._starter.join()
            self._child.close()  # the child holds its own end now
            try:
                self._conn.send((cube, analysis))
            except OSError as exc:  # the child is gone: result() says so
                self._send_error = exc

        self._send_error: OSError | None = None
        self._sender = threading.Thread(target=send, name="minersim-report-send", daemon=True)
        self._sender.start()

    def result(self) -> str:
        self._sender.join()
        try:
            if self._send_error is not None:
                raise EOFError
            status, value = self._conn.recv()
        except (EOFError, OSError):
            code = self._process.exitcode
            raise RunError(f"report: the drawing process died (exit status {code}); rerun with "
                           "--processes 1 to draw it in this process") from None
        if status != "ok":
            raise RunError(value)
        return value

    def __exit__(self, *exc: Any) -> None:
        if self._starter.is_alive():
            return  # not started yet: it will find the pipe closed and exit
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)
        if self._sender is not None:
            # A send still in flight fails once the child is gone (caught in send); closing
            # the pipe under it instead would fail inside the write.
            self._sender.join(timeout=5)
        self._conn.close()


def _draw_in_child(conn: Any) -> None:
    """The drawing process: import, wait for (cube, analysis), send back ("ok", html) or ("error", message)."""
    import signal as signal_

    from simulator.errors import MinersimError

    signal_.signal(signal_.SIGINT, signal_.SIG_IGN)  # Ctrl-C is the run's own process's to handle
    from simulator.report.run_report import render_report

    try:
        cube, analysis = conn.recv()
    except (EOFError, OSError):
        return  # the run ended before it needed a report
    try:
        conn.send(("ok", render_report(cube, **analysis)))
    except MinersimError as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported by the run's own process
        conn.send(("error", f"report: {type(exc).__name__}: {exc}"))


def _phases(progress: Progress | None, scenario: Any) -> tuple[Progress | None, Progress | None]:
    """Split one progress bar between the main run's chunks and the ``--drivers`` re-runs.

    Without a scenario (no ``--drivers``) the main run reports straight through.
    """
    if progress is None or scenario is None:
        return progress, None
    from simulator.report.drivers import analysis_steps

    extra, main_total = analysis_steps(scenario), [0]

    def main(done: int, total: int) -> None:
        main_total[0] = total
        progress(done, total + extra)

    def rest(done: int, total: int) -> None:
        progress(main_total[0] + done, main_total[0] + total)

    return main, rest


def memo_attrs(loaded: Any, assumptions: str) -> dict[str, str]:
    """The report's words that come from the scenario, as cube attributes: the method, its
    limits and the fact-sheet rows cited (``memo_json``), the scenario as YAML with its
    comments (``scenario_yaml_commented``)."""
    from simulator.report.memo import limitations, methodology, sources
    from simulator.scenario.commented import commented_yaml

    chain = list(dict.fromkeys(file for file, _ in loaded.lines.values())) or [str(loaded.path)]
    header = ("The scenario this run used, its extends: chain merged; comments from "
              + ", ".join(Path(f).name for f in chain) + ".")
    memo = {"methodology": methodology(loaded.scenario), "limitations": limitations(loaded.scenario),
            "sources": sources(json.loads(assumptions))}
    return {"memo_json": json.dumps(memo),
            "scenario_yaml_commented": commented_yaml(loaded.resolved, loaded.lines, header=header)}


def assumptions_json(loaded: Any) -> str:
    """Every input with its distribution in words, its source, whether it is an assumption and
    its provenance status (``sourced``, ``assumption``, ``unresolved``, ``look-ahead``,
    ``stale``: :func:`simulator.scenario.provenance.provenance`; empty for a bare number)."""
    from simulator.scenario.distributions import _Dist

    from simulator.scenario.provenance import provenance

    status = {tuple(r.at): r.status for r in provenance(loaded.scenario)}
    rows = []
    for key, value in _leaves(loaded.scenario, ()):
        if isinstance(value, _Dist):
            described = value.describe()
            source = value.source
            flagged = value.assumption
        else:
            described, source, flagged = _plain(value), None, False
        comment = loaded.comment(key)
        if comment:
            flagged = flagged or "assumption" in comment.lower()
            source = f"{source}; {comment}" if source else comment
        rows.append({"key": _dotted(loaded.scenario, key), "description": described, "source": source or "",
                     "assumption": bool(flagged), "uncertain": isinstance(value, _Dist) and not value.is_fixed,
                     "status": status.get(tuple(key), "")})
    return json.dumps(rows)


def _leaves(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    from pydantic import BaseModel

    from simulator.scenario.distributions import _Dist

    if path[:1] == ("simulation",):
        return  # run settings, shown in the manifest instead
    if isinstance(value, _Dist) or not isinstance(value, (BaseModel, list)):
        if path and path[-1] not in {"name", "description"}:
            yield path, value
        return
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _leaves(getattr(value, name), (*path, name))
    elif value and all(isinstance(v, (int, float)) for v in value):
        yield path, value
    else:
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _dotted(scenario: Any, key: tuple[Any, ...]) -> str:
    parts = []
    node: Any = scenario
    for part in key:
        if isinstance(part, int):
            label = getattr(node[part], "name", None)
            parts.append(f"[{label or part}]")
            node = node[part]
        else:
            parts.append(("." if parts else "") + str(part))
            node = getattr(node, part)
    return "".join(parts)


def _plain(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return str(value)

