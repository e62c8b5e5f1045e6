"""Requests to the simulator's HTTP API: strict JSON decoding, the body models, and their bounds.

Used by `sim.http_api`, whose every route turns its raw body into one of these models in a single
step (`parse_request`) before it calls the fleet; anything wrong raises `ApiError` with the HTTP
status and the field at fault, so nothing in the fleet has changed when an error is answered.
Pure (no I/O): the fleet's clock comes in as `now`, for the checks that dates are near it.

Bounds, and why:
- JSON must be standard JSON in UTF-8: `NaN`/`Infinity` are refused (they are not JSON, and a reply
  echoing them would not be either), as are numbers whose text is longer than `MAX_NUMBER_CHARS`
  (Python refuses to convert ints past 4,300 digits with a ValueError of its own) or that overflow
  a float (`1e400`), and nesting deeper than the parser's recursion limit.
- Every float in a body is finite (`allow_inf_nan=False`) and has a physical range: an event lasts
  at most `MAX_EVENT_SECONDS`, ramps at most `MAX_RAMP_SECONDS`; impairment magnitudes are bounded
  by `sim.impairments`.
- Dates (impairment start/end, event start) lie within `DATE_WINDOW` of the fleet's clock; the
  drain deadline's window is the fleet's own rule (`sim.fleet.actuation`), as in-process callers
  need it too.
- Identifiers (`plan_id`, `actor`) are at most `MAX_ID_CHARS`; `reason` is unbounded here (an
  actuation is never refused for a long explanation) and the fleet stores a bounded prefix.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from sim.impairments import Impairment

MAX_BODY_BYTES = 1 << 20
"""Largest request body (1 MiB): a prod weights table is ~20 kB; a bigger body is refused with 413."""
MAX_NUMBER_CHARS = 100
"""Longest text of a JSON number; no quantity of this API needs more digits."""
MAX_ID_CHARS = 200
"""Longest plan_id or actor."""
MAX_ERROR_CHARS = 500
"""Error messages and field paths are clipped to this: they may quote what the client sent."""
DATE_WINDOW = timedelta(days=366)
"""Impairment and event dates must lie within this of the fleet's clock, either way."""
MAX_EVENT_SECONDS = 30 * 86400.0
"""Longest demand event (a month-long sale is already a new baseline, not an event)."""
MAX_RAMP_SECONDS = 86400.0
"""Longest ramp of a demand event."""


class ApiError(Exception):
    """A request the API refuses: answered as `{"error": message, "field": field}` with `status`."""

    def __init__(self, status: HTTPStatus, message: str, field: str | None = None) -> None:
        super().__init__(clip(message))
        self.status = status
        self.field = None if field is None else clip(field)


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text`, shortened to `limit` characters with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... [{len(text) - limit + 30} chars cut]"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (numbers must be finite)")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} digits is longer than the {MAX_NUMBER_CHARS} allowed")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters is longer than the {MAX_NUMBER_CHARS} allowed")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {clip(text, 40)} is out of range (overflows a float)")
    return value


def decode_json(raw: bytes) -> Any:
    """The body as standard JSON (an empty body is `null`); ApiError 400 for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not UTF-8: byte {error.start} ({error.reason})") from None
    try:
        return json.loads(
            text or "null", parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_bounded_float
        )
    except RecursionError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and the number checks above
        raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {error}") from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Attribution(_Body):
    plan_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Plan or workflow step asking.")
    actor: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Who or what acts.")
    reason: str = Field(default="", description="Why (the audit log keeps a bounded prefix).")


class DesiredNodesBody(_Attribution):
    desired_nodes: int = Field(ge=0, strict=True, description="Absolute node count.")


class DrainBody(_Attribution):
    deadline: AwareDatetime = Field(
        description="Remove the node at this time even if sessions remain (within the fleet's drain window)."
    )


class UndrainBody(_Attribution):
    pass


class SessionMoveBody(_Attribution):
    market: str = Field(min_length=1, max_length=16, description="Market whose calls move.")
    to_region: str = Field(min_length=1, max_length=64, description="Region they reconnect to.")
    sessions: float = Field(ge=0, le=1e9, allow_inf_nan=False, description="How many calls, at most.")


class DrainOrderBody(_Attribution):
    nodes: list[str] = Field(max_length=100_000, description="The region's nodes, first to drain first.")
    leaving_soon: int = Field(ge=0, le=100_000, description="How many at the front the forecast no longer needs.")


class TrafficWeightsBody(_Attribution):
    weights: dict[str, dict[str, float]] = Field(description="market -> region -> share (finite, >= 0).")


def _near_clock(value: datetime | None, info: ValidationInfo) -> datetime | None:
    """A date within DATE_WINDOW of the fleet's clock (`now` in the validation context)."""
    now = (info.context or {}).get("now")
    if value is None or now is None:
        return value
    if not now - DATE_WINDOW <= value <= now + DATE_WINDOW:
        raise ValueError(f"must be within {DATE_WINDOW.days} days of the fleet's clock {now.isoformat()}")
    return value


class ImpairmentBody(Impairment):
    """`sim.impairments.Impairment` (its own bounds on magnitude), with dates near the fleet's clock."""

    @field_validator("start", "end")
    @classmethod
    def _dates_near_clock(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _near_clock(value, info)


class DemandEventBody(_Body):
    market: str = Field(description="Market code.")
    peak_multiplier: float = Field(gt=0, le=50, description="Demand multiplier on the plateau.")
    ramp_seconds: float = Field(default=600, ge=0, le=MAX_RAMP_SECONDS, description="Ramp up (and down) time.")
    duration_seconds: float = Field(gt=0, le=MAX_EVENT_SECONDS, description="Seconds from start until the ramp down.")
    start: AwareDatetime | None = Field(default=None, description="Start; null: now.")

    @field_validator("start")
    @classmethod
    def _start_near_clock(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _near_clock(value, info)


_RequestT = TypeVar("_RequestT", bound=BaseModel)


def parse_request(model: type[_RequestT], raw: bytes, *, now: datetime) -> _RequestT:
    """The one validation step of a route: JSON (400), then the model and its bounds (422)."""
    data = decode_json(raw)
    try:
        return model.model_validate(data, context={"now": now})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{field or 'body'}: {first['msg']}", field) from None
