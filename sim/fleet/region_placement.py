"""Which region each new session goes to: the fleet's region-placement port.

Every step the fleet asks its `RegionPlacement` where the step's arrivals (market x scenario
counts) go. `WeightedPlacement`, the default, routes them by the traffic weights the controller set
through the Actuator API (what benchmarks and tests without a local stack use). On the local stack
`sim.selector_placement.SelectorPlacement` asks the region selector instead, one decision per
session, so what the demo measures is the real steering path. Node-level placement inside a region
(`sim.fleet.nodes`) is the same for both.

The fleet stays the referee: whatever a placement answers is admitted where it says, and an answer
outside the market's allowed regions counts as a residency violation in the fleet's books.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RoutedArrivals:
    routed: FloatArray
    """Market x region x scenario: the sessions sent to each region this step."""
    unrouted: float
    """Sessions no region was given (no weight, or refused by the selector): they are lost."""


class RegionPlacement(Protocol):
    def route(self, arrivals: FloatArray, weights: FloatArray, at: float) -> RoutedArrivals:
        """Place `arrivals` (market x scenario) in regions; `weights` (market x region) are the ones the
        controller set on the fleet; `at` is the fleet's clock (epoch seconds) at the end of the step.
        Called under the fleet's lock, once per step."""
        ...


class WeightedPlacement:
    """Arrivals split by the fleet's traffic weights; a market's weights summing below 1 leave the
    rest unrouted."""

    def route(self, arrivals: FloatArray, weights: FloatArray, at: float) -> RoutedArrivals:
        unrouted = float((arrivals.sum(axis=1) * np.maximum(1.0 - weights.sum(axis=1), 0.0)).sum())
        return RoutedArrivals(arrivals[:, None, :] * weights[:, :, None], unrouted)
