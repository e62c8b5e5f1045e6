"""Following the published steering state: re-read on change, fail-static on a missing or corrupt
source (file or URL), wrong environment refused, the weights document of the Kubernetes ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from controller.spec_file import load_environment
from controller.steering import RegionLease, SteeringState
from selector.decision import Answer, select
from selector.published_state import FileSource, PublishedStateFollower, UrlSource, parse_published

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
URLS = {r.name: f"wss://{r.name}.example" for r in LOCAL.regions}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_state(path: Path, revision: int, weights, leases=None) -> None:
    """Atomically, as FileSteeringStore does (write a sibling, rename over)."""
    state = SteeringState(environment="local", revision=revision, weights=weights, leases=leases or {})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.model_dump_json())
    tmp.replace(path)


def region_of(follower, market="DE", key=b"k"):
    outcome = select(follower.table, market, "one_to_one", key)
    return outcome.region if isinstance(outcome, Answer) else outcome.code.value


def test_file_is_reread_on_change_and_the_last_good_state_survives_corruption_and_removal(tmp_path):
    path = tmp_path / "steering-local.json"
    clock = FakeClock()
    follower = PublishedStateFollower(LOCAL, FileSource(path), URLS, clock=clock)
    assert follower.refresh() is False and follower.table is None  # nothing published yet
    assert follower.staleness_seconds() == float("inf")

    write_state(path, 1, {"DE": {"fra": 1.0}})
    assert follower.refresh() and follower.table.revision == 1 and region_of(follower) == "fra"
    clock.now += 5
    assert follower.refresh() and follower.staleness_seconds() == 0.0  # unchanged file: still fresh

    write_state(path, 2, {"DE": {"dub": 1.0}})
    assert follower.refresh() and follower.table.revision == 2 and region_of(follower) == "dub"

    path.write_text('{"environment": "local", "weights": {"DE": ')  # torn / corrupt
    clock.now += 3
    assert follower.refresh() is False
    assert follower.table.revision == 2 and region_of(follower) == "dub"  # fail-static
    assert follower.source_up is False and "steering-local.json" in follower.last_error
    path.unlink()
    clock.now += 7
    assert follower.refresh() is False and "not found" in follower.last_error
    assert region_of(follower) == "dub" and follower.staleness_seconds() == 10.0
    assert follower.errors == 3  # the first poll (nothing yet), the corrupt file, the missing file

    write_state(path, 3, {"DE": {"fra": 1.0}})
    assert follower.refresh() and region_of(follower) == "fra" and follower.staleness_seconds() == 0.0


def test_a_state_of_another_environment_is_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(SteeringState(environment="prod", weights={"DE": {"fra": 1.0}}).model_dump_json())
    follower = PublishedStateFollower(LOCAL, FileSource(path), URLS)
    assert follower.refresh() is False
    assert "holds 'prod', this selector serves 'local'" in follower.last_error


def test_leases_reach_the_table(tmp_path):
    path = tmp_path / "s.json"
    lease = RegionLease(
        region="fra", holder="failover-fra", epoch=1, max_traffic_share=0.0, acquired_at="2026-01-01T00:00:00Z"
    )
    write_state(path, 4, {"DE": {"fra": 0.9, "dub": 0.1}}, {"fra": lease})
    follower = PublishedStateFollower(LOCAL, FileSource(path), URLS)
    assert follower.refresh()
    assert {region_of(follower, key=str(i).encode()) for i in range(200)} == {"dub"}


def test_the_kubernetes_weights_document_is_read_too():
    published = parse_published(json.dumps({"DE": {"fra": 0.5, "dub": 0.5}}).encode(), "local", "weights.json")
    assert published.weights == {"DE": {"fra": 0.5, "dub": 0.5}} and published.revision is None


def test_url_source_fail_static_and_etag():
    answers = [
        httpx.Response(200, json={"DE": {"fra": 1.0}}, headers={"ETag": '"v1"'}),
        httpx.Response(304),
        httpx.Response(500),
        httpx.ConnectError("refused"),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"DE": {"dub": 1.0}}),
    ]
    seen_headers = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_headers.append(request.headers.get("If-None-Match"))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    source = UrlSource("http://127.0.0.1:1/steering", transport=httpx.MockTransport(handler))
    follower = PublishedStateFollower(LOCAL, source, URLS)
    assert follower.refresh() and region_of(follower) == "fra"
    assert follower.refresh() and region_of(follower) == "fra"  # 304: unchanged
    assert seen_headers[1] == '"v1"'
    reasons = []
    for _ in range(3):
        assert follower.refresh() is False and region_of(follower) == "fra"
        reasons.append(follower.last_error)
    assert "HTTP 500" in reasons[0] and "ConnectError" in reasons[1] and "neither a steering state" in reasons[2]
    assert follower.refresh() and region_of(follower) == "dub"


def test_before_any_state_the_error_names_the_source(tmp_path):
    follower = PublishedStateFollower(LOCAL, FileSource(tmp_path / "missing.json"), URLS)
    assert follower.refresh() is False
    assert follower.table is None and follower.last_error == f"{tmp_path / 'missing.json'}: not found"
