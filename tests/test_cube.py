"""Cube assembly, the variable table contract, and save/load round trips."""

from __future__ import annotations


import numpy as np
import pytest
import xarray as xr
from synthetic import synthetic_cube

from simulator import cube
from simulator import units as u
from simulator.errors import RunError


@pytest.fixture(scope="module")
def small():
    return synthetic_cube(paths=60, months=40, seed=3, failed=2)


def _minimal(**extra):
    arrays = {"btc_price": np.ones((4, 3)), "value_per_share": np.arange(4.0)}
    arrays.update(extra)
    return cube.assemble(arrays, calendar=["2025-12", "2026-01", "2026-02"], sites=["A"],
                         forward_years=[1], manifest={"scenario_name": "t", "seed": 1})


def test_coordinates_and_dtypes(small):
    assert small["path"].dtype == np.int64
    assert small["time"].dtype == np.dtype("datetime64[ns]")
    assert str(small["time"].values[0]) .startswith("2025-12-01")
    assert small["site"].values.tolist() == ["Sandersville", "Austin County"]
    assert small["horizon"].values.tolist() == [12, 24, 36]
    assert small["path_failed"].dtype == bool
    assert int(small["path_failed"].sum()) == 2


def test_every_variable_has_units_and_long_name(small):
    for name, var in small.data_vars.items():
        assert var.attrs["units"], name
        assert var.attrs["long_name"], name
    assert small["hashprice"].attrs["units"] == u.USD_PER_PH_DAY == "USD/PH/day"
    assert small["input_power_price_usd_per_mwh"].attrs["key_path"] == "power.price_usd_per_mwh"


def test_table_covers_design_table():
    design = ["btc_price", "fees_per_block", "network_hashrate", "hashprice", "company_hashrate",
              "mining_mw", "hpc_mw_it", "btc_mined", "mining_revenue", "power_cost",
              "mining_margin", "hpc_revenue", "hpc_noi", "capex", "free_cash_flow", "btc_held",
              "cash", "value_per_share", "equity_value", "pv_mining", "pv_hpc",
              "treasury_value", "net_debt"]
    assert set(design) <= set(cube.VARIABLES)
    assert cube.VARIABLES["forward_value_per_share"][0] == ("path", "horizon")
    assert cube.VARIABLES["sign_month"][0] == ("path", "site")


def test_manifest_attrs(small):
    man = cube.manifest_of(small)
    assert list(man)[:4] == ["scenario_name", "scenario_yaml", "scenario_sha256", "seed"]
    assert man["paths"] == 60 and man["share_price"] == 14.57


def test_manifest_values_are_normalised():
    import datetime
    ds = cube.assemble({"value_per_share": np.ones(2)}, calendar=["2025-12"], sites=[],
                       forward_years=[], manifest={"flag": True, "none": None,
                                                   "when": datetime.date(2025, 12, 1),
                                                   "items": [1, 2]})
    assert ds.attrs == {"flag": 1, "when": "2025-12-01", "items": "[1, 2]"}


def test_unknown_variable_is_refused():
    with pytest.raises(RunError, match=r"unknown variable\(s\) \['btc_prise'\]"):
        _minimal(btc_prise=np.ones((4, 3)))


def test_wrong_shape_is_refused():
    with pytest.raises(RunError, match=r"btc_held has shape \(4, 5\), expected \(4, 3\)"):
        _minimal(btc_held=np.ones((4, 5)))


def test_calendar_must_be_month_starts():
    with pytest.raises(RunError, match="month starts"):
        cube.assemble({"btc_price": np.ones((1, 2))}, calendar=["2025-12-01", "2026-01-15"],
                      sites=[], forward_years=[])


def test_stored_sample_and_summary():
    ds = synthetic_cube(paths=50, months=30, sample=20)
    assert ds["btc_price"].dims == ("sample", "time")
    assert ds.sizes["sample"] == 20 and ds.sizes["path"] == 50
    assert ds["value_per_share"].dims == ("path",)
    assert cube.path_dim(ds, "btc_price") == "sample"
    assert cube.path_dim(ds, "value_per_share") == "path"
    assert ds["btc_price_mean"].dims == ("time",)
    assert ds["btc_price_std"].attrs["units"] == u.USD_PER_BTC


def test_summary_name_must_match_a_series():
    with pytest.raises(RunError, match="'value_per_share_mean'"):
        cube.assemble({"btc_price": np.ones((2, 1))}, calendar=["2025-12"], sites=[],
                      forward_years=[], summary={"value_per_share_mean": np.ones(1)})


def test_round_trip_is_identical(small, tmp_path):
    target = cube.save(small, tmp_path / "run" / "results.nc")
    back = cube.load(target)
    xr.testing.assert_identical(small, back)
    assert back["path_failed"].dtype == bool
    assert back["time"].dtype == np.dtype("datetime64[ns]")
    assert back["sign_month"].dtype == np.int64
    assert back["btc_price"].encoding["zlib"] is True
    assert list(tmp_path.joinpath("run").iterdir()) == [target]


def test_round_trip_with_sample(tmp_path):
    ds = synthetic_cube(paths=30, months=24, sample=10)
    xr.testing.assert_identical(ds, cube.load(cube.save(ds, tmp_path / "s.nc")))


def test_failed_save_keeps_previous_file(small, tmp_path):
    target = cube.save(small, tmp_path / "r.nc")
    before = target.read_bytes()
    bad = small.copy()
    bad.attrs["unwritable"] = {"a": object()}
    with pytest.raises(TypeError):
        cube.save(bad, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.nc"
    with pytest.raises(RunError, match=f"{path}: no such cube file"):
        cube.load(path)


def test_load_non_netcdf(tmp_path):
    path = tmp_path / "junk.nc"
    path.write_text("not a cube")
    with pytest.raises(RunError, match="junk.nc: not a readable minersim cube"):
        cube.load(path)


def test_series_are_float32_and_per_path_values_float64(small):
    assert small["btc_price"].dtype == np.float32
    assert small["cash"].dtype == np.float32
    assert small["value_per_share"].dtype == np.float64
    assert small["forward_value_per_share"].dtype == np.float64
    assert small["sign_month"].dtype == np.int64


def test_float32_series_keep_seven_significant_digits():
    cash = np.array([[1.234567891e9, -2.5e-3, 13_011.123456]])
    ds = cube.assemble({"cash": cash}, calendar=["2025-12", "2026-01", "2026-02"], sites=[],
                       forward_years=[])
    np.testing.assert_allclose(ds["cash"].values, cash, rtol=2.0**-24)


def test_saved_series_are_shuffled_deflated_and_chunked(tmp_path, monkeypatch):
    import h5py
    # Small chunks so the series span several, with a partial chunk at the end.
    monkeypatch.setattr(cube, "_CHUNK_BYTES", 40 * 4 * 7)
    ds = synthetic_cube(paths=60, months=40, seed=5)
    target = cube.save(ds, tmp_path / "c.nc")
    with h5py.File(target) as f:
        for name in ("btc_price", "value_per_share"):
            assert f[name].compression == "gzip" and f[name].shuffle
            assert f[name].compression_opts == cube.ZLIB_LEVEL
        assert f["btc_price"].chunks == (7, 40)
        assert f["btc_price"].id.get_num_chunks() == 9  # 60 rows in chunks of 7
    xr.testing.assert_identical(ds, cube.load(target))
