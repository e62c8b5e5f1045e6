"""Column generation's first columns: each market's available pairs ranked by cost then index, market by market."""

from __future__ import annotations

import numpy as np

from controller.core.allocation import cheapest_per_market


def _lexsort_rank(market: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Each pair's rank in its market by (cost, index): the column generation's original definition."""
    pairs = market.shape[0]
    order = np.lexsort((np.arange(pairs), cost, market))
    sorted_market = market[order]
    rank = np.empty(pairs, dtype=np.int64)
    rank[order] = np.arange(pairs) - np.searchsorted(sorted_market, sorted_market, side="left")
    return rank


def test_the_cheapest_per_market_are_the_lexsort_ranks_below_the_count():
    rng = np.random.default_rng(7)
    for trial in range(1500):
        pairs = int(rng.integers(0, 300))
        market = rng.integers(0, 40, pairs)
        if trial % 3:  # market by market, as the spec's tables are: the fast path
            market = np.sort(market)
        cost = rng.integers(0, 6, pairs).astype(float)  # many ties
        cost[rng.uniform(size=pairs) < 0.15] = np.inf
        if trial % 7 == 0 and pairs:
            cost[rng.integers(0, pairs)] = np.nan
        for count in (1, 2, 3):
            expected = _lexsort_rank(market, cost) < count
            assert np.array_equal(cheapest_per_market(market, cost, count), expected), (trial, count)


def test_columnwise_arrays_equal_scipy_csc():
    """The LP's matrix handed to HiGHS: the same start/index/value arrays scipy's csc_matrix builds."""
    from scipy import sparse

    from controller.core.allocation import _columnwise

    rng = np.random.default_rng(3)
    for trial in range(1000):
        n_rows, n_cols = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        entries = int(rng.integers(0, 60))
        rows, cols = rng.integers(0, n_rows, entries), rng.integers(0, n_cols, entries)
        if trial % 2:  # each (row, col) once, in random order: what the LP writes
            keys = np.unique(rows * 1000 + cols)
            rng.shuffle(keys)
            rows, cols = keys // 1000, keys % 1000
        values = np.asarray(rng.normal(size=rows.shape[0]), dtype=np.float64)
        expected = sparse.csc_matrix((values, (rows, cols)), shape=(n_rows, n_cols))
        start, index, value = _columnwise(rows, cols, values, n_rows, n_cols)
        assert np.array_equal(start, expected.indptr), trial
        assert np.array_equal(index, expected.indices), trial
        assert np.array_equal(value, expected.data), trial
