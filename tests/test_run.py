"""``minersim run``: outputs, summary, adaptive precision, Dask errors, interruption, progress."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from simulator import cli as cli_mod
from simulator.cli import cli
from simulator.cube import load
from support import short_yaml


@pytest.fixture(scope="module")
def previous(short, tmp_path_factory):
    """The outputs of an earlier successful run, as bytes."""
    out = tmp_path_factory.mktemp("previous")
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_run_writes_results_and_report_and_prints_the_summary(short, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "1500", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.nc"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("short: 1,500 paths, seed 3, random sampling, ")
    assert lines[1].startswith("  fair value per share      $") and "pricing measure" in lines[1]
    assert any("real-world measure" in line for line in lines)
    assert lines[-2:] == [f"  results: {out / 'results.nc'}", f"  report:  {out / 'report.html'}"]
    cube = load(out / "results.nc")
    assert cube.sizes["path"] == 1_500 and cube.attrs["seed"] == 3
    assert "<html" in (out / "report.html").read_text()[:200].lower()


def test_precision_reports_the_paths_it_took(short, tmp_path):
    out = tmp_path / "adaptive"
    result = CliRunner().invoke(cli, ["run", str(short), "--precision", "1000", "--chunk-paths", "1024",
                                      "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    cube = load(out / "results.nc")
    # A $1,000 standard error is met by the first chunk.
    assert cube.attrs["paths"] == 1_024 and cube.attrs["precision_target_usd"] == 1000.0
    se = cube.attrs["precision_se_usd"]
    assert f"  precision                 SE of mean ${se:.4f} < target $1000.0000 after 1,024 paths" \
        in result.stdout.splitlines()
    assert result.stdout.startswith("short: 1,024 paths, ")


def test_precision_with_paths_is_a_usage_error(short, tmp_path):
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "10", "--precision", "0.1",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == ("--paths and --precision exclude each other: an adaptive run picks its own "
                             "path count (cap it with --max-paths)\n")


def test_unreachable_scheduler_exits_2_without_traceback(short, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "100", "--out", str(tmp_path / "x"),
                                      "--scheduler", address, "--scheduler-timeout", "0.5"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cannot reach the Dask scheduler at {address}: ")
    assert result.stderr.endswith("(is `dask scheduler` running there, and is the address right?)\n")
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_leaves_previous_outputs_and_no_temp_files(tmp_path, signum, previous):
    """Signal the run the moment its temporary results file appears (mid-write)."""
    scenario = short_yaml(tmp_path, months=120, name="long")
    out = tmp_path / "out"
    out.mkdir()
    for name, data in previous.items():
        (out / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(scenario), "--paths", "4000",
                             "--seed", "2", "--store-paths", "4000", "--out", str(out), "--overwrite"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 60
    try:
        while not list(out.glob(".results.nc.*.tmp")):
            assert proc.poll() is None, "the run finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert b"Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_failing_report_fails_the_run_and_keeps_the_previous_outputs(short, tmp_path, monkeypatch,
                                                                       previous):
    """A report that cannot be drawn fails the run with its own message, and nothing is replaced."""
    from simulator.report import run_report as report
    from simulator.errors import RunError

    def broken(*_args, **_kwargs):
        raise RunError("report: the template is broken")

    monkeypatch.setattr(report, "render_report", broken)
    out = tmp_path / "out"
    out.mkdir()
    for name, data in previous.items():
        (out / name).write_bytes(data)
    # --processes 1 draws the report in this process, where the patch applies.
    result = CliRunner().invoke(cli, ["run", str(short), "--paths", "200", "--processes", "1",
                                      "--out", str(out)])
    assert result.exit_code == RunError.exit_code
    assert result.stderr == "report: the template is broken\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous


def test_progress_bar_shows_on_stderr_once_the_run_is_slow(short, tmp_path, monkeypatch):
    quick = CliRunner().invoke(cli, ["run", str(short), "--paths", "2048", "--chunk-paths", "1024",
                                     "--out", str(tmp_path / "a"), "--no-report"])
    assert quick.exit_code == 0, quick.output
    assert quick.stderr == ""
    monkeypatch.setattr(cli_mod._Progress, "delay", 0.0)  # every run counts as slow
    slow = CliRunner().invoke(cli, ["run", str(short), "--paths", "2048", "--chunk-paths", "1024",
                                    "--out", str(tmp_path / "b"), "--no-report"])
    assert slow.exit_code == 0, slow.output
    assert slow.stderr.startswith("simulating")
    assert "simulating" not in slow.stdout


def test_help_lists_the_scale_options():
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    for option in ("--workers N", "--scheduler ADDRESS", "--precision USD", "--max-paths",
                   "--store-paths", "--chunk-paths"):
        assert option in result.output


def test_a_run_of_another_scenario_is_not_replaced_without_overwrite(short, tmp_path, previous):
    """The directory holds short.yaml's run: another file's run is refused before simulating."""
    other = short_yaml(tmp_path, name="other")
    out = tmp_path / "out"
    out.mkdir()
    for name, data in previous.items():
        (out / name).write_bytes(data)
    refused = CliRunner().invoke(cli, ["run", str(other), "--paths", "200", "--out", str(out)])
    assert refused.exit_code == 2
    assert refused.stderr == (f"{out}: holds a run of {short.resolve()}, not of {other.resolve()}; "
                              "give another --out, or --overwrite to replace it\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous
    replaced = CliRunner().invoke(cli, ["run", str(other), "--paths", "200", "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert load(out / "results.nc").attrs["scenario_name"] == "other"


def test_a_bad_out_is_refused_before_anything_is_simulated(short, tmp_path, monkeypatch):
    import simulator.run as run_mod

    def never(*_args, **_kwargs):
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(run_mod, "simulate", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["run", str(short), "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert result.stderr == f"{blocker / 'sub'}: {blocker} is not a directory, so the output directory cannot be created\n"
    assert blocker.read_text() == "x"


def test_the_drawing_process_sends_back_the_html_or_the_error():
    """The report drawn in a process of its own: the same HTML as in this process, and a
    failure there comes back as a RunError that says what happened."""
    from synthetic import synthetic_cube

    from simulator.errors import RunError
    from simulator.report import outputs
    from simulator.report.run_report import render_report

    cube = synthetic_cube(paths=300, months=24)
    cube.attrs["created"] = "2026-12-07T00:00:00+00:00"
    with outputs._ProcessDrawer() as drawer:
        drawer.submit(cube, {})
        html = drawer.result()
    assert html == render_report(cube)
    with outputs._ProcessDrawer() as drawer:
        drawer.submit(cube.drop_vars("value_per_share"), {})
        with pytest.raises(RunError, match=r"^report: KeyError: "):
            drawer.result()
