"""PrometheusObserver against a real Prometheus: live scrapes of a contract exporter, and backfilled
series (promtool) for exact staleness and trend checks. Also counts the PromQL queries per tick."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller import metric_names as m
from controller.adapters.prometheus_observer import ObserverSettings, PrometheusObserver, build_snapshot, tick_queries
from controller.ports import ObserverUnavailable
from controller.snapshot import NodeState
from controller.spec_file import load_environment
from tests.adapters.contract_exporter import start_contract_exporter
from tests.fixtures.prometheus_server import free_port, openmetrics_text, start_prometheus

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
PROD = load_environment(ROOT / "environments" / "prod.yaml")
RULES = sorted(str(p) for p in (ROOT / "rules").glob("*.yml"))
QUERIES_PER_TICK = len(tick_queries())


def _start_live_fleet(work_dir: Path):
    exporter = start_contract_exporter(LOCAL)
    prom = start_prometheus(work_dir, targets=[exporter.address], rule_files=RULES)
    # Two scrapes at least, so deriv() over offered sessions has points.
    prom.wait_for_data(
        f"count_over_time({m.MARKET_OFFERED_SESSIONS}[1m]) >= 2",
        predicate=lambda result: len(result) == len(LOCAL.markets),
    )
    return exporter, prom


@pytest.fixture(scope="module")
def live_fleet(tmp_path_factory):
    """Shared by the read-only tests: Prometheus' first scrape comes ~5s after start, pay it once."""
    exporter, prom = _start_live_fleet(tmp_path_factory.mktemp("prom"))
    yield exporter, prom
    prom.stop()
    exporter.stop()


@pytest.fixture
def own_live_fleet(tmp_path):
    exporter, prom = _start_live_fleet(tmp_path)
    yield exporter, prom
    prom.stop()
    exporter.stop()


@pytest.mark.integration
def test_live_snapshot_matches_the_exporter(live_fleet):
    _exporter, prom = live_fleet
    observer = PrometheusObserver(prom.url, LOCAL)
    snapshot = observer.observe()

    assert not snapshot.stale, snapshot.stale_reasons
    assert len(observer.last_tick.queries) == QUERIES_PER_TICK == 5
    assert [r.region for r in snapshot.regions] == ["fra", "dub", "sin", "cgk"]
    fra = snapshot.region("fra")
    assert fra is not None
    assert (fra.desired_nodes, fra.ready_nodes, fra.draining_nodes, fra.active_sessions) == (2, 1, 1, 42)
    assert fra.ready_capacity == 100
    assert {n.name: n.state for n in fra.nodes} == {"fra-a": NodeState.READY, "fra-b": NodeState.DRAINING}
    assert fra.nodes[0].cpu_utilisation == pytest.approx(0.25)
    assert snapshot.region("cgk").desired_nodes == 5  # type: ignore[union-attr]
    path = snapshot.path("DE", "dub")
    assert path is not None and (path.rtt_ms, path.loss_ratio, path.jitter_ms, path.active_sessions) == (
        41,
        0.004,
        7,
        10,
    )
    assert snapshot.path("DE", "sin") is None  # residency: the exporter has no such path
    assert snapshot.current_weights["DE"] == {"dub": 0.5, "fra": 0.5}
    assert snapshot.current_weights["ID"] == {"cgk": 1.0}
    assert {d.market: d.offered_sessions for d in snapshot.markets} == {
        "DE": 100,
        "FR": 101,
        "ID": 102,
        "SG": 103,
        "TH": 104,
    }
    assert all(d.trend_sessions_per_second == 0 for d in snapshot.markets)  # constant gauges
    age = (snapshot.taken_at - fra.observed_at).total_seconds()  # type: ignore[operator]
    assert 0 <= age < 5


