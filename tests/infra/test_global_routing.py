"""Global routing under mocks: health checks, failover-friendly TTLs, and DNS that respects residency."""

from __future__ import annotations

import pytest

from controller.spec_file import load_environment
from infra.global_routing import (
    ACTIVE_WEIGHT,
    HEALTH_CHECK_FAILURE_THRESHOLD,
    HEALTH_CHECK_INTERVAL_SECONDS,
    STANDBY_WEIGHT,
    GlobalRouting,
    GlobalRoutingArgs,
    MarketRoute,
    RoutedRegion,
    market_routes,
)
from infra.offline_graph import RecordedGraph
from tests.infra.conftest import MEDIA_DOMAIN, ZONE_ID, env_file

PROD = load_environment(env_file("prod"))
RECORD = "aws:route53/record:Record"


def _records(graph: RecordedGraph, name: str) -> list[dict]:
    return [dict(r.inputs) for r in graph.of_type(RECORD) if r.inputs["name"] == name]


def test_one_fast_health_check_per_region(prod_graph: RecordedGraph) -> None:
    checks = {
        c.inputs["tags"]["edgeplane:region"]: c.inputs
        for c in prod_graph.of_type("aws:route53/healthCheck:HealthCheck")
    }
    assert set(checks) == {r.name for r in PROD.regions}
    for name, check in checks.items():
        assert check["fqdn"] == f"{name}.regions.{MEDIA_DOMAIN}"
        assert (check["type"], int(check["port"]), check["resourcePath"]) == ("HTTPS", 443, "/healthz")
        assert int(check["requestInterval"]) == HEALTH_CHECK_INTERVAL_SECONDS == 10
        assert int(check["failureThreshold"]) == HEALTH_CHECK_FAILURE_THRESHOLD == 3


def test_every_answering_record_has_a_failover_ttl_and_a_health_check(prod_graph: RecordedGraph) -> None:
    records = [r.inputs for r in prod_graph.of_type(RECORD)]
    answering = [r for r in records if not r.get("aliases")]
    assert answering
    for record in answering:
        assert 0 < int(record["ttl"]) <= 30
        assert record["healthCheckId"].endswith("-id")
    for record in records:
        assert record["zoneId"] == ZONE_ID


@pytest.mark.parametrize("code", [m.code for m in PROD.markets])
def test_each_markets_weighted_set_holds_exactly_its_allowed_regions(prod_graph: RecordedGraph, code: str) -> None:
    weighted = _records(prod_graph, f"{code.lower()}.markets.{MEDIA_DOMAIN}")
    regions = [r["setIdentifier"] for r in weighted]
    assert sorted(regions) == sorted(PROD.allowed_regions(code))
    for record in weighted:
        assert record["records"] == [f"{record['setIdentifier']}.regions.{MEDIA_DOMAIN}"]
        assert record["healthCheckId"] == f"global-{record['setIdentifier']}-id"
    assert any(int(r["weightedRoutingPolicies"][0]["weight"]) > 0 for r in weighted)


def test_residency_bound_markets_never_resolve_abroad(prod_graph: RecordedGraph) -> None:
    for code, only in (("SA", "ruh"), ("ID", "cgk")):
        (record,) = _records(prod_graph, f"{code.lower()}.markets.{MEDIA_DOMAIN}")
        assert record["setIdentifier"] == only
    eu = {r["setIdentifier"] for r in _records(prod_graph, f"de.markets.{MEDIA_DOMAIN}")}
    assert eu == {"fra", "dub", "par"}
    # The geolocation alias must not evaluate target health: an unhealthy market set would otherwise
    # fall through to the default record, i.e. to any region in the world.
    geo = {r["setIdentifier"]: r for r in _records(prod_graph, MEDIA_DOMAIN)}
    assert set(geo) == {f"geo-{m.code}" for m in PROD.markets} | {"geo-default"}
    for market in PROD.markets:
        record = geo[f"geo-{market.code}"]
        assert record["geolocationRoutingPolicies"] == [{"country": market.code}]
        assert record["aliases"] == [
            {"name": f"{market.code.lower()}.markets.{MEDIA_DOMAIN}", "zoneId": ZONE_ID, "evaluateTargetHealth": False}
        ]
    assert geo["geo-default"]["geolocationRoutingPolicies"] == [{"country": "*"}]


def test_controller_owns_weights_and_latency_set_covers_all_regions(prod_graph: RecordedGraph) -> None:
    weighted = [r for r in prod_graph.of_type(RECORD) if r.inputs.get("weightedRoutingPolicies")]
    assert weighted and all(r.ignore_changes == ("weightedRoutingPolicies",) for r in weighted)
    latency = _records(prod_graph, f"nearest.{MEDIA_DOMAIN}")
    assert {r["setIdentifier"]: r["latencyRoutingPolicies"][0]["region"] for r in latency} == {
        r.name: r.cloud_region for r in PROD.regions
    }


def test_initial_weights_send_traffic_to_the_nearest_tier_only() -> None:
    routes = {route.code: dict(route.weights) for route in market_routes(PROD)}
    assert routes["SA"] == {"ruh": ACTIVE_WEIGHT}
    assert routes["SG"]["sin"] == ACTIVE_WEIGHT
    assert routes["SG"]["gru"] == STANDBY_WEIGHT  # Sao Paulo stands by for Singapore users
    assert routes["BR"]["gru"] == ACTIVE_WEIGHT and routes["BR"]["sin"] == STANDBY_WEIGHT
    for code, weights in routes.items():
        assert list(weights) == PROD.allowed_regions(code)


def test_routing_refuses_a_market_sent_to_an_undeclared_region() -> None:
    args = GlobalRoutingArgs(
        environment="x",
        zone_id="Z",
        media_domain="m.example.com",
        health_check_port=443,
        regions=(RoutedRegion("fra", "eu-central-1", "eu"),),
        markets=(MarketRoute("DE", (("fra", 100), ("iad", 0))),),
    )
    with pytest.raises(ValueError, match=r"market DE: routes to undeclared regions \['iad'\]"):
        GlobalRouting("global", args)
