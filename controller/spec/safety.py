"""SafetyRules: limits every writer of the fleet's steering must keep (the loop, failovers, drills).

Part of `controller.spec` (import from there). Modelled on AWS Route 53 ARC's safety rules (an
assertion that enough cells stay on, a gating of how fast things change): the pure checks live in
`controller/core/safety.py`; the steering authority applies them to every lease and weights write,
the planner plans within them. A refusal names the rule and the numbers.
"""

from __future__ import annotations

from pydantic import Field

from controller.spec.fleet import FrozenModel


class SafetyRules(FrozenModel):
    """Per-environment safety rules. `None` switches a limit off."""

    min_serving_regions: int = Field(
        strict=True,
        default=1,
        ge=1,
        le=50,
        description="A failover or drill may not evacuate a region if a market it serves would be left with "
        "fewer regions it may use than this (or than its jurisdictions allow, if fewer). Counts the market's "
        "allowed regions not evacuated by a lease.",
    )
    max_draining_capacity_share: float | None = Field(
        strict=True,
        default=None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Most share of the fleet's nodes draining at once; the planner drains no more (None: off).",
    )
    max_moved_share_per_minute: float | None = Field(
        strict=True,
        default=None,
        gt=0,
        le=2,
        allow_inf_nan=False,
        description="Most share of a market's traffic whose weight may move between regions within any "
        "60 s (the loop plans within it; a failover's stage waits for it) (None: off).",
    )
