"""The durable job queue: enqueue, claim, run handlers, retry with backoff, cancel, recover.

One dispatcher task per queue writes finished outcomes and claims the next jobs in a single
hop to the writer thread, then runs handlers as asyncio tasks up to `workers` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent.clock import Clock
from agent.errors import Conflict, JobCancelled, NotFound, UserError
from agent.jobs.model import Job, Outcome, Priority, Status, decide
from agent.store import Database
from agent.store import jobs as sql

log = logging.getLogger("agent.queue")

Emit = Callable[[str, dict[str, Any]], None]
POLL_SECONDS = 1.0  # idle poll: covers delayed retries and jobs enqueued by another process (CLI)
STATS_EVERY = 0.5  # queue:stats is coalesced to at most one frame per this many seconds
PRUNE_EVERY = 3600.0


class JobContext:
    """What a handler gets: its job, progress reporting, cancellation checks, follow-up enqueue."""

    def __init__(self, queue: Queue, job: Job) -> None:
        self.queue = queue
        self.job = job
        self.payload = job.payload
        self.cancelled = asyncio.Event()

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress 0..1 (emits job:progress); raises JobCancelled if a cancel was requested."""
        fraction = max(0.0, min(1.0, float(fraction)))
        self.job.progress, self.job.message = fraction, message
        requested = await self.queue.db.write(sql.set_progress, self.job.id, fraction, message, self.queue.clock.now())
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
        """Enqueue a follow-up job."""
        return await self.queue.enqueue(type_, payload, **kw)


Handler = Callable[[JobContext], Awaitable[Any]]


@dataclass
class _Registration:
    handler: Handler
    timeout: float | None


