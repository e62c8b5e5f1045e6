"""GlobalRouting: Route 53 health checks and records that move media traffic between regions.

Declared once per stack by `infra.program.declare_fleet` when `edgeplane:dnsZoneId` is set.

Why geolocation -> weighted, plus latency, rather than plain latency routing: latency routing sends a
user to the nearest healthy region whatever their market, so a Saudi user whose region (ruh) fails
would be answered with dxb, breaking residency. Instead the record tree mirrors the residency rules:

    <mediaDomain>                     geolocation, one record per market country (set "geo-SA" ...)
      country SA -> alias sa.markets.<mediaDomain>   (evaluate_target_health = false, see below)
      default "*" -> alias nearest.<mediaDomain>
    sa.markets.<mediaDomain>          weighted set over the market's ALLOWED regions only, each with
                                      its region's health check; weights owned by the controller
    nearest.<mediaDomain>             latency set over all regions, for users outside any market
    <region>.regions.<mediaDomain>    the region's media entry point; NOT declared here: external-dns
                                      in each cluster owns it (it points at the TURN/TLS load balancer)

- Failover inside a market: Route 53 drops weighted records whose health check fails; records with
  weight 0 (standby regions) are answered only when every non-zero record is unhealthy. Initial
  weights favour the regions nearest the market (`market_routes`); the controller changes them at
  run time, so Pulumi ignores weight changes.
- Residency: a market's weighted set contains only regions its jurisdictions allow. The geolocation
  alias does NOT evaluate target health, because an unhealthy target would make Route 53 fall
  through to the default record (any region). With all of a market's regions down, Route 53 keeps
  answering from the market's set (it treats an all-unhealthy set as all healthy): degraded in
  place, never moved abroad, matching invariant 1 of the controller.
- Timing: health checks every 10 s, unhealthy after 3 failures; record TTL 30 s. A failed region
  leaves answers after ~30 s plus resolver TTL (<= 30 s for resolvers that honour it).
- Geolocation uses the resolver's (or EDNS client subnet's) location; it steers, it does not
  prove: the signalling service still places each session through the controller's allowed list.

Route 53 is a global service whose control plane is in us-east-1, so the component declares its
own explicit provider there. DNS names and health checks hold no media or personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.spec import EnvironmentSpec
from infra import residency_tags as tags

RECORD_TTL_SECONDS = 30
HEALTH_CHECK_INTERVAL_SECONDS = 10  # Route 53 offers 10 or 30
HEALTH_CHECK_FAILURE_THRESHOLD = 3
HEALTH_CHECK_PATH = "/healthz"
ROUTE53_CONTROL_PLANE_REGION = "us-east-1"

NEARBY_RTT_MARGIN_MS = 20.0
"""Allowed regions within this RTT of a market's nearest one start with traffic; the rest stand by."""
ACTIVE_WEIGHT = 100
STANDBY_WEIGHT = 0


@dataclass(frozen=True)
class RoutedRegion:
    """A region as routing sees it."""

    name: str
    cloud_region: str
    jurisdiction: str


@dataclass(frozen=True)
class MarketRoute:
    """One market's weighted set: (region, initial weight) for each region it may use."""

    code: str
    weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GlobalRoutingArgs:
    """Inputs of the global routing component."""

    environment: str
    zone_id: str
    """Route 53 hosted zone that contains `media_domain`."""
    media_domain: str
    """Name clients resolve, e.g. media.example.com."""
    health_check_port: int
    """TCP port of each region's health endpoint (the TURN/TLS port)."""
    regions: tuple[RoutedRegion, ...]
    markets: tuple[MarketRoute, ...]


def market_routes(spec: EnvironmentSpec) -> tuple[MarketRoute, ...]:
    """Each market's allowed regions (residency) with initial weights: nearest tier active, rest standby."""
    routes = []
    for market in spec.markets:
        allowed = spec.allowed_regions(market.code)
        rtt = {name: spec.base_rtt_ms(market.code, name) for name in allowed}
        nearest = min(rtt.values())
        routes.append(
            MarketRoute(
                code=market.code,
                weights=tuple(
                    (name, ACTIVE_WEIGHT if rtt[name] <= nearest + NEARBY_RTT_MARGIN_MS else STANDBY_WEIGHT)
                    for name in allowed
                ),
            )
        )
    return tuple(routes)


