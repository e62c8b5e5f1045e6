"""Cross-border sessions in the EnvironmentSpec: who takes part in a session, which market pairs meet,
and the inter-region backbone their media crosses when a session spans regions.

Part of `controller.spec` (import from there); read by the cross-border placement
(`controller/core/cross_border.py`), the selector's per-participant answer (`selector/decision.py`)
and `bench/cross_border_benchmark.py`. Structural checks are field constraints; the checks across
models (markets and regions exist, shares per market add up) are `session_problems`, run by the
spec's own validation (`controller.spec.cross_checks`), so `edgectl env validate` prints
`FILE: sessions.cross_market[2].guest: unknown market 'XX'`.

Concepts, one model each:
- `ParticipantShape`: how many hosts and viewers a session of a scenario has, and the end-to-end SLO
  between two participants (mouth to ear and back: access path, SFU, backbone, SFU, access path);
- `CrossMarketFlow`: the share of one market's sessions whose other participants are in another
  market (a buyer in ID calling a seller hosting in SG), with its own scenario mix;
- `BackboneModel` / `BackboneLink`: the RTT and loss of the cloud backbone between two regions,
  derived from the regions' geography unless measured, and what a cascade costs each region
  (a relay slot, inter-region bandwidth).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import Field

from controller.spec.fleet import MARKET_CODE_PATTERN, Fraction, FrozenModel, Name, Scenario
from controller.spec.residency_geography import Problem

if TYPE_CHECKING:
    from controller.spec.environment import EnvironmentSpec


class ParticipantShape(FrozenModel):
    """Who takes part in one session of a scenario, and the end-to-end quality it needs."""

    hosts_min: int = Field(strict=True, ge=1, le=50, description="Fewest hosts (people who publish media).")
    hosts_max: int = Field(strict=True, ge=1, le=50, description="Most hosts.")
    viewers_mean: float = Field(
        strict=True, ge=0, le=1_000_000, description="Mean viewers (subscribe only) per session; 0 for a call."
    )
    e2e_rtt_p95_ms: float = Field(
        strict=True,
        gt=0,
        le=5000,
        description="Highest acceptable p95 round trip between two participants: access path, SFU, backbone "
        "between cascaded SFUs, SFU, access path. Interactive talk needs one-way under ~150 ms (ITU-T G.114).",
    )
    e2e_max_loss_ratio: float = Field(
        strict=True, gt=0, lt=1, description="Highest acceptable loss between two participants (0.02 = 2%)."
    )
    relay_mbps: float = Field(
        strict=True,
        gt=0,
        le=1000,
        description="Inter-region bandwidth one cascaded session uses on each end (every host's simulcast "
        "layer forwarded once between the SFUs, whatever the number of viewers behind them).",
    )


class CrossMarketFlow(FrozenModel):
    """Sessions hosted in one market whose other participants are in another market."""

    host: str = Field(pattern=MARKET_CODE_PATTERN, description="Market of the session's (first) host.")
    guest: str = Field(
        pattern=MARKET_CODE_PATTERN,
        description="Market of the other side: the buyer of a 1v1, the viewers of a show, the co-host(s).",
    )
    share: Fraction = Field(
        description="Share of the host market's sessions (its demand profile, any hour) that involve the guest market."
    )
    scenario_mix: dict[Scenario, Fraction] = Field(
        description="Share of these sessions per scenario; shares sum to 1 (cross-border mixes differ from "
        "domestic ones: mostly 1v1 shopping calls)."
    )


class BackboneLink(FrozenModel):
    """A measured backbone path between two regions; wins over the geographic estimate (both directions)."""

    regions: tuple[Name, Name] = Field(description="The two regions (order does not matter).")
    rtt_ms: float = Field(strict=True, gt=0, le=2000, description="Measured median RTT between the two SFUs.")
    loss_ratio: float = Field(strict=True, default=0.0, ge=0, lt=1, description="Measured loss on the path.")


class BackboneModel(FrozenModel):
    """The inter-region backbone: RTT per path, and what a cascade costs each end."""

    base_rtt_ms: float = Field(
        strict=True, default=2.0, ge=0, le=200, description="Fixed RTT of a backbone hop (SFU to SFU, processing)."
    )
    rtt_ms_per_km: float = Field(
        strict=True,
        default=0.015,
        gt=0,
        le=1,
        description="RTT per great-circle km between regions: light in fibre ~0.01 ms/km; a cloud backbone "
        "routes closer to the great circle than the public internet (the access paths' default is 0.02).",
    )
    measured: list[BackboneLink] = Field(default_factory=list, description="Measured paths, overriding the estimate.")
    interregion_gbps: float = Field(
        strict=True,
        default=20.0,
        gt=0,
        le=100_000,
        description="Inter-region bandwidth each region may use for cascades (egress budget); a cascaded session "
        "counts its relay_mbps on both ends.",
    )
    cascade_min_gain_ms: float = Field(
        strict=True,
        default=10.0,
        ge=0,
        le=1000,
        description="A session whose sides may share a region spans two only when that is better end to end by "
        "more than this: a cascade takes a slot on both ends, backbone bandwidth, and adds an SFU hop.",
    )
    sick_loss_ratio: float = Field(
        strict=True,
        default=0.05,
        gt=0,
        lt=1,
        description="Observed loss at or above which a backbone path is failed: no session is cascaded over it "
        "(above ~5% loss audio breaks even with FEC). Below it, loss and RTT are priced into the placement.",
    )
    sick_rtt_factor: float = Field(
        strict=True,
        default=3.0,
        gt=1,
        le=100,
        description="Observed RTT at or above this factor of the path's unloaded RTT (plus 20 ms) fails the path.",
    )


class SessionModel(FrozenModel):
    """Sessions across markets: participant shapes per scenario, market pairs, and the backbone."""

    shapes: dict[Scenario, ParticipantShape] = Field(description="Participants and end-to-end SLO per scenario.")
    cross_market: list[CrossMarketFlow] = Field(
        default_factory=list, description="Sessions one market hosts with participants in another."
    )
    backbone: BackboneModel = Field(default_factory=BackboneModel, description="The inter-region backbone.")


def session_problems(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Cross-field problems of `spec.sessions` (none when the spec has no session model)."""
    sessions = spec.sessions
    if sessions is None:
        return
    market_codes = {m.code for m in spec.markets}
    region_names = {r.name for r in spec.regions}
    for scenario, shape in sessions.shapes.items():
        if shape.hosts_min > shape.hosts_max:
            yield (
                ("sessions", "shapes", scenario.value, "hosts_min"),
                f"hosts_min {shape.hosts_min} is greater than hosts_max {shape.hosts_max}",
                shape.hosts_min,
            )
        if scenario not in spec.scenarios:
            yield (
                ("sessions", "shapes", scenario.value),
                f"scenario {scenario.value!r} has no SLO in scenarios",
                scenario.value,
            )
    share_by_host: dict[str, float] = {}
    seen: set[tuple[str, str]] = set()
    for index, flow in enumerate(sessions.cross_market):
        where = ("sessions", "cross_market", index)
        for field_name, code in (("host", flow.host), ("guest", flow.guest)):
            if code not in market_codes:
                yield (*where, field_name), f"unknown market {code!r}", code
        if flow.host == flow.guest:
            yield (*where, "guest"), f"guest {flow.guest} is the host market: a flow crosses a border", flow.guest
        if (flow.host, flow.guest) in seen:
            yield (*where, "guest"), f"flow {flow.host} -> {flow.guest} listed twice", flow.guest
        seen.add((flow.host, flow.guest))
        total = sum(flow.scenario_mix.values())
        if not flow.scenario_mix or abs(total - 1.0) > 1e-6:
            yield (*where, "scenario_mix"), f"scenario shares must sum to 1, got {total:g}", dict(flow.scenario_mix)
        for scenario in flow.scenario_mix:
            if scenario not in sessions.shapes:
                yield (
                    (*where, "scenario_mix", scenario.value),
                    f"scenario {scenario.value!r} has no participant shape in sessions.shapes",
                    scenario.value,
                )
        share_by_host[flow.host] = share_by_host.get(flow.host, 0.0) + flow.share
        if share_by_host[flow.host] > 1.0 + 1e-9:
            yield (
                (*where, "share"),
                f"market {flow.host}'s cross-market shares add up to {share_by_host[flow.host]:g}, more than all "
                "its sessions",
                flow.share,
            )
    for index, link in enumerate(sessions.backbone.measured):
        for position, region in enumerate(link.regions):
            if region not in region_names:
                yield (
                    ("sessions", "backbone", "measured", index, "regions", position),
                    f"unknown region {region!r}",
                    region,
                )
        if link.regions[0] == link.regions[1]:
            yield (
                ("sessions", "backbone", "measured", index, "regions"),
                "a backbone path joins two different regions",
                list(link.regions),
            )
