"""export: Markdown, CSV and JSON agree with the cube; charts are valid PNG and SVG."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from simulator import cube as cube_mod
from simulator.report import export
from simulator.cli import cli
from simulator.scenario import load
from simulator.run import simulate

PATHS = 1024


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cube = simulate(load("base").scenario, PATHS, 3, store_paths=256)
    cube_mod.save(cube, out / "results.nc")
    return out


@pytest.fixture(scope="module")
def cube(run_dir):
    return cube_mod.load(run_dir / "results.nc")


def test_markdown_table_and_sentence_agree_with_the_cube(run_dir, cube):
    text, written = export.export(run_dir, "md")
    assert written == []
    v = cube["value_per_share"].values
    rows = dict(re.findall(r"^\| (P\d+|plain mean) \| (-?[\d.]+) \|", text, flags=re.M))
    for p in (5, 25, 50, 75, 95):
        assert float(rows[f"P{p}"]) == pytest.approx(np.quantile(v, p / 100), abs=0.005)
    assert float(rows["plain mean"]) == pytest.approx(v.mean(), abs=0.005)
    first = text.splitlines()[0]
    fair, se = cube.attrs["fair_value_per_share"], cube.attrs["fair_value_se"]
    assert first.startswith("CleanSpark, Inc. (CLSK), base scenario, valued at 2025-12-01")
    assert f"fair value of ${fair:,.2f} per share (standard error ${se:,.2f} over {PATHS:,}" in first
    assert "pricing measure" in first and "real-world measure" in first
    f12 = cube["forward_value_per_share"].sel(horizon=12).values
    assert f"median ${np.median(f12):,.2f}" in first
    assert f"is {np.mean(f12 > 14.57):.1%} (SE " in first
    # The forecast table by year agrees with the cube.
    year1 = re.search(r"^\| 1 year\(s\) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", text, re.M)
    assert float(year1.group(2)) == pytest.approx(np.median(f12), abs=0.005)


def test_csv_reproduces_per_path_samples_exactly(run_dir, cube):
    text, _ = export.export(run_dir, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == PATHS
    got = np.array([float(r["value_per_share"]) for r in rows])
    np.testing.assert_array_equal(got, cube["value_per_share"].values)
    fwd3 = np.array([float(r["forward_value_per_share_y3"]) for r in rows])
    np.testing.assert_array_equal(fwd3, cube["forward_value_per_share"].sel(horizon=36).values)
    inputs = [n for n in cube.data_vars if n.startswith("input_")]
    assert len(inputs) > 20
    for name in inputs:
        key = cube[name].attrs["key_path"]
        col = np.array([float(r[key]) for r in rows])
        np.testing.assert_array_equal(col, cube[name].values.astype(np.float64))


def test_json_summary_and_manifest_agree_with_the_cube(run_dir, cube, tmp_path):
    target = tmp_path / "memo" / "base.json"
    text, written = export.export(run_dir, "json", output=target)
    assert written == [target]
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc == json.loads(text)
    v = cube["value_per_share"].values
    assert doc["summary"]["median"] == pytest.approx(float(np.median(v)), abs=1e-12)
    assert doc["summary"]["mean_se"] == pytest.approx(v.std(ddof=1) / np.sqrt(v.size))
    assert doc["summary"]["percentiles"]["0.95"]["value"] == pytest.approx(np.quantile(v, 0.95))
    assert doc["manifest"]["seed"] == 3 and doc["manifest"]["paths"] == PATHS
    assert doc["manifest"]["scenario_sha256"] == cube.attrs["scenario_sha256"]
    assert json.loads(doc["manifest"]["scenario_yaml"])["name"] == "base"
    assert [r["year"] for r in doc["decoupling"]["rows"]] == [1, 2, 3]


def _png_size_and_dpi(data: bytes) -> tuple[int, int, float]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    ppm_x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    assert unit == 1  # metres
    return width, height, ppm_x * 0.0254


def test_charts_are_valid_png_and_svg(cube, tmp_path):
    small = cube.drop_vars(["network_hashrate", "hashprice", "free_cash_flow", "btc_held"])
    written = export.write_charts(small, tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{n}.{ext}" for n in ("headline", "fan_btc_price", "decoupling")
                           for ext in ("png", "svg"))
    for path in written:
        if path.suffix == ".png":
            width, _, dpi = _png_size_and_dpi(path.read_bytes())
            assert dpi == pytest.approx(300, abs=0.1)
            assert width == 8 * 300  # charts are 8 in wide
        else:
            root = ET.fromstring(path.read_bytes())
            assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_cli_export_prints_markdown_and_rejects_a_missing_run(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["export", str(run_dir), "--format", "md"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("CleanSpark, Inc. (CLSK), base scenario") and "1,024 Monte Carlo paths" in res.output
    res = runner.invoke(cli, ["export", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
