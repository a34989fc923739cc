"""What the job queue tells the log and /ws: job events, outcome counters, coalesced queue:stats frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agent.clock import Clock
from agent.queue.model import Job, Outcome, Status
from agent.store import jobs as sql

log = logging.getLogger("agent.queue")

Emit = Callable[[str, dict[str, Any]], None]
STATS_EVERY = 0.5  # queue:stats is coalesced to at most one frame per this many seconds


class QueueEvents:
    """Announces what happened to jobs: a log line and a /ws event each, plus counters and stats frames."""

    def __init__(self, emit: Emit | None, clock: Clock, stats: Callable[[], Awaitable[dict[str, int]]]) -> None:
        self._emit = emit
        self.clock = clock
        self._stats = stats
        self._stats_handle: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task] = set()
        self.counters = {"completed": 0, "failed": 0, "retried": 0, "cancelled": 0}

    @property
    def listening(self) -> bool:
        """True when there is a /ws hub to send to (callers skip building event data otherwise)."""
        return self._emit is not None

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Send an event to the /ws hub (if any)."""
        if self._emit is not None:
            self._emit(type_, data)

    def inserted(self, results: list[tuple[Job, bool]]) -> bool:
        """job:queued (job:failed for a dead dependency) for new jobs; True when any job was new."""
        created = False
        for job, new in results:
            if not new:
                continue
            created = True
            if job.status == Status.FAILED:
                self.emit("job:failed", {"job_id": job.id, "type": job.type, "error": job.error,
                                         "will_retry": False})
            else:
                self.emit("job:queued", {"job_id": job.id, "type": job.type, "priority": job.priority})
        if created:
            self.stats_soon()
        return created

    def cancelled(self, job: Job, cascaded: list[sql.Cascade]) -> None:
        """A pending job cancelled before it ran, and what its cancellation took with it."""
        self.counters["cancelled"] += 1
        log.info("← job %d %s cancelled before it ran", job.id, job.type)
        self.emit("job:cancelled", {"job_id": job.id, "type": job.type})
        self.cascade(cascaded)
        self.stats_soon()

    def written(self, outcomes: list[tuple[Job, Outcome]], cascaded: list[sql.Cascade]) -> None:
        """Log and emit events for written outcomes and their side effects."""
        for job, out in outcomes:
            self.outcome(job, out)
        self.cascade(cascaded)
        if outcomes:
            self.stats_soon()

    def outcome(self, job: Job, out: Outcome) -> None:
        """Log and emit the event for one written outcome."""
        if out.status == Status.COMPLETED:
            self.counters["completed"] += 1
            log.info("← job %d %s completed", job.id, job.type)
            self.emit("job:completed", {"job_id": job.id, "type": job.type, "result": out.result})
        elif out.status == Status.CANCELLED:
            self.counters["cancelled"] += 1
            log.info("← job %d %s cancelled", job.id, job.type)
            self.emit("job:cancelled", {"job_id": job.id, "type": job.type})
        else:
            retry = out.status == Status.PENDING
            self.counters["retried" if retry else "failed"] += 1
            log.warning("%s job %d %s failed (attempt %d): %s", "↻" if retry else "!", job.id, job.type,
                        job.attempts, out.error)
            self.emit("job:failed", {
                "job_id": job.id, "type": job.type, "error": out.error, "will_retry": retry,
                "attempts": job.attempts,
                "next_retry_in": (out.run_after or 0) - self.clock.now() if retry else None})

    def cascade(self, cascaded: list[sql.Cascade]) -> None:
        """Emit events for jobs failed or superseded as a side effect of another job's outcome."""
        for job_id, type_, status, msg in cascaded:
            self.counters["failed" if status == Status.FAILED.value else "cancelled"] += 1
            log.warning("! job %d %s %s: %s", job_id, type_, status, msg)
            kind = "job:failed" if status == Status.FAILED.value else "job:cancelled"
            self.emit(kind, {"job_id": job_id, "type": type_, "error": msg, "will_retry": False})

    def stats_soon(self) -> None:
        """Coalesce queue:stats frames to one per STATS_EVERY seconds."""
        if self._emit is None or self._stats_handle is not None:
            return
        self._stats_handle = asyncio.get_running_loop().call_later(STATS_EVERY, self._stats_due)

    def close(self) -> None:
        """Drop a queue:stats frame still waiting to be sent."""
        if self._stats_handle is not None:
            self._stats_handle.cancel()
            self._stats_handle = None

    def _stats_due(self) -> None:
        """Timer callback: send queue:stats from a task."""
        self._stats_handle = None
        task = asyncio.create_task(self._send_stats())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_stats(self) -> None:
        """Emit queue:stats."""
        with contextlib.suppress(Exception):  # the database may have been closed meanwhile
            self.emit("queue:stats", await self._stats())
