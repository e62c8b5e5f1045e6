"""Column generation's first columns: each market's available pairs ranked by cost then index, market by market."""

from __future__ import annotations

import numpy as np

from controller.core.allocation import first_columns_order


def test_the_order_is_lexsort_by_market_then_cost_then_index():
    rng = np.random.default_rng(7)
    for _ in range(500):
        pairs = int(rng.integers(1, 400))
        market = np.sort(rng.integers(0, 40, pairs)) if rng.uniform() < 0.5 else rng.integers(0, 40, pairs)
        cost = rng.integers(0, 6, pairs).astype(float)  # many ties
        cost[rng.uniform(size=pairs) < 0.1] = np.inf
        expected = np.lexsort((np.arange(pairs), cost, market))
        assert np.array_equal(first_columns_order(market, cost), expected)
