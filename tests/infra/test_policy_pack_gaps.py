"""Resources the pack used to let through (0 violations), each of which must now be refused: inline
replication to another region, public bucket policies and grants, `aws-native:` buckets, and checks
that only warned in preview because an input was unknown."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import PolicyProviderResource
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from infra import residency_tags as tags
from infra.offline_graph import RecordedGraph, RecordedResource
from infra.policy import bucket_exposure_policies as exposure
from infra.policy import residency_policies as rules
from tests.infra.conftest import Violations, stack_args, validation_args

US_EAST_REPLICA = "arn:aws:s3:::edgeplane-replica-us-east-1"
PUBLIC_READ = '{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}'


def _first(graph: RecordedGraph, type_token: str, region: str) -> RecordedResource:
    return next(r for r in graph.of_type(type_token) if r.name.startswith(f"{region}-"))


def _run(rule: Any, args: Any) -> Violations:
    found = Violations()
    rule(args, found)
    return found


def _resource(type_token: str, name: str, inputs: dict[str, Any]) -> RecordedResource:
    return RecordedResource(type_token, name, f"urn:{name}", inputs, None, None, (), {}, True)


def test_inline_replication_of_a_recordings_bucket_to_us_east_1_is_refused(prod_graph: RecordedGraph) -> None:
    bucket = _first(prod_graph, "aws:s3/bucket:Bucket", "fra")
    props = {
        **bucket.inputs,
        "replicationConfiguration": {
            "role": "arn:aws:iam::123456789012:role/replication",
            "rules": [{"status": "Enabled", "destinations": [{"bucket": US_EAST_REPLICA, "storageClass": "STANDARD"}]}],
        },
    }
    found = _run(exposure.recordings_never_replicated, validation_args(prod_graph, bucket, props))
    assert len(found) == 1 and f"replicates recordings to {US_EAST_REPLICA}" in found[0]
    assert _run(exposure.recordings_never_replicated, validation_args(prod_graph, bucket)) == []


def test_replication_as_its_own_resource_is_refused(prod_graph: RecordedGraph) -> None:
    config = _resource(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "fra-replication",
        {"bucket": "fra-recordings", "role": "arn:role", "rules": [{"status": "Enabled", "destination": {"bucket": US_EAST_REPLICA}}]},
    )
    found = _run(exposure.recordings_never_replicated, validation_args(prod_graph, config, provider=None))
    assert len(found) == 1 and US_EAST_REPLICA in found[0]


@pytest.mark.parametrize(
    "type_token, change",
    [
        ("aws:s3/bucket:Bucket", {"policy": PUBLIC_READ}),  # inline policy on the bucket
        ("aws:s3/bucket:Bucket", {"grants": [{"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers", "permissions": ["READ"]}]}),
        ("aws:s3/bucketPolicy:BucketPolicy", {"policy": PUBLIC_READ.replace('"Principal":"*"', '"Principal":{"AWS":["*"]}')}),
    ],
)  # fmt: skip
def test_public_bucket_policies_and_grants_are_refused(
    prod_graph: RecordedGraph, type_token: str, change: dict[str, Any]
) -> None:
    resource = _first(prod_graph, type_token, "dub")
    assert _run(exposure.recordings_never_public, validation_args(prod_graph, resource)) == []
    found = _run(exposure.recordings_never_public, validation_args(prod_graph, resource, {**resource.inputs, **change}))
    assert len(found) == 1 and ("allows any principal" in found[0] or "AllUsers" in found[0]), found


def test_bucket_acl_resource_granting_the_public_is_refused(prod_graph: RecordedGraph) -> None:
    acl = _resource(
        "aws:s3/bucketAcl:BucketAcl",
        "dub-acl",
        {"bucket": "dub-recordings", "accessControlPolicy": {"grants": [{"grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}, "permission": "READ"}], "owner": {"id": "x"}}},
    )
    found = _run(exposure.recordings_never_public, validation_args(prod_graph, acl, provider=None))
    assert len(found) == 1 and "AuthenticatedUsers" in found[0]


# ----- aws-native buckets ------------------------------------------------------------------------

NATIVE_PROVIDER = PolicyProviderResource("pulumi:providers:aws-native", {"region": "us-east-1"}, "urn:n", "fra-native")


def _native_bucket(prod_graph: RecordedGraph) -> dict[str, Any]:
    """An aws-native bucket with the fra recordings bucket's tags, otherwise as loose as CloudFormation allows."""
    fra_tags = _first(prod_graph, "aws:s3/bucket:Bucket", "fra").inputs["tags"]
    return {"tags": [{"key": k, "value": v} for k, v in fra_tags.items()]}


def test_aws_native_bucket_outside_its_jurisdiction_unencrypted_and_unblocked_is_refused(
    prod_graph: RecordedGraph,
) -> None:
    bucket = _resource("aws-native:s3:Bucket", "fra-native-recordings", _native_bucket(prod_graph))
    args = validation_args(prod_graph, bucket, provider=NATIVE_PROVIDER)
    placement = _run(rules.regional_resources_placed_in_their_jurisdiction, args)
    assert any("created in us-east-1, outside jurisdiction 'eu'" in m for m in placement)
    content = _run(exposure.native_buckets_encrypted_and_blocked, args)
    assert any("no server-side encryption configuration" in m for m in content)
    assert any("public access block leaves" in m for m in content)
    # On the default aws-native provider it is refused before anything else.
    default = PolicyProviderResource("pulumi:providers:aws-native", {"region": "eu-central-1"}, "urn:d", "default_1_0_0")
    found = _run(rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, bucket, provider=default))
    assert len(found) == 1 and "uses a default AWS provider" in found[0]


