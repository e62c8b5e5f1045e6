"""The second residency wall: policy functions called directly, on the resource arguments the real
program produces (recorded under mocks) and on tampered copies of them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyProviderResource, ResourceValidationPolicy, StackValidationPolicy

from infra import residency_tags as tags
from infra.offline_graph import RecordedGraph, RecordedResource
from infra.policy import bucket_exposure_policies as exposure
from infra.policy import residency_policies as rules
from infra.policy.pack import POLICIES
from tests.infra.conftest import Violations, stack_args, validation_args

RESOURCE_RULES = [
    rules.regional_resources_placed_in_their_jurisdiction,
    rules.recordings_buckets_private_and_resident,
    rules.bucket_encryption_uses_kms,
    rules.bucket_public_access_fully_blocked,
    rules.security_groups_expose_only_media_ports,
    exposure.recordings_never_replicated,
    exposure.recordings_never_public,
    exposure.native_buckets_encrypted_and_blocked,
]


def _first(graph: RecordedGraph, type_token: str, region: str) -> RecordedResource:
    return next(r for r in graph.of_type(type_token) if r.name.startswith(f"{region}-"))


def _violations(rule: Any, args: Any) -> Violations:
    found = Violations()
    rule(args, found)
    return found


def test_the_real_prod_program_passes_every_policy(prod_graph: RecordedGraph) -> None:
    checked = 0
    for resource in prod_graph.resources:
        args = validation_args(prod_graph, resource)
        for rule in RESOURCE_RULES:
            assert _violations(rule, args) == [], resource.urn
        checked += 1
    assert checked == len(prod_graph.resources) > 600
    assert _violations(rules.every_bucket_encrypted_and_blocked, stack_args(prod_graph)) == []


def test_pack_wires_every_rule_as_mandatory() -> None:
    assert len({p.name for p in POLICIES}) == len(POLICIES) == len(RESOURCE_RULES) + 1
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in POLICIES)
    assert sum(isinstance(p, StackValidationPolicy) for p in POLICIES) == 1
    assert sum(isinstance(p, ResourceValidationPolicy) for p in POLICIES) == len(RESOURCE_RULES)


def test_pack_calls_its_functions(prod_graph: RecordedGraph) -> None:
    """Through the ResourceValidationPolicy objects, an EU bucket moved to us-east-1 is refused."""
    bucket = _first(prod_graph, "aws:s3/bucket:Bucket", "fra")
    moved = PolicyProviderResource("pulumi:providers:aws", {"region": "us-east-1"}, "urn:x", "fra-aws")
    found = Violations()
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            policy.validate(validation_args(prod_graph, bucket, provider=moved), found)
    assert any("outside jurisdiction 'eu'" in m for m in found)


# ----- regional placement --------------------------------------------------------------------


def test_bucket_whose_provider_is_outside_its_jurisdiction_is_refused(prod_graph: RecordedGraph) -> None:
    bucket = _first(prod_graph, "aws:s3/bucket:Bucket", "ruh")
    dubai = PolicyProviderResource("pulumi:providers:aws", {"region": "me-central-1"}, "urn:p", "ruh-aws")
    args = validation_args(prod_graph, bucket, provider=dubai)
    found = _violations(rules.recordings_buckets_private_and_resident, args)
    assert any("tagged edgeplane:cloud-region=me-west-1 but is created in me-central-1" in m for m in found)
    assert any("created in me-central-1, outside jurisdiction 'sa' (allowed: me-west-1)" in m for m in found)
    assert _violations(rules.regional_resources_placed_in_their_jurisdiction, args)


def test_per_resource_region_override_is_checked_too(prod_graph: RecordedGraph) -> None:
    """pulumi-aws 7 lets a resource set its own `region`; that, not the provider's, is where it lands."""
    cluster = _first(prod_graph, "aws:eks/cluster:Cluster", "cgk")
    props = {**cluster.inputs, "region": "ap-southeast-1"}
    found = _violations(
        rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, cluster, props)
    )
    assert any("outside jurisdiction 'id'" in m for m in found)


def test_tags_that_lie_about_the_jurisdiction_are_caught_by_geography(prod_graph: RecordedGraph) -> None:
    """Even consistent-looking tags cannot put an 'eu' resource in Virginia."""
    vpc = _first(prod_graph, "aws:ec2/vpc:Vpc", "iad")
    props = copy.deepcopy(dict(vpc.inputs))
    props["tags"][tags.JURISDICTION] = "eu"
    props["tags"][tags.JURISDICTION_CLOUD_REGIONS] = "us-east-1"
    found = _violations(rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, vpc, props))
    assert found == ["aws:ec2/vpc:Vpc 'iad-vpc' is created in us-east-1 (US), outside jurisdiction 'eu'"]


def test_default_provider_and_missing_tags_are_refused(prod_graph: RecordedGraph) -> None:
    subnet = _first(prod_graph, "aws:ec2/subnet:Subnet", "fra")
    default = PolicyProviderResource("pulumi:providers:aws", {"region": "eu-central-1"}, "urn:d", "default_7_0_0")
    found = _violations(
        rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, subnet, provider=default)
    )
    assert len(found) == 1 and "uses a default AWS provider" in found[0]
    props = {**subnet.inputs, "tags": {"Name": "x"}}
    found = _violations(
        rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, subnet, props)
    )
    assert len(found) == 1 and "lacks residency tags" in found[0]
    # IAM is global: tags optional there, but the default provider is still refused.
    role = _first(prod_graph, "aws:iam/role:Role", "fra")
    assert not _violations(
        rules.regional_resources_placed_in_their_jurisdiction,
        validation_args(prod_graph, role, {**role.inputs, "tags": {}}),
    )
    assert _violations(
        rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, role, provider=None)
    )


