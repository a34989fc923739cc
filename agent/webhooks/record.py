"""A webhook as recorded in webhook_events: written once by the route, read back typed by the webhook job.

The route stores the sender's decoded body (`payload`, shown by the API) and the event it parsed from it
(`event`, WebhookEvent.to_dict() as JSON). The job reads the event back with one store call; only a row
recorded before migration 0004 (no event yet) has its payload parsed, once.
"""

from __future__ import annotations

import json

from agent.errors import AgentError, PermanentFailure
from agent.store import Database
from agent.store import webhooks as store
from agent.webhooks.model import WebhookEvent
from agent.webhooks.parse import parse_webhook


def ignored_reason(event: WebhookEvent) -> str | None:
    """Why an event needs no job (its row's `ignored`), or None when it does."""
    return None if event.needs_work else (event.ignore_reason or f"{event.event_type}: nothing to do")


async def record_event(db: Database, event: WebhookEvent, now: float, agent: str | None = None) -> int:
    """Write one accepted webhook (decoded body and parsed event) and return its event id; `agent` is the
    receiving agent on a shared store (only it resumes the event after a stop)."""
    return await db.write(
        store.insert_event,
        event.source,
        event.event_type,
        json.dumps(event.raw),
        json.dumps(event.to_dict()),
        now,
        ignored_reason(event),
        agent,
    )


async def load_event(db: Database, event_id: int) -> WebhookEvent:
    """The typed event of one recorded webhook; PermanentFailure when it is gone or unreadable."""
    row = await db.read(store.event, event_id)
    if row is None:
        raise PermanentFailure(f"webhook event {event_id} does not exist")
    if row["event"] is None:  # recorded before migration 0004: parse the sender's body this once
        try:
            return parse_webhook(row["source"], row["payload"].encode("utf-8"), "application/json")
        except AgentError as exc:
            raise PermanentFailure(f"webhook event {event_id} cannot be parsed again: {exc.message}") from None
    try:
        return WebhookEvent.from_dict(json.loads(row["event"]))
    except (AgentError, ValueError) as exc:
        reason = exc.message if isinstance(exc, AgentError) else str(exc)
        raise PermanentFailure(f"webhook event {event_id}: its stored event cannot be read: {reason}") from None
