"""Impairments: faults injected into the simulated fleet (per region, or per market->region path).

Written by traces (`sim.traces`), by `POST /v1/impairments` (`sim.http_api`) and by drills/tests
through `SimulatedFleet.inject_impairment`; read by the fleet's QoS model each step.

Kinds and what `magnitude` means:
- `extra_loss`: packet-loss ratio added to the path(s) (0.03 = +3 points), 0..1.
- `extra_jitter`: milliseconds of jitter added, 0..MAX_EXTRA_MILLISECONDS.
- `extra_rtt`: milliseconds of round-trip time added, 0..MAX_EXTRA_MILLISECONDS.
- `outage`: the region is unreachable (magnitude ignored): sessions on it are lost at the start,
  new sessions sent to it fail, its paths report loss 1.0. Region-wide only (`market` must be None).
- `node_loss`: at the start, this share (0..1) of the region's ready nodes dies with its sessions;
  like an autoscaling group, the region then boots replacements up to its desired count.
With `peer_region` set, `extra_loss` and `extra_rtt` hit only the backbone path between `region` and
`peer_region` (the cascade of cross-border sessions, `edge_backbone_*`), not any market's access path.
Magnitudes are finite: an infinite one used to reach the QoS model, `/metrics` (+Inf) and the
planner, which then crashed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_EXTRA_MILLISECONDS = 60_000.0
"""Most RTT or jitter an impairment adds: a minute already makes every session on the path fail."""


class ImpairmentKind(StrEnum):
    EXTRA_LOSS = "extra_loss"
    EXTRA_JITTER = "extra_jitter"
    EXTRA_RTT = "extra_rtt"
    OUTAGE = "outage"
    NODE_LOSS = "node_loss"


class Impairment(BaseModel):
    """One fault, active from `start` (None: from now) until `end` (None: until cleared)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    region: str = Field(description="Region name the fault hits.")
    market: str | None = Field(default=None, description="Only this market's path to the region; None: all paths.")
    peer_region: str | None = Field(
        default=None,
        description="Only the backbone path between region and this one (extra_loss or extra_rtt); None: access paths.",
    )
    kind: ImpairmentKind = Field(description="What breaks.")
    magnitude: float = Field(default=1.0, ge=0, description="Size of the fault; unit depends on kind.")
    start: AwareDatetime | None = Field(default=None, description="When it begins; None: immediately.")
    end: AwareDatetime | None = Field(default=None, description="When it ends; None: until cleared.")

    @field_validator("magnitude")
    @classmethod
    def _physical_magnitude(cls, magnitude: float, info: ValidationInfo) -> float:
        """The range of the kind's unit (`kind` is validated before `magnitude`, so it is in info.data)."""
        kind = info.data.get("kind")
        if kind in (ImpairmentKind.EXTRA_LOSS, ImpairmentKind.NODE_LOSS) and magnitude > 1:
            raise ValueError(f"magnitude of {kind.value} is a share and must be <= 1, got {magnitude}")
        if kind in (ImpairmentKind.EXTRA_RTT, ImpairmentKind.EXTRA_JITTER) and magnitude > MAX_EXTRA_MILLISECONDS:
            limit = f"{MAX_EXTRA_MILLISECONDS:.0f}"
            raise ValueError(f"magnitude of {kind.value} is in milliseconds and must be <= {limit}, got {magnitude}")
        return magnitude

    @model_validator(mode="after")
    def _check(self) -> Impairment:
        if self.kind in (ImpairmentKind.OUTAGE, ImpairmentKind.NODE_LOSS) and self.market is not None:
            raise ValueError(f"{self.kind.value} hits a whole region: market must be null")
        if self.peer_region is not None:
            if self.kind not in (ImpairmentKind.EXTRA_LOSS, ImpairmentKind.EXTRA_RTT) or self.market is not None:
                raise ValueError("a backbone impairment (peer_region) is extra_loss or extra_rtt, with market null")
            if self.peer_region == self.region:
                raise ValueError("peer_region must differ from region: a backbone path joins two regions")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active_at(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)
