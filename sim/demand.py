"""Offered demand: how many concurrent sessions each market's users want at an instant.

Used by `sim.fleet.SimulatedFleet` (arrivals), by the oracle policy (`sim.policies.oracle`, which
may look into the future) and by tests. Pure and deterministic for a given spec, trace and seed.

Shape, per market:
- **Diurnal curve on the market's local clock** (zoneinfo, so DST is honoured):
  `baseline + (peak - baseline) * ((1 + cos(2π (h - peak_hour) / 24)) / 2) ** 2` where `h` is the
  local hour. Exactly `peak_sessions` at `demand.peak_local_hour`, exactly `baseline_sessions`
  twelve hours away, smooth in between; the square makes the evening peak narrower than the trough,
  as consumer apps show.
- **Slow seeded variation**: two sinusoids (periods 2.3 and 5.1 days, amplitude `variation` each,
  phases drawn from the seed) so that days differ a little and a seed changes the run. Set
  `variation=0` for hand-checkable values.
- **Live-commerce events** from the trace: the demand is multiplied by
  `1 + Σ (peak_multiplier - 1) * shape(t)`, where `shape` ramps linearly from 0 to 1 over
  `ramp_seconds` from the event start, holds 1 until `start + duration_seconds`, then ramps back to 0
  over another `ramp_seconds`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from controller.demand_events import demand_multiplier
from controller.spec import EnvironmentSpec
from sim.traces import DemandEvent, Trace

_DAY = 86_400.0
_VARIATION_PERIODS_DAYS = (2.3, 5.1)


def diurnal_shape(local_hour: float, peak_local_hour: float) -> float:
    """0 at the trough (12 h from the peak) .. 1 at `peak_local_hour`."""
    return ((1.0 + math.cos(2.0 * math.pi * (local_hour - peak_local_hour) / 24.0)) / 2.0) ** 2


def event_shape(event: DemandEvent, at_epoch: float) -> float:
    """0..1: how far into its plateau `event` is at `at_epoch` (seconds since the Unix epoch)."""
    return event.shape_at(at_epoch)


class DemandModel:
    """Deterministic offered sessions per market for one spec, trace and seed."""

    def __init__(self, spec: EnvironmentSpec, trace: Trace, seed: int = 0, *, variation: float = 0.03) -> None:
        self.spec = spec
        self.events: list[DemandEvent] = list(trace.events)
        self._zones = {m.code: ZoneInfo(m.timezone) for m in spec.markets}
        self._offset_cache: dict[tuple[str, int], float] = {}
        rng = np.random.default_rng(seed)
        self._phases = {
            m.code: tuple(float(p) for p in rng.uniform(0, 2 * math.pi, size=len(_VARIATION_PERIODS_DAYS)))
            for m in spec.markets
        }
        self.variation = variation
        for event in self.events:
            if event.market not in spec.market_by_code:
                raise ValueError(
                    f"trace {trace.name!r}: event market {event.market!r} is not a market of environment "
                    f"{spec.name!r} (markets: {', '.join(spec.market_by_code)})"
                )

        self._codes = [m.code for m in spec.markets]
        self._index = {code: i for i, code in enumerate(self._codes)}
        self._zone_list = [self._zones[code] for code in self._codes]
        self._baseline = np.array([m.demand.baseline_sessions for m in spec.markets], dtype=np.float64)
        self._swing = np.array([m.demand.peak_sessions for m in spec.markets], dtype=np.float64) - self._baseline
        self._peak_hour = np.array([m.demand.peak_local_hour for m in spec.markets], dtype=np.float64)
        self._phase_matrix = np.array([self._phases[code] for code in self._codes], dtype=np.float64)
        self._periods = np.array(_VARIATION_PERIODS_DAYS) * _DAY
        self._offsets_by_hour: dict[int, np.ndarray] = {}

    def offered_vector(self, at_epoch: float) -> np.ndarray:
        """Offered sessions of every market (spec order) at `at_epoch`; same values as
        `offered_at_epoch`, computed with numpy for the fleet's per-step arrivals."""
        hour_bucket = int(at_epoch // 3600)
        offsets = self._offsets_by_hour.get(hour_bucket)
        if offsets is None:
            if len(self._offsets_by_hour) > 10_000:
                self._offsets_by_hour.clear()
            moment = datetime.fromtimestamp(hour_bucket * 3600, tz=UTC)
            offsets = np.array([(zone.utcoffset(moment) or timedelta(0)).total_seconds() for zone in self._zone_list])
            self._offsets_by_hour[hour_bucket] = offsets
        hours = ((at_epoch + offsets) % _DAY) / 3600.0
        shape = ((1.0 + np.cos(2.0 * np.pi * (hours - self._peak_hour) / 24.0)) / 2.0) ** 2
        values = self._baseline + self._swing * shape
        if self.variation:
            angles = 2 * np.pi * at_epoch / self._periods[None, :] + self._phase_matrix
            values = values * (1.0 + self.variation * np.sin(angles).sum(axis=1))
        if self.events:
            multipliers = np.ones(len(self._codes))
            for event in self.events:
                weight = event_shape(event, at_epoch)
                if weight:
                    multipliers[self._index[event.market]] += (event.peak_multiplier - 1.0) * weight
            values = values * multipliers
        return np.asarray(values, dtype=np.float64)

    def add_event(self, event: DemandEvent) -> None:
        if event.market not in self.spec.market_by_code:
            raise KeyError(event.market)
        self.events.append(event)

    def local_hour(self, market: str, at_epoch: float) -> float:
        """Hour of the day (0..24, fractional) on the market's local clock."""
        hour_bucket = int(at_epoch // 3600)
        key = (market, hour_bucket)
        offset = self._offset_cache.get(key)
        if offset is None:
            if len(self._offset_cache) > 100_000:
                self._offset_cache.clear()
            moment = datetime.fromtimestamp(hour_bucket * 3600, tz=UTC)
            delta = self._zones[market].utcoffset(moment)
            offset = delta.total_seconds() if delta is not None else 0.0
            self._offset_cache[key] = offset
        return ((at_epoch + offset) % _DAY) / 3600.0

    def base_sessions(self, market: str, at_epoch: float) -> float:
        """Diurnal demand with the seeded variation, without events."""
        profile = self.spec.market_by_code[market].demand
        shape = diurnal_shape(self.local_hour(market, at_epoch), profile.peak_local_hour)
        value = profile.baseline_sessions + (profile.peak_sessions - profile.baseline_sessions) * shape
        if self.variation:
            phases = self._phases[market]
            factor = 1.0
            for period_days, phase in zip(_VARIATION_PERIODS_DAYS, phases, strict=True):
                factor += self.variation * math.sin(2 * math.pi * at_epoch / (period_days * _DAY) + phase)
            value *= factor
        return value

    def event_multiplier(self, market: str, at_epoch: float) -> float:
        return demand_multiplier(self.events, market, at_epoch)

    def offered_at_epoch(self, market: str, at_epoch: float) -> float:
        return self.base_sessions(market, at_epoch) * self.event_multiplier(market, at_epoch)

    def offered_sessions(self, market: str, at: datetime) -> float:
        """Concurrent sessions users of `market` want at `at` (served or not)."""
        if market not in self.spec.market_by_code:
            raise KeyError(f"unknown market {market!r}")
        return self.offered_at_epoch(market, at.timestamp())

    def peak_offered(self, market: str, start: datetime, end: datetime, step_seconds: float = 300.0) -> float:
        """Highest offered sessions sampled every `step_seconds` in [start, end]."""
        best = 0.0
        at = start
        while at <= end:
            best = max(best, self.offered_sessions(market, at))
            at += timedelta(seconds=step_seconds)
        return best
