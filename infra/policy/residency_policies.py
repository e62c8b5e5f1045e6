"""Policy functions of the edgeplane pack: plain `(args, report_violation)` callables.

The second residency wall (the first is `infra.residency.residency_preflight`). The pack runs in its
own process during `pulumi preview` / `pulumi up` and sees each resource's inputs and its
provider, not the environment file. It trusts only two things: the provider's region (where AWS
will really put the resource) and `controller.spec.residency_geography` (where that region is). It reads the
residency tags (`infra.residency_tags`) that the program writes on every regional resource and
refuses the deployment when tags, provider region and geography disagree. Security-group ports are
checked against the pack's configuration (defaults: the EnvironmentSpec's `NetworkPolicy`).

Wired into `ResourceValidationPolicy` / `StackValidationPolicy` objects in `infra/policy/pack.py`;
tests call these functions directly on resource arguments recorded from the real program.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

from controller.spec import NetworkPolicy, residency_geography
from infra import residency_tags as tags
from infra.policy.bucket_exposure_policies import UNKNOWN, known, native_tags

AWS_PACKAGES = ("aws:", "aws-native:")
"""Both AWS providers: classic (Terraform-based) and aws-native (Cloud Control) resources are checked alike."""

GLOBAL_SERVICE_MODULES = frozenset({"iam", "route53", "cloudfront", "organizations", "globalaccelerator"})
"""AWS services without a region: no region tags to match, but still never on the default provider."""

UNTAGGABLE_TYPES = frozenset(
    {
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/route:Route",
        "aws:kms/alias:Alias",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
)
"""Regional types AWS cannot tag; any other regional type must carry the residency tags (fail closed)."""

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
SSE_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_BLOCK_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})

SECURITY_GROUP_TYPE = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE_TYPE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE_TYPE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

_PROTOCOL_NAMES = {"-1": "all", "all": "all", "6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp"}


# ----- regional placement ----------------------------------------------------------------------


def regional_resources_placed_in_their_jurisdiction(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Every AWS resource uses an explicit provider; regional ones carry residency tags that match
    their provider's region, and that region lies inside their jurisdiction."""
    if not args.resource_type.startswith(AWS_PACKAGES):
        return
    if _is_default_provider(args.provider):
        report_violation(
            f"{args.resource_type} {args.name!r} uses a default AWS provider; declare it under its "
            "region's explicit provider so its region is decided by the environment file",
            None,
        )
        return
    if _module_of(args.resource_type) in GLOBAL_SERVICE_MODULES or args.resource_type in UNTAGGABLE_TYPES:
        return
    for message in _placement_problems(args.resource_type, args.name, args.props, args.provider):
        report_violation(message, None)


def _placement_problems(
    resource_type: str, name: str, props: Mapping[str, Any], provider: PolicyProviderResource | None
) -> Iterator[str]:
    what = f"{resource_type} {name!r}"
    resource_tags = native_tags(props)  # classic tags are a mapping, aws-native ones a list of {key, value}
    missing = [key for key in tags.RESIDENCY_TAG_KEYS if not resource_tags.get(key)]
    if missing:
        yield f"{what} lacks residency tags {missing}"
        return
    region = effective_region(props, provider)
    if region is None:
        yield f"{what}: its region cannot be determined (neither the resource nor its provider sets one)"
        return
    if resource_tags[tags.CLOUD_REGION] != region:
        yield f"{what} is tagged {tags.CLOUD_REGION}={resource_tags[tags.CLOUD_REGION]} but is created in {region}"
    jurisdiction = resource_tags[tags.JURISDICTION]
    allowed = tags.split_cloud_regions(resource_tags[tags.JURISDICTION_CLOUD_REGIONS])
    if region not in allowed:
        yield f"{what} is created in {region}, outside jurisdiction {jurisdiction!r} (allowed: {', '.join(allowed)})"
    country = residency_geography.country_of(region)
    if country is None:
        yield f"{what} is created in {region}, a region whose country infra/residency_geography.py does not know"
        return
    lawful = residency_geography.jurisdiction_allows_country(jurisdiction, country)
    if lawful is None:
        yield f"{what}: jurisdiction {jurisdiction!r} has no geography in infra/residency_geography.py"
    elif not lawful:
        yield f"{what} is created in {region} ({country}), outside jurisdiction {jurisdiction!r}"


def effective_region(props: Mapping[str, Any], provider: PolicyProviderResource | None) -> str | None:
    """Region AWS will use: the resource's own `region` (pulumi-aws 7) or else its provider's."""
    region = known(props, "region")
    if isinstance(region, str) and region:
        return region
    if provider is not None:
        provider_region = known(provider.props, "region")
        if isinstance(provider_region, str) and provider_region:
            return provider_region
    return None


def _is_default_provider(provider: PolicyProviderResource | None) -> bool:
    # The engine names default providers `default` or `default_<version>` (both aws and aws-native).
    return provider is None or provider.name.startswith("default")


def _module_of(resource_type: str) -> str:
    # "aws:ec2/vpc:Vpc" -> "ec2"
    return resource_type.split(":", 2)[1].split("/", 1)[0]


# ----- recordings buckets --------------------------------------------------------------------


