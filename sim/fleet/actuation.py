"""Actuation of the simulated fleet (`controller.ports.Actuator`) and its audit log.

Scale, drain, undrain, traffic weights and the drain order (`controller.ports.DrainOrderPublisher`,
the media load balancer's placement hint): idempotent, and recorded as AuditRecords in
`actuations` (`changed=False` for no-ops). Each call validates everything it was given (targets,
bounds, the drain deadline's window) before it changes anything: a refused call leaves no trace in
the fleet or the audit log. The audit log keeps at most `MAX_AUDIT_TEXT_CHARS` of a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from controller.audit import AuditRecord
from sim.fleet.errors import InvalidActuationError, UnknownTargetError
from sim.fleet.observation import _ObservedFleet
from sim.fleet.state import _BOOTING, _DRAINING, _READY, _STATE_NAMES, FloatArray, _RegionBook

DRAIN_DEADLINE_PAST = timedelta(days=1)
"""A drain deadline may lie this far before the fleet's clock (it then drops what is left at once)."""
DRAIN_DEADLINE_FUTURE = timedelta(days=7)
"""...and this far after it (prod's drain deadline is 5 h; a week away is a typo, not a plan)."""
MAX_AUDIT_TEXT_CHARS = 4096
"""Longest reason an audit record keeps; the rest is cut with a marker saying how much."""
MAX_WEIGHT_SHARE = 1e6
"""Largest traffic share (shares are relative and normalised; bigger ones overflow their sum)."""


def _bounded_reason(reason: str) -> str:
    if len(reason) <= MAX_AUDIT_TEXT_CHARS:
        return reason
    marker = f" ... [{len(reason):,} chars, truncated]"
    return reason[: MAX_AUDIT_TEXT_CHARS - len(marker)] + marker


