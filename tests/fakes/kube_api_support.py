"""Pieces of the Kubernetes API stand-in (`tests/fakes/kube_api.py`) that are not the server itself:
the `Status` error type, RFC 7386 merge, label/field selector matching, and the kubeconfig that
points the real `kubernetes` client at one stand-in per region."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.kube_api import KubeApiStandIn

_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details or {}
        self.retry_after: int | None = None

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": str(self),
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def json_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def dig(obj: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def matches_selector(selector: str, lookup: Any) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if lookup(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if lookup(key) != value:
                return False
        elif lookup(term) is None:
            return False
    return True


@dataclass
class KubeconfigFile:
    """A kubeconfig with one context per region, each pointing at its own stand-in."""

    path: str
    contexts: dict[str, str] = field(default_factory=dict)  # region -> context name


def write_kubeconfig(path: str, servers: dict[str, KubeApiStandIn]) -> KubeconfigFile:
    """`servers`: region -> stand-in. Contexts are named `edge-<region>`; auth is a dummy bearer token."""
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"edge-{r}", "cluster": {"server": s.url}} for r, s in servers.items()],
        "users": [{"name": "edgeplane-controller", "user": {"token": "stand-in-token"}}],
        "contexts": [
            {"name": f"edge-{r}", "context": {"cluster": f"edge-{r}", "user": "edgeplane-controller"}} for r in servers
        ],
        "current-context": f"edge-{next(iter(servers))}",
    }
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return KubeconfigFile(path=path, contexts={r: f"edge-{r}" for r in servers})
