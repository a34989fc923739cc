"""An async token bucket shared by every request one provider makes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from agent.clock import Clock

# TMDB allows about 50 requests/second per IP today; 40 per 10 s is the old documented limit
# and keeps a library-wide rescan polite.
DEFAULT_REQUESTS: Final = 40
DEFAULT_PERIOD: Final = 10.0

Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Allows `capacity` requests at once, refilled at `capacity / period` tokens per second.

    `acquire()` waits (through the injected `sleep`) until a token is free; waiters are
    served in arrival order. Tests pass a FakeClock and a sleep that advances it.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_REQUESTS,
        period: float = DEFAULT_PERIOD,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"rate limit capacity must be at least 1, got {capacity}")
        if period <= 0:
            raise ValueError(f"rate limit period must be positive, got {period}")
        self.capacity = capacity
        self.period = period
        self._clock = clock or Clock()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._tokens = float(capacity)
        self._updated = self._clock.monotonic()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds spent waiting, for tests and stats

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.capacity / self.period

    def _refill(self) -> None:
        """Add the tokens earned since the last refill, up to capacity."""
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.capacity), self._tokens + elapsed * self.rate)
        self._updated = now

    def available(self) -> float:
        """Return how many tokens are free right now."""
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        """Take one token, waiting until one is free."""
        async with self._lock:
            self._refill()
            while self._tokens < 1.0:
                delay = (1.0 - self._tokens) / self.rate
                self.waited += delay
                await self._sleep(delay)
                self._refill()
            self._tokens -= 1.0

    def penalise(self) -> None:
        """Empty the bucket (after a 429) so the next requests spread out."""
        self._refill()
        self._tokens = 0.0