# ----- recordings buckets --------------------------------------------------------------------


def test_public_or_untagged_bucket_is_refused(prod_graph: RecordedGraph) -> None:
    bucket = _first(prod_graph, "aws:s3/bucket:Bucket", "dub")
    public = {**bucket.inputs, "acl": "public-read"}
    found = _violations(rules.recordings_buckets_private_and_resident, validation_args(prod_graph, bucket, public))
    assert found == ["recordings bucket 'dub-recordings' has the public ACL 'public-read'"]
    untagged = {**bucket.inputs, "tags": {k: v for k, v in bucket.inputs["tags"].items() if k != tags.PURPOSE}}
    found = _violations(rules.recordings_buckets_private_and_resident, validation_args(prod_graph, bucket, untagged))
    assert len(found) == 1 and "has no edgeplane:purpose tag" in found[0]


@pytest.mark.parametrize(
    "default, fragment",
    [
        ({"sseAlgorithm": "AES256"}, "algorithm 'AES256'"),
        ({"sseAlgorithm": "aws:kms"}, "without kmsMasterKeyId"),
    ],
)
def test_encryption_without_a_customer_kms_key_is_refused(
    prod_graph: RecordedGraph, default: dict[str, str], fragment: str
) -> None:
    sse = _first(
        prod_graph, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "par"
    )
    props = {**sse.inputs, "rules": [{"applyServerSideEncryptionByDefault": default}]}
    found = _violations(rules.bucket_encryption_uses_kms, validation_args(prod_graph, sse, props))
    assert len(found) == 1 and fragment in found[0]


def test_incomplete_public_access_block_is_refused(prod_graph: RecordedGraph) -> None:
    block = _first(prod_graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "par")
    props = {**block.inputs, "restrictPublicBuckets": False}
    found = _violations(rules.bucket_public_access_fully_blocked, validation_args(prod_graph, block, props))
    assert found == ["public access block 'par-recordings' leaves ['restrictPublicBuckets'] off"]


def test_stack_policy_finds_a_bucket_missing_its_encryption_or_block(prod_graph: RecordedGraph) -> None:
    sse = _first(
        prod_graph, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "gru"
    )
    block = _first(prod_graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "cpt")
    found = _violations(rules.every_bucket_encrypted_and_blocked, stack_args(prod_graph, drop={sse.urn, block.urn}))
    assert sorted(found) == [
        "bucket 'cpt-recordings' has no public access block",
        "bucket 'gru-recordings' has no server-side encryption configuration",
    ]


# ----- security groups -----------------------------------------------------------------------


def _ingress(graph: RecordedGraph) -> RecordedResource:
    """fra's RTP rule: udp 10000-20000 from 0.0.0.0/0."""
    rules_ = graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    return next(r for r in rules_ if r.name == "fra-media-rtp-udp")


@pytest.mark.parametrize(
    "change, violates",
    [
        ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22}, True),  # SSH to the world
        ({"ipProtocol": "-1", "fromPort": None, "toPort": None, "cidrIpv4": None, "cidrIpv6": "::/0"}, True),
        ({"ipProtocol": "udp", "fromPort": 9000, "toPort": 20000}, True),  # wider than the media range
        ({"ipProtocol": "udp", "fromPort": 3478, "toPort": 3478, "cidrIpv4": "52.94.0.0/16"}, True),
        ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "10.0.0.0/8"}, False),  # private source
        ({"ipProtocol": "17", "fromPort": 12000, "toPort": 12010}, False),  # udp by number, inside the range
        ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443}, False),
    ],
)
def test_only_media_ports_may_face_the_internet(
    prod_graph: RecordedGraph, change: dict[str, Any], violates: bool
) -> None:
    rule = _ingress(prod_graph)
    props = {**rule.inputs, **change}
    found = _violations(rules.security_groups_expose_only_media_ports, validation_args(prod_graph, rule, props))
    assert bool(found) is violates, found


def test_inline_and_legacy_rule_shapes_are_checked(prod_graph: RecordedGraph) -> None:
    group = _first(prod_graph, "aws:ec2/securityGroup:SecurityGroup", "fra")
    inline = {
        **group.inputs,
        "ingress": [
            {"protocol": "udp", "fromPort": 10000, "toPort": 20000, "cidrBlocks": ["0.0.0.0/0"]},
            {"protocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrBlocks": ["0.0.0.0/0"]},
        ],
    }
    found = _violations(rules.security_groups_expose_only_media_ports, validation_args(prod_graph, group, inline))
    assert len(found) == 1 and "opens tcp 3389-3389 to 0.0.0.0/0" in found[0]
    legacy = RecordedResource(
        type=rules.SECURITY_GROUP_RULE_TYPE,
        name="legacy",
        urn="urn:legacy",
        inputs={"type": "ingress", "protocol": "all", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]},
        provider_urn=None,
        parent_urn=None,
        ignore_changes=(),
        property_dependencies={},
        custom=True,
    )
    found = _violations(rules.security_groups_expose_only_media_ports, validation_args(prod_graph, legacy))
    assert len(found) == 1 and "opens all ports to ::/0" in found[0]


def test_port_policy_follows_its_configuration(prod_graph: RecordedGraph) -> None:
    rule = _ingress(prod_graph)  # udp 10000-20000 from the world
    narrow = {"mediaUdpPortMin": 10000, "mediaUdpPortMax": 10999, "turnTlsPort": 443}
    found = _violations(rules.security_groups_expose_only_media_ports, validation_args(prod_graph, rule, config=narrow))
    assert len(found) == 1 and "only udp 10000-10999" in found[0]
