"""Route53WeightsActuator: the commanded traffic weights as Route 53 weighted records, for clients
that connect by hostname (the region selector steers the others, per session, without a TTL).

Implements the `set_traffic_weights` verb of `controller.ports.Actuator` (the composite actuator,
`controller/adapters/composite_actuator.py`, sends it the weights and other verbs elsewhere). The
records are the ones `infra/global_routing.py` declares: per market, a weighted set named
`<market>.markets.<media domain>`, one record per allowed region with `SetIdentifier` = region
name, and Pulumi ignoring weight changes. One call:

1. reads the zone's weighted market records (ListResourceRecordSets, paginated);
2. plans integer weights per market (`controller/dns_weights.py`: a forbidden region never gets a
   non-zero weight, an allowed served share never rounds to 0); a record of a region the market may
   not use is set to 0; an allowed region with weight but no record is an error (its record,
   health check included, is `pulumi up`'s to create);
3. writes only the records whose weight differs, as UPSERTs that copy every other field of the
   record read (TTL, target, health check), in batches (ChangeResourceRecordSets, at most
   `batch_changes` per call); nothing differs -> nothing written, `changed=False` (idempotent);
4. waits for each change to be INSYNC (GetChange), then reads the records back and checks they
   equal the plan (another writer in between -> a retryable error; the next call converges).

Throttling and PriorRequestNotComplete are retried by botocore's standard retry mode (bounded
`max_attempts`, exponential backoff with jitter); what remains, 5xx and connection errors are
retryable `ActuationError`s, other API errors (InvalidChangeBatch, NoSuchHostedZone, AccessDenied)
are not. `edgectl/bootstrap.py` builds it from the AWS settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.audit import AuditRecord
from controller.dns_weights import ForbiddenShareError, integer_weights, market_record_name
from controller.ports import ActuationError
from controller.spec import EnvironmentSpec

RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "ServiceUnavailable", "InternalError"}
)


@dataclass(frozen=True)
class Route53Settings:
    hosted_zone_id: str
    """Hosted zone holding the media domain (`edgeplane:dnsZoneId` of the Pulumi stack)."""
    media_domain: str
    """Name clients resolve, e.g. media.example.com (`edgeplane:mediaDomain`)."""
    endpoint_url: str | None = None
    """Route 53 API endpoint; None for AWS's own (tests point it at a local server)."""
    max_attempts: int = 5
    """Attempts per API call, the first included (botocore `total_max_attempts`, standard mode: Throttling
    and PriorRequestNotComplete retried with backoff)."""
    batch_changes: int = 400
    """Changes per ChangeResourceRecordSets call (an UPSERT counts twice against Route 53's 1,000)."""
    insync_timeout_seconds: float = 120.0
    """Longest wait for a change to be INSYNC (Route 53 usually takes well under a minute)."""
    insync_poll_seconds: float = 2.0


