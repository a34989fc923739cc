"""The `webhook` job's enqueue call: one job per recorded event, remembered on the event's row."""

from __future__ import annotations

from agent.queue import Queue
from agent.queue.model import Priority
from agent.store import Database
from agent.store import webhooks as store

PRIORITY = Priority.CRITICAL


async def enqueue_webhook(queue: Queue, db: Database, event_id: int) -> int:
    """Queue the webhook job for one recorded event and note its id on the event; returns the job id."""
    job = await queue.enqueue("webhook", {"event_id": event_id}, priority=PRIORITY)
    await db.write(store.set_job_ids, event_id, [job.id])
    return job.id
