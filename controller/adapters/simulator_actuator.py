"""SimulatorActuator: the Actuator (and an Observer) over the simulated fleet's HTTP API.

Implements `controller.ports.Actuator` against `sim/http_api.py` (started by `edgectl sim serve`
and the local dev stack); `edgectl/bootstrap.py` builds it from `--simulator-url`. Every call
carries the plan id, actor and reason; the simulator answers with the AuditRecord it kept (what,
why, before, after, changed), which is returned as is. `SimulatorObserver` reads `GET /v1/snapshot`
for runs without Prometheus (fast-forward, tests); `SimulatorActuator` is both.

Errors: a 4xx answer is the caller's mistake (unknown region, invalid body) and raises a
non-retryable `ActuationError` naming what the simulator said; 5xx answers and connection errors
are retried a bounded number of times with doubling waits, then raise a retryable `ActuationError`
(or `ObserverUnavailable` when observing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from controller.audit import AuditRecord
from controller.ports import ActuationError, ObserverUnavailable
from controller.snapshot import FleetSnapshot


@dataclass(frozen=True)
class SimulatorClientSettings:
    """How the adapter talks to the simulator."""

    timeout_seconds: float = 5.0
    """Per HTTP request."""
    attempts: int = 3
    """Tries for 5xx answers and connection errors (4xx answers are never retried)."""
    backoff_seconds: float = 0.2
    """First retry wait, doubled each retry."""


class _TransientFailure(Exception):
    """A 5xx answer or a connection problem: worth another try."""


class _Rejected(Exception):
    """A 4xx answer: the request itself is wrong."""


class SimulatorObserver:
    """Observer reading the simulated fleet's own snapshot (`GET /v1/snapshot`)."""

    def __init__(
        self,
        base_url: str,
        *,
        settings: SimulatorClientSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._settings = settings or SimulatorClientSettings()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, timeout=self._settings.timeout_seconds, trust_env=False, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def observe(self) -> FleetSnapshot:
        try:
            body = self._request("GET", "/v1/snapshot", None)
            return FleetSnapshot.model_validate(body)
        except (_TransientFailure, _Rejected) as error:
            raise ObserverUnavailable(f"simulator at {self.base_url}: GET /v1/snapshot: {error}") from error
        except ValidationError as error:
            problem = f"simulator at {self.base_url}: GET /v1/snapshot: not a FleetSnapshot: {error}"
            raise ObserverUnavailable(problem) from error

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        problem = ""
        for attempt in range(self._settings.attempts):
            try:
                response = self._http.request(method, path, json=body)
            except httpx.HTTPError as error:  # connect, read, timeouts: transient
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    return response.json()
                message = _error_message(response)
                if response.status_code < 500:
                    raise _Rejected(f"HTTP {response.status_code}: {message}")
                problem = f"HTTP {response.status_code}: {message}"
            if attempt + 1 < self._settings.attempts:
                self._sleep(self._settings.backoff_seconds * 2**attempt)
        raise _TransientFailure(f"{problem} (after {self._settings.attempts} attempts)")


class SimulatorActuator(SimulatorObserver):
    """Actuator (and Observer) over the simulated fleet's HTTP API at `base_url`."""

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._act(
            "PUT",
            f"/v1/regions/{region}/desired-nodes",
            {"desired_nodes": desired_nodes, "plan_id": plan_id, "actor": actor, "reason": reason},
        )

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        if deadline.tzinfo is None:
            raise ActuationError(f"drain {region}/{node}: deadline must carry a timezone", retryable=False)
        return self._act(
            "POST",
            f"/v1/regions/{region}/nodes/{node}/drain",
            {"deadline": deadline.isoformat(), "plan_id": plan_id, "actor": actor, "reason": reason},
        )

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        # The simulator itself answers changed=False (state "removed") for a node whose drain already
        # finished, and 404 (-> non-retryable ActuationError) for a node the region never had.
        return self._act(
            "POST",
            f"/v1/regions/{region}/nodes/{node}/undrain",
            {"plan_id": plan_id, "actor": actor, "reason": reason},
        )

    def set_drain_order(
        self, region: str, nodes: list[str], leaving_soon: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord | None:
        path = f"/v1/regions/{region}/drain-order"
        body = {"nodes": nodes, "leaving_soon": leaving_soon, "plan_id": plan_id, "actor": actor, "reason": reason}
        try:
            answer = self._request("PUT", path, body)
        except _Rejected as error:
            raise ActuationError(f"simulator refused PUT {path}: {error}", retryable=False) from error
        except _TransientFailure as error:
            raise ActuationError(f"simulator at {self.base_url} failed PUT {path}: {error}", retryable=True) from error
        if isinstance(answer, dict) and answer.get("changed") is False:
            return None  # the order was already in force
        try:
            return AuditRecord.model_validate(answer)
        except ValidationError as error:
            problem = f"simulator answered PUT {path} without an AuditRecord: {error}"
            raise ActuationError(problem, retryable=False) from error

    def move_sessions(
        self, region: str, market: str, to_region: str, sessions: float, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        return self._act(
            "POST",
            f"/v1/regions/{region}/session-moves",
            {"market": market, "to_region": to_region, "sessions": sessions, "plan_id": plan_id, "actor": actor,
             "reason": reason},
        )  # fmt: skip

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        plain = {market: dict(shares) for market, shares in weights.items()}
        return self._act(
            "PUT", "/v1/traffic-weights", {"weights": plain, "plan_id": plan_id, "actor": actor, "reason": reason}
        )

    def _act(self, method: str, path: str, body: Mapping[str, Any]) -> AuditRecord:
        what = f"{method} {path} (plan {body['plan_id']})"
        try:
            answer = self._request(method, path, body)
        except _Rejected as error:
            raise ActuationError(f"simulator refused {what}: {error}", retryable=False) from error
        except _TransientFailure as error:
            raise ActuationError(f"simulator at {self.base_url} failed {what}: {error}", retryable=True) from error
        try:
            return AuditRecord.model_validate(answer)
        except ValidationError as error:
            problem = f"simulator answered {what} without an AuditRecord: {error}"
            raise ActuationError(problem, retryable=False) from error


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "error" in body:
        field = body.get("field")
        return f"{body['error']}" + (f" (field: {field})" if field else "")
    return str(body)[:500]


__all__ = ["SimulatorActuator", "SimulatorClientSettings", "SimulatorObserver"]
