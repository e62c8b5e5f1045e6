"""What happens in a real cluster between two API calls, for the Kubernetes API stand-in:
`settle()` lets the kubelet finish terminating pods, then runs the StatefulSet and ReplicaSet
(Deployment) controllers once, the way the real ones reconcile:

- **StatefulSet**: every ordinal below `spec.replicas` must exist. A pod evicted or deleted with
  its ordinal below replicas is RECREATED under the same name on a schedulable node (the real
  controller's behaviour, which makes evicting a StatefulSet pod a move, not a removal); ordinals
  at or above replicas are deleted, highest first.
- **ReplicaSet** (a Deployment's): the number of live pods is brought to `spec.replicas`. Missing
  pods are created on schedulable nodes; surplus pods are deleted in the order the real controller
  ranks them (`pkg/controller/replicaset`, `ActivePodsWithRanks`): unscheduled first, then lower
  `controller.kubernetes.io/pod-deletion-cost`, then newer first. An evicted pod is replaced,
  since replicas did not change.

A workload owns the pods in its namespace whose label `app.kubernetes.io/name` is its name and
whose name starts with `<workload>-`. New pods carry no session count (the media server has not
reported yet). Mixed into `KubeApiStandIn`; `PATCH pods/{name}` (annotations) is served here too.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from tests.fakes.kube_api_support import ApiError

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


class WorkloadControllers:
    _lock: Any
    _pods: dict[tuple[str, str], dict[str, Any]]
    _nodes: dict[str, dict[str, Any]]
    _workloads: dict[tuple[str, str, str], dict[str, Any]]

    def settle(self) -> list[str]:
        """Finish terminations and reconcile every workload once; returns what happened, in order."""
        with self._lock:
            events = []
            for key, pod in sorted(self._pods.items()):
                if "deletionTimestamp" in pod["metadata"]:
                    del self._pods[key]
                    events.append(f"terminated {key[1]}")
            for (kind, ns, name), workload in sorted(self._workloads.items()):
                replicas = int(workload["spec"]["replicas"])
                owned = {
                    pod_name: pod
                    for (pod_ns, pod_name), pod in self._pods.items()
                    if pod_ns == ns
                    and pod_name.startswith(f"{name}-")
                    and (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == name
                }
                if kind == "statefulsets":
                    events += self._reconcile_statefulset(ns, name, replicas, owned)
                else:
                    events += self._reconcile_replicaset(ns, name, replicas, owned)
            return events

    def _reconcile_statefulset(self, ns: str, name: str, replicas: int, owned: dict[str, dict[str, Any]]) -> list[str]:
        events = []
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name not in owned:
                node = self._schedule(owned)
                self._create_pod(ns, pod_name, name, node)
                owned[pod_name] = self._pods[(ns, pod_name)]
                events.append(f"created {pod_name} on {node or '<pending>'}")
        surplus = sorted(
            (p for p in owned if p.removeprefix(f"{name}-").isdigit() and int(p.removeprefix(f"{name}-")) >= replicas),
            key=lambda p: -int(p.removeprefix(f"{name}-")),
        )
        for pod_name in surplus:
            self._terminate(ns, pod_name)
            events.append(f"deleting {pod_name}")
        return events

    def _reconcile_replicaset(self, ns: str, name: str, replicas: int, owned: dict[str, dict[str, Any]]) -> list[str]:
        events = []
        live = {p: pod for p, pod in owned.items() if "deletionTimestamp" not in pod["metadata"]}
        while len(live) < replicas:
            pod_name = f"{name}-{self._next_suffix()}"
            node = self._schedule(live)
            self._create_pod(ns, pod_name, name, node)
            live[pod_name] = self._pods[(ns, pod_name)]
            events.append(f"created {pod_name} on {node or '<pending>'}")
        if len(live) > replicas:

            def rank(item: tuple[str, dict[str, Any]]) -> tuple[int, int, int]:
                pod_name, pod = item
                scheduled = 1 if pod["spec"].get("nodeName") else 0
                try:
                    cost = int((pod["metadata"].get("annotations") or {}).get(DELETION_COST_ANNOTATION, "0"))
                except ValueError:
                    cost = 0
                return (scheduled, cost, -self._birth_of(ns, pod_name))

            for pod_name, _pod in sorted(live.items(), key=rank)[: len(live) - replicas]:
                self._terminate(ns, pod_name)
                events.append(f"deleting {pod_name}")
        return events

    # ----- helpers -------------------------------------------------------------------------------

    def _schedule(self, owned: dict[str, dict[str, Any]]) -> str | None:
        """A schedulable (not cordoned, Ready) node with the fewest of the workload's pods (spreading)."""
        counts = {n: 0 for n, node in self._nodes.items() if not node["spec"].get("unschedulable")}
        for pod in owned.values():
            node = pod["spec"].get("nodeName")
            if node in counts:
                counts[node] += 1
        return min(counts, key=lambda n: (counts[n], n)) if counts else None

    def _next_suffix(self) -> str:
        self._suffix = getattr(self, "_suffix", 0) + 1
        return f"r{self._suffix:04d}"

    def _birth_of(self, ns: str, pod_name: str) -> int:
        return getattr(self, "_births", {}).get((ns, pod_name), 0)

    def _create_pod(self, ns: str, pod_name: str, workload: str, node: str | None) -> None:
        births: dict[tuple[str, str], int] = self.__dict__.setdefault("_births", {})
        births[(ns, pod_name)] = len(births) + 1
        self._pods[(ns, pod_name)] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self._meta(pod_name, ns, labels={"app.kubernetes.io/name": workload}),  # type: ignore[attr-defined]
            "spec": {"nodeName": node, "containers": [{"name": "media", "image": "edge-media:1"}]},
            "status": {"phase": "Running" if node else "Pending"},
        }

    def _terminate(self, ns: str, pod_name: str) -> None:
        pod = self._pods[(ns, pod_name)]
        if "deletionTimestamp" not in pod["metadata"]:
            pod["metadata"]["deletionTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            pod["metadata"]["resourceVersion"] = self._next_rv()  # type: ignore[attr-defined]

    def pods_of(self, namespace: str) -> dict[str, dict[str, Any]]:
        """Pod name -> a copy of the pod, for assertions."""
        with self._lock:
            return {name: copy.deepcopy(pod) for (ns, name), pod in self._pods.items() if ns == namespace}

    # ----- PATCH pods/{name}: annotations (pod-deletion-cost, edgeplane's drain marks) -----------------

    def _h_patch_pod(self, ns: str, name: str, body: Any, content_type: str, **_: Any) -> tuple[int, dict[str, Any]]:
        if (ns, name) not in self._pods:
            raise ApiError(404, f'pods "{name}" not found', details={"name": name, "kind": "pods"})
        patch = self._patch_body(content_type, body, "pods", name)  # type: ignore[attr-defined]
        if set(patch) - {"metadata"} or set(patch.get("metadata") or {}) - {"annotations", "labels", "resourceVersion"}:
            raise ApiError(422, f'Pod "{name}" is invalid: only metadata annotations and labels may be patched here')
        self._pods[(ns, name)] = self._apply_patch(self._pods[(ns, name)], patch, "pods", name)  # type: ignore[attr-defined]
        return 200, copy.deepcopy(self._pods[(ns, name)])
