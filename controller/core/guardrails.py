"""Guardrails: independent checks of a draft plan, each returning a verdict with a reason.

Called by `controller/core/planner.py` on every draft before it becomes a Plan. They do not
trust the solver: each recomputes its invariant from the final weights and commands. A hard
guardrail that fails raises `GuardrailViolation` (a bug in the core, never a state of the world:
the LP cannot express a residency violation, so a failing residency check means the code is
wrong and the plan must not leave the building). Verdicts go into `Plan.explanation`.

The registry `GUARDRAILS` lists them in the order they are reported, most important first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from controller.cross_border_plan import CrossBorderPlan
from controller.plan import (
    DrainCommand,
    ObservedResidencyViolation,
    Overflow,
    RegionState,
    ResidencyProof,
    ScaleCommand,
    UndrainCommand,
)
from controller.spec import EnvironmentSpec

TOLERANCE = 1e-6


@dataclass(frozen=True)
class Verdict:
    """Outcome of one guardrail."""

    guardrail: str
    ok: bool
    reason: str
    hard: bool = True

    def sentence(self) -> str:
        return f"guardrail {self.guardrail}: {'ok' if self.ok else 'VIOLATED'}: {self.reason}"


class GuardrailViolation(AssertionError):
    """A hard guardrail failed: the core produced an invalid plan (a bug)."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.sentence())


@dataclass(frozen=True)
class DraftPlan:
    """What the guardrails look at: the planner's output before it is frozen into a Plan."""

    spec: EnvironmentSpec
    weights: dict[str, dict[str, float]]
    current_weights: dict[str, dict[str, float]]
    demand: dict[str, float]
    ready_capacity_sessions: dict[str, float]  # at target utilisation
    capacity_trusted: dict[str, bool]  # False for regions whose metrics are stale
    overflow: list[Overflow]
    certificate: list[ResidencyProof]
    unserved_markets: set[str]
    region_states: dict[str, RegionState]
    pin_caps: dict[str, float]
    fail_static: bool
    scale: list[ScaleCommand]
    drains: list[DrainCommand]
    undrains: list[UndrainCommand] = field(default_factory=list)
    draining_nodes: dict[str, frozenset[str]] = field(default_factory=dict)  # per region, in the snapshot
    serving_nodes: dict[str, int] = field(default_factory=dict)  # per region: ready + booting, in the snapshot
    # Residency broken in the fleet as observed (controller/core/residency_evidence.py), not by the plan.
    observed_violations: list[ObservedResidencyViolation] = field(default_factory=list)
    # Regions whose new sessions leave unpaced: health confirmed their breach (HealthAssessment.steered_away).
    steered_away: frozenset[str] = frozenset()
    # The tick's cross-border placement (None: the spec has no cross-market flow).
    cross_border: CrossBorderPlan | None = None


class Guardrail(Protocol):
    name: str

    def check(self, draft: DraftPlan) -> Verdict: ...


def allowed_regions_from_rules(spec: EnvironmentSpec) -> dict[str, frozenset[str]]:
    """Market -> regions its jurisdictions allow, read straight from the spec's rules.

    Deliberately not the planner's cached tables: the check must not share code with what it checks.
    """
    cached = _RULES_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    by_jurisdiction = {j.name: frozenset(j.allowed_regions) for j in spec.jurisdictions}
    allowed: dict[str, frozenset[str]] = {}
    for market in spec.markets:
        regions: set[str] = set()
        for jurisdiction in market.allowed_jurisdictions:
            regions |= by_jurisdiction.get(jurisdiction, frozenset())
        allowed[market.code] = frozenset(regions)
    if len(_RULES_CACHE) >= 8:
        _RULES_CACHE.pop(next(iter(_RULES_CACHE)))
    _RULES_CACHE[id(spec)] = (spec, allowed)
    return allowed


_RULES_CACHE: dict[int, tuple[EnvironmentSpec, dict[str, frozenset[str]]]] = {}


def residency_certificate(spec: EnvironmentSpec, weights: dict[str, dict[str, float]]) -> list[ResidencyProof]:
    """One proof per market of the spec: the regions given weight are a subset of the allowed ones."""
    proofs: list[ResidencyProof] = []
    allowed_in_order = _allowed_in_spec_order(spec)
    for market in spec.markets:
        allowed = list(allowed_in_order[market.code])
        weighted = sorted(r for r, share in weights.get(market.code, {}).items() if share > 0.0)
        # model_construct: every field is built here from validated spec values (no input to check),
        # and validating 250 proofs x 30 regions each tick costs more than the LP.
        proofs.append(
            ResidencyProof.model_construct(
                market=market.code,
                allowed_jurisdictions=list(market.allowed_jurisdictions),
                allowed_regions=allowed,
                weighted_regions=weighted,
                compliant=set(weighted) <= set(allowed),
            )
        )
    return proofs