class _ActuatedFleet(_ObservedFleet):
    """Actuator calls and their audit records."""

    def _record(
        self, *, plan_id: str, actor: str, action: str, target: str, reason: str, before: Any, after: Any
    ) -> AuditRecord:
        record = AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action=action,
            target=target,
            reason=_bounded_reason(reason),
            before=before,
            after=after,
            changed=before != after,
            at=self.now,
        )
        self.actuations.append(record)
        return record

    def set_desired_nodes(
        self, region: str, desired_nodes: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Run `desired_nodes` BOOTING + READY nodes; surplus nodes with sessions wait for a drain."""
        with self._lock:
            target = self._region(region)
            low, high = target.spec.min_nodes, target.spec.max_nodes
            if isinstance(desired_nodes, bool) or not isinstance(desired_nodes, int | np.integer):
                raise InvalidActuationError(
                    f"desired_nodes must be an integer, got {desired_nodes!r}", field="desired_nodes"
                )
            desired_nodes = int(desired_nodes)
            if not low <= desired_nodes <= high:
                raise InvalidActuationError(
                    f"desired_nodes {desired_nodes} for {region} is outside its bounds {low}..{high}",
                    field="desired_nodes",
                )
            before = target.desired
            target.desired = desired_nodes
            self._reconcile(target)
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="set_desired_nodes",
                target=region,
                reason=reason,
                before={"desired_nodes": before},
                after={"desired_nodes": desired_nodes},
            )

    def drain_node(
        self, region: str, node: str, deadline: datetime, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Stop new sessions on `node`; it goes when empty or at `deadline` (then its sessions drop).
        `deadline` must be timezone-aware and within DRAIN_DEADLINE_PAST / _FUTURE of the clock."""
        with self._lock:
            target = self._region(region)
            index = self._node_index(target, node)
            if index is None and node not in target.removed:
                raise UnknownTargetError(f"unknown node {node!r} in region {target.spec.name!r}", field="node")
            deadline_at = self._checked_deadline(deadline)
            if index is None:
                # Already drained and gone: a retry of a drain that completed is a no-op.
                return self._removed_node_record(target, node, "drain_node", plan_id, actor, reason)
            before = self._node_view(index)
            self._node_state[index] = _DRAINING
            self._qos_cache = None
            self._deadline[index] = deadline_at
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="drain_node",
                target=f"{region}/{node}",
                reason=reason,
                before=before,
                after=self._node_view(index),
            )

    def _checked_deadline(self, deadline: datetime) -> float:
        """The deadline as epoch seconds, or InvalidActuationError (checked before any change: a
        year-1 deadline used to leave the node draining, its sessions dropped and no audit record)."""
        if not isinstance(deadline, datetime) or deadline.tzinfo is None or deadline.utcoffset() is None:
            raise InvalidActuationError("deadline must be a timezone-aware date and time", field="deadline")
        earliest, latest = (
            self._t - DRAIN_DEADLINE_PAST.total_seconds(),
            self._t + DRAIN_DEADLINE_FUTURE.total_seconds(),
        )
        at = deadline.timestamp()  # fine for any aware datetime; turning it back into a date is what overflowed
        if not earliest <= at <= latest:
            raise InvalidActuationError(
                f"deadline {deadline.isoformat()} is outside the window from {DRAIN_DEADLINE_PAST} before to"
                f" {DRAIN_DEADLINE_FUTURE} after the fleet's clock {self.now.isoformat()}",
                field="deadline",
            )
        return at

    def undrain_node(self, region: str, node: str, *, plan_id: str, actor: str, reason: str) -> AuditRecord:
        """Put a draining node back in service (a booting node stays booting). A node whose drain
        already finished is gone: `changed=False`, state "removed" (the scale command applied next
        boots its replacement); a node the region never had is an UnknownTargetError."""
        with self._lock:
            target = self._region(region)
            index = self._node_index(target, node)
            if index is None:
                # The drain won the race between snapshot and actuation: normal, not an error.
                return self._removed_node_record(target, node, "undrain_node", plan_id, actor, reason)
            before = self._node_view(index)
            if self._node_state[index] == _DRAINING:
                booted = self._ready_at[index] <= self._t
                self._node_state[index] = _READY if booted else _BOOTING
                self._deadline[index] = math.inf
                self._qos_cache = None
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="undrain_node",
                target=f"{region}/{node}",
                reason=reason,
                before=before,
                after=self._node_view(index),
            )

    def set_drain_order(
        self, region: str, nodes: list[str], leaving_soon: int, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord | None:
        """Tell the region's load balancer the drain order (first to drain first): from now on it packs new
        sessions onto the nodes at the end. Names it does not have (drained since) are skipped; nodes not
        named rank before every named one. An unchanged order is a no-op without a record (None): the
        controller publishes it every tick."""
        with self._lock:
            target = self._region(region)
            wanted = tuple(nodes)
            if wanted == target.drain_order:
                return None
            index = {name: i for i, name in enumerate(self._node_names) if self._node_region[i] == target.index}
            in_region = self._node_region == target.index
            self._stay_rank[in_region] = -1.0
            for rank, name in enumerate(wanted):
                i = index.get(name)
                if i is not None:
                    self._stay_rank[i] = float(rank)
            before = {"nodes": len(target.drain_order) if target.drain_order is not None else None}
            target.drain_order = wanted
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="set_drain_order",
                target=region,
                reason=reason,
                before=before,
                after={"nodes": len(wanted), "leaving_soon": leaving_soon, "first": list(wanted[:leaving_soon])[:20]},
            )

    def _removed_node_record(
        self, target: _RegionBook, node: str, action: str, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """The no-op record for a node this region once had and has removed; UnknownTargetError for a
        name it never had."""
        if node not in target.removed:
            raise UnknownTargetError(f"unknown node {node!r} in region {target.spec.name!r}", field="node")
        gone = {"state": "removed"}
        return self._record(
            plan_id=plan_id, actor=actor, action=action, target=f"{target.spec.name}/{node}",
            reason=reason, before=gone, after=gone,
        )  # fmt: skip

    def _node_view(self, index: int) -> dict[str, Any]:
        deadline = self._deadline[index]
        return {
            "state": _STATE_NAMES[int(self._node_state[index])].value,
            "deadline": None if math.isinf(deadline) else datetime.fromtimestamp(float(deadline), tz=UTC).isoformat(),
        }

    def _validated_weights(self, weights: Mapping[str, Mapping[str, float]]) -> FloatArray:
        result = self._weights.copy()
        for market, shares in weights.items():
            m = self._m.get(market)
            if m is None:
                raise UnknownTargetError(
                    f"unknown market {market!r} (markets: {', '.join(self.markets)})", field=f"weights.{market}"
                )
            row = np.zeros(len(self.region_names))
            for region, share in shares.items():
                r = self._r.get(region)
                if r is None:
                    raise UnknownTargetError(f"unknown region {region!r}", field=f"weights.{market}.{region}")
                if not isinstance(share, int | float) or not math.isfinite(share) or not 0 <= share <= MAX_WEIGHT_SHARE:
                    raise InvalidActuationError(
                        f"weight of {market}->{region} must be a number from 0 to {MAX_WEIGHT_SHARE:g}, got {share!r}",
                        field=f"weights.{market}.{region}",
                    )
                row[r] = float(share)
            total = row.sum()
            result[m] = row / total if total > 0 else row
        return result

    def set_traffic_weights(
        self, weights: Mapping[str, Mapping[str, float]], *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Set market -> region shares for new sessions. Markets not named keep their weights; each
        named market's shares are normalised to sum 1 (all zero: the market is routed nowhere)."""
        with self._lock:
            new = self._validated_weights(weights)
            rows = sorted(self._m[market] for market in weights)
            before = self._weights_dict(rows)
            changed = not np.allclose(new, self._weights, rtol=0.0, atol=1e-9)
            if changed:
                self._weights = new
            after = self._weights_dict(rows)
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="set_traffic_weights",
                target="weights:" + ",".join(self.markets[m] for m in rows),
                reason=reason,
                before=before,
                after=after if changed else before,
            )
