"""Policy documents of one regional cluster's own roles and KMS key (pure JSON builders).

Used by `infra.edge_media_cluster.EdgeMediaCluster`; the workloads' Pod Identity policies are in
`infra.workload_identities`.
"""

from __future__ import annotations

import json


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (EKS, EC2) assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def secrets_key_policy(key_arn: str) -> str:
    """Envelope encryption of Kubernetes secrets with this region's key, and nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                    "Resource": key_arn,
                }
            ],
        }
    )


def key_policy(account_id: str, cloud_region: str, log_group_name: str) -> str:
    """Key policy: the account's IAM policies decide (the default), and CloudWatch Logs may use the key for
    this cluster's control-plane log group only (CloudWatch needs it in the key policy, not in IAM)."""
    log_group_arn = f"arn:aws:logs:{cloud_region}:{account_id}:log-group:{log_group_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountIamPoliciesDecide",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "ControlPlaneLogsOfThisClusterOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{cloud_region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
                },
            ],
        }
    )