@pytest.mark.integration
def test_query_count_per_tick_is_constant_for_local_and_prod(live_fleet, record_property):
    _exporter, prom = live_fleet
    local, prod = PrometheusObserver(prom.url, LOCAL), PrometheusObserver(prom.url, PROD)
    latencies = []
    for _ in range(20):
        local.observe()
        latencies.append(local.last_tick.seconds)
    prod_snapshot = prod.observe()
    assert len(local.last_tick.queries) == len(prod.last_tick.queries) == 5
    assert local.last_tick.queries == prod.last_tick.queries
    assert len(PROD.regions) == 13 and len(LOCAL.regions) == 4
    # prod's regions that this (local) fleet does not export are stale, none reads as zero load.
    local_names = {r.name for r in LOCAL.regions}
    prod_only = [r for r in prod_snapshot.regions if r.region not in local_names]
    assert prod_snapshot.stale and len(prod_only) >= 9
    assert all(r.stale and r.observed_at is None for r in prod_only)
    p50, p95 = statistics.median(latencies), sorted(latencies)[int(0.95 * len(latencies)) - 1]
    record_property("observer_tick_p50_ms", round(p50 * 1000, 2))
    record_property("observer_tick_p95_ms", round(p95 * 1000, 2))
    print(
        f"\nobserver tick latency (local spec, {len(latencies)} ticks): p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


@pytest.mark.integration
def test_exporter_down_makes_the_snapshot_stale(own_live_fleet):
    exporter, prom = own_live_fleet
    observer = PrometheusObserver(prom.url, LOCAL)
    assert not observer.observe().stale
    exporter.stop()
    prom.wait_for_data('up{job="edge"} == 0', timeout=15)
    snapshot = observer.observe()
    assert snapshot.stale
    assert any("up == 0" in reason for reason in snapshot.stale_reasons), snapshot.stale_reasons
    # Prometheus marks the vanished series stale: every region is stale, with no node read as empty.
    assert all(r.stale for r in snapshot.regions)


def _backfilled_fleet(now: int, *, old_region: str, missing_region: str) -> str:
    """Local fleet every 5s over the last 3 minutes; `old_region` stops 60s ago, `missing_region` never reports."""
    series = []
    for index, region in enumerate(LOCAL.regions):
        if region.name == missing_region:
            continue
        last = now - 60 if region.name == old_region else now - 2
        times = sorted(range(last, now - 181, -5))
        node = {"region": region.name, "node": f"{region.name}-1"}
        series += [
            (m.NODE_READY, node, [(t, 1.0) for t in times]),
            (m.NODE_DRAINING, node, [(t, 0.0) for t in times]),
            (m.NODE_BOOTING, node, [(t, 0.0) for t in times]),
            (m.NODE_ACTIVE_SESSIONS, node, [(t, 30.0 + index) for t in times]),
            (m.NODE_SESSION_CAPACITY, node, [(t, 100.0) for t in times]),
            (m.REGION_DESIRED_NODES, {"region": region.name}, [(t, 3.0) for t in times]),
        ]
    times = sorted(range(now - 2, now - 181, -5))
    # DE demand rises by exactly 2 sessions/s; the others are flat.
    for market in LOCAL.markets:
        slope = 2.0 if market.code == "DE" else 0.0
        series.append(
            (m.MARKET_OFFERED_SESSIONS, {"market": market.code}, [(t, 500 + slope * (t - now)) for t in times])
        )
    series.append((m.PATH_RTT_MS, {"market": "DE", "region": "fra"}, [(t, 48.5) for t in times]))
    # SG->sin exports sessions but no QoS: its QoS must read None, not 0.
    series.append((m.PATH_ACTIVE_SESSIONS, {"market": "SG", "region": "sin"}, [(t, 12.0) for t in times]))
    return openmetrics_text(series)


@pytest.mark.integration
def test_backfilled_series_give_exact_staleness_and_trend(prometheus_factory):
    now = int(time.time())
    prom = prometheus_factory(backfill=_backfilled_fleet(now, old_region="sin", missing_region="cgk"))
    observer = PrometheusObserver(prom.url, LOCAL, clock=lambda: datetime.fromtimestamp(now, UTC))
    snapshot = observer.observe()

    assert snapshot.taken_at == datetime.fromtimestamp(now, UTC)
    by_name = {r.region: r for r in snapshot.regions}
    assert not by_name["fra"].stale and not by_name["dub"].stale
    assert by_name["fra"].observed_at == datetime.fromtimestamp(now - 2, UTC)
    assert (by_name["fra"].active_sessions, by_name["fra"].desired_nodes) == (30, 3)
    assert by_name["sin"].stale and by_name["sin"].observed_at == datetime.fromtimestamp(now - 60, UTC)
    assert by_name["cgk"].stale and by_name["cgk"].observed_at is None and by_name["cgk"].nodes == []
    assert snapshot.stale
    assert "region sin: newest sample is 60s old (stale after 30s)" in snapshot.stale_reasons
    assert "region cgk: no samples" in snapshot.stale_reasons
    assert not any(reason.startswith(("region fra", "region dub")) for reason in snapshot.stale_reasons)

    trend = {d.market: d.trend_sessions_per_second for d in snapshot.markets}
    assert trend["DE"] == pytest.approx(2.0) and trend["FR"] == pytest.approx(0.0)
    assert snapshot.path("DE", "fra").rtt_ms == 48.5  # type: ignore[union-attr]
    sg = snapshot.path("SG", "sin")
    assert sg is not None and sg.active_sessions == 12
    assert (sg.rtt_ms, sg.loss_ratio, sg.jitter_ms) == (None, None, None)


def test_unreachable_prometheus_raises_after_bounded_retries():
    sleeps: list[float] = []
    observer = PrometheusObserver(
        f"http://127.0.0.1:{free_port()}",
        LOCAL,
        settings=ObserverSettings(attempts=3, backoff_seconds=0.1, request_timeout_seconds=1),
        sleep=sleeps.append,
    )
    with pytest.raises(ObserverUnavailable, match="unavailable after 3 attempts"):
        observer.observe()
    assert sleeps == [0.1, 0.2]
    assert len(observer.last_tick.queries) == 1  # gave up on the first query of the tick


def _sample(labels: dict[str, str], value: str) -> dict:
    return {"metric": labels, "value": [0, value]}


def test_nan_values_read_as_none_and_region_down_target_marks_only_that_region():
    now = datetime.fromtimestamp(1_700_000_000, UTC)  # inside the sane window
    node = {"region": "fra", "node": "fra-1"}
    answers = {
        "nodes": [
            _sample({"__name__": m.NODE_READY, **node}, "1"),
            _sample({"__name__": m.NODE_ACTIVE_SESSIONS, **node}, "NaN"),
            _sample({"__name__": m.NODE_SESSION_CAPACITY, **node}, "100"),
            _sample({"__name__": m.REGION_DESIRED_NODES, "region": "fra"}, "2"),
        ],
        "freshness": [_sample(node, "1699999999"), _sample({"region": "dub"}, "1699999999")],
        "paths": [_sample({"__name__": m.PATH_RTT_MS, "market": "DE", "region": "fra"}, "NaN")],
        "markets": [],
        "targets": [_sample({"job": "edge", "instance": "dub-exporter", "region": "dub"}, "0")],
    }
    snapshot = build_snapshot(LOCAL, now, answers)
    fra, dub = snapshot.region("fra"), snapshot.region("dub")
    assert fra is not None and dub is not None
    assert fra.stale and "region fra: node fra-1: missing edge_node_active_sessions" in snapshot.stale_reasons
    assert dub.stale and "region dub: scrape target edge/dub-exporter is down (up == 0)" in snapshot.stale_reasons
    assert snapshot.path("DE", "fra").rtt_ms is None  # type: ignore[union-attr]
    assert "market DE: no edge_market_offered_sessions sample" in snapshot.stale_reasons


def _fleet_answers(now: datetime, *, extra_node_age: float | None, others_age: float = 1.0) -> dict[str, list[dict]]:
    """Every region of LOCAL with one node `<region>-1`; fra also reports `fra-0018`, `extra_node_age` old."""
    answers: dict[str, list[dict]] = {"nodes": [], "freshness": [], "paths": [], "markets": [], "targets": []}
    nodes = [(r.name, f"{r.name}-1", others_age) for r in LOCAL.regions]
    if extra_node_age is not None:
        nodes.append(("fra", "fra-0018", extra_node_age))
    for region, name, age in nodes:
        node = {"region": region, "node": name}
        answers["nodes"] += [
            _sample({"__name__": m.NODE_READY, **node}, "1"),
            _sample({"__name__": m.NODE_ACTIVE_SESSIONS, **node}, "10"),
            _sample({"__name__": m.NODE_SESSION_CAPACITY, **node}, "100"),
        ]
        answers["freshness"].append(_sample(node, str(now.timestamp() - age)))
    answers["nodes"] += [_sample({"__name__": m.REGION_DESIRED_NODES, "region": r.name}, "1") for r in LOCAL.regions]
    answers["markets"] = [_sample({"market": mk.code}, "100") for mk in LOCAL.markets]
    answers["freshness"] += [_sample({"market": mk.code}, str(now.timestamp() - 1)) for mk in LOCAL.markets]
    return answers


def test_a_removed_nodes_lingering_series_do_not_freeze_the_fleet():
    """After a Prometheus restart a scaled-in node's last samples linger for the look-back window
    (no staleness marker was written): with the region's other series fresh, the node is gone."""
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    snapshot = build_snapshot(LOCAL, now, _fleet_answers(now, extra_node_age=150))
    fra = snapshot.region("fra")
    assert fra is not None and not fra.stale, snapshot.stale_reasons
    assert not snapshot.stale, snapshot.stale_reasons
    assert [n.name for n in fra.nodes] == ["fra-1"]
    # Everything old is still stale: the region as a whole went quiet, which is fail-static.
    quiet = build_snapshot(LOCAL, now, _fleet_answers(now, extra_node_age=150, others_age=150))
    assert quiet.region("fra").stale and quiet.stale  # type: ignore[union-attr]


@pytest.mark.integration
def test_a_query_prometheus_rejects_is_not_retried(live_fleet):
    _exporter, prom = live_fleet
    sleeps: list[float] = []
    observer = PrometheusObserver(prom.url, LOCAL, settings=ObserverSettings(up_job_regex="edge("), sleep=sleeps.append)
    with pytest.raises(ObserverUnavailable, match="rejected"):
        observer.observe()
    assert sleeps == []


def test_implausible_samples_are_dropped_per_series_and_counted():
    """One absurd gauge per kind: only its own series is lost; the snapshot validates and plans."""
    from controller.core.planner import make_plan

    now = datetime.fromtimestamp(1_700_000_000, UTC)
    fresh = str(now.timestamp() - 1)
    answers: dict[str, list[dict]] = {"nodes": [], "freshness": [], "paths": [], "markets": [], "targets": []}
    for region in LOCAL.regions:
        node = {"region": region.name, "node": f"{region.name}-1"}
        capacity = "1e30" if region.name == "fra" else "100"
        answers["nodes"] += [
            _sample({"__name__": m.NODE_READY, **node}, "1"),
            _sample({"__name__": m.NODE_ACTIVE_SESSIONS, **node}, "10"),
            _sample({"__name__": m.NODE_SESSION_CAPACITY, **node}, capacity),
            _sample({"__name__": m.REGION_DESIRED_NODES, "region": region.name}, "1"),
        ]
        answers["freshness"].append(_sample(node, fresh))
    answers["paths"] = [
        _sample({"__name__": m.PATH_RTT_MS, "market": "SG", "region": "sin"}, "+Inf"),
        _sample({"__name__": m.PATH_JITTER_MS, "market": "SG", "region": "sin"}, "4"),
        _sample({"__name__": m.PATH_ACTIVE_SESSIONS, "market": "TH", "region": "sin"}, str(2**64 - 1)),
    ]
    answers["markets"] = [_sample({"market": mk.code}, "100") for mk in LOCAL.markets if mk.code != "DE"]
    answers["markets"].append(_sample({"market": "DE"}, "1.8446744073709552e19"))  # a wrapped counter

    snapshot = build_snapshot(LOCAL, now, answers)

    assert snapshot.implausible_samples == {
        m.MARKET_OFFERED_SESSIONS: 1,
        m.NODE_SESSION_CAPACITY: 1,
        m.PATH_ACTIVE_SESSIONS: 1,
        m.PATH_RTT_MS: 1,
    }
    assert any("edge_node_session_capacity{node=fra-1,region=fra} = 1e+30" in e for e in snapshot.implausible_examples)
    # Only the series at fault is lost: fra is stale (frozen), the other regions and markets are not,
    # and the snapshot as a whole is not stale (no fleet-wide fail static for one bad gauge).
    assert [r.region for r in snapshot.regions if r.stale] == ["fra"]
    assert not snapshot.stale, snapshot.stale_reasons
    sg = snapshot.path("SG", "sin")
    assert sg is not None and sg.rtt_ms is None and sg.jitter_ms == 4
    assert {d.market for d in snapshot.markets} == {"FR", "ID", "SG", "TH"}
    plan = make_plan(LOCAL, snapshot, None, snapshot.taken_at)
    assert any(s.startswith("IMPLAUSIBLE samples dropped") for s in plan.explanation)
    assert any("no demand sample for DE: using the diurnal profile" in s for s in plan.explanation)


@pytest.mark.integration
def test_live_exporter_serving_implausible_values_keeps_the_loop_planning(own_live_fleet):
    from prometheus_client import CollectorRegistry

    from controller.core.planner import make_plan
    from workflows.controller_metrics import ControllerMetrics

    exporter, prom = own_live_fleet
    exporter.gauges[m.NODE_SESSION_CAPACITY].labels("dub", "dub-a").set(1e30)
    exporter.gauges[m.PATH_RTT_MS].labels("SG", "sin").set(float("inf"))
    exporter.gauges[m.MARKET_OFFERED_SESSIONS].labels("TH").set(2.0**64 - 1)
    prom.wait_for_data(f'{m.NODE_SESSION_CAPACITY}{{node="dub-a"}} > 1e29', timeout=30)
    prom.wait_for_data(f'{m.MARKET_OFFERED_SESSIONS}{{market="TH"}} > 1e18', timeout=30)
    prom.wait_for_data(f'{m.PATH_RTT_MS}{{market="SG",region="sin"}} == +Inf', timeout=30)

    snapshot = PrometheusObserver(prom.url, LOCAL).observe()

    # The wrapped counter's jump also gives an implausible slope, counted apart.
    assert snapshot.implausible_samples == {
        f"deriv({m.MARKET_OFFERED_SESSIONS})": 1,
        m.MARKET_OFFERED_SESSIONS: 1,
        m.NODE_SESSION_CAPACITY: 1,
        m.PATH_RTT_MS: 1,
    }
    assert [r.region for r in snapshot.regions if r.stale] == ["dub"]
    assert not snapshot.stale, snapshot.stale_reasons
    assert snapshot.path("SG", "sin").rtt_ms is None  # type: ignore[union-attr]
    plan = make_plan(LOCAL, snapshot, None, snapshot.taken_at)  # every market still planned
    assert set(plan.weights) == {mk.code for mk in LOCAL.markets}

    metrics = ControllerMetrics("local", CollectorRegistry())
    metrics.record_snapshot(snapshot)
    counted = {
        metric: metrics.registry.get_sample_value(
            m.CONTROLLER_IMPLAUSIBLE_SAMPLES_TOTAL, {"environment": "local", "metric": metric}
        )
        for metric in (m.NODE_SESSION_CAPACITY, m.PATH_RTT_MS, m.MARKET_OFFERED_SESSIONS)
    }
    assert counted == dict.fromkeys(counted, 1.0)
