"""Several agents on one store: each agent's events reach every agent's /ws (PostgreSQL NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from agent.events import Events
from agent.store import Database
from agent.store.pg import EVENTS_CHANNEL, notify_many

log = logging.getLogger(__name__)

MAX_PAYLOAD: Final = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
FLUSH_SECONDS: Final = 0.05  # events of one moment go out together, in one transaction


class EventRelay:
    """Send this agent's events to the other agents and emit theirs here, marked with their agent's name.

    Events from another agent carry `agent` in their data; they are not sent on again. An event too large
    for a NOTIFY (a long job result) stays local.
    """

    def __init__(self, db: Database, events: Events, name: str) -> None:
        self.db, self.events, self.name = db, events, name
        self._pending: list[str] = []
        self._flush: asyncio.Task[None] | None = None
        self._relaying = False
        self._unsubscribe: Any = None

    def start(self) -> None:
        """Listen for the others' events and pass ours on."""
        self._unsubscribe = self.events.subscribe(self._outgoing)
        self.db.listen(EVENTS_CHANNEL, self._incoming)

    async def stop(self) -> None:
        """Stop passing events on; send what is waiting."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._flush is not None:
            with contextlib.suppress(Exception):
                await self._flush
        await self._send()

    def _outgoing(self, type_: str, data: dict[str, Any]) -> None:
        if self._relaying:
            return
        text = json.dumps({"agent": self.name, "type": type_, "data": data}, default=str)
        if len(text.encode()) > MAX_PAYLOAD:
            log.debug("event %s is too large to send to the other agents (%d bytes)", type_, len(text))
            return
        self._pending.append(text)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._later(), name="event-relay")

    async def _later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self._send()

    async def _send(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.db.write_concurrent(notify_many, EVENTS_CHANNEL, batch)
        except Exception as exc:  # the others miss these events; this agent's own /ws had them
            log.warning("could not pass %d event(s) to the other agents: %s", len(batch), exc)

    def _incoming(self, payload: str) -> None:
        if not payload:
            return
        try:
            msg = json.loads(payload)
            agent, type_, data = msg["agent"], msg["type"], msg["data"]
        except (ValueError, KeyError, TypeError):
            log.debug("ignoring a malformed event from another agent: %.80s", payload)
            return
        if agent == self.name or not isinstance(data, dict):
            return
        self._relaying = True
        try:
            self.events.emit(type_, {**data, "agent": agent})
        finally:
            self._relaying = False
