"""Calendar, subsidy, block production and halvings (simulator/engine/timegrid.py)."""

import numpy as np
import pytest

from simulator.engine import timegrid


def test_calendar_and_days():
    cal = timegrid.calendar(np.datetime64("2025-12"), 28)
    assert cal.dtype == np.dtype("datetime64[M]")
    assert cal[0] == np.datetime64("2025-12") and cal[-1] == np.datetime64("2028-03")
    days = timegrid.days_in_month(cal)
    assert days.dtype == np.float64
    assert days[0] == 31 and days[2] == 28  # Dec 2025, Feb 2026
    assert days[26] == 29  # Feb 2028 is a leap month
    assert days[:12].sum() == 365  # Dec 2025 .. Nov 2026


@pytest.mark.parametrize(("height", "expected"), [
    (925_344, 3.125),
    (1_049_999, 3.125),
    (1_050_000, 1.5625),
    (1_259_999, 1.5625),
    (1_260_000, 0.78125),
    (1_470_000, 0.78125),  # only the halvings passed in count
])
def test_subsidy_exact(height, expected):
    assert timegrid.subsidy(height) == expected
    assert timegrid.subsidy(np.array([height]))[0] == expected


def test_subsidy_custom_schedule():
    got = timegrid.subsidy(np.array([0, 10, 20, 30]), halving_heights=(10, 20, 30),
                           initial_subsidy_btc=50.0)
    assert got.tolist() == [50.0, 25.0, 12.5, 6.25]


def test_blocks_in_month():
    assert timegrid.blocks_in_month(1000.0, 1000.0, 30.0) == 144 * 30
    # 4% more hashrate than last month: difficulty set for sqrt(1000 * 1040).
    got = timegrid.blocks_in_month(np.array([1040.0]), np.array([1000.0]), 31.0)
    assert got[0] == pytest.approx(144 * 31 * 1040 / np.sqrt(1000 * 1040), rel=1e-14)


def test_2028_halving_falls_in_april_with_flat_hashrate():
    # Height 925,344 on 2025-11-27 (N-B2); 4 days of 144 blocks to 2025-12-01.
    height0 = 925_344 + 4 * 144
    cal = timegrid.calendar(np.datetime64("2025-12"), 60)
    days = timegrid.days_in_month(cal)
    h = np.full((2, 60), 1_069.0)
    blocks = timegrid.blocks_in_month(h, h, days)
    height = height0 + np.cumsum(blocks, axis=1)
    idx = timegrid.halving_month_index(height, 1_050_000)
    assert idx.tolist() == [28, 28]
    assert cal[idx[0]] == np.datetime64("2028-04")
    # Hand arithmetic: (1,050,000 - 925,920) / 144 = 861.7 days after 2025-12-01.
    day = np.datetime64("2025-12-01") + int(np.ceil((1_050_000 - height0) / 144))
    assert day.astype("datetime64[M]") == np.datetime64("2028-04")
    assert timegrid.halving_month_index(height, 1_260_000).tolist() == [-1, -1]


def test_halving_month_index_per_path():
    height = np.array([[10, 20, 30], [5, 6, 7], [25, 26, 27]])
    assert timegrid.halving_month_index(height, 20).tolist() == [1, -1, 0]


def test_mean_subsidy_blends_the_halving_month():
    # Blocks 1,049,001 .. 1,051,000: 999 at 3.125, then 1,001 at 1.5625.
    got = timegrid.mean_subsidy(np.array([1_049_000.0]), np.array([1_051_000.0]))
    assert got[0] == pytest.approx((999 * 3.125 + 1_001 * 1.5625) / 2_000, rel=1e-14)
    flat = timegrid.mean_subsidy(np.array([925_920.0]), np.array([930_384.0]))
    assert flat[0] == 3.125
    assert timegrid.mean_subsidy(np.array([10.0]), np.array([10.0]))[0] == 3.125
