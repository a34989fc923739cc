"""The agent's event stream: parts emit `(type, data)`; the /ws hub and in-process listeners subscribe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agent")

Emit = Callable[[str, dict[str, Any]], None]


class Events:
    """Fan one emitted event out to every subscriber; a failing subscriber does not stop the others."""

    def __init__(self) -> None:
        self._listeners: list[Emit] = []

    def subscribe(self, listener: Emit) -> Callable[[], None]:
        """Add a listener; returns the call that removes it again."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Deliver one event to every listener, in subscription order."""
        for listener in list(self._listeners):
            try:
                listener(type_, data)
            except Exception:  # a broken listener must not break the emitter
                log.exception("event listener failed on %s", type_)
