"""The tag contract between the Pulumi program and the policy pack.

Every regional resource the program declares carries these tags; the policy pack
(`infra/policy/residency_policies.py`) reads them back, together with the region of the resource's
provider, and refuses the deployment when they disagree. The tags make each resource
self-describing, so the pack needs neither the environment file nor network access, and an
auditor sees the same facts in the AWS console.

Values use only characters AWS accepts in tag values (letters, digits, space and `+-=._:/@`) and
stay under its 256-character limit (checked by `infra.residency.residency_preflight`).
"""

from __future__ import annotations

from typing import Final

ENVIRONMENT: Final = "edgeplane:environment"
REGION: Final = "edgeplane:region"
"""edgeplane name of the region (`fra`), the name metrics and plans use."""
CLOUD_REGION: Final = "edgeplane:cloud-region"
"""Cloud region id (`eu-central-1`); must equal the region of the resource's provider."""
JURISDICTION: Final = "edgeplane:jurisdiction"
"""Jurisdiction the region sits in; its recordings and cluster follow that jurisdiction's rules."""
JURISDICTION_CLOUD_REGIONS: Final = "edgeplane:jurisdiction-cloud-regions"
"""Space-separated cloud region ids where the jurisdiction allows media to be processed."""
PURPOSE: Final = "edgeplane:purpose"
"""What the resource is for; `recordings` marks the buckets the residency rules care most about."""

RESIDENCY_TAG_KEYS: Final = (ENVIRONMENT, REGION, CLOUD_REGION, JURISDICTION, JURISDICTION_CLOUD_REGIONS)

PURPOSE_RECORDINGS: Final = "recordings"
PURPOSE_MEDIA_NODES: Final = "media-nodes"
PURPOSE_SYSTEM_NODES: Final = "system-nodes"

AWS_TAG_VALUE_MAX_CHARS: Final = 256


def join_cloud_regions(cloud_regions: list[str] | tuple[str, ...]) -> str:
    """Tag value listing cloud regions (space-separated: commas are not allowed in AWS tags)."""
    return " ".join(cloud_regions)


def split_cloud_regions(tag_value: str) -> list[str]:
    return tag_value.split()
