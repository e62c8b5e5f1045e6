"""HTTP face of the simulated fleet in real time: Prometheus `/metrics` plus the actuation API.

Role: stands in for a real fleet's two interfaces (node exporters scraped by Prometheus, and the
cloud/Kubernetes API that takes scale, drain and weight commands). Called by a real Prometheus
(scrape), by `controller/adapters/simulator_actuator.py` (actuations), by on-call tools and tests
(impairments, events). Started by `edgectl sim serve` and the local dev stack. Binds 127.0.0.1.

Routes (JSON in and out; errors are `{"error": "...", "field": "..."}`: 400 bad JSON, 404 unknown
route/region/node/impairment, 405 wrong method, 422 invalid body):
  GET    /metrics                                    Prometheus exposition (controller.metric_names)
  GET    /v1/state | /v1/snapshot | /v1/accounting | /v1/actuations
  PUT    /v1/regions/{region}/desired-nodes          {"desired_nodes", "plan_id", "actor", "reason"}
  POST   /v1/regions/{region}/nodes/{node}/drain     {"deadline", "plan_id", "actor", "reason"}
  POST   /v1/regions/{region}/nodes/{node}/undrain   {"plan_id", "actor", "reason"}
  PUT    /v1/traffic-weights                         {"weights": {market: {region: share}}, ...}
  POST   /v1/impairments                             Impairment JSON -> 201 {"id"}
  DELETE /v1/impairments/{id}
  POST   /v1/events                                  {"market", "peak_multiplier", "ramp_seconds",
                                                      "duration_seconds", "start": iso|null}
Actuation responses are the AuditRecord (`before`, `after`, `changed`); repeating a PUT is a no-op.

The clock (`RealTimeClock`) advances the fleet by `speed` simulated seconds per wall second.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from sim.exporter import fleet_registry
from sim.fleet import InvalidActuationError, SimulatedFleet, UnknownTargetError
from sim.impairments import Impairment


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Attribution(_Body):
    plan_id: str = Field(min_length=1, description="Plan or workflow step asking for the action.")
    actor: str = Field(min_length=1, description="Who or what acts.")
    reason: str = Field(default="", description="Why.")


class DesiredNodesBody(_Attribution):
    desired_nodes: int = Field(ge=0, strict=True, description="Absolute node count.")


class DrainBody(_Attribution):
    deadline: AwareDatetime = Field(description="Remove the node at this time even if sessions remain.")


class UndrainBody(_Attribution):
    pass


class TrafficWeightsBody(_Attribution):
    weights: dict[str, dict[str, float]] = Field(description="market -> region -> share.")


class DemandEventBody(_Body):
    market: str = Field(description="Market code.")
    peak_multiplier: float = Field(gt=0, le=50, description="Demand multiplier on the plateau.")
    ramp_seconds: float = Field(default=600, ge=0, description="Ramp up (and down) time.")
    duration_seconds: float = Field(gt=0, description="Seconds from start until the ramp down.")
    start: AwareDatetime | None = Field(default=None, description="Start; null: now.")


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _parse(model: type[_Body] | type[Impairment], raw: bytes) -> Any:
    try:
        data = json.loads(raw or b"null")
    except json.JSONDecodeError as error:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {error}") from error
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{field or 'body'}: {first['msg']}", field) from error


class RealTimeClock:
    """Advances the fleet by `speed` simulated seconds per wall second, in a daemon thread."""

    def __init__(self, fleet: SimulatedFleet, speed: float = 1.0, interval_seconds: float = 0.2) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.fleet = fleet
        self.speed = speed
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval_seconds):
            now = time.monotonic()
            self.fleet.advance((now - last) * self.speed)
            last = now


Route = tuple[str, re.Pattern[str], Callable[..., tuple[HTTPStatus, Any]]]


class SimulatorServer:
    """The fleet behind a ThreadingHTTPServer on 127.0.0.1 (port 0: the OS picks a free one)."""

    def __init__(self, fleet: SimulatedFleet, *, port: int = 0, speed: float = 1.0, run_clock: bool = True) -> None:
        self.fleet = fleet
        self.registry = fleet_registry(fleet)
        self.clock = RealTimeClock(fleet, speed) if run_clock else None
        self._routes: list[Route] = [
            ("GET", re.compile(r"/v1/state"), lambda: (HTTPStatus.OK, fleet.state())),
            ("GET", re.compile(r"/v1/snapshot"), lambda: (HTTPStatus.OK, fleet.snapshot().model_dump(mode="json"))),
            ("GET", re.compile(r"/v1/accounting"), lambda: (HTTPStatus.OK, fleet.accounting().model_dump(mode="json"))),
            ("GET", re.compile(r"/v1/actuations"), self._actuations),
            ("GET", re.compile(r"/healthz"), lambda: (HTTPStatus.OK, {"ok": True, "now": fleet.now.isoformat()})),
            ("PUT", re.compile(r"/v1/regions/(?P<region>[^/]+)/desired-nodes"), self._desired_nodes),
            ("POST", re.compile(r"/v1/regions/(?P<region>[^/]+)/nodes/(?P<node>[^/]+)/drain"), self._drain),
            ("POST", re.compile(r"/v1/regions/(?P<region>[^/]+)/nodes/(?P<node>[^/]+)/undrain"), self._undrain),
            ("PUT", re.compile(r"/v1/traffic-weights"), self._weights),
            ("POST", re.compile(r"/v1/impairments"), self._add_impairment),
            ("DELETE", re.compile(r"/v1/impairments/(?P<impairment_id>[^/]+)"), self._clear_impairment),
            ("POST", re.compile(r"/v1/events"), self._add_event),
        ]
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._serve_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorServer:
        """Serve in background threads; returns self."""
        if self.clock is not None:
            self.clock.start()
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        if self.clock is not None:
            self.clock.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- handlers -------------------------------------------------------------------------

    def _actuations(self) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, [record.model_dump(mode="json") for record in list(self.fleet.actuations)]

    def _desired_nodes(self, body: bytes, region: str) -> tuple[HTTPStatus, Any]:
        request: DesiredNodesBody = _parse(DesiredNodesBody, body)
        record = self.fleet.set_desired_nodes(
            region, request.desired_nodes, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return HTTPStatus.OK, record.model_dump(mode="json")

    def _drain(self, body: bytes, region: str, node: str) -> tuple[HTTPStatus, Any]:
        request: DrainBody = _parse(DrainBody, body)
        record = self.fleet.drain_node(
            region, node, request.deadline, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return HTTPStatus.OK, record.model_dump(mode="json")

    def _undrain(self, body: bytes, region: str, node: str) -> tuple[HTTPStatus, Any]:
        request: UndrainBody = _parse(UndrainBody, body)
        record = self.fleet.undrain_node(
            region, node, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return HTTPStatus.OK, record.model_dump(mode="json")

    def _weights(self, body: bytes) -> tuple[HTTPStatus, Any]:
        request: TrafficWeightsBody = _parse(TrafficWeightsBody, body)
        record = self.fleet.set_traffic_weights(
            request.weights, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return HTTPStatus.OK, record.model_dump(mode="json")

    def _add_impairment(self, body: bytes) -> tuple[HTTPStatus, Any]:
        impairment: Impairment = _parse(Impairment, body)
        return HTTPStatus.CREATED, {"id": self.fleet.inject_impairment(impairment)}

    def _clear_impairment(self, body: bytes, impairment_id: str) -> tuple[HTTPStatus, Any]:
        self.fleet.clear_impairment(impairment_id)
        return HTTPStatus.OK, {"id": impairment_id, "cleared": True}

    def _add_event(self, body: bytes) -> tuple[HTTPStatus, Any]:
        request: DemandEventBody = _parse(DemandEventBody, body)
        event = self.fleet.add_demand_event(
            request.market, request.peak_multiplier, request.ramp_seconds, request.duration_seconds, request.start
        )
        return HTTPStatus.CREATED, event.model_dump(mode="json")

    # ----- plumbing -------------------------------------------------------------------------

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[HTTPStatus, Any]:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            try:
                if method == "GET":
                    return handler(**match.groupdict())
                return handler(body, **match.groupdict())
            except ApiError as error:
                return error.status, {"error": str(error), "field": error.field}
            except UnknownTargetError as error:
                return HTTPStatus.NOT_FOUND, {"error": str(error), "field": error.field}
            except InvalidActuationError as error:
                return HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(error), "field": error.field}
        if allowed:
            return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed on {path} (allowed: {allowed})"}
        return HTTPStatus.NOT_FOUND, {"error": f"no route {method} {path}", "field": None}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and CLI own stdout
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self, method: str) -> None:
                body = self._body()
                if method == "GET" and self.path.split("?", 1)[0] == "/metrics":
                    self._send(HTTPStatus.OK, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                    return
                status, result = server.dispatch(method, self.path, body)
                self._send(status, json.dumps(result, default=str).encode(), "application/json")

            def do_GET(self) -> None:
                self._handle("GET")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler
