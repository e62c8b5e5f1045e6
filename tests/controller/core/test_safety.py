"""Safety rules (controller/core/safety.py): serving floor, pace of moves, draining share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import safety
from controller.plan import DrainCommand
from controller.spec import SafetyRules
from controller.steering import WeightMove

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_serving_floor_counts_usable_allowed_regions(local_spec):
    strict = local_spec.model_copy(update={"safety": SafetyRules(min_serving_regions=2)})
    # EU markets may use fra and dub only: evacuating fra leaves one.
    with pytest.raises(safety.SafetyRuleRefusal, match="min_serving_regions: evacuating fra: DE would keep 1"):
        safety.check_serving_floor(strict, {"fra": 0.0}, "fra")
    # The default floor (1) allows it; a floor above what the jurisdiction allows is capped by it.
    safety.check_serving_floor(local_spec, {"fra": 0.0}, "fra")
    with pytest.raises(safety.SafetyRuleRefusal, match="needs 1"):
        safety.check_serving_floor(local_spec, {"fra": 0.0, "dub": 0.0}, "dub")


def test_pace_counts_the_last_minute_per_market():
    rules = SafetyRules(max_moved_share_per_minute=0.5)
    history = [WeightMove(at=NOW - timedelta(seconds=30), market="DE", share=0.3)]
    safety.check_pace(rules, history, {"DE": 0.2, "FR": 0.5}, NOW)
    with pytest.raises(safety.SafetyRuleRefusal, match="DE: 30% moved in the last 60 s \\+ 25% now > 50%"):
        safety.check_pace(rules, history, {"DE": 0.25}, NOW)
    safety.check_pace(rules, history, {"DE": 0.5}, NOW + timedelta(seconds=31))  # the window slid
    assert safety.move_budget(rules, history, ["DE", "FR"], NOW) == pytest.approx({"DE": 0.2, "FR": 0.5})
    assert safety.move_budget(SafetyRules(), history, ["DE"], NOW) is None


shares = st.dictionaries(st.sampled_from(["fra", "dub", "sin"]), st.floats(0.01, 1.0), min_size=1)


@settings(max_examples=200, deadline=None)
@given(before=shares, after=shares, budget=st.floats(0.0, 1.0))
def test_limit_moves_stays_within_budget_and_within_the_two_weightings(before, after, budget):
    def normalised(w):
        total = sum(w.values())
        return {r: s / total for r, s in w.items()}

    before, after = normalised(before), normalised(after)
    limited, notes = safety.limit_moves({"DE": after}, {"DE": before}, {"DE": budget})
    moved = safety.moved_share(before, limited["DE"])
    assert moved <= budget + 1e-6
    assert set(limited["DE"]) <= set(before) | set(after)  # residency: no region outside both
    assert sum(limited["DE"].values()) == pytest.approx(1.0, abs=1e-6)
    assert bool(notes) == (safety.moved_share(before, after) > budget + 1e-6)


def test_limit_drains_keeps_the_draining_share():
    drains = [DrainCommand(region="fra", node=f"n{i}", deadline=NOW) for i in range(5)]
    kept, notes = safety.limit_drains(SafetyRules(max_draining_capacity_share=0.1), 40, 2, drains)
    assert [d.node for d in kept] == ["n0", "n1"] and "2 of 40 nodes draining" in notes[0]
    assert safety.limit_drains(SafetyRules(), 40, 39, drains) == (drains, [])


def test_pacing_never_puts_weight_back_on_a_failed_or_breaching_region():
    """BR moved all of its traffic within the minute; gru has failed meanwhile and the new plan takes
    BR's last 30% off it. The budget left is 0.2, but the blend keeps nothing on gru: what it would
    have kept there goes to the plan's other regions, and the shares still add up to 1."""
    limited, _ = safety.limit_moves(
        {"BR": {"iad": 0.8, "bom": 0.2}}, {"BR": {"gru": 0.3, "iad": 0.7}}, {"BR": 0.2}, exempt=frozenset({"gru"})
    )
    assert limited["BR"].get("gru", 0.0) == 0.0
    assert sum(limited["BR"].values()) == pytest.approx(1.0)
    assert set(limited["BR"]) <= {"iad", "bom"}
    unexempt, _ = safety.limit_moves({"BR": {"iad": 0.8, "bom": 0.2}}, {"BR": {"gru": 0.3, "iad": 0.7}}, {"BR": 0.2})
    assert unexempt["BR"]["gru"] > 0.0  # what the rule alone does, and why the planner exempts failed regions


def test_decreases_on_forced_off_regions_are_not_moves_the_pace_rule_counts() -> None:
    before = {"DE": {"fra": 0.3, "dub": 0.7}}
    after = {"DE": {"fra": 1.0}}
    assert safety.moves(before, after) == {"DE": pytest.approx(0.7)}
    assert safety.moves(before, after, forced_off={"dub"}) == {}
    assert safety.moved_share({"fra": 0.5, "dub": 0.5}, {"par": 1.0}, forced_off={"dub"}) == pytest.approx(0.5)
