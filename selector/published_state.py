"""Following the steering state the controller publishes, fail-static.

The selector reads one of two documents, from a file or an HTTP URL:
- the full `SteeringState` JSON (the steering file the authority replaces atomically on the local
  stack, `FileSteeringStore`): commanded weights, and region leases (a region leased at share 0 is
  never answered);
- the weights document (`{market: {region: share}}`) the Kubernetes actuator publishes as
  `weights.json` in ConfigMap `edge-traffic-policy`, mounted into the selector's pods as a file
  (kubelet swaps the mounted file when the ConfigMap changes; a stat sees a new inode).

`PublishedStateFollower.refresh()` polls the source once: a file is re-read only when its stat
(inode, mtime, size) changes, a URL is asked with the last ETag. A document that cannot be read,
does not parse, or names another environment is an error that changes nothing: the last good
table keeps serving (fail-static), and the staleness (seconds since the source last answered
well) grows in the metrics. Before the first good document there is no table and every session is
refused with `no_steering_state`. `run()` polls until stopped, in a thread of its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import TypeAdapter, ValidationError

from controller.spec import EnvironmentSpec
from controller.steering import SteeringState
from selector.decision import PublishedSteering, SelectionTable, build_table

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""A steering state of 250 markets x 30 regions is well under 1 MB; larger is not one."""
DEFAULT_POLL_SECONDS = 0.5

_WEIGHTS_DOCUMENT = TypeAdapter(dict[str, dict[str, float]])


class SourceError(Exception):
    """The source cannot be read or does not hold a steering state (the message says which and why)."""


@dataclass(frozen=True)
class SourceRead:
    """One poll's outcome: new bytes, or `None` when the source has not changed since `token`."""

    data: bytes | None
    token: object


class SteeringSource(Protocol):
    def describe(self) -> str: ...

    def read(self, token: object) -> SourceRead:
        """The document, or `data=None` when unchanged since `token`; raises SourceError."""
        ...


class FileSource:
    """A file replaced atomically by its writer (the steering file, a mounted ConfigMap key)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def read(self, token: object) -> SourceRead:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise SourceError(f"{self.path}: not found") from None
        except OSError as error:
            raise SourceError(f"{self.path}: cannot stat: {error.strerror or error}") from None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen == token:
            return SourceRead(None, token)
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as error:
            raise SourceError(f"{self.path}: cannot read: {error.strerror or error}") from None
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SourceError(f"{self.path}: larger than {MAX_DOCUMENT_BYTES} bytes")
        return SourceRead(data, seen)


class UrlSource:
    """An HTTP(S) URL answering the document; asked with If-None-Match when it sent an ETag."""

    def __init__(self, url: str, *, timeout_seconds: float = 2.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport, follow_redirects=False)

    def describe(self) -> str:
        return self.url

    def read(self, token: object) -> SourceRead:
        headers = {"If-None-Match": token} if isinstance(token, str) and token else {}
        try:
            response = self._client.get(self.url, headers=headers)
        except httpx.HTTPError as error:
            raise SourceError(f"{self.url}: {type(error).__name__}: {error}") from None
        if response.status_code == 304 and headers:
            return SourceRead(None, token)
        if response.status_code != 200:
            raise SourceError(f"{self.url}: HTTP {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise SourceError(f"{self.url}: larger than {MAX_DOCUMENT_BYTES} bytes")
        return SourceRead(response.content, response.headers.get("ETag") or None)

    def close(self) -> None:
        self._client.close()


def source_for(location: str) -> SteeringSource:
    """`http://...` or `https://...` is a URL, anything else a file path."""
    if location.startswith(("http://", "https://")):
        return UrlSource(location)
    return FileSource(Path(location))


def parse_published(data: bytes, environment: str, where: str) -> PublishedSteering:
    """A SteeringState of `environment`, or a weights document; SourceError naming what is wrong."""
    try:
        state = SteeringState.model_validate_json(data)
    except ValidationError as state_error:
        try:
            weights = _WEIGHTS_DOCUMENT.validate_json(data)
        except ValidationError:
            first = state_error.errors(include_url=False)[0]
            path = ".".join(str(part) for part in first["loc"]) or "<document>"
            raise SourceError(
                f"{where}: {path}: {first['msg']} (neither a steering state nor a weights document)"
            ) from None
        return PublishedSteering(weights=weights)
    if state.environment != environment:
        raise SourceError(f"{where}: environment: holds {state.environment!r}, this selector serves {environment!r}")
    return PublishedSteering(
        weights=state.weights,
        lease_caps=state.lease_caps(),
        revision=state.revision,
        failed_links=tuple(state.failed_backbone_links),
        cross_border_shares=tuple(
            (c.host, c.guest, c.scenario, c.host_region, c.guest_region, c.share) for c in state.cross_border_shares
        ),
    )


class PublishedStateFollower:
    """The selection table of the last good published state, and how fresh it is (module doc)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        source: SteeringSource,
        endpoints: Mapping[str, str],
        *,
        max_endpoints: int = 3,
        clock: Callable[[], float] = time.monotonic,
        on_table: Callable[[SelectionTable], None] = lambda table: None,
        on_error: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.spec = spec
        self.source = source
        self._endpoints = dict(endpoints)
        self._max_endpoints = max_endpoints
        self._clock = clock
        self._on_table = on_table
        self._on_error = on_error
        self._token: object = None
        self.table: SelectionTable | None = None
        self.last_good_at: float | None = None
        self.last_error: str | None = None
        self.source_up = False
        self.errors = 0

    def refresh(self) -> bool:
        """Poll the source once; True when it answered well (changed or not). Never raises."""
        try:
            read = self.source.read(self._token)
            if read.data is not None:
                published = parse_published(read.data, self.spec.name, self.source.describe())
                table = build_table(self.spec, published, self._endpoints, max_endpoints=self._max_endpoints)
                self.table = table
                self._token = read.token
                self._on_table(table)
        except SourceError as error:
            self.source_up = False
            self.errors += 1
            self.last_error = str(error)
            self._on_error(self.last_error)
            return False
        self.source_up = True
        self.last_error = None
        self.last_good_at = self._clock()
        return True

    def staleness_seconds(self) -> float:
        """Seconds since the source last answered well (infinite before it ever did)."""
        if self.last_good_at is None:
            return float("inf")
        return max(0.0, self._clock() - self.last_good_at)

    def run(self, stop: threading.Event, interval_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        """Poll every `interval_seconds` until `stop` is set (the first poll is the caller's)."""
        while not stop.wait(interval_seconds):
            self.refresh()
