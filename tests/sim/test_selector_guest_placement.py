"""The guest side of cross-market sessions placed by the region selector's per-participant answer
(`sim/selector_guest_placement.py`): against a real selector on loopback, and with a stand-in that answers
outside the guest's rules or is down (the port falls back, never outside the guest market's rules)."""

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
from sim.fleet import CrossMarketFlows, SimulatedFleet
from sim.http_api import SimulatorServer
from sim.selector_guest_placement import GuestVia, SelectorGuestPlacement
from tests.sim.conftest import tiny_trace
from tests.sim.cross_market_spec import cross_market_spec

SPEC = cross_market_spec()
FLOWS = CrossMarketFlows.from_spec(SPEC, [m.code for m in SPEC.markets], list(SPEC.scenarios))
assert FLOWS is not None
REGIONS = [r.name for r in SPEC.regions]
DE_ID, DE_SG, SG_DE = 0, 1, 2


def start_selector(path: Path) -> SelectorServer:
    state = SteeringState(
        environment=SPEC.name, revision=3, weights={"DE": {"fra": 1.0}, "SG": {"sin": 1.0}, "ID": {"cgk": 1.0}}
    )
    path.write_text(state.model_dump_json())
    registry = CollectorRegistry()
    metrics = SelectorMetrics(SPEC.name, registry)
    follower = PublishedStateFollower(SPEC, FileSource(path), endpoint_urls(SPEC, "wss://{region}.test", {}))
    metrics.follow(follower)
    return SelectorServer(SelectorService(follower, metrics, registry), poll_seconds=3600).start()


def test_guest_sides_go_where_the_selector_answers_each_participant(tmp_path: Path) -> None:
    server = start_selector(tmp_path / "steering.json")
    try:
        guests = SelectorGuestPlacement(SPEC, FLOWS, server.url)
        fleet = SimulatedFleet(SPEC, tiny_trace(2), demand_variation=0.0, guest_placement=guests)
        fleet.advance(1800)
        placed = guests.placed_sessions()
        assert guests.failed_requests == 0 and guests.requests > 0
        # ID's participants: cgk, the only region its rules allow, near DE's side in fra.
        assert {(r, v) for (m, r, v) in placed if m == "ID"} == {("cgk", GuestVia.SELECTOR)}
        # SG's participants of DE's calls could join fra (SG's rules allow it), but sin + the backbone to fra is
        # shorter end to end than SG's access path to fra by more than the cascade's cost: the selector cascades
        # (the in-process default would have kept them in fra).
        assert {(r, v) for (m, r, v) in placed if m == "SG"} == {("sin", GuestVia.SELECTOR)}
        assert {(c.host_region, c.guest_region) for c in fleet.cross_border_sessions() if c.guest == "SG"} >= {
            ("fra", "sin")
        }
        assert {r for (m, r, v) in placed if m == "DE"} <= {"fra", "dub"}
        books = fleet.accounting()
        assert books.participant_residency_violations == 0.0 and books.cross_border_session_minutes > 0
        with SimulatorServer(fleet, run_clock=False) as sim:
            text = httpx.get(f"{sim.url}/metrics").text
        assert 'edge_sim_guest_placed_sessions_total{market="ID",region="cgk",via="selector"}' in text
    finally:
        server.stop()


def stand_in(answers: list[object]) -> httpx.MockTransport:
    """Answers every /v1/select in turn from `answers`: a region name, a refusal code (prefixed "!"), or an error."""
    count = [0]

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers[min(count[0], len(answers) - 1)]
        count[0] += 1
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, str)
        if answer.startswith("!"):
            return httpx.Response(409, content=json.dumps({"refused": True, "code": answer[1:]}))
        return httpx.Response(200, content=json.dumps({"region": answer, "endpoints": []}))

    return httpx.MockTransport(handle)


def de_id_guests(guests: SelectorGuestPlacement) -> np.ndarray:
    host_sides = np.zeros((FLOWS.count, len(REGIONS), 1))  # type: ignore[union-attr]
    host_sides[DE_ID, REGIONS.index("fra"), 0] = 5.0
    return guests.route_guests(host_sides, 0.0)[DE_ID, REGIONS.index("fra"), :, 0]


def test_an_answer_outside_the_guests_rules_or_no_answer_falls_back_within_them() -> None:
    clock = [0.0]
    guests = SelectorGuestPlacement(
        SPEC,
        FLOWS,  # type: ignore[arg-type]
        "http://selector.test",
        transport=stand_in(["sin", httpx.ConnectError("refused"), "!no_compliant_region"]),
        clock=lambda: clock[0],
        answer_ttl_seconds=1.0,
        retry_after_seconds=2.0,
    )
    cgk = REGIONS.index("cgk")
    routed = de_id_guests(guests)  # the selector says sin: outside Indonesia, not followed
    assert routed[cgk] == 5.0 and routed.sum() == 5.0
    clock[0] = 1.5
    routed = de_id_guests(guests)  # down: the in-process rule
    assert routed[cgk] == 5.0 and guests.failed_requests == 1
    clock[0] = 2.0
    assert de_id_guests(guests)[cgk] == 5.0  # not asked again before retry_after
    clock[0] = 4.0
    assert de_id_guests(guests).sum() == 0.0  # refused: lost, as a refused client is
    assert guests.placed_sessions() == {
        ("ID", "cgk", GuestVia.ANSWER_OUTSIDE_RULES): 5.0,
        ("ID", "cgk", GuestVia.SELECTOR_UNREACHABLE): 10.0,
        ("ID", "", GuestVia.REFUSED): 5.0,
    }
