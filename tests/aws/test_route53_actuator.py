"""Route53WeightsActuator against moto's Route 53 in server mode, through the real boto3 client over
HTTP: weights written as integer records and read back, residency kept by the rounding, idempotent
retries, batching, GetChange waits, concurrent writers, API errors and throttling (a loopback proxy
answers chosen requests with Route 53's own error bodies)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from controller.adapters.route53_actuator import Route53Settings, Route53WeightsActuator, market_record_name
from controller.ports import ActuationError
from controller.spec_file import load_environment
from tests.aws.conftest import route53_error

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_environment(ROOT / "environments" / "local.yaml")
DOMAIN = "media.example.com"


def client_for(url):
    return boto3.client("route53", region_name="us-east-1", endpoint_url=url)


def lay_out_zone(url) -> tuple[str, dict[str, str]]:
    """The records infra/global_routing.py declares: per market a weighted CNAME set over its allowed
    regions, each with its region's health check; nearest tier 100, the rest 0."""
    r53 = client_for(url)
    zone = r53.create_hosted_zone(Name=DOMAIN, CallerReference="edgeplane-test")["HostedZone"]["Id"].split("/")[-1]
    checks = {}
    for region in LOCAL.regions:
        checks[region.name] = r53.create_health_check(
            CallerReference=f"hc-{region.name}",
            HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": f"{region.name}.regions.{DOMAIN}",
                               "Port": 443, "ResourcePath": "/healthz", "RequestInterval": 10, "FailureThreshold": 3},
        )["HealthCheck"]["Id"]  # fmt: skip
    changes = []
    for market in LOCAL.markets:
        for region in LOCAL.allowed_regions(market.code):
            changes.append({"Action": "CREATE", "ResourceRecordSet": {
                "Name": market_record_name(market.code, DOMAIN), "Type": "CNAME", "TTL": 30,
                "SetIdentifier": region, "Weight": 100 if region in ("fra", "sin", "cgk") else 0,
                "ResourceRecords": [{"Value": f"{region}.regions.{DOMAIN}"}], "HealthCheckId": checks[region]}})  # fmt: skip
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return zone, checks


def weights_in_zone(url, zone) -> dict[str, dict[str, dict]]:
    found: dict[str, dict[str, dict]] = {}
    pages = client_for(url).get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone)
    for page in pages:
        for record in page["ResourceRecordSets"]:
            if ".markets." in record["Name"] and "Weight" in record:
                found.setdefault(record["Name"].split(".")[0].upper(), {})[record["SetIdentifier"]] = record
    return found


def actuator(url, zone, **settings):
    s = Route53Settings(hosted_zone_id=zone, media_domain=DOMAIN, endpoint_url=url, insync_poll_seconds=0.0, **settings)
    from controller.adapters.route53_actuator import route53_client

    return Route53WeightsActuator(LOCAL, s, client=route53_client(s), sleep=lambda s: None)


def change_requests(proxy):
    return [r for r in proxy.requests if r[0] == "POST" and r[1].endswith("/rrset/")]


def test_weights_become_integer_records_keeping_ttl_target_and_health_check(moto_url, fault_proxy):
    zone, checks = lay_out_zone(moto_url)
    weights = {"DE": {"fra": 0.7, "dub": 0.3}, "ID": {"cgk": 1.0}, "SG": {"sin": 0.999, "cgk": 0.001}}
    record = actuator(fault_proxy.url, zone).set_traffic_weights(weights, plan_id="p1", actor="loop", reason="test")
    assert record.changed and record.after["DE"] == {"fra": 178, "dub": 77}
    zone_now = weights_in_zone(moto_url, zone)
    assert {r: rec["Weight"] for r, rec in zone_now["DE"].items()} == {"fra": 178, "dub": 77}
    assert {r: rec["Weight"] for r, rec in zone_now["SG"].items()} == {"sin": 254, "cgk": 1, "fra": 0, "dub": 0}
    dub = zone_now["DE"]["dub"]
    assert dub["TTL"] == 30 and dub["HealthCheckId"] == checks["dub"]
    assert dub["ResourceRecords"] == [{"Value": f"dub.regions.{DOMAIN}"}]
    assert record.before["DE"] == {"fra": 100, "dub": 0}
    assert len(change_requests(fault_proxy)) == 1  # one batch for all markets


def test_second_identical_call_writes_nothing(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    act = actuator(fault_proxy.url, zone)
    weights = {"DE": {"fra": 0.5, "dub": 0.5}}
    assert act.set_traffic_weights(weights, plan_id="p1", actor="loop", reason="").changed
    again = act.set_traffic_weights(weights, plan_id="p1", actor="loop", reason="")
    assert not again.changed and again.before == again.after == {"DE": {"fra": 127, "dub": 128}}
    assert len(change_requests(fault_proxy)) == 1


def test_a_record_of_a_forbidden_region_is_zeroed_and_a_forbidden_share_refused(moto_url):
    zone, _ = lay_out_zone(moto_url)
    name = market_record_name("ID", DOMAIN)
    client_for(moto_url).change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": "CNAME", "TTL": 30, "SetIdentifier": "sin",
                                                  "Weight": 50, "ResourceRecords": [{"Value": f"sin.regions.{DOMAIN}"}]}}]})  # fmt: skip
    act = actuator(moto_url, zone)
    act.set_traffic_weights({"ID": {"cgk": 1.0}}, plan_id="p1", actor="loop", reason="")
    assert {r: rec["Weight"] for r, rec in weights_in_zone(moto_url, zone)["ID"].items()} == {"cgk": 255, "sin": 0}
    with pytest.raises(ActuationError, match="region sin is outside its jurisdictions") as refused:
        act.set_traffic_weights({"ID": {"cgk": 0.5, "sin": 0.5}}, plan_id="p2", actor="loop", reason="")
    assert refused.value.retryable is False
    assert weights_in_zone(moto_url, zone)["ID"]["sin"]["Weight"] == 0


