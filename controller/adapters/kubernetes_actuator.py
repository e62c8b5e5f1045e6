"""KubernetesActuator: applies plans to real edge clusters through the Kubernetes API.

Implements `controller.ports.Actuator` with the official `kubernetes` client, one kubeconfig context
per region (region -> context, from `--kube-contexts fra=edge-fra,...`); `edgectl/bootstrap.py`
builds it. What each action does in a region's cluster:

- `set_desired_nodes`: sets `spec.replicas` of the media StatefulSet (or Deployment) through its
  `scale` subresource. One media pod runs per node (pod anti-affinity), so replicas = nodes; the
  cluster autoscaler adds nodes for pending pods and removes nodes that are cordoned and empty.
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
tests are checked against it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from controller.audit import AuditRecord
from controller.ports import ActuationError
from controller.spec import EnvironmentSpec

ACTIVE_SESSIONS_ANNOTATION = "edgeplane.io/active-sessions"
DRAINING_LABEL = "edgeplane.io/draining"
DRAIN_DEADLINE_ANNOTATION = "edgeplane.io/drain-deadline"
DRAIN_PLAN_ANNOTATION = "edgeplane.io/drain-plan-id"
PLAN_ANNOTATION = "edgeplane.io/plan-id"
ACTOR_ANNOTATION = "edgeplane.io/actor"
REASON_ANNOTATION = "edgeplane.io/reason"
WEIGHTS_KEY = "weights.json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

Scope = Literal["cluster", "media-namespace", "policy-namespace"]


@dataclass(frozen=True)
class ApiUse:
    """One Kubernetes API call this module makes, as RBAC sees it."""

    api_group: str
    resource: str
    verb: str
    scope: Scope


def api_usage(workload_kind: Literal["StatefulSet", "Deployment"] = "StatefulSet") -> tuple[ApiUse, ...]:
    """Every (api group, resource, verb) the actuator calls: the least privilege it needs."""
    workload = "statefulsets" if workload_kind == "StatefulSet" else "deployments"
    return (
        ApiUse("", "nodes", "get", "cluster"),  # drain, undrain: read the node
        ApiUse("", "nodes", "patch", "cluster"),  # drain: cordon + label + deadline; undrain: undo them
        ApiUse("", "pods", "list", "media-namespace"),  # drain: media pods on the node
        ApiUse("", "pods/eviction", "create", "media-namespace"),  # drain: evict finished pods
        ApiUse("apps", f"{workload}/scale", "get", "media-namespace"),  # scale: read replicas
        ApiUse("apps", f"{workload}/scale", "patch", "media-namespace"),  # scale: set replicas
        ApiUse("", "configmaps", "get", "policy-namespace"),  # weights: read
        ApiUse("", "configmaps", "create", "policy-namespace"),  # weights: first publish
        ApiUse("", "configmaps", "patch", "policy-namespace"),  # weights: update
    )


@dataclass(frozen=True)
class KubernetesSettings:
    """Where the media workload and the traffic policy live, and how hard to retry."""

    kubeconfig: str | None = None
    """Kubeconfig file with one context per region; None: $KUBECONFIG or ~/.kube/config."""
    media_namespace: str = "edge-media"
    """Namespace of the media workload and its pods."""
    media_workload_kind: Literal["StatefulSet", "Deployment"] = "StatefulSet"
    """Kind scaled through its scale subresource."""
    media_workload_name: str = "edge-media"
    """Name of the media StatefulSet/Deployment (one pod per node)."""
    media_pod_selector: str = "app.kubernetes.io/name=edge-media"
    """Label selector of the media pods (drain evicts only these)."""
    policy_namespace: str = "edge-system"
    """Namespace of the traffic-policy ConfigMap the edge allocator reads."""
    policy_configmap: str = "edge-traffic-policy"
    """Name of that ConfigMap."""
    attempts: int = 5
    """Tries per API call for 429, 5xx and connection errors."""
    backoff_seconds: float = 0.2
    """First retry wait, doubled each retry."""
    max_backoff_seconds: float = 5.0
    """Cap on one wait (also caps Retry-After)."""
    conflict_attempts: int = 5
    """Re-read-and-retry rounds after 409 Conflict."""
    request_timeout_seconds: float = 10.0
    """Per HTTP request."""


class _Conflict(Exception):
    """409: the object changed since it was read (or already exists)."""


class _NotFound(Exception):
    """404: the object (or its namespace) does not exist."""


class _Blocked(Exception):
    """429 on an eviction: a PodDisruptionBudget forbids it now."""


T = TypeVar("T")


@dataclass
class _RegionApis:
    context: str
    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api


def parse_contexts(contexts: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """`{"fra": "edge-fra"}` or `["fra=edge-fra", ...]` (the CLI form) -> region -> context."""
    if isinstance(contexts, Mapping):
        return dict(contexts)
    parsed: dict[str, str] = {}
    for item in contexts:
        region, sep, context = item.partition("=")
        if not sep or not region or not context:
            raise ValueError(f"kube context {item!r}: expected REGION=CONTEXT (e.g. fra=edge-fra)")
        parsed[region.strip()] = context.strip()
    return parsed


class KubernetesActuator:
    """Actuator over one Kubernetes cluster per region."""

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
        self._sleep = sleep
        self._apis: dict[str, _RegionApis] = {}

    # ----- the Actuator port -------------------------------------------------------------------

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        if desired_nodes < 0:
            raise ActuationError(f"set_desired_nodes {region}: desired_nodes must be >= 0", retryable=False)
        apis = self._region(region)
        s = self._settings
        kind, name, ns = s.media_workload_kind, s.media_workload_name, s.media_namespace
        what = f"{kind} {ns}/{name} scale in context {apis.context}"
        if kind == "StatefulSet":
            read, patch = apis.apps.read_namespaced_stateful_set_scale, apis.apps.patch_namespaced_stateful_set_scale
        else:
            read, patch = apis.apps.read_namespaced_deployment_scale, apis.apps.patch_namespaced_deployment_scale
        for _round in range(s.conflict_attempts):
            scale = self._call(f"read {what}", lambda: read(name, ns, _request_timeout=s.request_timeout_seconds))
            scale_meta = scale.metadata or k8s.V1ObjectMeta()
            before = scale.spec.replicas if scale.spec and scale.spec.replicas is not None else 0
            target, held = desired_nodes, list[str]()
            if desired_nodes < before and kind == "StatefulSet":
                target, held = self._scale_in_floor(apis, before, desired_nodes)
            after: dict[str, Any] = {"replicas": target}
            if held:
                after.update(requested=desired_nodes, held_by_active_sessions=held)
            if before == target:
                return self._record(
                    "set_desired_nodes", region, plan_id, actor, reason, {"replicas": before}, after, changed=False
                )
            body = {"metadata": {"resourceVersion": scale_meta.resource_version}, "spec": {"replicas": target}}
            try:
                self._call(
                    f"patch {what}",
                    lambda body=body: patch(  # type: ignore[misc]
                        name, ns, body, _content_type=MERGE_PATCH, _request_timeout=s.request_timeout_seconds
                    ),
                    conflicts=True,
                )
            except _Conflict:
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
        apis = self._region(region)
        s = self._settings
        deadline_text = deadline.astimezone(UTC).isoformat()
        what = f"node {node} in context {apis.context}"
        cordoned_now, before = self._cordon(apis, node, deadline_text, plan_id, what)

        pods = self._call(
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
            sessions = _active_sessions(pod_meta.annotations)
            sessions_before[pod_name] = sessions
            if sessions != 0 and not past_deadline:
                waiting.append(pod_name)
                continue
            try:
                self._evict(apis, pod_name, what)
            except _Blocked:
                blocked.append(pod_name)
                continue
            except _NotFound:
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
        apis = self._region(region)
        s = self._settings
        what = f"node {node} in context {apis.context}"
        target = f"{region}/{node}"
        removed = {"state": "removed"}
        first_state: dict[str, Any] | None = None
        for _round in range(s.conflict_attempts):
            try:
                current = self._call(
                    f"read {what}",
                    lambda: apis.core.read_node(node, _request_timeout=s.request_timeout_seconds),
                    missing_ok=True,
                )
            except _NotFound:
                return self._record(
                    "undrain_node", target, plan_id, actor, reason, first_state or removed, removed, changed=False
                )
            meta, state = _drain_marks(current)
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
            except _Conflict:
                continue
            except _NotFound:
                continue  # removed between read and patch: the re-read reports it
            return self._record(
                "undrain_node",
                target,
                plan_id,
                actor,
                reason,
                first_state,
                {"unschedulable": False, "draining": False, "deadline": None},
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

    def _scale_in_floor(self, apis: _RegionApis, current: int, desired: int) -> tuple[int, list[str]]:
        """Lowest replica count >= `desired` that removes no pod with live sessions.

        A StatefulSet scales in from its highest ordinal, whatever node the pod is on, so lowering
        replicas past a busy pod would cut its calls. Scale-in stops above the highest busy pod (a pod
        without a session count is busy); the next call goes further once it is idle.
        """
        s = self._settings
        pods = self._call(
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
            sessions = _active_sessions(pod.metadata.annotations if pod.metadata else None)
            if sessions != 0:
                return ordinal + 1, [f"{s.media_workload_name}-{ordinal}"]
        return desired, []

    def _cordon(
        self, apis: _RegionApis, node: str, deadline_text: str, plan_id: str, what: str
    ) -> tuple[bool, dict[str, Any]]:
        s = self._settings
        first_state: dict[str, Any] | None = None
        for _round in range(s.conflict_attempts):
            current = self._call(
                f"read {what}", lambda: apis.core.read_node(node, _request_timeout=s.request_timeout_seconds)
            )
            meta, state = _drain_marks(current)
            first_state = first_state or state
            if state == {"unschedulable": True, "draining": True, "deadline": deadline_text}:
                return False, first_state
            try:
                marks = {DRAIN_DEADLINE_ANNOTATION: deadline_text, DRAIN_PLAN_ANNOTATION: plan_id}
                self._patch_node(apis, node, f"cordon {what}", meta, True, "true", marks)
            except _Conflict:
                continue
            return True, first_state
        raise ActuationError(f"cordon {what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    def _patch_node(
        self,
        apis: _RegionApis,
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
        they were computed from: a concurrent change raises `_Conflict` for the caller to re-read."""
        s = self._settings
        body = {
            "metadata": {
                "resourceVersion": meta.resource_version,
                "labels": {DRAINING_LABEL: draining_label},
                "annotations": dict(annotations),
            },
            "spec": {"unschedulable": unschedulable},
        }
        self._call(
            what,
            lambda: apis.core.patch_node(
                node, body, _content_type=STRATEGIC_MERGE_PATCH, _request_timeout=s.request_timeout_seconds
            ),
            conflicts=True,
            missing_ok=missing_ok,
        )

    def _evict(self, apis: _RegionApis, pod_name: str, what: str) -> None:
        s = self._settings
        eviction = k8s.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=k8s.V1ObjectMeta(name=pod_name, namespace=s.media_namespace),
        )
        self._call(
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
        apis = self._region(region)
        s = self._settings
        ns, name = s.policy_namespace, s.policy_configmap
        what = f"ConfigMap {ns}/{name} in context {apis.context}"
        payload = json.dumps(wanted, sort_keys=True, separators=(",", ":"))
        annotations = {PLAN_ANNOTATION: plan_id, ACTOR_ANNOTATION: actor, REASON_ANNOTATION: reason[:1000]}
        for _round in range(s.conflict_attempts):
            try:
                current = self._call(
                    f"read {what}",
                    lambda: apis.core.read_namespaced_config_map(name, ns, _request_timeout=s.request_timeout_seconds),
                    missing_ok=True,
                )
            except _NotFound:
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
                    self._call(
                        f"create {what}",
                        lambda body=body: apis.core.create_namespaced_config_map(  # type: ignore[misc]
                            ns, body, _request_timeout=s.request_timeout_seconds
                        ),
                        conflicts=True,
                    )
                except _Conflict:
                    continue  # created by someone else meanwhile: read it and compare
                return None, True
            previous = _parse_weights((current.data or {}).get(WEIGHTS_KEY))
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
                self._call(
                    f"patch {what}",
                    lambda patch=patch: apis.core.patch_namespaced_config_map(  # type: ignore[misc]
                        name, ns, patch, _content_type=MERGE_PATCH, _request_timeout=s.request_timeout_seconds
                    ),
                    conflicts=True,
                    missing_ok=True,
                )
            except _Conflict:
                continue
            except _NotFound:
                continue  # deleted between read and patch: create it next round
            return previous, True
        raise ActuationError(f"{what}: still conflicting after {s.conflict_attempts} re-reads", retryable=True)

    # ----- plumbing ----------------------------------------------------------------------------

    def _region(self, region: str) -> _RegionApis:
        if region in self._apis:
            return self._apis[region]
        context = self._contexts.get(region)
        if context is None:
            raise ActuationError(
                f"region {region!r} has no kubeconfig context (configured: {sorted(self._contexts)})", retryable=False
            )
        try:
            configuration = k8s.Configuration()
            k8s_config.load_kube_config(
                config_file=self._settings.kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            # Retries are ours (bounded, counted, Retry-After capped); urllib3's would hide and stretch them.
            configuration.retries = False
            api_client = k8s.ApiClient(configuration)
        except Exception as error:  # the loader raises ConfigException, ValueError, OSError, ...
            raise ActuationError(
                f"region {region}: cannot load kubeconfig context {context!r}: {error}", retryable=False
            ) from error
        apis = _RegionApis(context=context, core=k8s.CoreV1Api(api_client), apps=k8s.AppsV1Api(api_client))
        self._apis[region] = apis
        return apis

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        missing_ok: bool = False,
        conflicts: bool = False,
        eviction: bool = False,
    ) -> T:
        """Run one API call with bounded retries for 429/5xx/connection errors.

        404 raises a non-retryable ActuationError naming `what`, or `_NotFound` when `missing_ok`;
        409 raises `_Conflict` when the caller re-reads on `conflicts`, else a retryable error.
        """
        s = self._settings
        problem = ""
        for attempt in range(s.attempts):
            wait = min(s.backoff_seconds * 2**attempt, s.max_backoff_seconds)
            try:
                return fn()
            except ApiException as error:
                status, message = int(error.status or 0), _status_message(error)
                if status == 404:
                    if missing_ok:
                        raise _NotFound(f"{what}: not found: {message}") from error
                    raise ActuationError(f"{what}: not found ({message})", retryable=False) from error
                if status == 409:
                    if conflicts:
                        raise _Conflict(f"{what}: {message}") from error
                    raise ActuationError(f"{what}: conflict ({message})", retryable=True) from error
                if status == 429 and eviction:
                    raise _Blocked(f"{what}: {message}") from error
                if status != 429 and status < 500:
                    raise ActuationError(f"{what}: HTTP {status}: {message}", retryable=False) from error
                problem = f"HTTP {status}: {message}"
                retry_after = _retry_after(error)
                if retry_after is not None:
                    wait = min(retry_after, s.max_backoff_seconds)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt + 1 < s.attempts:
                self._sleep(wait)
        raise ActuationError(f"{what}: {problem} (after {s.attempts} attempts)", retryable=True)

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


def _drain_marks(node: Any) -> tuple[k8s.V1ObjectMeta, dict[str, Any]]:
    """The node's metadata and edgeplane's view of it: cordoned, labelled draining, drain deadline."""
    meta = node.metadata or k8s.V1ObjectMeta()
    return meta, {
        "unschedulable": bool(node.spec and node.spec.unschedulable),
        "draining": (meta.labels or {}).get(DRAINING_LABEL) == "true",
        "deadline": (meta.annotations or {}).get(DRAIN_DEADLINE_ANNOTATION),
    }


def _active_sessions(annotations: Mapping[str, str] | None) -> int | None:
    raw = (annotations or {}).get(ACTIVE_SESSIONS_ANNOTATION)
    try:
        return max(0, int(raw)) if raw is not None else None
    except ValueError:
        return None  # unreadable count: presume busy until the deadline


def _parse_weights(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _status_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return str(error.reason or error.body or "")
    if isinstance(body, dict) and body.get("kind") == "Status":
        return f"{body.get('reason', '')}: {body.get('message', '')}".strip(": ")
    return str(body)[:500]


def _retry_after(error: ApiException) -> float | None:
    headers = error.headers or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


__all__ = [
    "ACTIVE_SESSIONS_ANNOTATION",
    "DRAINING_LABEL",
    "ApiUse",
    "KubernetesActuator",
    "KubernetesSettings",
    "api_usage",
    "parse_contexts",
]
