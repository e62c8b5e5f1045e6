"""What a controller can know of the offered demand: Prometheus scrapes, late and noisy, and their history.

The simulated fleet knows each market's offered sessions exactly (`sim.demand.DemandModel`); a real
controller sees a gauge scraped every `scrape_seconds`, reaching it `lag_seconds` late, measured with
an error (sessions that ring but never connect, retries counted twice, exporters that disagree).
`ScrapedDemand` turns the truth into that view, the same for every policy of a run (seeded by the
fleet's seed and the scrape's time, never by who asks):

- `observe(t)`: per market, the newest scrape visible at `t` (taken at `t - lag`, rounded down to
  the scrape grid) times `1 + e`, `e` uniform in +-`noise`; and its slope, a least-squares fit over
  the scrapes of the last `trend_window_seconds` (what `deriv()` computes);
- `history(t)`: `avg_over_time` of those scrapes per `history_step_seconds` bin over the last
  `history_days`, visible bins only: what the controller's bounded range query returns
  (`controller/adapters/demand_history.py`). Built from before the trace start too: a controller
  that has run for a week has a week of history.

`DemandObservation.exact()` is the former view (the true value and slope, no history), kept to
measure what realism costs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from controller.snapshot import MAX_HISTORY_BINS, DemandHistory
from sim.demand import DemandModel

FloatArray = np.ndarray


class DemandObservation(BaseModel):
    """How the fleet shows offered demand to a controller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lag_seconds: float = Field(default=60.0, ge=0, description="Age of the newest visible scrape.")
    noise: float = Field(default=0.02, ge=0, lt=1, description="Measurement error, uniform in +-noise.")
    scrape_seconds: float = Field(default=15.0, gt=0, description="Scrape interval.")
    trend_window_seconds: float = Field(default=300.0, gt=0, description="Range of the deriv() slope.")
    history_days: float = Field(default=8.0, ge=0, description="History handed to the controller (0: none).")
    history_step_seconds: float = Field(default=300.0, gt=0, description="Width of one history bin.")
    exact_values: bool = Field(default=False, description="True: the true value and slope, no scrape at all.")

    @classmethod
    def exact(cls) -> DemandObservation:
        """The controller sees the true offered demand and slope now, and no history (the old view)."""
        return cls(lag_seconds=0.0, noise=0.0, history_days=0.0, exact_values=True)


class ScrapedDemand:
    """The scrapes and history of one fleet's demand (see module docstring)."""

    def __init__(self, demand: DemandModel, markets: list[str], seed: int, settings: DemandObservation) -> None:
        self.demand = demand
        self.markets = markets
        self.seed = seed
        self.settings = settings
        self._scrapes: OrderedDict[int, FloatArray] = OrderedDict()
        self._bins: OrderedDict[int, FloatArray] = OrderedDict()
        self._history: DemandHistory | None = None
        self._history_last_bin: int | None = None
        bins = settings.history_days * 86_400 / settings.history_step_seconds
        self._history_bins = min(MAX_HISTORY_BINS, math.floor(bins))

    def _noise(self, stream: int, index: int, draws: int = 1) -> FloatArray:
        amplitude = self.settings.noise
        if amplitude == 0:
            return np.zeros(len(self.markets))
        rng = np.random.default_rng([self.seed, stream, index & 0x7FFFFFFFFFFF])
        return rng.uniform(-amplitude, amplitude, size=(draws, len(self.markets))).mean(axis=0)

    def _scrape(self, index: int) -> FloatArray:
        """Offered sessions per market as scraped at `index * scrape_seconds` (cached, bounded)."""
        value = self._scrapes.get(index)
        if value is None:
            at = index * self.settings.scrape_seconds
            value = self.demand.offered_vector(at) * (1.0 + self._noise(0, index))
            self._scrapes[index] = value
            limit = int(self.settings.trend_window_seconds / self.settings.scrape_seconds) + 8
            while len(self._scrapes) > limit:
                self._scrapes.popitem(last=False)
        return value

    def observe(self, at_epoch: float) -> tuple[FloatArray, FloatArray, float]:
        """(offered per market, slope per market in sessions/s, age of the sample in seconds) at `at_epoch`."""
        s = self.settings
        if s.exact_values:  # the former view, value for value (the scalar path, not the vector one)
            earlier = at_epoch - s.trend_window_seconds
            now = np.array([self.demand.offered_at_epoch(m, at_epoch) for m in self.markets])
            before = np.array([self.demand.offered_at_epoch(m, earlier) for m in self.markets])
            return now, (now - before) / s.trend_window_seconds, 0.0
        newest = math.floor((at_epoch - s.lag_seconds) / s.scrape_seconds + 1e-9)
        count = max(2, int(s.trend_window_seconds / s.scrape_seconds) + 1)
        indices = range(newest - count + 1, newest + 1)
        values = np.array([self._scrape(i) for i in indices])
        times = np.array(indices, dtype=np.float64) * s.scrape_seconds
        centred = times - times.mean()
        slope = (centred[:, None] * (values - values.mean(axis=0))).sum(axis=0) / (centred**2).sum()
        return values[-1], slope, at_epoch - newest * s.scrape_seconds

    def _bin(self, index: int) -> FloatArray:
        """avg_over_time of the scrapes of history bin `index`: the true value at the bin's middle
        times one plus the mean of its scrapes' errors."""
        value = self._bins.get(index)
        if value is None:
            s = self.settings
            middle = (index + 0.5) * s.history_step_seconds
            draws = max(1, round(s.history_step_seconds / s.scrape_seconds))
            value = self.demand.offered_vector(middle) * (1.0 + self._noise(1, index, draws))
            self._bins[index] = value
            while len(self._bins) > self._history_bins + 4:
                self._bins.popitem(last=False)
        return value

    def history(self, at_epoch: float) -> DemandHistory | None:
        """The bins visible at `at_epoch` (each ends at least `lag_seconds` before it), oldest first."""
        s = self.settings
        if self._history_bins < 1 or s.exact_values:
            return None
        last = math.floor((at_epoch - s.lag_seconds) / s.history_step_seconds + 1e-9) - 1
        if self._history is not None and self._history_last_bin == last:
            return self._history
        indices = range(last - self._history_bins + 1, last + 1)
        table = np.array([self._bin(i) for i in indices])
        self._history = DemandHistory.model_construct(
            step_seconds=s.history_step_seconds,
            end=datetime.fromtimestamp((last + 1) * s.history_step_seconds, tz=UTC),
            offered={market: tuple(table[:, m].tolist()) for m, market in enumerate(self.markets)},
        )
        self._history_last_bin = last
        return self._history
