"""The per-region medians of the QoS cost are np.median's numbers bit for bit (plan ids depend on them)."""

from __future__ import annotations

import numpy as np

from controller.core.allocation_problem import _region_medians


def test_region_medians_equal_np_median_per_region():
    rng = np.random.default_rng(1)
    for trial in range(2000):
        k = int(rng.integers(1, 60))
        regions = int(rng.integers(1, 8))
        kind = trial % 3
        if kind == 0:
            values = rng.uniform(0, 50, k)
        elif kind == 1:
            values = rng.integers(0, 5, k).astype(float)  # ties
        else:
            values = 7.1 + rng.uniform(0, 1e-3, k)  # (a + b) / 2 rounding
        if trial % 50 == 0:
            values[rng.integers(0, k)] = np.nan if trial % 100 else np.inf
        region = rng.integers(0, regions, k)
        observed = rng.uniform(size=k) < 0.8
        medians, present = _region_medians(values, region, observed, regions)
        expected_present = np.unique(region[observed])
        expected = np.full(regions, np.nan)
        for r in expected_present:
            expected[r] = float(np.median(values[(region == r) & observed]))
        assert np.array_equal(present, expected_present)
        assert np.array_equal(medians, expected, equal_nan=True), trial
