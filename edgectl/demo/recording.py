"""The demo's recorded run: fleet samples over time, scenario events, and what the CLI returned.

`edgectl/demo/scenario.py` fills a `DemoRecording` while the scenario runs (sampling the simulated
fleet's HTTP API) and saves it as `recording.json` in the report folder; `edgectl/demo/measurements.py`
measures it and `edgectl/demo/report.py` draws it. The fleet's placement timeline (where the region
selector sent every new session, step by step) is read once at the end. Keeping the raw series lets anyone rebuild or
re-check a report from a past run. Times are kept twice: wall seconds since the scenario started and
the simulated clock (the fleet runs `speed` times faster than the wall clock).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from controller.snapshot import FleetSnapshot


class RecordingModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionSample(RecordingModel):
    """One region at one sample."""

    desired_nodes: int = Field(ge=0, description="Node count the region was asked to run.")
    ready_nodes: int = Field(ge=0, description="Nodes serving new sessions.")
    booting_nodes: int = Field(ge=0, description="Nodes requested, not serving yet.")
    draining_nodes: int = Field(ge=0, description="Nodes taking no new sessions.")
    ready_capacity: int = Field(ge=0, description="Sessions the ready nodes carry at 100%.")
    active_sessions: int = Field(ge=0, description="Sessions carried now.")


class PathSample(RecordingModel):
    """QoS of one market's sessions in one region at one sample (None: unknown)."""

    market: str
    region: str
    rtt_ms: float | None = None
    loss_ratio: float | None = None
    jitter_ms: float | None = None
    active_sessions: int = 0


class FleetCounters(RecordingModel):
    """Cumulative counters of the simulated fleet's own accounting (None when it did not report one)."""

    residency_violations: float | None = Field(default=None, description="Sessions placed outside allowed regions.")
    rejected_sessions: float | None = Field(default=None, description="Sessions refused for lack of capacity.")
    degraded_sessions: float | None = Field(default=None, description="Sessions admitted beyond capacity.")
    dropped_sessions: float | None = Field(default=None, description="Sessions cut by node removal.")
    rejected_by_region: dict[str, float] = Field(default_factory=dict, description="Rejected sessions per region.")


class FleetSample(RecordingModel):
    """The fleet as the scenario saw it at one instant."""

    wall_seconds: float = Field(description="Wall seconds since the scenario started.")
    sim_time: AwareDatetime = Field(description="The simulated clock at this sample.")
    phase: str = Field(description="Scenario phase running when the sample was taken.")
    regions: dict[str, RegionSample] = Field(description="Per region.")
    offered_sessions: dict[str, float] = Field(description="Per market: sessions users want (served + refused).")
    weights: dict[str, dict[str, float]] = Field(description="Traffic weights in force: market -> region -> share.")
    paths: list[PathSample] = Field(default_factory=list, description="QoS per market->region path.")
    counters: FleetCounters = Field(default_factory=FleetCounters, description="Cumulative fleet counters.")

    @classmethod
    def from_snapshot(
        cls, snapshot: FleetSnapshot, *, wall_seconds: float, phase: str, counters: FleetCounters | None = None
    ) -> FleetSample:
        regions = {}
        for region in snapshot.regions:
            regions[region.region] = RegionSample(
                desired_nodes=region.desired_nodes,
                ready_nodes=region.ready_nodes,
                booting_nodes=region.booting_nodes,
                draining_nodes=region.draining_nodes,
                ready_capacity=region.ready_capacity,
                active_sessions=region.active_sessions,
            )
        return cls(
            wall_seconds=wall_seconds,
            sim_time=snapshot.taken_at,
            phase=phase,
            regions=regions,
            offered_sessions={m.market: m.offered_sessions for m in snapshot.markets},
            weights={m: dict(w) for m, w in snapshot.current_weights.items()},
            paths=[
                PathSample(
                    market=p.market,
                    region=p.region,
                    rtt_ms=p.rtt_ms,
                    loss_ratio=p.loss_ratio,
                    jitter_ms=p.jitter_ms,
                    active_sessions=p.active_sessions,
                )
                for p in snapshot.paths
            ],
            counters=counters or FleetCounters(),
        )

    def region_demand(self, region: str) -> float:
        """Sessions the traffic weights send to `region`: sum over markets of offered x weight."""
        return sum(
            offered * self.weights.get(market, {}).get(region, 0.0) for market, offered in self.offered_sessions.items()
        )

    def share(self, markets: list[str], region: str) -> float:
        """Offered-weighted share of `markets`' traffic sent to `region` (plain mean if no demand)."""
        total = sum(self.offered_sessions.get(m, 0.0) for m in markets)
        if total <= 0:
            return sum(self.weights.get(m, {}).get(region, 0.0) for m in markets) / max(1, len(markets))
        sent = sum(self.offered_sessions.get(m, 0.0) * self.weights.get(m, {}).get(region, 0.0) for m in markets)
        return sent / total


