"""The simulated fleet's HTTP API (`sim/http_api.py`) as the demo scenario reads and drives it, and the
readers that turn its answers into the recording's models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from controller.snapshot import FleetSnapshot
from edgectl.demo.recording import FleetCounters, PlacementStepSample, WeightChange


class FleetApi:
    """The parts of the simulated fleet's HTTP API (`sim.http_api`) the scenario uses."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=5.0)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str) -> Any:
        response = self._http.get(path)
        response.raise_for_status()
        return response.json()

    def snapshot(self) -> FleetSnapshot:
        return FleetSnapshot.model_validate(self._get("/v1/snapshot"))

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/state")
        return result

    def accounting(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/accounting")
        return result

    def actuations(self) -> list[dict[str, Any]]:
        body = self._get("/v1/actuations")
        records: list[dict[str, Any]] = body.get("actuations", []) if isinstance(body, dict) else body
        return records

    def placement(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/v1/placement")
        return result

    def placement_timeline(self) -> list[PlacementStepSample]:
        return [PlacementStepSample.model_validate(step) for step in self._get("/v1/placement/timeline")]

    def add_demand_event(self, market: str, start: datetime, ramp_seconds: float, duration_seconds: float,
                         peak_multiplier: float) -> Any:  # fmt: skip
        response = self._http.post(
            "/v1/events",
            json={
                "market": market,
                "start": start.isoformat(),
                "ramp_seconds": ramp_seconds,
                "duration_seconds": duration_seconds,
                "peak_multiplier": peak_multiplier,
            },
        )
        response.raise_for_status()
        return response.json()

    def inject_impairment(self, region: str, loss_ratio: float) -> str:
        response = self._http.post(
            "/v1/impairments", json={"region": region, "kind": "extra_loss", "magnitude": loss_ratio}
        )
        response.raise_for_status()
        body = response.json()
        return str(body.get("id", "")) if isinstance(body, dict) else ""

    def clear_impairment(self, impairment_id: str) -> None:
        self._http.delete(f"/v1/impairments/{impairment_id}").raise_for_status()


def counters_from_accounting(accounting: dict[str, Any]) -> FleetCounters:
    """The fleet's cumulative counters, whatever subset its accounting reports."""

    def number(*keys: str) -> float | None:
        for key in keys:
            value = accounting.get(key)
            if isinstance(value, int | float):
                return float(value)
        return None

    by_region = accounting.get("rejected_sessions_by_region") or accounting.get("rejected_by_region") or {}
    return FleetCounters(
        residency_violations=number("residency_violations", "residency_violation_sessions"),
        rejected_sessions=number("rejected_sessions", "sessions_rejected"),
        degraded_sessions=number("degraded_sessions", "sessions_degraded"),
        dropped_sessions=number("dropped_sessions", "sessions_dropped"),
        rejected_by_region={k: float(v) for k, v in by_region.items() if isinstance(v, int | float)},
    )


def weight_changes_from_actuations(records: list[dict[str, Any]]) -> list[WeightChange]:
    """Traffic-weight actuations that changed something, from the fleet's audit log, oldest first.

    The log holds `controller.audit.AuditRecord`s; a weights record's `after` is market -> region -> share
    for the markets it named.
    """
    changes = []
    for record in records:
        if record.get("action") != "set_traffic_weights" or not record.get("changed"):
            continue
        weights, at = record.get("after"), record.get("at")
        if isinstance(weights, dict) and at:
            changes.append(
                WeightChange(
                    sim_time=at,
                    weights=weights,
                    plan_id=str(record.get("plan_id", "")),
                    actor=str(record.get("actor", "")),
                )
            )
    return sorted(changes, key=lambda c: c.sim_time)
