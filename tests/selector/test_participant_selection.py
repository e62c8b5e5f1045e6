"""Per-participant answers for cross-border sessions (`selector.participants.select_participant`, issue 18):
each participant gets a region its own market allows, near the session's other regions, over healthy
backbone paths; and over HTTP with `peer_regions`."""

from __future__ import annotations

import random

import httpx
from prometheus_client import CollectorRegistry

from controller.steering import SteeringState
from selector.decision import (
    Answer,
    PublishedSteering,
    Refusal,
    RefusalCode,
    build_table,
    select,
)
from selector.http_server import SelectorServer, SelectorService
from selector.metrics import SelectorMetrics
from selector.participants import select_first_participant, select_participant
from selector.published_state import FileSource, PublishedStateFollower
from tests.selector.test_decision import LOCAL, PROD, allowed_from_spec, endpoints, random_state
from tests.selector.test_http_server import write_state

EVERYWHERE = {
    "DE": {"fra": 0.5, "dub": 0.5},
    "FR": {"fra": 0.5, "dub": 0.5},
    "ID": {"cgk": 1.0},
    "SG": {"sin": 0.5, "cgk": 0.25, "fra": 0.25},
    "TH": {"sin": 1.0},
}


def test_a_peer_in_a_forbidden_region_means_a_cascade_never_a_violation() -> None:
    table = build_table(LOCAL, PublishedSteering(weights=EVERYWHERE), endpoints(LOCAL))
    for i in range(200):
        answer = select_participant(table, "ID", "one_to_one", f"room-{i}".encode(), ["fra"])
        assert isinstance(answer, Answer) and answer.region == "cgk"
        assert {e.region for e in answer.endpoints} == {"cgk"}


def test_a_participant_joins_the_peers_region_when_that_is_best_end_to_end() -> None:
    table = build_table(LOCAL, PublishedSteering(weights=EVERYWHERE), endpoints(LOCAL))
    # SG: cgk directly ~26 ms; sin 8 ms + sin-cgk backbone ~16 ms + the 10 ms cascade cost ~34 ms.
    for i in range(200):
        answer = select_participant(table, "SG", "one_to_one", f"k{i}".encode(), ["cgk"])
        assert isinstance(answer, Answer) and answer.region == "cgk"
    # DE with a peer in cgk: fra (nearer Jakarta on the backbone than dub) for every key.
    regions = {select_participant(table, "DE", "one_to_one", f"k{i}".encode(), ["cgk"]).region for i in range(200)}  # type: ignore[union-attr]
    assert regions == {"fra"}


def test_a_failed_backbone_path_is_avoided_or_refused() -> None:
    table = build_table(LOCAL, PublishedSteering(weights=EVERYWHERE), endpoints(LOCAL))
    answer = select_participant(table, "DE", "one_to_one", b"room", ["cgk"], failed_links=[("cgk", "fra")])
    assert isinstance(answer, Answer) and answer.region == "dub"
    refusal = select_participant(
        table, "DE", "one_to_one", b"room", ["cgk"], failed_links=[("cgk", "fra"), ("dub", "cgk")]
    )
    assert isinstance(refusal, Refusal) and refusal.code is RefusalCode.NO_COMPLIANT_REGION


def test_without_peers_it_is_select_and_refusals_are_select_s() -> None:
    table = build_table(LOCAL, PublishedSteering(weights=EVERYWHERE), endpoints(LOCAL))
    for i in range(50):
        key = f"s{i}".encode()
        assert select_participant(table, "DE", "live_show", key, []) == select(table, "DE", "live_show", key)
    refused = select_participant(table, "XX", "live_show", b"k", ["fra"])
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.UNKNOWN_MARKET


def test_no_forbidden_region_for_any_participant_over_random_and_forged_states() -> None:
    rng = random.Random(18)
    regions = [r.name for r in PROD.regions] + ["atlantis"]
    urls = endpoints(PROD)
    for round_ in range(60):
        table = build_table(PROD, random_state(rng, PROD, forged=round_ % 3 == 0), urls)
        for i in range(100):
            market = rng.choice(PROD.markets).code
            peers = rng.sample(regions, rng.randint(1, 3))
            failed = [tuple(rng.sample(regions[:-1], 2)) for _ in range(rng.randint(0, 3))]
            answer = select_participant(table, market, "one_to_one", f"{round_}-{i}".encode(), peers, failed)
            if isinstance(answer, Answer):
                assert {e.region for e in answer.endpoints} <= allowed_from_spec(PROD, market)


