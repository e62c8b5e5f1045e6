"""KubernetesActuator: applies plans to real edge clusters through the Kubernetes API.

Implements `controller.ports.Actuator` with the official `kubernetes` client, one kubeconfig context
per region (region -> context, from `--kube-contexts fra=edge-fra,...`); `edgectl/bootstrap.py`
builds it. What each action does in a region's cluster:

- `set_desired_nodes`: sets `spec.replicas` of the media Deployment (the default; a StatefulSet when
  `media_workload_kind` says so) through its `scale` subresource. One media pod runs per node (pod
  anti-affinity), so replicas = nodes; the cluster autoscaler adds nodes for pending pods and removes
  nodes that are cordoned and empty.
  A StatefulSet scales in from its highest ordinal, so scale-in stops above the highest pod that
  still has sessions (the record says which pod held it); later calls finish it.
- `drain_node`: cordons the node (`spec.unschedulable`), labels it `edgeplane.io/draining=true` and
  records the deadline in `edgeplane.io/drain-deadline`; then evicts (policy/v1 Eviction, which
  respects PodDisruptionBudgets) each media pod on the node whose sessions are done, or all of them
  once the deadline has passed. Convention: the media server keeps the pod annotation
  `edgeplane.io/active-sessions` at its live session count; a pod without it is presumed busy until
  the deadline (no dropped calls). A 429 from an eviction means a PDB blocks it: left for the next
  call. Callers re-issue the drain each tick while the node drains; each call converges further.
- `undrain_node`: puts a node edgeplane drained back in service: uncordons it and removes the
  `edgeplane.io/draining` label and the drain deadline and plan annotations (one patch). Pods
  already evicted are the StatefulSet's to place again. A node cordoned by someone else (no
  edgeplane mark) is left cordoned; a node that is gone (404) is reported as removed, not an error.
- `set_traffic_weights`: writes the weights as JSON under `weights.json` in the ConfigMap
  `edge-traffic-policy` (namespace `edge-system`) of every region's cluster, where the edge allocator
  reads them; created when absent, patched otherwise.

Every write is read-compare-write: when the object already matches, nothing is written and the
AuditRecord says `changed=False` (idempotent retries). Writes carry the `resourceVersion` they were
computed from, so a concurrent change gives 409 and the action re-reads and retries (bounded). 429
and 5xx answers and connection errors are retried with bounded exponential backoff (honouring
`Retry-After`), then raise a retryable `ActuationError`; 404 raises a non-retryable one naming the
object and the context (except in `undrain_node`, where a node that is gone is an expected race).
`api_usage()` is the exact list of API calls made here: the RBAC manifests in `deploy/` and the
tests are checked against it. Settings, the RBAC table and the retrying call wrapper are in
`controller/adapters/kubernetes_api.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from controller.adapters.kubernetes_api import (
    ACTIVE_SESSIONS_ANNOTATION,
    ACTOR_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
    DRAIN_PLAN_ANNOTATION,
    DRAINING_LABEL,
    MERGE_PATCH,
    PLAN_ANNOTATION,
    REASON_ANNOTATION,
    STRATEGIC_MERGE_PATCH,
    WEIGHTS_KEY,
    ApiUse,
    Conflict,
    EvictionBlocked,
    KubernetesSettings,
    NotFound,
    RegionApiCalls,
    RegionApis,
    active_sessions,
    api_usage,
    drain_marks,
    parse_contexts,
    parse_weights,
)
from controller.adapters.kubernetes_deployment_drain import DeploymentDrains
from controller.adapters.kubernetes_drain_order import DrainOrderLabels
from controller.audit import AuditRecord
from controller.ports import ActuationError
from controller.spec import EnvironmentSpec


class KubernetesActuator(DrainOrderLabels):
    """Actuator over one Kubernetes cluster per region (and the drain order's node labels)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        contexts: Mapping[str, str] | Sequence[str],
        *,
        settings: KubernetesSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._spec = spec
        self._settings = settings or KubernetesSettings()
        self._contexts = parse_contexts(contexts)
        unknown = sorted(set(self._contexts) - {r.name for r in spec.regions})
        if unknown:
            raise ValueError(f"kube contexts name regions not in environment {spec.name!r}: {unknown}")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._api = RegionApiCalls(self._settings, self._contexts, sleep)
        self._deployment_drains = (
            DeploymentDrains(self._api, self._settings) if self._settings.media_workload_kind == "Deployment" else None
        )

    # ----- the Actuator port -------------------------------------------------------------------

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        if desired_nodes < 0:
            raise ActuationError(f"set_desired_nodes {region}: desired_nodes must be >= 0", retryable=False)
        apis = self._api.region(region)
        s = self._settings
        kind, name, ns = s.media_workload_kind, s.media_workload_name, s.media_namespace
        what = f"{kind} {ns}/{name} scale in context {apis.context}"
        if kind == "StatefulSet":
            read, patch = apis.apps.read_namespaced_stateful_set_scale, apis.apps.patch_namespaced_stateful_set_scale
        else:
            read, patch = apis.apps.read_namespaced_deployment_scale, apis.apps.patch_namespaced_deployment_scale
        for _round in range(s.conflict_attempts):
            scale = self._api.call(f"read {what}", lambda: read(name, ns, _request_timeout=s.request_timeout_seconds))
            scale_meta = scale.metadata or k8s.V1ObjectMeta()
            before = scale.spec.replicas if scale.spec and scale.spec.replicas is not None else 0
            target, held = desired_nodes, list[str]()
            if desired_nodes < before and kind == "StatefulSet":
                target, held = self._scale_in_floor(apis, before, desired_nodes)
            draining = self._deployment_drains.busy_draining(apis) if self._deployment_drains else []
            target += len(draining)  # draining pods with calls are extra to the desired nodes
            after: dict[str, Any] = {"replicas": target}
            if held:
                after.update(requested=desired_nodes, held_by_active_sessions=held)
            if draining:
                after.update(desired_nodes=desired_nodes, draining_with_sessions=draining)
            if before == target:
                return self._record(
                    "set_desired_nodes", region, plan_id, actor, reason, {"replicas": before}, after, changed=False
                )
            body = {"metadata": {"resourceVersion": scale_meta.resource_version}, "spec": {"replicas": target}}
            try:
                self._api.call(
                    f"patch {what}",
                    lambda body=body: patch(  # type: ignore[misc]
                        name, ns, body, _content_type=MERGE_PATCH, _request_timeout=s.request_timeout_seconds
                    ),
                    conflicts=True,
                )
            except Conflict:
                continue
            return self._record(
                "set_desired_nodes", region, plan_id, actor, reason, {"replicas": before}, after, changed=True
            )
        raise ActuationError(f"{what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        if deadline.tzinfo is None:
            raise ActuationError(f"drain {region}/{node}: deadline must carry a timezone", retryable=False)
        apis = self._api.region(region)
        s = self._settings
        deadline_text = deadline.astimezone(UTC).isoformat()
        what = f"node {node} in context {apis.context}"
        cordoned_now, before = self._cordon(apis, node, deadline_text, plan_id, what)
        if self._deployment_drains is not None:
            return self._drain_deployment_pods(
                apis, region, node, deadline_text, what, cordoned_now, before, plan_id, actor, reason
            )

        pods = self._api.call(
            f"list media pods on {what}",
            lambda: apis.core.list_namespaced_pod(
                s.media_namespace,
                label_selector=s.media_pod_selector,
                field_selector=f"spec.nodeName={node}",
                _request_timeout=s.request_timeout_seconds,
            ),
        )
        past_deadline = self._clock() >= deadline
        evicted, waiting, blocked, sessions_before = [], [], [], {}
        for pod in pods.items or []:
            pod_meta = pod.metadata or k8s.V1ObjectMeta()
            pod_name = str(pod_meta.name)
            if pod_meta.deletion_timestamp is not None:
                continue  # already terminating: an earlier call (or someone else) evicted it
            sessions = active_sessions(pod_meta.annotations)
            sessions_before[pod_name] = sessions
            if sessions != 0 and not past_deadline:
                waiting.append(pod_name)
                continue
            try:
                self._evict(apis, pod_name, what)
            except EvictionBlocked:
                blocked.append(pod_name)
                continue
            except NotFound:
                continue  # gone between list and evict
            evicted.append(pod_name)
        after = {
            "unschedulable": True,
            "draining": True,
            "deadline": deadline_text,
            "past_deadline": past_deadline,
            "evicted": evicted,
            "waiting_for_sessions": waiting,
            "blocked_by_disruption_budget": blocked,
        }
        return self._record(
            "drain_node",
            f"{region}/{node}",
            plan_id,
            actor,
            reason,
            {**before, "pods_active_sessions": sessions_before},
            after,
            changed=cordoned_now or bool(evicted),
        )

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        """Undo edgeplane's drain of `node`: uncordon it, drop the draining label and drain annotations.

        Only edgeplane's own drains are undone. A node that is cordoned but carries none of
        edgeplane's drain marks was cordoned by someone else (an operator's maintenance, a node
        problem handler): it is left cordoned and the record says so (`changed=False`, `after.left_alone`).
        It is not an error: the undrain is an optimisation of a scale-out, and raising would stop the
        scale command applied right after it, which then boots a new node for the capacity instead.

        A 404 is a node whose drain finished (and the autoscaler removed it) after the snapshot:
        `changed=False`, before/after `{"state": "removed"}`. The API cannot tell it from a name the
        cluster never had; plans only name nodes from a snapshot, so removed is the reading here.
        """
        apis = self._api.region(region)
        s = self._settings
        what = f"node {node} in context {apis.context}"
        target = f"{region}/{node}"
        removed = {"state": "removed"}
        first_state: dict[str, Any] | None = None
        for _round in range(s.conflict_attempts):
            try:
                current = self._api.call(
                    f"read {what}",
                    lambda: apis.core.read_node(node, _request_timeout=s.request_timeout_seconds),
                    missing_ok=True,
                )
            except NotFound:
                return self._record(
                    "undrain_node", target, plan_id, actor, reason, first_state or removed, removed, changed=False
                )
            meta, state = drain_marks(current)
            labels, annotations = meta.labels or {}, meta.annotations or {}
            first_state = first_state or state
            drained_by_edgeplane = DRAINING_LABEL in labels or any(
                key in annotations for key in (DRAIN_DEADLINE_ANNOTATION, DRAIN_PLAN_ANNOTATION)
            )
            if not drained_by_edgeplane:
                after: dict[str, Any] = dict(state)
                if state["unschedulable"]:
                    after["left_alone"] = (
                        f"cordoned without the {DRAINING_LABEL} label: not edgeplane's drain "
                        "(an operator's or another controller's cordon); not uncordoned"
                    )
                return self._record("undrain_node", target, plan_id, actor, reason, first_state, after, changed=False)
            try:
                # null removes a key in a merge patch
                marks = {DRAIN_DEADLINE_ANNOTATION: None, DRAIN_PLAN_ANNOTATION: None}
                self._patch_node(apis, node, f"uncordon {what}", meta, False, None, marks, missing_ok=True)
            except Conflict:
                continue
            except NotFound:
                continue  # removed between read and patch: the re-read reports it
            unmarked = self._deployment_drains.unmark(apis, node, what) if self._deployment_drains else []
            return self._record(
                "undrain_node",
                target,
                plan_id,
                actor,
                reason,
                first_state,
                {"unschedulable": False, "draining": False, "deadline": None}
                | ({"pods_unmarked": unmarked} if unmarked else {}),
                changed=True,
            )
        raise ActuationError(f"uncordon {what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        wanted = {
            market: {region: float(share) for region, share in sorted(shares.items())}
            for market, shares in sorted(weights.items())
        }
        before: dict[str, Any] = {}
        changed_regions: list[str] = []
        for region in sorted(self._contexts):
            try:
                previous, changed = self._publish_weights(region, wanted, plan_id, actor, reason)
            except ActuationError as error:
                done = ", ".join(changed_regions) or "none"
                raise ActuationError(
                    f"{error} (weights already published to: {done}; safe to retry)", retryable=error.retryable
                ) from error
            before[region] = previous
            if changed:
                changed_regions.append(region)
        return self._record(
            "set_traffic_weights",
            "traffic-weights",
            plan_id,
            actor,
            reason,
            before,
            {"weights": wanted, "published_to": sorted(self._contexts), "changed_in": changed_regions},
            changed=bool(changed_regions),
        )

    # ----- steps -------------------------------------------------------------------------------

    def _drain_deployment_pods(
        self,
        apis: RegionApis,
        region: str,
        node: str,
        deadline_text: str,
        what: str,
        cordoned_now: bool,
        before: dict[str, Any],
        plan_id: str,
        actor: str,
        reason: str,
    ) -> AuditRecord:
        """Deployment: release the node's finished pods by pod-deletion-cost and lower replicas by them
        (`controller/adapters/kubernetes_deployment_drain.py`); no eviction, so nothing is recreated."""
        assert self._deployment_drains is not None
        past_deadline = self._clock() >= datetime.fromisoformat(deadline_text)
        outcome = self._deployment_drains.drain_pods(apis, node, past_deadline, what)
        lowered = (
            self._deployment_drains.lower_replicas(apis, len(outcome.released_now)) if outcome.released_now else None
        )
        after: dict[str, Any] = {
            "unschedulable": True,
            "draining": True,
            "deadline": deadline_text,
            "past_deadline": past_deadline,
            "released": outcome.released_now,
            "released_before": outcome.released_before,
            "waiting_for_sessions": outcome.waiting,
        }
        if lowered is not None:
            after["replicas"] = {"before": lowered[0], "after": lowered[1]}
        return self._record(
            "drain_node",
            f"{region}/{node}",
            plan_id,
            actor,
            reason,
            {**before, "pods_active_sessions": outcome.sessions_before},
            after,
            changed=cordoned_now or bool(outcome.released_now) or bool(outcome.marked_now),
        )

    def _scale_in_floor(self, apis: RegionApis, current: int, desired: int) -> tuple[int, list[str]]:
        """Lowest replica count >= `desired` that removes no pod with live sessions.

        A StatefulSet scales in from its highest ordinal, whatever node the pod is on, so lowering
        replicas past a busy pod would cut its calls. Scale-in stops above the highest busy pod (a pod
        without a session count is busy); the next call goes further once it is idle.
        """
        s = self._settings
        pods = self._api.call(
            f"list media pods in {s.media_namespace} (context {apis.context})",
            lambda: apis.core.list_namespaced_pod(
                s.media_namespace, label_selector=s.media_pod_selector, _request_timeout=s.request_timeout_seconds
            ),
        )
        by_name = {(pod.metadata or k8s.V1ObjectMeta()).name: pod for pod in pods.items or []}
        for ordinal in range(current - 1, desired - 1, -1):
            pod = by_name.get(f"{s.media_workload_name}-{ordinal}")
            if pod is None or (pod.metadata and pod.metadata.deletion_timestamp is not None):
                continue
            sessions = active_sessions(pod.metadata.annotations if pod.metadata else None)
            if sessions != 0:
                return ordinal + 1, [f"{s.media_workload_name}-{ordinal}"]
        return desired, []

    def _cordon(
        self, apis: RegionApis, node: str, deadline_text: str, plan_id: str, what: str
    ) -> tuple[bool, dict[str, Any]]:
        s = self._settings
        first_state: dict[str, Any] | None = None
        for _round in range(s.conflict_attempts):
            current = self._api.call(
                f"read {what}", lambda: apis.core.read_node(node, _request_timeout=s.request_timeout_seconds)
            )
            meta, state = drain_marks(current)
            first_state = first_state or state
            if state == {"unschedulable": True, "draining": True, "deadline": deadline_text}:
                return False, first_state
            try:
                marks = {DRAIN_DEADLINE_ANNOTATION: deadline_text, DRAIN_PLAN_ANNOTATION: plan_id}
                self._patch_node(apis, node, f"cordon {what}", meta, True, "true", marks)
            except Conflict:
                continue
            return True, first_state
        raise ActuationError(f"cordon {what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    def _patch_node(
        self,
        apis: RegionApis,
        node: str,
        what: str,
        meta: k8s.V1ObjectMeta,
        unschedulable: bool,
        draining_label: str | None,
        annotations: Mapping[str, str | None],
        *,
        missing_ok: bool = False,
    ) -> None:
        """Set (or, with None, remove) edgeplane's drain marks on `node`, guarded by the resourceVersion
        they were computed from: a concurrent change raises `Conflict` for the caller to re-read."""
        s = self._settings
        body = {
            "metadata": {
                "resourceVersion": meta.resource_version,
                "labels": {DRAINING_LABEL: draining_label},
                "annotations": dict(annotations),
            },
            "spec": {"unschedulable": unschedulable},
        }
        self._api.call(
            what,
            lambda: apis.core.patch_node(
                node, body, _content_type=STRATEGIC_MERGE_PATCH, _request_timeout=s.request_timeout_seconds
            ),
            conflicts=True,
            missing_ok=missing_ok,
        )

    def _evict(self, apis: RegionApis, pod_name: str, what: str) -> None:
        s = self._settings
        eviction = k8s.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=k8s.V1ObjectMeta(name=pod_name, namespace=s.media_namespace),
        )
        self._api.call(
            f"evict pod {s.media_namespace}/{pod_name} from {what}",
            # The API answers 201 with a Status (the client reads it into an empty-ish V1Eviction).
            lambda: apis.core.create_namespaced_pod_eviction(
                pod_name,
                s.media_namespace,
                eviction,
                _request_timeout=s.request_timeout_seconds,
            ),
            eviction=True,
            missing_ok=True,
        )

    def _publish_weights(
        self, region: str, wanted: dict[str, dict[str, float]], plan_id: str, actor: str, reason: str
    ) -> tuple[Any, bool]:
        apis = self._api.region(region)
        s = self._settings
        ns, name = s.policy_namespace, s.policy_configmap
        what = f"ConfigMap {ns}/{name} in context {apis.context}"
        payload = json.dumps(wanted, sort_keys=True, separators=(",", ":"))
        annotations = {PLAN_ANNOTATION: plan_id, ACTOR_ANNOTATION: actor, REASON_ANNOTATION: reason[:1000]}
        for _round in range(s.conflict_attempts):
            try:
                current = self._api.call(
                    f"read {what}",
                    lambda: apis.core.read_namespaced_config_map(name, ns, _request_timeout=s.request_timeout_seconds),
                    missing_ok=True,
                )
            except NotFound:
                current = None
            if current is None:
                body = k8s.V1ConfigMap(
                    api_version="v1",
                    kind="ConfigMap",
                    metadata=k8s.V1ObjectMeta(
                        name=name,
                        namespace=ns,
                        annotations=annotations,
                        labels={"app.kubernetes.io/managed-by": "edgeplane"},
                    ),
                    data={WEIGHTS_KEY: payload},
                )
                try:
                    self._api.call(
                        f"create {what}",
                        lambda body=body: apis.core.create_namespaced_config_map(  # type: ignore[misc]
                            ns, body, _request_timeout=s.request_timeout_seconds
                        ),
                        conflicts=True,
                    )
                except Conflict:
                    continue  # created by someone else meanwhile: read it and compare
                return None, True
            previous = parse_weights((current.data or {}).get(WEIGHTS_KEY))
            if previous == wanted:
                return previous, False
            patch = {
                "metadata": {
                    "resourceVersion": (current.metadata or k8s.V1ObjectMeta()).resource_version,
                    "annotations": annotations,
                },
                "data": {WEIGHTS_KEY: payload},
            }
            try:
                self._api.call(
                    f"patch {what}",
                    lambda patch=patch: apis.core.patch_namespaced_config_map(  # type: ignore[misc]
                        name, ns, patch, _content_type=MERGE_PATCH, _request_timeout=s.request_timeout_seconds
                    ),
                    conflicts=True,
                    missing_ok=True,
                )
            except Conflict:
                continue
            except NotFound:
                continue  # deleted between read and patch: create it next round
            return previous, True
        raise ActuationError(f"{what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    @staticmethod
    def _record(
        action: str, target: str, plan_id: str, actor: str, reason: str, before: Any, after: Any, *, changed: bool
    ) -> AuditRecord:
        return AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            before=before,
            after=after,
            changed=changed,
            at=datetime.now(UTC),
        )


__all__ = [
    "ACTIVE_SESSIONS_ANNOTATION",
    "DRAINING_LABEL",
    "ApiUse",
    "KubernetesActuator",
    "KubernetesSettings",
    "api_usage",
    "parse_contexts",
]
