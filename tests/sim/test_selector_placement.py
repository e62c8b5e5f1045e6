"""The fleet's new sessions placed by the region selector (`sim/selector_placement.py`).

Against a real selector on loopback: sessions land where the selector's answers send them (not
where the fleet's own weights say), a forged out-of-jurisdiction weight never lands a session
outside its market's regions, and every whole arrival is asked for. With a stand-in transport: the
fallback when the selector is unreachable or has no plan (last answers' shares, counted, never
outside the allowed regions) and the retry after a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
from prometheus_client import CollectorRegistry

from controller.steering import SteeringState
from selector.decision import endpoint_urls
from selector.http_server import SelectorServer, SelectorService
from selector.metrics import SelectorMetrics
from selector.published_state import FileSource, PublishedStateFollower
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.selector_placement import FallbackReason, SelectorPlacement
from tests.sim.conftest import START, tiny_spec, tiny_trace

SPEC = tiny_spec()
AT = START.timestamp()


def publish(path: Path, revision: int, weights: dict[str, dict[str, float]]) -> None:
    state = SteeringState(environment=SPEC.name, revision=revision, weights=weights)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.model_dump_json())
    tmp.replace(path)


def start_selector(path: Path) -> SelectorServer:
    registry = CollectorRegistry()
    metrics = SelectorMetrics(SPEC.name, registry)
    follower = PublishedStateFollower(SPEC, FileSource(path), endpoint_urls(SPEC, "wss://{region}.test", {}))
    metrics.follow(follower)
    return SelectorServer(SelectorService(follower, metrics, registry), poll_seconds=3600).start()


def market_sessions(fleet: SimulatedFleet, market: str) -> dict[str, float]:
    snapshot = fleet.snapshot()
    return {p.region: p.active_sessions for p in snapshot.paths if p.market == market and p.active_sessions > 0.5}


def test_new_sessions_land_where_the_selector_answers_never_outside_jurisdictions(tmp_path: Path) -> None:
    path = tmp_path / "steering-tiny.json"
    # DE to dub (the fleet's own weights keep DE on fra, its nearest region); SG forged onto... nothing
    # forbidden exists for SG, so DE carries the forged weight: half of it on sin, outside the EU.
    publish(path, 4, {"DE": {"dub": 0.5, "sin": 0.5}, "SG": {"sin": 1.0}})
    server = start_selector(path)
    placement = SelectorPlacement(SPEC, server.url, session_prefix="t-")
    try:
        fleet = SimulatedFleet(SPEC, tiny_trace(), start=START, region_placement=placement)
        assert set(market_sessions(fleet, "DE")) == {"fra"}  # warm start: the fleet's own weights
        fleet.set_desired_nodes("dub", 30, plan_id="t", actor="test", reason="room for DE")
        fleet.advance(3 * 3600)
        books = placement.books()
        assert books.selector_up and books.revision == 4 and books.failed_requests == 0
        assert set(books.selector_sessions["DE"]) == {"dub"} and set(books.selector_sessions["SG"]) == {"sin"}
        # every whole arrival was asked: ~100 DE sessions of 10 min -> ~10/min, 180 min
        assert 1500 < books.selector_sessions["DE"]["dub"] < 2100
        assert books.fallback_sessions == {} and books.refused_sessions.get("DE", {}) == {}
        de = market_sessions(fleet, "DE")
        assert de.keys() == {"dub"}, de  # fra's warm-start sessions ended, no new one went there
        assert fleet.accounting().residency_violations == 0

        publish(path, 5, {"DE": {"sin": 1.0}})  # forged: DE's only weight is outside its jurisdictions
        server.service.follower.refresh()
        fleet.advance(1800)
        books = placement.books()
        assert books.revision == 5 and books.refused_sessions["DE"]["no_compliant_region"] > 100
        assert "sin" not in books.selector_sessions["DE"]
        assert fleet.accounting().residency_violations == 0
        assert fleet.accounting().failed_sessions > 100  # refused sessions are lost (unrouted), as clients would be
        with SimulatorServer(fleet, run_clock=False) as sim:  # the books on the fleet's /metrics too
            text = httpx.get(f"{sim.url}/metrics").text
        assert (
            f'edge_sim_placed_sessions_total{{market="DE",region="dub",via="selector"}} {books.selector_sessions["DE"]["dub"]}.0'
            in text
        )
        assert 'edge_sim_selector_refused_sessions_total{code="no_compliant_region",market="DE"}' in text
        assert "edge_sim_selector_up 1.0" in text
    finally:
        placement.close()
        server.stop()


def stand_in(answers: list[object]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """Answers the batch requests in turn: a dict of {market: {region: n}} per group, or an exception."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        groups = []
        for item in request.url.params["groups"].split(","):
            market, scenario, _, count = item.split(":")
            regions = answer.get("regions", {}).get(market, {})
            total = sum(regions.values()) or 1
            shares = {region: round(int(count) * w / total) for region, w in regions.items()}
            refusals = {} if regions else {answer.get("refusal", "no_steering_state"): int(count)}
            groups.append({"market": market, "scenario": scenario, "answers": shares, "refusals": refusals})
        body = {"revision": answer.get("revision", 1), "state_age_seconds": 0.1, "groups": groups}
        return httpx.Response(200, content=json.dumps(body))

    return httpx.MockTransport(handle), seen