def region_entry_fqdn(region: str, media_domain: str) -> str:
    return f"{region}.regions.{media_domain}"


def market_fqdn(code: str, media_domain: str) -> str:
    return f"{code.lower()}.markets.{media_domain}"


def nearest_fqdn(media_domain: str) -> str:
    return f"nearest.{media_domain}"


class GlobalRouting(pulumi.ComponentResource):
    """Health checks per region and the geolocation/weighted/latency record tree."""

    health_check_ids: dict[str, pulumi.Output[str]]
    media_fqdn: str

    def __init__(self, name: str, args: GlobalRoutingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        known = {r.name for r in args.regions}
        for route in args.markets:
            unknown = sorted({region for region, _ in route.weights} - known)
            if unknown or not route.weights:
                raise ValueError(f"market {route.code}: routes to undeclared regions {unknown} or to none")
        super().__init__("edgeplane:infra:GlobalRouting", name, None, opts)
        self.provider = aws.Provider(
            f"{name}-aws", region=ROUTE53_CONTROL_PLANE_REGION, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        domain = args.media_domain

        self.health_check_ids = {}
        for region in args.regions:
            check = aws.route53.HealthCheck(
                f"{name}-{region.name}",
                type="HTTPS",
                fqdn=region_entry_fqdn(region.name, domain),
                port=args.health_check_port,
                resource_path=HEALTH_CHECK_PATH,
                request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                failure_threshold=HEALTH_CHECK_FAILURE_THRESHOLD,
                enable_sni=True,
                tags={
                    "Name": f"edgeplane-{args.environment}-{region.name}",
                    tags.ENVIRONMENT: args.environment,
                    tags.REGION: region.name,
                    tags.CLOUD_REGION: region.cloud_region,
                    tags.JURISDICTION: region.jurisdiction,
                },
                opts=child,
            )
            self.health_check_ids[region.name] = check.id

            aws.route53.Record(
                f"{name}-nearest-{region.name}",
                zone_id=args.zone_id,
                name=nearest_fqdn(domain),
                type="CNAME",
                ttl=RECORD_TTL_SECONDS,
                records=[region_entry_fqdn(region.name, domain)],
                set_identifier=region.name,
                latency_routing_policies=[{"region": region.cloud_region}],
                health_check_id=check.id,
                opts=child,
            )

        for route in args.markets:
            for region_name, weight in route.weights:
                aws.route53.Record(
                    f"{name}-{route.code.lower()}-{region_name}",
                    zone_id=args.zone_id,
                    name=market_fqdn(route.code, domain),
                    type="CNAME",
                    ttl=RECORD_TTL_SECONDS,
                    records=[region_entry_fqdn(region_name, domain)],
                    set_identifier=region_name,
                    weighted_routing_policies=[{"weight": weight}],
                    health_check_id=self.health_check_ids[region_name],
                    # The controller shifts traffic by rewriting weights; `pulumi up` must not undo it.
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions(ignore_changes=["weightedRoutingPolicies"])
                    ),
                )
            aws.route53.Record(
                f"{name}-geo-{route.code.lower()}",
                zone_id=args.zone_id,
                name=domain,
                type="CNAME",
                set_identifier=f"geo-{route.code}",
                geolocation_routing_policies=[{"country": route.code}],
                # No target health evaluation: falling through to the default record would leave the
                # market's jurisdictions. The weighted set below handles failover within them.
                aliases=[
                    {"name": market_fqdn(route.code, domain), "zone_id": args.zone_id, "evaluate_target_health": False}
                ],
                opts=child,
            )
        aws.route53.Record(
            f"{name}-geo-default",
            zone_id=args.zone_id,
            name=domain,
            type="CNAME",
            set_identifier="geo-default",
            geolocation_routing_policies=[{"country": "*"}],
            aliases=[{"name": nearest_fqdn(domain), "zone_id": args.zone_id, "evaluate_target_health": True}],
            opts=child,
        )
        self.media_fqdn = domain
        self.register_outputs({"health_check_ids": self.health_check_ids, "media_fqdn": domain})
