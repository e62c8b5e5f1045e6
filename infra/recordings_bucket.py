"""The recordings bucket of one region: in-region, KMS-encrypted with the region's key, private, TLS-only,
and expiring each recording after its jurisdictions' retention.

Declared by `infra.edge_media_cluster.EdgeMediaCluster` under the region's provider;
`recordings_retention_days` is also used by `edgectl infra preflight`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi_aws as aws

from controller.spec import EnvironmentSpec
from infra import residency_tags as tags

if TYPE_CHECKING:
    from infra.edge_media_cluster import EdgeMediaCluster


def recordings_retention_days(spec: EnvironmentSpec, region_name: str) -> int:
    """Days a recording in this region's bucket is kept: the shortest retention among the jurisdictions that
    list the region, so no recording outlives a rule it may fall under (a bucket cannot tell whose it is)."""
    days = [
        j.recordings_retention_days
        for j in spec.jurisdictions
        if region_name in j.allowed_regions and j.recordings_retention_days is not None
    ]
    if not days:
        raise ValueError(f"region {region_name!r}: no jurisdiction listing it sets recordings_retention_days")
    return min(days)


def declare_recordings_bucket(scope: EdgeMediaCluster, key: aws.kms.Key, retention_days: int) -> aws.s3.Bucket:
    """Bucket plus encryption, public access block, ownership, TLS-only policy and lifecycle."""
    name = scope.component_name
    bucket = aws.s3.Bucket(
        f"{name}-recordings",
        force_destroy=False,
        tags={**scope.tags_for("recordings"), tags.PURPOSE: tags.PURPOSE_RECORDINGS},
        opts=scope.child(),
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-recordings",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn},
                "bucket_key_enabled": True,
            }
        ],
        opts=scope.child(),
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-recordings",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=scope.child(),
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-recordings",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off: access only through IAM
        opts=scope.child(),
    )
    aws.s3.BucketPolicy(
        f"{name}-recordings",
        bucket=bucket.id,
        policy=bucket.arn.apply(_tls_only_bucket_policy),
        opts=scope.child(depends_on=[public_access_block]),
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-recordings",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-recordings-after-retention",
                "status": "Enabled",
                "filter": {},  # every object: the bucket holds recordings only
                "expiration": {"days": retention_days},
                # Half-uploaded recordings are still personal data; do not keep their parts either.
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }
        ],
        opts=scope.child(),
    )
    return bucket


def _tls_only_bucket_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
