"""A token bucket: calls started per second, with a burst."""

from __future__ import annotations

import time
from collections.abc import Callable

# --- rate limiter -------------------------------------------------------------------------------


class TokenBucket:
    """Calls started per second: `burst` tokens, refilled at `rate` per second.

    The bucket holds up to `rate * timer_slack_s` of a token beyond `burst`, so a dispatcher that
    wakes a little late (epoll rounds timeouts up to the millisecond) keeps the `1/rate` grid
    instead of losing the lateness on every start (with burst 1 that cost 3 % of the rate at
    50 cps). Any window of W seconds still holds at most `burst + rate * (W + timer_slack_s)` starts.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        timer_slack_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"calls_per_second must be > 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self.capacity = burst + min(rate * timer_slack_s, 0.5)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self) -> float:
        """Take a token and return 0, or take nothing and return the seconds until one is due."""
        self._refill()
        if self._tokens >= 1 - 1e-9:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def give_back(self) -> None:
        self._tokens = min(self.capacity, self._tokens + 1)
