"""Fuzz of the simulator's HTTP API against the real server on a loopback port (issue 16).

Two generators: raw bytes with malformed framing (request lines, methods, Content-Length values,
chunked bodies, non-JSON and non-UTF-8 bodies, absurd numbers and nesting), sent over raw sockets;
and JSON bodies over every route's schema with wrong types, extreme and non-finite numbers, far
dates and long strings, sent with httpx. Whatever is sent: a well-formed HTTP answer, a JSON body
(except the /metrics exposition and HEAD), never a 5xx, never a traceback on stderr or in the logs,
and a refused request leaves the fleet exactly as it was. Bounded: a few hundred requests, no
Hypothesis deadline (a loaded 2-core machine is slow, not wrong).
"""

from __future__ import annotations

import json
import logging
import math
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from tests.sim.conftest import START, tiny_spec, tiny_trace
from tests.sim.http_probe import RawAnswer, fleet_fingerprint, raw_request

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WHO = {"plan_id": "p-fuzz", "actor": "fuzz"}
PATHS = [
    "/metrics", "/healthz", "/v1/state", "/v1/snapshot", "/v1/accounting", "/v1/actuations",
    "/v1/regions/fra/desired-nodes", "/v1/regions/mars/desired-nodes", "/v1/regions/fra/nodes/fra-0001/drain",
    "/v1/regions/fra/nodes/fra-0001/undrain", "/v1/regions/sin/nodes/fra-0001/drain", "/v1/traffic-weights",
    "/v1/impairments", "/v1/impairments/imp-1", "/v1/events", "/", "/v1", "/v1/state/", "/v1/state?x=1",
]  # fmt: skip
METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT"]

# ----- strategies -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(),  # NaN and +-Infinity included: json.dumps writes them as the non-JSON tokens
    st.sampled_from([0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 10**20, 10**99, 2**64 - 1, 60_000, 60_001]),
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
)
far_zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))])
absurd_dates = st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "soon", ""])
dates = st.one_of(
    absurd_dates,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=far_zones).map(str),
    st.timedeltas(min_value=timedelta(days=-800), max_value=timedelta(days=800)).map(lambda d: str(START + d)),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(str),  # naive
)
texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "x" * 201, "y" * 5000]))
segments = st.sampled_from(
    ["fra", "dub", "sin", "cgk", "fra-0001", "fra-9999", "sin-0002", "imp-1", "imp-9"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-_~%", min_size=1, max_size=12)
nodes = st.sampled_from(
    [("fra", "fra-0001"), ("fra", "fra-0002"), ("sin", "sin-0001"), ("dub", "dub-0001")]
) | st.tuples(segments, segments)
markets = st.sampled_from(["DE", "SG", "XX", ""]) | st.text(max_size=4)
regions = st.sampled_from(["fra", "dub", "sin", "mars"])
attribution = {"plan_id": texts, "actor": texts, "reason": texts}
valid_attribution = {"plan_id": st.just("p-fuzz"), "actor": st.just("fuzz"), "reason": st.text(max_size=20)}
soon = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)).map(lambda d: (START + d).isoformat())