def arrivals(de: float, sg: float) -> np.ndarray:
    return np.array([[de], [sg]])


def test_the_fallback_keeps_the_last_answers_shares_within_jurisdictions_and_counts_them() -> None:
    clock = [0.0]
    # 1st: the selector (wrongly) sends DE to sin; 2nd: down; later: up again with DE on fra.
    transport, seen = stand_in(
        [
            {"regions": {"DE": {"dub": 1, "sin": 1}, "SG": {"sin": 1}}},
            httpx.ConnectError("refused"),
            {"regions": {"DE": {"fra": 1}, "SG": {"sin": 1}}},
        ]
    )
    placement = SelectorPlacement(SPEC, "http://selector.test", transport=transport, retry_after_seconds=2.0,
                                  clock=lambda: clock[0])  # fmt: skip
    weights = np.zeros((2, 3))
    first = placement.route(arrivals(10.4, 4.0), weights, AT)
    assert (
        first.routed[0, :, 0].tolist() == [0, 5, 5] and first.unrouted == 0
    )  # answered as said (the referee counts sin)
    assert placement._carry[0, 0] == np.float64(10.4 - 10)

    down = placement.route(arrivals(10.0, 4.0), weights, AT)
    books = placement.books()
    assert not books.selector_up and books.failed_requests == 1 and "ConnectError" in books.last_error
    # DE's last answers were half dub, half sin: the fallback keeps only dub (EU), never sin
    assert down.routed[0, :, 0].tolist() == [0, 10, 0] and down.routed[1, :, 0].tolist() == [0, 0, 4]
    assert books.fallback_sessions[FallbackReason.SELECTOR_UNREACHABLE] == {"DE": {"dub": 10}, "SG": {"sin": 4}}

    placement.route(arrivals(10.0, 0.0), weights, AT)  # within the retry wait: not asked
    assert len(seen) == 2
    clock[0] = 2.5
    again = placement.route(arrivals(10.0, 0.0), weights, AT)
    assert len(seen) == 3 and placement.books().selector_up and again.routed[0, :, 0].tolist() == [10, 0, 0]
    keys = [request.url.params["groups"] for request in seen]
    assert keys[0] == "DE:one_to_one:0:10,SG:one_to_one:0:4" and keys[2].startswith("DE:one_to_one:20:")
    timeline = placement.timeline()  # per step, at the fleet's clock: what the selector placed, what the fallback did
    assert [step.selector for step in timeline] == [
        {"DE": {"dub": 5, "sin": 5}, "SG": {"sin": 4}},
        {},
        {},
        {"DE": {"fra": 10}},
    ]
    assert timeline[1].fallback == {"DE": {"dub": 10.0}, "SG": {"sin": 4.0}} and timeline[0].at == START


def test_before_the_first_plan_the_fleet_places_by_nearest_allowed_region_and_says_so() -> None:
    transport, _ = stand_in([{"revision": 0, "refusal": "no_compliant_region"}])
    placement = SelectorPlacement(SPEC, "http://selector.test", transport=transport)
    routed = placement.route(arrivals(6.0, 3.0), np.zeros((2, 3)), AT)
    assert routed.routed[:, :, 0].tolist() == [[6, 0, 0], [0, 0, 3]] and routed.unrouted == 0
    books = placement.books()
    assert books.fallback_sessions[FallbackReason.NO_STEERING_STATE] == {"DE": {"fra": 6}, "SG": {"sin": 3}}
    assert books.refused_sessions == {}  # revision 0 refusals are "no plan yet", not the controller's refusals


def test_sessions_beyond_the_per_step_limit_are_placed_by_the_fallback_and_counted() -> None:
    transport, seen = stand_in([{"regions": {"DE": {"dub": 1}, "SG": {"sin": 1}}}])
    placement = SelectorPlacement(SPEC, "http://selector.test", transport=transport, max_sessions_per_step=10)
    routed = placement.route(arrivals(30.0, 10.0), np.zeros((2, 3)), AT)
    assert routed.routed.sum() == 40 and seen[0].url.params["groups"] == "DE:one_to_one:0:7,SG:one_to_one:0:2"
    assert placement.books().fallback_sessions[FallbackReason.OVER_BATCH_LIMIT]["DE"] == {"fra": 23}