class PlacementStepSample(RecordingModel):
    """New sessions one step of the fleet placed (`GET /v1/placement/timeline`): where the selector's
    answers sent them, and where the fleet's fallback put them when the selector gave no answer."""

    at: AwareDatetime = Field(description="The fleet's clock at the end of the step.")
    selector: dict[str, dict[str, int]] = Field(default_factory=dict, description="Market -> region -> sessions.")
    fallback: dict[str, dict[str, float]] = Field(default_factory=dict, description="Market -> region -> sessions.")


class ScenarioEvent(RecordingModel):
    """Something the scenario did (phase start, impairment injected, drill started...)."""

    wall_seconds: float = Field(description="Wall seconds since the scenario started.")
    sim_time: AwareDatetime | None = Field(default=None, description="The simulated clock then, if known.")
    kind: str = Field(description="phase | flash_sale_start | flash_sale_end | impairment_start | ... ")
    detail: dict[str, Any] = Field(default_factory=dict, description="Parameters (region, market, ...).")


class WeightChange(RecordingModel):
    """One traffic-weight actuation the simulated fleet recorded (who set which weights when)."""

    sim_time: AwareDatetime
    weights: dict[str, dict[str, float]]
    plan_id: str = ""
    actor: str = ""


class DemoSettings(RecordingModel):
    """How the run was set up (echoed in the report)."""

    environment: str
    env_path: str
    speed: float
    sim_start: AwareDatetime
    duration_scale: float
    sample_interval_seconds: float
    flash_sale_market: str
    flash_sale_region: str
    impaired_region: str
    impaired_markets: list[str]
    impairment_loss_ratio: float
    drill_region: str
    controller_tick_seconds: float | None = None


class DemoRecording(RecordingModel):
    """Everything a report is built from."""

    settings: DemoSettings
    started_at: datetime = Field(description="Wall-clock start (UTC).")
    wall_seconds_total: float = Field(default=0.0, description="Scenario wall time, stack start to teardown.")
    samples: list[FleetSample] = Field(default_factory=list)
    events: list[ScenarioEvent] = Field(default_factory=list)
    weight_changes: list[WeightChange] = Field(default_factory=list, description="From the fleet's actuation log.")
    drill_result: dict[str, Any] | None = Field(default=None, description="`edgectl drill run --json` output.")
    drill_exit_code: int | None = None
    drill_stderr: str = ""
    final_accounting: dict[str, Any] = Field(default_factory=dict, description="The fleet's accounting at the end.")
    placement_mode: str | None = Field(
        default=None, description="How the fleet placed new sessions: selector (the stack's) or weights."
    )
    placement_books: dict[str, Any] | None = Field(
        default=None, description="The fleet's placement books at the end (selector answers, refusals, fallback)."
    )
    placement_timeline: list[PlacementStepSample] = Field(
        default_factory=list, description="What each fleet step placed, by the selector or the fallback."
    )
    stack_urls: dict[str, str] = Field(default_factory=dict)
    child_pids: dict[str, int] = Field(default_factory=dict, description="Process of each stack component.")
    cross_border: list[str] = Field(
        default_factory=list,
        description="The cross-border 1v1 ID <-> DE through a backbone impairment (edgectl/demo/cross_border.py).",
    )
    problems: list[str] = Field(default_factory=list, description="What went wrong during the run, in words.")

    def events_of(self, kind: str) -> list[ScenarioEvent]:
        return [event for event in self.events if event.kind == kind]

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path) -> DemoRecording:
        return cls.model_validate_json(path.read_text())


__all__ = [
    "DemoRecording",
    "DemoSettings",
    "FleetCounters",
    "FleetSample",
    "PathSample",
    "PlacementStepSample",
    "RegionSample",
    "ScenarioEvent",
    "WeightChange",
]
