"""A synthetic large fleet for the plan-latency benchmark: 30 regions x 250 markets, fixed seed.

Used by `bench/plan_latency.py`. Produces a valid EnvironmentSpec (it goes through the same
validation as `environments/*.yaml`) and a FleetSnapshot of a busy evening for it:

- residency mixed like a real fleet: 10 in-country jurisdictions (one region each), 4 regional
  blocs (5-7 regions each), and a global jurisdiction; ~8% of markets in-country, ~20% regional,
  the rest global;
- regions sized so the fleet as a whole has ~25% spare ready capacity but some regions are tight,
  so the capacity constraints bind and the LP has real work;
- every allowed path observed (p95 RTT = unloaded RTT + noise, loss, jitter), two regions
  impaired (extra loss / RTT), weights in force = the nearest allowed region per market with a
  share spread to the second nearest for some markets.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from controller.snapshot import (
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    NodeState,
    PathObservation,
    RegionObservation,
)
from controller.spec import EnvironmentSpec
from controller.spec.residency_geography import SIMULATED_CLOUD_REGIONS

SEED = 20261125
REGIONS = 30
MARKETS = 250
IN_COUNTRY_JURISDICTIONS = 10
BLOCS = 4
SESSIONS_PER_NODE = 200
TAKEN_AT = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)

_TIMEZONES = [
    "Asia/Jakarta", "Asia/Bangkok", "Asia/Manila", "Asia/Kolkata", "Asia/Riyadh", "Asia/Dubai",
    "Africa/Cairo", "Africa/Lagos", "Africa/Johannesburg", "Europe/Berlin", "Europe/Paris",
    "Europe/London", "America/Sao_Paulo", "America/New_York", "America/Chicago", "America/Mexico_City",
    "Asia/Tokyo", "Asia/Seoul", "Australia/Sydney", "Asia/Karachi", "Europe/Istanbul", "Africa/Nairobi",
]  # fmt: skip


def _market_codes(count: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [a + b for a in letters for b in letters]
    return codes[:count]


def synthetic_spec_data(seed: int = SEED) -> dict[str, object]:
    """The spec as plain data (what a YAML file would hold)."""
    rng = np.random.default_rng(seed)
    lats = rng.uniform(-40, 60, REGIONS)
    lons = rng.uniform(-120, 150, REGIONS)
    region_names = [f"r{i:02d}" for i in range(REGIONS)]

    in_country = {f"c{i:02d}": [region_names[i]] for i in range(IN_COUNTRY_JURISDICTIONS)}
    order = np.argsort(lons)  # blocs of neighbouring regions
    bloc_size = REGIONS // BLOCS
    blocs = {
        f"bloc{b}": sorted(region_names[int(i)] for i in order[b * bloc_size : (b + 1) * bloc_size + (b % 2)])
        for b in range(BLOCS)
    }
    home: dict[str, str] = {}
    for name, members in in_country.items():
        home[members[0]] = name
    for name, members in blocs.items():
        for region in members:
            home.setdefault(region, name)
    for region in region_names:
        home.setdefault(region, "global")

    regions = [
        {
            "name": name,
            "cloud_region": f"sy-synth-{i % 99 + 1}",
            "jurisdiction": home[name],
            "location": {"lat": float(lats[i]), "lon": float(lons[i])},
            "node_instance_type": "c6gn.2xlarge",
            "sessions_per_node": SESSIONS_PER_NODE,
            "min_nodes": 2,
            "max_nodes": 600,
            "az_count": 3,
            "node_boot_seconds": int(rng.integers(150, 300)),
        }
        for i, name in enumerate(region_names)
    ]
    jurisdictions = [
        {"name": name, "allowed_regions": members, "legal_basis": "synthetic in-country rule"}
        for name, members in in_country.items()
    ]
    jurisdictions += [
        {"name": name, "allowed_regions": members + [r for r in region_names if home[r] == name and r not in members],
         "legal_basis": "synthetic regional rule"}
        for name, members in blocs.items()
    ]  # fmt: skip
    jurisdictions.append({"name": "global", "allowed_regions": region_names, "legal_basis": "no localisation rule"})

    markets = []
    for i, code in enumerate(_market_codes(MARKETS)):
        near = int(rng.integers(0, REGIONS))
        draw = rng.uniform()
        if draw < 0.08:
            allowed = [f"c{int(rng.integers(0, IN_COUNTRY_JURISDICTIONS)):02d}"]
        elif draw < 0.28:
            allowed = [f"bloc{int(rng.integers(0, BLOCS))}"]
        else:
            allowed = ["global"]
        peak = int(rng.integers(400, 6000))
        live = float(rng.uniform(0.3, 0.6))
        markets.append(
            {
                "code": code,
                "timezone": _TIMEZONES[i % len(_TIMEZONES)],
                "location": {
                    "lat": float(np.clip(lats[near] + rng.normal(0, 6), -89, 89)),
                    "lon": float(np.clip(lons[near] + rng.normal(0, 8), -179, 179)),
                },
                "allowed_jurisdictions": allowed,
                "demand": {
                    "baseline_sessions": int(peak * 0.15),
                    "peak_sessions": peak,
                    "peak_local_hour": float(rng.uniform(19, 22)),
                    "scenario_mix": {
                        "live_show": round(live, 3),
                        "one_to_one": round(0.9 - live, 3),
                        "multi_host": 0.1 + round(1 - 0.1 - round(live, 3) - round(0.9 - live, 3), 3),
                    },
                },
            }
        )
    return {
        "name": "synthetic",
        "description": f"Synthetic {REGIONS} regions x {MARKETS} markets for bench/plan_latency.py (seed {seed}).",
        "regions": regions,
        "jurisdictions": jurisdictions,
        "markets": markets,
        "scenarios": {
            "live_show": {"rtt_p95_ms": 300, "max_loss_ratio": 0.02, "max_jitter_ms": 40, "mean_session_minutes": 45},
            "one_to_one": {"rtt_p95_ms": 250, "max_loss_ratio": 0.02, "max_jitter_ms": 30, "mean_session_minutes": 6},
            "multi_host": {"rtt_p95_ms": 200, "max_loss_ratio": 0.015, "max_jitter_ms": 30, "mean_session_minutes": 25},
        },
        "latency": {"base_rtt_ms": 10, "rtt_ms_per_km": 0.02},
        "scaling": {"target_utilisation": 0.7, "headroom_ratio": 0.1, "scale_in_cooldown_seconds": 900,
                    "max_step_nodes": 40, "forecast_margin_seconds": 120, "drain_deadline_seconds": 1800},
        "traffic": {"tick_seconds": 15, "disruption_budget": 0.25},
    }  # fmt: skip


def synthetic_spec(seed: int = SEED) -> EnvironmentSpec:
    """The validated synthetic EnvironmentSpec.

    Its 30 regions carry made-up cloud region codes (`sy-synth-N`: AWS has fewer regions than the
    benchmark needs), so it is validated with the simulator-only context that no environment file
    can set; the deploy preflight would still refuse it."""
    return EnvironmentSpec.model_validate(synthetic_spec_data(seed), context={SIMULATED_CLOUD_REGIONS: True})


def synthetic_snapshot(spec: EnvironmentSpec, seed: int = SEED, taken_at: datetime = TAKEN_AT) -> FleetSnapshot:
    """A busy evening of the synthetic fleet (see the module docstring)."""
    rng = np.random.default_rng(seed + 1)
    demand = {m.code: float(m.demand.peak_sessions * rng.uniform(0.5, 0.95)) for m in spec.markets}

    weights: dict[str, dict[str, float]] = {}
    load = {r.name: 0.0 for r in spec.regions}
    for market in spec.markets:
        allowed = sorted(spec.allowed_regions(market.code), key=lambda r: spec.base_rtt_ms(market.code, r))
        if len(allowed) > 1 and rng.uniform() < 0.3:
            split = float(rng.uniform(0.5, 0.9))
            weights[market.code] = {allowed[0]: split, allowed[1]: 1.0 - split}
        else:
            weights[market.code] = {allowed[0]: 1.0}
        for name, share in weights[market.code].items():
            load[name] += share * demand[market.code]

    per_node = SESSIONS_PER_NODE * spec.scaling.target_utilisation
    regions = []
    for region in spec.regions:
        # Most regions 10-40% above their load at target utilisation, a few 15% short.
        factor = float(rng.uniform(1.1, 1.4)) if rng.uniform() > 0.15 else 0.85
        ready = min(region.max_nodes, max(region.min_nodes, math.ceil(load[region.name] * factor / per_node)))
        active = load[region.name] / max(ready, 1)
        nodes = [
            NodeObservation(
                name=f"{region.name}-n{i:03d}",
                state=NodeState.READY,
                active_sessions=max(0, round(active * float(rng.uniform(0.8, 1.2)))),
                session_capacity=SESSIONS_PER_NODE,
            )
            for i in range(ready)
        ]
        regions.append(
            RegionObservation(
                region=region.name,
                desired_nodes=ready,
                nodes=nodes,
                active_sessions=sum(n.active_sessions for n in nodes),
                observed_at=taken_at,
            )
        )

    impaired = {"r07": (0.03, 0.0), "r19": (0.0, 60.0)}  # region -> (extra loss, extra RTT)
    paths = []
    for market in spec.markets:
        for region_name in spec.allowed_regions(market.code):
            extra_loss, extra_rtt = impaired.get(region_name, (0.0, 0.0))
            paths.append(
                PathObservation(
                    market=market.code,
                    region=region_name,
                    rtt_ms=spec.base_rtt_ms(market.code, region_name) * float(rng.uniform(1.0, 1.2)) + extra_rtt,
                    loss_ratio=float(rng.uniform(0.0, 0.006)) + extra_loss,
                    jitter_ms=float(rng.uniform(2, 12)),
                    active_sessions=round(weights[market.code].get(region_name, 0.0) * demand[market.code]),
                )
            )
    return FleetSnapshot(
        environment=spec.name,
        taken_at=taken_at,
        regions=regions,
        paths=paths,
        markets=[
            MarketDemand(market=code, offered_sessions=value, trend_sessions_per_second=float(rng.normal(0, 0.5)))
            for code, value in demand.items()
        ],
        current_weights=weights,
    )
