"""DemandEvent: a live-commerce spike (a flash sale, a star's live show, a match night) on one market.

One model for one concept, in two roles:
- in a simulator trace (`sim.traces`) it is what happens: `sim.demand` multiplies the market's
  offered sessions by `multiplier_at`;
- in `PlanningOverrides.scheduled_demand` it is what the business has announced: the decision
  core's forecast (`controller/core/forecast.py`) pre-scales for it. Flash sales are scheduled
  and advertised days ahead; a 3x ramp in ten minutes outruns any node that boots in four, so
  capacity for it has to be ordered before the ramp, from the calendar, not from the trend.
`announced` says which events of a trace the benchmark hands to the controller's calendar; a
surprise spike (announced=false) is left to the trend forecaster.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_EVENT_SECONDS = 31 * 86_400
"""A demand event (a sale, a live show) lasts at most a month: longer is a typo, or a trend for the forecast."""


class DemandEvent(BaseModel):
    """Demand of `market` multiplied by up to `peak_multiplier`: linear ramp up over `ramp_seconds`
    from `start`, plateau until `start + duration_seconds`, linear ramp down over `ramp_seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    market: str = Field(description="Market code.")
    start: AwareDatetime = Field(description="When the ramp begins.")
    ramp_seconds: float = Field(
        default=600, ge=0, le=MAX_EVENT_SECONDS, allow_inf_nan=False,
        description="Seconds to reach the plateau (and to leave it).",
    )  # fmt: skip
    peak_multiplier: float = Field(
        gt=0, le=50, allow_inf_nan=False, description="Demand multiplier on the plateau (3.0 = 3x)."
    )
    duration_seconds: float = Field(
        gt=0, le=MAX_EVENT_SECONDS, allow_inf_nan=False,
        description="Seconds from start until the ramp down begins.",
    )  # fmt: skip
    announced: bool = Field(
        default=True,
        description="Known ahead (a scheduled sale): given to the controller's calendar. False: a surprise spike.",
    )

    @property
    def end(self) -> datetime:
        """When the demand is back to normal (end of the ramp down)."""
        return self.start + timedelta(seconds=self.duration_seconds + self.ramp_seconds)

    def shape_at(self, at_epoch: float) -> float:
        """0..1: how far into its plateau the event is at `at_epoch` (seconds since the Unix epoch)."""
        start = self.start.timestamp()
        ramp = max(self.ramp_seconds, 1e-9)
        plateau_end = start + self.duration_seconds
        if at_epoch <= start or at_epoch >= plateau_end + ramp:
            return 0.0
        if at_epoch < start + ramp:
            return (at_epoch - start) / ramp
        if at_epoch <= plateau_end:
            return 1.0
        return 1.0 - (at_epoch - plateau_end) / ramp


def demand_multiplier(events: Iterable[DemandEvent], market: str, at_epoch: float) -> float:
    """Factor on `market`'s normal demand at `at_epoch` from the events (overlapping events add up)."""
    multiplier = 1.0
    for event in events:
        if event.market == market:
            multiplier += (event.peak_multiplier - 1.0) * event.shape_at(at_epoch)
    return multiplier