def test_missing_record_of_a_served_region_is_an_error_naming_it(moto_url):
    zone, _ = lay_out_zone(moto_url)
    r53 = client_for(moto_url)
    record = weights_in_zone(moto_url, zone)["FR"]["dub"]
    r53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
    )
    with pytest.raises(ActuationError, match=r"fr.markets.media.example.com. has no record for dub") as error:
        actuator(moto_url, zone).set_traffic_weights({"FR": {"dub": 1.0}}, plan_id="p", actor="loop", reason="")
    assert error.value.retryable is False


def test_changes_are_batched(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    weights = {m.code: {r: 1.0 for r in LOCAL.allowed_regions(m.code)} for m in LOCAL.markets}
    record = actuator(fault_proxy.url, zone, batch_changes=3).set_traffic_weights(
        weights, plan_id="p", actor="l", reason=""
    )
    changed = sum(1 for m in record.after for r in record.after[m] if record.after[m][r] != record.before[m][r])
    assert len(change_requests(fault_proxy)) == -(-changed // 3) > 1
    assert {
        m: {r: x["Weight"] for r, x in recs.items()} for m, recs in weights_in_zone(moto_url, zone).items()
    } == record.after


def test_throttling_is_retried_by_botocore_and_then_surfaces_as_retryable(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    throttled = route53_error("Throttling", "Rate exceeded")
    fault_proxy.fail_first(2, lambda method, path: method == "POST" and path.endswith("/rrset/"), throttled)
    act = actuator(fault_proxy.url, zone, max_attempts=3)
    assert act.set_traffic_weights({"DE": {"dub": 1.0}}, plan_id="p", actor="l", reason="").changed
    assert len(fault_proxy.faulted) == 2 and len(change_requests(fault_proxy)) == 3

    fault_proxy.faulted.clear()
    fault_proxy.fail_first(10, lambda method, path: method == "GET" and "/rrset" in path, throttled)
    with pytest.raises(ActuationError, match=r"ListResourceRecordSets .*Throttling") as error:
        act.set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="p2", actor="l", reason="")
    assert error.value.retryable is True and len(fault_proxy.faulted) == 3  # max_attempts, then given up
    assert weights_in_zone(moto_url, zone)["DE"]["dub"]["Weight"] == 255  # nothing half-written


def test_api_errors_are_typed_by_whether_waiting_helps(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    with pytest.raises(ActuationError, match="NoSuchHostedZone") as missing:
        actuator(moto_url, "ZNOSUCHZONE").set_traffic_weights({"DE": {"fra": 1.0}}, plan_id="p", actor="l", reason="")
    assert missing.value.retryable is False
    fault_proxy.fail_first(1, lambda m, p: m == "POST", route53_error("InvalidChangeBatch", "bad batch"))
    with pytest.raises(ActuationError, match="InvalidChangeBatch: bad batch") as invalid:
        actuator(fault_proxy.url, zone).set_traffic_weights({"DE": {"dub": 1.0}}, plan_id="p", actor="l", reason="")
    assert invalid.value.retryable is False
    fault_proxy.fail_first(5, lambda m, p: m == "POST", route53_error("InternalError", "oops", status=500))
    with pytest.raises(ActuationError) as server_error:
        actuator(fault_proxy.url, zone, max_attempts=2).set_traffic_weights(
            {"DE": {"dub": 1.0}}, plan_id="p", actor="l", reason=""
        )
    assert server_error.value.retryable is True


def test_waits_for_insync_and_gives_up_retryably(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    pending = (200, "text/xml", (
        b'<?xml version="1.0"?>\n<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo>'
        b"<Id>/change/C1</Id><Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo>"
        b"</GetChangeResponse>"))  # fmt: skip
    fault_proxy.fail_first(3, lambda m, p: "/change/" in p, pending)
    act = actuator(fault_proxy.url, zone)
    assert act.set_traffic_weights({"DE": {"dub": 1.0}}, plan_id="p", actor="l", reason="").changed
    assert sum(1 for _, p in fault_proxy.requests if "/change/" in p) == 4  # 3 PENDING, then INSYNC
    fault_proxy.fail_first(1000, lambda m, p: "/change/" in p, pending)
    with pytest.raises(ActuationError, match="still PENDING") as error:
        actuator(fault_proxy.url, zone, insync_timeout_seconds=0.0).set_traffic_weights(
            {"DE": {"fra": 1.0}}, plan_id="p2", actor="l", reason=""
        )
    assert error.value.retryable is True


def test_another_writer_between_write_and_read_back_is_caught(moto_url, fault_proxy):
    zone, _ = lay_out_zone(moto_url)
    other = client_for(moto_url)

    def meddle(method, path):
        if "/change/" in path and fault_proxy.fault is meddle:
            record = weights_in_zone(moto_url, zone)["DE"]["fra"]
            other.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": {**record, "Weight": 7}}]})  # fmt: skip
            fault_proxy.fault = lambda m, p: None
        return None

    fault_proxy.fault = meddle
    with pytest.raises(ActuationError, match="read-back differs") as error:
        actuator(fault_proxy.url, zone).set_traffic_weights(
            {"DE": {"fra": 0.5, "dub": 0.5}}, plan_id="p", actor="l", reason=""
        )
    assert error.value.retryable is True
    # the retry converges
    again = actuator(moto_url, zone).set_traffic_weights(
        {"DE": {"fra": 0.5, "dub": 0.5}}, plan_id="p", actor="l", reason=""
    )
    assert again.changed and again.before["DE"]["fra"] == 7 and again.after["DE"] == {"fra": 127, "dub": 128}
