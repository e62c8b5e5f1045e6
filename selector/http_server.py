"""The region selector's HTTP service (`edgectl selector serve`), on 127.0.0.1 by default.

Routes (GET only; HEAD is refused like any other method):
- `/v1/select?market=DE&scenario=one_to_one&session=ROOM-KEY` (`country=` is accepted for `market`):
  200 `{"market", "scenario", "region", "endpoints": [{"region", "url", "share"}], "revision",
  "state_age_seconds"}`; a refusal is `{"refused": true, "code", "reason", ...}` with 503
  (no_compliant_region, capacity_exhausted, no_steering_state), 404 (unknown_market) or 400
  (unknown_scenario, a missing or oversized parameter). Without `session`, the session gets a
  random key (no stickiness).
- `/v1/select/batch?session_prefix=P&groups=DE:one_to_one:0:250,...`: many sessions in one request,
  each decided and counted exactly as a single answer (selector/batch.py); 200 with the answers'
  regions and the refusals' codes counted per group, 400 for a malformed batch.
- `/metrics`: Prometheus text format (selector/metrics.py).
- `/healthz`: 200 while the process serves. `/readyz`: 200 once a steering state was loaded, and
  stays 200 when the source goes stale afterwards: fail-static means every replica keeps
  answering from its last good state, not that all of them leave the Service at once.

HTTP/1.1 with keep-alive on asyncio's streams-free `Protocol` (a thread per connection costs more
than the decision itself). Deliberately small: request heads up to 8 KiB, no request bodies
(a `Content-Length` other than 0 or any `Transfer-Encoding` is answered 400 and closed), pipelined
requests answered in order. Blocking work (reading the source) runs in the follower's own thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote_plus, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from selector.batch import BatchError, decide_batch, parse_batch
from selector.decision import (
    Answer,
    Endpoint,
    Refusal,
    RefusalCode,
    select,
)
from selector.metrics import SelectorMetrics
from selector.participants import select_first_participant, select_participant
from selector.published_state import PublishedStateFollower

MAX_HEAD_BYTES = 8 * 1024
MAX_SESSION_KEY_CHARS = 256
MAX_QUERY_FIELDS = 16
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

_REFUSAL_STATUS = {
    RefusalCode.UNKNOWN_MARKET: HTTPStatus.NOT_FOUND,
    RefusalCode.UNKNOWN_SCENARIO: HTTPStatus.BAD_REQUEST,
    RefusalCode.NO_STEERING_STATE: HTTPStatus.SERVICE_UNAVAILABLE,
    RefusalCode.NO_COMPLIANT_REGION: HTTPStatus.SERVICE_UNAVAILABLE,
    RefusalCode.CAPACITY_EXHAUSTED: HTTPStatus.SERVICE_UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = JSON


def _json(status: HTTPStatus, value: object) -> Response:
    return Response(status, json.dumps(value, separators=(",", ":")).encode())


class SelectorService:
    """Answers one request (no sockets here: `SelectorServer` carries the bytes)."""

    def __init__(
        self,
        follower: PublishedStateFollower,
        metrics: SelectorMetrics,
        registry: CollectorRegistry,
        *,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.follower = follower
        self.metrics = metrics
        self.registry = registry
        self._timer = timer
        self._endpoint_cache: dict[Endpoint, str] = {}

    def handle(self, method: str, target: str) -> Response:
        if method != "GET":
            return _json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed: GET only"})
        parts = urlsplit(target)
        if parts.path == "/v1/select":
            return self.select(parts.query)
        if parts.path == "/v1/select/batch":
            return self.select_batch(parts.query)
        if parts.path == "/metrics":
            return Response(HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if parts.path == "/healthz":
            return Response(HTTPStatus.OK, b"ok\n", TEXT)
        if parts.path == "/readyz":
            if self.follower.table is None:
                return Response(HTTPStatus.SERVICE_UNAVAILABLE, b"no steering state loaded yet\n", TEXT)
            return Response(HTTPStatus.OK, b"ready\n", TEXT)
        return _json(HTTPStatus.NOT_FOUND, {"error": f"no route {parts.path!r}: try /v1/select"})

    def select(self, query: str) -> Response:
        started = self._timer()
        params = _query(query)
        if params is None:
            return _json(HTTPStatus.BAD_REQUEST, {"error": "malformed query string"})
        market = (params.get("market") or params.get("country") or "").strip().upper()
        scenario = params.get("scenario", "").strip()
        session = params.get("session", "")
        if not market or not scenario:
            return _json(HTTPStatus.BAD_REQUEST, {"error": "give market (or country) and scenario"})
        if len(session) > MAX_SESSION_KEY_CHARS:
            return _json(HTTPStatus.BAD_REQUEST, {"error": f"session: longer than {MAX_SESSION_KEY_CHARS} characters"})
        table = self.follower.table  # one read: a refresh swapping it mid-request changes nothing here
        outcome: Answer | Refusal
        if table is None:
            outcome = Refusal(market, RefusalCode.NO_STEERING_STATE, "no steering state loaded yet")
        else:
            key = session.encode() if session else os.urandom(16)
            peers = [p.strip() for p in params.get("peer_regions", "").split(",") if p.strip()]
            counterparts = [c.strip() for c in params.get("counterpart_markets", "").split(",") if c.strip()]
            # A participant of a cross-border session: near the session's other regions (or, the first
            # one, near where its counterparts' markets may go), within its own rules.
            if peers:
                outcome = select_participant(table, market, scenario, key, peers, counterpart_markets=counterparts)
            elif counterparts:
                outcome = select_first_participant(table, market, scenario, key, counterparts)
            else:
                outcome = select(table, market, scenario, key)
        self.metrics.count(outcome, self._timer() - started)
        age = self.follower.staleness_seconds()
        revision = table.revision if table is not None else None
        state_age = round(age, 3) if age != float("inf") else None
        if isinstance(outcome, Refusal):
            body = {
                "refused": True,
                "code": outcome.code.value,
                "reason": outcome.reason,
                "market": market,
                "scenario": scenario,
                "revision": revision,
                "state_age_seconds": state_age,
            }
            return _json(_REFUSAL_STATUS[outcome.code], body)
        # An answer's market and scenario are known names (validated by `select`), its endpoints
        # serialised once per (region, share): the body is put together without a JSON encoder.
        endpoints = ",".join(self._endpoint_json(e) for e in outcome.endpoints)
        return Response(
            HTTPStatus.OK,
            (
                f'{{"market":"{market}","scenario":"{scenario}","revision":{json.dumps(revision)},'
                f'"state_age_seconds":{json.dumps(state_age)},"region":"{outcome.region}","endpoints":[{endpoints}]}}'
            ).encode(),
        )

    def select_batch(self, query: str) -> Response:
        params = _query(query)
        if params is None:
            return _json(HTTPStatus.BAD_REQUEST, {"error": "malformed query string"})
        try:
            prefix, groups = parse_batch(params)
        except BatchError as error:
            return _json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        table = self.follower.table  # one table for the whole batch
        outcomes = decide_batch(table, prefix, groups, self.metrics.count, self._timer)
        age = self.follower.staleness_seconds()
        body = {
            "revision": table.revision if table is not None else None,
            "state_age_seconds": round(age, 3) if age != float("inf") else None,
            "groups": [
                {"market": o.market, "scenario": o.scenario, "answers": o.answers, "refusals": o.refusals}
                for o in outcomes
            ],
        }
        return _json(HTTPStatus.OK, body)

    def _endpoint_json(self, endpoint: Endpoint) -> str:
        cached = self._endpoint_cache.get(endpoint)
        if cached is None:
            if len(self._endpoint_cache) > 100_000:  # tables come and go; their endpoints with them
                self._endpoint_cache.clear()
            value = {"region": endpoint.region, "url": endpoint.url, "share": round(endpoint.share, 6)}
            cached = self._endpoint_cache[endpoint] = json.dumps(value, separators=(",", ":"))
        return cached


def _query(query: str) -> dict[str, str] | None:
    """The first value of each parameter; percent-decoding only when a value needs it (the hot path)."""
    params: dict[str, str] = {}
    if not query:
        return params
    fields = query.split("&")
    if len(fields) > MAX_QUERY_FIELDS:
        return None
    for field in fields:
        name, _, value = field.partition("=")
        if "%" in field or "+" in field:
            name, value = unquote_plus(name), unquote_plus(value)
        params.setdefault(name, value)
    return params


def _head(status: HTTPStatus, length: int, content_type: str, keep_alive: bool) -> bytes:
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
        f"Cache-Control: no-store\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode("latin-1")


class _Connection(asyncio.Protocol):
    def __init__(self, service: SelectorService, open_connections: set[_Connection]) -> None:
        self._service = service
        self._open = open_connections
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._open.add(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        while not self._closing:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._reply(Response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"head too large\n", TEXT), False)
                return
            if end > MAX_HEAD_BYTES:
                self._reply(Response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"head too large\n", TEXT), False)
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._request(head)

    def _request(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            self._reply(Response(HTTPStatus.BAD_REQUEST, b"bad request line\n", TEXT), False)
            return
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            self._reply(Response(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, b"HTTP/1.x only\n", TEXT), False)
            return
        connection = ""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._reply(Response(HTTPStatus.BAD_REQUEST, b"bad header line\n", TEXT), False)
                return
            name = name.strip().lower()
            if name == b"connection":
                connection = value.strip().decode("latin-1").lower()
            elif (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding":
                # No route takes a body; refusing one keeps the framing simple and unambiguous.
                self._reply(Response(HTTPStatus.BAD_REQUEST, b"request bodies are not accepted\n", TEXT), False)
                return
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        try:
            response = self._service.handle(method, target)
        except Exception as error:  # a bug must not take the connection's other requests with it
            response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}\n".encode(), TEXT)
        self._reply(response, keep_alive)

    def _reply(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(_head(response.status, len(response.body), response.content_type, keep_alive) + response.body)
        if not keep_alive:
            self._closing = True
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._open.discard(self)


class SelectorServer:
    """The service on `host:port` (0: a free port) in a thread with its own event loop, plus the
    follower polling the steering source in another thread."""

    def __init__(
        self,
        service: SelectorService,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_seconds: float = 0.5,
    ) -> None:
        self.service = service
        self.host = host
        self._requested_port = port
        self._poll_seconds = poll_seconds
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._stop_polling = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[_Connection] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SelectorServer:
        """Load the source once, bind, then serve in the background; returns once bound."""
        self.service.follower.refresh()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(
                lambda: _Connection(self.service, self._connections),
                self.host,
                self._requested_port,
                reuse_address=True,
                backlog=1024,
            )
        )
        self.port = self._server.sockets[0].getsockname()[1]
        serving = threading.Thread(target=self._loop.run_forever, name="selector-http", daemon=True)
        polling = threading.Thread(
            target=self.service.follower.run,
            args=(self._stop_polling, self._poll_seconds),
            name="selector-source",
            daemon=True,
        )
        self._threads = [serving, polling]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop_polling.set()
        server = self._server
        if server is not None:

            async def close() -> None:
                server.close()
                for connection in list(self._connections):  # keep-alive clients: wait_closed waits for them
                    connection.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> SelectorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
