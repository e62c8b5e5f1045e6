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
