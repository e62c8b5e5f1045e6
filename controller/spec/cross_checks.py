"""Cross-field rules of the EnvironmentSpec: what no single field can check about itself.

Called by `EnvironmentSpec`'s model validator (`controller.spec.environment`); each problem carries
the exact field path of the offending value, so `edgectl env validate` can print
`FILE: field.path: reason`. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from controller.spec.address_plan import address_plan_problems
from controller.spec.infra import InfraSpec
from controller.spec.residency_geography import Problem, geography_contradictions
from controller.spec.sessions import session_problems

if TYPE_CHECKING:
    from controller.spec.environment import EnvironmentSpec


def _duplicates(names: list[str]) -> dict[int, str]:
    seen: set[str] = set()
    dups: dict[int, str] = {}
    for index, name in enumerate(names):
        if name in seen:
            dups[index] = name
        seen.add(name)
    return dups


_KNOWN_TIMEZONES: frozenset[str] | None = None


def _is_timezone(name: str) -> bool:
    global _KNOWN_TIMEZONES
    if _KNOWN_TIMEZONES is None:
        _KNOWN_TIMEZONES = frozenset(available_timezones())
    if name in _KNOWN_TIMEZONES:
        return True
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def cross_field_problems(spec: EnvironmentSpec) -> Iterator[Problem]:
    """Every cross-field problem of `spec`, in field order.

    Also run by `infra.residency.residency_preflight` on specs that may have been built without
    validation, so it looks names up in its own tables, never in the spec's cached lookups (a
    `model_copy(update=...)` keeps the cached lookups of the original).
    """
    region_names = {r.name for r in spec.regions}
    jurisdiction_names = {j.name for j in spec.jurisdictions}
    jurisdiction_by_name = {j.name: j for j in spec.jurisdictions}

    for index, name in _duplicates([r.name for r in spec.regions]).items():
        yield ("regions", index, "name"), f"duplicate region name {name!r}", name
    for index, name in _duplicates([j.name for j in spec.jurisdictions]).items():
        yield ("jurisdictions", index, "name"), f"duplicate jurisdiction name {name!r}", name
    for index, code in _duplicates([m.code for m in spec.markets]).items():
        yield ("markets", index, "code"), f"duplicate market code {code!r}", code

    for index, region in enumerate(spec.regions):
        if region.min_nodes > region.max_nodes:
            yield (
                ("regions", index, "min_nodes"),
                f"min_nodes {region.min_nodes} is greater than max_nodes {region.max_nodes}",
                region.min_nodes,
            )
        if region.jurisdiction not in jurisdiction_names:
            yield (
                ("regions", index, "jurisdiction"),
                f"unknown jurisdiction {region.jurisdiction!r} (known: {', '.join(sorted(jurisdiction_names))})",
                region.jurisdiction,
            )
        else:
            home = jurisdiction_by_name[region.jurisdiction]
            if region.name not in home.allowed_regions:
                yield (
                    ("regions", index, "jurisdiction"),
                    f"region {region.name!r} sits in jurisdiction {home.name!r} but is not among "
                    f"its allowed_regions: its own recordings could not be stored in it",
                    region.jurisdiction,
                )

    for jindex, jurisdiction in enumerate(spec.jurisdictions):
        for rindex, region_name in enumerate(jurisdiction.allowed_regions):
            if region_name not in region_names:
                yield (
                    ("jurisdictions", jindex, "allowed_regions", rindex),
                    f"unknown region {region_name!r}",
                    region_name,
                )
        for rindex, region_name in _duplicates(jurisdiction.allowed_regions).items():
            yield (
                ("jurisdictions", jindex, "allowed_regions", rindex),
                f"region {region_name!r} listed twice",
                region_name,
            )

    yield from geography_contradictions(spec)

    for mindex, market in enumerate(spec.markets):
        if not _is_timezone(market.timezone):
            yield ("markets", mindex, "timezone"), f"unknown IANA timezone {market.timezone!r}", market.timezone
        demand = market.demand
        if demand.baseline_sessions > demand.peak_sessions:
            yield (
                ("markets", mindex, "demand", "baseline_sessions"),
                f"baseline_sessions {demand.baseline_sessions} is greater than peak_sessions {demand.peak_sessions}",
                demand.baseline_sessions,
            )
        mix_total = sum(demand.scenario_mix.values())
        if not demand.scenario_mix or abs(mix_total - 1.0) > 1e-6:
            yield (
                ("markets", mindex, "demand", "scenario_mix"),
                f"scenario shares must sum to 1, got {mix_total:g}",
                dict(demand.scenario_mix),
            )
        for scenario in demand.scenario_mix:
            if scenario not in spec.scenarios:
                yield (
                    ("markets", mindex, "demand", "scenario_mix", scenario.value),
                    f"scenario {scenario.value!r} has no SLO in scenarios",
                    scenario.value,
                )
        unknown = False
        for jindex, jname in enumerate(market.allowed_jurisdictions):
            if jname not in jurisdiction_names:
                unknown = True
                yield (
                    ("markets", mindex, "allowed_jurisdictions", jindex),
                    f"unknown jurisdiction {jname!r}",
                    jname,
                )
        if unknown:
            continue
        compliant = [r for r in spec.regions if r.name in _allowed_region_names(spec, market.allowed_jurisdictions)]
        if not compliant:
            yield (
                ("markets", mindex, "allowed_jurisdictions"),
                f"market {market.code} allows jurisdictions {market.allowed_jurisdictions} "
                "which have no region in this environment",
                market.allowed_jurisdictions,
            )
            continue
        # Residency-bound markets compete for the same compliant regions; the peak of one
        # market alone must at least fit in all its compliant regions at max size.
        max_capacity = sum(r.max_nodes * r.sessions_per_node * spec.scaling.target_utilisation for r in compliant)
        if demand.peak_sessions > max_capacity:
            yield (
                ("markets", mindex, "demand", "peak_sessions"),
                f"peak {demand.peak_sessions} sessions exceeds the {max_capacity:.0f} sessions its compliant "
                f"regions ({', '.join(r.name for r in compliant)}) carry at max_nodes and target "
                f"utilisation {spec.scaling.target_utilisation:g}",
                demand.peak_sessions,
            )

    market_codes = {m.code for m in spec.markets}
    for lindex, measured in enumerate(spec.latency.measured):
        if measured.market not in market_codes:
            yield ("latency", "measured", lindex, "market"), f"unknown market {measured.market!r}", measured.market
        if measured.region not in region_names:
            yield ("latency", "measured", lindex, "region"), f"unknown region {measured.region!r}", measured.region

    stages = spec.failover.stages
    if any(later <= earlier for earlier, later in pairwise(stages)):
        yield ("failover", "stages"), f"stages must increase strictly, got {stages}", stages
    if stages and stages[-1] != 1.0:
        yield ("failover", "stages"), f"the last stage must move all traffic (1.0), got {stages[-1]}", stages

    network = spec.network
    if network.media_udp_port_min > network.media_udp_port_max:
        yield (
            ("network", "media_udp_port_min"),
            f"media_udp_port_min {network.media_udp_port_min} is above media_udp_port_max {network.media_udp_port_max}",
            network.media_udp_port_min,
        )

    if spec.infra is not None:
        yield from _infra_problems(spec, spec.infra)

    if spec.traffic.evacuation_ceiling_utilisation < spec.scaling.target_utilisation:
        yield (
            ("traffic", "evacuation_ceiling_utilisation"),
            f"evacuation_ceiling_utilisation {spec.traffic.evacuation_ceiling_utilisation:g} is below "
            f"scaling.target_utilisation {spec.scaling.target_utilisation:g}: a sick region's sessions could "
            "never use the room between them",
            spec.traffic.evacuation_ceiling_utilisation,
        )

    yield from session_problems(spec)

    health = spec.health
    if health.failed_after_seconds < health.degraded_after_seconds:
        yield (
            ("health", "failed_after_seconds"),
            f"failed_after_seconds {health.failed_after_seconds:g} is below "
            f"degraded_after_seconds {health.degraded_after_seconds:g}",
            health.failed_after_seconds,
        )


def _infra_problems(spec: EnvironmentSpec, infra: InfraSpec) -> Iterator[Problem]:
    """What a deployable environment needs beyond a valid fleet: see `controller.spec.infra`."""
    if infra.controller_region not in {r.name for r in spec.regions}:
        yield (
            ("infra", "controller_region"),
            f"unknown region {infra.controller_region!r}: the controller runs in one of the environment's clusters",
            infra.controller_region,
        )
    if infra.system_nodes_min > infra.system_nodes_max:
        yield (
            ("infra", "system_nodes_min"),
            f"system_nodes_min {infra.system_nodes_min} is greater than system_nodes_max {infra.system_nodes_max}",
            infra.system_nodes_min,
        )
    for index, jurisdiction in enumerate(spec.jurisdictions):
        if jurisdiction.allowed_regions and jurisdiction.recordings_retention_days is None:
            yield (
                ("jurisdictions", index, "recordings_retention_days"),
                f"jurisdiction {jurisdiction.name!r} has regions but no recordings_retention_days: a deployable "
                "environment says how long its recordings are kept",
                None,
            )
    yield from address_plan_problems(spec, infra)


def _allowed_region_names(spec: EnvironmentSpec, jurisdiction_names: list[str]) -> set[str]:
    by_name = {j.name: j for j in spec.jurisdictions}
    allowed: set[str] = set()
    for jname in jurisdiction_names:
        jurisdiction = by_name.get(jname)
        if jurisdiction is not None:
            allowed.update(jurisdiction.allowed_regions)
    return allowed
