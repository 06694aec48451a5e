"""Network hashrate, blocks, subsidy and hashprice (simulator/engine/network.py)."""

import functools

import numpy as np
import pytest

from simulator.engine import network, timegrid
from simulator.rng import Draws

H0 = 1_068.7
HEIGHT0 = 925_344 + 4 * 144  # 2025-12-01 (N-B2 plus four days)
S0 = 84_500.0
SUBSIDY = functools.partial(timegrid.subsidy, halving_heights=timegrid.HALVING_HEIGHTS)


def _flat_inputs(n, months, price=S0, fees=0.03):
    days = timegrid.days_in_month(timegrid.calendar(np.datetime64("2025-12"), months))
    return dict(h0_ehs=H0, height0=HEIGHT0, btc_price=np.full((n, months), price),
                fees_per_block=np.full((n, months), fees), days=days, subsidy_fn=SUBSIDY,
                btc_price0=price)


def test_registry_keys():
    assert list(network.HASHRATE_MODELS) == ["growth", "cost_curve"]


def test_chk1_hashprice():
    # CHK-1: 144 x (3.125 + 0.03) BTC / 1,068,700 PH/s x 84,500 USD = 35.9 USD/PH/day.
    hp = network.hashprice(3.125, 0.03, S0, H0)
    assert hp == pytest.approx(144 * 3.155 * 84_500 / 1_068_700, rel=1e-14)
    assert abs(hp - 35.9) <= 0.1


def test_flat_network_reproduces_chk1_every_month():
    n, months = 3, 24
    out = network.simulate_network("growth", **_flat_inputs(n, months), z_hash=np.zeros((n, months)),
                                   params={"growth_year1": 0.0})
    np.testing.assert_allclose(out.network_hashrate, H0, rtol=1e-14)
    days = timegrid.days_in_month(timegrid.calendar(np.datetime64("2025-12"), months))
    np.testing.assert_allclose(out.blocks, np.broadcast_to(144 * days, (n, months)), rtol=1e-14)
    assert out.block_height.dtype == np.int64
    assert out.block_height[0, 0] == HEIGHT0 + 144 * 31
    np.testing.assert_allclose(out.hashprice, 144 * 3.155 * 84_500 / 1_068_700, rtol=1e-13)
    assert np.all(out.subsidy == 3.125)


def test_growth_zero_vol_follows_the_closed_form():
    n, months, g, k = 2, 60, 0.30, 0.4
    out = network.simulate_network("growth", **_flat_inputs(n, months), z_hash=np.zeros((n, months)),
                                   params={"growth_year1": g, "growth_decay_per_year": k})
    t = np.arange(1, months + 1) / 12
    expected = H0 * np.exp(np.log1p(g) * (1 - np.exp(-k * t)) / k)
    np.testing.assert_allclose(out.network_hashrate[0], expected, rtol=1e-12)
    undecayed = network.simulate_network("growth", **_flat_inputs(n, 12), z_hash=np.zeros((n, 12)),
                                         params={"growth_year1": g})
    assert undecayed.network_hashrate[0, -1] == pytest.approx(H0 * 1.3, rel=1e-13)
    days = timegrid.days_in_month(timegrid.calendar(np.datetime64("2025-12"), 12))
    # Constant monthly growth 1.3^(1/12): difficulty lags half a month, so blocks run
    # 1.3^(1/24) ahead of 144 a day, and the hashprice carries that factor.
    np.testing.assert_allclose(undecayed.blocks[0, 1:], 144 * days[1:] * 1.3 ** (1 / 24), rtol=1e-12)
    hp = undecayed.hashprice[0, 1]
    assert hp == pytest.approx(144 * 3.155 * S0 / (H0 * 1.3 ** (2 / 12) * 1000) * 1.3 ** (1 / 24))


