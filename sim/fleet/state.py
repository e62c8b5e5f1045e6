"""The simulated fleet's state: specs indexed, nodes as parallel numpy arrays, books, clock.

`_FleetState` holds every array and counter the fleet's behaviours (`sim.fleet.nodes`, `.faults`,
`.dynamics`, `.observation`, `.actuation`) read and write, plus the clock and the helpers they share.
It only sets things up; `sim.fleet.SimulatedFleet` finishes construction (initial weights, the
trace's impairments, warm start).
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from controller.audit import AuditRecord
from controller.snapshot import NodeState
from controller.spec import EnvironmentSpec, RegionSpec
from sim.demand import DemandModel
from sim.fleet.cross_market import CrossMarketCohorts
from sim.fleet.errors import UnknownTargetError
from sim.fleet.guest_placement import CrossMarketFlows, GuestPlacement, PlannedGuestPlacement
from sim.fleet.region_placement import RegionPlacement, WeightedPlacement
from sim.impairments import Impairment
from sim.traces import Trace

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


class _RegionBook:
    """Per-region bookkeeping that is not per node: desired count, name serial, removed names."""

    def __init__(self, spec: RegionSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.desired = 0
        self.serial = 0
        self.removed: set[str] = set()
        self.drain_order: tuple[str, ...] | None = None
        # Warm pool (RegionSpec.warm_pool): when each pooled instance is initialised and stopped, ready to
        # be drawn (a drawn one is replaced by a launch that takes the region's full boot time).
        self.warm_ready_at: list[float] = [-math.inf] * (spec.warm_pool.size if spec.warm_pool else 0)
        """The controller's drain order (first to drain first); None: never published, spread placement."""


class _FleetState:
    """Every array, counter and index of the fleet (no behaviour beyond the clock and lookups)."""

    actuations: list[AuditRecord]
    """Every actuation call, in order; `changed=False` ones were idempotent no-ops."""
    sessions_moved: FloatArray
    """Per region: its sessions asked to reconnect elsewhere (`move_sessions`), since the start."""

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
        cross_market: bool = True,
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
        flows = CrossMarketFlows.from_spec(spec, self.markets, self.scenarios) if cross_market else None
        self._cross: CrossMarketCohorts | None = None
        """The cross-market sessions (`sim.fleet.cross_market`); None when the spec has no flows (or they are off)."""
        self.guest_placement: GuestPlacement | None = None
        """Where the guest side of each new cross-market session goes (`sim.fleet.guest_placement`)."""
        if flows is not None:
            self._cross = CrossMarketCohorts(flows, self._allowed)
            # A market's own sessions are what its cross-market flows leave of its demand.
            self._mix = self._mix * (1.0 - flows.host_share)[:, None]
            self.guest_placement = PlannedGuestPlacement(spec, flows)
        self._books = [_RegionBook(r, i) for i, r in enumerate(spec.regions)]
        self._spn = np.array([r.sessions_per_node for r in spec.regions], dtype=np.float64)
        self._warm_pool_cost = np.array(
            [r.warm_pool.size * r.warm_pool.stopped_cost_ratio if r.warm_pool else 0.0 for r in spec.regions]
        )
        # Every node of the fleet, as parallel arrays (fast numpy steps over ~2k prod nodes).
        self._node_names: list[str] = []
        self._node_region = np.zeros(0, dtype=np.int64)
        self._node_state = np.zeros(0, dtype=np.int8)
        self._ready_at = np.zeros(0)
        self._deadline = np.zeros(0)
        self._sessions = np.zeros((0, n_s))
        # Place of each node in its region's published drain order (higher stays longer, -1 unranked):
        # the load balancer packs new sessions onto the highest first (`sim.fleet.nodes._pack`).
        self._stay_rank = np.zeros(0)
        self.migrate_draining_below = float(spec.scaling.drain_move_calls_below)
        """A draining node with fewer sessions than this hands them to staying nodes (a brief reconnect
        each, counted in `migrated_sessions`) and goes at once: the media server's drain setting
        `scaling.drain_move_calls_below` (0: never)."""
        self._migrated = 0.0

        self._weights = np.zeros((n_m, n_r))
        for m in range(n_m):
            allowed = np.nonzero(self._allowed[m])[0]
            nearest = allowed[np.argmin(self._base_rtt[m, allowed])]
            self._weights[m, nearest] = 1.0

        self.region_placement: RegionPlacement = WeightedPlacement()
        """Where each step's new sessions go (`sim.fleet.region_placement`)."""
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

    # ----- time ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, tz=UTC)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self._t0, tz=UTC)

    def offered_sessions(self, market: str, at: datetime) -> float:
        """Deterministic demand curve (diurnal + events) of `market` at any time, past or future."""
        return self.demand.offered_sessions(market, at)

    # ----- the model ----------------------------------------------------------------------

    def _offered_vector(self, at_epoch: float) -> FloatArray:
        return self.demand.offered_vector(at_epoch)

    def _region(self, name: str) -> _RegionBook:
        index = self._r.get(name)
        if index is None:
            raise UnknownTargetError(
                f"unknown region {name!r} (regions: {', '.join(self.region_names)})", field="region"
            )
        return self._books[index]

    def _node_index(self, book: _RegionBook, node: str) -> int | None:
        try:
            index = self._node_names.index(node)
        except ValueError:
            return None
        return index if self._node_region[index] == book.index else None
