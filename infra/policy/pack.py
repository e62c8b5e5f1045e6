"""The policies of the edgeplane pack, wired from the functions in `residency_policies`.

Every policy is MANDATORY: a violation blocks `pulumi preview` / `pulumi up`. `__main__.py` serves
`POLICIES` as the pack; tests check the wiring here.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from controller.spec import NetworkPolicy
from infra.policy import bucket_exposure_policies as exposure
from infra.policy import residency_policies as rules

PACK_NAME = "edgeplane-residency"

_NETWORK = NetworkPolicy()

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="regional-resources-in-their-jurisdiction",
        description="AWS resources use an explicit provider; regional ones carry edgeplane residency tags that "
        "match their provider's region, inside their jurisdiction.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.regional_resources_placed_in_their_jurisdiction,
    ),
    ResourceValidationPolicy(
        name="recordings-buckets-private-and-resident",
        description="Recordings buckets are tagged as such, never public, and in a region of their jurisdiction.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.recordings_buckets_private_and_resident,
    ),
    ResourceValidationPolicy(
        name="bucket-encryption-uses-kms",
        description="Bucket server-side encryption uses a customer KMS key.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.bucket_encryption_uses_kms,
    ),
    ResourceValidationPolicy(
        name="bucket-public-access-fully-blocked",
        description="Bucket public access blocks set all four flags.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.bucket_public_access_fully_blocked,
    ),
    ResourceValidationPolicy(
        name="recordings-never-replicated",
        description="No bucket replication, inline or as its own resource: a replica's region cannot be proven.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=exposure.recordings_never_replicated,
    ),
    ResourceValidationPolicy(
        name="recordings-never-public",
        description="No bucket policy statement allows any principal; no ACL or grant names the public groups.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=exposure.recordings_never_public,
    ),
    ResourceValidationPolicy(
        name="native-buckets-encrypted-and-blocked",
        description="aws-native buckets carry a customer-KMS encryption and a complete public access block inline.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=exposure.native_buckets_encrypted_and_blocked,
    ),
    StackValidationPolicy(
        name="every-bucket-encrypted-and-blocked",
        description="Every bucket has a KMS encryption configuration and a complete public access block.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.every_bucket_encrypted_and_blocked,
    ),
    ResourceValidationPolicy(
        name="security-groups-expose-only-media-ports",
        description="Only the media UDP range and the TURN/TLS port are reachable from public addresses.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rules.security_groups_expose_only_media_ports,
        # Defaults are the EnvironmentSpec's; override with --policy-pack-config if an environment changes them.
        config_schema=PolicyConfigSchema(
            properties={
                "mediaUdpPortMin": {"type": "integer", "default": _NETWORK.media_udp_port_min},
                "mediaUdpPortMax": {"type": "integer", "default": _NETWORK.media_udp_port_max},
                "turnTlsPort": {"type": "integer", "default": _NETWORK.turn_tls_port},
            }
        ),
    ),
]
