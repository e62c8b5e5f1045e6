"""The demo's cross-border call: a 1v1 between a seller in DE and a buyer in ID, each side in its own
jurisdiction (DE: fra or dub; ID: cgk only), and its end-to-end QoS through a backbone impairment.

`cross_border_call(spec, fleet)` plays three phases against any fleet that can be observed and impaired
(the `CrossBorderFleet` protocol: the simulated fleet in-process, or the local stack's simulator over
its HTTP API, `SimulatorHttpFleet`, for `edgectl demo`):
1. healthy: the placement the loop makes from the snapshot (`controller.core.cross_border_tick`) and
   the region selector's per-participant answers (`selector.participants.select_participant`) put DE
   in fra and ID in cgk,
   cascaded (no region is allowed for both);
2. impaired: the fleet's backbone between cgk and fra loses `loss` of its packets; the backbone health
   (`controller.core.backbone_health`) fails the path from the fleet's own `edge_backbone_*` numbers
   and the call's DE side moves to dub (still in the EU), ID stays in cgk; next to it, what the call
   would feel on the pair a backbone-blind placement keeps (fra-cgk);
3. recovered: the impairment cleared, back to the best pair.
Each phase's e2e QoS is measured on the fleet's snapshot (access path p95 RTT and loss of each side,
plus the backbone's), judged against the 1v1 shape's SLO (`sessions.shapes.one_to_one`), and the
per-participant residency certificate is checked. `lines()` is the human report.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from controller.core.backbone_health import assess_backbone
from controller.core.cross_border_tick import cross_border_for_snapshot
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec, Scenario
from selector.decision import Answer, PublishedSteering, build_table, endpoint_urls
from selector.participants import select_participant
from sim.impairments import Impairment, ImpairmentKind

HOST, GUEST = "DE", "ID"
SESSION_KEY = b"demo-cross-border-1v1"


class CrossBorderFleet(Protocol):
    """What the demo needs of a fleet: its snapshot, and backbone impairments."""

    def snapshot(self) -> FleetSnapshot: ...

    def inject_impairment(self, impairment: Impairment) -> str: ...

    def clear_impairment(self, impairment_id: str) -> None: ...


class SimulatorHttpFleet:
    """The local stack's simulated fleet over its HTTP API (`sim/http_api.py`), for `edgectl demo`."""

    def __init__(self, base_url: str, timeout_seconds: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout_seconds, trust_env=False)

    def snapshot(self) -> FleetSnapshot:
        reply = self._client.get("/v1/snapshot")
        reply.raise_for_status()
        return FleetSnapshot.model_validate(reply.json())

    def inject_impairment(self, impairment: Impairment) -> str:
        reply = self._client.post("/v1/impairments", json=impairment.model_dump(mode="json", exclude_none=True))
        reply.raise_for_status()
        return str(reply.json()["id"])

    def clear_impairment(self, impairment_id: str) -> None:
        self._client.delete(f"/v1/impairments/{impairment_id}").raise_for_status()

    def close(self) -> None:
        self._client.close()


