"""PathTable: the snapshot's per-path QoS as arrays aligned with the spec's allowed pairs.

Built once per `make_plan` call (`controller/core/planner.py`) and read by `health.py` (SLO
severity per path and region) and `allocation.py` (QoS cost per pair). A 30 x 250 fleet has
thousands of paths; arrays keep the tick inside its latency budget. Paths the spec does not allow
(they should carry nothing) and unknown markets or regions are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from controller.core.spec_tables import SpecTables
from controller.snapshot import FleetSnapshot

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PathTable:
    """Observed QoS per allowed pair; NaN where the metric is unknown."""

    rtt_ms: FloatArray  # (K,)
    loss_ratio: FloatArray  # (K,)
    jitter_ms: FloatArray  # (K,)
    sessions: FloatArray  # (K,)
    observed: npt.NDArray[np.bool_]  # (K,) at least one metric known
    region_has_samples: npt.NDArray[np.bool_]  # (R,) any path of the region (allowed or not) observed
    ignored_paths: int  # paths outside the allowed pairs
    derived: dict[bytes, FloatArray] = field(default_factory=dict, compare=False, repr=False)
    """What is computed from this table alone (the QoS cost per pair for a set of breaching regions,
    `allocation_problem.path_cost_ms`), kept for the other LPs of the same tick: the table is built
    once per make_plan, so this lives exactly as long as one tick. Read-only arrays."""


def path_table(tables: SpecTables, snapshot: FleetSnapshot) -> PathTable:
    pairs = tables.pair_market.shape[0]
    observations = snapshot.paths
    pair_index = tables.pair_index
    region_index = tables.region_index
    # Column-wise extraction (None becomes NaN in a float array): one pass per field in C-speed
    # comprehensions instead of per-path Python work.
    index = np.fromiter(
        (pair_index.get((p.market, p.region), -1) for p in observations), dtype=np.int64, count=len(observations)
    )
    rtt_all = np.array([p.rtt_ms for p in observations], dtype=np.float64)
    loss_all = np.array([p.loss_ratio for p in observations], dtype=np.float64)
    jitter_all = np.array([p.jitter_ms for p in observations], dtype=np.float64)
    sessions_all = np.array([p.active_sessions for p in observations], dtype=np.float64)
    # An allowed pair's region is in the tables; only the other paths are looked up by name.
    allowed = index >= 0
    region_all = np.full(len(observations), -1, dtype=np.int64)
    region_all[allowed] = tables.pair_region[index[allowed]]
    for i in np.flatnonzero(~allowed):
        region_all[i] = region_index.get(observations[i].region, -1)
    known = ~(np.isnan(rtt_all) & np.isnan(loss_all) & np.isnan(jitter_all))
    region_has_samples = np.zeros(len(tables.region_names), dtype=bool)
    region_has_samples[region_all[known & (region_all >= 0)]] = True

    rtt = np.full(pairs, np.nan)
    loss = np.full(pairs, np.nan)
    jitter = np.full(pairs, np.nan)
    sessions = np.zeros(pairs)
    rtt[index[allowed]] = rtt_all[allowed]
    loss[index[allowed]] = loss_all[allowed]
    jitter[index[allowed]] = jitter_all[allowed]
    sessions[index[allowed]] = sessions_all[allowed]
    observed = ~(np.isnan(rtt) & np.isnan(loss) & np.isnan(jitter))
    return PathTable(
        rtt_ms=rtt,
        loss_ratio=loss,
        jitter_ms=jitter,
        sessions=sessions,
        observed=observed,
        region_has_samples=region_has_samples,
        ignored_paths=int((~allowed).sum()),
    )


def path_severity(tables: SpecTables, paths: PathTable) -> FloatArray:
    """Mix-weighted worst ratio observed/SLO per pair (NaN where nothing is observed).

    Per scenario the worst of RTT, loss and jitter against that scenario's SLO counts; the
    scenarios are weighted by the market's scenario mix. Unknown metrics do not count.
    """
    with np.errstate(invalid="ignore"):
        ratios = np.stack(
            [
                paths.rtt_ms[:, None] / tables.scenario_rtt_slo[None, :],
                paths.loss_ratio[:, None] / tables.scenario_loss_slo[None, :],
                paths.jitter_ms[:, None] / tables.scenario_jitter_slo[None, :],
            ]
        )  # (3, K, S)
    worst = np.max(np.where(np.isnan(ratios), -np.inf, ratios), axis=0)  # (K, S)
    worst = np.where(np.isfinite(worst), worst, 0.0)
    severity = (tables.pair_mix * worst).sum(axis=1)
    return np.where(paths.observed, severity, np.nan)
