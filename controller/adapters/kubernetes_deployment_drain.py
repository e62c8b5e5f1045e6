"""Drains of a media Deployment: the drained pods leave, and nothing recreates them elsewhere.

Why not evict, as for a StatefulSet: the workload's controller keeps `replicas` pods. An evicted
Deployment (ReplicaSet) pod is replaced at once, and an evicted StatefulSet pod whose ordinal is
below `replicas` is recreated under its name on another node, so an eviction moves a pod instead
of removing it, while a StatefulSet's scale-in removes the highest ordinals, wherever they run.

What the real controllers honour instead: the ReplicaSet controller, scaling in, deletes the pods
with the lowest `controller.kubernetes.io/pod-deletion-cost` first (beta and on by default since
Kubernetes 1.22; after unscheduled and not-ready pods, which a drained node's media pods are not).
So, per media pod on a draining node:
- busy (sessions above 0, or no count yet) and before the deadline: annotated `edgeplane.io/draining`
  and left serving its calls; it counts as draining, not as one of the region's desired nodes;
- idle, or past the deadline: released: the lowest deletion cost (int32 minimum) and
  `edgeplane.io/released`, and the Deployment's replicas lowered by the pods released in this call
  (a pod released by an earlier call is not counted again: retries lower nothing twice).
`set_desired_nodes(N)` sets replicas = N + the busy draining pods, so a scale command never
deletes a draining pod with calls, and the released ones are the surplus the ReplicaSet removes.
An undrain removes the marks (the pod serves again; its count returns at the next scale command).

Used by `controller/adapters/kubernetes_actuator.py` when `media_workload_kind` is `Deployment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from controller.adapters.kubernetes_api import (
    MERGE_PATCH,
    Conflict,
    KubernetesSettings,
    NotFound,
    RegionApiCalls,
    RegionApis,
    active_sessions,
)
from controller.ports import ActuationError

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
RELEASED_COST = str(-(2**31))
"""int32 minimum: the ReplicaSet deletes a released pod before any other running, ready pod."""
POD_DRAINING_ANNOTATION = "edgeplane.io/draining"
POD_RELEASED_ANNOTATION = "edgeplane.io/released"


@dataclass
class PodDrainOutcome:
    released_now: list[str] = field(default_factory=list)
    released_before: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    marked_now: list[str] = field(default_factory=list)
    """Busy pods marked draining by this call (the first drain call that saw them)."""
    sessions_before: dict[str, int | None] = field(default_factory=dict)


class DeploymentDrains:
    def __init__(self, api: RegionApiCalls, settings: KubernetesSettings) -> None:
        self._api = api
        self._settings = settings

    def _pods(self, apis: RegionApis, node: str | None = None) -> list[Any]:
        s = self._settings
        where = f"on node {node}" if node else f"in {s.media_namespace}"
        pods = self._api.call(
            f"list media pods {where} (context {apis.context})",
            lambda: apis.core.list_namespaced_pod(
                s.media_namespace,
                label_selector=s.media_pod_selector,
                field_selector=f"spec.nodeName={node}" if node else None,
                _request_timeout=s.request_timeout_seconds,
            ),
        )
        return [p for p in pods.items or [] if (p.metadata or k8s.V1ObjectMeta()).deletion_timestamp is None]

    def busy_draining(self, apis: RegionApis) -> list[str]:
        """Media pods draining with calls (marked, not released): extra to the region's desired nodes."""
        busy = []
        for pod in self._pods(apis):
            annotations = (pod.metadata.annotations or {}) if pod.metadata else {}
            if annotations.get(POD_DRAINING_ANNOTATION) == "true" and POD_RELEASED_ANNOTATION not in annotations:
                busy.append(str(pod.metadata.name))
        return sorted(busy)

    def drain_pods(self, apis: RegionApis, node: str, past_deadline: bool, what: str) -> PodDrainOutcome:
        outcome = PodDrainOutcome()
        for pod in self._pods(apis, node):
            meta = pod.metadata or k8s.V1ObjectMeta()
            name, annotations = str(meta.name), meta.annotations or {}
            sessions = active_sessions(annotations)
            outcome.sessions_before[name] = sessions
            if POD_RELEASED_ANNOTATION in annotations:
                outcome.released_before.append(name)
                continue
            release = sessions == 0 or past_deadline
            marks: dict[str, str | None] = {POD_DRAINING_ANNOTATION: "true"}
            if release:
                marks |= {POD_RELEASED_ANNOTATION: "true", DELETION_COST_ANNOTATION: RELEASED_COST}
            elif annotations.get(POD_DRAINING_ANNOTATION) == "true":
                outcome.waiting.append(name)
                continue
            try:
                self._annotate(apis, meta, marks, f"mark pod {name} on {what}")
            except NotFound:
                continue  # gone between list and patch
            if release:
                outcome.released_now.append(name)
            else:
                outcome.waiting.append(name)
                outcome.marked_now.append(name)
        return outcome

    def unmark(self, apis: RegionApis, node: str, what: str) -> list[str]:
        """Remove edgeplane's drain marks from the media pods on `node` (an undrain)."""
        unmarked = []
        for pod in self._pods(apis, node):
            meta = pod.metadata or k8s.V1ObjectMeta()
            annotations = meta.annotations or {}
            if not {POD_DRAINING_ANNOTATION, POD_RELEASED_ANNOTATION} & set(annotations):
                continue
            marks = {POD_DRAINING_ANNOTATION: None, POD_RELEASED_ANNOTATION: None, DELETION_COST_ANNOTATION: None}
            try:
                self._annotate(apis, meta, marks, f"unmark pod {meta.name} on {what}")
            except NotFound:
                continue
            unmarked.append(str(meta.name))
        return unmarked

    def lower_replicas(self, apis: RegionApis, count: int) -> tuple[int, int]:
        """Replicas minus `count` (the pods just released), guarded by resourceVersion: (before, after)."""
        s = self._settings
        name, ns = s.media_workload_name, s.media_namespace
        what = f"Deployment {ns}/{name} scale in context {apis.context}"
        for _round in range(s.conflict_attempts):
            scale = self._api.call(
                f"read {what}",
                lambda: apis.apps.read_namespaced_deployment_scale(
                    name, ns, _request_timeout=s.request_timeout_seconds
                ),
            )
            before = scale.spec.replicas if scale.spec and scale.spec.replicas is not None else 0
            after = max(0, before - count)
            body = {"metadata": {"resourceVersion": (scale.metadata or k8s.V1ObjectMeta()).resource_version},
                    "spec": {"replicas": after}}  # fmt: skip
            try:
                self._api.call(
                    f"patch {what}",
                    lambda body=body: apis.apps.patch_namespaced_deployment_scale(  # type: ignore[misc]
                        name, ns, body, _content_type=MERGE_PATCH, _request_timeout=s.request_timeout_seconds
                    ),
                    conflicts=True,
                )
            except Conflict:
                continue
            return before, after
        raise ActuationError(f"{what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    def _annotate(self, apis: RegionApis, meta: k8s.V1ObjectMeta, marks: Mapping[str, str | None], what: str) -> None:
        s = self._settings
        name = str(meta.name)
        body = {"metadata": {"resourceVersion": meta.resource_version, "annotations": dict(marks)}}
        self._api.call(
            what,
            lambda: apis.core.patch_namespaced_pod(
                name,
                s.media_namespace,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=s.request_timeout_seconds,
            ),
            missing_ok=True,
        )