class CallPhase(BaseModel):
    """The 1v1 in one phase: where each side terminates, its e2e QoS, and a backbone-blind comparison."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: str = Field(description="healthy, impaired or recovered.")
    host_region: str = Field(description="Where DE's side terminates (the plan).")
    guest_region: str = Field(description="Where ID's side terminates (the plan).")
    selector_host_region: str = Field(description="The selector's answer for the DE participant, given ID's region.")
    selector_guest_region: str = Field(description="The selector's answer for the ID participant, given DE's region.")
    e2e_rtt_ms: float = Field(description="Measured p95 RTT DE -> SFU -> backbone -> SFU -> ID.")
    e2e_loss_ratio: float = Field(description="Measured loss end to end.")
    meets_slo: bool = Field(description="Within the one_to_one shape's e2e RTT and loss SLO.")
    blind_e2e_rtt_ms: float = Field(description="The same on fra-cgk, where a backbone-blind placement stays.")
    blind_e2e_loss_ratio: float = Field(description="Loss end to end on fra-cgk.")
    blind_meets_slo: bool = Field(description="fra-cgk within the SLO.")
    failed_links: list[tuple[str, str]] = Field(description="Backbone paths the health model failed.")
    residency_compliant: bool = Field(description="The plan's per-participant certificate.")
    why: str = Field(description="The plan's sentence for the DE->ID one_to_one flow.")


class CrossBorderDemoReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rtt_slo_ms: float
    loss_slo: float
    phases: list[CallPhase]

    def lines(self) -> list[str]:
        out = [
            f"Cross-border 1v1 {HOST} seller <-> {GUEST} buyer (e2e SLO: p95 RTT <= {self.rtt_slo_ms:g} ms, "
            f"loss <= {self.loss_slo:.1%})"
        ]
        for p in self.phases:
            out.append(
                f"  {p.phase:<9} {HOST} in {p.host_region}, {GUEST} in {p.guest_region} (selector: "
                f"{p.selector_host_region} / {p.selector_guest_region}): e2e {p.e2e_rtt_ms:.0f} ms, "
                f"loss {p.e2e_loss_ratio:.2%} {'OK' if p.meets_slo else 'BREACH'}; backbone-blind fra-cgk: "
                f"{p.blind_e2e_rtt_ms:.0f} ms, loss {p.blind_e2e_loss_ratio:.2%} "
                f"{'OK' if p.blind_meets_slo else 'BREACH'}; residency "
                f"{'each side in its own jurisdiction' if p.residency_compliant else 'VIOLATED'}"
            )
            out.append(f"            why: {p.why}")
        return out


def _e2e(snapshot: FleetSnapshot, host_region: str, guest_region: str) -> tuple[float, float]:
    """Measured e2e p95 RTT and loss of the call on (host_region, guest_region), from the snapshot."""
    host = snapshot.path(HOST, host_region)
    guest = snapshot.path(GUEST, guest_region)
    rtt = ((host.rtt_ms or 0.0) if host else 0.0) + ((guest.rtt_ms or 0.0) if guest else 0.0)
    delivered = (1.0 - ((host.loss_ratio or 0.0) if host else 0.0)) * (
        1.0 - ((guest.loss_ratio or 0.0) if guest else 0.0)
    )
    if host_region != guest_region:
        links = [o for o in snapshot.backbone if {o.region, o.peer_region} == {host_region, guest_region}]
        rtt += max((o.rtt_ms or 0.0 for o in links), default=0.0)
        delivered *= 1.0 - max((o.loss_ratio or 0.0 for o in links), default=0.0)
    return rtt, 1.0 - delivered


def _phase(name: str, spec: EnvironmentSpec, snapshot: FleetSnapshot) -> CallPhase:
    assert spec.sessions is not None
    shape = spec.sessions.shapes[Scenario.ONE_TO_ONE]
    health = assess_backbone(spec, snapshot.backbone)
    # The loop's own inputs from this snapshot (offered demand, the backbone and the access paths it
    # observes), so the plan's e2e figures are priced on what the fleet measures, as each tick's are.
    plan = cross_border_for_snapshot(spec, snapshot)
    pair = next(p for p in plan.pairs if (p.host, p.guest) == (HOST, GUEST))
    call = next(p for p in pair.placements if p.scenario is Scenario.ONE_TO_ONE)
    why = next(w for w in pair.why if w.startswith(f"{HOST}->{GUEST} {Scenario.ONE_TO_ONE.value}"))
    # The selector answers each participant from the published weights (here: every allowed region
    # weighted alike) given the other's region and the failed backbone paths.
    weights = {m.code: dict.fromkeys(spec.allowed_regions(m.code), 1.0) for m in spec.markets}
    table = build_table(spec, PublishedSteering(weights=weights), endpoint_urls(spec, "wss://{region}.demo", {}))
    failed = health.failed_links()
    host_answer = select_participant(table, HOST, "one_to_one", SESSION_KEY, [call.guest_region], failed)
    guest_answer = select_participant(table, GUEST, "one_to_one", SESSION_KEY, [call.host_region], failed)
    rtt, loss = _e2e(snapshot, call.host_region, call.guest_region)
    blind_rtt, blind_loss = _e2e(snapshot, "fra", "cgk")
    return CallPhase(
        phase=name,
        host_region=call.host_region,
        guest_region=call.guest_region,
        selector_host_region=host_answer.region if isinstance(host_answer, Answer) else "refused",
        selector_guest_region=guest_answer.region if isinstance(guest_answer, Answer) else "refused",
        e2e_rtt_ms=round(rtt, 3),
        e2e_loss_ratio=round(loss, 6),
        meets_slo=rtt <= shape.e2e_rtt_p95_ms and loss <= shape.e2e_max_loss_ratio,
        blind_e2e_rtt_ms=round(blind_rtt, 3),
        blind_e2e_loss_ratio=round(blind_loss, 6),
        blind_meets_slo=blind_rtt <= shape.e2e_rtt_p95_ms and blind_loss <= shape.e2e_max_loss_ratio,
        failed_links=failed,
        residency_compliant=plan.compliant,
        why=why,
    )


def cross_border_call(spec: EnvironmentSpec, fleet: CrossBorderFleet, loss: float = 0.08) -> CrossBorderDemoReport:
    """Play the three phases (module doc) on `fleet`; the impairment is cleared even if a phase fails."""
    if spec.sessions is None or not any(
        (f.host, f.guest) == (HOST, GUEST) and Scenario.ONE_TO_ONE in f.scenario_mix for f in spec.sessions.cross_market
    ):
        raise ValueError(f"{spec.name}: sessions.cross_market has no {HOST} -> {GUEST} one_to_one flow to show")
    phases = [_phase("healthy", spec, fleet.snapshot())]
    impairment = fleet.inject_impairment(
        Impairment(region="cgk", peer_region="fra", kind=ImpairmentKind.EXTRA_LOSS, magnitude=loss)
    )
    try:
        phases.append(_phase("impaired", spec, fleet.snapshot()))
    finally:
        fleet.clear_impairment(impairment)
    phases.append(_phase("recovered", spec, fleet.snapshot()))
    shape = spec.sessions.shapes[Scenario.ONE_TO_ONE]
    return CrossBorderDemoReport(rtt_slo_ms=shape.e2e_rtt_p95_ms, loss_slo=shape.e2e_max_loss_ratio, phases=phases)
