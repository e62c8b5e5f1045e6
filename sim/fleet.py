"""SimulatedFleet: a deterministic, seeded, fluid model of the edge fleet (regions, nodes, sessions).

Role: the world the controller acts on when there is no real fleet. It builds FleetSnapshots
directly from its state (`snapshot()`), implements the `controller.ports.Actuator` Protocol
(`set_desired_nodes`, `drain_node`, `undrain_node`, `set_traffic_weights`, all idempotent and
audited), and keeps the referee's books (`accounting()`): node-hours, rejected/dropped sessions,
residency violations and SLO session-minutes, computed independently of any controller.
Neighbours: `sim.demand` (offered sessions), `sim.qos` (path QoS), `sim.traces` and
`sim.impairments` (scenarios), `sim.http_api` (serves it in real time), `sim.benchmark` (drives it
in fast-forward).

Model (fluid/cohort, not one object per session, so prod's ~250k sessions run days in seconds):
- Sessions are counts per node x scenario and per market x region x scenario. Every step of `dt`
  each cohort decays by `exp(-dt / mean_session)` (exponential session lengths per scenario).
- Arrivals: the offered concurrency of each market x scenario follows the demand curve; the
  arrivals of a step are what keeps it there (`max(0, O(t+dt) - O(t) * decay)`). They are routed to
  regions by the traffic weights in force (default: each market to its lowest-RTT allowed region)
  and placed on READY nodes with room, least-loaded first (water-filling).
- Capacity: a node carries `sessions_per_node` sessions. Arrivals beyond the ready room are
  REJECTED (never admitted degraded: `degraded_sessions` stays 0 and is exported for the contract).
  Rejected sessions keep a shadow cohort that decays like real ones; its session-minutes are
  `capacity_slo_session_minutes`.
- Nodes: `desired_nodes` counts the nodes meant to serve (BOOTING + READY); DRAINING nodes are on
  their way out and do not count. Below desired the region boots nodes (ready after
  `node_boot_seconds`). Above desired it first cancels booting nodes; then, only when no node is
  draining, it removes EMPTY ready nodes; it never removes a ready node that carries sessions:
  the controller must drain surplus nodes. A draining node takes no new sessions and is removed
  when empty (< 0.5 sessions) or at its deadline; sessions still on it then count as
  `dropped_sessions` (the controller's doing). Every node that exists is paid for (node-hours).
- Residency: sessions admitted in a region outside their market's allowed regions count as
  `residency_violations`. The fleet still routes them (it is the referee, not a guard).
- QoS: `sim.qos` per path from base RTT, region utilisation and impairments; session-minutes on
  paths breaching their scenario's SLO are `qos_slo_session_minutes`.
- Impairments (`sim.impairments`): outage loses the region's sessions (`lost_sessions`) and makes
  new ones fail (`failed_sessions`); node_loss kills a share of ready nodes (replacements boot).
- `unserved_session_minutes` integrates offered minus active sessions over all markets, whatever
  the cause (rejected, dropped, lost, failed, unrouted).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from controller.audit import AuditRecord
from controller.snapshot import (
    FleetSnapshot,
    MarketDemand,
    NodeObservation,
    NodeState,
    PathObservation,
    RegionObservation,
)
from controller.spec import EnvironmentSpec, RegionSpec
from sim import qos
from sim.demand import DemandModel
from sim.impairments import Impairment, ImpairmentKind
from sim.traces import DemandEvent, Trace

FloatArray = NDArray[np.float64]

_BOOTING, _READY, _DRAINING = 0, 1, 2
_STATE_NAMES = {_BOOTING: NodeState.BOOTING, _READY: NodeState.READY, _DRAINING: NodeState.DRAINING}
EMPTY_NODE_SESSIONS = 0.5
"""A node with fewer (fluid) sessions than this is empty: it can be removed without dropping anyone."""
IDLE_CPU = 0.05
"""CPU share a node uses with no sessions; CPU = IDLE_CPU + (1 - 2 * IDLE_CPU) * sessions / capacity."""
TREND_WINDOW_SECONDS = 300.0
OUTAGE_LOSS = 1.0


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def _ratio(numerator: NDArray[Any], denominator: NDArray[Any]) -> FloatArray:
    """numerator / denominator where the denominator is positive, else 0 (no warnings, no NaN)."""
    out = np.zeros(np.broadcast_shapes(np.shape(numerator), np.shape(denominator)))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _trusted(cls: type[_ModelT], **values: Any) -> _ModelT:
    """Build a pydantic model from values the fleet computed itself, skipping validation.

    Same result as `cls.model_construct(**values)` when every field is given (which callers here
    do), about ten times faster: a prod snapshot has ~2k nodes and benchmarks take one per tick.
    `tests/sim/test_snapshot.py` checks the result round-trips through full validation.
    """
    instance = cls.__new__(cls)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class UnknownTargetError(LookupError):
    """A region, node, market or impairment named in a call does not exist (HTTP 404)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidActuationError(ValueError):
    """The call names real things but asks for something impossible (HTTP 422)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class FleetAccounting(BaseModel):
    """The referee's books since the fleet started (all counts are fluid, hence floats)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(description="EnvironmentSpec name.")
    trace: str = Field(description="Trace name and version, e.g. bench-3day@1.")
    seed: int = Field(description="Seed of the run.")
    started_at: AwareDatetime = Field(description="Simulated start.")
    now: AwareDatetime = Field(description="Simulated time of these books.")
    simulated_seconds: float = Field(description="Simulated time elapsed.")
    node_hours: float = Field(description="Hours of every existing node (booting, ready, draining).")
    node_hours_by_region: dict[str, float] = Field(description="node_hours per region.")
    draining_node_hours: float = Field(
        default=0.0, description="The part of node_hours spent by draining nodes (billed until their last call ends)."
    )
    offered_session_minutes: float = Field(description="Session-minutes users asked for.")
    served_session_minutes: float = Field(description="Session-minutes carried by the fleet.")
    admitted_sessions: float = Field(description="Sessions placed on a node.")
    rejected_sessions: float = Field(description="Arrivals refused for lack of ready capacity.")
    degraded_sessions: float = Field(description="Admitted beyond capacity (the model never does: 0).")
    dropped_sessions: float = Field(description="Sessions cut when a draining node hit its deadline.")
    lost_sessions: float = Field(description="Sessions cut by impairments (outage, node loss).")
    failed_sessions: float = Field(description="Arrivals sent to a region in outage or to no region.")
    residency_violations: float = Field(description="Sessions admitted outside their market's allowed regions.")
    qos_slo_session_minutes: float = Field(description="Session-minutes on paths breaching their scenario SLO.")
    capacity_slo_session_minutes: float = Field(description="Session-minutes of sessions rejected for capacity.")
    unserved_session_minutes: float = Field(description="Integral of (offered - active) sessions, in minutes.")
    active_sessions: float = Field(description="Sessions active now.")
    peak_active_sessions: float = Field(description="Most sessions active at once.")


