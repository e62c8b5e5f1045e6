"""Plan latency WITH cross-market pairs: step 4 of `bench/plan_latency.py` (its own module for size).

The fleet of `bench/cross_border_benchmark.py` (`synthetic_cross_border_spec`: the 30-region x
250-market synthetic spec plus 2 cross-market flows hosted by each market, 500 pairs, 3 scenarios),
a snapshot observing every backbone path (10% above its unloaded RTT, 0.1% loss) with
`SICK_BACKBONE_PATH` failed (8% loss), the same failover pin as the row without pairs; timed over the
whole `make_plan`: the single-market plan, the cross-border placement and the guest-side slots in
the node targets. Target: median < 100 ms (issue 18).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bench.cross_border_benchmark import synthetic_cross_border_spec
from bench.synthetic_spec import synthetic_snapshot
from controller.core.backbone_health import unloaded_backbone_rtt
from controller.core.planner import make_plan
from controller.plan import PlanningOverrides
from controller.snapshot import BackboneObservation
from controller.spec import EnvironmentSpec

CROSS_BORDER_TARGET_MS = 100.0
SICK_BACKBONE_PATH = ("r00", "r01")


@dataclass
class CrossBorderTiming:
    """make_plan on the fleet with cross-market pairs (module doc, step 4)."""

    pairs: int
    flows: int
    median_ms: float
    median_cpu_ms: float
    p90_ms: float
    load_average: float
    cascaded_sessions: float
    unserved_sessions: float

    @property
    def ok(self) -> bool:
        return self.median_ms < CROSS_BORDER_TARGET_MS


def observed_backbone(spec: EnvironmentSpec) -> list[BackboneObservation]:
    """Every backbone path observed (10% above its unloaded RTT, 0.1% loss), SICK_BACKBONE_PATH at 8% loss."""
    rtt = unloaded_backbone_rtt(spec)
    names = [r.name for r in spec.regions]
    return [
        BackboneObservation(
            region=a,
            peer_region=b,
            rtt_ms=float(rtt[i, j]) * 1.1,
            loss_ratio=0.08 if (a, b) == SICK_BACKBONE_PATH else 0.001,
        )
        for i, a in enumerate(names)
        for j, b in enumerate(names)
        if i < j
    ]


def measure_cross_border(runs: int, overrides: PlanningOverrides) -> CrossBorderTiming:
    """The whole make_plan on the fleet with cross-market pairs (module doc, step 4)."""
    spec = synthetic_cross_border_spec()
    snapshot = synthetic_snapshot(spec).model_copy(update={"backbone": observed_backbone(spec)})
    now: datetime = snapshot.taken_at
    previous = make_plan(spec, snapshot, None, now, overrides)  # warm caches (the flow tables are per spec)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    times, cpu_times = [], []
    plan = previous
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = make_plan(spec, snapshot, previous, now, overrides)
        times.append((time.perf_counter() - start) * 1000.0)
        cpu_times.append((time.process_time() - cpu_start) * 1000.0)
    cross = plan.cross_border
    assert cross is not None and cross.compliant, "the cross-border plan must exist and be compliant"
    return CrossBorderTiming(
        pairs=len(cross.pairs),
        flows=sum(len(p.why) for p in cross.pairs),
        median_ms=statistics.median(times),
        median_cpu_ms=statistics.median(cpu_times),
        p90_ms=float(np.percentile(times, 90)),
        load_average=load,
        cascaded_sessions=sum(p.sessions for q in cross.pairs for p in q.placements if p.cascaded),
        unserved_sessions=cross.unserved_sessions,
    )
