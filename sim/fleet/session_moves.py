"""Moving existing sessions between regions: the brief reconnect a controller asks of a breaching region's calls.

The last layer of `sim.fleet.SimulatedFleet` (after `actuation`). In a real fleet the app's signalling
tells the participants of a call to reconnect (ICE restart to another region's SFU, as a region
selector answers them); here `move_sessions` takes `sessions` of one market's calls off a region's
nodes (every scenario in proportion) and places them on the target region's READY nodes, as many as
those have room for. A reconnect disrupts the call for a moment: every moved session is counted
(`sessions_moved`, per source region), so a policy pays for the disruption it causes.
"""

from __future__ import annotations

import numpy as np

from controller.audit import AuditRecord
from sim.fleet.actuation import _ActuatedFleet
from sim.fleet.errors import InvalidActuationError, UnknownTargetError
from sim.fleet.state import _DRAINING, _READY, _ratio


class _SessionMovingFleet(_ActuatedFleet):
    """Adds `move_sessions` to the Actuator calls."""

    def move_sessions(
        self, region: str, market: str, to_region: str, sessions: float, *, plan_id: str, actor: str, reason: str
    ) -> AuditRecord:
        """Reconnect up to `sessions` of `market`'s calls on `region` to `to_region`'s ready nodes.

        Never moves a session to a region the market's jurisdictions forbid (InvalidActuationError),
        and never more than the target's ready nodes have room for: the rest stay where they are.
        """
        with self._lock:
            source = self._region(region)
            target = self._region(to_region)
            m = self._m.get(market)
            if m is None:
                raise UnknownTargetError(f"unknown market {market!r}", field="market")
            if not self._allowed[m, target.index]:
                raise InvalidActuationError(
                    f"{market} may not be served from {to_region}: outside its jurisdictions", field="to_region"
                )
            if not (sessions >= 0.0 and np.isfinite(sessions)):
                raise InvalidActuationError(f"sessions must be a finite number >= 0, got {sessions}", field="sessions")
            s, t = source.index, target.index
            carried = self._paths[m, s, :]
            available = float(carried.sum())
            ready = np.nonzero((self._node_region == t) & (self._node_state == _READY))[0]
            room = float(np.maximum(self._spn[t] - self._sessions[ready].sum(axis=1), 0.0).sum())
            count = min(float(sessions), available, room) if s != t else 0.0
            before = {"region_sessions": round(available, 3), "to_region_room": round(room, 3)}
            if count > 1e-9:
                moved = carried * (count / available)  # by scenario
                on_source = (self._node_region == s) & ((self._node_state == _READY) | (self._node_state == _DRAINING))
                region_totals = self._sessions[on_source].sum(axis=0)
                self._sessions[on_source] *= 1.0 - _ratio(moved, region_totals)[None, :]
                self._paths[m, s, :] -= moved
                amounts = np.zeros(len(self._books))
                amounts[t] = count
                incoming = np.zeros((len(self._books), len(self.scenarios)))
                incoming[t] = moved
                placed, _ = self._place(amounts, incoming)
                self._paths[m, t, :] += moved * (placed[t] / count)
                self.sessions_moved[s] += placed[t]
                count = float(placed[t])
                self._qos_cache = None
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="move_sessions",
                target=f"{region}/{market}->{to_region}",
                reason=reason,
                before=before,
                after={"moved": round(count, 3)},
            )