def test_growth_responds_to_lagged_btc_return():
    n, months, beta, lag = 1, 12, 0.5, 3
    inputs = _flat_inputs(n, months)
    inputs["btc_price"][:, 2:] = S0 * 1.2  # +20 % in month 2
    out = network.simulate_network("growth", **inputs, z_hash=np.zeros((n, months)),
                                   params={"growth_year1": 0.0, "btc_beta": beta, "lag_months": lag})
    ln_h = np.log(out.network_hashrate[0] / H0)
    np.testing.assert_allclose(ln_h[: 2 + lag], 0.0, atol=1e-14)
    np.testing.assert_allclose(ln_h[2 + lag:], beta * np.log(1.2), rtol=1e-12)


# Cost curve with zero entry and exit speeds: no feedback, so its increments are the noise.
NOISE_ONLY = {
    "growth": {"growth_year1": 0.0},
    "cost_curve": {"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0, "entry_speed": 0.0,
                   "exit_speed": 0.0},
}


@pytest.mark.parametrize("model", ["growth", "cost_curve"])
def test_noise_has_the_stated_vol_and_btc_correlation(model):
    n, months, vol, rho = 20_000, 24, 0.25, -0.4
    draws = Draws(2, 0, n, months)
    z_btc = draws.normal("btc.z")
    price = S0 * np.exp(np.cumsum(0.45 * np.sqrt(1 / 12) * z_btc, axis=1))
    inputs = _flat_inputs(n, months)
    inputs["btc_price"] = price
    out = network.simulate_network(model, **inputs, z_hash=draws.normal("network.z"),
                                   params={**NOISE_ONLY[model], "vol": vol, "rho_btc": rho},
                                   btc_shock=z_btc)
    inc = np.diff(np.log(out.network_hashrate), axis=1, prepend=np.log(H0))
    m = inc.size
    assert abs(inc.std() - vol * np.sqrt(1 / 12)) < 4 * vol * np.sqrt(1 / 12) / np.sqrt(2 * m)
    # The shock is the BTC price's own normal draw. Standardised per path over the 24
    # months instead (the old look-ahead), the correlation is -0.387 here, 10 SE off.
    c = np.corrcoef(inc.ravel(), z_btc.ravel())[0, 1]
    assert abs(c - rho) < 4 * (1 - rho**2) / np.sqrt(m)
    with pytest.raises(ValueError, match="rho_btc != 0 needs btc_shock"):
        network.simulate_network(model, **inputs, z_hash=draws.normal("network.z"),
                                 params={**NOISE_ONLY[model], "vol": vol, "rho_btc": rho})


@pytest.mark.parametrize("model", ["growth", "cost_curve"])
@pytest.mark.parametrize("t", [1, 12, 23])
def test_noise_does_not_look_ahead(model, t):
    # A crash in the BTC shocks from month t on must leave every earlier month alone.
    n, months = 50, 24
    draws = Draws(12, 0, n, months)
    shock = draws.normal("btc.z")
    crashed = shock.copy()
    crashed[:, t:] = -6.0
    params = ({"growth_year1": 0.3, "vol": 0.2, "rho_btc": 0.5} if model == "growth" else
              {"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0, "entry_speed": 0.2,
               "exit_speed": 0.1, "vol": 0.2, "rho_btc": 0.5})

    def run(btc_shock):
        return network.simulate_network(model, **_flat_inputs(n, months),
                                        z_hash=draws.normal("network.z"), params=params,
                                        btc_shock=btc_shock).network_hashrate

    h, g = run(shock), run(crashed)
    np.testing.assert_array_equal(g[:, :t], h[:, :t])
    assert np.all(g[:, t] < h[:, t])


