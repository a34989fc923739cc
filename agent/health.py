"""Warnings `GET /api/health` reports: parts of the agent raise and clear them as conditions come and go.

DESIGN.md section 10: `warnings: [{"code": ..., "message": ..., "subject": ...}]`. One warning per
(code, subject): raising it again replaces its message, clearing it removes it. Any thread may call
these (the database writer thread notices a full disk, the event loop a vanished library root).
"""

from __future__ import annotations

import threading
from typing import Any, Final

LIBRARY_ROOT_MISSING: Final = "library_root_missing"


class HealthWarnings:
    """The agent's current warnings, in the order they were first raised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str | None], dict[str, Any]] = {}

    def raise_warning(self, code: str, message: str, subject: str | None = None) -> None:
        """Add a warning, or replace the message of the one with this code and subject."""
        with self._lock:
            self._items[(code, subject)] = {"code": code, "message": message, "subject": subject}

    def clear(self, code: str, subject: str | None = None) -> None:
        """Remove the warning with this code and subject (nothing happens when there is none)."""
        with self._lock:
            self._items.pop((code, subject), None)

    def items(self) -> list[dict[str, Any]]:
        """Copies of the current warnings, for /api/health."""
        with self._lock:
            return [dict(w) for w in self._items.values()]