def _allowed_in_spec_order(spec: EnvironmentSpec) -> dict[str, tuple[str, ...]]:
    """Each market's allowed regions (from the rules) in the spec's region order; per spec object, like
    `allowed_regions_from_rules` (250 markets x 30 regions of membership tests each tick otherwise)."""
    cached = _ORDER_CACHE.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    allowed_by_market = allowed_regions_from_rules(spec)
    region_order = [r.name for r in spec.regions]
    ordered = {
        market.code: tuple(r for r in region_order if r in allowed_by_market[market.code]) for market in spec.markets
    }
    if len(_ORDER_CACHE) >= 8:
        _ORDER_CACHE.pop(next(iter(_ORDER_CACHE)))
    _ORDER_CACHE[id(spec)] = (spec, ordered)
    return ordered


_ORDER_CACHE: dict[int, tuple[EnvironmentSpec, dict[str, tuple[str, ...]]]] = {}


class ResidencyGuardrail:
    """Every weighted region of every market lies in a jurisdiction the market allows."""

    name = "residency"

    def check(self, draft: DraftPlan) -> Verdict:
        unknown = sorted(set(draft.weights) - set(draft.spec.market_by_code))
        if unknown:
            return Verdict(self.name, False, f"weights for markets not in the spec: {', '.join(unknown)}")
        # Recheck every proof against the weights themselves: the certificate must not be taken on trust.
        proofs = {p.market: p for p in draft.certificate}
        if set(proofs) != set(draft.spec.market_by_code):
            return Verdict(self.name, False, "the residency certificate does not cover every market")
        allowed = allowed_regions_from_rules(draft.spec)
        bad = [
            proofs[market]
            for market, shares in draft.weights.items()
            if not {r for r, share in shares.items() if share > 0.0} <= allowed[market] or not proofs[market].compliant
        ]
        if bad:
            detail = "; ".join(f"{p.market} -> {sorted(set(p.weighted_regions) - set(p.allowed_regions))}" for p in bad)
            return Verdict(self.name, False, f"weight outside the allowed jurisdictions: {detail}")
        planned = f"{len(draft.spec.markets)} markets, every weight within its jurisdictions"
        if draft.observed_violations:
            # The fleet breaks residency although the plan does not: an incident to report, not a bug
            # in the core, so the verdict fails without stopping the plan that steers it back.
            seen = "; ".join(
                f"{v.market} on {v.region} ({v.sessions} sessions, weight {v.weight:.2f})"
                for v in draft.observed_violations
            )
            markets = ", ".join(sorted({v.market for v in draft.observed_violations}))
            return Verdict(
                self.name,
                False,
                f"observed in the fleet outside the allowed jurisdictions: {seen}; the plan steers {markets} back "
                f"({planned})",
                hard=False,
            )
        return Verdict(self.name, True, planned)


class CrossBorderResidencyGuardrail:
    """Both sides of every cross-market session terminate in regions their own market allows, and the
    cross-border certificate proves it for every participant (each side of each pair). Hard, as the
    single-market residency check: a violation is a bug in the core and the plan never ships."""

    name = "cross-border-residency"

    def check(self, draft: DraftPlan) -> Verdict:
        plan = draft.cross_border
        if plan is None:
            return Verdict(self.name, True, "no cross-market flows")
        # Recheck each placement against the spec's rules: the certificate must not be taken on trust.
        allowed = allowed_regions_from_rules(draft.spec)
        outside = [
            f"{market} ({role} of {pair.host}->{pair.guest}) in {region}"
            for pair in plan.pairs
            for p in pair.placements
            for market, role, region in ((pair.host, "host", p.host_region), (pair.guest, "guest", p.guest_region))
            if region not in allowed.get(market, frozenset())
        ]
        if outside:
            return Verdict(self.name, False, f"participant outside its jurisdictions: {'; '.join(outside[:5])}")
        proven = {(p.market, p.role, p.counterpart) for p in plan.certificate if p.compliant}
        missing = [
            f"{market} as {role} with {other}"
            for pair in plan.pairs
            for market, role, other in ((pair.host, "host", pair.guest), (pair.guest, "guest", pair.host))
            if (market, role, other) not in proven
        ]
        if missing or not plan.compliant:
            return Verdict(
                self.name,
                False,
                "the cross-border certificate does not prove every participant: "
                + ("; ".join(missing[:5]) or "it says it is not compliant"),
            )
        return Verdict(self.name, True, f"{len(plan.pairs)} market pairs, both sides within their own jurisdictions")


