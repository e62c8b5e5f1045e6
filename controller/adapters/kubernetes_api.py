"""The Kubernetes API as the KubernetesActuator uses it: settings, the RBAC table, one client set
per region, and one call wrapper with bounded retries.

Split from `controller/adapters/kubernetes_actuator.py` (which keeps the four verbs and their steps):
- `KubernetesSettings`: where the media workload and the traffic policy live, how hard to retry;
- `api_usage()`: the exact (api group, resource, verb, scope) list the actuator calls, which the
  RBAC manifests in `deploy/` and the tests are checked against;
- `RegionApiCalls`: the region -> kubeconfig context clients (loaded once, urllib3 retries off) and
  `call()`, which retries 429/5xx/connection errors (honouring Retry-After, capped) and maps 404,
  409 and a PDB's 429 on an eviction to `NotFound`, `Conflict` and `EvictionBlocked`;
- helpers reading edgeplane's marks on nodes and pods.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from controller.ports import ActuationError

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


def api_usage(workload_kind: Literal["StatefulSet", "Deployment"] = "Deployment") -> tuple[ApiUse, ...]:
    """Every (api group, resource, verb) the actuator calls: the least privilege it needs."""
    workload = "statefulsets" if workload_kind == "StatefulSet" else "deployments"
    release = (
        ApiUse("", "pods/eviction", "create", "media-namespace")  # StatefulSet drain: evict finished pods
        if workload_kind == "StatefulSet"
        else ApiUse("", "pods", "patch", "media-namespace")  # Deployment drain: mark pods, pod-deletion-cost
    )
    return (
        ApiUse("", "nodes", "get", "cluster"),  # drain, undrain: read the node
        ApiUse("", "nodes", "patch", "cluster"),  # drain: cordon + label + deadline; undrain: undo them
        ApiUse("", "pods", "list", "media-namespace"),  # drain: media pods on the node
        release,
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
    media_workload_kind: Literal["StatefulSet", "Deployment"] = "Deployment"
    """Kind scaled through its scale subresource. Deployment (the default): drains release pods with the
    lowest `controller.kubernetes.io/pod-deletion-cost`, which the ReplicaSet controller deletes first on
    scale-in, so a drained pod leaves and nothing recreates it. StatefulSet only when chosen: its
    scale-in removes the highest ordinals wherever they run, and an evicted pod whose ordinal is below
    `replicas` comes back on another node (docs/operations.md, "Drains on Kubernetes")."""
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


class Conflict(Exception):
    """409: the object changed since it was read (or already exists)."""


class NotFound(Exception):
    """404: the object (or its namespace) does not exist."""


class EvictionBlocked(Exception):
    """429 on an eviction: a PodDisruptionBudget forbids it now."""


T = TypeVar("T")


@dataclass
class RegionApis:
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


class RegionApiCalls:
    """One client set per region (its kubeconfig context) and the retrying call wrapper."""

    def __init__(
        self, settings: KubernetesSettings, contexts: Mapping[str, str], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._settings = settings
        self._contexts = dict(contexts)
        self._sleep = sleep
        self._apis: dict[str, RegionApis] = {}

    def region(self, region: str) -> RegionApis:
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
        apis = RegionApis(context=context, core=k8s.CoreV1Api(api_client), apps=k8s.AppsV1Api(api_client))
        self._apis[region] = apis
        return apis

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        missing_ok: bool = False,
        conflicts: bool = False,
        eviction: bool = False,
    ) -> T:
        """Run one API call with bounded retries for 429/5xx/connection errors.

        404 raises a non-retryable ActuationError naming `what`, or `NotFound` when `missing_ok`;
        409 raises `Conflict` when the caller re-reads on `conflicts`, else a retryable error.
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
                        raise NotFound(f"{what}: not found: {message}") from error
                    raise ActuationError(f"{what}: not found ({message})", retryable=False) from error
                if status == 409:
                    if conflicts:
                        raise Conflict(f"{what}: {message}") from error
                    raise ActuationError(f"{what}: conflict ({message})", retryable=True) from error
                if status == 429 and eviction:
                    raise EvictionBlocked(f"{what}: {message}") from error
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


def drain_marks(node: Any) -> tuple[k8s.V1ObjectMeta, dict[str, Any]]:
    """The node's metadata and edgeplane's view of it: cordoned, labelled draining, drain deadline."""
    meta = node.metadata or k8s.V1ObjectMeta()
    return meta, {
        "unschedulable": bool(node.spec and node.spec.unschedulable),
        "draining": (meta.labels or {}).get(DRAINING_LABEL) == "true",
        "deadline": (meta.annotations or {}).get(DRAIN_DEADLINE_ANNOTATION),
    }


def active_sessions(annotations: Mapping[str, str] | None) -> int | None:
    raw = (annotations or {}).get(ACTIVE_SESSIONS_ANNOTATION)
    try:
        return max(0, int(raw)) if raw is not None else None
    except ValueError:
        return None  # unreadable count: presume busy until the deadline


def parse_weights(raw: str | None) -> Any:
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
