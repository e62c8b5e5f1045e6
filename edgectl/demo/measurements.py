"""What the demo measured, computed from a recorded run (never from configured values).

Pure functions over a `DemoRecording` (`edgectl/demo/recording.py`) and the EnvironmentSpec:
- how long after the impairment started the controller first moved traffic off the impaired region
  (from the fleet's actuation log when it has one, else from the sampled weights), how far, and
  when traffic came back after recovery;
- the same shift as clients saw it: the share of the impaired markets' new sessions the region
  selector's answers sent elsewhere, step by step from the fleet's placement timeline (the local
  stack places every new session by asking the selector), in fleet seconds;
- whether capacity in the flash-sale region was ready before demand reached it (lead time per
  demand level, saturated samples, sessions rejected there);
- residency: violations counted by the simulated fleet, plus an independent check of every sampled
  weight against the markets' allowed regions;
- the drill scorecard as returned by `edgectl drill run --json`.
Used by `edgectl/demo/report.py` (report and console summary) and the end-to-end test.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from controller.spec import EnvironmentSpec
from edgectl.demo.recording import DemoRecording, FleetSample, PlacementStepSample

# A shift away from the impaired region: one impaired market's weight there drops this much below its
# pre-impairment value. The controller also rebalances on its own as regions fill (a few points per
# tick); a health-driven move steers the region's new sessions away in one plan.
SHIFT_THRESHOLD = 0.2
# "New sessions steered away": the impaired markets' weight on the region is at most this part of its
# baseline, i.e. >= 90% of their new sessions go elsewhere (weights route new sessions).
STEERED_AWAY_FRACTION = 0.1
# Traffic counts as "back" once the impaired markets' share on the region regains this part of its baseline.
RETURN_FRACTION = 0.5
# Issue 17's goal, in seconds of the fleet's clock after onset: 90% of the affected markets' new sessions
# elsewhere within 15 s at the median (30 s at p95; one demo run is one sample, judged on the median).
# Judged on fleet seconds only: a wall-clock figure of an accelerated run says nothing about a real region.
STEER_GOAL_FLEET_SECONDS = 15.0


# A step of the fleet counts for the selector-measured shift only with this many new sessions of the
# impaired markets (a step's share of a handful of sessions is noise).
MIN_STEP_SESSIONS = 5


class MeasureModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SteeringVerdict:
    """The verdicts shared by the two views of one shift (the weights, and the selector's answers): both
    carry first_shift_sim_seconds, steered_away_sim_seconds and goal_fleet_seconds (fleet seconds)."""

    if TYPE_CHECKING:  # declared by the models themselves, as pydantic fields
        first_shift_sim_seconds: float | None
        steered_away_sim_seconds: float | None
        goal_fleet_seconds: float

    @property
    def shifted(self) -> bool:
        return self.first_shift_sim_seconds is not None

    @property
    def within_goal(self) -> bool | None:
        """Judged on fleet seconds only; None when the new sessions were never steered away."""
        if self.steered_away_sim_seconds is None:
            return None
        return self.steered_away_sim_seconds <= self.goal_fleet_seconds


class ShiftMeasurement(SteeringVerdict, MeasureModel):
    """Impairment of one region -> the controller's traffic shift away from it, and back."""

    region: str
    markets: list[str]
    impairment_start_sim: datetime | None = None
    impairment_end_sim: datetime | None = None
    baseline_weights: dict[str, float] = Field(default_factory=dict, description="Per market, just before.")
    first_shift_sim_seconds: float | None = Field(default=None, description="Impairment start -> first reduced weight.")
    first_shift_wall_seconds: float | None = None
    lowest_share: float | None = Field(default=None, description="Lowest mean weight on the region while impaired.")
    return_sim_seconds: float | None = Field(default=None, description="Impairment end -> traffic back.")
    return_wall_seconds: float | None = None
    source: str = Field(default="", description="actuation log | weight samples")
    steered_away_sim_seconds: float | None = Field(
        default=None,
        description="Impairment start -> the impaired markets' weight on the region at most 10% of its baseline "
        "(>= 90% of their new sessions elsewhere), in fleet seconds.",
    )
    goal_fleet_seconds: float = Field(
        default=STEER_GOAL_FLEET_SECONDS, description="Issue 17's goal for steered_away_sim_seconds (fleet seconds)."
    )


class SelectorShiftMeasurement(SteeringVerdict, MeasureModel):
    """The impairment's shift as it reached clients: the impaired markets' new sessions the region
    selector's answers sent elsewhere, from the fleet's placement timeline (fleet seconds, one fleet
    step of resolution: the fleet asks the selector once per step)."""

    region: str
    markets: list[str]
    sessions_before: int = Field(description="Impaired markets' sessions the selector placed just before (a window "
                                 "as long as the impairment).")  # fmt: skip
    share_elsewhere_before: float | None = Field(description="Of those, the share sent to other regions.")
    sessions_during: int = Field(description="Impaired markets' sessions the selector placed while impaired.")
    share_elsewhere_during: float | None = Field(description="Of those, the share sent to other regions.")
    first_shift_sim_seconds: float | None = Field(
        default=None, description="Impairment start -> first step sending a share elsewhere 20 points above before."
    )
    steered_away_sim_seconds: float | None = Field(
        default=None,
        description="Impairment start -> first step with at most 10% of the region's share before on it "
        "(>= 90% of the new sessions it took elsewhere).",
    )
    regions_during: list[str] = Field(default_factory=list, description="Regions the selector sent them to.")
    fallback_sessions_during: float = Field(
        default=0.0, description="Their sessions the fleet placed without a selector answer while impaired."
    )
    goal_fleet_seconds: float = STEER_GOAL_FLEET_SECONDS


class ScaleOutMeasurement(MeasureModel):
    """Flash sale in one market: did the region's ready capacity stay ahead of its demand?"""

    region: str
    market: str
    capacity_before: int = Field(description="Ready capacity (sessions at 100%) when the sale started.")
    nodes_before: int
    peak_demand: float = Field(description="Highest demand the weights sent to the region during the sale.")
    peak_ready_capacity: int
    peak_desired_nodes: int
    first_scale_out_sim_seconds: float | None = Field(
        default=None, description="Sale start -> first increase of desired nodes."
    )
    demand_exceeded_old_capacity_sim_seconds: float | None = Field(
        default=None, description="Sale start -> demand first above the capacity the region had before."
    )
    min_lead_sim_seconds: float | None = Field(
        default=None,
        description="Worst case over the sale of (time demand reached a level - time ready capacity reached it);"
        " positive: capacity was there first.",
    )
    saturated_samples: int = Field(description="Samples where demand exceeded ready capacity.")
    samples_in_window: int
    rejected_sessions_in_window: float | None = None

    @property
    def needed_scale_out(self) -> bool:
        return self.demand_exceeded_old_capacity_sim_seconds is not None

    @property
    def ahead_of_saturation(self) -> bool:
        return (
            self.needed_scale_out
            and self.min_lead_sim_seconds is not None
            and self.min_lead_sim_seconds >= 0
            and self.saturated_samples == 0
        )


class ResidencyMeasurement(MeasureModel):
    violations_counted_by_simulator: float | None = Field(description="The fleet's own counter at the end.")
    weight_violations: int = Field(description="Sampled (market, region) weights outside the allowed regions.")
    impaired_markets_outside_jurisdiction: list[str] = Field(
        default_factory=list, description="Regions outside the impaired markets' jurisdictions that got weight."
    )

    @property
    def clean(self) -> bool:
        return self.violations_counted_by_simulator == 0 and self.weight_violations == 0


class DrillMeasurement(MeasureModel):
    region: str
    exit_code: int | None
    scorecard: dict[str, Any] | None
    started_wall_seconds: float | None = None
    ended_wall_seconds: float | None = None
    lowest_share: float | None = Field(default=None, description="Lowest mean weight on the drilled region.")

    @property
    def has_scorecard(self) -> bool:
        return bool(self.scorecard)


class DemoMeasurements(MeasureModel):
    shift: ShiftMeasurement
    selector_shift: SelectorShiftMeasurement | None = Field(
        default=None, description="The shift in sessions the selector placed (None: the fleet placed by weights)."
    )
    scale_out: ScaleOutMeasurement | None
    residency: ResidencyMeasurement
    drill: DrillMeasurement
    wall_seconds_total: float
    samples: int


def _sim_seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _sample_at_or_before(samples: list[FleetSample], sim_time: datetime) -> FleetSample | None:
    before = [s for s in samples if s.sim_time <= sim_time]
    return before[-1] if before else (samples[0] if samples else None)


def measure_shift(recording: DemoRecording, spec: EnvironmentSpec) -> ShiftMeasurement:
    settings = recording.settings
    region, markets = settings.impaired_region, settings.impaired_markets
    starts, ends = recording.events_of("impairment_start"), recording.events_of("impairment_end")
    result: dict[str, Any] = {"region": region, "markets": markets}
    if not starts or starts[0].sim_time is None:
        return ShiftMeasurement(**result)
    start = starts[0].sim_time
    end = ends[0].sim_time if ends and ends[0].sim_time else None
    result.update(impairment_start_sim=start, impairment_end_sim=end)
    before = _sample_at_or_before(recording.samples, start)
    if before is None:
        return ShiftMeasurement(**result)
    baseline = {m: before.weights.get(m, {}).get(region, 0.0) for m in markets}
    result["baseline_weights"] = baseline

    # (sim time, weights) series: the fleet's own actuation log is exact; samples are the fallback
    series: list[tuple[datetime, dict[str, dict[str, float]]]]
    if recording.weight_changes:
        # Each change replaces the weights of the markets it names (a region it leaves out has none of
        # them now); a market it does not name keeps its weights: carried forward, so every point of the
        # series holds every market's weights as they then stood.
        current = {m: dict(shares) for m, shares in recording.samples[0].weights.items()} if recording.samples else {}
        series = []
        for change in recording.weight_changes:
            current.update({m: dict(shares) for m, shares in change.weights.items()})
            series.append((change.sim_time, {m: dict(shares) for m, shares in current.items()}))
        result["source"] = "actuation log"
    else:
        series = [(s.sim_time, s.weights) for s in recording.samples]
        result["source"] = "weight samples"

    def mean_share(weights: dict[str, dict[str, float]]) -> float:
        return sum(weights.get(m, {}).get(region, 0.0) for m in markets) / max(1, len(markets))

    shift_at = next(
        (
            t
            for t, w in series
            if t >= start
            and (end is None or t <= end)
            and any(
                (w[m].get(region, 0.0) if m in w else baseline[m]) < baseline[m] - SHIFT_THRESHOLD for m in markets
            )
        ),
        None,
    )
    if shift_at is not None:
        result["first_shift_sim_seconds"] = _sim_seconds(shift_at, start)
        result["first_shift_wall_seconds"] = result["first_shift_sim_seconds"] / settings.speed
        if result["source"] == "weight samples":  # samples carry their own wall clock: no rounding via speed
            shifted_sample = next(s for s in recording.samples if s.sim_time == shift_at)
            result["first_shift_wall_seconds"] = shifted_sample.wall_seconds - starts[0].wall_seconds
    base_total = sum(baseline.values())
    steered_at = next(
        (
            t
            for t, w in series
            if t >= start
            and (end is None or t <= end)
            and base_total > 0
            and sum(w.get(m, {}).get(region, 0.0) for m in markets) <= STEERED_AWAY_FRACTION * base_total + 1e-9
        ),
        None,
    )
    if steered_at is not None:
        result["steered_away_sim_seconds"] = _sim_seconds(steered_at, start)
    during = [mean_share(w) for t, w in series if t >= start and (end is None or t <= end)]
    if during:
        result["lowest_share"] = min(during)
    if end is not None and shift_at is not None:
        base_share = sum(baseline.values()) / max(1, len(markets))
        back_at = next(
            (t for t, w in series if t >= end and mean_share(w) >= RETURN_FRACTION * base_share - 1e-9), None
        )
        if back_at is not None:
            result["return_sim_seconds"] = _sim_seconds(back_at, end)
            result["return_wall_seconds"] = result["return_sim_seconds"] / settings.speed
    return ShiftMeasurement(**result)


def measure_selector_shift(recording: DemoRecording) -> SelectorShiftMeasurement | None:
    """The shift measured on the sessions the selector placed (module constants say what counts)."""
    if recording.placement_mode != "selector":
        return None
    settings = recording.settings
    region, markets = settings.impaired_region, settings.impaired_markets
    starts, ends = recording.events_of("impairment_start"), recording.events_of("impairment_end")
    if not starts or starts[0].sim_time is None:
        return None
    start = starts[0].sim_time
    end = ends[0].sim_time if ends and ends[0].sim_time else None
    length = (end - start) if end is not None else timedelta(minutes=10)

    def counts(step: PlacementStepSample) -> tuple[int, int]:
        here = sum(step.selector.get(m, {}).get(region, 0) for m in markets)
        return here, sum(sum(step.selector.get(m, {}).values()) for m in markets)

    def window(lo: datetime, hi: datetime | None) -> list[PlacementStepSample]:
        return [s for s in recording.placement_timeline if s.at > lo and (hi is None or s.at <= hi)]

    def elsewhere(steps: list[PlacementStepSample]) -> tuple[int, float | None]:
        here = sum(counts(s)[0] for s in steps)
        total = sum(counts(s)[1] for s in steps)
        return total, (1.0 - here / total) if total else None

    before_total, before_share = elsewhere(window(start - length, start))
    during = window(start, end)
    during_total, during_share = elsewhere(during)
    result: dict[str, Any] = {
        "region": region,
        "markets": markets,
        "sessions_before": before_total,
        "share_elsewhere_before": before_share,
        "sessions_during": during_total,
        "share_elsewhere_during": during_share,
        "regions_during": sorted({r for s in during for m in markets for r in s.selector.get(m, {})}),
        "fallback_sessions_during": sum(sum(s.fallback.get(m, {}).values()) for s in during for m in markets),
    }
    if before_share is not None:
        steps = [(s.at, *counts(s)) for s in during if counts(s)[1] >= MIN_STEP_SESSIONS]
        shifted = next((t for t, here, total in steps if 1 - here / total >= before_share + SHIFT_THRESHOLD), None)
        if shifted is not None:
            result["first_shift_sim_seconds"] = _sim_seconds(shifted, start)
        on_region_before = 1.0 - before_share
        if on_region_before > 0:
            steered = next(
                (t for t, here, total in steps if here / total <= STEERED_AWAY_FRACTION * on_region_before + 1e-9),
                None,
            )
            if steered is not None:
                result["steered_away_sim_seconds"] = _sim_seconds(steered, start)
    return SelectorShiftMeasurement(**result)


def measure_scale_out(recording: DemoRecording) -> ScaleOutMeasurement | None:
    settings = recording.settings
    region, market = settings.flash_sale_region, settings.flash_sale_market
    starts, ends = recording.events_of("flash_sale_start"), recording.events_of("flash_sale_end")
    if not starts or starts[0].sim_time is None:
        return None
    start = starts[0].sim_time
    end = ends[0].sim_time if ends and ends[0].sim_time else recording.samples[-1].sim_time
    window = [s for s in recording.samples if start <= s.sim_time <= end and region in s.regions]
    before = _sample_at_or_before(recording.samples, start)
    if not window or before is None or region not in before.regions:
        return None
    capacity_before = before.regions[region].ready_capacity
    demand = [(s.sim_time, s.region_demand(region)) for s in window]
    capacity = [(s.sim_time, s.regions[region].ready_capacity) for s in window]
    desired = [(s.sim_time, s.regions[region].desired_nodes) for s in window]

    first_scale_out = next((t for t, n in desired if n > before.regions[region].desired_nodes), None)
    exceeded = next((t for t, d in demand if d > capacity_before), None)
    leads: list[float] = []
    unmet = False
    for t_demand, level in demand:
        if level <= capacity_before:
            continue
        reached = next((t for t, c in capacity if c >= level), None)
        if reached is None:
            unmet = True
            continue
        leads.append(_sim_seconds(t_demand, reached))
    # the fleet's books count rejections per region when it reports them, else fleet-wide (an upper bound)
    rejected = None
    first_counts, last_counts = window[0].counters, window[-1].counters
    if region in first_counts.rejected_by_region and region in last_counts.rejected_by_region:
        rejected = last_counts.rejected_by_region[region] - first_counts.rejected_by_region[region]
    elif first_counts.rejected_sessions is not None and last_counts.rejected_sessions is not None:
        rejected = last_counts.rejected_sessions - first_counts.rejected_sessions
    return ScaleOutMeasurement(
        region=region,
        market=market,
        capacity_before=capacity_before,
        nodes_before=before.regions[region].ready_nodes,
        peak_demand=max(d for _, d in demand),
        peak_ready_capacity=max(c for _, c in capacity),
        peak_desired_nodes=max(n for _, n in desired),
        first_scale_out_sim_seconds=_sim_seconds(first_scale_out, start) if first_scale_out else None,
        demand_exceeded_old_capacity_sim_seconds=_sim_seconds(exceeded, start) if exceeded else None,
        min_lead_sim_seconds=None if unmet or not leads else min(leads),
        saturated_samples=sum(1 for (_, d), (_, c) in zip(demand, capacity, strict=True) if d > c),
        samples_in_window=len(window),
        rejected_sessions_in_window=rejected,
    )


def measure_residency(recording: DemoRecording, spec: EnvironmentSpec) -> ResidencyMeasurement:
    allowed = {market.code: set(spec.allowed_regions(market.code)) for market in spec.markets}
    weight_violations = 0
    outside: set[str] = set()
    for sample in recording.samples:
        for market, weights in sample.weights.items():
            for region, weight in weights.items():
                if weight > 1e-9 and region not in allowed.get(market, set()):
                    weight_violations += 1
                    if market in recording.settings.impaired_markets:
                        outside.add(region)
    counted = _final_residency_counter(recording)
    return ResidencyMeasurement(
        violations_counted_by_simulator=counted,
        weight_violations=weight_violations,
        impaired_markets_outside_jurisdiction=sorted(outside),
    )


def _final_residency_counter(recording: DemoRecording) -> float | None:
    for key in ("residency_violations", "residency_violation_sessions", "residency_violations_total"):
        value = recording.final_accounting.get(key)
        if isinstance(value, int | float):
            return float(value)
    for sample in reversed(recording.samples):
        if sample.counters.residency_violations is not None:
            return sample.counters.residency_violations
    return None


def measure_drill(recording: DemoRecording) -> DrillMeasurement:
    region = recording.settings.drill_region
    starts, ends = recording.events_of("drill_start"), recording.events_of("drill_end")
    started = starts[0].wall_seconds if starts else None
    ended = ends[0].wall_seconds if ends else None
    lowest = None
    if started is not None:
        shares = [
            sum(w.get(region, 0.0) for w in s.weights.values() if region in w) / max(1, len(s.weights))
            for s in recording.samples
            if s.wall_seconds >= started and (ended is None or s.wall_seconds <= ended)
        ]
        lowest = min(shares) if shares else None
    return DrillMeasurement(
        region=region,
        exit_code=recording.drill_exit_code,
        scorecard=recording.drill_result,
        started_wall_seconds=started,
        ended_wall_seconds=ended,
        lowest_share=lowest,
    )


def measure(recording: DemoRecording, spec: EnvironmentSpec) -> DemoMeasurements:
    return DemoMeasurements(
        shift=measure_shift(recording, spec),
        selector_shift=measure_selector_shift(recording),
        scale_out=measure_scale_out(recording),
        residency=measure_residency(recording, spec),
        drill=measure_drill(recording),
        wall_seconds_total=recording.wall_seconds_total,
        samples=len(recording.samples),
    )
