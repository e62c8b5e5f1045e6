"""Policy functions that keep recordings from leaving their bucket: replication, public policies and grants,
and the same rules for `aws-native:` buckets. Plain `(args, report_violation)` callables.

The second half of the pack's bucket rules (encryption and public access blocks are in
`infra.policy.residency_policies`). Every bucket this stack declares holds recordings, so every
bucket is checked. Wired in `infra/policy/pack.py`.

Preview: inputs computed from other resources are unknown during `pulumi preview`, and reading one
through pulumi-policy's proxy raises, which the engine reports as a warning that the policy could
not run: nothing would be blocked. These functions read through `known()`, so a policy always runs
to the end: an unknown value is treated as what it can only be (a key ARN computed from a key is a
customer key) or, where it could be anything, left to the check the engine runs again before each
resource is created during `pulumi up`, when every input is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError

from infra import residency_tags as tags


class _Unknown:
    """A value that is not known yet (preview)."""

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Any = _Unknown()

BUCKET_TYPE = "aws:s3/bucket:Bucket"
BUCKET_TYPES = frozenset({BUCKET_TYPE, "aws:s3/bucketV2:BucketV2"})
REPLICATION_TYPES = frozenset({"aws:s3/bucketReplicationConfig:BucketReplicationConfig", "aws-native:s3:Bucket"})
BUCKET_POLICY_TYPES = frozenset({"aws:s3/bucketPolicy:BucketPolicy", "aws-native:s3:BucketPolicy"})
BUCKET_ACL_TYPES = frozenset({"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"})
NATIVE_BUCKET_TYPE = "aws-native:s3:Bucket"

PUBLIC_GRANTEE_URIS = frozenset(
    {"http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}
)
PUBLIC_CANNED_ACLS = frozenset(
    {"public-read", "public-read-write", "authenticated-read", "PublicRead", "PublicReadWrite", "AuthenticatedRead"}
)
NATIVE_PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})


def known(container: Any, key: Any, default: Any = None) -> Any:
    """`container[key]` (or `default` when absent), `UNKNOWN` when the engine does not know it yet."""
    try:
        if isinstance(container, Mapping):
            return container.get(key, default)
        return container[key]
    except UnknownValueError:
        return UNKNOWN
    except (IndexError, KeyError, TypeError):
        return default


def _items(container: Any, key: str) -> list[Any]:
    value = known(container, key)
    if value is UNKNOWN or value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return [known(value, i) for i in range(len(value))]


# ----- replication -----------------------------------------------------------------------------


def recordings_never_replicated(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No replication of a recordings bucket, inline or as its own resource.

    A destination is a bucket ARN, which carries no region: the pack cannot prove a replica stays in
    the jurisdiction, so it refuses every replication (fail closed). Recordings have one copy, in
    their region, under its key; S3's own durability covers loss."""
    if args.resource_type in BUCKET_TYPES or args.resource_type == NATIVE_BUCKET_TYPE:
        configuration = known(args.props, "replicationConfiguration")
    elif args.resource_type in REPLICATION_TYPES:
        configuration = args.props
    else:
        return
    if configuration is None or configuration == {}:
        return
    destinations = sorted(set(_replication_destinations(configuration))) or ["<unknown during preview>"]
    report_violation(
        f"{args.resource_type} {args.name!r} replicates recordings to {', '.join(destinations)}: a replica's region "
        "cannot be proven from a bucket ARN, and recordings never leave their region's bucket",
        None,
    )


def _replication_destinations(configuration: Any) -> Iterator[str]:
    for rule in _items(configuration, "rules"):
        for destination in [*_items(rule, "destination"), *_items(rule, "destinations")]:
            bucket = known(destination, "bucket")
            yield "<unknown during preview>" if bucket is UNKNOWN or bucket is None else str(bucket)


# ----- public policies and grants --------------------------------------------------------------