def recordings_buckets_private_and_resident(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A bucket is a recordings bucket by tag; it is never public and lives inside its jurisdiction."""
    if args.resource_type not in BUCKET_TYPES:
        return
    resource_tags = native_tags(args.props)
    if resource_tags.get(tags.PURPOSE) != tags.PURPOSE_RECORDINGS:
        report_violation(
            f"bucket {args.name!r} has no {tags.PURPOSE} tag: every bucket of this stack holds media "
            f"recordings and must say so ({tags.PURPOSE}={tags.PURPOSE_RECORDINGS})",
            None,
        )
    acl = known(args.props, "acl")
    if acl in PUBLIC_ACLS:
        report_violation(f"recordings bucket {args.name!r} has the public ACL {acl!r}", None)
    for message in _placement_problems(args.resource_type, args.name, args.props, args.provider):
        report_violation(f"recordings residency: {message}", None)


def bucket_encryption_uses_kms(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Server-side encryption of recordings uses a customer KMS key (not SSE-S3)."""
    if args.resource_type not in SSE_TYPES:
        return
    for problem in _sse_problems(args.props):
        report_violation(f"bucket encryption {args.name!r}: {problem}", None)


def _sse_problems(props: Mapping[str, Any]) -> Iterator[str]:
    # Preview: the key ARN comes from the region's key resource, so it is unknown but certainly a customer
    # key; the algorithm is a literal and known. Reading through `known` keeps the check blocking in preview.
    rules = known(props, "rules")
    if rules is UNKNOWN:
        return
    rules = [known(rules, i) for i in range(len(rules or []))]
    if not rules:
        yield "no encryption rule"
    for rule in rules:
        default = known(rule or {}, "applyServerSideEncryptionByDefault") or {}
        algorithm = known(default, "sseAlgorithm")
        if algorithm is UNKNOWN:
            continue
        if algorithm not in KMS_ALGORITHMS:
            yield f"algorithm {algorithm!r}, expected one of {sorted(KMS_ALGORITHMS)}"
        elif not known(default, "kmsMasterKeyId"):
            yield "aws:kms without kmsMasterKeyId would use the AWS-managed key, not the region's own key"


def bucket_public_access_fully_blocked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A bucket's public access block sets all four flags."""
    if args.resource_type != PUBLIC_ACCESS_BLOCK_TYPE:
        return
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if known(args.props, flag) is not True]
    if off:
        report_violation(f"public access block {args.name!r} leaves {off} off", None)


def every_bucket_encrypted_and_blocked(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each bucket has a KMS encryption configuration and a complete public access block attached."""
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    for bucket in buckets:
        attached = [r for r in args.resources if _targets_bucket(r, bucket)]
        encryption = [r for r in attached if r.resource_type in SSE_TYPES]
        blocks = [r for r in attached if r.resource_type == PUBLIC_ACCESS_BLOCK_TYPE]
        if not encryption:
            report_violation(f"bucket {bucket.name!r} has no server-side encryption configuration", bucket.urn)
        elif any(list(_sse_problems(r.props)) for r in encryption):
            report_violation(f"bucket {bucket.name!r} is not encrypted with a KMS key", bucket.urn)
        if not blocks:
            report_violation(f"bucket {bucket.name!r} has no public access block", bucket.urn)
        elif not any(all(known(b.props, flag) is True for flag in PUBLIC_ACCESS_FLAGS) for b in blocks):
            report_violation(f"bucket {bucket.name!r}: its public access block is incomplete", bucket.urn)


def _targets_bucket(resource: PolicyResource, bucket: PolicyResource) -> bool:
    if any(dep.urn == bucket.urn for dep in resource.property_dependencies.get("bucket", [])):
        return True
    # In preview bucket names are unknown; the property dependency above is what links them then.
    target = known(resource.props, "bucket")
    if target is None or target is UNKNOWN:
        return False
    return target in (known(bucket.props, "bucket"), known(bucket.props, "id"))


# ----- security groups -----------------------------------------------------------------------


def security_groups_expose_only_media_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Inbound traffic from public addresses reaches only the media UDP range and the TURN/TLS port."""
    config = args.get_config()
    defaults = NetworkPolicy()
    udp_min = int(config.get("mediaUdpPortMin", defaults.media_udp_port_min))
    udp_max = int(config.get("mediaUdpPortMax", defaults.media_udp_port_max))
    turn_port = int(config.get("turnTlsPort", defaults.turn_tls_port))
    for rule in _ingress_rules(args.resource_type, args.props):
        public = [cidr for cidr in rule["cidrs"] if _is_public(cidr)]
        if not public:
            continue
        protocol = _PROTOCOL_NAMES.get(str(rule["protocol"]).lower(), str(rule["protocol"]))
        low, high = _port(rule.get("from")), _port(rule.get("to"))
        media = protocol == "udp" and low is not None and high is not None and udp_min <= low <= high <= udp_max
        turn = protocol == "tcp" and low == high == turn_port
        if not (media or turn):
            ports = "all ports" if protocol == "all" else f"{protocol} {low}-{high}"
            report_violation(
                f"{args.resource_type} {args.name!r} opens {ports} to {', '.join(public)}; only udp "
                f"{udp_min}-{udp_max} (RTP/SRTP) and tcp {turn_port} (TURN/TLS) may be reachable from the internet",
                None,
            )


def _ingress_rules(resource_type: str, props: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    if resource_type == SECURITY_GROUP_TYPE:
        for rule in props.get("ingress") or []:
            yield {
                "protocol": rule.get("protocol"),
                "from": rule.get("fromPort"),
                "to": rule.get("toPort"),
                "cidrs": [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])],
            }
    elif resource_type == SECURITY_GROUP_RULE_TYPE and props.get("type") == "ingress":
        yield {
            "protocol": props.get("protocol"),
            "from": props.get("fromPort"),
            "to": props.get("toPort"),
            "cidrs": [*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])],
        }
    elif resource_type == INGRESS_RULE_TYPE:
        yield {
            "protocol": props.get("ipProtocol"),
            "from": props.get("fromPort"),
            "to": props.get("toPort"),
            "cidrs": [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c],
        }


def _is_public(cidr: str) -> bool:
    """Reachable from the internet: anything not entirely inside private address space (fail closed)."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return True
    return not network.is_private


def _port(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
