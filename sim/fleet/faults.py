"""Impairments on the simulated fleet: which are active, their effect on QoS, outages and node loss.

Scenario control (`inject_impairment`, `clear_impairment`) and the per-path QoS (`sim.qos` plus the
active impairments), cached until nodes or impairments change.
"""

from __future__ import annotations

import math

import numpy as np

from controller.core.backbone_health import unloaded_backbone_rtt
from sim import qos
from sim.fleet.errors import UnknownTargetError
from sim.fleet.nodes import _NodeLifecycle
from sim.fleet.state import _READY, OUTAGE_LOSS, FloatArray
from sim.impairments import Impairment, ImpairmentKind


class _ImpairedFleet(_NodeLifecycle):
    """Applies impairments and computes path QoS."""

    _backbone_cache: tuple[frozenset[str], FloatArray, FloatArray] | None = None

    def _update_impairments(self) -> None:
        t = self._t
        active = {i for i, (begin, end) in self._impairment_windows.items() if begin <= t < end}
        if active == self._active_impairments:
            return
        started = active - self._active_impairments
        self._qos_cache = None
        self._active_impairments = active
        self._extra_loss[:] = 0.0
        self._extra_jitter[:] = 0.0
        self._extra_rtt[:] = 0.0
        self._outage[:] = False
        for impairment_id in sorted(active):
            imp = self._impairments[impairment_id]
            if imp.peer_region is not None:
                continue  # the backbone's (`backbone_qos`), not an access path's
            r = self._r[imp.region]
            rows = slice(None) if imp.market is None else self._m[imp.market]
            if imp.kind is ImpairmentKind.EXTRA_LOSS:
                self._extra_loss[rows, r] += imp.magnitude
            elif imp.kind is ImpairmentKind.EXTRA_JITTER:
                self._extra_jitter[rows, r] += imp.magnitude
            elif imp.kind is ImpairmentKind.EXTRA_RTT:
                self._extra_rtt[rows, r] += imp.magnitude
            elif imp.kind is ImpairmentKind.OUTAGE:
                self._outage[r] = True
        for impairment_id in sorted(started):
            imp = self._impairments[impairment_id]
            book = self._books[self._r[imp.region]]
            in_region = self._node_region == book.index
            if imp.kind is ImpairmentKind.OUTAGE:
                lost = np.zeros((len(self._books), self._sessions.shape[1]))
                lost[book.index] = self._sessions[in_region].sum(axis=0)
                self._sessions[in_region] = 0.0
                self._lose(lost)
            elif imp.kind is ImpairmentKind.NODE_LOSS:
                ready = np.nonzero(in_region & (self._node_state == _READY))[0]
                count = round(imp.magnitude * len(ready))
                if count:
                    victims = self._rng.choice(ready, size=count, replace=False)
                    mask = np.zeros(len(self._node_names), dtype=bool)
                    mask[victims] = True
                    self._lose(self._remove_nodes(mask))
                    self._reconcile(book)

    def _lose(self, carried: FloatArray) -> None:
        """Sessions vanish because of an impairment (not the controller's doing)."""
        self._lost += carried.sum(axis=1)
        self._take_from_paths(carried)

    def _path_qos(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """QoS of every path now; cached until the next step or change of nodes or impairments."""
        if self._qos_cache is None:
            self._qos_cache = self._compute_path_qos()
        return self._qos_cache

    def _compute_path_qos(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        u = self._utilisation()[None, :]
        rtt = qos.rtt_p95_ms(self._base_rtt, u) + self._extra_rtt
        loss = np.minimum(qos.loss_ratio(np.broadcast_to(u, self._base_rtt.shape)) + self._extra_loss, 1.0)
        loss[:, self._outage] = OUTAGE_LOSS
        jitter = qos.jitter_ms(self._base_rtt, u) + self._extra_jitter
        return rtt, loss, jitter

    def backbone_qos(self) -> tuple[FloatArray, FloatArray]:
        """(R x R p95 RTT, R x R loss) of every backbone path now, with the active backbone impairments.
        Cached until the active impairments change (the fleet judges cross-market sessions every step)."""
        active = frozenset(self._active_impairments)
        cached = self._backbone_cache
        if cached is not None and cached[0] == active:
            return cached[1], cached[2]
        rtt, loss = self._compute_backbone_qos()
        self._backbone_cache = (active, rtt, loss)
        return rtt, loss

    def _compute_backbone_qos(self) -> tuple[FloatArray, FloatArray]:
        base = unloaded_backbone_rtt(self.spec)
        extra_rtt = np.zeros_like(base)
        extra_loss = np.zeros_like(base)
        for impairment_id in sorted(self._active_impairments):
            imp = self._impairments[impairment_id]
            if imp.peer_region is None:
                continue
            i, j = self._r[imp.region], self._r[imp.peer_region]
            target = extra_rtt if imp.kind is ImpairmentKind.EXTRA_RTT else extra_loss
            target[i, j] += imp.magnitude
            target[j, i] += imp.magnitude
        return qos.backbone_rtt_p95_ms(base, extra_rtt), qos.backbone_loss_ratio(extra_loss)

    def inject_impairment(self, impairment: Impairment) -> str:
        """Add a fault; returns its id (for `clear_impairment`)."""
        with self._lock:
            if impairment.region not in self._r:
                raise UnknownTargetError(f"unknown region {impairment.region!r}", field="region")
            if impairment.peer_region is not None and impairment.peer_region not in self._r:
                raise UnknownTargetError(f"unknown region {impairment.peer_region!r}", field="peer_region")
            if impairment.market is not None and impairment.market not in self._m:
                raise UnknownTargetError(f"unknown market {impairment.market!r}", field="market")
            self._impairment_seq += 1
            impairment_id = f"imp-{self._impairment_seq}"
            self._impairments[impairment_id] = impairment
            self._impairment_windows[impairment_id] = (
                impairment.start.timestamp() if impairment.start is not None else -math.inf,
                impairment.end.timestamp() if impairment.end is not None else math.inf,
            )
            if hasattr(self, "actuations"):
                self._update_impairments()
            return impairment_id

    def clear_impairment(self, impairment_id: str) -> None:
        with self._lock:
            if impairment_id not in self._impairments:
                raise UnknownTargetError(f"unknown impairment {impairment_id!r}", field="id")
            del self._impairments[impairment_id]
            del self._impairment_windows[impairment_id]
            self._update_impairments()
