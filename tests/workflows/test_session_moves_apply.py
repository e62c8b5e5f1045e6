"""apply_plan with existing calls to move: through the steering gate, over the simulator's HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from controller.adapters.simulator_actuator import SimulatorActuator
from controller.plan import Plan, SessionMove
from controller.steering import Fence
from sim.fleet import SimulatedFleet
from sim.http_api import SimulatorServer
from sim.traces import quiet_trace
from tests.fakes.steering import gate
from workflows.activities import FleetActivities
from workflows.controller_metrics import ControllerMetrics
from workflows.models import ApplyPlanRequest

START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def _plan(fleet: SimulatedFleet) -> Plan:
    weights = {m: dict(s) for m, s in fleet.snapshot().current_weights.items()}
    weights["DE"] = {"dub": 1.0}
    return Plan(
        plan_id="plan-moves", environment="local", created_at=fleet.now, snapshot_taken_at=fleet.now,
        weights=weights,
        session_moves=[SessionMove(region="fra", market="DE", to_region="dub", sessions=20.0, reason="fra breaching")],
    )  # fmt: skip


def test_calls_move_and_the_weights_follow_in_one_plan_without_fencing_itself_out(local_spec):
    """The loop's fence is the steering revision the plan was made at; the weights write moves it on,
    so the moves go first. Retried, nothing is done twice."""
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600), start=START, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        actuator = SimulatorActuator(server.url)
        authority = gate(local_spec, actuator)
        activities = FleetActivities(
            local_spec, actuator, authority, metrics=ControllerMetrics("local", CollectorRegistry())
        )
        plan = _plan(fleet)
        revision = authority.state().revision
        request = ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(revision))
        result = activities.apply_plan(request)
        assert [(r.action, r.target) for r in result.records] == [
            ("move_sessions", "fra/DE->dub"),
            ("set_traffic_weights", "weights:DE,FR,ID,SG,TH"),
        ]
        assert result.records[0].after == {"moved": 20.0}
        assert fleet.sessions_moved[fleet.region_names.index("fra")] == 20.0
        acted = len(fleet.actuations)
        assert activities.apply_plan(request).records == result.records
        assert len(fleet.actuations) == acted


class _NoReconnects:
    """An actuator without `move_sessions` (Kubernetes, AWS): it delegates everything else."""

    def __init__(self, inner: SimulatorActuator) -> None:
        self._inner = inner

    def set_desired_nodes(self, *args, **kwargs):
        return self._inner.set_desired_nodes(*args, **kwargs)

    def drain_node(self, *args, **kwargs):
        return self._inner.drain_node(*args, **kwargs)

    def undrain_node(self, *args, **kwargs):
        return self._inner.undrain_node(*args, **kwargs)

    def set_traffic_weights(self, *args, **kwargs):
        return self._inner.set_traffic_weights(*args, **kwargs)


def test_a_fleet_that_cannot_reconnect_calls_keeps_them_and_still_gets_its_weights(local_spec):
    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600), start=START, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        actuator = _NoReconnects(SimulatorActuator(server.url))
        authority = gate(local_spec, actuator)
        activities = FleetActivities(
            local_spec, actuator, authority, metrics=ControllerMetrics("local", CollectorRegistry())
        )
        request = ApplyPlanRequest(
            plan=_plan(fleet), actor="controller/test", fence=Fence.for_loop(authority.state().revision)
        )
        result = activities.apply_plan(request)
        assert [r.action for r in result.records] == ["set_traffic_weights"]
        assert fleet.sessions_moved.sum() == 0.0


def test_the_live_loop_hands_the_drain_order_to_the_fleet_after_the_weights(local_spec):
    """The drain order reaches the simulated load balancer over HTTP, after the weights write (a hint,
    not steering: no fence, no journal); published again unchanged, it is a no-op."""
    from controller.plan import DrainOrder

    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600), start=START, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        actuator = SimulatorActuator(server.url)
        authority = gate(local_spec, actuator)
        activities = FleetActivities(
            local_spec, actuator, authority, metrics=ControllerMetrics("local", CollectorRegistry())
        )
        fra = [n.name for n in fleet.snapshot().region("fra").nodes]  # type: ignore[union-attr]
        plan = _plan(fleet).model_copy(
            update={"session_moves": [], "drain_order": [DrainOrder(region="fra", nodes=fra, leaving_soon=1)]}
        )
        request = ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(authority.state().revision))
        result = activities.apply_plan(request)
        assert [r.action for r in result.records] == ["set_traffic_weights", "set_drain_order"]
        assert [r.action for r in fleet.actuations][-1] == "set_drain_order"
        again = ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(authority.state().revision))
        assert [r.action for r in activities.apply_plan(again).records] == ["set_traffic_weights"]


def test_the_plans_failed_backbone_paths_and_placement_shares_reach_the_steering_state_with_its_weights(local_spec):
    """The selector avoids what the plan saw failed only if the loop publishes it: apply_plan records the
    cross-border placement's failed paths in the steering state, in the weights' own commit."""
    from controller.cross_border_plan import CrossBorderPlan, MarketPairPlan, SidePlacement
    from controller.spec import Scenario

    fleet = SimulatedFleet(local_spec, quiet_trace(START, 3600), start=START, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        actuator = SimulatorActuator(server.url)
        authority = gate(local_spec, actuator)
        activities = FleetActivities(
            local_spec, actuator, authority, metrics=ControllerMetrics("local", CollectorRegistry())
        )
        placed = MarketPairPlan(
            host="DE",
            guest="ID",
            demand_sessions=40.0,
            placements=[
                SidePlacement(
                    scenario=Scenario.ONE_TO_ONE, host_region=a, guest_region="cgk", sessions=n,
                    e2e_rtt_ms=200.0, e2e_loss_ratio=0.0, meets_slo=True,
                )
                for a, n in (("dub", 30.0), ("fra", 10.0))
            ],
        )  # fmt: skip
        sick = CrossBorderPlan(pairs=[placed], failed_links=[("fra", "cgk")], compliant=True)
        plan = _plan(fleet).model_copy(update={"session_moves": [], "cross_border": sick})
        request = ApplyPlanRequest(plan=plan, actor="controller/test", fence=Fence.for_loop(authority.state().revision))
        activities.apply_plan(request)
        state = authority.state()
        assert state.failed_backbone_links == [("cgk", "fra")]
        # Where the plan put each side, for the selector's per-participant answers: 3 of 4 on dub | cgk.
        assert [(s.host_region, s.guest_region, s.share) for s in state.cross_border_shares] == [
            ("dub", "cgk", 0.75),
            ("fra", "cgk", 0.25),
        ]


@contextmanager
def _de_weights_under_a_spent_pace(local_spec) -> Iterator[tuple[Any, Callable[..., None]]]:
    """A local fleet whose pace rule allows one whole market's move a minute, and `apply(plan_id, de,
    region_health)`: a plan writing DE's weights (the others unchanged) through the steering authority."""
    from controller.spec import SafetyRules

    spec = local_spec.model_copy(update={"safety": SafetyRules(min_serving_regions=1, max_moved_share_per_minute=1.0)})
    fleet = SimulatedFleet(spec, quiet_trace(START, 3600), start=START, demand_variation=0.0)
    with SimulatorServer(fleet, run_clock=False) as server:
        actuator = SimulatorActuator(server.url)
        authority = gate(spec, actuator)
        activities = FleetActivities(spec, actuator, authority, metrics=ControllerMetrics("local", CollectorRegistry()))
        weights = {m: dict(s) for m, s in fleet.snapshot().current_weights.items()}

        def apply(plan_id: str, de: dict[str, float], region_health: list[Any]) -> None:
            plan = Plan(
                plan_id=plan_id, environment="local", created_at=fleet.now, snapshot_taken_at=fleet.now,
                weights={**weights, "DE": de}, region_health=region_health,
            )  # fmt: skip
            fence = Fence.for_loop(authority.state().revision)
            activities.apply_plan(ApplyPlanRequest(plan=plan, actor="controller/test", fence=fence))

        yield authority, apply


def test_apply_plan_is_not_paced_out_of_a_region_its_plan_saw_failed(local_spec):
    """A market moved wholly into dub less than a minute ago; dub then fails. The plan's move off dub
    must land (the planner exempts it from pacing, and so must the authority it writes through), else
    the whole weights write is refused tick after tick until the minute slides by."""
    from controller.plan import RegionHealth, RegionState

    with _de_weights_under_a_spent_pace(local_spec) as (authority, apply):
        apply("p1", {"fra": 1.0}, [])
        apply("p2", {"dub": 1.0}, [])  # 100% of DE moved: the minute's budget is spent
        apply("p3", {"fra": 1.0}, [RegionHealth(region="dub", state=RegionState.FAILED)])  # DE must leave it now
        assert authority.state().weights["DE"] == {"fra": 1.0}


def test_apply_plan_is_not_paced_out_of_a_region_its_plan_steers_away_but_is_for_an_overloaded_one(local_spec):
    """As for a failed region: dub degraded by a breach that is not its own load is left at once by the
    plan (HealthAssessment.steered_away), so the authority must not refuse the write for the minute's
    earlier move. A region degraded by its own load is paced: the same write is refused."""
    import pytest
    from temporalio.exceptions import ApplicationError

    from controller.plan import RegionHealth, RegionState

    def dub_degraded(overloaded: bool) -> list[RegionHealth]:
        return [RegionHealth(region="dub", state=RegionState.DEGRADED, overloaded=overloaded)]

    with _de_weights_under_a_spent_pace(local_spec) as (authority, apply):
        apply("p1", {"fra": 1.0}, [])
        apply("p2", {"dub": 1.0}, [])  # 100% of DE moved: the minute's budget is spent
        with pytest.raises(ApplicationError, match="waiting"):
            apply("p3", {"fra": 1.0}, dub_degraded(overloaded=True))  # its own load: paced
        assert authority.state().weights["DE"] == {"dub": 1.0}
        apply("p4", {"fra": 1.0}, dub_degraded(overloaded=False))  # a breach not of its load: DE leaves now
        assert authority.state().weights["DE"] == {"fra": 1.0}
