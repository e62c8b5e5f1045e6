"""Named, versioned scenarios for the simulated fleet: demand events and impairments over time.

Each trace is a YAML file beside this module (`sim/traces/<name>.yaml`) holding offsets from the
trace start; `load_trace(name)` turns them into absolute times. Traces name only regions and
markets present in every shipped environment (fra, dub, sin, cgk; DE, FR, ID, SG, TH), so each runs
on local, staging and prod. The fleet (`sim.fleet`) and the demand model (`sim.demand`) consume
them; `make bench` uses `bench-3day`. Randomness comes only from the fleet's seed, so a trace plus
a seed is reproducible.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from controller.demand_events import DemandEvent
from sim.impairments import Impairment, ImpairmentKind

__all__ = ["DemandEvent", "Trace", "TraceFileError", "UnknownTraceError", "load_trace", "load_trace_file"]

TRACE_DIR = Path(__file__).resolve().parent


class UnknownTraceError(LookupError):
    """No trace file of that name; the message lists the known ones."""


class TraceFileError(ValueError):
    """A trace file exists but is malformed; the message names file, field and reason."""


class Trace(BaseModel):
    """A scenario: how long, from when, which demand events and which impairments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Trace name (file stem).")
    version: int = Field(ge=1, description="Bumped whenever the scenario changes, so results name what they ran.")
    description: str = Field(default="", description="What the scenario exercises.")
    start: AwareDatetime = Field(description="Simulated time at which the trace begins.")
    duration_seconds: float = Field(gt=0, description="Length of the scenario.")
    events: list[DemandEvent] = Field(default_factory=list, description="Demand spikes.")
    impairments: list[Impairment] = Field(default_factory=list, description="Faults with start and end.")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_seconds)


MAX_TRACE_MINUTES = 366 * 24 * 60.0
"""Longest trace, offset or duration in a trace file: a year. Bigger (or .inf) ones overflowed
`timedelta` with a traceback instead of naming the field."""


class _EventEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    market: str
    start_offset_minutes: float = Field(ge=0, le=MAX_TRACE_MINUTES)
    ramp_minutes: float = Field(default=10, ge=0, le=MAX_TRACE_MINUTES)
    peak_multiplier: float = Field(gt=0, le=50)
    duration_minutes: float = Field(gt=0, le=MAX_TRACE_MINUTES)
    announced: bool = True


class _ImpairmentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    region: str
    market: str | None = None
    kind: ImpairmentKind
    magnitude: float = Field(default=1.0, ge=0)
    start_offset_minutes: float = Field(ge=0, le=MAX_TRACE_MINUTES)
    duration_minutes: float = Field(gt=0, le=MAX_TRACE_MINUTES)


class _TraceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    version: int = Field(ge=1)
    description: str = ""
    start: AwareDatetime
    duration_hours: float = Field(gt=0, le=MAX_TRACE_MINUTES / 60)
    events: list[_EventEntry] = Field(default_factory=list)
    impairments: list[_ImpairmentEntry] = Field(default_factory=list)


def available_traces() -> list[str]:
    return sorted(p.stem for p in TRACE_DIR.glob("*.yaml"))


def load_trace(name: str) -> Trace:
    """The trace `sim/traces/<name>.yaml` with absolute times; UnknownTraceError lists known names."""
    path = TRACE_DIR / f"{name}.yaml"
    if "/" in name or not path.is_file():
        raise UnknownTraceError(f"unknown trace {name!r} (known: {', '.join(available_traces())})")
    return load_trace_file(path)


def load_trace_file(path: Path) -> Trace:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise TraceFileError(f"{path}: not valid YAML: {error}") from error
    try:
        entry = _TraceFile.model_validate(raw)
        return Trace(
            name=entry.name,
            version=entry.version,
            description=entry.description,
            start=entry.start,
            duration_seconds=entry.duration_hours * 3600,
            events=[
                DemandEvent(
                    market=e.market,
                    start=entry.start + timedelta(minutes=e.start_offset_minutes),
                    ramp_seconds=e.ramp_minutes * 60,
                    peak_multiplier=e.peak_multiplier,
                    duration_seconds=e.duration_minutes * 60,
                    announced=e.announced,
                )
                for e in entry.events
            ],
            impairments=[
                Impairment(
                    region=i.region,
                    market=i.market,
                    kind=i.kind,
                    magnitude=i.magnitude,
                    start=entry.start + timedelta(minutes=i.start_offset_minutes),
                    end=entry.start + timedelta(minutes=i.start_offset_minutes + i.duration_minutes),
                )
                for i in entry.impairments
            ],
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors())
        raise TraceFileError(f"{path}: {problems}") from error


def quiet_trace(start: datetime, duration_seconds: float, name: str = "quiet") -> Trace:
    """A trace with no events or impairments (tests, `edgectl sim serve` without --trace)."""
    return Trace(name=name, version=1, start=start, duration_seconds=duration_seconds)
