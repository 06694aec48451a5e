"""Each engine registry and the scenario union that selects from it name the same variants."""

from __future__ import annotations

import typing

from simulator.engine import market, network, treasury
from simulator.scenario import company_models, market_models


def _literals(union) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["kind"].annotation)[0] for m in members}


def test_price_processes_match_scenario_union():
    assert set(market.PRICE_PROCESSES) == _literals(market_models.PriceProcess)
    assert set(market.PRICE_SHOCKS) == set(market.PRICE_PROCESSES)


def test_hashrate_models_match_scenario_union():
    assert set(network.HASHRATE_MODELS) == _literals(market_models.HashrateModel)


def test_treasury_policies_match_scenario_union():
    assert set(treasury.POLICIES) == _literals(company_models.TreasuryPolicy)