class FleetCounters(BaseModel):
    """Monotone counters for the Prometheus exporter (labels as in controller.metric_names)."""

    model_config = ConfigDict(frozen=True)

    rejected: dict[tuple[str, str], float]
    degraded: dict[tuple[str, str], float]
    residency_violations: dict[tuple[str, str], float]
    dropped: dict[str, float]


class _RegionBook:
    """Per-region bookkeeping that is not per node: desired count, name serial, removed names."""

    def __init__(self, spec: RegionSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.desired = 0
        self.serial = 0
        self.removed: set[str] = set()


class SimulatedFleet:
    """The simulated fleet; satisfies `controller.ports.Actuator`. Thread-safe (one lock)."""

    def __init__(
        self,
        spec: EnvironmentSpec,
        trace: Trace,
        seed: int = 0,
        start: datetime | None = None,
        *,
        max_step_seconds: float = 15.0,
        instant_boot: bool = False,
        demand_variation: float = 0.03,
        initial_weights: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.spec = spec
        self.trace = trace
        self.seed = seed
        self.max_step_seconds = max_step_seconds
        self.instant_boot = instant_boot
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(seed)
        self._t0 = (start or trace.start).timestamp()
        self._t = self._t0
        self.demand = DemandModel(spec, trace, seed, variation=demand_variation)

        self.markets = [m.code for m in spec.markets]
        self.region_names = [r.name for r in spec.regions]
        self.scenarios = list(spec.scenarios)
        self._m = {code: i for i, code in enumerate(self.markets)}
        self._r = {name: i for i, name in enumerate(self.region_names)}
        n_m, n_r, n_s = len(self.markets), len(self.region_names), len(self.scenarios)
        self._mix = np.array([[m.demand.scenario_mix.get(s, 0.0) for s in self.scenarios] for m in spec.markets])
        self._tau = np.array([spec.scenarios[s].mean_session_minutes * 60.0 for s in self.scenarios])
        self._slo_rtt = np.array([spec.scenarios[s].rtt_p95_ms for s in self.scenarios])
        self._slo_loss = np.array([spec.scenarios[s].max_loss_ratio for s in self.scenarios])
        self._slo_jitter = np.array([spec.scenarios[s].max_jitter_ms for s in self.scenarios])
        self._base_rtt = np.array([[spec.base_rtt_ms(m, r) for r in self.region_names] for m in self.markets])
        self._allowed = np.array(
            [[r in spec.allowed_regions(m) for r in self.region_names] for m in self.markets], dtype=bool
        )
        self._books = [_RegionBook(r, i) for i, r in enumerate(spec.regions)]
        self._spn = np.array([r.sessions_per_node for r in spec.regions], dtype=np.float64)
        # Every node of the fleet, as parallel arrays (fast numpy steps over ~2k prod nodes).
        self._node_names: list[str] = []
        self._node_region = np.zeros(0, dtype=np.int64)
        self._node_state = np.zeros(0, dtype=np.int8)
        self._ready_at = np.zeros(0)
        self._deadline = np.zeros(0)
        self._sessions = np.zeros((0, n_s))

        self._weights = np.zeros((n_m, n_r))
        for m in range(n_m):
            allowed = np.nonzero(self._allowed[m])[0]
            nearest = allowed[np.argmin(self._base_rtt[m, allowed])]
            self._weights[m, nearest] = 1.0
        if initial_weights is not None:
            self._weights = self._validated_weights(initial_weights)

        self._paths = np.zeros((n_m, n_r, n_s))
        self._offered_track = np.zeros((n_m, n_s))
        self._rejected_shadow = np.zeros((n_m, n_s))
        self._rejected = np.zeros((n_m, n_r))
        self._degraded = np.zeros((n_m, n_r))
        self._violations = np.zeros((n_m, n_r))
        self._failed = np.zeros((n_m, n_r))
        self._unrouted = 0.0
        self._dropped = np.zeros(n_r)
        self._lost = np.zeros(n_r)
        self._node_seconds = np.zeros(n_r)
        self._draining_seconds = 0.0
        self._admitted = 0.0
        self._qos_minutes = 0.0
        self._capacity_minutes = 0.0
        self._unserved_minutes = 0.0
        self._offered_minutes = 0.0
        self._served_minutes = 0.0
        self._peak_active = 0.0

        self._qos_cache: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self._impairments: dict[str, Impairment] = {}
        self._impairment_windows: dict[str, tuple[float, float]] = {}
        self._impairment_seq = 0
        self._active_impairments: set[str] = set()
        self._extra_loss = np.zeros((n_m, n_r))
        self._extra_jitter = np.zeros((n_m, n_r))
        self._extra_rtt = np.zeros((n_m, n_r))
        self._outage = np.zeros(n_r, dtype=bool)
        for impairment in trace.impairments:
            self.inject_impairment(impairment)

        self.actuations: list[AuditRecord] = []
        """Every actuation call, in order; `changed=False` ones were idempotent no-ops."""
        self._warm_start()

    # ----- time ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, tz=UTC)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self._t0, tz=UTC)

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

    def offered_sessions(self, market: str, at: datetime) -> float:
        """Deterministic demand curve (diurnal + events) of `market` at any time, past or future."""
        return self.demand.offered_sessions(market, at)

    # ----- the model ----------------------------------------------------------------------

    def _offered_vector(self, at_epoch: float) -> FloatArray:
        return self.demand.offered_vector(at_epoch)

    def _warm_start(self) -> None:
        """Start in steady state: offered load in place, each region sized for it at target utilisation."""
        offered = self._offered_vector(self._t)
        self._offered_track = offered[:, None] * self._mix
        self._update_impairments()
        target = self.spec.scaling.target_utilisation
        load = offered[:, None, None] * self._mix[:, None, :] * self._weights[:, :, None]  # M x R x S
        amounts = np.zeros(len(self._books))
        for book in self._books:
            r = book.index
            total = float(load[:, r, :].sum())
            nodes = math.ceil(total / (book.spec.sessions_per_node * target)) if total > 0 else 0
            book.desired = max(book.spec.min_nodes, min(book.spec.max_nodes, nodes))
            self._add_nodes(book, book.desired, _READY, self._t)
            amounts[r] = 0.0 if self._outage[r] else total
        placed, _ = self._place(amounts, load.sum(axis=0))
        share = _ratio(placed, amounts)
        self._paths = load * share[None, :, None]

    # nodes ------------------------------------------------------------------------------

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
        self._sessions = self._sessions[keep]
        return carried

    def _node_index(self, book: _RegionBook, node: str) -> int | None:
        try:
            index = self._node_names.index(node)
        except ValueError:
            return None
        return index if self._node_region[index] == book.index else None

    def _place(self, amounts: FloatArray, incoming: FloatArray) -> tuple[FloatArray, FloatArray]:
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

    # impairments -------------------------------------------------------------------------

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

    def _take_from_paths(self, carried: FloatArray) -> None:
        """Remove `carried` sessions (region x scenario) from the regions' market mix, proportionally."""
        if not carried.any():
            return
        totals = self._paths.sum(axis=0)
        keep = np.where(totals > 0, 1.0 - _ratio(carried, totals), 0.0)
        self._paths *= np.minimum(np.maximum(keep, 0.0), 1.0)[None, :, :]

    def _reconcile(self, book: _RegionBook) -> None:
        """Bring BOOTING + READY nodes to `desired` without ever removing a node that has sessions."""
        in_region = self._node_region == book.index
        serving = in_region & (self._node_state != _DRAINING)
        count = int(serving.sum())
        if book.desired > count:
            boot = 0.0 if self.instant_boot else float(book.spec.node_boot_seconds)
            self._add_nodes(book, book.desired - count, _READY if self.instant_boot else _BOOTING, self._t + boot)
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

    # the step ----------------------------------------------------------------------------

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

        draining = self._node_state == _DRAINING
        if draining.any():
            load = self._sessions.sum(axis=1)
            empty = draining & (load < EMPTY_NODE_SESSIONS)
            expired = draining & ~empty & (self._deadline <= t1)
            if expired.any():
                self._dropped += np.bincount(self._node_region[expired], weights=load[expired], minlength=n_r)
            self._take_from_paths(self._remove_nodes(empty | expired))
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
        self._unrouted += float((arrivals.sum(axis=1) * np.maximum(1.0 - self._weights.sum(axis=1), 0.0)).sum())
        routed = arrivals[:, None, :] * self._weights[:, :, None]  # M x R x S
        incoming = routed.sum(axis=0)  # R x S
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
        self._admitted += float(placed.sum())

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
        self._unserved_minutes += float(np.maximum(offered - active_by_market, 0.0).sum()) * minutes
        self._offered_minutes += float(offered.sum()) * minutes
        active = float(active_by_market.sum())
        self._served_minutes += active * minutes
        self._peak_active = max(self._peak_active, active)
        self._node_seconds += np.bincount(self._node_region, minlength=n_r) * dt
        self._draining_seconds += float((self._node_state == _DRAINING).sum()) * dt

    def _utilisation(self) -> FloatArray:
        """Per region: sessions / capacity of the nodes that carry sessions (ready + draining)."""
        n_r = len(self._books)
        carrying = self._node_state != _BOOTING
        region = self._node_region[carrying]
        sessions = np.bincount(region, weights=self._sessions[carrying].sum(axis=1), minlength=n_r)
        capacity = np.bincount(region, minlength=n_r) * self._spn
        return _ratio(sessions, capacity.astype(np.float64))

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

    # ----- observation --------------------------------------------------------------------

    def snapshot(self) -> FleetSnapshot:
        """The FleetSnapshot the decision core consumes, built from state (never stale)."""
        with self._lock:
            now = self.now
            regions: list[RegionObservation] = []
            loads = self._sessions.sum(axis=1)
            rounded = np.rint(loads).astype(np.int64).tolist()
            capacity = self._spn[self._node_region]
            cpu = np.where(
                self._node_state == _BOOTING, 0.0, np.round(IDLE_CPU + (1 - 2 * IDLE_CPU) * loads / capacity, 4)
            ).tolist()
            states = [_STATE_NAMES[state] for state in self._node_state.tolist()]
            region_of = self._node_region.tolist()
            by_region: list[list[NodeObservation]] = [[] for _ in self._books]
            for i, name in enumerate(self._node_names):
                by_region[region_of[i]].append(
                    _trusted(
                        NodeObservation,
                        name=name,
                        state=states[i],
                        active_sessions=rounded[i],
                        session_capacity=self._books[region_of[i]].spec.sessions_per_node,
                        cpu_utilisation=cpu[i],
                    )
                )
            region_sessions = np.bincount(self._node_region, weights=loads, minlength=len(self._books))
            for book in self._books:
                regions.append(
                    _trusted(
                        RegionObservation,
                        region=book.spec.name,
                        desired_nodes=book.desired,
                        nodes=by_region[book.index],
                        active_sessions=round(float(region_sessions[book.index])),
                        observed_at=now,
                        stale=False,
                    )
                )
            rtt, loss, jitter = self._path_qos()
            per_path = self._paths.sum(axis=2)
            paths = [
                _trusted(
                    PathObservation,
                    market=market,
                    region=region_name,
                    rtt_ms=round(float(rtt[m, r]), 3),
                    loss_ratio=round(float(loss[m, r]), 6),
                    jitter_ms=round(float(jitter[m, r]), 3),
                    active_sessions=round(float(per_path[m, r])),
                )
                for m, market in enumerate(self.markets)
                for r, region_name in enumerate(self.region_names)
            ]
            earlier = self._t - TREND_WINDOW_SECONDS
            markets = [
                _trusted(
                    MarketDemand,
                    market=market,
                    offered_sessions=self.demand.offered_at_epoch(market, self._t),
                    trend_sessions_per_second=(
                        self.demand.offered_at_epoch(market, self._t) - self.demand.offered_at_epoch(market, earlier)
                    )
                    / TREND_WINDOW_SECONDS,
                )
                for market in self.markets
            ]
            return _trusted(
                FleetSnapshot,
                environment=self.spec.name,
                taken_at=now,
                regions=regions,
                paths=paths,
                markets=markets,
                current_weights=self._weights_dict(),
                stale=False,
                stale_reasons=[],
            )

    def _weights_dict(self, rows: list[int] | None = None) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        for m in rows if rows is not None else range(len(self.markets)):
            result[self.markets[m]] = {
                self.region_names[r]: round(float(w), 9) for r, w in enumerate(self._weights[m]) if w > 0
            }
        return result

    def desired_nodes(self, region: str) -> int:
        with self._lock:
            return self._region(region).desired

    def accounting(self) -> FleetAccounting:
        with self._lock:
            return FleetAccounting(
                environment=self.spec.name,
                trace=f"{self.trace.name}@{self.trace.version}",
                seed=self.seed,
                started_at=self.started_at,
                now=self.now,
                simulated_seconds=self._t - self._t0,
                node_hours=float(self._node_seconds.sum()) / 3600.0,
                node_hours_by_region={
                    name: float(self._node_seconds[i]) / 3600.0 for i, name in enumerate(self.region_names)
                },
                draining_node_hours=self._draining_seconds / 3600.0,
                offered_session_minutes=self._offered_minutes,
                served_session_minutes=self._served_minutes,
                admitted_sessions=self._admitted,
                rejected_sessions=float(self._rejected.sum()),
                degraded_sessions=float(self._degraded.sum()),
                dropped_sessions=float(self._dropped.sum()),
                lost_sessions=float(self._lost.sum()),
                failed_sessions=float(self._failed.sum()) + self._unrouted,
                residency_violations=float(self._violations.sum()),
                qos_slo_session_minutes=self._qos_minutes,
                capacity_slo_session_minutes=self._capacity_minutes,
                unserved_session_minutes=self._unserved_minutes,
                active_sessions=float(self._paths.sum()),
                peak_active_sessions=self._peak_active,
            )

    def counters(self) -> FleetCounters:
        with self._lock:
            pairs = [(m, r) for m in range(len(self.markets)) for r in range(len(self.region_names))]

            def by_path(values: FloatArray) -> dict[tuple[str, str], float]:
                return {(self.markets[m], self.region_names[r]): float(values[m, r]) for m, r in pairs}

            return FleetCounters(
                rejected=by_path(self._rejected),
                degraded=by_path(self._degraded),
                residency_violations=by_path(self._violations),
                dropped={name: float(self._dropped[i]) for i, name in enumerate(self.region_names)},
            )

    def state(self) -> dict[str, Any]:
        """A compact JSON-able view for `GET /v1/state` and humans."""
        with self._lock:
            return {
                "environment": self.spec.name,
                "trace": f"{self.trace.name}@{self.trace.version}",
                "seed": self.seed,
                "now": self.now.isoformat(),
                "regions": {book.spec.name: self._region_view(book) for book in self._books},
                "weights": self._weights_dict(),
                "impairments": {
                    i: {**imp.model_dump(mode="json"), "active": i in self._active_impairments}
                    for i, imp in self._impairments.items()
                },
            }

    # ----- actuation (controller.ports.Actuator) ---------------------------------------------

    def _region_view(self, book: _RegionBook) -> dict[str, Any]:
        in_region = self._node_region == book.index
        states = self._node_state[in_region]
        return {
            "desired_nodes": book.desired,
            "booting": int((states == _BOOTING).sum()),
            "ready": int((states == _READY).sum()),
            "draining": int((states == _DRAINING).sum()),
            "active_sessions": round(float(self._sessions[in_region].sum()), 1),
            "outage": bool(self._outage[book.index]),
        }

    def _region(self, name: str) -> _RegionBook:
        index = self._r.get(name)
        if index is None:
            raise UnknownTargetError(
                f"unknown region {name!r} (regions: {', '.join(self.region_names)})", field="region"
            )
        return self._books[index]

    def _record(
        self, *, plan_id: str, actor: str, action: str, target: str, reason: str, before: Any, after: Any
    ) -> AuditRecord:
        record = AuditRecord(
            plan_id=plan_id,
            actor=actor,
            action=action,
            target=target,
            reason=reason,
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
        """Stop new sessions on `node`; it goes when empty or at `deadline` (then its sessions drop)."""
        if deadline.tzinfo is None:
            raise InvalidActuationError("deadline must be timezone-aware", field="deadline")
        with self._lock:
            target = self._region(region)
            index = self._node_index(target, node)
            if index is None:
                # Already drained and gone: a retry of a drain that completed is a no-op.
                return self._removed_node_record(target, node, "drain_node", plan_id, actor, reason)
            before = self._node_view(index)
            self._node_state[index] = _DRAINING
            self._qos_cache = None
            self._deadline[index] = deadline.timestamp()
            return self._record(
                plan_id=plan_id,
                actor=actor,
                action="drain_node",
                target=f"{region}/{node}",
                reason=reason,
                before=before,
                after=self._node_view(index),
            )

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
                if not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
                    raise InvalidActuationError(
                        f"weight of {market}->{region} must be a finite number >= 0, got {share!r}",
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

    # ----- scenario control -----------------------------------------------------------------

    def inject_impairment(self, impairment: Impairment) -> str:
        """Add a fault; returns its id (for `clear_impairment`)."""
        with self._lock:
            if impairment.region not in self._r:
                raise UnknownTargetError(f"unknown region {impairment.region!r}", field="region")
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
