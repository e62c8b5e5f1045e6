"""When a crashed child of the local stack is started again, and when the supervisor stops trying.

`DevStack.heal()` (`edgectl/dev_stack.py`) keeps one `ChildRestarts` per child and asks it, each
time the child is found dead, how long to wait before starting it again. The wait doubles with
every crash in a row (a child that stayed up for `stable_seconds` starts again from
`first_delay_seconds`), and a child that crashed `max_restarts_per_window` times within
`window_seconds` is given up on: a crash loop is reported with its log instead of hidden behind
endless restarts. The clock is injected, so the rules are tested without waiting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    """How eagerly a crashed child is started again."""

    first_delay_seconds: float = 1.0
    """Wait before the first restart after a calm period."""
    max_delay_seconds: float = 30.0
    """The doubling wait never exceeds this."""
    max_restarts_per_window: int = 5
    """More crashes than this within `window_seconds` and the supervisor gives up."""
    window_seconds: float = 60.0
    """The window the crashes are counted in (one minute)."""
    stable_seconds: float = 60.0
    """A child up this long since its last start counts as healthy again: the backoff starts over."""


@dataclass
class ChildRestarts:
    """Restart bookkeeping of one child: its recent restarts and the backoff they earned."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    _restarts: deque[float] = field(default_factory=deque)
    _in_a_row: int = 0
    _last_start: float | None = None

    def started(self) -> None:
        """The child was (re)started now."""
        self._last_start = self.clock()

    def crashed(self) -> float | None:
        """The child was found dead now: seconds to wait before starting it again, or None to give up."""
        now = self.clock()
        window = self.policy.window_seconds
        while self._restarts and now - self._restarts[0] >= window:
            self._restarts.popleft()
        if len(self._restarts) >= self.policy.max_restarts_per_window:
            return None
        if self._last_start is not None and now - self._last_start >= self.policy.stable_seconds:
            self._in_a_row = 0
        self._in_a_row += 1
        self._restarts.append(now)
        delay = self.policy.first_delay_seconds * 2 ** (self._in_a_row - 1)
        return float(min(delay, self.policy.max_delay_seconds))

    @property
    def recent_restarts(self) -> int:
        """Restarts counted in the current window (for the log line)."""
        return len(self._restarts)
