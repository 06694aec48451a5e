"""BTC beta and R² of the stock's 12-month return, on data with a known beta."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from simulator import cube
from simulator.analysis import decoupling

N, MONTHS = 4_000, 36
BETAS = (1.5, 0.8, 0.3)
SIGMA_E = 0.1
VOL = 0.45
SPOT, V0 = 84_500.0, 10.0


def _cube(values_fn=None, sign_month=None):
    """Paths whose year-y value return is BETAS[y] x the year's BTC return plus noise."""
    rng = np.random.default_rng(11)
    z = rng.standard_normal((N, MONTHS))
    prices = SPOT * np.exp(np.cumsum(-VOL**2 / 2 / 12 + VOL * np.sqrt(1 / 12) * z, axis=1))
    stored = prices.astype(np.float32).astype(np.float64)  # what the cube keeps
    fwd = np.empty((N, 3))
    start_v, start_s = np.full(N, V0), np.full(N, SPOT)
    for j, b in enumerate(BETAS):
        end_s = stored[:, 12 * (j + 1) - 1]
        r_btc = end_s / start_s - 1.0
        fwd[:, j] = start_v * np.maximum(1.0 + 0.05 + b * r_btc + SIGMA_E * rng.standard_normal(N), 0.0)
        start_v, start_s = fwd[:, j], end_s
    value = np.full(N, V0)
    if values_fn is not None:
        values_fn(value, fwd)
    arrays = {"btc_price": prices, "value_per_share": value, "forward_value_per_share": fwd,
              "pv_mining": np.full(N, 3.0), "pv_hpc": np.where(np.arange(N) % 2, 1.0, 9.0)}
    sites = []
    if sign_month is not None:
        arrays["sign_month"] = sign_month
        sites = [f"s{k}" for k in range(sign_month.shape[1])]
    c = cube.assemble(arrays, calendar=np.arange(np.datetime64("2025-12"), np.datetime64("2025-12") + MONTHS),
                      sites=sites, forward_years=[1, 2, 3], manifest={"btc_spot_usd": SPOT, "fair_value_per_share": V0})
    return c, stored, value, fwd


def _returns(stored, value, fwd, year):
    """The regression's x and y for ``year``, written out independently of the package."""
    month = 12 * year - 1
    s0 = np.full(N, SPOT) if year == 1 else stored[:, 12 * (year - 1) - 1]
    v0 = np.full(N, V0) if year == 1 else fwd[:, year - 2]  # year 1 starts at the fair value
    ok = (v0 > 0) & np.isfinite(fwd[:, year - 1])
    return stored[ok, month] / s0[ok] - 1.0, fwd[ok, year - 1] / v0[ok] - 1.0, ok


def test_known_beta_and_regression_on_returns():
    c, stored, value, fwd = _cube()
    out = decoupling.btc_beta(c)
    for j, (row, b) in enumerate(zip(out["rows"], BETAS, strict=True)):
        assert row["year"] == j + 1 and row["month"] == 12 * (j + 1) - 1
        x, y, ok = _returns(stored, value, fwd, j + 1)
        assert row["n"] == ok.sum() and row["n_excluded"] == N - ok.sum()
        ref = sps.linregress(x, y)
        assert row["beta"] == pytest.approx(ref.slope, rel=1e-9)
        assert row["beta_se"] == pytest.approx(ref.stderr, rel=1e-9)
        assert row["r2"] == pytest.approx(ref.rvalue**2, rel=1e-9)
    # Year 1 starts with every path at V0 (no clipping at zero moves its fit much: 1 + 1.5 r
    # stays positive unless BTC falls 70 %), so its known beta is recovered within 4 SE.
    first = out["rows"][0]
    assert abs(first["beta"] - BETAS[0]) < 4 * first["beta_se"]


def test_a_path_that_ends_worthless_stays_in_and_one_worthless_at_the_start_is_excluded():
    def spoil(value, fwd):
        fwd[7:9, 0] = np.nan       # failed paths: no return
        fwd[10:30, 0] = 0.0        # wiped out during year 1: -100 % that year ...
        fwd[10:30, 1:] = 0.0       # ... and excluded from year 2 on
    c, stored, value, fwd = _cube(spoil)
    rows = decoupling.btc_beta(c)["rows"]
    assert rows[0]["n_excluded"] == 2 and rows[0]["n"] == N - 2
    x, y, ok = _returns(stored, value, fwd, 1)
    assert (y == -1.0).sum() >= 20
    assert rows[0]["beta"] == pytest.approx(sps.linregress(x, y).slope, rel=1e-9)
    assert rows[1]["n_excluded"] >= 29


