"""The `webhook` job's payload and enqueue call: one job per recorded event, remembered on the event's row."""

from __future__ import annotations

from typing import Any

from agent.errors import PermanentFailure
from agent.queue import Queue
from agent.queue.model import Priority
from agent.store import Database
from agent.store import webhooks as store

PRIORITY = Priority.CRITICAL


def payload_of(event_id: int) -> dict[str, Any]:
    """The webhook job's payload: just the recorded event's id."""
    return {"event_id": event_id}


def event_id_of(payload: dict[str, Any]) -> int:
    """The event id a webhook job payload names; PermanentFailure when it is not an integer."""
    event_id = payload.get("event_id")
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        raise PermanentFailure(f"webhook job payload needs an integer event_id, got {event_id!r}")
    return event_id


async def enqueue_webhook(queue: Queue, db: Database, event_id: int) -> int:
    """Queue the webhook job for one recorded event and note its id on the event; returns the job id."""
    job = await queue.enqueue("webhook", payload_of(event_id), priority=PRIORITY)
    await db.write(store.set_job_ids, event_id, [job.id])
    return job.id
