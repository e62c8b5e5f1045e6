"""What the EnvironmentSpec says about the cloud deployment itself: EKS version, node pools, the address plan's
inputs, log retention, where the controller runs.

Part of `controller.spec` (import from there). Read by the Pulumi program (`infra/`) and by
`edgectl infra preflight`; the decision core never looks at it. The VPC range of each region is a
field of `RegionSpec` (`vpc_cidr`), the recordings retention one of `JurisdictionSpec`; the rules
across them (non-overlapping ranges, subnets big enough for max_nodes) live in
`controller.spec.address_plan` and run with the spec's cross-field validation.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, field_validator

from controller.spec.fleet import FrozenModel, Name

CLOUDWATCH_RETENTION_DAYS: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
"""The only retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`)."""

INSTANCE_TYPE_PATTERN: Final = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"


class InfraSpec(FrozenModel):
    """Deployment settings shared by every regional cluster of the environment."""

    kubernetes_version: str = Field(
        pattern=r"^1\.(2[89]|3[0-9])$",
        description="EKS version of every regional cluster, e.g. '1.33': pinned here so clusters never drift apart.",
    )
    controller_region: Name = Field(
        description="Region whose cluster runs the controller (its Pod Identity association lives there); the "
        "controller reaches every other cluster's API through an EKS access entry for its role."
    )
    pods_per_media_node: int = Field(
        strict=True,
        ge=8,
        le=110,
        description="Pods one media node admits (kubelet maxPods): the SFU plus daemonsets. Sizes each node's "
        "address use under VPC CNI prefix delegation (one /28 per 16 pods, plus one warm /28).",
    )
    system_node_instance_type: str = Field(
        pattern=INSTANCE_TYPE_PATTERN,
        description="Instance type of the untainted system node group (CoreDNS, external-dns, autoscaler).",
    )
    system_nodes_min: int = Field(strict=True, ge=1, le=20, description="Smallest system node group.")
    system_nodes_max: int = Field(strict=True, ge=1, le=50, description="Largest system node group.")
    pods_per_system_node: int = Field(
        strict=True, ge=8, le=250, description="Pods one system node admits (kubelet maxPods)."
    )
    log_retention_days: int = Field(
        strict=True,
        ge=1,
        le=3653,
        description="Days CloudWatch keeps each cluster's control-plane logs (a value CloudWatch accepts).",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_accepts(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(f"CloudWatch accepts only {sorted(CLOUDWATCH_RETENTION_DAYS)} days, not {value}")
        return value
