"""A tiny spec with cross-market flows whose placements and numbers can be checked by hand.

Regions fra, dub (EU), sin (global) and cgk (Indonesia); DE may use only the EU regions, ID only cgk,
SG all four. Flat demand: DE 100, SG 50, ID 40 concurrent one-to-one sessions, 10 per node. Flows:
DE -> ID 20% (a cascade: DE's side in fra, ID's in cgk), DE -> SG 10% (SG's rules allow fra: one
region), SG -> DE 20% (SG's side in sin, DE's in fra, its nearest allowed region).
"""

from __future__ import annotations

from typing import Any

from controller.spec import EnvironmentSpec
from tests.sim.conftest import tiny_spec

FLAT_ONE_TO_ONE = {"scenario_mix": {"one_to_one": 1.0}}


def cross_market_spec(de_sessions: int = 100, **overrides: Any) -> EnvironmentSpec:
    regions = [r.model_dump(mode="json", exclude_none=True) for r in tiny_spec().regions]
    regions.append({**regions[2], "name": "cgk", "cloud_region": "ap-southeast-3", "jurisdiction": "id",
                    "location": {"lat": -6.2, "lon": 106.85}})  # fmt: skip
    data: dict[str, Any] = {
        "regions": regions,
        "jurisdictions": [
            {"name": "eu", "allowed_regions": ["fra", "dub"], "legal_basis": "GDPR"},
            {"name": "id", "allowed_regions": ["cgk"], "legal_basis": "PP 71/2019"},
            {"name": "global", "allowed_regions": ["fra", "dub", "sin", "cgk"], "legal_basis": "none"},
        ],
        "markets": [
            {"code": "DE", "timezone": "Europe/Berlin", "location": {"lat": 51.0, "lon": 10.0},
             "allowed_jurisdictions": ["eu"],
             "demand": {"baseline_sessions": de_sessions, "peak_sessions": de_sessions, **FLAT_ONE_TO_ONE}},
            {"code": "SG", "timezone": "Asia/Singapore", "location": {"lat": 1.35, "lon": 103.8},
             "allowed_jurisdictions": ["global"],
             "demand": {"baseline_sessions": 50, "peak_sessions": 50, **FLAT_ONE_TO_ONE}},
            {"code": "ID", "timezone": "Asia/Jakarta", "location": {"lat": -6.5, "lon": 107.0},
             "allowed_jurisdictions": ["id"],
             "demand": {"baseline_sessions": 40, "peak_sessions": 40, **FLAT_ONE_TO_ONE}},
        ],
        "sessions": {
            "shapes": {"one_to_one": {"hosts_min": 2, "hosts_max": 2, "viewers_mean": 0, "e2e_rtt_p95_ms": 300,
                                      "e2e_max_loss_ratio": 0.02, "relay_mbps": 2.5}},
            "cross_market": [
                {"host": "DE", "guest": "ID", "share": 0.2, "scenario_mix": {"one_to_one": 1.0}},
                {"host": "DE", "guest": "SG", "share": 0.1, "scenario_mix": {"one_to_one": 1.0}},
                {"host": "SG", "guest": "DE", "share": 0.2, "scenario_mix": {"one_to_one": 1.0}},
            ],
        },
    }  # fmt: skip
    data.update(overrides)
    return tiny_spec(**data)