def body_of(
    valid: dict[str, st.SearchStrategy[Any]], wild: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """Mostly a valid request with one to three fields replaced by wild values (so the fuzz gets past
    the first field into every check); sometimes a valid one, a stranger field, a missing field or
    any JSON at all."""
    base = st.fixed_dictionaries(valid)
    mutated = st.tuples(base, st.fixed_dictionaries({}, optional=wild)).map(lambda t: {**t[0], **t[1]})
    extra = st.tuples(base, st.text(min_size=1, max_size=8), json_values).map(lambda t: {**t[0], t[1]: t[2]})
    missing = st.tuples(base, st.sampled_from(sorted(valid))).map(
        lambda t: {k: v for k, v in t[0].items() if k != t[1]}
    )
    return st.one_of(mutated, mutated, mutated, base, extra, missing, json_values)


kinds = st.sampled_from(["extra_loss", "extra_jitter", "extra_rtt", "outage", "node_loss"])
routes = st.one_of(
    st.tuples(st.just("PUT"), st.builds("/v1/regions/{}/desired-nodes".format, segments),
              body_of({"desired_nodes": st.integers(0, 50), **valid_attribution},
                      {"desired_nodes": numbers, **attribution})),
    st.tuples(st.just("POST"), nodes.map(lambda n: "/v1/regions/{}/nodes/{}/drain".format(*n)),
              body_of({"deadline": soon, **valid_attribution}, {"deadline": dates, **attribution})),
    st.tuples(st.just("POST"), nodes.map(lambda n: "/v1/regions/{}/nodes/{}/undrain".format(*n)),
              body_of(valid_attribution, attribution)),
    st.tuples(st.just("PUT"), st.just("/v1/traffic-weights"),
              body_of({"weights": st.fixed_dictionaries({"DE": st.fixed_dictionaries({"fra": st.floats(0, 1)})}),
                       **valid_attribution},
                      {"weights": st.dictionaries(markets, st.dictionaries(regions, numbers, max_size=3), max_size=3)
                       | json_values, **attribution})),
    st.tuples(st.just("POST"), st.just("/v1/impairments"),
              body_of({"region": regions, "kind": kinds, "magnitude": st.floats(0, 1)},
                      {"region": regions, "market": st.none() | markets, "kind": kinds | st.text(max_size=6),
                       "magnitude": numbers, "start": st.none() | dates, "end": st.none() | dates})),
    st.tuples(st.just("DELETE"), st.builds("/v1/impairments/{}".format, segments), st.none()),
    st.tuples(st.just("POST"), st.just("/v1/events"),
              body_of({"market": st.sampled_from(["DE", "SG"]), "peak_multiplier": st.floats(1, 5),
                       "duration_seconds": st.floats(60, 3600)},
                      {"market": markets, "peak_multiplier": numbers, "ramp_seconds": numbers,
                       "duration_seconds": numbers, "start": st.none() | dates})),
)  # fmt: skip

absurd_bodies = st.sampled_from(
    [
        b'{"desired_nodes": ' + b"9" * 5001 + b"}",
        b"[" * 100_000,
        b"{" * 50_000,
        b'{"magnitude": Infinity}',
        b'{"x": 1e400}',
        b'{"x": -NaN}',
        b"\xff\xfe{}",
        b'{"reason": "\xed\xa0\x80"}',  # a UTF-8-encoded surrogate
        b"",
        b"null",
    ]
)
content_lengths = st.one_of(
    st.just("exact"),
    st.just("exact"),
    st.sampled_from(["abc", "-5", "+5", " 3 ", "1e3", "0x10", "9" * 40, "", "5, 5", "\u0663"]),
    st.integers(min_value=0, max_value=2_000_000).map(str),
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=200))  # pure garbage
    method = draw(st.sampled_from(METHODS) | st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8))
    path = draw(st.sampled_from(PATHS) | st.text(alphabet=string.printable.strip(), max_size=40).map("/{}".format))
    version = draw(st.sampled_from(["HTTP/1.1"] * 12 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.x", "HTTP/1.1 extra", ""]))
    body = draw(
        st.one_of(
            absurd_bodies,
            st.binary(max_size=300),
            json_values.map(lambda v: json.dumps(v).encode()),
            routes.map(lambda r: json.dumps(r[2]).encode()),
        )
    )
    lines = [f"{method} {path} {version}".rstrip().encode("latin-1", "replace")]
    length = draw(content_lengths)
    if length == "exact":
        lines.append(f"Content-Length: {len(body)}".encode())
    elif draw(st.booleans()):
        lines.append(f"Content-Length: {length}".encode())
    if draw(st.integers(0, 15)) == 0:
        lines.append(b"Transfer-Encoding: chunked")
    if draw(st.integers(0, 15)) == 0:
        lines.append(b"Expect: 100-continue")
    lines.extend(draw(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=2)))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# ----- the checks -------------------------------------------------------------------------------


def check_answer(status: int, content_type: str, body: bytes, *, method: str, path: str) -> Any:
    """The API's contract for any answer; returns the JSON payload (None for /metrics and HEAD)."""
    # No 5xx, but for 505: "HTTP/2.0" on an HTTP/1 connection is the client's error, under its own number.
    assert 100 <= status < 500 or status == 505, (status, body[:300])
    if method == "HEAD" or (status == 200 and path.split("?")[0].rstrip("/") == "/metrics"):
        return None
    assert content_type == "application/json", (status, content_type)
    payload = json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} in a reply"))
    if status >= 400:
        assert isinstance(payload, dict) and set(payload) == {"error", "field"}, payload
        assert isinstance(payload["error"], str) and payload["error"]
    return payload


