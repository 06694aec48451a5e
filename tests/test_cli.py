"""The command line: fast help, schema, shipped scenarios, validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from simulator.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_help_imports_no_numerical_library():
    code = ("import sys; from click.testing import CliRunner; from simulator.cli import cli;"
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
            "heavy = sorted(m for m in ('numpy', 'scipy', 'xarray', 'matplotlib', 'dask', 'pandas') if m in sys.modules);"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("command", [[], ["validate"], ["schema"], ["scenarios"], ["run"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_validate(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: ok")


def test_bare_name_resolves_to_shipped_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "base"])
    assert result.exit_code == 0, result.output
    assert "base.yaml: ok (base;" in result.output


def test_scenarios_lists_shipped_with_descriptions():
    result = CliRunner().invoke(cli, ["scenarios"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()[:len(SHIPPED)]]
    assert names == [p.stem for p in SHIPPED]
    assert "no site converts" in result.output.lower()


def test_schema_validates_base_yaml():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    base = _as_json(yaml.safe_load((ROOT / "scenarios" / "base.yaml").read_text()))
    jsonschema.validate(base, schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_what_validate_rejects():
    schema = json.loads(CliRunner().invoke(cli, ["schema"]).output)
    base = _as_json(yaml.safe_load((ROOT / "scenarios" / "base.yaml").read_text()))
    base["sites"][0]["gros_mw"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(base, schema, cls=jsonschema.Draft202012Validator)


def _as_json(data):
    """YAML dates become strings, as an editor's YAML plugin sees them."""
    return json.loads(json.dumps(data, default=str))


@pytest.mark.parametrize(("args", "status", "stream", "text"), [
    (["validate", "base"], 0, "stdout", "ok"),
    (["schema"], 0, "stdout", '"$schema"'),
    (["validate", "no-such-scenario"], 2, "stderr", "no scenario file or shipped scenario"),
    (["run"], 2, "stderr", "Missing argument"),
])
def test_console_command_keeps_exit_status_and_flushes_output(args, status, stream, text):
    """Through a pipe, as a script or CI sees it: the exit status, the output, no traceback."""
    done = subprocess.run([sys.executable, "-m", "simulator", *args], check=False, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == status, done.stderr
    assert text in getattr(done, stream)
    assert "Traceback" not in done.stderr


def test_console_command_flushes_what_was_not_flushed():
    code = ("import sys, simulator.cli as c\n"
            "def fake(**kw):\n"
            "    sys.stdout.write('buffered, no newline'); sys.stderr.write('err')\n"
            "    raise SystemExit(3)\n"
            "c.cli = fake\n"
            "c.main()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # pipes block-buffer
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=60,
                          env=env)
    assert (done.returncode, done.stdout, done.stderr) == (3, "buffered, no newline", "err")
