"""The observer dates snapshots on the fleet's clock (`edge_fleet_clock_seconds`), judges staleness
on the wall clock, and falls back to the wall clock when the fleet does not export one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller import metric_names as m
from controller.adapters.prometheus_observer import CLOCK_LABEL, build_snapshot
from controller.spec_file import load_environment

SPEC = load_environment(Path(__file__).resolve().parents[2] / "environments" / "local.yaml")
WALL = datetime(2026, 11, 25, 5, 0, 0, tzinfo=UTC)


def _answers(fleet_clock: float | None, rate: float = 60.0) -> dict[str, list[dict[str, object]]]:
    scraped = WALL.timestamp() - 1.0
    freshness: list[dict[str, object]] = [
        {"metric": {"region": r.name}, "value": [WALL.timestamp(), str(scraped)]} for r in SPEC.regions
    ]
    nodes: list[dict[str, object]] = [
        {"metric": {"__name__": m.REGION_DESIRED_NODES, "region": r.name}, "value": [0, "2"]} for r in SPEC.regions
    ]
    if fleet_clock is not None:
        freshness += [
            {"metric": {CLOCK_LABEL: "value"}, "value": [WALL.timestamp(), str(fleet_clock)]},
            {"metric": {CLOCK_LABEL: "scraped_at"}, "value": [WALL.timestamp(), str(scraped)]},
            {"metric": {CLOCK_LABEL: "rate"}, "value": [WALL.timestamp(), str(rate)]},
        ]
    markets: list[dict[str, object]] = [
        {"metric": {"market": "ID"}, "value": [WALL.timestamp(), "1200"]},
        {"metric": {"market": "ID", "edgeplane_derived": "trend"}, "value": [WALL.timestamp(), "6"]},
    ]
    return {"nodes": nodes, "freshness": freshness, "paths": [], "markets": markets, "targets": []}


def test_snapshot_is_dated_on_the_fleet_clock_and_samples_shift_with_it() -> None:
    fleet_time = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)  # an accelerated simulator's evening
    snapshot = build_snapshot(SPEC, WALL, _answers(fleet_time.timestamp()))

    # Scraped 1 s before the query: the fleet's clock then read fleet_time.
    assert snapshot.taken_at == fleet_time + timedelta(seconds=1)
    for region in snapshot.regions:
        assert region.observed_at == fleet_time  # same offset: ages are preserved
        assert not region.stale  # staleness is judged on wall-clock sample ages (1 s)


def test_demand_trend_is_per_fleet_second() -> None:
    # 6 sessions per wall second on a fleet running x60 is 0.1 session per fleet second.
    snapshot = build_snapshot(SPEC, WALL, _answers(datetime(2026, 11, 23, tzinfo=UTC).timestamp(), rate=60.0))
    (demand,) = [d for d in snapshot.markets if d.market == "ID"]
    assert demand.trend_sessions_per_second == 0.1


def test_without_a_fleet_clock_the_wall_clock_is_used() -> None:
    snapshot = build_snapshot(SPEC, WALL, _answers(None))
    assert snapshot.taken_at == WALL
    (demand,) = [d for d in snapshot.markets if d.market == "ID"]
    assert demand.trend_sessions_per_second == 6.0
    assert all(r.observed_at == WALL - timedelta(seconds=1) for r in snapshot.regions)
