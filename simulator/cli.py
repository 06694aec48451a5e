"""The ``minersim`` command line.

The group imports nothing heavy: each command imports NumPy, xarray or matplotlib inside its
body, so ``minersim --help`` stays fast. This is the one place that renders a
``MinersimError`` and sets the exit code.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import click

from simulator import __version__
from simulator.errors import MinersimError, ScenarioWarning
from simulator.limits import PATHS_MAX, PATHS_MIN, SEED_MAX, SEED_MIN

# The scenario schema's bounds on simulation.paths and simulation.seed (simulator/limits.py).
_PATHS = click.IntRange(PATHS_MIN, PATHS_MAX)
_SEED = click.IntRange(SEED_MIN, SEED_MAX)


def _reports_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Render MinersimError on stderr with the class's exit code, never a traceback.

    Scenario warnings go to stderr as they come, each once, and leave the exit status alone.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", ScenarioWarning)
                warnings.showwarning = _show_warning(warnings.showwarning)
                return fn(*args, **kwargs)
        except MinersimError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("minersim: interrupted; earlier outputs are as they were", err=True)
            sys.exit(130)

    return wrapper


def _show_warning(fallback: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each ScenarioWarning once (compare validates
    a scenario again for each step; the same warning is not news twice) and hands other
    warnings to ``fallback``."""
    shown: set[tuple[str | None, str]] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not isinstance(message, ScenarioWarning):
            fallback(message, category, *args, **kwargs)
        elif (message.key_path, message.message) not in shown:
            shown.add((message.key_path, message.message))
            click.echo(message.render(), err=True)

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="minersim")
def cli() -> None:
    """Monte Carlo valuation of listed bitcoin miners turning megawatts into AI/HPC leases.

    Write assumptions in a YAML scenario, simulate thousands of monthly paths of BTC price,
    network hashrate, halvings, fleet, site conversions, treasury and debt, and read the value
    per share as a distribution against the market price.

    \b
    Start with:  minersim scenarios
                 minersim run base
    """


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--strict", is_flag=True,
              help="Treat warnings as errors: exit 2 on an unresolved source, a look-ahead or a stale one.")
@_reports_errors
def validate(files: tuple[str, ...], strict: bool) -> None:
    """Check scenario FILES (paths or shipped names); exit 2 on the first invalid one.

    Every problem is printed as FILE:LINE: key.path: what is wrong (what is allowed). The
    price-history CSV of a bootstrap BTC process is read and checked as a run would.
    Odd but possible inputs are printed as FILE:LINE: warning: ... and do not fail, unless
    --strict is given. Among them: a source: that cites no row of the fact sheets, one
    dated after the valuation date (look-ahead) and one older than
    simulation.stale_after_days (stale).
    """
    from simulator.scenario.universe import company_files, is_universe

    for file in files:
        if not is_universe(file):
            click.echo(_validate_one(file, strict))
            continue
        # A universe is valid when every company it lists is, in its shared market.
        checked = [_validate_one(company, strict) for company in company_files(file)]
        click.echo(f"{file}: ok (universe of {len(checked)} companies)")
        for line in checked:
            click.echo(f"  {line}")