def route53_client(settings: Route53Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": settings.max_attempts})
    # Route 53 is global; its control plane lives in us-east-1.
    return boto3.client("route53", region_name="us-east-1", endpoint_url=settings.endpoint_url, config=config)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Route53WeightsActuator:
    """Market weights as Route 53 weighted records (see module doc)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        settings: Route53Settings,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._spec = spec
        self._settings = settings
        self._client = client if client is not None else route53_client(settings)
        self._sleep = sleep
        self._clock = clock
        self._names = {market_record_name(m.code, settings.media_domain): m.code for m in spec.markets}

    # ----- the verb ------------------------------------------------------------------------------

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        planned: dict[str, dict[str, int]] = {}
        for market, shares in weights.items():
            try:
                planned[market] = integer_weights(self._spec, market, shares)
            except ForbiddenShareError as error:
                raise ActuationError(f"Route 53 weights (plan {plan_id}): {error}", retryable=False) from error
        records = self._read_records()
        before = {m: {r: int(rec.get("Weight", 0)) for r, rec in records.get(m, {}).items()} for m in planned}
        changes = []
        for market, wanted in sorted(planned.items()):
            present = records.get(market, {})
            missing = sorted(r for r, w in wanted.items() if w > 0 and r not in present)
            if missing:
                raise ActuationError(
                    f"Route 53 zone {self._settings.hosted_zone_id}: "
                    f"{market_record_name(market, self._settings.media_domain)} has no record for "
                    f"{', '.join(missing)} (set identifier = region); `pulumi up` creates them, health checks included",
                    retryable=False,
                )
            for region, record in sorted(present.items()):
                weight = wanted.get(region, 0)  # a record of a region the market may not use: 0, always
                if int(record.get("Weight", -1)) != weight:
                    changes.append({"Action": "UPSERT", "ResourceRecordSet": {**record, "Weight": weight}})
        expected = {m: {r: wanted.get(r, 0) for r in records.get(m, {})} for m, wanted in planned.items()}
        if changes:
            comment = f"edgeplane plan {plan_id} by {actor}"[:256]
            for start in range(0, len(changes), self._settings.batch_changes):
                self._wait_insync(self._change(comment, changes[start : start + self._settings.batch_changes]))
            self._verify(expected)
        return AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action="set_traffic_weights",
            target=f"route53:{self._settings.hosted_zone_id}",
            reason=reason,
            before=before,
            after=expected,
            changed=bool(changes),
            at=self._clock(),
        )

    # ----- writing, reading, waiting, verifying --------------------------------------------------

    def _change(self, comment: str, batch: list[dict[str, Any]]) -> str:
        """One ChangeResourceRecordSets call; the change id to wait on."""
        answer = self._call(
            "ChangeResourceRecordSets",
            lambda: self._client.change_resource_record_sets(
                HostedZoneId=self._settings.hosted_zone_id, ChangeBatch={"Comment": comment, "Changes": batch}
            ),
        )
        return str(answer["ChangeInfo"]["Id"])

    def _read_records(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Market -> region (set identifier) -> the weighted record as Route 53 holds it."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for record in self._all_records():
            market = self._names.get(record["Name"].lower())
            if market is None or "Weight" not in record or "SetIdentifier" not in record:
                continue
            found.setdefault(market, {})[record["SetIdentifier"]] = record
        return found

    def _all_records(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"HostedZoneId": self._settings.hosted_zone_id}
        while True:
            page = self._call("ListResourceRecordSets", lambda: self._client.list_resource_record_sets(**kwargs))
            yield from page["ResourceRecordSets"]
            if not page.get("IsTruncated"):
                return
            kwargs["StartRecordName"] = page["NextRecordName"]
            kwargs["StartRecordType"] = page["NextRecordType"]
            if "NextRecordIdentifier" in page:
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            else:
                kwargs.pop("StartRecordIdentifier", None)

    def _wait_insync(self, change_id: str) -> None:
        deadline = time.monotonic() + self._settings.insync_timeout_seconds
        while True:
            info = self._call("GetChange", lambda: self._client.get_change(Id=change_id))["ChangeInfo"]
            if info["Status"] == "INSYNC":
                return
            if time.monotonic() >= deadline:
                raise ActuationError(
                    f"Route 53 change {change_id} still {info['Status']} after "
                    f"{self._settings.insync_timeout_seconds:g} s (written; the retry verifies it)",
                    retryable=True,
                )
            self._sleep(self._settings.insync_poll_seconds)

    def _verify(self, expected: Mapping[str, Mapping[str, int]]) -> None:
        records = self._read_records()
        seen = {m: {r: int(rec.get("Weight", -1)) for r, rec in records.get(m, {}).items()} for m in expected}
        differ = sorted(m for m in expected if seen[m] != dict(expected[m]))
        if differ:
            detail = "; ".join(f"{m}: wanted {dict(expected[m])}, read {seen[m]}" for m in differ[:3])
            raise ActuationError(f"Route 53 read-back differs from the plan ({detail})", retryable=True)

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        try:
            return call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            message = error.response.get("Error", {}).get("Message", "")
            retryable = code in RETRYABLE_CODES or status >= 500
            raise ActuationError(
                f"Route 53 {operation} (zone {self._settings.hosted_zone_id}): {code or status}: {message}",
                retryable=retryable,
            ) from error
        except (NoCredentialsError, PartialCredentialsError) as error:  # configuration: waiting will not help
            raise ActuationError(f"Route 53 {operation}: {error}", retryable=False) from error
        except BotoCoreError as error:  # connection refused, timeouts
            raise ActuationError(f"Route 53 {operation}: {error}", retryable=True) from error
