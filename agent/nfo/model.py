"""Shared vocabulary of the NFO package: the parse result, its error type and the NFO kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from agent.errors import PermanentFailure

KINDS: Final = ("movie", "tvshow", "episodedetails")
# Largest NFO we read; real ones are a few kilobytes, a multi-episode file a few hundred.
MAX_NFO_BYTES: Final = 8 * 1024 * 1024


class NfoError(PermanentFailure):
    """An NFO cannot be read or written (malformed, hostile, or of the wrong kind)."""

    default_message = "unreadable NFO"


@dataclass
class NfoResult:
    """What one NFO file says: its kind, the item fields, every episode root, trailing URLs, any error."""

    kind: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    error: str | None = None
    encoding: str | None = None

    @property
    def ok(self) -> bool:
        """True when the NFO was read without error."""
        return self.error is None
