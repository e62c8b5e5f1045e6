"""The selector over real HTTP on loopback: answers, refusals and their statuses, residency over
forged published states, fail-static, metrics, readiness, and the small HTTP/1.1 framing."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from controller.spec_file import load_environment
from controller.steering import RegionLease, SteeringState
from selector.decision import endpoint_urls
from selector.http_server import SelectorServer, SelectorService
from selector.metrics import SelectorMetrics
from selector.published_state import FileSource, PublishedStateFollower

ROOT = Path(__file__).resolve().parents[2]
PROD = load_environment(ROOT / "environments" / "prod.yaml")
LOCAL = load_environment(ROOT / "environments" / "local.yaml")


def write_state(path: Path, spec, revision: int, weights, leases=None) -> None:
    state = SteeringState(environment=spec.name, revision=revision, weights=weights, leases=leases or {})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.model_dump_json())
    tmp.replace(path)


@pytest.fixture
def selector(tmp_path):
    def start(spec):
        path = tmp_path / f"steering-{spec.name}.json"
        registry = CollectorRegistry()
        metrics = SelectorMetrics(spec.name, registry)
        follower = PublishedStateFollower(
            spec,
            FileSource(path),
            endpoint_urls(spec, "wss://media-{region}.edge.example", {}),
            on_table=metrics.table_changed,
            on_error=metrics.source_error,
        )
        metrics.follow(follower)
        # Polled by hand (follower.refresh()) so each step sees exactly the state it wrote.
        server = SelectorServer(SelectorService(follower, metrics, registry), poll_seconds=3600)
        started.append(server)
        return server, path

    started: list[SelectorServer] = []
    yield start
    for server in started:
        server.stop()


def metric(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_answers_refusals_and_metrics_over_http(selector):
    server, path = selector(LOCAL)
    server.start()
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/readyz").status_code == 503
        refused = client.get("/v1/select", params={"market": "DE", "scenario": "live_show"})
        assert refused.status_code == 503 and refused.json()["code"] == "no_steering_state"

        write_state(path, LOCAL, 7, {"DE": {"fra": 0.5, "dub": 0.5}, "ID": {"cgk": 0.5}})
        assert server.service.follower.refresh()
        assert client.get("/readyz").status_code == 200
        answer = client.get("/v1/select", params={"country": "de", "scenario": "one_to_one", "session": "room-9"})
        body = answer.json()
        assert answer.status_code == 200 and body["revision"] == 7 and body["market"] == "DE"
        assert body["region"] == body["endpoints"][0]["region"] in {"fra", "dub"}
        assert body["endpoints"][0]["url"] == f"wss://media-{body['region']}.edge.example"
        assert {e["region"] for e in body["endpoints"]} == {"fra", "dub"}
        for _ in range(3):  # sticky over HTTP too
            again = client.get("/v1/select", params={"market": "DE", "scenario": "one_to_one", "session": "room-9"})
            assert again.json()["endpoints"] == body["endpoints"]

        cases = {
            ("XX", "live_show"): (404, "unknown_market"),
            ("DE", "karaoke"): (400, "unknown_scenario"),
            ("FR", "live_show"): (503, "no_compliant_region"),
        }
        for (market, scenario), (status, code) in cases.items():
            reply = client.get("/v1/select", params={"market": market, "scenario": scenario, "session": "s"})
            assert (reply.status_code, reply.json()["code"]) == (status, code)
            assert reply.json()["refused"] is True and reply.json()["reason"]
        capacity = [
            client.get("/v1/select", params={"market": "ID", "scenario": "live_show", "session": f"s{i}"})
            for i in range(200)
        ]
        exhausted = [r for r in capacity if r.status_code == 503]
        assert 50 < len(exhausted) < 150 and {r.json()["code"] for r in exhausted} == {"capacity_exhausted"}
        assert client.get("/v1/select", params={"market": "DE"}).status_code == 400
        assert (
            client.get("/v1/select", params={"market": "DE", "scenario": "x", "session": "k" * 300}).status_code == 400
        )
        assert client.post("/v1/select").status_code == 405
        assert client.get("/nowhere").status_code == 404

        text = client.get("/metrics").text
        assert metric(text, "edgeplane_selector_state_revision", environment="local") == 7
        assert metric(text, "edgeplane_selector_source_up", environment="local") == 1
        assert metric(text, "edgeplane_selector_answers_total", market="DE", region=body["region"]) >= 4
        assert metric(text, "edgeplane_selector_refusals_total", market="unknown", code="unknown_market") == 1
        assert metric(text, "edgeplane_selector_refusals_total", market="ID", code="capacity_exhausted") == len(
            exhausted
        )
        assert metric(text, "edgeplane_selector_source_errors_total", environment="local") == 1  # the first poll


def test_fail_static_over_http_when_the_source_goes_away(selector):
    server, path = selector(LOCAL)
    write_state(path, LOCAL, 1, {"DE": {"dub": 1.0}})
    server.start()
    with httpx.Client(base_url=server.url) as client:
        path.write_text("{ corrupt")
        assert server.service.follower.refresh() is False
        path.unlink()
        assert server.service.follower.refresh() is False
        reply = client.get("/v1/select", params={"market": "DE", "scenario": "live_show", "session": "a"})
        assert reply.status_code == 200 and reply.json()["region"] == "dub" and reply.json()["revision"] == 1
        assert client.get("/readyz").status_code == 200  # stale replicas keep serving
        text = client.get("/metrics").text
        assert metric(text, "edgeplane_selector_source_up", environment="local") == 0
        assert metric(text, "edgeplane_selector_source_errors_total", environment="local") == 2
        assert metric(text, "edgeplane_selector_state_age_seconds", environment="local") > 0


def test_no_forbidden_region_over_http_with_forged_states(selector):
    """The smaller HTTP run of the residency property (the 100,000-session run is in-process)."""
    server, path = selector(PROD)
    rng = random.Random(7)
    regions = [r.name for r in PROD.regions]
    allowed = {m.code: set(PROD.allowed_regions(m.code)) for m in PROD.markets}
    write_state(path, PROD, 0, {})
    server.start()
    forbidden = answered = 0
    with httpx.Client(base_url=server.url) as client:
        for revision in range(1, 21):
            weights = {
                m: {r: rng.choice([0.0, rng.random(), 5.0, -1.0]) for r in rng.sample(regions, 5)} for m in allowed
            }
            evacuated = rng.sample(regions, 2)
            leases = {
                r: RegionLease(
                    region=r, holder="drill", epoch=1, max_traffic_share=0.0, acquired_at="2026-01-01T00:00:00Z"
                )
                for r in evacuated
            }
            write_state(path, PROD, revision, weights, leases)
            assert server.service.follower.refresh()
            for i in range(100):
                market = rng.choice(sorted(allowed))
                reply = client.get(
                    "/v1/select", params={"market": market, "scenario": "multi_host", "session": f"{revision}-{i}"}
                )
                if reply.status_code != 200:
                    assert reply.json()["code"] in {"no_compliant_region", "capacity_exhausted"}
                    continue
                answered += 1
                names = [e["region"] for e in reply.json()["endpoints"]]
                forbidden += sum(n not in allowed[market] or n in evacuated for n in names)
        text = client.get("/metrics").text
    assert forbidden == 0 and answered > 500
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "edgeplane_selector_ignored_weight" in families


def raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_http_framing_pipelining_bodies_and_oversized_heads(selector):
    server, path = selector(LOCAL)
    write_state(path, LOCAL, 1, {"DE": {"fra": 1.0}})
    server.start()
    get = b"GET /v1/select?market=DE&scenario=live_show&session=a HTTP/1.1\r\nHost: x\r\n\r\n"
    two = raw_exchange(server.port, get + get.replace(b"Host: x", b"Host: x\r\nConnection: close"))
    assert two.count(b"HTTP/1.1 200 OK") == 2 and two.count(b'"region":"fra","endpoints"') == 2
    body = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    assert body.startswith(b"HTTP/1.1 400")
    huge = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431")
    old = raw_exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: closed
    assert old.startswith(b"HTTP/1.1 200") and old.endswith(b"ok\n")
    garbage = raw_exchange(server.port, b"HELLO\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400")