def test_aws_native_bucket_replication_and_public_acl_are_refused(prod_graph: RecordedGraph) -> None:
    props = {
        **_native_bucket(prod_graph),
        "accessControl": "PublicRead",
        "replicationConfiguration": {"role": "arn:role", "rules": [{"status": "Enabled", "destination": {"bucket": US_EAST_REPLICA}}]},
    }
    bucket = _resource("aws-native:s3:Bucket", "fra-native-recordings", props)
    args = validation_args(prod_graph, bucket, provider=NATIVE_PROVIDER)
    assert any(US_EAST_REPLICA in m for m in _run(exposure.recordings_never_replicated, args))
    assert any("'PublicRead'" in m for m in _run(exposure.recordings_never_public, args))


def test_a_complete_aws_native_bucket_in_its_region_passes(prod_graph: RecordedGraph) -> None:
    props = {
        **_native_bucket(prod_graph),
        "bucketEncryption": {"serverSideEncryptionConfiguration": [{"serverSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:key"}}]},
        "publicAccessBlockConfiguration": dict.fromkeys(exposure.NATIVE_PUBLIC_ACCESS_FLAGS, True),
    }
    bucket = _resource("aws-native:s3:Bucket", "fra-native-recordings", props)
    frankfurt = PolicyProviderResource("pulumi:providers:aws-native", {"region": "eu-central-1"}, "urn:f", "fra-native")
    args = validation_args(prod_graph, bucket, provider=frankfurt)
    for rule in (rules.regional_resources_placed_in_their_jurisdiction, exposure.native_buckets_encrypted_and_blocked,
                 exposure.recordings_never_public, exposure.recordings_never_replicated):  # fmt: skip
        assert _run(rule, args) == [], rule.__name__


# ----- preview: unknown inputs must not turn a refusal into a warning --------------------------------


def _preview(props: dict[str, Any], *unknown_paths: tuple[Any, ...]) -> Any:
    """Props as the engine hands them in preview: the given paths unknown, read through pulumi-policy's proxy."""
    props = copy.deepcopy(props)
    for path in unknown_paths:
        target = props
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = UNKNOWN_STRING_VALUE
    return unknown_checking_proxy(props)


def test_sse_with_the_wrong_algorithm_is_refused_in_preview_even_with_unknown_inputs(prod_graph: RecordedGraph) -> None:
    sse = _first(prod_graph, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "par")
    aes = {**sse.inputs, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    found = _run(rules.bucket_encryption_uses_kms, validation_args(prod_graph, sse, _preview(aes, ("bucket",))))
    assert len(found) == 1 and "algorithm 'AES256'" in found[0]
    # The program's own configuration, key ARN and bucket unknown as in a first preview: passes, no exception.
    ours = _preview(dict(sse.inputs), ("bucket",), ("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId"))
    assert _run(rules.bucket_encryption_uses_kms, validation_args(prod_graph, sse, ours)) == []


def test_stack_policy_still_finds_a_bucket_without_encryption_when_names_are_unknown(prod_graph: RecordedGraph) -> None:
    sse = _first(prod_graph, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "gru")
    args = stack_args(prod_graph, drop={sse.urn})
    for resource in args.resources:  # every bucket-name input unknown, as before the buckets exist
        raw = dict(resource.props)
        if "bucket" in raw:
            raw["bucket"] = UNKNOWN_STRING_VALUE
        resource.props = unknown_checking_proxy(raw)
    found = _run(rules.every_bucket_encrypted_and_blocked, args)
    assert found == ["bucket 'gru-recordings' has no server-side encryption configuration"]


def test_public_access_block_with_an_unknown_flag_is_refused_in_preview(prod_graph: RecordedGraph) -> None:
    block = _first(prod_graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "par")
    props = _preview(dict(block.inputs), ("restrictPublicBuckets",), ("bucket",))
    found = _run(rules.bucket_public_access_fully_blocked, validation_args(prod_graph, block, props))
    assert found == ["public access block 'par-recordings' leaves ['restrictPublicBuckets'] off"]


def test_residency_tags_are_read_in_preview_without_raising(prod_graph: RecordedGraph) -> None:
    vpc = _first(prod_graph, "aws:ec2/vpc:Vpc", "iad")
    props = copy.deepcopy(dict(vpc.inputs))
    props["tags"][tags.JURISDICTION] = "eu"
    props["tags"][tags.JURISDICTION_CLOUD_REGIONS] = "us-east-1"
    found = _run(rules.regional_resources_placed_in_their_jurisdiction, validation_args(prod_graph, vpc, _preview(props, ("cidrBlock",))))
    assert found == ["aws:ec2/vpc:Vpc 'iad-vpc' is created in us-east-1 (US), outside jurisdiction 'eu'"]
