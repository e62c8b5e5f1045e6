"""bench/fast_shift.py's arithmetic: the Route 53 baseline and the verdict over cases (no stack)."""

from __future__ import annotations

import math

from bench.fast_shift import CaseResult, route53_timeline, summary


def test_route53_timeline_from_its_documented_parameters():
    # 10-s checks: first failure 5 s after onset on average, the third 20 s later; 90% of resolver
    # caches (60 s TTL) expired 54 s after that.
    assert route53_timeline(10.0) == {"detected": 25.0, "steered_90": 79.0}
    assert route53_timeline(30.0) == {"detected": 75.0, "steered_90": 129.0}


def _case(steered: float | None, *, blip: bool = False, shifted: bool = False) -> CaseResult:
    return CaseResult("c", "extra_loss", blip, ["DE"], 0.8, steered_90=steered, steered_by_health=shifted)


def test_goal_needs_p50_p95_and_quiet_blips():
    fast = [_case(12.0 + i * 0.1) for i in range(10)] + [_case(None, blip=True)]
    totals = summary(fast)
    assert totals["goal_met"] and totals["steered_p50"] == 12.45 and totals["steered_p95"] == 12.9
    assert summary([*fast, _case(None, blip=True, shifted=True)])["goal_met"] is False


def test_a_case_never_steered_counts_as_slowest():
    totals = summary([_case(10.0)] * 9 + [_case(None)])
    assert totals["not_steered"] == 1 and math.isinf(totals["steered_p95"]) and not totals["goal_met"]
