"""sim.http_api under malformed and extreme requests (issue 16): every one gets a JSON 4xx, no
traceback reaches the server's stderr, and a rejected request changes nothing in the fleet."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from sim.fleet import MAX_AUDIT_TEXT_CHARS, SimulatedFleet
from sim.http_api import SimulatorServer
from sim.http_requests import MAX_BODY_BYTES
from tests.sim.conftest import tiny_spec, tiny_trace
from tests.sim.http_probe import fleet_fingerprint, raw_request

WHO = {"plan_id": "p-7", "actor": "test", "reason": "why"}
SCALE = "/v1/regions/fra/desired-nodes"


@pytest.fixture()
def served(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[SimulatedFleet, SimulatorServer]]:
    """A served fleet; after the test, no traceback on stderr and no error logged."""
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    caplog.set_level(logging.WARNING)
    with SimulatorServer(fleet, run_clock=False) as server:
        yield fleet, server
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


def request_bytes(method: str, path: str, body: bytes, *, length: str | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode("latin-1") + body


def scale_body(**fields: object) -> bytes:
    return json.dumps({"desired_nodes": 21, **WHO, **fields}).encode()


@pytest.mark.parametrize(
    ("case", "data", "half_close"),
    [
        ("5001-digit number", request_bytes("PUT", SCALE, b'{"desired_nodes": ' + b"9" * 5001 + b"}"), True),
        ("100000-deep nesting", request_bytes("PUT", SCALE, b"[" * 100_000 + b"]" * 100_000), True),
        ("byte 0xff in the body", request_bytes("PUT", SCALE, scale_body(reason="x").replace(b'"x"', b'"\xff"')), True),
        ("Content-Length: abc", request_bytes("PUT", SCALE, scale_body(), length="abc"), True),
        # Without EOF after the request: the server must not wait for the rest of the stream.
        ("Content-Length: -5", request_bytes("PUT", SCALE, scale_body(), length="-5"), False),
        ("Content-Length: +5", request_bytes("PUT", SCALE, scale_body(), length="+5"), True),
        ("two Content-Lengths", request_bytes("PUT", SCALE, b"{}", length="2\r\nContent-Length: 7"), True),
        ("body shorter than its length", request_bytes("PUT", SCALE, scale_body(), length="900"), True),
        ("chunked body", b"PUT " + SCALE.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True),
    ],
)  # fmt: skip
def test_malformed_requests_get_a_json_400(
    served: tuple[SimulatedFleet, SimulatorServer], case: str, data: bytes, half_close: bool
) -> None:
    fleet, server = served
    before = fleet_fingerprint(fleet)
    answer = raw_request(server.port, data, half_close=half_close)
    assert answer is not None, f"{case}: no answer"
    assert 400 <= answer.status < 500, (case, answer.status, answer.body[:300])
    assert answer.headers["Content-Type"] == "application/json"
    payload = answer.json()
    assert set(payload) == {"error", "field"} and payload["error"], payload
    assert fleet_fingerprint(fleet) == before, case


def test_request_line_errors_are_json_and_well_formed(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    """http.server's own rejections (bad request line, HTTP/0.9, huge line) answer in the API's shape."""
    _, server = served
    for data in (b"\xff\xfe garbage\r\n\r\n", b"GET /v1/state\r\n\r\n", b"a b c d\r\n\r\n", b"\r\n", b"G" * 70_000):
        answer = raw_request(server.port, data)
        assert answer is not None, data[:40]
        assert answer.status < 500 and answer.headers["Content-Type"] == "application/json", data[:40]
        assert "error" in answer.json() or answer.status == 200


@pytest.mark.parametrize(
    "deadline",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "+30 days", "-2 days", "2026-11-09T00:10:00"],
)
def test_drain_with_an_absurd_deadline_changes_nothing(
    served: tuple[SimulatedFleet, SimulatorServer], deadline: str
) -> None:
    fleet, server = served
    if deadline.startswith(("+", "-")):
        sign = 1 if deadline[0] == "+" else -1
        deadline = (fleet.now + sign * timedelta(days=int(deadline[1:].split()[0]))).isoformat()
    before = fleet_fingerprint(fleet)
    with httpx.Client(base_url=server.url, timeout=20) as client:
        answer = client.post("/v1/regions/fra/nodes/fra-0001/drain", json={"deadline": deadline, **WHO})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "deadline"
    assert fleet_fingerprint(fleet) == before
    fleet.advance(120)
    assert fleet.accounting().dropped_sessions == 0.0


def test_a_drain_within_the_window_still_works(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    fleet, server = served
    for offset in (timedelta(hours=-1), timedelta(days=6)):
        with httpx.Client(base_url=server.url, timeout=20) as client:
            deadline = (fleet.now + offset).isoformat()
            answer = client.post("/v1/regions/fra/nodes/fra-0001/drain", json={"deadline": deadline, **WHO})
            assert answer.status_code == 200, answer.text
            client.post("/v1/regions/fra/nodes/fra-0001/undrain", json=WHO)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/impairments", b'{"region": "sin", "kind": "extra_rtt", "magnitude": Infinity}', 400, None),
        ("/v1/impairments", b'{"region": "sin", "kind": "extra_rtt", "magnitude": NaN}', 400, None),
        ("/v1/impairments", b'{"region": "sin", "kind": "extra_rtt", "magnitude": 1e400}', 400, None),
        ("/v1/impairments", b'{"region": "sin", "kind": "extra_rtt", "magnitude": 1e300}', 422, "magnitude"),
        ("/v1/impairments", b'{"region": "sin", "kind": "extra_jitter", "magnitude": 1e9}', 422, "magnitude"),
        ("/v1/impairments", b'{"region": "sin", "kind": "outage", "start": "0001-01-01T00:00:00+14:00"}', 422, "start"),
        ("/v1/events", b'{"market": "DE", "peak_multiplier": 2, "duration_seconds": Infinity}', 400, None),
        ("/v1/events", b'{"market": "DE", "peak_multiplier": 2, "duration_seconds": 1e300}', 422, "duration_seconds"),
        ("/v1/events", b'{"market": "DE", "peak_multiplier": 2, "duration_seconds": 60, "ramp_seconds": 1e300}',
         422, "ramp_seconds"),
        ("/v1/events", b'{"market": "DE", "peak_multiplier": 2, "duration_seconds": 60, '
                       b'"start": "9999-12-31T23:59:59-14:00"}', 422, "start"),
    ],
)  # fmt: skip
def test_non_finite_and_unphysical_numbers_are_refused(
    served: tuple[SimulatedFleet, SimulatorServer], path: str, body: bytes, status: int, field: str | None
) -> None:
    fleet, server = served
    before = fleet_fingerprint(fleet)
    answer = raw_request(server.port, request_bytes("POST", path, body))
    assert answer is not None
    assert answer.status == status, answer.body
    assert answer.json()["field"] == field
    assert fleet_fingerprint(fleet) == before
    with httpx.Client(base_url=server.url, timeout=20) as client:
        metrics = client.get("/metrics").text
    assert "Inf" not in metrics and "NaN" not in metrics


def test_weights_must_be_finite_shares(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    fleet, server = served
    before = fleet_fingerprint(fleet)
    body = b'{"weights": {"DE": {"fra": 1e308, "dub": 1e308}}, "plan_id": "p", "actor": "a"}'
    answer = raw_request(server.port, request_bytes("PUT", "/v1/traffic-weights", body))
    assert answer is not None and answer.status == 422, answer
    assert answer.json()["field"] == "weights.DE.fra"
    assert fleet_fingerprint(fleet) == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/state", "GET, HEAD"),
        ("POST", "/v1/state", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("GET", "/v1/traffic-weights", "PUT"),
        ("PUT", "/v1/regions/fra/nodes/fra-0001/drain", "POST"),
        ("OPTIONS", "/v1/impairments", "POST"),
        ("BREW", "/v1/events", "POST"),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(
    served: tuple[SimulatedFleet, SimulatorServer], method: str, path: str, allow: str
) -> None:
    fleet, server = served
    before = fleet_fingerprint(fleet)
    answer = raw_request(server.port, request_bytes(method, path, b"{}"))
    assert answer is not None and answer.status == 405, answer
    assert answer.headers["Allow"] == allow
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"]
    assert fleet_fingerprint(fleet) == before


def test_head_is_a_get_without_body(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    _, server = served
    with httpx.Client(base_url=server.url, timeout=20) as client:
        head = client.head("/v1/state")
        get = client.get("/v1/state")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(get.content)


def test_a_20_mb_body_is_413_and_never_audited(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    fleet, server = served
    before = fleet_fingerprint(fleet)
    body = json.dumps({"desired_nodes": 21, "plan_id": "p", "actor": "a", "reason": "x" * 20_000_000}).encode()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.put(SCALE, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413, answer.text[:300]
        assert str(MAX_BODY_BYTES) in answer.json()["error"]
        assert fleet_fingerprint(fleet) == before
        # The connection was closed after the refusal; the client's next request still works.
        assert client.get("/healthz").status_code == 200


def test_the_audit_log_stores_bounded_text(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    """A long reason within the body limit is accepted (an actuation is never refused for its
    explanation) but the audit record keeps a bounded prefix; identifiers must be short."""
    fleet, server = served
    with httpx.Client(base_url=server.url, timeout=20) as client:
        accepted = client.put(SCALE, json={"desired_nodes": 21, "plan_id": "p", "actor": "a", "reason": "y" * 100_000})
        assert accepted.status_code == 200, accepted.text[:300]
        stored = fleet.actuations[-1].reason
        assert len(stored) <= MAX_AUDIT_TEXT_CHARS and stored.startswith("y" * 100) and "truncated" in stored
        long_id = client.put(SCALE, json={"desired_nodes": 22, "plan_id": "p" * 10_000, "actor": "a"})
        assert long_id.status_code == 422 and long_id.json()["field"] == "plan_id"
    assert len(fleet.actuations) == 1


def test_error_answers_stay_short(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    """An unknown 100 kB market name is named in the error, not echoed whole."""
    _, server = served
    with httpx.Client(base_url=server.url, timeout=20) as client:
        answer = client.put("/v1/traffic-weights", json={"weights": {"Q" * 100_000: {"fra": 1}}, **WHO})
    assert answer.status_code == 404 and len(answer.content) < 2_000


def test_impairment_model_refuses_non_finite_magnitudes() -> None:
    """Traces and in-process callers get the same bounds as the HTTP API."""
    from pydantic import ValidationError

    from sim.impairments import Impairment

    for magnitude in (math.inf, math.nan, 1e9):
        with pytest.raises(ValidationError):
            Impairment(region="sin", kind="extra_rtt", magnitude=magnitude)  # type: ignore[arg-type]
