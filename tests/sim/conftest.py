"""Shared builders for the simulated-fleet tests: small specs whose numbers are easy to check by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.spec import EnvironmentSpec
from controller.spec_file import load_environment
from sim.traces import Trace, quiet_trace

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)


def tiny_spec(**overrides: Any) -> EnvironmentSpec:
    """Two EU regions (fra, dub) and one global (sin); DE is EU-only, SG global.
    One scenario, 10 sessions per node, flat demand (baseline == peak) unless overridden."""
    demand_de = overrides.pop("demand_de", {"baseline_sessions": 100, "peak_sessions": 100})
    data: dict[str, Any] = {
        "name": "tiny",
        "regions": [
            {"name": "fra", "cloud_region": "eu-central-1", "jurisdiction": "eu", "location": {"lat": 50.1, "lon": 8.7},
             "node_instance_type": "c6gn.xlarge", "sessions_per_node": 10, "min_nodes": 0, "max_nodes": 50,
             "az_count": 1, "node_boot_seconds": 120},
            {"name": "dub", "cloud_region": "eu-west-1", "jurisdiction": "eu", "location": {"lat": 53.3, "lon": -6.3},
             "node_instance_type": "c6gn.xlarge", "sessions_per_node": 10, "min_nodes": 0, "max_nodes": 50,
             "az_count": 1, "node_boot_seconds": 120},
            {"name": "sin", "cloud_region": "ap-southeast-1", "jurisdiction": "global",
             "location": {"lat": 1.35, "lon": 103.8}, "node_instance_type": "c6gn.xlarge", "sessions_per_node": 10,
             "min_nodes": 0, "max_nodes": 50, "az_count": 1, "node_boot_seconds": 120},
        ],
        "jurisdictions": [
            {"name": "eu", "allowed_regions": ["fra", "dub"], "legal_basis": "GDPR"},
            {"name": "global", "allowed_regions": ["fra", "dub", "sin"], "legal_basis": "none"},
        ],
        "markets": [
            {"code": "DE", "timezone": "Europe/Berlin", "location": {"lat": 51.0, "lon": 10.0},
             "allowed_jurisdictions": ["eu"],
             "demand": {**demand_de, "scenario_mix": {"one_to_one": 1.0}}},
            {"code": "SG", "timezone": "Asia/Singapore", "location": {"lat": 1.35, "lon": 103.8},
             "allowed_jurisdictions": ["global"],
             "demand": {"baseline_sessions": 50, "peak_sessions": 50, "scenario_mix": {"one_to_one": 1.0}}},
        ],
        "scenarios": {"one_to_one": {"rtt_p95_ms": 250, "max_loss_ratio": 0.02, "max_jitter_ms": 30,
                                     "mean_session_minutes": 10}},
        "scaling": {"target_utilisation": 0.5, "drain_deadline_seconds": 600},
    }  # fmt: skip
    data.update(overrides)
    return EnvironmentSpec.model_validate(data)


def tiny_trace(hours: float = 24) -> Trace:
    return quiet_trace(START, hours * 3600)


@pytest.fixture(scope="session")
def local_spec() -> EnvironmentSpec:
    return load_environment(ROOT / "environments" / "local.yaml")


@pytest.fixture(scope="session")
def prod_spec() -> EnvironmentSpec:
    return load_environment(ROOT / "environments" / "prod.yaml")
