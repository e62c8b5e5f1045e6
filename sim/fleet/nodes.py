"""Node lifecycle and session placement of the simulated fleet.

Booting, removing and reconciling nodes to the desired count (never removing a node that carries
sessions), placing new sessions onto READY nodes, and the utilisation that drives QoS.

Placement is the media load balancer's policy. In a region whose controller published a drain order
(`Plan.drain_order`), it packs new sessions onto the nodes that stay longest, each up to the
target utilisation, and water-fills only what they cannot take; elsewhere it water-fills (least
loaded first), which spreads every call over every node, including the ones drained next.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from sim.fleet.state import (
    _BOOTING,
    _DRAINING,
    _READY,
    EMPTY_NODE_SESSIONS,
    FloatArray,
    _FleetState,
    _ratio,
    _RegionBook,
)


class _NodeLifecycle(_FleetState):
    """Adds, removes and fills nodes."""

    def _add_nodes(self, book: _RegionBook, count: int, state: int, ready_at: float) -> None:
        if count <= 0:
            return
        self._qos_cache = None
        for _ in range(count):
            book.serial += 1
            self._node_names.append(f"{book.spec.name}-{book.serial:04d}")
        self._node_region = np.concatenate([self._node_region, np.full(count, book.index, dtype=np.int64)])
        self._node_state = np.concatenate([self._node_state, np.full(count, state, dtype=np.int8)])
        self._ready_at = np.concatenate([self._ready_at, np.full(count, ready_at)])
        self._deadline = np.concatenate([self._deadline, np.full(count, math.inf)])
        self._stay_rank = np.concatenate([self._stay_rank, np.full(count, -1.0)])
        self._sessions = np.concatenate([self._sessions, np.zeros((count, self._sessions.shape[1]))])

    def _remove_nodes(self, mask: NDArray[np.bool_]) -> FloatArray:
        """Remove the nodes in `mask`; return the sessions they carried per region x scenario."""
        carried = np.zeros((len(self._books), self._sessions.shape[1]))
        if not mask.any():
            return carried
        self._qos_cache = None
        np.add.at(carried, self._node_region[mask], self._sessions[mask])
        for i in np.nonzero(mask)[0]:
            self._books[self._node_region[i]].removed.add(self._node_names[i])
        keep = ~mask
        self._node_names = [name for name, kept in zip(self._node_names, keep, strict=True) if kept]
        self._node_region = self._node_region[keep]
        self._node_state = self._node_state[keep]
        self._ready_at = self._ready_at[keep]
        self._deadline = self._deadline[keep]
        self._stay_rank = self._stay_rank[keep]
        self._sessions = self._sessions[keep]
        return carried

    def _place(self, amounts: FloatArray, incoming: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Place `amounts[r]` new sessions (scenario mix from `incoming[r]`) in each region: packed by the
        drain order where one was published, then water-filled. Returns placed per region (and the mix)."""
        packed = np.array([book.drain_order is not None for book in self._books])
        if not packed.any() or not (amounts > 0).any():
            return self._water_fill(amounts, incoming)
        first, composition = self._pack(np.where(packed, amounts, 0.0), incoming)
        rest, _ = self._water_fill(np.maximum(amounts - first, 0.0), incoming)
        # Rounding in the two prefix sums may place a hair more than asked, which would read as negative refusals.
        return np.minimum(first + rest, amounts), composition

    def _pack(self, amounts: FloatArray, incoming: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Fill each region's READY nodes in drain order, the last to drain first, each up to the target
        utilisation, with `amounts[r]` new sessions. Vectorised like `_water_fill`: sort by (region,
        stay rank), then a per-segment prefix sum of room says how much reaches each node."""
        n_r = len(self._books)
        totals = incoming.sum(axis=1)
        composition = _ratio(incoming, totals[:, None])
        ready = np.nonzero(self._node_state == _READY)[0]
        if len(ready) == 0:
            return np.zeros(n_r), composition
        region = self._node_region[ready]
        loads = self._sessions[ready].sum(axis=1)
        room = np.maximum(self._spn[region] * self.spec.scaling.target_utilisation - loads, 0.0)
        order = np.lexsort((-self._stay_rank[ready], region))
        sorted_region = region[order]
        sorted_room = room[order]
        cumulative = np.cumsum(sorted_room)
        starts = np.searchsorted(sorted_region, np.arange(n_r))
        segment_start = np.concatenate([[0.0], cumulative])[starts]
        room_before = cumulative - sorted_room - segment_start[sorted_region]
        fill = np.clip(amounts[sorted_region] - room_before, 0.0, sorted_room)
        delta = np.zeros(len(ready))
        delta[order] = fill
        self._sessions[ready] += delta[:, None] * composition[region]
        return np.bincount(region, weights=delta, minlength=n_r).astype(np.float64), composition

    def _water_fill(self, amounts: FloatArray, incoming: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Water-fill `amounts[r]` new sessions (scenario mix from `incoming[r]`) onto each region's
        READY nodes, least-loaded first, up to `sessions_per_node`. Returns placed per region (and
        the composition used). Vectorised over all regions at once: sort by (region, load), then a
        per-segment prefix sum gives each region's water level."""
        n_r = len(self._books)
        placed = np.zeros(n_r)
        totals = incoming.sum(axis=1)
        composition = _ratio(incoming, totals[:, None])
        ready = np.nonzero(self._node_state == _READY)[0]
        if len(ready) == 0 or not (amounts > 0).any():
            return placed, composition
        region = self._node_region[ready]
        loads = self._sessions[ready].sum(axis=1)
        capacity = self._spn[region]
        room = np.maximum(capacity - loads, 0.0)
        room_by_region = np.bincount(region, weights=room, minlength=n_r)
        wanted = np.minimum(amounts, room_by_region)
        order = np.argsort(region + loads / (capacity + 1.0), kind="stable")  # by region, then load
        sorted_region = region[order]
        sorted_loads = loads[order]
        starts = np.searchsorted(sorted_region, np.arange(n_r))
        cumulative = np.cumsum(sorted_loads)
        before = np.concatenate([[0.0], cumulative])[starts]
        rank = np.arange(len(order)) - starts[sorted_region] + 1
        levels = (wanted[sorted_region] + cumulative - before[sorted_region]) / rank
        valid = levels >= sorted_loads - 1e-12
        count = np.bincount(sorted_region, weights=valid, minlength=n_r).astype(np.int64)
        level = np.zeros(n_r)
        has = count > 0
        level[has] = levels[starts[has] + count[has] - 1]
        full = wanted >= room_by_region - 1e-9
        level[full] = self._spn[full]
        delta = np.minimum(np.maximum(level[region] - loads, 0.0), room)
        delta_by_region = np.bincount(region, weights=delta, minlength=n_r)
        scale = _ratio(wanted, delta_by_region)
        delta *= scale[region]
        self._sessions[ready] += delta[:, None] * composition[region]
        placed = np.where(delta_by_region > 0, wanted, 0.0)
        return placed, composition

    def _take_from_paths(self, carried: FloatArray) -> None:
        """Remove `carried` sessions (region x scenario) from the regions' market mix, proportionally."""
        if not carried.any():
            return
        totals = self._paths.sum(axis=0)
        if self._cross is not None:
            totals = totals + self._cross.slots(self._cross.active)
        keep = np.where(totals > 0, 1.0 - _ratio(carried, totals), 0.0)
        self._paths *= np.minimum(np.maximum(keep, 0.0), 1.0)[None, :, :]
        if self._cross is not None:
            self._give_back(self._cross.take(np.minimum(np.maximum(keep, 0.0), 1.0)))

    def _give_back(self, slots: FloatArray) -> None:
        """Free `slots` (region x scenario) on the nodes that carry sessions (ready and draining), in
        proportion to what each holds: the surviving end of a cascade whose other end is gone or refused."""
        if not (slots > 1e-12).any():
            return
        carrying = self._node_state != _BOOTING
        region = self._node_region[carrying]
        held = np.zeros_like(slots)
        np.add.at(held, region, self._sessions[carrying])
        keep = 1.0 - np.minimum(_ratio(slots, held), 1.0)
        self._sessions[carrying] *= keep[region]
        self._qos_cache = None

    def _reconcile(self, book: _RegionBook) -> None:
        """Bring BOOTING + READY nodes to `desired` without ever removing a node that has sessions."""
        in_region = self._node_region == book.index
        serving = in_region & (self._node_state != _DRAINING)
        count = int(serving.sum())
        if book.desired > count:
            wanted = book.desired - count
            if self.instant_boot:
                self._add_nodes(book, wanted, _READY, self._t)
                return
            warm = self._draw_warm_pool(book, wanted)
            if warm:
                self._add_nodes(book, warm, _BOOTING, self._t + float(book.spec.warm_pool.warm_start_seconds))  # type: ignore[union-attr]
            self._add_nodes(book, wanted - warm, _BOOTING, self._t + float(book.spec.node_boot_seconds))
            return
        surplus = count - book.desired
        if surplus <= 0:
            return
        mask = np.zeros(len(self._node_names), dtype=bool)
        booting = np.nonzero(in_region & (self._node_state == _BOOTING))[0]
        for i in booting[np.argsort(-self._ready_at[booting], kind="stable")][:surplus]:
            mask[i] = True
        surplus -= int(mask.sum())
        if surplus > 0 and not (in_region & (self._node_state == _DRAINING)).any():
            empty = in_region & (self._node_state == _READY) & (self._sessions.sum(axis=1) < EMPTY_NODE_SESSIONS)
            for i in np.nonzero(empty)[0][::-1][:surplus]:
                mask[i] = True
        self._take_from_paths(self._remove_nodes(mask))

    def _draw_warm_pool(self, book: _RegionBook, wanted: int) -> int:
        """Take up to `wanted` initialised instances from the region's warm pool; each is replaced by a
        launch that is ready for the pool a full boot later. Returns how many were drawn.

        The replacement runs through its initialisation (a full boot) before it stops, and a running
        instance is billed at full price: each draw pays `node_boot_seconds` of a node, at the draw."""
        drawn = 0
        slots = book.warm_ready_at
        boot = float(book.spec.node_boot_seconds)
        for i, ready_at in enumerate(slots):
            if drawn == wanted:
                break
            if ready_at <= self._t:
                slots[i] = self._t + boot
                drawn += 1
        self._node_seconds[book.index] += drawn * boot
        return drawn

    def _utilisation(self) -> FloatArray:
        """Per region: sessions / capacity of the nodes that carry sessions (ready + draining)."""
        n_r = len(self._books)
        carrying = self._node_state != _BOOTING
        region = self._node_region[carrying]
        sessions = np.bincount(region, weights=self._sessions[carrying].sum(axis=1), minlength=n_r)
        capacity = np.bincount(region, minlength=n_r) * self._spn
        return _ratio(sessions, capacity.astype(np.float64))
