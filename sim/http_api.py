"""HTTP face of the simulated fleet in real time: Prometheus `/metrics` plus the actuation API.

Role: stands in for a real fleet's two interfaces (node exporters scraped by Prometheus, and the
cloud/Kubernetes API that takes scale, drain and weight commands). Called by a real Prometheus
(scrape), by `controller/adapters/simulator_actuator.py` (actuations), by on-call tools and tests
(impairments, events). Started by `edgectl sim serve` and the local dev stack. Binds 127.0.0.1.

Routes (JSON in and out):
  GET    /metrics                                    Prometheus exposition (controller.metric_names)
  GET    /healthz | /v1/state | /v1/snapshot | /v1/accounting | /v1/actuations
  GET    /v1/placement                               how new sessions get their region: {"mode":
                                                      "selector"|"weights", "books": PlacementBooks|null}
  GET    /v1/placement/timeline                      [PlacementStep]: what each step placed, and how
  PUT    /v1/regions/{region}/desired-nodes          {"desired_nodes", "plan_id", "actor", "reason"}
  POST   /v1/regions/{region}/nodes/{node}/drain     {"deadline", "plan_id", "actor", "reason"}
  POST   /v1/regions/{region}/nodes/{node}/undrain   {"plan_id", "actor", "reason"}
  PUT    /v1/traffic-weights                         {"weights": {market: {region: share}}, ...}
  POST   /v1/regions/{region}/session-moves          {"market", "to_region", "sessions", "plan_id", ...}
  PUT    /v1/regions/{region}/drain-order            {"nodes", "leaving_soon", "plan_id", ...} (204: unchanged)
  POST   /v1/impairments                             Impairment JSON -> 201 {"id"}
  DELETE /v1/impairments/{id}
  POST   /v1/events                                  {"market", "peak_multiplier", "ramp_seconds",
                                                      "duration_seconds", "start": iso|null}
Actuation responses are the AuditRecord (`before`, `after`, `changed`); repeating a PUT is a no-op.
HEAD is GET without the body.

Error contract: every refusal is a JSON body `{"error": "<reason>", "field": "<field.path>"|null}`
(`Content-Type: application/json`), and a refused request has changed nothing (no node state,
no audit record). Each route validates in one step before it calls the fleet
(`sim.http_requests.parse_request`: framing, JSON, schema, bounds, dates near the fleet's clock),
and the fleet checks its own rules (targets, node bounds, drain deadline window) before acting.
  400  malformed request: request line, Content-Length not a non-negative integer (or two that
       disagree), body shorter than its length, body not UTF-8 or not standard JSON (NaN,
       Infinity, numbers over 100 characters or beyond float range, nesting too deep)
  404  unknown route, region, node, market or impairment
  405  method not allowed on that path; the `Allow` header lists the allowed ones
  411  Transfer-Encoding (chunked) body: send a Content-Length instead
  413  body over MAX_BODY_BYTES (1 MiB)
  431  a header line over 64 kB or over 100 headers;  505  an HTTP version other than 1.x
  422  well-formed JSON the schema or the fleet refuses (the field says which): non-finite or
       out-of-range numbers, dates far from the fleet's clock, desired_nodes outside the
       region's bounds, plan_id/actor over 200 characters, unknown fields
  500  a bug in the simulator (logged with its traceback); never expected
After a 400/411/413 the server closes the connection (the rest of the stream cannot be trusted) and
reads what the client is still sending for a few seconds first, so the client gets to read the
answer. Replies are strict JSON (`allow_nan=False`); error texts are clipped to 500 characters. The
audit log keeps at most `sim.fleet.MAX_AUDIT_TEXT_CHARS` of a reason.

The clock (`RealTimeClock`) advances the fleet by `speed` simulated seconds per wall second.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sim.exporter import fleet_registry
from sim.fleet import InvalidActuationError, SimulatedFleet, UnknownTargetError
from sim.http_requests import (
    MAX_BODY_BYTES,
    ApiError,
    DemandEventBody,
    DesiredNodesBody,
    DrainBody,
    DrainOrderBody,
    ImpairmentBody,
    SessionMoveBody,
    TrafficWeightsBody,
    UndrainBody,
    clip,
    parse_request,
)
from sim.selector_guest_placement import GuestPlacementCollector, SelectorGuestPlacement
from sim.selector_placement import PlacementCollector, SelectorPlacement

logger = logging.getLogger(__name__)

BODY_READ_TIMEOUT_SECONDS = 30.0
"""Longest wait for a body the headers announced; then the connection is dropped."""
LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 64 << 20
"""After refusing a request without reading its body, read and discard up to this much for up to
LINGER_SECONDS before closing: closing a socket with unread data resets the connection, and the
client (still sending, e.g. a 20 MB body) would never see the 413."""
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One answer: a JSON payload, or raw bytes (`/metrics`), plus extra headers."""

    status: HTTPStatus
    payload: Any = None
    raw: bytes | None = None
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def error(
        cls, status: HTTPStatus, message: str, field: str | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> Reply:
        return cls(status, {"error": clip(message), "field": None if field is None else clip(field)}, headers=headers)

    def encoded(self) -> tuple[HTTPStatus, bytes, str]:
        """Status, body and content type; strict JSON (a non-finite number is a simulator bug: 500)."""
        if self.raw is not None:
            return self.status, self.raw, self.content_type
        try:
            return self.status, json.dumps(self.payload, default=str, allow_nan=False).encode(), JSON
        except ValueError as error:
            logger.error("simulator API: reply is not valid JSON: %s", error)
            failure = {"error": "internal error: reply held a non-finite number", "field": None}
            return HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps(failure).encode(), JSON


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


Route = tuple[str, re.Pattern[str], Callable[..., Reply]]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback to stderr for anything a handler raises; a client that
        goes away mid-exchange is normal here, anything else is a bug worth one logged traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        logger.exception("simulator API: unexpected error serving %s", client_address)


class SimulatorServer:
    """The fleet behind a ThreadingHTTPServer on 127.0.0.1 (port 0: the OS picks a free one)."""

    def __init__(self, fleet: SimulatedFleet, *, port: int = 0, speed: float = 1.0, run_clock: bool = True) -> None:
        self.fleet = fleet
        self.registry = fleet_registry(fleet)
        if isinstance(fleet.region_placement, SelectorPlacement):
            self.registry.register(PlacementCollector(fleet.region_placement))
        if isinstance(fleet.guest_placement, SelectorGuestPlacement):
            self.registry.register(GuestPlacementCollector(fleet.guest_placement))
        self.clock = RealTimeClock(fleet, speed) if run_clock else None
        self._routes: list[Route] = [
            ("GET", re.compile(r"/metrics"), self._metrics),
            ("GET", re.compile(r"/v1/state"), lambda: Reply(HTTPStatus.OK, fleet.state())),
            ("GET", re.compile(r"/v1/snapshot"), self._snapshot),
            ("GET", re.compile(r"/v1/accounting"), self._accounting),
            ("GET", re.compile(r"/v1/actuations"), self._actuations),
            ("GET", re.compile(r"/v1/placement"), self._placement),
            ("GET", re.compile(r"/v1/placement/timeline"), self._placement_timeline),
            ("GET", re.compile(r"/healthz"), lambda: Reply(HTTPStatus.OK, {"ok": True, "now": fleet.now.isoformat()})),
            ("PUT", re.compile(r"/v1/regions/(?P<region>[^/]+)/desired-nodes"), self._desired_nodes),
            ("POST", re.compile(r"/v1/regions/(?P<region>[^/]+)/nodes/(?P<node>[^/]+)/drain"), self._drain),
            ("POST", re.compile(r"/v1/regions/(?P<region>[^/]+)/nodes/(?P<node>[^/]+)/undrain"), self._undrain),
            ("PUT", re.compile(r"/v1/traffic-weights"), self._weights),
            ("POST", re.compile(r"/v1/regions/(?P<region>[^/]+)/session-moves"), self._move_sessions),
            ("PUT", re.compile(r"/v1/regions/(?P<region>[^/]+)/drain-order"), self._drain_order),
            ("POST", re.compile(r"/v1/impairments"), self._add_impairment),
            ("DELETE", re.compile(r"/v1/impairments/(?P<impairment_id>[^/]+)"), self._clear_impairment),
            ("POST", re.compile(r"/v1/events"), self._add_event),
        ]  # fmt: skip
        self._httpd = _HTTPServer(("127.0.0.1", port), self._handler_class())
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

    # ----- handlers: each validates its whole request (one parse_request) before calling the fleet ---

    def _metrics(self) -> Reply:
        return Reply(HTTPStatus.OK, raw=generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)

    def _snapshot(self) -> Reply:
        return Reply(HTTPStatus.OK, self.fleet.snapshot().model_dump(mode="json"))

    def _accounting(self) -> Reply:
        return Reply(HTTPStatus.OK, self.fleet.accounting().model_dump(mode="json"))

    def _actuations(self) -> Reply:
        return Reply(HTTPStatus.OK, [record.model_dump(mode="json") for record in list(self.fleet.actuations)])

    def _placement(self) -> Reply:
        placement = self.fleet.region_placement
        if isinstance(placement, SelectorPlacement):
            return Reply(HTTPStatus.OK, {"mode": "selector", "books": placement.books().model_dump(mode="json")})
        return Reply(HTTPStatus.OK, {"mode": "weights", "books": None})

    def _placement_timeline(self) -> Reply:
        placement = self.fleet.region_placement
        steps = placement.timeline() if isinstance(placement, SelectorPlacement) else []
        return Reply(HTTPStatus.OK, [step.model_dump(mode="json") for step in steps])

    def _desired_nodes(self, body: bytes, region: str) -> Reply:
        request = parse_request(DesiredNodesBody, body, now=self.fleet.now)
        record = self.fleet.set_desired_nodes(
            region, request.desired_nodes, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _drain(self, body: bytes, region: str, node: str) -> Reply:
        request = parse_request(DrainBody, body, now=self.fleet.now)
        record = self.fleet.drain_node(
            region, node, request.deadline, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _undrain(self, body: bytes, region: str, node: str) -> Reply:
        request = parse_request(UndrainBody, body, now=self.fleet.now)
        record = self.fleet.undrain_node(
            region, node, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _move_sessions(self, body: bytes, region: str) -> Reply:
        request = parse_request(SessionMoveBody, body, now=self.fleet.now)
        record = self.fleet.move_sessions(
            region, request.market, request.to_region, request.sessions,
            plan_id=request.plan_id, actor=request.actor, reason=request.reason,
        )  # fmt: skip
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _drain_order(self, body: bytes, region: str) -> Reply:
        request = parse_request(DrainOrderBody, body, now=self.fleet.now)
        record = self.fleet.set_drain_order(
            region, request.nodes, request.leaving_soon,
            plan_id=request.plan_id, actor=request.actor, reason=request.reason,
        )  # fmt: skip
        if record is None:
            return Reply(HTTPStatus.OK, {"changed": False})
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _weights(self, body: bytes) -> Reply:
        request = parse_request(TrafficWeightsBody, body, now=self.fleet.now)
        record = self.fleet.set_traffic_weights(
            request.weights, plan_id=request.plan_id, actor=request.actor, reason=request.reason
        )
        return Reply(HTTPStatus.OK, record.model_dump(mode="json"))

    def _add_impairment(self, body: bytes) -> Reply:
        impairment = parse_request(ImpairmentBody, body, now=self.fleet.now)
        return Reply(HTTPStatus.CREATED, {"id": self.fleet.inject_impairment(impairment)})

    def _clear_impairment(self, body: bytes, impairment_id: str) -> Reply:
        self.fleet.clear_impairment(impairment_id)
        return Reply(HTTPStatus.OK, {"id": impairment_id, "cleared": True})

    def _add_event(self, body: bytes) -> Reply:
        request = parse_request(DemandEventBody, body, now=self.fleet.now)
        event = self.fleet.add_demand_event(
            request.market, request.peak_multiplier, request.ramp_seconds, request.duration_seconds, request.start
        )
        return Reply(HTTPStatus.CREATED, event.model_dump(mode="json"))

    # ----- plumbing -------------------------------------------------------------------------

    def dispatch(self, method: str, path: str, body: bytes) -> Reply:
        """The reply to `method path` with `body`; never raises (a bug is logged and answered 500)."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        wanted = "GET" if method == "HEAD" else method
        allowed: set[str] = set()
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method != wanted:
                allowed.add(route_method)
                continue
            return self._call(handler, wanted, body, match.groupdict())
        if allowed:
            allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
            message = f"{clip(method, 40)} is not allowed on {clip(path, 200)} (allowed: {allow})"
            return Reply.error(HTTPStatus.METHOD_NOT_ALLOWED, message, headers=(("Allow", allow),))
        return Reply.error(HTTPStatus.NOT_FOUND, f"no route {clip(method, 40)} {clip(path, 200)}")

    def _call(self, handler: Callable[..., Reply], method: str, body: bytes, params: dict[str, str]) -> Reply:
        try:
            return handler(**params) if method == "GET" else handler(body, **params)
        except ApiError as error:
            return Reply.error(error.status, str(error), error.field)
        except UnknownTargetError as error:
            return Reply.error(HTTPStatus.NOT_FOUND, str(error), error.field)
        except InvalidActuationError as error:
            return Reply.error(HTTPStatus.UNPROCESSABLE_ENTITY, str(error), error.field)
        except Exception:
            logger.exception("simulator API: %s %s failed", method, clip(str(params), 200))
            return Reply.error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error in the simulator (logged)")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # http.server's default, HTTP/0.9, answers a malformed request line without a status line.
            default_request_version = "HTTP/1.0"
            _linger = False
            raw_requestline: bytes  # set by http.server before parse_request

            def __getattr__(self, name: str) -> Callable[[], None]:
                # http.server calls do_<METHOD> and answers an HTML 501 when there is none: route every
                # method through _handle, so a wrong one gets the API's JSON 405 (or 404).
                if name.startswith("do_"):
                    return functools.partial(self._handle, name[3:])
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and CLI own stdout
                pass

            def parse_request(self) -> bool:
                if not self.raw_requestline.strip():  # http.server closes without answering a blank line
                    self.command, self.requestline, self.request_version = "", "", self.default_request_version
                    self.send_error(HTTPStatus.BAD_REQUEST, "empty request line")
                    return False
                return super().parse_request()

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """http.server's own refusals (request line, headers) in the API's JSON shape."""
                status = HTTPStatus(code)
                self.close_connection = True
                self._send(Reply.error(status, message or status.phrase), head_only=self.command == "HEAD")

            def _read_body(self) -> bytes:
                """The body its Content-Length announces; ApiError for any framing it cannot trust."""
                if self.headers.get("Transfer-Encoding") is not None:
                    message = "Transfer-Encoding is not supported: send the body with a Content-Length"
                    raise ApiError(HTTPStatus.LENGTH_REQUIRED, message, "Transfer-Encoding")
                values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
                if not values:
                    return b""
                if len(values) > 1:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers", "Content-Length")
                text = values.pop()
                if not _CONTENT_LENGTH.fullmatch(text):
                    message = f"Content-Length must be a non-negative integer of bytes, got {text!r}"
                    raise ApiError(HTTPStatus.BAD_REQUEST, message, "Content-Length")
                length = int(text)
                if length > MAX_BODY_BYTES:
                    message = f"body of {length} bytes is over the limit of {MAX_BODY_BYTES} bytes"
                    raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, "Content-Length")
                self.connection.settimeout(BODY_READ_TIMEOUT_SECONDS)
                try:
                    body = self.rfile.read(length)
                finally:
                    self.connection.settimeout(None)
                if len(body) < length:
                    message = f"body ended after {len(body)} of the {length} bytes of its Content-Length"
                    raise ApiError(HTTPStatus.BAD_REQUEST, message, "Content-Length")
                return body

            def _handle(self, method: str) -> None:
                try:
                    body = self._read_body()
                except ApiError as error:
                    # The stream no longer lines up with requests: answer, then close (after lingering).
                    self.close_connection = True
                    self._linger = True
                    reply = Reply.error(error.status, str(error), error.field)
                else:
                    reply = server.dispatch(method, self.path, body)
                self._send(reply, head_only=method == "HEAD")

            def _send(self, reply: Reply, *, head_only: bool) -> None:
                status, payload, content_type = reply.encoded()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if not head_only:
                    self.wfile.write(payload)

            def finish(self) -> None:
                super().finish()
                if self._linger:
                    self._discard_unread_request()

            def _discard_unread_request(self) -> None:
                """Close our side, then read and drop what the client still sends (bounded), so the
                close does not reset the connection before the client has read the answer."""
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    self.connection.settimeout(LINGER_SECONDS)
                    until, received = time.monotonic() + LINGER_SECONDS, 0
                    while received < LINGER_MAX_BYTES and time.monotonic() < until:
                        chunk = self.connection.recv(1 << 16)
                        if not chunk:
                            break
                        received += len(chunk)
                except OSError:
                    pass  # the client has gone: nothing left to protect

        return Handler
