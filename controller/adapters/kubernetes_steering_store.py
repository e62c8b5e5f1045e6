"""KubernetesSteeringStore: the steering state and its journal in one ConfigMap, under a lease-style lock.

Implements `controller.ports.SteeringStore` for a controller running in Kubernetes, so the desired
steering state lives in etcd (durable, shared by every controller replica, readable by the region
selector) rather than on a volume. One ConfigMap (`edgeplane-steering-<env>` by default) holds:
- `data["state.json"]`: the SteeringState;
- `data["journal.json"]`: the change journal, the latest entry per (plan_id, action, target), newest
  JOURNAL_LIMIT kept (a ConfigMap holds at most 1 MiB; actions found unchanged leave no entry);
- annotations `edgeplane.io/steering-lock-holder` and `.../steering-lock-expires`: the lock.

The lock is taken with a merge patch conditioned on `metadata.resourceVersion` (the API server
answers 409 Conflict to a stale one: optimistic concurrency), like client-go's resource locks for
leader election. Every write inside a transaction is conditioned on the version of the previous
write, and extends the expiry; if another process took the lock after it expired (this one hung or
died), the next write fails with SteeringStoreError instead of overwriting it: a holder can never
commit after losing the lock. A lock whose holder died frees itself after `lock_seconds`.
Built by `edgectl/bootstrap.py` (`--steering-configmap CONTEXT/NAMESPACE/NAME`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from controller.adapters.steering_store import SteeringStoreError
from controller.steering import JournalEntry, JournalState, SteeringState

STATE_KEY = "state.json"
JOURNAL_KEY = "journal.json"
HOLDER_ANNOTATION = "edgeplane.io/steering-lock-holder"
EXPIRES_ANNOTATION = "edgeplane.io/steering-lock-expires"
MERGE_PATCH = "application/merge-patch+json"
JOURNAL_LIMIT = 1000


API_USAGE = (("", "configmaps", "get"), ("", "configmaps", "patch"), ("", "configmaps", "create"))
"""Every (api group, resource, verb) the store calls, in its ConfigMap's namespace: the least privilege
it needs (deploy/kubernetes/rbac.yaml grants exactly these; get and patch limited to its name)."""


@dataclass(frozen=True)
class ConfigMapRef:
    namespace: str
    name: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _KubeTransaction:
    def __init__(self, store: KubernetesSteeringStore, state: SteeringState, journal: list[JournalEntry], rv: str):
        self.state = state
        self._store = store
        self._journal = {e.key: e for e in journal}
        self.resource_version = rv

    def save(self, state: SteeringState) -> None:
        self._store._write(self, {STATE_KEY: state.model_dump_json()})
        self.state = state

    def find(self, key: tuple[str, str, str]) -> JournalEntry | None:
        return self._journal.get(key)

    def append(self, entry: JournalEntry) -> None:
        if entry.state is JournalState.DONE and entry.record is not None and not entry.record.changed:
            self._journal.pop(entry.key, None)  # nothing changed: nothing to reconcile, keep the map small
        else:
            self._journal.pop(entry.key, None)
            self._journal[entry.key] = entry
        kept = list(self._journal.values())[-JOURNAL_LIMIT:]
        self._journal = {e.key: e for e in kept}
        self._store._write(self, {JOURNAL_KEY: json.dumps([e.model_dump(mode="json") for e in kept])})


class KubernetesSteeringStore:
    """SteeringState and journal in one ConfigMap; transactions hold its annotation lock."""

    def __init__(
        self,
        core: k8s.CoreV1Api,
        ref: ConfigMapRef,
        environment: str,
        *,
        lock_seconds: float = 30.0,
        acquire_timeout_seconds: float = 120.0,
        request_timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._core = core
        self.ref = ref
        self.environment = environment
        self._lock_seconds = lock_seconds
        self._acquire_timeout = acquire_timeout_seconds
        self._timeout = request_timeout_seconds
        self._clock = clock
        self._sleep = sleep
        self.holder = f"edgeplane-{uuid.uuid4()}"

    @property
    def _what(self) -> str:
        return f"ConfigMap {self.ref.namespace}/{self.ref.name}"

    # ----- reading -------------------------------------------------------------------------------

    def _get(self) -> k8s.V1ConfigMap | None:
        try:
            return self._core.read_namespaced_config_map(
                self.ref.name, self.ref.namespace, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise SteeringStoreError(f"{self._what}: read: HTTP {error.status} {error.reason}") from error
        except Exception as error:  # urllib3 connection errors and timeouts
            raise SteeringStoreError(f"{self._what}: read: {error}") from error

    def _parse(self, config_map: k8s.V1ConfigMap | None) -> tuple[SteeringState, list[JournalEntry]]:
        data = (config_map.data or {}) if config_map is not None else {}
        try:
            state = (
                SteeringState.model_validate_json(data[STATE_KEY])
                if STATE_KEY in data
                else SteeringState(environment=self.environment)
            )
            journal = [JournalEntry.model_validate(e) for e in json.loads(data.get(JOURNAL_KEY, "[]"))]
        except (ValidationError, ValueError, TypeError) as error:
            raise SteeringStoreError(f"{self._what}: not a steering state: {error}") from error
        if state.environment != self.environment:
            raise SteeringStoreError(
                f"{self._what}: environment: holds {state.environment!r}, this controller serves {self.environment!r}"
            )
        return state, journal

    def read(self) -> SteeringState:
        return self._parse(self._get())[0]

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]:
        return [e for e in self._parse(self._get())[1] if e.plan_id.startswith(plan_id_prefix)]

    # ----- the lock ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_KubeTransaction]:
        tx = self._acquire()
        try:
            yield tx
        finally:
            self._release(tx)

    def _expiry(self) -> str:
        return (self._clock() + timedelta(seconds=self._lock_seconds)).isoformat()

    def _acquire(self) -> _KubeTransaction:
        deadline = time.monotonic() + self._acquire_timeout
        wait = 0.05
        while True:
            current = self._get()
            if current is None:
                if self._create_locked():
                    continue  # created with the lock ours: read it back for its version
            else:
                annotations = (current.metadata.annotations or {}) if current.metadata else {}
                holder = annotations.get(HOLDER_ANNOTATION)
                expires = annotations.get(EXPIRES_ANNOTATION, "")
                free = not holder or holder == self.holder or _expired(expires, self._clock())
                if holder == self.holder and current.metadata is not None:
                    state, journal = self._parse(current)
                    return _KubeTransaction(self, state, journal, str(current.metadata.resource_version))
                if free and current.metadata is not None:
                    rv = self._patch(
                        {
                            "metadata": {
                                "resourceVersion": current.metadata.resource_version,
                                "annotations": {HOLDER_ANNOTATION: self.holder, EXPIRES_ANNOTATION: self._expiry()},
                            }
                        }
                    )
                    if rv is not None:
                        state, journal = self._parse(current)
                        return _KubeTransaction(self, state, journal, rv)
            if time.monotonic() > deadline:
                raise SteeringStoreError(f"{self._what}: the steering lock stayed taken for {self._acquire_timeout:g}s")
            self._sleep(wait)
            wait = min(wait * 2, 1.0)

    def _create_locked(self) -> bool:
        body = k8s.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=k8s.V1ObjectMeta(
                name=self.ref.name,
                namespace=self.ref.namespace,
                labels={"app.kubernetes.io/managed-by": "edgeplane"},
                annotations={HOLDER_ANNOTATION: self.holder, EXPIRES_ANNOTATION: self._expiry()},
            ),
            data={STATE_KEY: SteeringState(environment=self.environment).model_dump_json(), JOURNAL_KEY: "[]"},
        )
        try:
            self._core.create_namespaced_config_map(self.ref.namespace, body, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 409:
                return False  # another process created it first
            raise SteeringStoreError(f"{self._what}: create: HTTP {error.status} {error.reason}") from error
        return True

    def _patch(self, patch: dict[str, Any]) -> str | None:
        """The new resourceVersion, or None on a conflict (someone wrote since the version named)."""
        try:
            answer = self._core.patch_namespaced_config_map(
                self.ref.name, self.ref.namespace, patch, _content_type=MERGE_PATCH, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 409:
                return None
            raise SteeringStoreError(f"{self._what}: patch: HTTP {error.status} {error.reason}") from error
        except Exception as error:
            raise SteeringStoreError(f"{self._what}: patch: {error}") from error
        return str(answer.metadata.resource_version) if answer.metadata is not None else None

    def _write(self, tx: _KubeTransaction, data: dict[str, str]) -> None:
        rv = self._patch(
            {
                "metadata": {
                    "resourceVersion": tx.resource_version,
                    "annotations": {EXPIRES_ANNOTATION: self._expiry()},
                },
                "data": data,
            }
        )
        if rv is None:
            raise SteeringStoreError(
                f"{self._what}: lost the steering lock (another controller took it after it expired); nothing written"
            )
        tx.resource_version = rv

    def _release(self, tx: _KubeTransaction) -> None:
        # A conflict means the lock was taken over after it expired: then it is not ours to release.
        self._patch(
            {
                "metadata": {
                    "resourceVersion": tx.resource_version,
                    "annotations": {HOLDER_ANNOTATION: None, EXPIRES_ANNOTATION: None},
                }
            }
        )


def _expired(expires: str, now: datetime) -> bool:
    try:
        return datetime.fromisoformat(expires) <= now
    except ValueError:
        return True  # unreadable: treat as free rather than locking the environment forever


def core_api(kubeconfig: str | None, context: str) -> k8s.CoreV1Api:
    """A CoreV1Api for one kubeconfig context (None: the default kubeconfig; in-cluster when `context`
    is `in-cluster`). Raises SteeringStoreError naming the context when it cannot be loaded."""
    from kubernetes import config as k8s_config

    configuration = k8s.Configuration()
    try:
        if context == "in-cluster":
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
            )
    except Exception as error:  # ConfigException, ValueError, OSError, ...
        raise SteeringStoreError(f"kubeconfig context {context!r}: {error}") from error
    configuration.retries = False
    return k8s.CoreV1Api(k8s.ApiClient(configuration))
