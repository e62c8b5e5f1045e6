"""A small stand-in for the Kubernetes API server: the REST subset the KubernetesActuator uses.

No API server can be installed in the test environment, so `tests/adapters/test_kubernetes_actuator.py`
points the REAL `kubernetes` client (through a generated kubeconfig) at this loopback HTTP server.
It keeps objects in memory and speaks the real paths, JSON shapes and error conventions:

- objects carry `metadata.resourceVersion` (one counter per server, bumped on every write); a PATCH
  whose body names a stale `metadata.resourceVersion` gets 409 Conflict, like the real server;
- PATCH accepts `application/merge-patch+json` and `application/strategic-merge-patch+json`
  (applied as RFC 7386 merges, exact for the maps and scalars the actuator patches); an object body
  sent as `application/json-patch+json` is rejected with 400, as the real server does;
- the `scale` subresource of StatefulSets/Deployments returns an `autoscaling/v1` Scale;
- `pods/{name}/eviction` takes a `policy/v1` Eviction, answers 429 when a PodDisruptionBudget blocks
  it (`block_eviction`), and marks the pod terminating (`deletionTimestamp`);
- errors are `Status` objects (`kind: Status`, `reason`, `code`, `details`);
- `settle()` plays the kubelet and the StatefulSet/ReplicaSet controllers once: terminating pods
  go, an evicted StatefulSet pod below `replicas` comes back on another node, a ReplicaSet deletes
  its surplus by pod-deletion-cost (`tests/fakes/kube_workload_controllers.py`).

Faults for retry tests: `inject_error(...)` answers a given status N times for matching requests,
`modify_before_next_write(...)` makes a concurrent writer bump an object between the actuator's
read and its write (so the 409 comes from a real precondition check). Every request is logged with
method, path, query, content type and body; `rbac_attributes()` turns the log into the
(api group, resource, verb) triples RBAC would check.

Deliberately not here: watch, apply-patch, JSON-patch operations, field managers, admission.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.kube_api_support import (  # noqa: F401  (write_kubeconfig: re-exported for the tests)
    ApiError,
    KubeconfigFile,
    dig,
    json_merge,
    matches_selector,
    write_kubeconfig,
)
from tests.fakes.kube_workload_controllers import WorkloadControllers

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None = None


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    rbac: tuple[str, str, str]  # api group, resource, verb


def _route(method: str, pattern: str, handler: str, rbac: tuple[str, str, str]) -> _Route:
    return _Route(method, re.compile(pattern), handler, rbac)


NS = r"/namespaces/(?P<ns>[a-z0-9-]+)"
NAME = r"(?P<name>[a-z0-9.-]+)"
WORKLOAD = r"(?P<kind>statefulsets|deployments)"
ROUTES = [
    _route("GET", rf"/api/v1/nodes/{NAME}", "get_node", ("", "nodes", "get")),
    _route("PATCH", rf"/api/v1/nodes/{NAME}", "patch_node", ("", "nodes", "patch")),
    _route("GET", rf"/api/v1{NS}/pods", "list_pods", ("", "pods", "list")),
    _route("POST", rf"/api/v1{NS}/pods/{NAME}/eviction", "evict_pod", ("", "pods/eviction", "create")),
    _route("PATCH", rf"/api/v1{NS}/pods/{NAME}", "patch_pod", ("", "pods", "patch")),
    _route("GET", rf"/apis/apps/v1{NS}/{WORKLOAD}/{NAME}/scale", "get_scale", ("apps", "{kind}/scale", "get")),
    _route("PATCH", rf"/apis/apps/v1{NS}/{WORKLOAD}/{NAME}/scale", "patch_scale", ("apps", "{kind}/scale", "patch")),
    _route("GET", rf"/api/v1{NS}/configmaps/{NAME}", "get_configmap", ("", "configmaps", "get")),
    _route("PATCH", rf"/api/v1{NS}/configmaps/{NAME}", "patch_configmap", ("", "configmaps", "patch")),
    _route("POST", rf"/api/v1{NS}/configmaps", "create_configmap", ("", "configmaps", "create")),
]


class KubeApiStandIn(WorkloadControllers):
    """One cluster's API server (one per region context in the tests); `settle()` runs the kubelet's
    and the workload controllers' part (`tests/fakes/kube_workload_controllers.py`)."""

    def __init__(self, name: str = "cluster") -> None:
        self.name = name
        self.requests: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._rv = 1000
        self._namespaces: set[str] = {"default", "kube-system"}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._workloads: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind plural, ns, name)
        self._configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self._blocked_evictions: set[tuple[str, str]] = set()
        self._faults: list[_Fault] = []
        self._modify_before_write: list[tuple[str, re.Pattern[str]]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"kube-{name}", daemon=True
        )

    # ----- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> KubeApiStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # ----- seeding and inspection ------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _meta(self, name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "uid": f"uid-{self.name}-{name}",
            "resourceVersion": self._next_rv(),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        }
        if namespace is not None:
            meta["namespace"] = namespace
        meta.update({k: v for k, v in extra.items() if v is not None})
        return meta

    def add_namespace(self, namespace: str) -> None:
        with self._lock:
            self._namespaces.add(namespace)

    def add_node(self, name: str, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._nodes[name] = {
                "kind": "Node",
                "apiVersion": "v1",
                "metadata": self._meta(name, labels=labels or {}),
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }

    def add_pod(
        self, namespace: str, name: str, node: str, *, labels: dict[str, str], annotations: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self._namespaces.add(namespace)
            self._pods[(namespace, name)] = {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": self._meta(name, namespace, labels=labels, annotations=annotations or {}),
                "spec": {"nodeName": node, "containers": [{"name": "media", "image": "edge-media:1"}]},
                "status": {"phase": "Running"},
            }

    def set_pod_annotation(self, namespace: str, name: str, key: str, value: str) -> None:
        with self._lock:
            pod = self._pods[(namespace, name)]
            pod["metadata"].setdefault("annotations", {})[key] = value
            pod["metadata"]["resourceVersion"] = self._next_rv()

    def add_workload(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """`kind`: "statefulsets" or "deployments"."""
        with self._lock:
            self._namespaces.add(namespace)
            self._workloads[(kind, namespace, name)] = {
                "kind": "StatefulSet" if kind == "statefulsets" else "Deployment",
                "apiVersion": "apps/v1",
                "metadata": self._meta(name, namespace),
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
                "status": {"replicas": replicas},
            }

    def block_eviction(self, namespace: str, name: str, blocked: bool = True) -> None:
        """Make a PodDisruptionBudget forbid evicting this pod (429) until unblocked."""
        with self._lock:
            (self._blocked_evictions.add if blocked else self._blocked_evictions.discard)((namespace, name))

    def node(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._nodes[name])

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._pods[(namespace, name)])

    def workload(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._workloads[(kind, namespace, name)])

    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._configmaps.get((namespace, name))
            return copy.deepcopy(found) if found else None

    # ----- faults --------------------------------------------------------------------------------

    def inject_error(
        self, method: str, path_regex: str, status: int, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        """Answer the next `times` matching requests with `status` (a Status object)."""
        with self._lock:
            self._faults.append(_Fault(method, re.compile(path_regex), status, times, retry_after))

    def modify_before_next_write(self, method: str, path_regex: str) -> None:
        """A concurrent writer: just before the next matching write, bump the target's resourceVersion."""
        with self._lock:
            self._modify_before_write.append((method, re.compile(path_regex)))

    # ----- RBAC view of the log --------------------------------------------------------------------

    def rbac_attributes(self) -> set[tuple[str, str, str]]:
        """(api group, resource, verb) of every logged request, as the authorizer would see it."""
        seen = set()
        for request in self.requests:
            for route in ROUTES:
                match = route.pattern.fullmatch(request.path)
                if route.method == request.method and match:
                    group, resource, verb = route.rbac
                    seen.add((group, resource.format(**match.groupdict()), verb))
                    break
            else:
                seen.add(("?", request.path, request.method))
        return seen

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.method in {"POST", "PUT", "PATCH", "DELETE"}]

    # ----- request handling ----------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, content_type: str, raw_body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body.decode(errors="replace")
        with self._lock:
            self.requests.append(LoggedRequest(method, path, query, content_type.split(";")[0].strip(), body))
            try:
                for fault in self._faults:
                    if fault.remaining > 0 and fault.method == method and fault.path.search(path):
                        fault.remaining -= 1
                        error = ApiError(fault.status, f"injected {fault.status} for {method} {path}")
                        error.retry_after = fault.retry_after
                        raise error
                for route in ROUTES:
                    match = route.pattern.fullmatch(path)
                    if match and route.method == method:
                        if method != "GET":
                            self._maybe_concurrent_write(method, path, match.groupdict(), route.handler)
                        handler = getattr(self, f"_h_{route.handler}")
                        code, payload = handler(query=query, body=body, content_type=content_type, **match.groupdict())
                        return code, payload, {}
                raise ApiError(404, "the server could not find the requested resource")
            except ApiError as error:
                headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
                return error.code, error.status(), headers

    def _maybe_concurrent_write(self, method: str, path: str, params: dict[str, str], handler: str) -> None:
        for index, (fault_method, pattern) in enumerate(self._modify_before_write):
            if fault_method == method and pattern.search(path):
                del self._modify_before_write[index]
                target = self._target_of(handler, params)
                if target is not None:
                    target["metadata"]["resourceVersion"] = self._next_rv()
                    target["metadata"].setdefault("annotations", {})["example.com/touched-by"] = "someone-else"
                return

    def _target_of(self, handler: str, params: dict[str, str]) -> dict[str, Any] | None:
        if handler == "patch_node":
            return self._nodes.get(params["name"])
        if handler == "patch_configmap":
            return self._configmaps.get((params["ns"], params["name"]))
        if handler == "patch_pod":
            return self._pods.get((params["ns"], params["name"]))
        if handler == "patch_scale":
            return self._workloads.get((params["kind"], params["ns"], params["name"]))
        return None

    # --- handlers (named _h_<route handler>) ---

    @staticmethod
    def _patch_body(content_type: str, body: Any, kind: str, name: str) -> dict[str, Any]:
        media = content_type.split(";")[0].strip()
        if media == JSON_PATCH:
            if not isinstance(body, list):
                raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            raise ApiError(415, "this stand-in does not implement JSON patch operations")
        if media not in {MERGE_PATCH, STRATEGIC_MERGE_PATCH}:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}, application/apply-patch+yaml",
            )
        if not isinstance(body, dict):
            raise ApiError(400, f"invalid patch body for {kind} {name!r}")
        return body

    def _check_precondition(self, current: dict[str, Any], patch: dict[str, Any], kind: str, name: str) -> None:
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                details={"name": name, "kind": kind},
            )

    def _apply_patch(self, current: dict[str, Any], patch: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
        self._check_precondition(current, patch, kind, name)
        merged: dict[str, Any] = json_merge(current, patch)
        for immutable in ("name", "namespace", "uid", "creationTimestamp"):
            if immutable in current["metadata"]:
                merged["metadata"][immutable] = current["metadata"][immutable]
        merged["metadata"]["resourceVersion"] = self._next_rv()
        return merged

    @staticmethod
    def _not_found(kind: str, name: str) -> ApiError:
        return ApiError(404, f'{kind} "{name}" not found', details={"name": name, "kind": kind})

    def _require_namespace(self, ns: str) -> None:
        if ns not in self._namespaces:
            raise ApiError(404, f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"})

    def _h_get_node(self, name: str, **_: Any) -> tuple[int, dict[str, Any]]:
        if name not in self._nodes:
            raise self._not_found("nodes", name)
        return 200, copy.deepcopy(self._nodes[name])

    def _h_patch_node(self, name: str, body: Any, content_type: str, **_: Any) -> tuple[int, dict[str, Any]]:
        if name not in self._nodes:
            raise self._not_found("nodes", name)
        patch = self._patch_body(content_type, body, "nodes", name)
        self._nodes[name] = self._apply_patch(self._nodes[name], patch, "nodes", name)
        return 200, copy.deepcopy(self._nodes[name])

    def _h_list_pods(self, ns: str, query: dict[str, str], **_: Any) -> tuple[int, dict[str, Any]]:
        label_selector, field_selector = query.get("labelSelector", ""), query.get("fieldSelector", "")
        items = []
        for (pod_ns, _name), pod in sorted(self._pods.items()):
            if pod_ns != ns:
                continue
            labels = pod["metadata"].get("labels") or {}
            if not matches_selector(label_selector, labels.get):
                continue
            if not matches_selector(field_selector, lambda key, pod=pod: dig(pod, key)):
                continue
            item = copy.deepcopy(pod)
            item.pop("kind"), item.pop("apiVersion")
            items.append(item)
        return 200, {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _h_evict_pod(self, ns: str, name: str, body: Any, **_: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("kind") != "Eviction" or body.get("apiVersion") != "policy/v1":
            raise ApiError(400, f"expected a policy/v1 Eviction body, got {body!r}")
        if (body.get("metadata") or {}).get("name") != name:
            raise ApiError(400, "name in URL does not match name in Eviction object")
        if (ns, name) not in self._pods:
            raise self._not_found("pods", name)
        if (ns, name) in self._blocked_evictions:
            raise ApiError(
                429,
                "Cannot evict pod as it would violate the pod's disruption budget.",
                details={
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": "The disruption budget edge-media needs 2 healthy pods and has 2 currently",
                        }
                    ]
                },
            )
        pod = self._pods[(ns, name)]
        if "deletionTimestamp" not in pod["metadata"]:
            pod["metadata"]["deletionTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            pod["metadata"]["resourceVersion"] = self._next_rv()
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _workload(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        if (kind, ns, name) not in self._workloads:
            raise self._not_found(f"{kind}.apps", name)
        return self._workloads[(kind, ns, name)]

    @staticmethod
    def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": obj["status"]["replicas"], "selector": f"app.kubernetes.io/name={meta['name']}"},
        }

    def _h_get_scale(self, kind: str, ns: str, name: str, **_: Any) -> tuple[int, dict[str, Any]]:
        return 200, self._scale_of(self._workload(kind, ns, name))

    def _h_patch_scale(
        self, kind: str, ns: str, name: str, body: Any, content_type: str, **_: Any
    ) -> tuple[int, dict[str, Any]]:
        obj = self._workload(kind, ns, name)
        patch = self._patch_body(content_type, body, "scale", name)
        self._check_precondition(obj, patch, f"{obj['kind'].lower()}s.apps", name)
        replicas = (patch.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, f'Scale.autoscaling "{name}" is invalid: spec.replicas: must be a non-negative int')
        obj["spec"]["replicas"] = replicas
        obj["status"]["replicas"] = replicas
        obj["metadata"]["resourceVersion"] = self._next_rv()
        return 200, self._scale_of(obj)

    def _h_get_configmap(self, ns: str, name: str, **_: Any) -> tuple[int, dict[str, Any]]:
        self._require_namespace(ns)
        if (ns, name) not in self._configmaps:
            raise self._not_found("configmaps", name)
        return 200, copy.deepcopy(self._configmaps[(ns, name)])

    def _h_patch_configmap(
        self, ns: str, name: str, body: Any, content_type: str, **_: Any
    ) -> tuple[int, dict[str, Any]]:
        self._require_namespace(ns)
        if (ns, name) not in self._configmaps:
            raise self._not_found("configmaps", name)
        patch = self._patch_body(content_type, body, "configmaps", name)
        self._configmaps[(ns, name)] = self._apply_patch(self._configmaps[(ns, name)], patch, "configmaps", name)
        return 200, copy.deepcopy(self._configmaps[(ns, name)])

    def _h_create_configmap(self, ns: str, body: Any, **_: Any) -> tuple[int, dict[str, Any]]:
        self._require_namespace(ns)
        if not isinstance(body, dict) or body.get("kind", "ConfigMap") != "ConfigMap":
            raise ApiError(400, f"expected a ConfigMap body, got {body!r}")
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ApiError(
                422, 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
            )
        if meta.get("namespace", ns) != ns:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        if (ns, name) in self._configmaps:
            raise ApiError(
                409,
                f'configmaps "{name}" already exists',
                reason="AlreadyExists",
                details={"name": name, "kind": "configmaps"},
            )
        data = body.get("data") or {}
        if not all(isinstance(v, str) for v in data.values()):
            raise ApiError(400, "ConfigMap data values must be strings")
        created = {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": self._meta(name, ns, labels=meta.get("labels"), annotations=meta.get("annotations")),
            "data": data,
        }
        self._configmaps[(ns, name)] = created
        return 201, copy.deepcopy(created)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                code, payload, headers = server.handle(
                    self.command, self.path, self.headers.get("Content-Type", ""), raw
                )
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler
