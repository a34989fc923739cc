"""An async token bucket shared by every request one provider makes, adapting to the provider's 429s.

TMDB dropped its 40-requests-per-10-s limit on 2019-12-16; what it enforces now is a ceiling of about
40-50 requests per second per IP, signalled by 429 with `Retry-After`. The bucket starts at the
configured ceiling. A 429 pauses every request until `Retry-After` has passed and lowers the rate
(multiplicative decrease); each answered request raises it again by a small step (additive increase)
up to just under the rate that met the 429, and from there, much more slowly, back to the ceiling. A
provider whose real limit sits a little under the configured one is thus met at its own pace, with a
429 now and then rather than one every few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from agent.clock import Clock

DEFAULT_REQUESTS: Final = 400  # per DEFAULT_PERIOD: 40 requests/s, TMDB's ceiling today
DEFAULT_PERIOD: Final = 10.0
DECREASE: Final = 0.75  # a 429 multiplies the current rate by this
MARGIN: Final = 0.97  # ... and the rate it recovers to is this share of the rate that met the 429
RECOVER_STEPS: Final = 100  # answered requests to climb from the floor back to that rate
PROBE_STEPS: Final = 5000  # answered requests a probe from the floor to the ceiling would take (~4 s from 97%)
EPSILON: Final = 1e-9  # seconds or tokens that count as none
FLOOR_SHARE: Final = 0.05  # the rate never drops below this share of the ceiling (or 1 request per period)

Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Allows `burst` requests at once (default `capacity`), refilled at the current rate.

    The ceiling is `capacity / period` tokens per second. `acquire()` waits (through the injected `sleep`)
    until a token is free and no `Retry-After` pause is running; waiters are served in arrival order.
    `throttled(delay)` is the 429 reaction, `answered()` the recovery. Tests pass a FakeClock and a sleep
    that advances it.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_REQUESTS,
        period: float = DEFAULT_PERIOD,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        burst: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"rate limit capacity must be at least 1, got {capacity}")
        if period <= 0:
            raise ValueError(f"rate limit period must be positive, got {period}")
        if burst is not None and burst < 1:
            raise ValueError(f"rate limit burst must be at least 1, got {burst}")
        self.capacity = capacity
        self.period = period
        self.burst = capacity if burst is None else min(burst, capacity)
        self.ceiling = capacity / period
        self.floor = max(self.ceiling * FLOOR_SHARE, 1.0 / period)
        self._rate = self.ceiling
        self._target = self.ceiling  # what answered requests climb back to after a 429
        self._clock = clock or Clock()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._tokens = float(self.burst)
        self._updated = self._clock.monotonic()
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds spent waiting, for tests and stats
        self.throttles = 0  # 429s seen

    @property
    def rate(self) -> float:
        """Tokens added per second right now (the ceiling unless a 429 lowered it)."""
        return self._rate

    def _refill(self) -> None:
        """Add the tokens earned since the last refill, up to the burst size."""
        now = self._clock.monotonic()
        elapsed = max(0.0, now - max(self._updated, self._paused_until))
        self._tokens = min(float(self.burst), self._tokens + elapsed * self._rate)
        self._updated = max(now, self._updated)

    def available(self) -> float:
        """Return how many tokens are free right now."""
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        """Take one token, waiting until one is free and any Retry-After pause is over."""
        async with self._lock:
            while True:
                pause = self._paused_until - self._clock.monotonic()
                if pause > EPSILON:
                    self.waited += pause
                    await self._sleep(pause)
                    continue
                self._refill()
                if self._tokens >= 1.0 - EPSILON:  # float rounding must not leave a waiter one ulp short forever
                    break
                delay = (1.0 - self._tokens) / self._rate
                self.waited += delay
                await self._sleep(delay)
            self._tokens = max(0.0, self._tokens - 1.0)

    def throttled(self, retry_after: float) -> None:
        """The provider answered 429: pause everything for `retry_after` s and slow down."""
        self._refill()
        self.throttles += 1
        self._tokens = 0.0
        now = self._clock.monotonic()
        if now >= self._paused_until:  # 429s of requests sent before this pause do not slow it down again
            self._target = max(self.floor, min(self._target, self._rate * MARGIN))
            self._rate = max(self.floor, self._rate * DECREASE)
        self._paused_until = max(self._paused_until, now + max(0.0, retry_after))

    def answered(self) -> None:
        """A request went through: climb back towards the ceiling."""
        if self._target < self.ceiling:
            self._target = min(self.ceiling, self._target + (self.ceiling - self.floor) / PROBE_STEPS)
        if self._rate < self._target:
            self._refill()
            self._rate = min(self._target, self._rate + (self.ceiling - self.floor) / RECOVER_STEPS)

    def penalise(self) -> None:
        """Empty the bucket so the next requests spread out (a 429 without the slow-down)."""
        self._refill()
        self._tokens = 0.0
