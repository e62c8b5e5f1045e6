"""The drain order on Kubernetes: node labels the media load balancer packs new sessions by.

`KubernetesActuator` inherits `DrainOrderLabels` (`controller.ports.DrainOrderPublisher`); the control
loop hands it `Plan.drain_order` each tick. Per region, each serving node carries
- `edgeplane.io/stay-rank`: its place counted from the END of the order (0 = stays longest). Counted
  from the end so that nodes joining at the front (new nodes drain first) change no other node's
  label: a tick writes only the nodes whose label changed.
- `edgeplane.io/drain-next`: "true" on the nodes the forecast no longer needs (`leaving_soon`), which
  scale-in drains once its cooldown allows; "false" on the others.
The media load balancer's policy (docs/operations.md): fill nodes with the lowest stay-rank first,
each up to the target utilisation, and give a `drain-next` node a session only when no other node
has room. Writes are JSON merge patches of those two labels only (no resourceVersion: the labels are
edgeplane's alone); a node gone meanwhile (404) is skipped. What was last written is remembered per
region, so an unchanged order costs no API call; after a restart the first order is written in full.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from controller.adapters.kubernetes_api import MERGE_PATCH, NotFound
from controller.audit import AuditRecord

if TYPE_CHECKING:
    from controller.adapters.kubernetes_api import KubernetesSettings, RegionApiCalls

STAY_RANK_LABEL = "edgeplane.io/stay-rank"
DRAIN_NEXT_LABEL = "edgeplane.io/drain-next"


def drain_order_labels(nodes: list[str], leaving_soon: int) -> dict[str, dict[str, str]]:
    """The two labels of each node of a region's drain order (`nodes`, first to drain first)."""
    last = len(nodes) - 1
    return {
        name: {STAY_RANK_LABEL: str(last - i), DRAIN_NEXT_LABEL: "true" if i < leaving_soon else "false"}
        for i, name in enumerate(nodes)
    }


class DrainOrderLabels:
    """Publishes `Plan.drain_order` as node labels; mixed into KubernetesActuator (needs its `_api`, `_settings`)."""

    _api: RegionApiCalls
    _settings: KubernetesSettings

    def set_drain_order(
        self, region: str, nodes: list[str], leaving_soon: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord | None:
        """Label the nodes whose place changed since the last call; None when none did."""
        published: dict[str, dict[str, dict[str, str]]] = self.__dict__.setdefault("_drain_order_labels", {})
        before = published.get(region, {})
        wanted = drain_order_labels(nodes, leaving_soon)
        changed = {name: labels for name, labels in wanted.items() if before.get(name) != labels}
        if not changed:
            return None
        apis = self._api.region(region)
        timeout = self._settings.request_timeout_seconds
        written = []
        for name, labels in changed.items():
            body = {"metadata": {"labels": labels}}
            try:
                self._api.call(
                    f"label node {region}/{name}",
                    lambda n=name, b=body: apis.core.patch_node(  # type: ignore[misc]
                        n, b, _content_type=MERGE_PATCH, _request_timeout=timeout
                    ),
                    missing_ok=True,
                )
            except NotFound:
                continue  # drained and removed between the snapshot and now: nothing to label
            written.append(name)
        published[region] = wanted
        return AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action="set_drain_order",
            target=region,
            reason=reason,
            before={"labelled_nodes": len(before)},
            after={"labelled_nodes": len(wanted), "written": written[:50], "leaving_soon": nodes[:leaving_soon][:50]},
            changed=bool(written),
            at=datetime.now(UTC),
        )
