"""The drained-node reader the EKS scale-in asks (`controller/adapters/kubernetes_drained_nodes.py`):
only nodes edgeplane drained, still cordoned, with no media pod left (terminating ones included),
as EC2 instance ids from their AWS provider ids. A small fake of the two CoreV1Api reads it makes."""

from __future__ import annotations

from types import SimpleNamespace

from kubernetes import client as k8s

from controller.adapters.kubernetes_api import KubernetesSettings, RegionApiCalls, RegionApis
from controller.adapters.kubernetes_drained_nodes import KubernetesDrainedNodes, instance_id


class CoreReads:
    """`list_node` with a label selector and `list_namespaced_pod` by node, over plain data."""

    def __init__(self, nodes: list[k8s.V1Node], pods: dict[str, list[str]]) -> None:
        self.nodes, self.pods = nodes, pods
        self.selectors: list[str] = []

    def list_node(self, label_selector: str, _request_timeout: float) -> SimpleNamespace:
        self.selectors.append(label_selector)
        key, _, value = label_selector.partition("=")
        return SimpleNamespace(items=[n for n in self.nodes if (n.metadata.labels or {}).get(key) == value])

    def list_namespaced_pod(self, namespace, label_selector, field_selector, _request_timeout) -> SimpleNamespace:
        assert namespace == "edge-media" and label_selector == "app.kubernetes.io/name=edge-media"
        node = field_selector.removeprefix("spec.nodeName=")
        return SimpleNamespace(items=[k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=p)) for p in self.pods.get(node, [])])


def node(name: str, *, draining: bool, cordoned: bool, provider: str | None) -> k8s.V1Node:
    labels = {"edgeplane.io/draining": "true"} if draining else {}
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1NodeSpec(unschedulable=cordoned, provider_id=provider),
    )


def test_only_drained_cordoned_empty_ec2_nodes_are_reported():
    core = CoreReads(
        [
            node("a", draining=True, cordoned=True, provider="aws:///eu-central-1a/i-0aaa"),  # drained, empty
            node("b", draining=True, cordoned=True, provider="aws:///eu-central-1b/i-0bbb"),  # a pod still ends
            node("c", draining=True, cordoned=False, provider="aws:///eu-central-1a/i-0ccc"),  # undrained meanwhile
            node("d", draining=False, cordoned=True, provider="aws:///eu-central-1a/i-0ddd"),  # cordoned by others
            node("e", draining=True, cordoned=True, provider="kind://docker/kind/e"),  # not an EC2 instance
            node("f", draining=True, cordoned=True, provider="aws:///eu-central-1b/i-0fff"),  # drained, empty
        ],
        pods={"b": ["edge-media-7d9-x2"]},
    )
    settings = KubernetesSettings()

    class Calls(RegionApiCalls):
        def region(self, region: str) -> RegionApis:
            assert region == "fra"
            return RegionApis(context="edge-fra", core=core, apps=None)  # type: ignore[arg-type]

    reader = KubernetesDrainedNodes(Calls(settings, {"fra": "edge-fra"}), settings)
    assert reader.drained_instances("fra") == ["i-0aaa", "i-0fff"]
    assert core.selectors == ["edgeplane.io/draining=true"]


def test_instance_ids_come_from_aws_provider_ids_only():
    assert instance_id("aws:///eu-central-1a/i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert instance_id("aws:///eu-central-1a/i-0123/") == "i-0123"
    assert (
        instance_id("gce://project/zone/vm") is None and instance_id(None) is None and instance_id("aws:///x/y") is None
    )
