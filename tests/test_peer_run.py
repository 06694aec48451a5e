"""A peer group on shared paths (issue 17): one world, every company on it, each as if alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulator.errors import RunError
from simulator.run import simulate, simulate_market, simulate_peers
from simulator.run.sampling import sample_inputs
from simulator.scenario.universe import load_universe

PATHS, SEED = 1_500, 17
WORLD_SERIES = ("btc_price", "fees_per_block", "subsidy", "block_height", "network_hashrate", "hashprice")
NOT_COMPARED = {"created", "runtime_seconds"}


@pytest.fixture(scope="module")
def universe():
    return load_universe("peers")


@pytest.fixture(scope="module")
def peer_run(universe):
    return simulate_peers("peers", paths=PATHS, seed=SEED, store_paths=PATHS)


def _same_cube(a, b) -> list[str]:
    """Variables or manifest entries that differ between two cubes (NaN equals NaN)."""
    bad = [v for v in a.data_vars if v not in b or not np.array_equal(
        a[v].values, b[v].values, equal_nan=a[v].dtype.kind == "f")]
    bad += [v for v in b.data_vars if v not in a]
    bad += [k for k in a.attrs if k not in NOT_COMPARED and not k.startswith("universe_")
            and a.attrs[k] != b.attrs.get(k)]
    return bad


def test_every_company_runs_on_the_market_alone_s_paths(peer_run, universe):
    market = simulate_market(universe[0].scenario, paths=PATHS, seed=SEED, store_paths=PATHS)
    assert list(peer_run) == [c.scenario.company.ticker for c in universe]
    for ticker, cube in peer_run.items():
        for name in WORLD_SERIES:
            np.testing.assert_array_equal(cube[name].values, market[name].values, err_msg=f"{ticker} {name}")
        assert cube.attrs["universe_name"] == "peers"
        assert cube.attrs["universe_companies"].count('"') == 2 * len(universe)
    # The world is random: the shared paths are not one path repeated.
    assert np.std(np.log(market["btc_price"].values[:, -1])) > 0.5


@pytest.mark.parametrize("ticker", ["CLSK", "WULF"])
def test_a_company_in_the_group_is_its_own_run(peer_run, universe, ticker):
    company = next(c for c in universe if c.scenario.company.ticker == ticker)
    alone = simulate(company.scenario, paths=PATHS, seed=SEED, store_paths=PATHS,
                     scenario_yaml=company.yaml_text, scenario_sha256=company.sha256)
    assert _same_cube(peer_run[ticker], alone) == []


def test_a_group_of_one_is_the_company_s_run(universe):
    clsk = universe[0]
    group = simulate_peers([clsk], paths=1_024, seed=3)
    alone = simulate(clsk.scenario, paths=1_024, seed=3, scenario_yaml=clsk.yaml_text,
                     scenario_sha256=clsk.sha256)
    assert list(group) == ["CLSK"]
    assert _same_cube(group["CLSK"], alone) == []


def test_a_peer_run_does_not_depend_on_its_chunks_or_where_they_run(universe):
    from simulator.run.execute import dask_client

    two = [universe[0], universe[2]]
    whole = simulate_peers(two, paths=2_100, seed=8, chunk_paths=4_096)
    split = simulate_peers(two, paths=2_100, seed=8, chunk_paths=1_024)
    with dask_client(workers=2) as client:
        cluster = simulate_peers(two, paths=2_100, seed=8, chunk_paths=1_024, client=client)
    for ticker in whole:
        assert _same_cube(whole[ticker], split[ticker]) == ["chunk_paths"], ticker
        assert _same_cube(split[ticker], cluster[ticker]) == [], ticker


def test_companies_draw_their_own_risks_independently():
    dists = {"market.btc.process.volatility": stats.uniform(0.3, 0.4),
             "company.sga_usd_m_per_year": stats.uniform(100, 50)}
    n = 4_096
    a = sample_inputs(dists, seed=4, start=0, stop=n, n_total=n, company="AAA")
    b = sample_inputs(dists, seed=4, start=0, stop=n, n_total=n, company="BBB")
    np.testing.assert_array_equal(a["market.btc.process.volatility"], b["market.btc.process.volatility"])
    rho = stats.spearmanr(a["company.sga_usd_m_per_year"], b["company.sga_usd_m_per_year"])[0]
    assert abs(rho) < 4 / np.sqrt(n)  # independent: rank correlation within 4 standard errors of 0


@pytest.mark.parametrize("method", ["random", "latin_hypercube", "sobol"])
def test_a_company_s_correlations_never_move_the_world_s_draws(method):
    world = {"market.btc.process.volatility": stats.uniform(0.3, 0.4),
             "market.fees.median_btc_per_block": stats.uniform(0.01, 0.1)}
    own = {"company.sga_usd_m_per_year": stats.uniform(100, 50)}
    corr_world = np.array([[1.0, 0.3], [0.3, 1.0]])
    corr_all = np.array([[1.0, 0.3, 0.6], [0.3, 1.0, 0.0], [0.6, 0.0, 1.0]])
    n = 2_048
    alone = sample_inputs(world, method=method, seed=2, start=0, stop=n, n_total=n, corr=corr_world)
    both = sample_inputs({**own, **world}, method=method, seed=2, start=0, stop=n, n_total=n,
                         corr=corr_all[np.ix_([2, 0, 1], [2, 0, 1])], company="CLSK")
    for key in world:
        np.testing.assert_array_equal(alone[key], both[key], err_msg=key)
    rho = stats.spearmanr(both["company.sga_usd_m_per_year"], both["market.btc.process.volatility"])[0]
    assert abs(rho - 0.6) < 4 / np.sqrt(n)


def test_a_group_must_share_one_world(universe):
    import dataclasses

    clsk, mara = universe[0], universe[1]
    other = mara.scenario.model_copy(update={"market": mara.scenario.market.model_copy(
        update={"btc": mara.scenario.market.btc.model_copy(update={"spot_usd": 90_000})})})
    with pytest.raises(RunError, match="MARA's market section differs from CLSK's"):
        simulate_peers([clsk, dataclasses.replace(mara, scenario=other)], paths=100)
    with pytest.raises(RunError, match="CLSK is in the peer group twice"):
        simulate_peers([clsk, clsk], paths=100)


def _following_the_index(company):
    """``company`` with every converting site's offers at the AI lease-rate index (its resolved
    text too: runs are identified, and their marks reused, by that text's hash)."""
    import copy
    import dataclasses

    sc = company.scenario
    sites = [s if s.conversion is None else s.model_copy(
        update={"conversion": s.conversion.model_copy(update={"rate_follows_index": True})})
        for s in sc.sites]
    resolved = copy.deepcopy(company.resolved)
    for site in resolved["sites"]:
        if site.get("conversion") is not None:
            site["conversion"]["rate_follows_index"] = True
    return dataclasses.replace(company, scenario=sc.model_copy(update={"sites": sites}),
                               resolved=resolved)


def test_the_lease_index_is_built_for_the_group_when_one_company_follows_it(universe):
    # The index is drawn only where a site follows it; in a group, when any company's does.
    # Either way every company is its own run: the follower reads the index, the others not.
    clsk = universe[0]
    wulf = next(c for c in universe if c.scenario.company.ticker == "WULF")
    follower = _following_the_index(clsk)  # CLSK signs months ahead, at the index of the day
    group = simulate_peers([wulf, follower], paths=1_024, seed=5)
    for company in (wulf, follower):
        ticker = company.scenario.company.ticker
        alone = simulate(company.scenario, paths=1_024, seed=5, scenario_yaml=company.yaml_text,
                         scenario_sha256=company.sha256)
        assert _same_cube(group[ticker], alone) == [], ticker
    own_rate = simulate(clsk.scenario, paths=1_024, seed=5, scenario_yaml=clsk.yaml_text,
                        scenario_sha256=clsk.sha256)
    assert not np.array_equal(group["CLSK"]["hpc_revenue"].values, own_rate["hpc_revenue"].values)
