"""Path QoS model: p95 RTT, loss and jitter of a market->region path from geography and load.

Called by `sim.fleet.SimulatedFleet` every step (vectorised over all paths with numpy) to decide
which session-minutes breach their scenario SLO, and to report path QoS in snapshots and
`/metrics`. The shapes are deliberately simple and monotone, so a policy that keeps regions
below ~75% utilisation sees base QoS and one that runs them hot sees it degrade:

- RTT p95 = 1.2 x base RTT (`EnvironmentSpec.base_rtt_ms`, the median) + an M/M/1-like queueing
  term `QUEUE_MS * u / (1 - u)` (u capped at 0.99): +11.7 ms at 70%, +45 ms at 90%, +95 ms at 95%.
- loss = 0.2% + 4% x ((u - 0.75) / 0.25)² above 75% utilisation: 4.2% at 100%.
- jitter = 3 ms + 5% of base RTT + 25 ms x ((u - 0.7) / 0.3)² above 70%: +25 ms at 100%.
Impairments add their extra loss/jitter/RTT on top; an outage reports loss 1.0.

Backbone paths between two regions' SFUs (cross-border cascades) do not queue with a region's load
(the cloud backbone is provisioned apart from the SFUs): p95 RTT = 1.05 x the unloaded backbone RTT
(`EnvironmentSpec.backbone_rtt_ms`), loss 0.05%, plus a backbone impairment's extra RTT and loss.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

QUEUE_MS = 5.0
RTT_P95_OVER_MEDIAN = 1.2
BASE_LOSS = 0.002
BASE_JITTER_MS = 3.0

FloatArray = NDArray[np.float64]


def rtt_p95_ms(base_rtt: FloatArray, utilisation: FloatArray) -> FloatArray:
    u = np.minimum(np.maximum(utilisation, 0.0), 0.99)
    return RTT_P95_OVER_MEDIAN * base_rtt + QUEUE_MS * u / (1.0 - u)


def loss_ratio(utilisation: FloatArray) -> FloatArray:
    over = np.maximum((utilisation - 0.75) / 0.25, 0.0)
    return np.asarray(BASE_LOSS + 0.04 * over**2, dtype=np.float64)


def jitter_ms(base_rtt: FloatArray, utilisation: FloatArray) -> FloatArray:
    over = np.maximum((utilisation - 0.7) / 0.3, 0.0)
    return np.asarray(BASE_JITTER_MS + 0.05 * base_rtt + 25.0 * over**2, dtype=np.float64)


BACKBONE_RTT_P95_OVER_MEDIAN = 1.05
BACKBONE_BASE_LOSS = 0.0005


def backbone_rtt_p95_ms(base_rtt: FloatArray, extra_ms: FloatArray) -> FloatArray:
    return np.asarray(BACKBONE_RTT_P95_OVER_MEDIAN * base_rtt + extra_ms, dtype=np.float64)


def backbone_loss_ratio(extra_loss: FloatArray) -> FloatArray:
    return np.asarray(np.minimum(BACKBONE_BASE_LOSS + extra_loss, 1.0), dtype=np.float64)
