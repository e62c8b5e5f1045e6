"""What the simulated fleet shows: FleetSnapshots for the controller, the referee's books, a state view.

Snapshots are built from state without validation (`_trusted`); the books are `sim.fleet.books` models.
Offered demand in a snapshot is what a controller could scrape (`sim.fleet.demand_scrapes`): by
default the exact value (the live stack's exporter; Prometheus adds the real scrape lag), and in the
benchmark (`sim.benchmark.run_policy`) late, noisy scrapes with their history, for every policy alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from controller.snapshot import (
    BackboneObservation,
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    PathObservation,
    RegionObservation,
)
from sim.fleet.books import CrossBorderCohort, FleetAccounting, FleetCounters
from sim.fleet.cross_market import ROLES
from sim.fleet.demand_scrapes import DemandObservation, ScrapedDemand
from sim.fleet.dynamics import _SteppedFleet
from sim.fleet.state import (
    _BOOTING,
    _DRAINING,
    _READY,
    _STATE_NAMES,
    IDLE_CPU,
    FloatArray,
    _RegionBook,
    _trusted,
)


class _ObservedFleet(_SteppedFleet):
    """Snapshots, books and views."""

    _scraped_demand: ScrapedDemand | None = None

    def observe_demand_as(self, settings: DemandObservation) -> None:
        """How snapshots show offered demand from now on (default: `DemandObservation.exact()`)."""
        with self._lock:
            self._scraped_demand = ScrapedDemand(self.demand, list(self.markets), self.seed, settings)

    def _demand_view(self) -> ScrapedDemand:
        if self._scraped_demand is None:
            self._scraped_demand = ScrapedDemand(self.demand, list(self.markets), self.seed, DemandObservation.exact())
        return self._scraped_demand

    def snapshot(self) -> FleetSnapshot:
        """The FleetSnapshot the decision core consumes, built from state (never stale)."""
        with self._lock:
            now = self.now
            regions: list[RegionObservation] = []
            loads = self._sessions.sum(axis=1)
            rounded = np.rint(loads).astype(np.int64).tolist()
            capacity = self._spn[self._node_region]
            cpu = np.where(
                self._node_state == _BOOTING, 0.0, np.round(IDLE_CPU + (1 - 2 * IDLE_CPU) * loads / capacity, 4)
            ).tolist()
            states = [_STATE_NAMES[state] for state in self._node_state.tolist()]
            region_of = self._node_region.tolist()
            by_region: list[list[NodeObservation]] = [[] for _ in self._books]
            for i, name in enumerate(self._node_names):
                by_region[region_of[i]].append(
                    _trusted(
                        NodeObservation,
                        name=name,
                        state=states[i],
                        active_sessions=rounded[i],
                        session_capacity=self._books[region_of[i]].spec.sessions_per_node,
                        cpu_utilisation=cpu[i],
                    )
                )
            region_sessions = np.bincount(self._node_region, weights=loads, minlength=len(self._books))
            for book in self._books:
                regions.append(
                    _trusted(
                        RegionObservation,
                        region=book.spec.name,
                        desired_nodes=book.desired,
                        nodes=by_region[book.index],
                        active_sessions=round(float(region_sessions[book.index])),
                        sessions_dropped_total=float(self._dropped[book.index]),
                        observed_at=now,
                        stale=False,
                    )
                )
            rtt, loss, jitter = self._path_qos()
            per_path = self._paths.sum(axis=2)
            if self._cross is not None:
                per_path = per_path + self._cross.slots_by_market()
            paths = [
                _trusted(
                    PathObservation,
                    market=market,
                    region=region_name,
                    rtt_ms=round(float(rtt[m, r]), 3),
                    loss_ratio=round(float(loss[m, r]), 6),
                    jitter_ms=round(float(jitter[m, r]), 3),
                    active_sessions=round(float(per_path[m, r])),
                )
                for m, market in enumerate(self.markets)
                for r, region_name in enumerate(self.region_names)
            ]
            backbone_rtt, backbone_loss = self.backbone_qos()
            backbone = [
                _trusted(
                    BackboneObservation,
                    region=self.region_names[i],
                    peer_region=self.region_names[j],
                    rtt_ms=round(float(backbone_rtt[i, j]), 3),
                    loss_ratio=round(float(backbone_loss[i, j]), 6),
                )
                for i in range(len(self.region_names))
                for j in range(i + 1, len(self.region_names))
            ]
            scraped = self._demand_view()
            offered, slope, age = scraped.observe(self._t)
            offered_list, slope_list = offered.tolist(), slope.tolist()
            markets = [
                _trusted(
                    MarketDemand,
                    market=market,
                    offered_sessions=max(0.0, offered_list[m]),
                    trend_sessions_per_second=slope_list[m],
                    sample_age_seconds=age,
                )
                for m, market in enumerate(self.markets)
            ]
            return _trusted(
                FleetSnapshot,
                environment=self.spec.name,
                taken_at=now,
                regions=regions,
                paths=paths,
                markets=markets,
                backbone=backbone,
                demand_history=scraped.history(self._t),
                current_weights=self._weights_dict(),
                stale=False,
                stale_reasons=[],
                implausible_samples={},
                implausible_examples=[],
            )

    def _weights_dict(self, rows: list[int] | None = None) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        for m in rows if rows is not None else range(len(self.markets)):
            result[self.markets[m]] = {
                self.region_names[r]: round(float(w), 9) for r, w in enumerate(self._weights[m]) if w > 0
            }
        return result

    def desired_nodes(self, region: str) -> int:
        with self._lock:
            return self._region(region).desired

    def accounting(self) -> FleetAccounting:
        with self._lock:
            return FleetAccounting(
                environment=self.spec.name,
                trace=f"{self.trace.name}@{self.trace.version}",
                seed=self.seed,
                started_at=self.started_at,
                now=self.now,
                simulated_seconds=self._t - self._t0,
                node_hours=float(self._node_seconds.sum()) / 3600.0,
                node_hours_by_region={
                    name: float(self._node_seconds[i]) / 3600.0 for i, name in enumerate(self.region_names)
                },
                draining_node_hours=self._draining_seconds / 3600.0,
                offered_session_minutes=self._offered_minutes,
                served_session_minutes=self._served_minutes,
                admitted_sessions=self._admitted,
                rejected_sessions=float(self._rejected.sum()),
                degraded_sessions=float(self._degraded.sum()),
                dropped_sessions=float(self._dropped.sum()),
                lost_sessions=float(self._lost.sum()),
                failed_sessions=float(self._failed.sum()) + self._unrouted,
                residency_violations=float(self._violations.sum()),
                qos_slo_session_minutes=self._qos_minutes,
                capacity_slo_session_minutes=self._capacity_minutes,
                unserved_session_minutes=self._unserved_minutes,
                **self._cross_border_books(),
                active_sessions=float(self._paths.sum())
                + (float(self._cross.active.sum()) if self._cross is not None else 0.0),
                peak_active_sessions=self._peak_active,
            )

    def counters(self) -> FleetCounters:
        with self._lock:
            pairs = [(m, r) for m in range(len(self.markets)) for r in range(len(self.region_names))]

            def by_path(values: FloatArray) -> dict[tuple[str, str], float]:
                return {(self.markets[m], self.region_names[r]): float(values[m, r]) for m, r in pairs}

            return FleetCounters(
                rejected=by_path(self._rejected),
                degraded=by_path(self._degraded),
                residency_violations=by_path(self._violations),
                dropped={name: float(self._dropped[i]) for i, name in enumerate(self.region_names)},
                **self._cross_border_counters(),
            )

    def cross_border_sessions(self) -> list[CrossBorderCohort]:
        """The active cross-market sessions per (host, guest, host region, guest region), with their e2e QoS now."""
        with self._lock:
            cross = self._cross
            if cross is None:
                return []
            rtt, loss, _ = self._path_qos()
            backbone_rtt, backbone_loss = self.backbone_qos()
            e2e_rtt, e2e_loss = cross.e2e_qos(rtt, loss, backbone_rtt, backbone_loss)
            pairs = cross.active.sum(axis=3)
            flows = cross.flows
            return [
                CrossBorderCohort(
                    host=self.markets[flows.host[f]],
                    guest=self.markets[flows.guest[f]],
                    host_region=self.region_names[a],
                    guest_region=self.region_names[b],
                    sessions=float(pairs[f, a, b]),
                    e2e_rtt_ms=round(float(e2e_rtt[f, a, b]), 3),
                    e2e_loss_ratio=round(float(e2e_loss[f, a, b]), 6),
                )
                for f, a, b in zip(*np.nonzero(pairs > 1e-6), strict=True)
            ]

    def _cross_border_books(self) -> dict[str, float]:
        cross = self._cross
        if cross is None:
            return {}
        return {
            "cross_border_session_minutes": float(cross.session_minutes.sum()),
            "cascaded_session_minutes": float(cross.cascaded_minutes.sum()),
            "e2e_qos_slo_session_minutes": float(cross.e2e_slo_minutes.sum()),
            "participant_residency_violations": float(cross.participant_violations.sum()),
        }

    def _cross_border_counters(self) -> dict[str, Any]:
        cross = self._cross
        if cross is None:
            return {}
        flows = cross.flows
        per_pair = {
            (self.markets[h], self.markets[g]): (
                float(cross.session_minutes[f]),
                float(cross.cascaded_minutes[f]),
                float(cross.e2e_slo_minutes[f]),
            )
            for f, (h, g) in enumerate(zip(flows.host.tolist(), flows.guest.tolist(), strict=True))
        }
        violations = {
            (self.markets[m], self.region_names[r], role): float(cross.participant_violations[i, m, r])
            for i, role in enumerate(ROLES)
            for m, r in zip(*np.nonzero(cross.participant_violations[i]), strict=True)
        }
        return {"cross_border": per_pair, "participant_residency_violations": violations}

    def state(self) -> dict[str, Any]:
        """A compact JSON-able view for `GET /v1/state` and humans."""
        with self._lock:
            return {
                "environment": self.spec.name,
                "trace": f"{self.trace.name}@{self.trace.version}",
                "seed": self.seed,
                "now": self.now.isoformat(),
                "regions": {book.spec.name: self._region_view(book) for book in self._books},
                "weights": self._weights_dict(),
                "impairments": {
                    i: {**imp.model_dump(mode="json"), "active": i in self._active_impairments}
                    for i, imp in self._impairments.items()
                },
            }

    def _region_view(self, book: _RegionBook) -> dict[str, Any]:
        in_region = self._node_region == book.index
        states = self._node_state[in_region]
        return {
            "desired_nodes": book.desired,
            "booting": int((states == _BOOTING).sum()),
            "ready": int((states == _READY).sum()),
            "draining": int((states == _DRAINING).sum()),
            "active_sessions": round(float(self._sessions[in_region].sum()), 1),
            "outage": bool(self._outage[book.index]),
        }