class Queue:
    """Enqueue and run jobs against the SQLite `job_queue` table."""

    def __init__(self, db: Database, clock: Clock | None = None, emit: Emit | None = None, workers: int = 2,
                 limits: dict[str, int] | None = None, timeout: float = 600.0, max_retries: int = 3,
                 grace: float = 10.0, prune_after: float = 7 * 86400.0, rng: random.Random | None = None) -> None:
        self.db, self.clock = db, clock or Clock()
        self._emit = emit
        self.workers, self.limits = workers, dict(limits or {})
        self.timeout, self.max_retries, self.grace, self.prune_after = timeout, max_retries, grace, prune_after
        self.rng = rng or random.Random()
        self.worker_id = f"{os.getpid()}"
        self.handlers: dict[str, _Registration] = {}
        self._active: dict[int, tuple[asyncio.Task, JobContext]] = {}
        self._outcomes: list[tuple[Job, Outcome]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._stats_handle: asyncio.TimerHandle | None = None
        self._last_prune = 0.0
        self.counters = {"completed": 0, "failed": 0, "retried": 0, "cancelled": 0}

    # ------------------------------------------------------------------ setup

    def register(self, type_: str, handler: Handler, timeout: float | None = None) -> None:
        """Register the handler for a job type."""
        self.handlers[type_] = _Registration(handler, timeout)

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Send an event to the /ws hub (if any)."""
        if self._emit is not None:
            self._emit(type_, data)

    # ------------------------------------------------------------------ API

    async def enqueue(self, type_: str, payload: dict[str, Any] | None = None, *, priority: int = Priority.NORMAL,
                      max_retries: int | None = None, dedupe_key: str | None = None, lock_key: str | None = None,
                      depends_on: list[int] | tuple[int, ...] = (), delay: float = 0.0) -> Job:
        """Add a job (or return the pending one with the same dedupe_key) and wake the workers."""
        if not 1 <= int(priority) <= 100:
            raise UserError(f"priority must be between 1 and 100, got {priority}")
        spec = {"type": type_, "payload": payload or {}, "priority": int(priority),
                "max_retries": self.max_retries if max_retries is None else max_retries,
                "dedupe_key": dedupe_key, "lock_key": lock_key, "depends_on": list(depends_on), "delay": delay}
        try:
            job, created = await self.db.write(sql.insert, spec, self.clock.now())
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if created:
            event = "job:failed" if job.status == Status.FAILED else "job:queued"
            self.emit(event, {"job_id": job.id, "type": job.type, "priority": job.priority, "error": job.error,
                              "will_retry": False})
            self._stats_soon()
            self._wake.set()
        return job

    async def get(self, job_id: int) -> Job:
        """One job, or NotFound."""
        job = await self.db.read(sql.get, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def list(self, status: str | None = None, type_: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[Job], int]:
        """Jobs newest first."""
        if status is not None and status not in {s.value for s in Status}:
            raise UserError(f"unknown status {status!r} (use pending, running, completed, failed or cancelled)")
        return await self.db.read(sql.listing, status, type_, limit, offset)

    async def stats(self) -> dict[str, int]:
        """Pending, running and failed counts."""
        return await self.db.read(sql.stats)

    async def cancel(self, job_id: int, allow_running: bool = False) -> Job:
        """Cancel a pending job; a running one only with allow_running (it stops at its next checkpoint)."""
        job, what = await self.db.write(sql.cancel, job_id, self.clock.now(), allow_running)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if what == "cancelled":
            self.emit("job:cancelled", {"job_id": job.id, "type": job.type})
            self._stats_soon()
        elif what == "requested":
            active = self._active.get(job_id)
            if active:
                active[1].cancelled.set()
        else:
            raise Conflict(f"job {job_id} is {what}; only a pending job can be cancelled", detail={"status": what})
        return job

    async def retry(self, job_id: int) -> Job:
        """Put a failed or cancelled job back to pending."""
        job, what = await self.db.write(sql.retry, job_id, self.clock.now())
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if what != "retried":
            raise Conflict(f"job {job_id} is {what}; only a failed or cancelled job can be retried",
                           detail={"status": what})
        self.emit("job:queued", {"job_id": job.id, "type": job.type, "priority": job.priority})
        self._stats_soon()
        self._wake.set()
        return job

    async def recover(self) -> int:
        """Re-queue jobs a crash left running; logs the count."""
        count = await self.db.write(sql.recover, self.clock.now())
        if count:
            log.warning("↻ re-queued %d job(s) left running by an earlier stop", count)
        return count

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Recover, then start the dispatcher."""
        await self.recover()
        self._stopping = False
        self._task = asyncio.create_task(self._dispatch(until_idle=False), name="queue-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, give running jobs a grace period, re-queue the rest, write every outcome."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._active:
            tasks = [t for t, _ in self._active.values()]
            _, pending = await asyncio.wait(tasks, timeout=self.grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.shield(self._flush_final())
        if self._stats_handle:
            self._stats_handle.cancel()

    async def _flush_final(self) -> None:
        """Write outcomes that finished and re-queue the jobs that were interrupted."""
        interrupted = [o.job_id for _, o in self._outcomes if o.status == Status.RUNNING]
        done = [(j, o) for j, o in self._outcomes if o.status != Status.RUNNING]
        self._outcomes = []
        await self.db.write(sql.flush_and_claim, [o for _, o in done], 0, self.worker_id, [], {}, {},
                            self.clock.now())
        for job, out in done:
            self._announce(job, out, [])
        if interrupted:
            n = await self.db.write(sql.requeue, interrupted, self.clock.now())
            log.info("↻ %d running job(s) re-queued at shutdown", n)

    async def run_until_idle(self) -> None:
        """Run jobs until none is runnable now (tests, `scan --wait`)."""
        await self._dispatch(until_idle=True)

    async def _dispatch(self, until_idle: bool) -> None:
        """The dispatch loop: flush outcomes + claim in one hop, start handlers, wait to be woken."""
        while True:
            self._wake.clear()
            outcomes, self._outcomes = self._outcomes, []
            want = 0 if self._stopping else self.workers - len(self._active)
            if not outcomes and want <= 0:
                if self._stopping:
                    return
                await self._wait()
                continue
            running: dict[str, int] = {}
            for _, ctx in self._active.values():
                running[ctx.job.type] = running.get(ctx.job.type, 0) + 1
            saturated = [t for t, n in running.items() if t in self.limits and n >= self.limits[t]]
            now = self.clock.now()
            claimed, cascaded = await self.db.write(
                sql.flush_and_claim, [o for _, o in outcomes], max(want, 0), self.worker_id, saturated, running,
                self.limits, now)
            for job, out in outcomes:
                self._announce(job, out, cascaded)
                cascaded = []
            for job in claimed:
                self._start(job)
            if outcomes or claimed:
                self._stats_soon()
            await self._maybe_prune(now)
            if claimed or outcomes:
                continue
            if self._outcomes:
                continue
            if (until_idle or self._stopping) and not self._active:
                return
            await self._wait()

    async def _wait(self) -> None:
        """Sleep until woken (enqueue, a finished job) or the idle poll."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    def _start(self, job: Job) -> None:
        """Run a claimed job as a task."""
        ctx = JobContext(self, job)
        task = asyncio.create_task(self._run(ctx), name=f"job-{job.id}-{job.type}")
        self._active[job.id] = (task, ctx)
        log.info("→ job %d %s (attempt %d/%d)", job.id, job.type, job.attempts, job.max_retries + 1)
        self.emit("job:started", {"job_id": job.id, "type": job.type, "attempt": job.attempts})

    async def _run(self, ctx: JobContext) -> None:
        """Run one handler; the outcome is queued for the dispatcher to write."""
        job = ctx.job
        reg = self.handlers.get(job.type)
        exc: BaseException | None = None
        result: Any = None
        try:
            if reg is None:
                from agent.errors import PermanentFailure

                raise PermanentFailure(f"no handler registered for job type {job.type!r}")
            timeout = reg.timeout or self.timeout
            result = await asyncio.wait_for(reg.handler(ctx), timeout)
        except asyncio.CancelledError:
            # shutdown interrupted it: re-queue without counting the attempt
            self._outcomes.append((job, Outcome(job.id, Status.RUNNING)))
            self._active.pop(job.id, None)
            raise
        except TimeoutError:
            exc = TimeoutError(f"timed out after {reg.timeout or self.timeout:g} s")
        except Exception as e:  # noqa: BLE001 - every handler failure becomes a recorded outcome
            exc = e
            if getattr(e, "status", None) is None:
                log.warning("! job %d %s raised", job.id, job.type, exc_info=e)
        out = decide(job, exc, result, self.clock.now(), self.rng)
        if isinstance(exc, TimeoutError):
            out = Outcome(out.job_id, out.status, error=str(exc), run_after=out.run_after)
        self._outcomes.append((job, out))
        self._active.pop(job.id, None)
        self._wake.set()

    def _announce(self, job: Job, out: Outcome, cascaded: list[tuple[int, str, str]]) -> None:
        """Log and emit the event for a written outcome."""
        base = {"job_id": job.id, "type": job.type}
        if out.status == Status.COMPLETED:
            self.counters["completed"] += 1
            log.info("← job %d %s completed", job.id, job.type)
            self.emit("job:completed", {**base, "result": out.result})
        elif out.status == Status.CANCELLED:
            self.counters["cancelled"] += 1
            log.info("← job %d %s cancelled", job.id, job.type)
            self.emit("job:cancelled", base)
        else:
            retry = out.status == Status.PENDING
            self.counters["retried" if retry else "failed"] += 1
            log.warning("%s job %d %s failed: %s", "↻" if retry else "!", job.id, job.type, out.error)
            self.emit("job:failed", {**base, "error": out.error, "will_retry": retry,
                                     "attempts": job.attempts, "next_retry_in": (out.run_after or 0) - self.clock.now()
                                     if retry else None})
        for dep_id, dep_type, msg in cascaded:
            self.counters["failed"] += 1
            self.emit("job:failed", {"job_id": dep_id, "type": dep_type, "error": msg, "will_retry": False})

    def _stats_soon(self) -> None:
        """Coalesce queue:stats frames."""
        if self._emit is None or self._stats_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._stats_handle = loop.call_later(STATS_EVERY, lambda: asyncio.ensure_future(self._send_stats()))

    async def _send_stats(self) -> None:
        """Emit queue:stats."""
        self._stats_handle = None
        with contextlib.suppress(Exception):
            self.emit("queue:stats", await self.stats())

    async def _maybe_prune(self, now: float) -> None:
        """Delete old completed jobs once an hour."""
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        n = await self.db.write(sql.prune, now - self.prune_after)
        if n:
            log.info("pruned %d completed job(s) older than %.0f days", n, self.prune_after / 86400)
