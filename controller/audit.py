"""AuditRecord: the trace every actuation leaves (who or what, why, before, after; invariant 6).

Actuators (`controller/adapters/`) return one per action; the control loop and the failover
workflows keep them in Temporal history and export them, so "did this happen once?" is answerable.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AuditRecord(BaseModel):
    """One actuation, applied or found already in place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan_id: str = Field(description="Plan (or workflow step) that asked for the action.")
    actor: str = Field(description="Who or what acted: controller, failover/<id>, drill/<id>, a user.")
    action: str = Field(description="set_desired_nodes, drain_node, undrain_node, set_traffic_weights, ...")
    target: str = Field(description="What was acted on: region, region/node, market weights.")
    reason: str = Field(default="", description="Why, from the plan's explanation.")
    before: Any = Field(default=None, description="State read before acting (JSON-able).")
    after: Any = Field(default=None, description="State after acting (JSON-able).")
    changed: bool = Field(description="False when the target already matched (idempotent no-op).")
    at: AwareDatetime = Field(description="When the action completed.")
