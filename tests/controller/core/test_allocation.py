"""The allocation LP: hand-checked optima, and column generation equal to the full LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.allocation import AllocationProblem, solve_allocation, solve_allocation_full


def problem(**overrides) -> AllocationProblem:
    """Two markets, three regions; market 0 may use regions 0,1,2, market 1 only region 2."""
    data = dict(
        pair_market=np.array([0, 0, 0, 1]),
        pair_region=np.array([0, 1, 2, 2]),
        demand=np.array([100.0, 50.0]),
        cost_ms=np.array([10.0, 20.0, 30.0, 15.0]),
        lower=np.zeros(4),
        upper=np.ones(4),
        current=np.zeros(4),
        budget=np.full(2, np.inf),
        capacity=np.array([1000.0, 1000.0, 1000.0]),
        stickiness_ms=2.0,
        overflow_penalty_ms=10_000.0,
    )
    data.update(overrides)
    return AllocationProblem(**data)


@pytest.mark.parametrize(
    ("overrides", "shares", "unserved", "overflow"),
    [
        ({}, [1, 0, 0, 1], [0, 0], [0, 0, 0]),  # cheapest region each
        ({"capacity": np.array([60.0, 1000.0, 1000.0])}, [0.6, 0.4, 0, 1], [0, 0], [0, 0, 0]),  # spill to next
        ({"upper": np.array([0.0, 1, 1, 1])}, [0, 1, 0, 1], [0, 0], [0, 0, 0]),  # region 0 failed / pinned out
        ({"upper": np.array([1.0, 1, 1, 0])}, [1, 0, 0, 0], [0, 1], [0, 0, 0]),  # market 1's only region out
        # 150 sessions on 90 capacity: 60 overflow (reported), none shed; QoS decides where
        ({"capacity": np.array([60.0, 0.0, 30.0])}, [1, 0, 0, 1], [0, 0], [40, 0, 20]),
        (  # disruption budget: market 0 sits on region 2; only 25% may move per tick
            {"current": np.array([0.0, 0, 1, 1]), "budget": np.array([0.25, 0.25])},
            [0.25, 0, 0.75, 1],
            [0, 0],
            [0, 0, 0],
        ),
        (  # the half forced off a region pinned to 50% does not count against the 25% budget
            {"current": np.array([0.0, 0, 1, 1]), "budget": np.array([0.25, 0.25]), "upper": np.array([1, 1, 0.5, 1])},
            [0.75, 0, 0.25, 1],
            [0, 0],
            [0, 0, 0],
        ),
    ],
)
def test_hand_checked_optima(overrides, shares, unserved, overflow):
    for solve in (solve_allocation, solve_allocation_full):
        solution = solve(problem(**overrides))
        assert solution.shares == pytest.approx(shares, abs=1e-7)
        assert solution.unserved_share == pytest.approx(unserved, abs=1e-7)
        assert solution.overflow_sessions == pytest.approx(overflow, abs=1e-6)


@st.composite
def random_problems(draw: st.DrawFn) -> AllocationProblem:
    markets = draw(st.integers(1, 25))
    regions = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    pair_market, pair_region = [], []
    for m in range(markets):
        allowed = rng.choice(regions, size=int(rng.integers(1, regions + 1)), replace=False)
        for r in sorted(allowed):
            pair_market.append(m)
            pair_region.append(int(r))
    k = len(pair_market)
    pm = np.array(pair_market)
    current = np.where(rng.uniform(size=k) < 0.3, rng.uniform(0, 1, size=k), 0.0)
    totals = np.bincount(pm, weights=current, minlength=markets)
    current = current / np.maximum(totals[pm], 1.0)  # weights in force sum to at most 1
    upper = np.where(rng.uniform(size=k) < 0.15, rng.choice([0.0, 0.3, 0.6], size=k), 1.0)
    return AllocationProblem(
        pair_market=pm,
        pair_region=np.array(pair_region),
        demand=rng.uniform(0, 500, size=markets) * (rng.uniform(size=markets) > 0.1),
        cost_ms=rng.uniform(5, 300, size=k),
        lower=np.zeros(k),
        upper=upper,
        current=current,
        budget=np.where(rng.uniform(size=markets) < 0.7, 0.25, np.inf),
        capacity=np.where(rng.uniform(size=regions) < 0.9, rng.uniform(0, 1500, size=regions), np.inf),
        stickiness_ms=float(rng.uniform(0, 5)),
        overflow_penalty_ms=10_000.0,
    )


@settings(max_examples=80, deadline=None)
@given(random_problems())
def test_column_generation_reaches_the_full_lp_optimum(lp):
    fast = solve_allocation(lp)
    full = solve_allocation_full(lp)
    assert fast.objective == pytest.approx(full.objective, rel=1e-7, abs=1e-9)
    # and the shares it returns are feasible for the full problem
    placed = np.bincount(lp.pair_market, weights=fast.shares, minlength=lp.demand.shape[0])
    assert placed + fast.unserved_share == pytest.approx(np.ones(lp.demand.shape[0]), abs=1e-7)
    assert (fast.shares <= lp.upper + 1e-9).all()


# ----- the QoS cost per pair ---------------------------------------------------------------------


def _costs(spec, edit):
    """path_cost_ms over the local spec's paths, each path edited by `edit(path) -> dict of updates`."""
    from controller.core.allocation_problem import path_cost_ms
    from controller.core.path_table import path_table
    from controller.core.spec_tables import spec_tables
    from tests.controller.core.conftest import NOON
    from tests.fakes.fleet_snapshots import healthy_paths, snapshot_for

    paths = [p.model_copy(update=edit(p)) for p in healthy_paths(spec)]
    tables = spec_tables(spec)
    cost = path_cost_ms(spec, tables, path_table(tables, snapshot_for(spec, NOON, {}, paths=paths)))
    return {pair: float(cost[k]) for pair, k in tables.pair_index.items()}, tables


