"""Residency evidence: what the snapshot shows of the fleet breaking a market's jurisdictions.

Called by `controller/core/planner.py` every tick. The plan itself cannot send a market outside its
jurisdictions (the LP has no variable for it, and `guardrails.ResidencyGuardrail` rechecks), but the
fleet can still carry such sessions: a router that ignored the weights, a manual change, a bug in
the region selector. The allocation only reads allowed pairs, so those sessions used to vanish from
the plan unreported. Here each one becomes an `ObservedResidencyViolation`: the residency guardrail
reports it, the plan's explanation says it, the controller exports it and an alert fires
(`rules/edgeplane-alerts.yml`, EdgeplaneObservedResidencyViolation).

The allowed regions come from the spec's rules directly (`guardrails.allowed_regions_from_rules`),
not from the planner's tables: evidence must not share code with what it judges.
"""

from __future__ import annotations

from controller.core.guardrails import allowed_regions_from_rules
from controller.plan import ObservedResidencyViolation
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec


def observed_residency_violations(spec: EnvironmentSpec, snapshot: FleetSnapshot) -> list[ObservedResidencyViolation]:
    """Every (market, region) where the snapshot shows sessions or weight outside the market's
    jurisdictions, sorted by market and region. Markets the spec does not know are not judged."""
    allowed = allowed_regions_from_rules(spec)
    sessions: dict[tuple[str, str], int] = {}
    weights: dict[tuple[str, str], float] = {}
    for path in snapshot.paths:
        regions = allowed.get(path.market)
        if regions is not None and path.region not in regions and path.active_sessions > 0:
            key = (path.market, path.region)
            sessions[key] = sessions.get(key, 0) + path.active_sessions
    for market, shares in snapshot.current_weights.items():
        regions = allowed.get(market)
        if regions is None:
            continue
        for region, share in shares.items():
            if region not in regions and share > 0.0:
                weights[(market, region)] = share
    region_order = [r.name for r in spec.regions]
    return [
        ObservedResidencyViolation(
            market=market,
            region=region,
            sessions=sessions.get((market, region), 0),
            weight=weights.get((market, region), 0.0),
            allowed_regions=[r for r in region_order if r in allowed[market]],
        )
        for market, region in sorted(set(sessions) | set(weights))
    ]


def violation_sentence(violation: ObservedResidencyViolation) -> str:
    weight = f", weight {violation.weight:.2f} in force" if violation.weight > 0 else ""
    return (
        f"{violation.market} on {violation.region}: {violation.sessions} sessions{weight}, outside its "
        f"jurisdictions (allowed: {', '.join(violation.allowed_regions)})"
    )
