"""Treasury sale policies."""

import numpy as np
import pytest

from simulator.engine import treasury


def call(policy, held, mined, cash, price=100.0, **kw):
    rule = treasury.sell_rule(policy, **kw)
    return rule(np.array(held, float), np.array(mined, float), np.array(cash, float),
                np.array(price, float))


def test_registry_names():
    assert set(treasury.POLICIES) == {"hold", "sell_production", "cash_floor"}


def test_hold_sells_nothing():
    np.testing.assert_array_equal(call("hold", [10, 5], [1, 1], [-1e9, 0]), [0, 0])


def test_sell_production_fraction():
    np.testing.assert_allclose(call("sell_production", [10, 0.2], [4, 4], [0, 0],
                                    fraction=0.25), [1.0, 0.2])


@pytest.mark.parametrize("cash, held, sold", [(1000.0, 50, 0.0), (950.0, 50, 0.5),
                                              (-9000.0, 50, 50.0), (-500.0, 50, 15.0)])
def test_cash_floor(cash, held, sold):
    # Floor 1,000 USD at 100 USD/BTC: sell (1000 - cash) / 100, capped by holdings.
    assert call("cash_floor", [held], [0], [cash], floor_usd=1000.0)[0] == pytest.approx(sold)


def test_per_path_parameters():
    out = call("sell_production", [10, 10], [2, 2], [0, 0], fraction=np.array([0.5, 1.0]))
    np.testing.assert_allclose(out, [1.0, 2.0])