def test_years_pooled():
    c, stored, value, fwd = _cube()
    out = decoupling.btc_beta(c)
    xs, ys = zip(*[_returns(stored, value, fwd, y)[:2] for y in (1, 2, 3)])
    ref = sps.linregress(np.concatenate(xs), np.concatenate(ys))
    assert out["overall"]["n"] == sum(len(x) for x in xs)
    assert out["overall"]["beta"] == pytest.approx(ref.slope, rel=1e-9)
    assert out["overall"]["r2"] == pytest.approx(ref.rvalue**2, rel=1e-9)


def test_split_by_signing_state():
    """Two sites: paths signing both in year 1, one of them, or none; each state's
    regression is the one over its own paths."""
    idx = np.arange(N)
    sign = np.stack([np.where(idx % 3 == 0, -1, 5), np.where(idx % 3 == 2, 20, np.where(idx % 3 == 1, 4, -1))],
                    axis=1)
    c, stored, value, fwd = _cube(sign_month=sign)
    by_state = decoupling.btc_beta(c)["by_state"]
    year1 = {r["state"]: r for r in by_state if r["year"] == 1}
    assert set(year1) == {"no site signed", "some sites signed", "every site signed"}
    x, y, ok = _returns(stored, value, fwd, 1)
    signed = ((sign >= 0) & (sign <= 11)).sum(axis=1)[ok]
    for count, name in [(0, "no site signed"), (1, "some sites signed"), (2, "every site signed")]:
        mask = signed == count
        assert year1[name]["n"] == mask.sum()
        assert year1[name]["beta"] == pytest.approx(sps.linregress(x[mask], y[mask]).slope, rel=1e-9)
    year2 = {r["state"] for r in by_state if r["year"] == 2}
    assert year2 == {"no site signed", "every site signed"}  # month 20 has signed by year 2's end


def test_spot_falls_back_to_the_first_month_without_the_attribute():
    c, stored, value, fwd = _cube()
    del c.attrs["btc_spot_usd"]
    row = decoupling.btc_beta(c)["rows"][0]
    x = stored[:, 11] / stored[:, 0] - 1.0
    assert row["beta"] == pytest.approx(sps.linregress(x, fwd[:, 0] / V0 - 1.0).slope, rel=1e-9)


def test_horizon_beyond_time_axis_gives_nan_row():
    c, *_ = _cube()
    c = c.isel(time=slice(0, 24))
    row = decoupling.btc_beta(c)["rows"][2]
    assert np.isnan(row["beta"]) and row["n"] == 0 and row["n_excluded"] == N


def test_hpc_share_median():
    c, *_ = _cube()
    out = decoupling.btc_beta(c)
    # Half the paths have share 1/4, half 9/12 = 3/4; the median of an even split is 1/2.
    assert out["hpc_share_median"] == pytest.approx(0.5)
    assert out["hpc_share_n"] == N


def test_ols_by_hand():
    r = decoupling.ols(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]))
    assert (r["beta"], r["intercept"], r["r2"], r["beta_se"]) == (2.0, 1.0, 1.0, 0.0)


def test_stored_sample_uses_sampled_paths_only():
    from synthetic import synthetic_cube
    c = synthetic_cube(paths=200, months=36, sample=50)
    rows = decoupling.btc_beta(c)["rows"]
    assert [r["n"] + r["n_excluded"] for r in rows] == [50, 50, 50]
    s = c["btc_price"].values[:, 11].astype(np.float64)
    v0 = np.full(50, c.attrs.get("fair_value_per_share", np.nanmean(c["value_per_share"].values)))
    v1 = c["forward_value_per_share"].values[:50, 0]
    ok = (v0 > 0) & np.isfinite(v1)
    x = s[ok] / c.attrs["btc_spot_usd"] - 1.0
    assert rows[0]["beta"] == pytest.approx(sps.linregress(x, v1[ok] / v0[ok] - 1.0).slope)
