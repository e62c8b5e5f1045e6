"""edgeplane's own decision core as a benchmark policy: `controller.core.planner.make_plan`.

The trace's announced demand events (`DemandEvent.announced`: the flash sales a business puts on
its calendar) are handed to the core as `PlanningOverrides.scheduled_demand`, the way the control
loop receives them from `edgectl controller announce`; surprise events (announced=false) and
impairments are not: the core must see those in the metrics.

Cross-market sessions: the fleet places each one's guest side by the cross-border plan this policy
gives it (`cross_border_plan`, read by `sim.benchmark.run_policy` each tick): the Plan's own section,
which `make_plan` solves in the room its single-market plan leaves (and sizes the guest ends for).

Imported lazily, so the simulator and the other baselines work while (or where) the core is absent;
then `decide` raises PolicyUnavailableError saying what is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from controller.cross_border_plan import CrossBorderPlan
from controller.demand_events import DemandEvent
from controller.plan import Plan, PlanningOverrides
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.policies import PolicyUnavailableError


class EdgeplanePolicy:
    name = "edgeplane"

    def __init__(self, announced: Sequence[DemandEvent] = ()) -> None:
        self._make_plan: Callable[..., Any] | None = None
        self.overrides = PlanningOverrides(scheduled_demand=[e for e in announced if e.announced])

    def _planner(self) -> Callable[..., Any]:
        if self._make_plan is None:
            try:
                module = importlib.import_module("controller.core.planner")
                self._make_plan = module.make_plan
            except (ImportError, AttributeError) as error:
                raise PolicyUnavailableError(
                    "the edgeplane policy needs controller.core.planner.make_plan(spec, snapshot, previous_plan, now), "
                    f"which is not available: {error}"
                ) from error
        return self._make_plan

    def cross_border_plan(self, spec: EnvironmentSpec, snapshot: FleetSnapshot, plan: Plan) -> CrossBorderPlan | None:
        """Where this tick's cross-market sessions go, side by side: the Plan's own cross-border section
        (`make_plan` places them in the room the single-market plan leaves and sizes the guest ends)."""
        return plan.cross_border

    def decide(self, spec: EnvironmentSpec, snapshot: FleetSnapshot, previous_plan: Plan | None, now: datetime) -> Plan:
        plan = self._planner()(spec, snapshot, previous_plan, now, self.overrides)
        if not isinstance(plan, Plan):
            raise PolicyUnavailableError(f"make_plan returned {type(plan).__name__}, not a Plan")
        return plan