def test_peer_regions_over_http(tmp_path) -> None:
    path = tmp_path / "steering.json"
    write_state(path, LOCAL, 1, EVERYWHERE)
    registry = CollectorRegistry()
    metrics = SelectorMetrics(LOCAL.name, registry)
    follower = PublishedStateFollower(LOCAL, FileSource(path), endpoints(LOCAL), on_table=metrics.table_changed)
    follower.refresh()
    server = SelectorServer(SelectorService(follower, metrics, registry), poll_seconds=3600)
    with server, httpx.Client(base_url=server.url, trust_env=False) as client:
        params = {"market": "ID", "scenario": "one_to_one", "session": "call-1", "peer_regions": "fra"}
        reply = client.get("/v1/select", params=params)
        assert reply.status_code == 200 and reply.json()["region"] == "cgk"
        params = {"market": "DE", "scenario": "one_to_one", "session": "call-1", "peer_regions": "cgk"}
        assert client.get("/v1/select", params=params).json()["region"] == "fra"


def test_backbone_paths_the_controller_published_as_failed_are_avoided(tmp_path) -> None:
    """The loop records the paths its plan saw failed with the weights (SteeringState.failed_backbone_links);
    the selector reads them with the state and sends no participant across them, without the client
    having to know."""
    path = tmp_path / "steering.json"
    state = SteeringState(
        environment=LOCAL.name, revision=2, weights=EVERYWHERE, failed_backbone_links=[("cgk", "fra")]
    )
    path.write_text(state.model_dump_json())
    follower = PublishedStateFollower(LOCAL, FileSource(path), endpoints(LOCAL))
    assert follower.refresh() and follower.table is not None
    answer = select_participant(follower.table, "DE", "one_to_one", b"room", ["cgk"])
    assert isinstance(answer, Answer) and answer.region == "dub"  # fra - cgk is out
    healed = state.model_copy(update={"failed_backbone_links": []})
    path.write_text(healed.model_dump_json())
    assert follower.refresh() and follower.table is not None
    answer = select_participant(follower.table, "DE", "one_to_one", b"room", ["cgk"])
    assert isinstance(answer, Answer) and answer.region == "fra"


def test_the_first_participant_goes_where_its_counterparts_can_be_reached_over_healthy_paths() -> None:
    """A DE host of a 1v1 with an ID buyer (ID: cgk only), before the buyer has a region: the EU region
    nearest end to end to cgk; with fra - cgk failed, dub (not where a blind answer would go); with every
    EU - cgk path failed, refused at once instead of after the host has joined."""
    table = build_table(LOCAL, PublishedSteering(weights=EVERYWHERE), endpoints(LOCAL))
    healthy = select_first_participant(table, "DE", "one_to_one", b"room", ["ID"])
    best = min(
        ("fra", "dub"),
        key=lambda r: table.routes["DE"].access_rtt_ms[r] + table.backbone_rtt_ms[(r, "cgk")],
    )
    assert isinstance(healthy, Answer) and healthy.region == best
    other = "dub" if best == "fra" else "fra"
    moved = select_first_participant(table, "DE", "one_to_one", b"room", ["ID"], failed_links=[(best, "cgk")])
    assert isinstance(moved, Answer) and moved.region == other
    refused = select_first_participant(
        table, "DE", "one_to_one", b"room", ["ID"], failed_links=[("fra", "cgk"), ("dub", "cgk")]
    )
    assert isinstance(refused, Refusal) and refused.code is RefusalCode.NO_COMPLIANT_REGION
    assert select_first_participant(table, "DE", "one_to_one", b"room", []) == select(
        table, "DE", "one_to_one", b"room"
    )
    unknown = select_first_participant(table, "DE", "one_to_one", b"room", ["XX"])
    assert isinstance(unknown, Refusal) and unknown.code is RefusalCode.UNKNOWN_MARKET


def test_counterpart_markets_over_http_follow_the_published_failed_paths(tmp_path) -> None:
    path = tmp_path / "steering.json"
    state = SteeringState(environment=LOCAL.name, revision=3, weights=EVERYWHERE, failed_backbone_links=[])
    path.write_text(state.model_dump_json())
    registry = CollectorRegistry()
    metrics = SelectorMetrics(LOCAL.name, registry)
    follower = PublishedStateFollower(LOCAL, FileSource(path), endpoints(LOCAL), on_table=metrics.table_changed)
    follower.refresh()
    server = SelectorServer(SelectorService(follower, metrics, registry), poll_seconds=3600)
    params = {"market": "DE", "scenario": "one_to_one", "session": "call-7", "counterpart_markets": "ID"}
    with server, httpx.Client(base_url=server.url, trust_env=False) as client:
        first = client.get("/v1/select", params=params).json()["region"]
        other = "dub" if first == "fra" else "fra"
        path.write_text(state.model_copy(update={"failed_backbone_links": [(first, "cgk")]}).model_dump_json())
        assert follower.refresh()
        assert client.get("/v1/select", params=params).json()["region"] == other