@pytest.mark.parametrize("price", [60_000.0, 84_500.0, 150_000.0])
def test_cost_curve_converges_to_breakeven_without_noise(price):
    n, months = 2, 120
    inputs = _flat_inputs(n, months, price=price)
    inputs["subsidy_fn"] = lambda h: np.full(np.shape(h), 3.125)
    params = {"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0,
              "entry_speed": 0.25, "exit_speed": 0.15}
    out = network.simulate_network("cost_curve", **inputs, z_hash=np.zeros((n, months)),
                                   params=params)
    breakeven = 25.0 * 24 * 60.0 / 1000  # 36 USD/PH/day
    assert out.hashprice[0, -1] == pytest.approx(breakeven, rel=1e-6)
    # First month by hand: the log gap at H0 closes by the entry or exit speed.
    gap = np.log(network.hashprice(3.125, 0.03, price, H0) / breakeven)
    speed = 0.25 if gap > 0 else 0.15
    assert np.log(out.network_hashrate[0, 0] / H0) == pytest.approx(speed * gap, rel=1e-12)


def test_cost_curve_tracks_falling_breakeven():
    n, months, e = 1, 60, 0.2
    inputs = _flat_inputs(n, months)
    inputs["subsidy_fn"] = lambda h: np.full(np.shape(h), 3.125)
    params = {"marginal_j_per_th": 25.0, "efficiency_improvement_per_year": e,
              "power_usd_per_mwh": 60.0, "entry_speed": 0.5, "exit_speed": 0.5}
    out = network.simulate_network("cost_curve", **inputs, z_hash=np.zeros((n, months)),
                                   params=params)
    be_end = 25.0 * (1 - e) ** ((months - 1) / 12) * 24 * 60 / 1000
    # Steady state by hand: breakeven falls by d = -ln(1 - e)/12 a month. With speed s the
    # pre-entry gap settles at g = d/s, the post-entry gap at g (1 - s), and the block
    # factor sqrt(H_t / H_{t-1}) adds s g / 2 = d/2 in logs.
    d, s = -np.log(1 - e) / 12, 0.5
    assert np.log(out.hashprice[0, -1] / be_end) == pytest.approx(d * (1 - s) / s + d / 2, rel=1e-6)


def test_halving_month_blends_subsidy_like_timegrid():
    n, months = 2, 40
    out = network.simulate_network("growth", **_flat_inputs(n, months), z_hash=np.zeros((n, months)),
                                   params={"growth_year1": 0.3})
    t = timegrid.halving_month_index(out.block_height, 1_050_000)[0]
    assert t > 0
    start = out.block_height[0, t - 1] + (out.blocks[0, :t].sum() + HEIGHT0) % 1
    expected = timegrid.mean_subsidy(np.array([start]), np.array([start + out.blocks[0, t]]))
    assert out.subsidy[0, t] == pytest.approx(expected[0], rel=1e-12)
    assert 1.5625 < out.subsidy[0, t] < 3.125
    assert out.subsidy[0, t - 1] == 3.125 and out.subsidy[0, t + 1] == 1.5625


def test_per_path_parameters():
    inputs = _flat_inputs(2, 12)
    both = network.simulate_network("growth", **inputs, z_hash=np.zeros((2, 12)),
                                    params={"growth_year1": np.array([0.1, 0.5])})
    one = network.simulate_network("growth", **_flat_inputs(1, 12), z_hash=np.zeros((1, 12)),
                                   params={"growth_year1": 0.5})
    np.testing.assert_array_equal(both.network_hashrate[1], one.network_hashrate[0])


def test_bad_params():
    inputs = _flat_inputs(1, 3)
    with pytest.raises(ValueError, match=r"growth params: unknown \['growth'\], missing \['growth_year1'\]"):
        network.simulate_network("growth", **inputs, z_hash=np.zeros((1, 3)), params={"growth": 0.3})
    with pytest.raises(ValueError, match="unknown hashrate model 'difficulty'"):
        network.simulate_network("difficulty", **inputs, z_hash=np.zeros((1, 3)), params={})


