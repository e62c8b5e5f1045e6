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


def start_selector(path: Path, **state_fields: object) -> SelectorServer:
    state = SteeringState(
        environment=SPEC.name,
        revision=3,
        weights={"DE": {"fra": 1.0}, "SG": {"sin": 1.0}, "ID": {"cgk": 1.0}},
        **state_fields,  # type: ignore[arg-type]
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


def stand_in(answers: list[object], hosts: list[object] | None = None) -> httpx.MockTransport:
    """Answers every guest-side /v1/select (with peer_regions) in turn from `answers`, every host-side one
    from `hosts` (default: fra, where DE's weights already put DE's side): a region name, a refusal code
    (prefixed "!"), or an error."""
    count = [0, 0]
    host_answers: list[object] = hosts if hosts is not None else ["fra"]

    def handle(request: httpx.Request) -> httpx.Response:
        guest = "peer_regions" in request.url.params
        queue, n = (answers, 0) if guest else (host_answers, 1)
        answer = queue[min(count[n], len(queue) - 1)]
        count[n] += 1
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


def test_both_sides_go_where_the_controllers_published_plan_puts_them(tmp_path: Path) -> None:
    """The plan moved DE -> ID to dub | cgk (say fra - cgk is sick): the DE host sides, which DE's weights put in
    fra, ask the selector first with their counterpart's market and start in dub, the ID guests in cgk."""
    share = {"host": "DE", "guest": "ID", "scenario": "one_to_one", "host_region": "dub", "guest_region": "cgk"}
    server = start_selector(tmp_path / "steering.json", cross_border_shares=[{**share, "share": 1.0}])
    try:
        guests = SelectorGuestPlacement(SPEC, FLOWS, server.url)  # type: ignore[arg-type]
        fleet = SimulatedFleet(SPEC, tiny_trace(2), instant_boot=True, demand_variation=0.0, guest_placement=guests)
        fleet.set_desired_nodes("dub", 2, plan_id="p", actor="test", reason="room for the planned calls")
        fleet.advance(2 * 3600)  # the warm start's fra | cgk calls have ended: 10-minute calls
        de_id = {(c.host_region, c.guest_region): c.sessions for c in fleet.cross_border_sessions() if c.guest == "ID"}
        assert de_id.get(("dub", "cgk"), 0.0) > 19.0 and de_id.get(("fra", "cgk"), 0.0) < 0.01
        assert {(m, r, v) for (m, r, v) in guests.placed_host_sessions() if m == "DE" and r == "dub"} == {
            ("DE", "dub", GuestVia.SELECTOR)
        }
        assert fleet.accounting().participant_residency_violations == 0.0
    finally:
        server.stop()


def test_a_host_answer_outside_the_hosts_rules_is_not_followed() -> None:
    guests = SelectorGuestPlacement(
        SPEC,
        FLOWS,  # type: ignore[arg-type]
        "http://selector.test",
        transport=stand_in(["cgk"], hosts=["cgk"]),  # DE's host in Jakarta: outside the EU
    )
    host_sides = np.zeros((FLOWS.count, len(REGIONS), 1))  # type: ignore[union-attr]
    host_sides[DE_ID, REGIONS.index("fra"), 0] = 5.0
    routed = guests.route_guests(host_sides, 0.0)[DE_ID, :, :, 0]
    assert routed[REGIONS.index("fra"), REGIONS.index("cgk")] == 5.0 and routed.sum() == 5.0
    assert guests.placed_host_sessions() == {("DE", "fra", GuestVia.ANSWER_OUTSIDE_RULES): 5.0}
