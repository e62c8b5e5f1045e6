"""The stack's configuration (`Pulumi.<stack>.yaml`), read once and typed.

Keys are described in `Pulumi.yaml`. Read by `infra.program.run` only; everything below it gets a
`StackSettings` value, never a `pulumi.Config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi


class StackSettingsError(Exception):
    """The stack configuration is missing a key or combines keys in a way that cannot work."""


@dataclass(frozen=True)
class StackSettings:
    """What one stack deploys, beyond the environment file itself."""

    environment_file: Path
    """Absolute path of the environment file (`edgeplane:environment`, relative to the project root)."""
    dns_zone_id: str | None = None
    """Route 53 hosted zone for media DNS (`edgeplane:dnsZoneId`); None: no global routing declared."""
    media_domain: str | None = None
    """Name clients resolve (`edgeplane:mediaDomain`), inside that zone."""
    cluster_api_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach the public EKS API (`edgeplane:clusterApiCidrs`); empty: private API only."""

    @property
    def routing_enabled(self) -> bool:
        return self.dns_zone_id is not None


def read_stack_settings(config: pulumi.Config, project_root: Path) -> StackSettings:
    """Read the `edgeplane:*` keys; raise StackSettingsError naming the key and what to do."""
    environment = config.get("environment")
    if not environment:
        raise StackSettingsError(
            "edgeplane:environment is not set: it names the environment file this stack deploys, e.g. "
            "`pulumi config set edgeplane:environment environments/prod.yaml`"
        )
    path = Path(environment)
    if not path.is_absolute():
        path = project_root / path
    zone_id = config.get("dnsZoneId") or None
    media_domain = (config.get("mediaDomain") or "").strip(".").lower() or None
    if (zone_id is None) != (media_domain is None):
        raise StackSettingsError(
            "edgeplane:dnsZoneId and edgeplane:mediaDomain go together: set both to declare global routing "
            "(health checks and failover records in that zone), or neither to leave DNS alone"
        )
    cidrs = config.get_object("clusterApiCidrs") or []
    if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
        raise StackSettingsError('edgeplane:clusterApiCidrs must be a list of CIDR strings, e.g. ["203.0.113.0/24"]')
    return StackSettings(
        environment_file=path,
        dns_zone_id=zone_id,
        media_domain=media_domain,
        cluster_api_cidrs=tuple(cidrs),
    )