class PinGuardrail:
    """A pinned region's share of every market stays at or below the pin."""

    name = "pins"

    def check(self, draft: DraftPlan) -> Verdict:
        if not draft.pin_caps:
            return Verdict(self.name, True, "no region pinned")
        over = [
            f"{market}->{region} {share:.4f} > {draft.pin_caps[region]:.4f}"
            for market, shares in draft.weights.items()
            for region, share in shares.items()
            if region in draft.pin_caps and share > draft.pin_caps[region] + TOLERANCE
        ]
        if over:
            return Verdict(self.name, False, f"pinned share exceeded: {'; '.join(over[:5])}")
        pins = ", ".join(f"{r}<={cap:.0%}" for r, cap in sorted(draft.pin_caps.items()))
        return Verdict(self.name, True, f"honoured ({pins})")


class FailedRegionGuardrail:
    """No served market sends traffic to a failed region (unserved markets may degrade in place)."""

    name = "failed-regions"

    def check(self, draft: DraftPlan) -> Verdict:
        failed = {r for r, state in draft.region_states.items() if state is RegionState.FAILED}
        if not failed:
            return Verdict(self.name, True, "no region failed")
        bad = [
            f"{market}->{region}"
            for market, shares in draft.weights.items()
            if market not in draft.unserved_markets
            for region, share in shares.items()
            if region in failed and share > TOLERANCE
        ]
        if bad:
            return Verdict(self.name, False, f"weight on failed regions: {', '.join(bad[:5])}")
        return Verdict(self.name, True, f"no served market uses {', '.join(sorted(failed))}")


class WeightSumGuardrail:
    """Every fully served market's weights sum to 1."""

    name = "weights-sum"

    def check(self, draft: DraftPlan) -> Verdict:
        bad = [
            f"{market}={sum(draft.weights.get(market, {}).values()):.6f}"
            for market in draft.spec.market_by_code
            if market not in draft.unserved_markets
            and abs(sum(draft.weights.get(market, {}).values()) - 1.0) > TOLERANCE
        ]
        if bad:
            return Verdict(self.name, False, f"served markets whose weights do not sum to 1: {', '.join(bad[:5])}")
        return Verdict(self.name, True, "every served market's weights sum to 1")


class CapacityGuardrail:
    """No region gets more sessions than its ready capacity at target utilisation, unless reported.

    Markets already reported unserved are left out: their shortfall is in Plan.unserved.
    """

    name = "capacity"

    def check(self, draft: DraftPlan) -> Verdict:
        loads: dict[str, float] = {}
        for market, shares in draft.weights.items():
            if market in draft.unserved_markets:
                continue  # reported unserved (degrading in place or partly placed): not a silent overload
            for region, share in shares.items():
                loads[region] = loads.get(region, 0.0) + share * draft.demand.get(market, 0.0)
        reported = {o.region: o.sessions for o in draft.overflow}
        bad = []
        for region, load in loads.items():
            if not draft.capacity_trusted.get(region, True) or region in reported:
                continue
            capacity = draft.ready_capacity_sessions.get(region, 0.0)
            if load > capacity * (1 + TOLERANCE) + TOLERANCE * 1000:
                bad.append(f"{region} {load:,.0f} > {capacity:,.0f}")
        if bad:
            return Verdict(self.name, False, f"unreported overflow: {'; '.join(bad)}")
        if reported:
            text = ", ".join(f"{r} +{s:,.0f}" for r, s in sorted(reported.items()))
            return Verdict(self.name, True, f"within ready capacity except reported overflow ({text})")
        return Verdict(self.name, True, "every region within its ready capacity at target utilisation")


class DisruptionBudgetGuardrail:
    """At most `disruption_budget` of a market moves per tick (0 when failing static), forced moves aside.

    Forced: traffic leaving a failed or non-compliant region, and new sessions leaving a region whose
    SLO breach health confirmed (not its own load): weights steer new sessions, so that move
    disrupts no call, and pacing it would only send more sessions into the sick region."""

    name = "disruption-budget"

    def check(self, draft: DraftPlan) -> Verdict:
        budget = 0.0 if draft.fail_static else draft.spec.traffic.disruption_budget
        worst_market, worst = "", 0.0
        allowed_by_market = allowed_regions_from_rules(draft.spec)
        for market, current in draft.current_weights.items():
            if market not in allowed_by_market:
                continue
            allowed = allowed_by_market[market]
            new = draft.weights.get(market, {})
            moved = 0.0
            for region, share in current.items():
                if (
                    region not in allowed
                    or draft.region_states.get(region) is RegionState.FAILED
                    or (region in draft.steered_away and not draft.fail_static)
                ):
                    continue  # leaving a failed, breaching or non-compliant region is forced, not chosen
                kept = min(share, draft.pin_caps.get(region, 1.0))
                moved += max(0.0, kept - new.get(region, 0.0))
            if moved > worst:
                worst_market, worst = market, moved
        if worst > budget + TOLERANCE:
            return Verdict(self.name, False, f"{worst_market} moved {worst:.1%} of its traffic (budget {budget:.0%})")
        detail = f"largest voluntary move {worst:.1%} ({worst_market})" if worst_market else "nothing moved"
        return Verdict(self.name, True, f"{detail}, budget {budget:.0%} per tick")