def _penalty(spec, loss_ratio, jitter_ms):
    traffic = spec.traffic
    return loss_ratio * 100 * traffic.loss_penalty_ms_per_percent + jitter_ms * traffic.jitter_penalty_ms_per_ms


def test_excess_common_to_the_fleet_costs_nothing_and_a_hotter_region_only_its_difference(local_spec):
    # Every region runs warm (+10 ms p95 RTT, 0.4% loss, 8 ms jitter on all its paths): that is the
    # fleet's normal now, so every path costs its unloaded RTT and the LP compares geography.
    def warm(p):
        return {"rtt_ms": p.rtt_ms + 10, "loss_ratio": 0.004, "jitter_ms": 8.0}

    costs, _ = _costs(local_spec, warm)
    for (market, region), cost in costs.items():
        assert cost == pytest.approx(local_spec.base_rtt_ms(market, region)), (market, region)

    # sin runs hotter still (+0.5% loss, +4 ms jitter): it costs that difference, not its whole excess.
    def sin_hotter(p):
        updates = warm(p)
        if p.region == "sin":
            updates.update(loss_ratio=0.009, jitter_ms=12.0)
        return updates

    costs, _ = _costs(local_spec, sin_hotter)
    for (market, region), cost in costs.items():
        extra = _penalty(local_spec, 0.005, 4.0) if region == "sin" else 0.0
        assert cost == pytest.approx(local_spec.base_rtt_ms(market, region) + extra), (market, region)


def test_a_sick_region_and_a_sick_route_cost_their_excess(local_spec):
    # sin loses 3% more packets on every path (a sick region); cgk's path for one market has +80 ms
    # (a sick route). Other paths: the healthy fakes' loss 0.1%, jitter 5 ms.
    def edit(p):
        updates = {}
        if p.region == "sin":
            updates["loss_ratio"] = p.loss_ratio + 0.03
        if p.region == "cgk" and p.market == "ID":
            updates["rtt_ms"] = p.rtt_ms + 80
        return updates

    costs, _ = _costs(local_spec, edit)
    for (market, region), cost in costs.items():
        base = local_spec.base_rtt_ms(market, region)
        extra = 0.0
        if region == "sin":
            extra += _penalty(local_spec, 0.03, 0)
        if (market, region) == ("ID", "cgk"):
            extra += 80
        assert cost == pytest.approx(base + extra), (market, region)
