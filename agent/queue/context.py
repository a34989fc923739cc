"""What a job handler gets from the queue: its job, progress reporting, cancellation checks, follow-ups."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final, Protocol

from agent.clock import Clock
from agent.errors import JobCancelled
from agent.queue.model import Job
from agent.store import Database
from agent.store import jobs as sql

PROGRESS_STORE_EVERY: Final = 1.0  # seconds of a job's run between writes of its progress row


class JobSource(Protocol):
    """What a context needs of its queue (the Queue in agent.queue.worker is one)."""

    db: Database
    clock: Clock

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Broadcast an event."""

    async def enqueue(self, type_: str, payload: dict[str, Any] | None = None, **kw: Any) -> Job:
        """Enqueue a job."""


class JobContext:
    """What a handler gets: its job, progress reporting, cancellation checks, follow-up enqueue."""

    def __init__(self, queue: JobSource, job: Job) -> None:
        self.queue = queue
        self.job = job
        self.payload = job.payload
        self.cancelled = asyncio.Event()
        self.timed_out = False
        self._stored_at = time.monotonic()  # when progress was last written (the claim wrote the row)

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress 0..1 (emits job:progress); raises JobCancelled if a cancel was requested.

        The event goes out every time; the row is written at most once per PROGRESS_STORE_EVERY seconds of a
        job's run (and always when the job was cancelled, so it shows where it stopped): a first run's
        thousands of short jobs would otherwise spend a database write each on a message nobody reads. A
        cancel asked for by another process (the CLI) is seen at such a write; this process's own cancels
        set `cancelled` directly.
        """
        fraction = max(0.0, min(1.0, float(fraction)))
        self.job.progress, self.job.message = fraction, message
        now = self.queue.clock.now()
        requested = False
        started = time.monotonic()
        if self.cancelled.is_set() or started - self._stored_at >= PROGRESS_STORE_EVERY:
            self._stored_at = started
            requested = await self.queue.db.write(sql.set_progress, self.job.id, fraction, message, now)
        self.queue.emit("job:progress", {"job_id": self.job.id, "type": self.job.type, "progress": fraction,
                                          "message": message})
        if requested:
            self.cancelled.set()
        self.check_cancelled()

    def check_cancelled(self) -> None:
        """Raise JobCancelled at a checkpoint when this job was cancelled."""
        if self.cancelled.is_set():
            raise JobCancelled()

    async def enqueue(self, type_: str, payload: dict[str, Any] | None = None, **kw: Any) -> Job:
        """Enqueue a follow-up job; it runs next to this job's chain among equal priorities (unless the caller
        starts a chain of its own with chain=None), and it counts as work of this job's origin."""
        kw.setdefault("chain", self.job.chain or self.job.id)
        kw.setdefault("origin", self.job.origin or self.job.id)
        return await self.queue.enqueue(type_, payload, **kw)
