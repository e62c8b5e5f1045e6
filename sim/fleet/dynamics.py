"""Time in the simulated fleet: warm start, the step (decay, drains, arrivals, placement, books), events.

One `_step(dt)` moves every cohort forward: sessions decay, draining nodes leave (dropping what is
left at their deadline), regions reconcile, arrivals follow the demand curve and are routed by the
weights (or the region selector: `sim.fleet.region_placement`) and placed, and the referee's integrals accumulate.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from sim.fleet.errors import UnknownTargetError
from sim.fleet.faults import _ImpairedFleet
from sim.fleet.state import _BOOTING, _DRAINING, _READY, EMPTY_NODE_SESSIONS, FloatArray, _ratio
from sim.traces import DemandEvent


class _SteppedFleet(_ImpairedFleet):
    """Advances simulated time."""

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by `seconds`, in steps of at most `max_step_seconds`."""
        if seconds < 0:
            raise ValueError("cannot advance by a negative time")
        with self._lock:
            remaining = seconds
            while remaining > 1e-9:
                dt = min(self.max_step_seconds, remaining)
                self._step(dt)
                remaining -= dt

    def _warm_start(self) -> None:
        """Start in steady state: offered load in place, each region sized for it at target utilisation."""
        offered = self._offered_vector(self._t)
        self._offered_track = offered[:, None] * self._mix
        self._update_impairments()
        target = self.spec.scaling.target_utilisation
        load = offered[:, None, None] * self._mix[:, None, :] * self._weights[:, :, None]  # M x R x S
        cross = None
        if self._cross is not None:
            self._cross.offered_track = self._cross.target(offered)
            cross = self._route_cross(self._cross.offered_track, None, self._t)
        slots = load.sum(axis=0)
        if self._cross is not None and cross is not None:
            slots = slots + self._cross.slots(cross)  # a cascade takes a slot in both regions
        amounts = np.zeros(len(self._books))
        for book in self._books:
            r = book.index
            total = float(load[:, r, :].sum()) if cross is None else float(slots[r].sum())
            nodes = math.ceil(total / (book.spec.sessions_per_node * target)) if total > 0 else 0
            book.desired = max(book.spec.min_nodes, min(book.spec.max_nodes, nodes))
            self._add_nodes(book, book.desired, _READY, self._t)
            amounts[r] = 0.0 if self._outage[r] else total
        placed, _ = self._place(amounts, slots)
        share = _ratio(placed, amounts)
        self._paths = load * share[None, :, None]
        if self._cross is not None and cross is not None:
            # In place from the start, like the markets' own sessions (not counted as admitted), but a
            # participant placed outside its rules is a violation from the first minute.
            admission = self._cross.admit(cross, share)
            self._give_back(admission.ghost)
            if admission.violations is not None:
                self._violations += admission.violations

    def _step(self, dt: float) -> None:
        t1 = self._t + dt
        self._t = t1
        self._qos_cache = None
        n_r = len(self._books)
        self._update_impairments()
        decay = np.exp(-dt / self._tau)
        self._paths *= decay[None, None, :]
        self._rejected_shadow *= decay[None, :]
        self._sessions *= decay[None, :]
        if self._cross is not None:
            self._cross.active *= decay[None, None, None, :]

        draining = self._node_state == _DRAINING
        if draining.any():
            load = self._sessions.sum(axis=1)
            empty = draining & (load < EMPTY_NODE_SESSIONS)
            expired = draining & ~empty & (self._deadline <= t1)
            if expired.any():
                self._dropped += np.bincount(self._node_region[expired], weights=load[expired], minlength=n_r)
            self._take_from_paths(self._remove_nodes(empty | expired))
        if self.migrate_draining_below > 0 and draining.any():
            self._migrate_nearly_empty()
        serving = np.bincount(self._node_region[self._node_state != _DRAINING], minlength=n_r)
        for book in self._books:
            if serving[book.index] != book.desired:
                self._reconcile(book)
        self._node_state[(self._node_state == _BOOTING) & (self._ready_at <= t1)] = _READY

        offered = self._offered_vector(t1)
        target = offered[:, None] * self._mix
        carried_over = self._offered_track * decay[None, :]
        arrivals = np.maximum(target - carried_over, 0.0)
        self._offered_track = carried_over + arrivals
        cross = None
        if self._cross is None:
            placement = self.region_placement.route(arrivals, self._weights, t1)
            routed = placement.routed  # M x R x S
        else:
            cross_arrivals = self._cross.arrivals(offered, decay)
            asked = arrivals + self._cross.by_host(cross_arrivals)
            placement = self.region_placement.route(asked, self._weights, t1)
            routed, cross = self._split_cross(asked, cross_arrivals, placement.routed, t1)
        self._unrouted += placement.unrouted
        incoming = routed.sum(axis=0)  # R x S
        if cross is not None:
            incoming = incoming + self._cross.slots(cross)  # type: ignore[union-attr]
        totals = incoming.sum(axis=1)
        self._failed[:, self._outage] += routed[:, self._outage, :].sum(axis=2)
        amounts = np.where(self._outage, 0.0, totals)
        placed, _ = self._place(amounts, incoming)
        share = _ratio(placed, amounts)
        self._paths += routed * share[None, :, None]
        refused = routed * np.where(self._outage, 0.0, 1.0 - share)[None, :, None]
        self._rejected += refused.sum(axis=2)
        self._rejected_shadow += refused.sum(axis=1)
        self._violations += routed.sum(axis=2) * share[None, :] * ~self._allowed
        if cross is None:
            self._admitted += float(placed.sum())
        else:
            self._admitted += float((routed * share[None, :, None]).sum())
            self._admit_cross(cross, share)

        minutes = dt / 60.0
        self._qos_cache = None
        rtt, loss, jitter = self._path_qos()
        breach = (
            (rtt[:, :, None] > self._slo_rtt[None, None, :])
            | (loss[:, :, None] > self._slo_loss[None, None, :])
            | (jitter[:, :, None] > self._slo_jitter[None, None, :])
        )
        self._qos_minutes += float((self._paths * breach).sum()) * minutes
        self._capacity_minutes += float(self._rejected_shadow.sum()) * minutes
        active_by_market = self._paths.sum(axis=(1, 2))
        if self._cross is not None:
            backbone_rtt, backbone_loss = self.backbone_qos()
            self._qos_minutes += self._cross.book_minutes(minutes, rtt, loss, backbone_rtt, backbone_loss)
            active_by_market = active_by_market + self._cross.by_host(self._cross.active.sum(axis=(1, 2, 3)))
        self._unserved_minutes += float(np.maximum(offered - active_by_market, 0.0).sum()) * minutes
        self._offered_minutes += float(offered.sum()) * minutes
        active = float(active_by_market.sum())
        self._served_minutes += active * minutes
        self._peak_active = max(self._peak_active, active)
        self._node_seconds += np.bincount(self._node_region, minlength=n_r) * dt
        # A warm pool's stopped instances are billed too (volumes), at their share of a running node's price.
        self._node_seconds += self._warm_pool_cost * dt
        self._draining_seconds += float((self._node_state == _DRAINING).sum()) * dt

    def _split_cross(
        self, asked: FloatArray, cross_arrivals: FloatArray, routed_all: FloatArray, at: float
    ) -> tuple[FloatArray, FloatArray]:
        """Split what the region placement routed for each market (`asked`, M x S: its own arrivals and its
        flows' host sides, asked together: the host side goes where the market's sessions go) back into the
        market's own (M x R x S) and the flows' cohorts placed by the port (F x R x R x S: the guest sides, and
        the host sides too where the port follows a plan that puts them elsewhere)."""
        assert self._cross is not None
        flows = self._cross.flows
        host_sides = routed_all[flows.host] * _ratio(cross_arrivals, asked[flows.host])[:, None, :]  # F x R x S
        own = np.maximum(routed_all - self._cross.by_host(host_sides), 0.0)
        return own, self._route_cross(None, host_sides, at)

    def _route_cross(self, cross_arrivals: FloatArray | None, host_sides: FloatArray | None, at: float) -> FloatArray:
        """Cohorts (F x R x R x S) for new cross-market sessions: host sides by the traffic weights unless
        given, guest sides by the guest-placement port; a guest side the port leaves out is unrouted."""
        assert self._cross is not None
        if host_sides is None:
            assert cross_arrivals is not None
            host_sides = cross_arrivals[:, None, :] * self._weights[self._cross.flows.host][:, :, None]
        assert self.guest_placement is not None  # set whenever there are flows
        cohorts = self.guest_placement.route_guests(host_sides, at)
        self._unrouted += max(float(host_sides.sum() - cohorts.sum()), 0.0)
        return cohorts

    def _admit_cross(self, cohorts: FloatArray, share: FloatArray) -> None:
        """Admit new cross-market cohorts at the regions' admitted shares (`CrossMarketCohorts.admit`) and
        book what was refused (host market, host region) or sent to a region in outage."""
        assert self._cross is not None
        admission = self._cross.admit(cohorts, share)
        self._give_back(admission.ghost)
        self._admitted += float(admission.admitted.sum())
        if admission.violations is not None:
            # Each participant outside its own market's rules is that market's violation in that region.
            self._violations += admission.violations
        if (share == 1.0).all():
            return  # nothing refused, no outage (a region in outage admits nothing)
        host = self._cross.flows.host[admission.flow]
        a, b = admission.host_region, admission.guest_region
        touches_outage = self._outage[a] | self._outage[b]
        np.add.at(self._failed, (host, a), admission.routed.sum(axis=1) * touches_outage)
        refused = (admission.routed - admission.admitted) * ~touches_outage[:, None]  # K x S
        np.add.at(self._rejected, (host, a), refused.sum(axis=1))
        np.add.at(self._rejected_shadow, host, refused)

    def _migrate_nearly_empty(self) -> None:
        """Hand the last few calls of nearly empty draining nodes to staying nodes of the same region.

        Each moved call reconnects once (counted in `migrated_sessions`, the disruption it costs); the
        node goes at once instead of waiting hours for its longest call. Only where the ready nodes
        have room for all of them below the target utilisation (placed like arrivals), so a move never
        refuses anyone nor degrades the calls already there.
        """
        load = self._sessions.sum(axis=1)
        few = (self._node_state == _DRAINING) & (load < self.migrate_draining_below)
        if not few.any():
            return
        n_r = len(self._books)
        ready = self._node_state == _READY
        region = self._node_region[ready]
        # Only into room below the planning target: a move that filled staying nodes to capacity pushed
        # their calls past the QoS knee (~0.86) to save a draining node's tail.
        room = np.maximum(self._spn[region] * self.spec.scaling.target_utilisation - load[ready], 0.0)
        room_by_region = np.bincount(region, weights=room, minlength=n_r)
        wanted = np.bincount(self._node_region[few], weights=load[few], minlength=n_r)
        moving = few & (room_by_region >= wanted)[self._node_region]
        if not moving.any():
            return
        carried = self._remove_nodes(moving)
        amounts = carried.sum(axis=1)
        placed, _ = self._place(amounts, carried)
        self._migrated += float(placed.sum())
        self._dropped += np.maximum(amounts - placed, 0.0)

    def count_refusals_from_now(self) -> None:
        """From now on, capacity-SLO minutes accrue only for sessions refused from now on.

        A refused session counts the minutes it would have lasted (`_rejected_shadow`, decaying like
        the calls it stands for), so a window whose books start mid-run (`sim.benchmark.run_policy`'s
        warm-up) would otherwise be charged, for hours, the tail of refusals made before it: the
        warm start's, by nearest region, in regions at their node ceiling. Nothing else changes:
        sessions, nodes and QoS are the same; only the attribution of those minutes.
        """
        with self._lock:
            self._rejected_shadow[:] = 0.0

    @property
    def migrated_sessions(self) -> float:
        """Calls moved off nearly empty draining nodes (one brief reconnect each) since the start."""
        return self._migrated

    def add_demand_event(
        self,
        market: str,
        peak_multiplier: float,
        ramp_seconds: float,
        duration_seconds: float,
        start: datetime | None = None,
    ) -> DemandEvent:
        """A live-commerce spike starting at `start` (default: now)."""
        with self._lock:
            if market not in self._m:
                raise UnknownTargetError(f"unknown market {market!r}", field="market")
            event = DemandEvent(
                market=market,
                start=start or self.now,
                ramp_seconds=ramp_seconds,
                peak_multiplier=peak_multiplier,
                duration_seconds=duration_seconds,
            )
            self.demand.add_event(event)
            return event

    def seconds_until_end(self) -> float:
        return (self.trace.end - self.now) / timedelta(seconds=1)
