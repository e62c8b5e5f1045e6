"""DemandEvent bounds: an announced sale with an infinite or absurd length is refused, not planned on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.demand_events import MAX_EVENT_SECONDS, DemandEvent

VALID = {"market": "ID", "start": "2026-12-01T00:00:00Z", "peak_multiplier": 3.0, "duration_seconds": 3600}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_seconds", float("inf")),
        ("duration_seconds", float("nan")),
        ("duration_seconds", MAX_EVENT_SECONDS + 1),
        ("ramp_seconds", float("inf")),
        ("ramp_seconds", 1e12),
        ("peak_multiplier", float("nan")),
    ],
)
def test_non_finite_or_absurd_lengths_are_refused(field, value):
    with pytest.raises(ValidationError) as refused:
        DemandEvent.model_validate({**VALID, field: value})
    assert refused.value.errors()[0]["loc"] == (field,)


def test_a_month_long_event_is_still_an_event():
    assert DemandEvent.model_validate({**VALID, "duration_seconds": MAX_EVENT_SECONDS}).duration_seconds == MAX_EVENT_SECONDS
