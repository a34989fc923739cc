"""The one seam for time, so retries, debounces and TTLs are testable without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        """Return the current time in seconds."""
        return time.time()

    def monotonic(self) -> float:
        """Return a monotonic time in seconds."""
        return time.monotonic()


class FakeClock(Clock):
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> float:
        """Return the pinned time."""
        return self._now

    def monotonic(self) -> float:
        """Return the pinned monotonic time."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._now += seconds
        self._mono += seconds


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as ISO 8601 UTC, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_iso_now() -> str:
    """Current time as ISO 8601 UTC."""
    return iso(time.time()) or ""