@pytest.mark.parametrize(("model", "params"), [
    ("growth", {"growth_year1": 0.3, "growth_decay_per_year": 0.3, "btc_beta": 0.2, "vol": 0.2,
                "rho_btc": 0.3}),
    ("cost_curve", {"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0, "entry_speed": 0.2,
                    "exit_speed": 0.1, "vol": 0.2, "rho_btc": -0.2}),
])
def test_network_is_chunk_invariant(model, params):
    # Nothing may mix paths: a chunk's rows must not depend on the other rows.
    n, months = 3_000, 36

    def run(a, b):
        draws = Draws(4, a, b, months)
        inputs = _flat_inputs(b - a, months)
        z_btc = draws.normal("btc.z")
        inputs["btc_price"] = S0 * np.exp(np.cumsum(0.13 * z_btc, axis=1))
        return network.simulate_network(model, **inputs, z_hash=draws.normal("network.z"),
                                        params=params, btc_shock=z_btc)

    whole = run(0, n)
    for a, b in ((0, 1_000), (1_000, 2_999), (2_999, 3_000)):
        part = run(a, b)
        for field in ("network_hashrate", "block_height", "blocks", "subsidy", "hashprice"):
            np.testing.assert_array_equal(getattr(part, field), getattr(whole, field)[a:b])


@pytest.mark.parametrize("months", [1, 13, 40])
def test_cost_curve_blocks_and_heights_follow_its_hashrate(months):
    # The month loop returns blocks and heights itself: they must be exactly what the
    # growth model derives from a hashrate path (144 days sqrt(H_t / H_{t-1}), summed).
    n = 5
    draws = Draws(3, 0, n, months)
    inputs = _flat_inputs(n, months)
    inputs["btc_price"] = S0 * np.exp(np.cumsum(0.13 * draws.normal("btc.z"), axis=1))
    out = network.simulate_network(
        "cost_curve", **inputs, z_hash=draws.normal("network.z"),
        params={"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0, "entry_speed": 0.2,
                "exit_speed": 0.1, "vol": 0.2})
    h = out.network_hashrate
    ratio = np.concatenate([h[:, :1] / H0, h[:, 1:] / h[:, :-1]], axis=1)
    blocks = np.sqrt(ratio) * (144 * inputs["days"])
    np.testing.assert_array_equal(out.blocks, blocks)
    height = np.cumsum(np.concatenate([HEIGHT0 + blocks[:, :1], blocks[:, 1:]], axis=1), axis=1)
    np.testing.assert_array_equal(out.block_height, np.floor(height).astype(np.int64))


@pytest.mark.parametrize("model", ["growth", "cost_curve"])
def test_subsidy_is_the_mean_over_each_months_blocks(model):
    # Starting heights spread over a halving put it in month 0 for some paths and in later
    # months for others; with flat growth, on the first block of month 1 for path 0.
    n, months = 400, 6
    draws = Draws(5, 0, n, months)
    height0 = 1_050_000 - np.linspace(10.0, 5 * 4_400.0, n)
    height0[0] = 1_050_000 - 1 - 144 * 31  # the halving block opens month 1
    inputs = _flat_inputs(n, months)
    inputs["height0"] = height0
    params = ({"growth_year1": 0.0} if model == "growth" else
              {"marginal_j_per_th": 25.0, "power_usd_per_mwh": 60.0, "entry_speed": 0.2,
               "exit_speed": 0.1, "vol": 0.1})
    out = network.simulate_network(model, **inputs, z_hash=draws.normal("network.z"),
                                   params=params)
    height = height0[:, None] + np.cumsum(out.blocks, axis=1)
    start = np.concatenate([height0[:, None], height[:, :-1]], axis=1)
    np.testing.assert_allclose(out.subsidy, timegrid.mean_subsidy(start, height), rtol=1e-12)
    if model == "growth":
        assert out.subsidy[0, 0] == 3.125 and out.subsidy[0, 1] == 1.5625
    assert np.any((out.subsidy[:, 0] > 1.5625) & (out.subsidy[:, 0] < 3.125))