def recordings_never_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No bucket policy statement allows everyone, and no ACL or grant names the public groups."""
    what = f"{args.resource_type} {args.name!r}"
    if args.resource_type in BUCKET_TYPES or args.resource_type in BUCKET_POLICY_TYPES:
        document = known(args.props, "policy") if args.resource_type != "aws-native:s3:BucketPolicy" else None
        if document is None:
            document = known(args.props, "policyDocument")
        for sid in _public_allow_statements(document):
            report_violation(f"{what}: bucket policy statement {sid} allows any principal", None)
    if args.resource_type in BUCKET_TYPES or args.resource_type in BUCKET_ACL_TYPES:
        acl = known(args.props, "acl")
        if isinstance(acl, str) and acl in PUBLIC_CANNED_ACLS:
            report_violation(f"{what}: canned ACL {acl!r} makes recordings public", None)
        grants = _items(args.props, "grants")
        for policy in _items(args.props, "accessControlPolicy"):
            grants += _items(policy, "grants")
        for grant in grants:
            grantee = known(grant, "grantee")
            uri = known(grantee, "uri") if isinstance(grantee, Mapping) else known(grant, "uri")
            if uri in PUBLIC_GRANTEE_URIS:
                report_violation(f"{what}: ACL grant to {uri} makes recordings public", None)
    if args.resource_type == NATIVE_BUCKET_TYPE:
        acl = known(args.props, "accessControl")
        if isinstance(acl, str) and acl in PUBLIC_CANNED_ACLS:
            report_violation(f"{what}: canned ACL {acl!r} makes recordings public", None)


def _public_allow_statements(document: Any) -> Iterator[str]:
    """Sids (or indexes) of Allow statements whose principal is everyone. Unknown documents yield nothing:
    `pulumi up` checks them again once known."""
    if document is UNKNOWN or document is None:
        return
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            yield "<unparseable policy>"
            return
    statements = known(document, "Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    for index, statement in enumerate(statements or []):
        if known(statement, "Effect") != "Allow":
            continue
        principal = known(statement, "Principal")
        if principal == "*" or _names_everyone(known(principal, "AWS") if isinstance(principal, Mapping) else None):
            yield repr(known(statement, "Sid") or index)


def _names_everyone(value: Any) -> bool:
    return value == "*" or (isinstance(value, list | tuple) and "*" in value)


# ----- aws-native buckets ----------------------------------------------------------------------


def native_buckets_encrypted_and_blocked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """An `aws-native:s3:Bucket` carries its encryption and public access block inline: both must be complete,
    and it must say it holds recordings (its placement is checked by the residency policy)."""
    if args.resource_type != NATIVE_BUCKET_TYPE:
        return
    what = f"{args.resource_type} {args.name!r}"
    if native_tags(args.props).get(tags.PURPOSE) != tags.PURPOSE_RECORDINGS:
        report_violation(f"{what} has no {tags.PURPOSE}={tags.PURPOSE_RECORDINGS} tag", None)
    rules = _items(known(args.props, "bucketEncryption"), "serverSideEncryptionConfiguration")
    if not rules:
        report_violation(f"{what} has no server-side encryption configuration", None)
    for rule in rules:
        default = known(rule, "serverSideEncryptionByDefault") or {}
        algorithm = known(default, "sseAlgorithm")
        if algorithm is not UNKNOWN and algorithm not in KMS_ALGORITHMS:
            report_violation(f"{what}: encryption algorithm {algorithm!r}, expected a customer KMS key", None)
        elif known(default, "kmsMasterKeyId") is None:
            report_violation(f"{what}: aws:kms without kmsMasterKeyId uses the AWS-managed key", None)
    block = known(args.props, "publicAccessBlockConfiguration") or {}
    off = [flag for flag in NATIVE_PUBLIC_ACCESS_FLAGS if known(block, flag) is not True]
    if off:
        report_violation(f"{what}: public access block leaves {off} off", None)


def native_tags(props: Any) -> dict[str, str]:
    """aws-native tags (a list of {key, value}) as a mapping; AWS-classic tags pass through."""
    raw = known(props, "tags")
    if isinstance(raw, Mapping):
        return {str(k): known(raw, k) for k in raw}
    result: dict[str, str] = {}
    for index in range(len(raw or [])):
        entry = known(raw, index)
        if isinstance(entry, Mapping) and isinstance(known(entry, "key"), str):
            result[known(entry, "key")] = known(entry, "value")
    return result
