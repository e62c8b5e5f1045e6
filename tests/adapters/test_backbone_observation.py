"""The observer's reading of the backbone series (`controller/adapters/backbone_series.py` through
`build_snapshot`) and the backbone health model (`controller/core/backbone_health.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller import metric_names as m
from controller.adapters.prometheus_observer import build_snapshot, tick_queries
from controller.core.backbone_health import assess_backbone
from controller.snapshot import BackboneObservation
from controller.spec_file import load_environment

LOCAL = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")
NOW = datetime.fromtimestamp(1_700_000_000, UTC)


def _sample(labels: dict[str, str], value: str) -> dict:
    return {"metric": labels, "value": [0, value]}


def test_backbone_series_ride_the_paths_query_and_become_observations() -> None:
    assert m.BACKBONE_RTT_MS in tick_queries()["paths"] and m.BACKBONE_LOSS_RATIO in tick_queries()["paths"]
    link = {"region": "fra", "peer_region": "cgk"}
    answers = {
        "nodes": [],
        "freshness": [],
        "markets": [],
        "targets": [],
        "paths": [
            _sample({"__name__": m.BACKBONE_RTT_MS, **link}, "175.5"),
            _sample({"__name__": m.BACKBONE_LOSS_RATIO, **link}, "0.07"),
            _sample({"__name__": m.BACKBONE_RTT_MS, "region": "dub", "peer_region": "cgk"}, "+Inf"),
            _sample({"__name__": m.BACKBONE_LOSS_RATIO, "region": "dub", "peer_region": "cgk"}, "NaN"),
            _sample({"__name__": m.BACKBONE_RTT_MS, "region": "fra", "peer_region": "mars"}, "10"),
        ],
    }
    snapshot = build_snapshot(LOCAL, NOW, answers)
    assert snapshot.backbone == [
        BackboneObservation(region="dub", peer_region="cgk", rtt_ms=None, loss_ratio=None),
        BackboneObservation(region="fra", peer_region="cgk", rtt_ms=175.5, loss_ratio=0.07),
    ]
    assert snapshot.implausible_samples == {m.BACKBONE_RTT_MS: 1}


def test_health_takes_the_worse_direction_and_fails_a_lossy_or_slow_path() -> None:
    base = LOCAL.backbone_rtt_ms("fra", "cgk")
    health = assess_backbone(
        LOCAL,
        [
            BackboneObservation(region="fra", peer_region="cgk", rtt_ms=base + 5, loss_ratio=0.01),
            BackboneObservation(region="cgk", peer_region="fra", rtt_ms=base + 30, loss_ratio=0.002),
            BackboneObservation(region="fra", peer_region="dub", rtt_ms=1.0),  # below unloaded: not trusted lower
            BackboneObservation(region="sin", peer_region="dub", rtt_ms=3 * LOCAL.backbone_rtt_ms("sin", "dub") + 25),
            BackboneObservation(region="fra", peer_region="nowhere", loss_ratio=0.9),
        ],
    )
    i = {name: k for k, name in enumerate(health.region_names)}
    assert health.rtt_ms[i["fra"], i["cgk"]] == pytest.approx(base + 30)
    assert health.loss_ratio[i["cgk"], i["fra"]] == pytest.approx(0.01)
    assert health.rtt_ms[i["fra"], i["dub"]] == pytest.approx(LOCAL.backbone_rtt_ms("fra", "dub"))
    assert health.failed_links() == [("dub", "sin")]
    lossy = assess_backbone(LOCAL, [BackboneObservation(region="fra", peer_region="cgk", loss_ratio=0.05)])
    assert lossy.failed_links() == [("fra", "cgk")]  # at sick_loss_ratio (5%): audio breaks


def test_without_observations_the_backbone_is_the_spec_s_and_nothing_fails() -> None:
    health = assess_backbone(LOCAL)
    assert health.failed_links() == [] and not health.observed.any()
    assert health.rtt_ms[0, 0] == 0.0