@pytest.fixture()
def served(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Any:
    fleet = SimulatedFleet(tiny_spec(), tiny_trace(), demand_variation=0.0)
    caplog.set_level(logging.DEBUG)
    with SimulatorServer(fleet, run_clock=False) as server:
        yield fleet, server
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], caplog.text


def test_raw_bytes_never_break_the_server(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    fleet, server = served

    @FUZZ
    @given(data=raw_requests())
    # The five, always among the examples; the generator finds their relatives.
    @example(data=b"PUT /v1/traffic-weights HTTP/1.1\r\nContent-Length: 5003\r\n\r\n[" + b"9" * 5001 + b"]")
    @example(data=b"PUT /v1/traffic-weights HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"[" * 100_000)
    @example(data=b"PUT /v1/traffic-weights HTTP/1.1\r\nContent-Length: 1\r\n\r\n\xff")
    @example(data=b"PUT /v1/traffic-weights HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}")
    @example(data=b"PUT /v1/traffic-weights HTTP/1.1\r\nContent-Length: -5\r\n\r\n{}")
    def probe(data: bytes) -> None:
        before = fleet_fingerprint(fleet)
        answer = raw_request(server.port, data)
        assert answer is not None, f"no answer to {data[:120]!r}"
        first = data.split(b"\r\n", 1)[0].split(b" ")
        method = first[0].decode("latin-1")
        path = first[1].decode("latin-1") if len(first) > 1 else ""
        check_answer(answer.status, answer.headers.get("Content-Type", ""), answer.body, method=method, path=path)
        event(f"status {answer.status}")
        if answer.status >= 400:
            assert fleet_fingerprint(fleet) == before, data[:200]

    probe()


def test_schema_fuzz_over_every_route(served: tuple[SimulatedFleet, SimulatorServer]) -> None:
    fleet, server = served
    with httpx.Client(base_url=server.url, timeout=30) as client:

        @FUZZ
        @given(route=routes)
        # The accepted-but-poisonous requests, always among the examples.
        @example(route=("POST", "/v1/impairments", {"region": "sin", "kind": "extra_rtt", "magnitude": math.inf}))
        @example(route=("POST", "/v1/events", {"market": "DE", "peak_multiplier": 2, "duration_seconds": math.inf}))
        @example(
            route=("POST", "/v1/regions/fra/nodes/fra-0001/drain", {"deadline": "0001-01-01T00:00:00+14:00", **WHO})
        )
        def probe(route: tuple[str, str, Any]) -> None:
            method, path, body = route
            before = fleet_fingerprint(fleet)
            content = b"" if body is None else json.dumps(body).encode()  # NaN/Infinity written as such
            response = client.request(method, path, content=content, headers={"Content-Type": "application/json"})
            check_answer(
                response.status_code,
                response.headers.get("Content-Type", ""),
                response.content,
                method=method,
                path=path,
            )
            event(f"{method} {path.split('/')[2]}: {response.status_code}")
            if response.status_code >= 400:
                assert fleet_fingerprint(fleet) == before, (method, path, body, response.text[:300])
            else:  # what was accepted must not poison what the fleet shows (as Infinity once did)
                state = client.get("/v1/state")
                check_answer(state.status_code, state.headers["Content-Type"], state.content, method="GET", path="")
                metrics = client.get("/metrics").text
                assert "Inf" not in metrics and "NaN" not in metrics, (method, path, body)

        probe()


def test_the_fuzz_checks_can_fail() -> None:
    """The checks above reject what the unhardened server answered: an HTML 501, a 5xx, a reply
    with Infinity in it, an error without the field key."""
    cases = [
        RawAnswer(501, _headers("text/html"), b"<html>Unsupported method</html>"),
        RawAnswer(500, _headers("application/json"), b'{"error": "x", "field": null}'),
        RawAnswer(201, _headers("application/json"), b'{"magnitude": Infinity}'),
        RawAnswer(404, _headers("application/json"), b'{"error": "no route"}'),
    ]
    for answer in cases:
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            check_answer(answer.status, answer.headers["Content-Type"], answer.body, method="POST", path="/v1/x")


def _headers(content_type: str) -> Any:
    import http.client

    message = http.client.HTTPMessage()
    message["Content-Type"] = content_type
    return message
