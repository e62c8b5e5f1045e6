"""A small in-memory (optionally file-backed) fleet for the workflow tests: Observer + Actuator.

Implements `controller.ports.Observer` and `controller.ports.Actuator` the simple way: every
market's offered sessions split instantly by the weights in force, nodes ready at once, path RTT =
the spec's base RTT plus a per-region impairment the test sets. Every actuation is recorded with
`changed` telling whether it altered anything, so tests can prove "each action happened once".
With `state_file` the whole state lives in a JSON file (under an flock), so a worker process that
is killed and replaced keeps acting on the same fleet.
"""

from __future__ import annotations

import fcntl
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.audit import AuditRecord
from controller.snapshot import (
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    NodeState,
    PathObservation,
    RegionObservation,
)
from controller.spec import EnvironmentSpec


class WorkflowFakeFleet:
    def __init__(self, spec: EnvironmentSpec, *, demand_share: float = 0.5, state_file: Path | None = None) -> None:
        self._spec = spec
        self._file = state_file
        self._memory: dict[str, Any] | None = None
        if state_file is None or not state_file.exists():
            initial = {
                "desired": {r.name: max(r.min_nodes, 10) for r in spec.regions},
                "weights": {
                    m.code: {r: 1.0 / len(spec.allowed_regions(m.code)) for r in spec.allowed_regions(m.code)}
                    for m in spec.markets
                },
                "offered": {m.code: round(m.demand.peak_sessions * demand_share) for m in spec.markets},
                "extra_rtt_ms": {},
                "actuations": [],
            }
            self._save(initial)

    # ----- state ---------------------------------------------------------------------------------

    def _save(self, state: dict[str, Any]) -> None:
        if self._file is None:
            self._memory = state
        else:
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            tmp.replace(self._file)

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        if self._file is None:
            assert self._memory is not None
            yield self._memory
            return
        lock = self._file.with_suffix(".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            state = json.loads(self._file.read_text())
            yield state
            self._save(state)

    def impair(self, region: str, extra_rtt_ms: float) -> None:
        """Make every path into `region` slower (to trip QoS checks and stop conditions)."""
        with self._state() as state:
            state["extra_rtt_ms"][region] = extra_rtt_ms

    def actuations(self) -> list[AuditRecord]:
        with self._state() as state:
            return [AuditRecord.model_validate(r) for r in state["actuations"]]

    def weights(self) -> dict[str, dict[str, float]]:
        with self._state() as state:
            return {m: dict(w) for m, w in state["weights"].items()}

    # ----- Observer --------------------------------------------------------------------------------

    def observe(self) -> FleetSnapshot:
        with self._state() as state:
            return self._snapshot(state)

    def _snapshot(self, state: dict[str, Any]) -> FleetSnapshot:
        now = datetime.now(UTC)
        per_region: dict[str, int] = {r.name: 0 for r in self._spec.regions}
        paths: list[PathObservation] = []
        for market, weights in state["weights"].items():
            for region, weight in sorted(weights.items()):
                sessions = math.floor(state["offered"][market] * weight)
                per_region[region] += sessions
                rtt = self._spec.base_rtt_ms(market, region) + state["extra_rtt_ms"].get(region, 0.0)
                paths.append(
                    PathObservation(
                        market=market, region=region, rtt_ms=rtt, loss_ratio=0.001, jitter_ms=5.0,
                        active_sessions=sessions,
                    )
                )
        regions = []
        for spec_region in self._spec.regions:
            desired = state["desired"][spec_region.name]
            load = per_region[spec_region.name]
            nodes = [
                NodeObservation(
                    name=f"{spec_region.name}-{i}", state=NodeState.READY,
                    active_sessions=load // max(desired, 1), session_capacity=spec_region.sessions_per_node,
                )
                for i in range(desired)
            ]
            regions.append(
                RegionObservation(
                    region=spec_region.name, desired_nodes=desired, nodes=nodes, active_sessions=load, observed_at=now
                )
            )
        return FleetSnapshot(
            environment=self._spec.name,
            taken_at=now,
            regions=regions,
            paths=paths,
            markets=[MarketDemand(market=m, offered_sessions=n) for m, n in state["offered"].items()],
            current_weights=state["weights"],
        )

    # ----- Actuator --------------------------------------------------------------------------------

    def _record(self, state: dict[str, Any], **fields: Any) -> AuditRecord:
        record = AuditRecord(at=datetime.now(UTC), **fields)
        state["actuations"].append(record.model_dump(mode="json"))
        return record

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        with self._state() as state:
            before = state["desired"][region]
            state["desired"][region] = desired_nodes
            return self._record(
                state, plan_id=plan_id, actor=actor, action="set_desired_nodes", target=region, reason=reason,
                before=before, after=desired_nodes, changed=before != desired_nodes,
            )

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        with self._state() as state:
            return self._record(
                state, plan_id=plan_id, actor=actor, action="drain_node", target=f"{region}/{node}", reason=reason,
                changed=False,
            )

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        # Like drain_node, recorded but a no-op: nodes here are always ready, never draining, and a
        # node that is not draining is left as it is (the Actuator contract).
        with self._state() as state:
            return self._record(
                state, plan_id=plan_id, actor=actor, action="undrain_node", target=f"{region}/{node}", reason=reason,
                changed=False,
            )

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        with self._state() as state:
            before = state["weights"]
            after = {m: dict(w) for m, w in weights.items()}
            state["weights"] = after
            return self._record(
                state, plan_id=plan_id, actor=actor, action="set_traffic_weights", target="all-markets",
                reason=reason, before=before, after=after, changed=before != after,
            )
