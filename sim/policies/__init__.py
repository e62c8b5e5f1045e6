"""Capacity policies the benchmark compares, behind one Protocol: `decide(spec, snapshot, previous_plan, now) -> Plan`.

Registry, in the order results are reported:
  edgeplane  the product's decision core (`controller.core.planner.make_plan`)
  reactive   utilisation thresholds with HPA/KEDA default cooldowns (`sim.policies.reactive`)
  static     every region provisioned for its own peak, fixed nearest-region weights
  oracle     perfect foresight of demand and zero boot delay: a lower bound on node-hours
Called by `sim.benchmark.run_policy` once per control tick; the plan is applied to the fleet with
`sim.benchmark.apply_plan`. Baseline policies may keep state between ticks on their instance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from controller.cross_border_plan import CrossBorderPlan
from controller.plan import Plan
from controller.snapshot import FleetSnapshot
from controller.spec import EnvironmentSpec
from sim.demand import DemandModel
from sim.traces import Trace


class Policy(Protocol):
    """Decides a Plan for one tick from the spec, the fleet snapshot and the previous plan."""

    name: str

    def decide(
        self, spec: EnvironmentSpec, snapshot: FleetSnapshot, previous_plan: Plan | None, now: datetime
    ) -> Plan: ...


@runtime_checkable
class CrossBorderPlanning(Protocol):
    """A policy that also says where each side of the cross-market sessions goes (the fleet's guest
    placement follows it: `sim.fleet.guest_placement.PlannedGuestPlacement`). Policies without it leave the
    fleet's default: the host's region when the guest's rules allow it, else the guest's nearest allowed."""

    def cross_border_plan(
        self, spec: EnvironmentSpec, snapshot: FleetSnapshot, plan: Plan
    ) -> CrossBorderPlan | None: ...


class PolicyUnavailableError(RuntimeError):
    """The policy cannot run here (e.g. the decision core is not installed yet)."""


POLICY_NAMES = ("edgeplane", "reactive", "static", "oracle")


def make_policy(name: str, spec: EnvironmentSpec, trace: Trace, demand: DemandModel) -> Policy:
    """The policy called `name`; ValueError lists the known names."""
    if name == "edgeplane":
        from sim.policies.edgeplane import EdgeplanePolicy

        return EdgeplanePolicy(announced=trace.events)
    if name == "reactive":
        from sim.policies.reactive import ReactivePolicy

        return ReactivePolicy(spec)
    if name == "static":
        from sim.policies.static import StaticPolicy

        return StaticPolicy(spec, trace, demand)
    if name == "oracle":
        from sim.policies.oracle import OraclePolicy

        return OraclePolicy(spec, demand)
    raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICY_NAMES)})")
