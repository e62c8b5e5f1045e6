"""Test helpers for probing `sim.http_api` over raw sockets and checking that a rejection changed nothing.

Raw sockets because httpx refuses to send what these tests need to send (a `Content-Length: abc`,
a negative length, a body that does not match its length); `http.client.HTTPResponse` then parses
the answer strictly, so a missing or malformed answer fails the test rather than passing silently.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

from sim.fleet import SimulatedFleet


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body as strict JSON (NaN and Infinity are not JSON: they fail here)."""
        return json.loads(self.body, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def raw_request(port: int, data: bytes, *, half_close: bool = True, timeout: float = 20.0) -> RawAnswer | None:
    """Send `data` as is; return the first answer, or None when the server closed without one.

    `half_close` ends the request stream (EOF) after `data`, as a client that has nothing more to
    say; without it the server must answer from what it has (as for `Content-Length: -5`).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode("latin-1"))
        try:
            response.begin()
        except http.client.RemoteDisconnected:
            return None
        body = response.read()
        return RawAnswer(response.status, response.headers, body)


def fleet_fingerprint(fleet: SimulatedFleet) -> tuple[Any, ...]:
    """Everything a rejected request must leave alone: nodes and their states and deadlines,
    desired counts, weights, impairments, demand events and the audit log."""
    with fleet._lock:
        nodes = tuple(zip(fleet._node_names, fleet._node_state.tolist(), fleet._deadline.tolist(), strict=True))
        return (
            nodes,
            json.dumps(fleet.state(), sort_keys=True),
            len(fleet.actuations),
            len(fleet.demand.events),
        )
