"""Guardrails: each one refuses the draft it exists to refuse, and passes a correct one."""

from __future__ import annotations

import pytest

from controller.core.guardrails import DraftPlan, GuardrailViolation, UndrainGuardrail, run_guardrails
from controller.core.planner import make_plan
from controller.plan import RegionState, ScaleCommand, UndrainCommand
from controller.snapshot import NodeObservation, NodeState
from tests.controller.core.conftest import NOON
from tests.fakes.fleet_snapshots import region_observation, snapshot_for


def _draft(local_spec, undrains, scale, draining=None, serving=None, pins=None) -> DraftPlan:
    return DraftPlan(
        spec=local_spec,
        weights={},
        current_weights={},
        demand={},
        ready_capacity_sessions={},
        capacity_trusted={},
        overflow=[],
        certificate=[],
        unserved_markets=set(),
        region_states={r.name: RegionState.HEALTHY for r in local_spec.regions},
        pin_caps=pins or {},
        fail_static=False,
        scale=scale,
        drains=[],
        undrains=undrains,
        draining_nodes=draining or {"fra": frozenset({"fra-d000", "fra-d001"})},
        serving_nodes=serving or {"fra": 4},
    )


def _undrain(node: str) -> UndrainCommand:
    return UndrainCommand(region="fra", node=node)


@pytest.mark.parametrize(
    ("undrains", "desired", "pins", "refusal"),
    [
        (["fra-d000"], 5, None, None),
        (["fra-d000", "fra-d001"], 6, None, None),
        (["fra-d000", "fra-d001"], 5, None, "2 undrained for a growth of 1"),
        (["fra-d000"], 4, None, "growth of 0"),
        (["fra-n001"], 5, None, "fra/fra-n001 is not draining"),
        (["fra-d000"], 5, {"fra": 0.5}, "pinned"),
    ],
)
def test_undrain_guardrail(local_spec, undrains, desired, pins, refusal):
    scale = [ScaleCommand(region="fra", desired_nodes=desired, current_nodes=4)]
    verdict = UndrainGuardrail().check(_draft(local_spec, [_undrain(n) for n in undrains], scale, pins=pins))
    assert verdict.ok is (refusal is None), verdict.reason
    if refusal is not None:
        assert refusal in verdict.reason
        with pytest.raises(GuardrailViolation):
            run_guardrails(_draft(local_spec, [_undrain(n) for n in undrains], scale, pins=pins), [UndrainGuardrail()])


def test_make_plan_reports_the_undrain_guardrail(local_spec):
    fra = region_observation(local_spec, "fra", NOON, ready=2)
    capacity = local_spec.region_by_name["fra"].sessions_per_node
    draining = [
        NodeObservation(name=f"fra-d{i:03d}", state=NodeState.DRAINING, active_sessions=20, session_capacity=capacity)
        for i in range(3)
    ]
    fra = fra.model_copy(update={"nodes": [*fra.nodes, *draining]})
    others = [region_observation(local_spec, r.name, NOON, 4) for r in local_spec.regions if r.name != "fra"]
    demand = {m.code: 0.0 for m in local_spec.markets} | {"DE": 300.0}
    plan = make_plan(local_spec, snapshot_for(local_spec, NOON, demand, regions=[fra, *others]), None, NOON)
    assert plan.undrains, plan.explanation
    assert any(line.startswith("guardrail undrain: ok") for line in plan.explanation)