def _validate_one(file: str, strict: bool) -> str:
    """Load one scenario file as ``validate`` does; its "ok" line."""
    from simulator.scenario import load

    if strict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ScenarioWarning)
            loaded = load(file)
        errors = [w.message.as_error() for w in caught if isinstance(w.message, ScenarioWarning)]
        for w in caught:
            if not isinstance(w.message, ScenarioWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if errors:
            from simulator.errors import ScenarioErrors

            raise ScenarioErrors(errors)
    else:
        loaded = load(file)
    if loaded.scenario.market.btc.process.kind == "bootstrap":
        from simulator.scenario.history import bootstrap_history

        bootstrap_history(loaded.scenario)  # the CSV a run would read, checked the same way
    n_uncertain = sum(1 for _ in loaded.scenario.uncertain_inputs())
    return f"{loaded.path}: ok ({loaded.scenario.name}; {n_uncertain} uncertain inputs)"


@cli.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON Schema of the scenario language.

    Point your editor's YAML plugin at it for completion and inline checks:
    minersim schema > scenario.schema.json
    """
    import json

    from simulator.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=indent))


@cli.command()
@_reports_errors
def scenarios() -> None:
    """List the scenarios shipped with minersim.

    A bare name such as `base` works anywhere a scenario file is expected.
    """
    from simulator._files import scenarios_dir
    from simulator.scenario import shipped_scenarios

    rows = shipped_scenarios()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        click.echo(f"{name:<{width}}  {description}")
    click.echo(f"\n({scenarios_dir()})")


@cli.command()
@click.argument("scenario")
@click.option("--paths", type=_PATHS, help="Number of Monte Carlo paths (default: the scenario's).")
@click.option("--seed", type=_SEED, help="Random seed (default: the scenario's).")
@click.option("--sampling", type=click.Choice(["random", "latin_hypercube", "sobol"]),
              help="How per-path inputs are drawn (default: the scenario's).")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default: runs/<scenario>/).")
@click.option("--chunk-paths", type=click.IntRange(min=1), help="Paths per work chunk (memory bound).")
@click.option("--store-paths", type=click.IntRange(min=0),
              help="Keep monthly series for the first this-many paths (default: the scenario's).")
@click.option("--precision", type=click.FloatRange(min=0, min_open=True), metavar="USD",
              help="Add paths until the standard error of the mean value per share is below USD.")
@click.option("--max-paths", type=_PATHS, default=1_000_000, show_default=True,
              help="Path cap for --precision.")
@click.option("--processes", type=click.IntRange(min=1), metavar="N",
              help="Local processes: chunks on a pool of N, the report in a process of its own "
              "(default: the pool from 32,768 paths, one per core; 1 keeps everything in this process).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Run on a local Dask cluster of N worker processes.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on an existing Dask cluster (tcp://host:8786).")
@click.option("--scheduler-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS", help="Give up connecting to --scheduler after this long.")
@click.option("--no-report", is_flag=True, help="Write results.nc only.")
@click.option("--overwrite", is_flag=True,
              help="Replace an output directory that holds a run of another scenario file.")
@click.option("--drivers", is_flag=True,
              help="Also run the tornado and the BTC-spot and lease-signing breakevens "
              "(about two re-runs per uncertain input) and add them to the report.")
@click.option("--drivers-paths", type=click.IntRange(min=16), default=1_024, show_default=True,
              metavar="N", help="Paths per --drivers re-run.")
@click.option("--pair", "pairs", multiple=True, metavar="A/B",
              help="Peer group: add the long-A / short-B pair trade (repeatable).")
@click.option("--no-breakevens", is_flag=True,
              help="Peer group: skip each company's breakeven BTC spot (about 6 to 10 re-runs each).")
@click.option("--breakeven-paths", type=click.IntRange(min=16), default=1_024, show_default=True,
              metavar="N", help="Peer group: paths per breakeven re-run.")
@_reports_errors
def run(scenario: str, paths: int | None, seed: int | None, sampling: str | None, out: str | None,
        chunk_paths: int | None, store_paths: int | None, precision: float | None, max_paths: int,
        processes: int | None, workers: int | None, scheduler: str | None, scheduler_timeout: float,
        no_report: bool, overwrite: bool, drivers: bool, drivers_paths: int, pairs: tuple[str, ...],
        no_breakevens: bool, breakeven_paths: int) -> None:
    """Simulate SCENARIO and write results.nc and report.html.

    SCENARIO is a YAML file or the name of a shipped scenario. Outputs go to
    runs/<scenario>/ unless --out says otherwise; they are replaced only when the whole
    run succeeds, and a directory holding a run of another scenario file only with
    --overwrite.

    The same seed gives the same numbers however the run is split: serially, with
    --workers on this machine, or with --scheduler on a cluster. --precision picks the
    path count for you, in whole chunks, and reports how many paths it took.

    --drivers adds the tornado (median value per share with each uncertain input at its P10
    and P90) and the breakevens against the market price, on the same seed; without it the
    report ranks inputs by correlation only.

    A universe file (one that lists companies:, such as scenarios/peers.yaml) runs the peer
    group: every company on the same paths, written to runs/<universe>/<ticker>/ (a complete
    run each) with the peer memo peers.html and the summary peers.json. --pair A/B adds a
    pair trade; each company's breakeven BTC spot is found unless --no-breakevens.
    """
    from simulator.scenario.universe import is_universe

    started = time.perf_counter()
    if is_universe(scenario):
        _run_peers(scenario, started, paths=paths, seed=seed, sampling=sampling, out=out,
                   chunk_paths=chunk_paths, store_paths=store_paths, report=not no_report,
                   processes=processes, workers=workers, scheduler=scheduler,
                   scheduler_timeout=scheduler_timeout, pairs=pairs, breakevens=not no_breakevens,
                   breakeven_paths=breakeven_paths, overwrite=overwrite, precision=precision,
                   drivers=drivers)
        return
    from simulator.errors import RunError

    if pairs:
        raise RunError(f"--pair: {scenario} is one company; pair trades need a universe file "
                       "that lists companies: (e.g. scenarios/peers.yaml)")
    from simulator.report.outputs import run_scenario

    with _Progress() as progress:
        result = run_scenario(scenario, paths=paths, seed=seed, sampling=sampling, out=out,
                              chunk_paths=chunk_paths, store_paths=store_paths, report=not no_report,
                              processes=processes, workers=workers, scheduler=scheduler,
                              scheduler_timeout=scheduler_timeout,
                              precision=precision,
                              max_paths=max_paths, progress=progress.update,
                              drivers=drivers, drivers_paths=drivers_paths, overwrite=overwrite,
                              started=started)
    elapsed = time.perf_counter() - started
    for line in result.summary_lines(elapsed):
        click.echo(line)


def _run_peers(universe: str, started: float, *, precision: float | None, drivers: bool,
               **kw: Any) -> None:
    """``run`` on a universe file: the peer group (:func:`simulator.report.peer_outputs.run_peers`)."""
    from simulator.errors import RunError

    for given, option in ((precision is not None, "--precision"), (drivers, "--drivers")):
        if given:
            raise RunError(f"{option}: not available for a peer group; give --paths, or run a "
                           "company file alone (scenarios/companies/<ticker>.yaml)")
    from simulator.report.peer_outputs import run_peers

    with _Progress() as progress:
        result = run_peers(universe, progress=progress.update, started=started, **kw)
    for line in result.summary_lines(time.perf_counter() - started):
        click.echo(line)


@cli.command("compare")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(), default="compare.html",
              show_default=True, help="HTML file to write.")
@click.option("--paths", type=_PATHS, help="Paths per scenario (default: A's).")
@click.option("--seed", type=_SEED, help="Common seed (default: A's).")
@click.option("--no-attribution", is_flag=True,
              help="Skip stepping from A to B one input group at a time (one run per group).")
@_reports_errors
def compare_cmd(sources: tuple[str, ...], output: str, paths: int | None, seed: int | None,
                no_attribution: bool) -> None:
    """Compare scenarios A B [C ...] in one HTML report.

    Each of A, B, ... is a scenario file, a shipped name or a run directory. All run on the
    same seed and path count, so differences are precise: the report shows the scenarios'
    cumulative distributions (value today under the pricing measure, with each fair value
    marked; the 12-month forecast under the real-world measure), differences from A with
    their standard errors, the assumptions that differ, an attribution of the change in
    median from A to B, and the decoupling lines of every scenario.

    On a terminal, each simulation shows a progress bar on standard error.
    """
    if len(sources) < 2:
        raise click.UsageError("compare needs at least two scenarios or run directories")
    from simulator._files import check_output_file

    check_output_file(output)  # before minutes of simulation, not after
    from simulator.analysis.compare import compare
    from simulator.report.compare_report import write_compare
    from simulator.run.execute import local_processes

    with _LabelledProgress() as progress:
        result = compare(sources, paths=paths, seed=seed, attribute=not no_attribution,
                         processes=local_processes(), progress=progress.update)
    path = write_compare(result, output)
    from simulator.report.compare_report import fair_value

    for label, s, cube, values in zip(result["labels"], result["summaries"], result["cubes"],
                                      result["values"], strict=True):
        fair, se = fair_value(cube, values)
        click.echo(f"{label:<24} fair value ${fair:8.2f}  (SE {se:.2f}; pricing measure)   "
                   f"pathwise median ${s['median']:.2f}")
    for d in result["deltas"]:
        med = next(r for r in d["rows"] if r["stat"] == "median")
        click.echo(f"{d['label']} - {result['labels'][0]}: median {med['delta']:+.2f} "
                   f"(SE {med['se']:.2f})")
    click.echo(f"wrote {path}")


class _LabelledProgress:
    """One click progress bar per simulation of ``compare``, labelled with the scenario or
    attribution step, on standard error when it is a terminal; a log gets nothing.

    A simulation of one chunk gets no bar: it is over by the first report.
    """

    def __init__(self, file: Any = None, tty: bool | None = None) -> None:
        self._file = file if file is not None else sys.stderr
        self._tty = self._file.isatty() if tty is None else tty
        self._bar: Any = None
        self._label: str | None = None
        self._done = 0

    def update(self, label: str, done: int, total: int) -> None:
        if not self._tty:
            return
        if label != self._label:
            self._close()
            self._label, self._done = label, 0
        if self._bar is None:
            if done >= total:
                return
            self._bar = click.progressbar(length=total, label=label, file=self._file)
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done
        if done >= total:
            self._close()

    def _close(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*(exc or (None, None, None)))
            self._bar = None

    def __enter__(self) -> _LabelledProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close(*exc)


@cli.command("export")
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json"]), default="md",
              show_default=True, help="md: percentile table and summary sentence; csv: "
              "per-path samples; json: summary with the manifest.")
@click.option("-o", "--output", type=click.Path(),
              help="Write to this file instead of standard output.")
@click.option("--charts", "charts_dir", type=click.Path(),
              help="Also write the headline, fan and decoupling charts as PNG (300 dpi) and SVG.")
@_reports_errors
def export_cmd(run_dir: str, fmt: str, output: str | None, charts_dir: str | None) -> None:
    """Export a saved run (RUN_DIR or its results.nc) for an investment memo.

    A peer run directory (runs/peers, from a universe file) exports the peer table instead:
    md as tables by section with the correlations and pair trades, csv as one row per
    company, json as the run's peers.json. Every column names its measure.

    Prints the export on standard output unless -o is given; messages about files written
    go to standard error, so the output can be piped.
    """
    from simulator.report.export import export

    text, written = export(run_dir, fmt, output=output, charts_dir=charts_dir)
    if output is None:
        click.echo(text, nl=False)
    for path in written:
        click.echo(f"wrote {path}", err=True)


@cli.group()
def calibrate() -> None:
    """Fit the BTC price, fee and hashrate processes to history.

    Each command reads a CSV of dated rows, prints a YAML block to paste into a scenario
    (its keys and units, standard errors as # comments, the file's SHA-256, the sample and
    as_of, its last date) and writes an HTML report of the fit against the history.
    """


def _window_options(default_out: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--since, --until and --out, shared by the calibrate commands."""
    day = click.DateTime(["%Y-%m-%d"])

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed((
                click.option("--since", type=day, metavar="DATE",
                             help="First month-end to use (YYYY-MM-DD; default: the file's first)."),
                click.option("--until", type=day, metavar="DATE",
                             help="Last month-end to use (YYYY-MM-DD; default: the file's last)."),
                click.option("--out", type=click.Path(dir_okay=False), default=default_out,
                             show_default=True, help="HTML calibration report to write."))):
            fn = option(fn)
        return fn

    return decorate


def _read_window(file: str, column: str, how: str, since: Any, until: Any, out: str, what: str):
    from simulator._files import check_output_file
    from simulator.scenario.history import read_monthly_series

    check_output_file(out)  # before any fitting
    series = read_monthly_series(file, column, how=how)
    return series, series.window(since and since.date(), until and until.date(), what=what)


def _command(*words: Any, since: Any, until: Any) -> str:
    text = "minersim calibrate " + " ".join(str(w) for w in words)
    for name, value in (("--since", since), ("--until", until)):
        if value is not None:
            text += f" {name} {value.date()}"
    return text


@calibrate.command("btc")
@click.argument("prices")
@click.option("--model", type=click.Choice(["gbm", "merton", "regime", "bootstrap", "all"]),
              default="all", show_default=True, help="Which BTC process to fit.")
@_window_options("calibration.html")
@_reports_errors
def calibrate_btc(prices: str, model: str, since: Any, until: Any, out: str) -> None:
    """Fit BTC price processes to PRICES, a CSV of date,close month-end closes [USD/BTC].

    gbm and merton by maximum likelihood, regime by a two-state Markov-switching model,
    bootstrap's block length by the Politis-White rule; all of them with --model all (the
    default), compared by likelihood ratio and AIC. GBM is always fitted as the reference.
    The fitted drift is a real-world figure: fair value prices BTC at the risk-free rate.
    """
    from simulator.analysis.calibrate import BTC_MODELS, calibrate_btc as fit
    from simulator.report import calibration_report as report

    series, window = _read_window(prices, "close", "last", since, until, out,
                                  "monthly log returns")
    models = BTC_MODELS if model == "all" else (model,)
    result = fit(window.dates, window.values, models)
    command = _command("btc", prices, "--model", model, since=since, until=until)
    text = report.btc_yaml(result, series, window, command, models)
    ctx = report.btc_context(result, series, window, text, command)
    click.echo(text, nl=False)
    click.echo(f"wrote {report.write_report(ctx, out)}", err=True)


@calibrate.command("fees")
@click.argument("fees")
@_window_options("calibration-fees.html")
@_reports_errors
def calibrate_fees(fees: str, since: Any, until: Any, out: str) -> None:
    """Fit the fee process to FEES, a CSV of date,fees_btc_per_block rows [BTC].

    Rows are averaged within each calendar month; an AR(1) on the log of the monthly fees
    gives median_btc_per_block, log_sd (the stationary sd of log fees) and
    persistence_monthly, with standard errors.
    """
    _calibrate_series("fees", fees, "fees_btc_per_block", "monthly changes of fees", since, until, out)


@calibrate.command("hashrate")
@click.argument("hashrate")
@_window_options("calibration-hashrate.html")
@_reports_errors
def calibrate_hashrate(hashrate: str, since: Any, until: Any, out: str) -> None:
    """Fit network growth to HASHRATE, a CSV of date,hashrate_ehs rows [EH/s].

    Rows are averaged within each calendar month; prints the growth model's growth_year1
    (from the log growth per year, with its SE) and volatility.
    """
    _calibrate_series("hashrate", hashrate, "hashrate_ehs", "monthly changes of hashrate", since,
                      until, out)


def _calibrate_series(kind: str, path: str, column: str, changes: str, since: Any, until: Any,
                      out: str) -> None:
    """``calibrate fees`` and ``calibrate hashrate``: read the window of monthly means of
    ``column``, fit, print the YAML block and write the HTML report."""
    from simulator.analysis import calibrate as fits
    from simulator.report import calibration_report as report

    series, window = _read_window(path, column, "mean", since, until, out, changes)
    result = getattr(fits, f"calibrate_{kind}")(window.dates, window.values)
    command = _command(kind, path, since=since, until=until)
    text = getattr(report, f"{kind}_yaml")(result, series, window, command)
    click.echo(text, nl=False)
    context = getattr(report, f"{kind}_context")(result, series, window, text, command)
    click.echo(f"wrote {report.write_report(context, out)}", err=True)


class _Progress:
    """A click progress bar over chunks, shown only once a run has taken ~2 seconds."""

    delay = 2.0
    """Seconds before the bar appears, so that short runs print only their summary."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._started = time.perf_counter()
        self._done = 0

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            if time.perf_counter() - self._started < self.delay or done >= total:
                self._done = done
                return
            self._bar = click.progressbar(length=total, label="simulating", file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def main() -> None:
    """The console command."""
    cli(prog_name="minersim")


if __name__ == "__main__":
    main()
