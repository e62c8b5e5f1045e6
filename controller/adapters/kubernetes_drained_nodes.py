"""Which media nodes' drains are over, as EC2 instances: what the EKS actuator may terminate.

The `DrainedInstances` the EKS node-group actuator asks before a scale-in
(`controller/adapters/eks_node_group_actuator.py`): in a region's cluster, the nodes edgeplane
drained (label `edgeplane.io/draining=true`, cordoned) on which no media pod is left, not even a
terminating one (its calls may still be ending), mapped to their EC2 instance ids through
`spec.providerID` (`aws:///<zone>/<instance id>`, as the AWS cloud provider sets it on EKS nodes).
A node without an AWS provider id is skipped. Read-only: it lists nodes and pods
(`DRAINED_NODES_API_USAGE`, granted in deploy/kubernetes/rbac.yaml). Built by `edgectl/bootstrap.py`
when `--actuate aws` sizes node groups.
"""

from __future__ import annotations

import functools

from kubernetes import client as k8s

from controller.adapters.kubernetes_api import DRAINING_LABEL, ApiUse, KubernetesSettings, RegionApiCalls

DRAINED_NODES_API_USAGE = (
    ApiUse("", "nodes", "list", "cluster"),  # the nodes edgeplane drained
    ApiUse("", "pods", "list", "media-namespace"),  # is a media pod left on one?
)


def instance_id(provider_id: str | None) -> str | None:
    """The EC2 instance id of `aws:///eu-central-1a/i-0abc...`, or None for any other provider id."""
    if not provider_id or not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if last.startswith("i-") else None


class KubernetesDrainedNodes:
    """`DrainedInstances` over each region's cluster (module doc)."""

    def __init__(self, api: RegionApiCalls, settings: KubernetesSettings) -> None:
        self._api = api
        self._settings = settings

    def drained_instances(self, region: str) -> list[str]:
        apis = self._api.region(region)
        s = self._settings
        nodes = self._api.call(
            f"list drained nodes in context {apis.context}",
            lambda: apis.core.list_node(
                label_selector=f"{DRAINING_LABEL}=true", _request_timeout=s.request_timeout_seconds
            ),
        )
        found = []
        for node in nodes.items or []:
            name = str((node.metadata or k8s.V1ObjectMeta()).name)
            spec = node.spec or k8s.V1NodeSpec()
            instance = instance_id(spec.provider_id)
            if not spec.unschedulable or instance is None:
                continue  # uncordoned since (an undrain in flight), or not an EC2 instance
            pods = self._api.call(
                f"list media pods on node {name} in context {apis.context}",
                functools.partial(
                    apis.core.list_namespaced_pod,
                    s.media_namespace,
                    label_selector=s.media_pod_selector,
                    field_selector=f"spec.nodeName={name}",
                    _request_timeout=s.request_timeout_seconds,
                ),
            )
            if not pods.items:
                found.append(instance)
        return sorted(found)
