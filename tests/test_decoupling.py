"""BTC beta and R² by forward year, on data with a known elasticity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from simulator import cube
from simulator.analysis import decoupling

N, MONTHS = 4_000, 36
BETAS = (1.5, 0.8, 0.3)
SIGMA_E = 0.2
VOL = 0.45


def _cube(values_fn=None):
    rng = np.random.default_rng(11)
    t = np.arange(1, MONTHS + 1) / 12
    z = rng.standard_normal((N, MONTHS))
    ln_s = np.log(84_500) + np.cumsum(-VOL**2 / 2 / 12 + VOL * np.sqrt(1 / 12) * z, axis=1)
    fwd = np.empty((N, 3))
    for j, b in enumerate(BETAS):
        fwd[:, j] = np.exp(0.5 + b * (ln_s[:, 12 * (j + 1) - 1] - np.log(84_500))
                           + SIGMA_E * rng.standard_normal(N))
    if values_fn is not None:
        values_fn(fwd)
    arrays = {"btc_price": np.exp(ln_s), "value_per_share_forward": fwd,
              "pv_mining": np.full(N, 3.0), "pv_hpc": np.where(np.arange(N) % 2, 1.0, 9.0)}
    return cube.assemble(arrays, calendar=np.arange(np.datetime64("2025-12"),
                                                    np.datetime64("2025-12") + MONTHS),
                         sites=[], forward_years=[1, 2, 3]), ln_s, fwd, t


def test_known_beta_and_r2():
    c, ln_s, fwd, t = _cube()
    out = decoupling.btc_beta(c)
    for j, (row, b) in enumerate(zip(out["rows"], BETAS, strict=True)):
        assert row["year"] == j + 1 and row["month"] == 12 * (j + 1) - 1
        assert row["n"] == N and row["n_dropped"] == 0
        assert abs(row["beta"] - b) < 4 * row["beta_se"]
        # SE(beta) ≈ sigma_e / (sd(ln S) sqrt(n)); ln S_y has variance VOL² · y.
        se_true = SIGMA_E / (VOL * np.sqrt(j + 1) * np.sqrt(N))
        assert row["beta_se"] == pytest.approx(se_true, rel=0.1)
        var_x = VOL**2 * (j + 1)
        r2_true = b**2 * var_x / (b**2 * var_x + SIGMA_E**2)
        assert row["r2"] == pytest.approx(r2_true, abs=0.02)
        # The cube stores [path, time] series as float32: regress on the stored prices.
        stored = c["btc_price"].values[:, row["month"]].astype(np.float64)
        ref = sps.linregress(np.log(stored), np.log(fwd[:, j]))
        assert row["beta"] == pytest.approx(ref.slope, rel=1e-10)
        assert row["beta_se"] == pytest.approx(ref.stderr, rel=1e-10)
        assert row["r2"] == pytest.approx(ref.rvalue**2, rel=1e-10)


def test_non_positive_and_nan_values_are_dropped_and_counted():
    def spoil(fwd):
        fwd[:10, 0] = -1.0
        fwd[10:15, 0] = 0.0
        fwd[15:17, 0] = np.nan
    c, *_ = _cube(spoil)
    row = decoupling.btc_beta(c)["rows"][0]
    assert (row["n"], row["n_dropped"]) == (N - 17, 17)


def test_horizon_beyond_time_axis_gives_nan_row():
    c, *_ = _cube()
    c = c.isel(time=slice(0, 24))
    row = decoupling.btc_beta(c)["rows"][2]
    assert np.isnan(row["beta"]) and row["n"] == 0 and row["n_dropped"] == N


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
    assert [r["n"] + r["n_dropped"] for r in rows] == [50, 50, 50]
    x = np.log(c["btc_price"].values[:, 11])
    y = np.log(c["value_per_share_forward"].values[:50, 0])
    ok = np.isfinite(y)
    assert rows[0]["beta"] == pytest.approx(sps.linregress(x[ok], y[ok]).slope)