class ScaleBoundsGuardrail:
    """Scale targets within [min, max] nodes and at most max_step_nodes from the current size."""

    name = "scale-bounds"

    def check(self, draft: DraftPlan) -> Verdict:
        bad = []
        step = draft.spec.scaling.max_step_nodes
        for command in draft.scale:
            region = draft.spec.region_by_name[command.region]
            if not region.min_nodes <= command.desired_nodes <= region.max_nodes:
                bounds = f"{region.min_nodes}..{region.max_nodes}"
                bad.append(f"{command.region} {command.desired_nodes} outside {bounds}")
            moved_to_bounds = command.current_nodes < region.min_nodes or command.current_nodes > region.max_nodes
            if abs(command.desired_nodes - command.current_nodes) > step and not moved_to_bounds:
                bad.append(f"{command.region} {command.current_nodes}->{command.desired_nodes} exceeds step {step}")
        if bad:
            return Verdict(self.name, False, "; ".join(bad))
        return Verdict(self.name, True, f"every region within its bounds, steps <= {step} nodes")


class FailStaticGuardrail:
    """While metrics are stale nothing scales in or drains."""

    name = "fail-static"

    def check(self, draft: DraftPlan) -> Verdict:
        if not draft.fail_static:
            return Verdict(self.name, True, "metrics fresh")
        # Shrinking a region that is above its max_nodes is the node group's limit, not a decision.
        shrinking = [
            c.region
            for c in draft.scale
            if c.desired_nodes < c.current_nodes and c.desired_nodes != draft.spec.region_by_name[c.region].max_nodes
        ]
        over_max = {c.region for c in draft.scale if c.current_nodes > draft.spec.region_by_name[c.region].max_nodes}
        stray_drains = [d.node for d in draft.drains if d.region not in over_max]
        if shrinking or stray_drains:
            return Verdict(self.name, False, f"scale-in while stale: {', '.join(shrinking) or 'drains'}")
        return Verdict(self.name, True, "metrics stale: no scale-in, no drains, no automatic shift")


class UndrainGuardrail:
    """A node goes back in service only while its region grows, only if it is draining now, never
    more of them than the growth, and never in a region a failover or drill has pinned (its drains
    are the failover's)."""

    name = "undrain"

    def check(self, draft: DraftPlan) -> Verdict:
        if not draft.undrains:
            return Verdict(self.name, True, "no draining node returned to service")
        desired = {c.region: c.desired_nodes for c in draft.scale}
        bad = []
        by_region: dict[str, int] = {}
        for undrain in draft.undrains:
            by_region[undrain.region] = by_region.get(undrain.region, 0) + 1
            if undrain.node not in draft.draining_nodes.get(undrain.region, frozenset()):
                bad.append(f"{undrain.region}/{undrain.node} is not draining")
            if draft.pin_caps.get(undrain.region, 1.0) < 1.0:
                bad.append(f"{undrain.region} is pinned by a failover or drill")
        for region, count in sorted(by_region.items()):
            growth = desired.get(region, 0) - draft.serving_nodes.get(region, 0)
            if count > growth:
                bad.append(f"{region}: {count} undrained for a growth of {max(growth, 0)}")
        if bad:
            return Verdict(self.name, False, "; ".join(bad))
        regions = ", ".join(f"{r} {n}" for r, n in sorted(by_region.items()))
        return Verdict(self.name, True, f"draining nodes back in service within each region's growth ({regions})")


# Reported in this order; residency first because it is the one rule the product exists to keep.
GUARDRAILS: Sequence[Guardrail] = (
    ResidencyGuardrail(),
    CrossBorderResidencyGuardrail(),
    PinGuardrail(),
    FailedRegionGuardrail(),
    WeightSumGuardrail(),
    CapacityGuardrail(),
    DisruptionBudgetGuardrail(),
    ScaleBoundsGuardrail(),
    UndrainGuardrail(),
    FailStaticGuardrail(),
)


def run_guardrails(draft: DraftPlan, guardrails: Sequence[Guardrail] = GUARDRAILS) -> list[Verdict]:
    """Every verdict, in registry order; raises GuardrailViolation on the first failing hard one."""
    verdicts = []
    for guardrail in guardrails:
        verdict = guardrail.check(draft)
        if not verdict.ok and verdict.hard:
            raise GuardrailViolation(verdict)
        verdicts.append(verdict)
    return verdicts
