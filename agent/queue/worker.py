"""The durable job queue: enqueue, claim, run handlers, retry with backoff, cancel, recover.

One dispatcher task writes finished outcomes and claims the next jobs in a single hop to the
writer thread; `workers` long-lived worker tasks take claimed jobs from a small local
ready-list (in priority order) and run their handlers. When handlers are cheap the dispatcher
claims ahead (never more than workers * PREFETCH jobs held at once), so one transaction
carries many outcomes and claims. What it tells the log and /ws is agent.queue.events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.clock import Clock
from agent.errors import Conflict, JobCancelled, NotFound, PermanentFailure, UserError

__all__ = ["Handler", "JobContext", "Queue"]
from agent.queue.context import JobContext
from agent.queue.events import Emit, QueueEvents
from agent.queue.model import Job, JobSpec, Outcome, Priority, Status, decide
from agent.store import Database, agents
from agent.store import jobs as sql
from agent.store.db import DatabaseFull
from agent.store.pg import JOBS_CHANNEL

log = logging.getLogger("agent.queue")

LEASE_SECONDS = 30.0  # a running job is its agent's while renewed (every third of this); then anyone's
POLL_SECONDS = 1.0  # idle poll: covers delayed retries and jobs enqueued by another process (CLI)
PRUNE_EVERY = 3600.0
PREFETCH = 4  # cheap jobs: hold up to workers * PREFETCH claimed jobs
CHEAP_SECONDS = 0.005  # a handler averaging less than this counts as cheap
_STOP = (1 << 62, 0, None)  # ready-list sentinel: sorts after every job
RETRY_FIRST = 1.0  # a failed outcome write (a full disk) is tried again after this, doubling each time,
RETRY_CAP = 60.0  # up to this


Handler = Callable[[JobContext], Awaitable[Any]]


@dataclass
class _Registration:
    """A job type's handler and its own timeout (None: the queue's)."""

    handler: Handler
    timeout: float | None


class Queue:
    """Enqueue and run jobs against the store's `job_queue` table (SQLite, or PostgreSQL shared by several agents)."""

    def __init__(self, db: Database, clock: Clock | None = None, emit: Emit | None = None, workers: int = 2,
                 limits: dict[str, int] | None = None, timeout: float = 600.0, max_retries: int = 3,
                 grace: float = 10.0, prune_after: float = 7 * 86400.0,
                 rng: random.Random | None = None, agent: str = "", cannot_run: Iterable[str] = (),
                 lease: float = LEASE_SECONDS) -> None:
        if workers < 1:
            raise UserError(f"jobs.workers must be at least 1, got {workers}")
        self.db, self.clock = db, clock or Clock()
        self.events = QueueEvents(emit, self.clock, self.stats)
        self.workers, self.limits = workers, dict(limits or {})
        self.timeout, self.max_retries = timeout, max_retries
        self.grace, self.prune_after = grace, prune_after
        self.rng = rng or random.Random()
        # the agent's name: it claims jobs bound to it (or to none) and holds them under this name
        self.worker_id = agent or f"{os.getpid()}"
        self.shared = db.dialect == "postgresql"  # other agents may share the queue
        # types this agent leaves to the others for two leases (player jobs, when it has no players)
        self.cannot_run = sorted(set(cannot_run))
        self.lease = lease
        self.handlers: dict[str, _Registration] = {}
        self._claimed: dict[int, JobContext] = {}  # claimed here: in the ready-list or running
        self._ready: asyncio.PriorityQueue[tuple[int, int, JobContext | None]] | None = None
        self._worker_tasks: list[asyncio.Task] = []
        self._outcomes: list[tuple[Job, Outcome]] = []
        self._inflight: tuple[asyncio.Task, list[tuple[Job, Outcome]]] | None = None
        self._wake = asyncio.Event()
        self._halt = asyncio.Event()  # set by stop(): cuts a write-retry pause short
        self._stopping = False
        self._stop_task: asyncio.Future[None] | None = None
        self._task: asyncio.Task | None = None
        self._heart: asyncio.Task | None = None
        self._listening = False
        self._background: set[asyncio.Task] = set()
        self._enqueue_batch: list[tuple[dict[str, Any], asyncio.Future[Job]]] = []
        self._last_prune = float("-inf")
        self._avg_seconds = 1.0  # running average handler time; starts "not cheap"

    # ------------------------------------------------------------------ setup

    def register(self, type_: str, handler: Handler, timeout: float | None = None) -> None:
        """Register the handler for a job type (timeout in seconds overrides the queue's)."""
        if timeout is not None and timeout <= 0:
            raise UserError(f"timeout for job type {type_!r} must be positive, got {timeout}")
        self.handlers[type_] = _Registration(handler, timeout)

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Send an event to the /ws hub (if any)."""
        self.events.emit(type_, data)

    @property
    def counters(self) -> dict[str, int]:
        """Outcomes announced since start: completed, failed, retried, cancelled."""
        return self.events.counters

    # ------------------------------------------------------------------ API

    async def enqueue(self, type_: str, payload: dict[str, Any] | None = None, *,
                      priority: int = Priority.NORMAL, max_retries: int | None = None,
                      dedupe_key: str | None = None, lock_key: str | None = None,
                      depends_on: list[int] | tuple[int, ...] = (), delay: float = 0.0,
                      chain: int | None = None, origin: int | None = None, agent: str | None = None) -> Job:
        """Add a job (or return the pending one with the same dedupe_key) and wake the workers.

        `agent` names the agent that must run a job about no library (default: this one); a job about a
        library or an item always runs on the agent owning that library.

        Enqueues made in the same loop turn (a webhook burst, a gather) share one transaction;
        each still succeeds or fails on its own.
        """
        spec = JobSpec(type_, {} if payload is None else payload, priority, max_retries, dedupe_key, lock_key,
                       list(depends_on), delay, chain, origin)
        spec.validate()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Job] = loop.create_future()
        self._enqueue_batch.append((self._row(spec, agent), fut))
        if len(self._enqueue_batch) == 1:
            task = loop.create_task(self._insert_batch())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return await fut

    async def _insert_batch(self) -> None:
        """Insert every enqueue gathered so far in one transaction and settle their futures."""
        batch, self._enqueue_batch = self._enqueue_batch, []
        try:
            results = await self.db.write(sql.insert_each, [row for row, _ in batch], self.clock.now())
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        jobs: list[tuple[Job, bool]] = []
        for (_, fut), result in zip(batch, results, strict=True):
            if isinstance(result, str):
                if not fut.done():
                    fut.set_exception(UserError(f"cannot enqueue: {result}"))
            else:
                jobs.append(result)
                if not fut.done():  # a cancelled caller's job is inserted all the same
                    fut.set_result(result[0])
        self._after_insert(jobs)

    async def enqueue_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        """Add several jobs in one transaction (all or none); returns them in order, deduped ones included."""
        specs = list(specs)
        for spec in specs:
            spec.validate()
        if not specs:
            return []
        rows = [self._row(s) for s in specs]
        try:
            results = await self.db.write(sql.insert_many, rows, self.clock.now())
        except (ValueError, TypeError) as exc:
            raise UserError(f"cannot enqueue: {exc}") from None
        self._after_insert(results)
        return [job for job, _ in results]

    def _row(self, spec: JobSpec, agent: str | None = None) -> dict[str, Any]:
        """A spec's insert parameters, naming the agent to run it when nothing else decides (this one)."""
        row = spec.row(self.max_retries)
        row["agent"] = agent or self.worker_id
        return row

    def _after_insert(self, results: list[tuple[Job, bool]]) -> None:
        """Announce new jobs and wake the dispatcher when there are any."""
        if self.events.inserted(results):
            self._wake.set()

    async def get(self, job_id: int) -> Job:
        """One job, or NotFound."""
        job = await self.db.read(sql.get, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def list(self, status: str | None = None, type_: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[Job], int]:
        """Jobs newest first, with the total matching the filters."""
        if status is not None and status not in {s.value for s in Status}:
            raise UserError(f"unknown status {status!r} (use {', '.join(s.value for s in Status)})")
        return await self.db.read(sql.listing, status, type_, limit, offset)

    async def stats(self) -> dict[str, int]:
        """Pending, running and failed counts."""
        return await self.db.read(sql.stats)

    async def cancel(self, job_id: int, allow_running: bool = False) -> Job:
        """Cancel a pending job; a running one only with allow_running (it stops at its next checkpoint)."""
        job, what, cascaded = await self.db.write(sql.cancel, job_id, self.clock.now(), allow_running)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if what == "cancelled":
            self.events.cancelled(job, cascaded)
        elif what == "requested":
            ctx = self._claimed.get(job_id)
            if ctx is not None:
                ctx.cancelled.set()
            log.info("job %d %s: cancel requested; it stops at its next checkpoint", job.id, job.type)
        else:
            hint = ("POST /api/jobs/{id}/cancel stops a running job" if what == "running"
                    else "it has already ended")
            raise Conflict(f"job {job_id} is {what}; only a pending job can be deleted ({hint})",
                           detail={"status": what})
        return job

    async def retry(self, job_id: int) -> Job:
        """Put a failed or cancelled job back to pending with a fresh attempt budget."""
        job, what = await self.db.write(sql.retry, job_id, self.clock.now())
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if what == "duplicate":
            raise Conflict(f"job {job_id} cannot be retried: job {job.id} has its dedupe_key and is pending",
                           detail={"status": "duplicate", "pending_job": job.id})
        if what != "retried":
            raise Conflict(f"job {job_id} is {what}; only a failed or cancelled job can be retried",
                           detail={"status": what})
        log.info("↻ job %d %s retried by request", job.id, job.type)
        self.emit("job:queued", {"job_id": job.id, "type": job.type, "priority": job.priority})
        self.events.stats_soon()
        self._wake.set()
        return job

    async def recover(self) -> int:
        """Re-queue jobs a crash left running; logs and returns the count."""
        count, cascaded = await self.db.write(sql.recover, self.clock.now(), self.worker_id if self.shared else None)
        if count:
            log.warning("↻ re-queued %d job(s) left running by an earlier stop", count)
        self.events.cascade(cascaded)
        return count

    async def prune(self) -> int:
        """Delete completed jobs older than prune_after; failed jobs stay as dead letters."""
        now = self.clock.now()
        self._last_prune = now
        n = await self.db.write(sql.prune, now - self.prune_after)
        if n:
            log.info("pruned %d completed job(s) older than %g days", n, self.prune_after / 86400)
        return n

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Recover, then start the workers, the dispatcher and the heartbeat (leases, last seen)."""
        await self.recover()
        if not self._listening:  # a queue started again keeps its one listener
            self.db.listen(JOBS_CHANNEL, self._notified)
            self._listening = True
        self._heart = asyncio.create_task(self._heartbeat(), name="queue-heartbeat")
        self._stopping, self._stop_task = False, None
        self._halt.clear()
        self._start_workers()
        self._task = asyncio.create_task(self._dispatch(until_idle=False), name="queue-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, give running jobs a grace period, re-queue the rest, write every outcome.

        Calling it again (or after begin_stop) waits for the same stop.
        """
        self.begin_stop()
        assert self._stop_task is not None
        await asyncio.shield(self._stop_task)

    def begin_stop(self) -> None:
        """Start stopping without waiting (the server calls it on SIGTERM, while HTTP handlers drain)."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop())

    async def _stop(self) -> None:
        """The stop itself: the dispatcher ends, workers get the grace period, outcomes are written once."""
        self._stopping = True
        self._halt.set()
        self._wake.set()
        if self._heart is not None:
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
            self._heart = None
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        unstarted = self._drain_ready()
        await self._stop_workers(self.grace)
        await asyncio.shield(self._flush_final(unstarted))
        self.events.close()

    async def run_until_idle(self) -> None:
        """Run jobs until none is runnable now (tests, `scan --wait`)."""
        if self._task is None:
            self._stopping, self._stop_task = False, None  # a queue that was stopped can still be drained by hand
            self._halt.clear()
        started_here = not self._worker_tasks
        self._start_workers()
        try:
            await self._dispatch(until_idle=True)
        finally:
            if started_here:
                await self._stop_workers(0.0 if self._claimed else None)

    def _start_workers(self) -> None:
        """Create the ready-list and the worker tasks."""
        if self._worker_tasks:
            return
        if self._ready is None:
            self._ready = asyncio.PriorityQueue()
        self._worker_tasks = [asyncio.create_task(self._worker(), name=f"queue-worker-{i}")
                              for i in range(self.workers)]

    async def _stop_workers(self, grace: float | None) -> None:
        """Tell idle workers to exit; running ones get `grace` seconds (None: no limit), then cancel."""
        tasks, self._worker_tasks = self._worker_tasks, []
        if not tasks:
            return
        assert self._ready is not None
        for _ in tasks:
            self._ready.put_nowait(_STOP)
        late = set(tasks)
        if grace is None or grace > 0:
            _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        self._drain_ready()

    def _drain_ready(self) -> list[JobContext]:
        """Take every claimed-but-unstarted job off the ready-list (and leftover sentinels)."""
        out: list[JobContext] = []
        while self._ready is not None and not self._ready.empty():
            ctx = self._ready.get_nowait()[2]
            if ctx is not None:
                out.append(ctx)
        return out

    async def _flush_final(self, unstarted: list[JobContext]) -> None:
        """Write outcomes that finished and re-queue the jobs that were interrupted or never started."""
        if self._inflight is not None:
            fut, outcomes = self._inflight
            self._inflight = None
            try:
                claimed, cascaded = await fut
            except Exception as exc:
                log.error("! writing %d job outcome(s) failed: %s", len(outcomes), exc)
            else:
                self.events.written(outcomes, cascaded)
                unstarted += [JobContext(self, j) for j in claimed]
        interrupted = [o.job_id for _, o in self._outcomes if o.status == Status.RUNNING]
        interrupted += [ctx.job.id for ctx in unstarted]
        done = [(j, o) for j, o in self._outcomes if o.status != Status.RUNNING]
        self._outcomes = []
        self._claimed.clear()
        try:  # one try each: a stop never waits for a disk to empty; recover() re-runs what stays "running"
            if done:
                _, cascaded = await self.db.write(sql.flush_and_claim, [o for _, o in done], 0, self.worker_id,
                                                  [], {}, {}, self.clock.now())
                self.events.written(done, cascaded)
                done = []
            if interrupted:
                n, cascaded = await self.db.write(sql.requeue, interrupted, self.clock.now(), self.worker_id)
                log.info("↻ %d claimed job(s) re-queued at shutdown", n)
                self.events.cascade(cascaded)
        except Exception as exc:
            log.error("! at shutdown %d job outcome(s) and %d interrupted job(s) could not be written (%s); "
                      "those jobs stay running in the database and are re-run after the next start",
                      len(done), len(interrupted), exc)

    async def _dispatch(self, until_idle: bool) -> None:
        """The dispatch loop: flush outcomes + claim in one hop, hand jobs to workers, wait to be woken."""
        assert self._ready is not None
        failures = 0  # outcome writes failed in a row: the pause before the next try doubles
        while True:
            self._wake.clear()
            outcomes, self._outcomes = self._outcomes, []
            cap = self.workers * PREFETCH if self._avg_seconds < CHEAP_SECONDS else self.workers
            want = 0 if self._stopping else cap - len(self._claimed)
            if not outcomes and want <= 0:
                if self._stopping:
                    return
                await self._wait()
                continue
            running: dict[str, int] = {}
            for ctx in self._claimed.values():
                running[ctx.job.type] = running.get(ctx.job.type, 0) + 1
            saturated = [t for t, n in running.items() if t in self.limits and n >= self.limits[t]]
            now = self.clock.now()
            # shielded: if this task is cancelled the write still completes, and stop() collects it
            self._inflight = (asyncio.create_task(self.db.write_concurrent(
                sql.flush_and_claim, [o for _, o in outcomes], max(want, 0), self.worker_id, saturated,
                running, self.limits, now, self.lease, self.cannot_run)), outcomes)
            try:
                claimed, cascaded = await asyncio.shield(self._inflight[0])
            except Exception as exc:
                # rolled back: nothing was written or claimed; keep the outcomes, try again after a pause
                self._inflight = None
                self._outcomes[:0] = outcomes
                if self._stopping:
                    return  # stop() makes the one last attempt
                delay = min(RETRY_CAP, RETRY_FIRST * 2 ** failures)
                what = f"writing {len(outcomes)} job outcome(s)" if outcomes else "claiming jobs"
                log.error("! %s failed, trying again in %g s: %s", what, delay, exc,
                          exc_info=None if failures or isinstance(exc, DatabaseFull) else exc)
                failures += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._halt.wait(), delay)
                continue
            self._inflight = None
            failures = 0
            self.events.written(outcomes, cascaded)
            for job in claimed:
                ctx = JobContext(self, job)
                self._claimed[job.id] = ctx
                self._ready.put_nowait((job.priority, job.id, ctx))
            if claimed:
                self.events.stats_soon()
            if now - self._last_prune >= PRUNE_EVERY:
                await self.prune()
            if claimed or outcomes or self._outcomes:
                continue
            if (until_idle or self._stopping) and not self._claimed:
                return
            await self._wait()

    def _notified(self, _payload: str) -> None:
        """Another agent (or this one) queued work or put a job back: look for it now."""
        self._wake.set()

    def _held(self) -> list[int]:
        """The jobs this agent holds: claimed (waiting or running), or finished with the outcome not yet written."""
        held = set(self._claimed)
        held.update(o.job_id for _, o in self._outcomes)
        if self._inflight is not None:
            held.update(o.job_id for _, o in self._inflight[1])
        return sorted(held)

    async def _heartbeat(self) -> None:
        """Renew the leases of running jobs and this agent's last_seen; on a shared store, take back the jobs
        of agents that stopped answering (their leases ran out)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            now = self.clock.now()
            write = self.db.write if self.shared else self.db.write_concurrent  # taking back jobs is serial
            try:
                _, lost, cascaded = await write(agents.heartbeat, self.worker_id, self._held(), now,
                                                now + self.lease, self.shared)
            except Exception as exc:
                log.error("! renewing the leases of running jobs failed: %s", exc)
                continue
            if lost:
                log.warning("↻ %d job(s) of agents that stopped answering put back to pending: %s", len(lost),
                            ", ".join(f"{job_id} ({who})" for job_id, who in lost))
                self.events.cascade(cascaded)
                self._wake.set()

    async def _wait(self) -> None:
        """Sleep until woken (enqueue, a finished job) or the idle poll."""
        handle = asyncio.get_running_loop().call_later(POLL_SECONDS, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            handle.cancel()

    async def _worker(self) -> None:
        """Take jobs from the ready-list in priority order and run them, until told to stop."""
        assert self._ready is not None
        task = asyncio.current_task()
        assert task is not None
        while True:
            ctx = (await self._ready.get())[2]
            if ctx is None:
                return
            await self._run(ctx, task)

    def _expire(self, ctx: JobContext, task: asyncio.Task) -> None:
        """The handler's time is up: interrupt it."""
        ctx.timed_out = True
        task.cancel()

    async def _run(self, ctx: JobContext, task: asyncio.Task) -> None:
        """Run one handler; the outcome is queued for the dispatcher to write."""
        job = ctx.job
        reg = self.handlers.get(job.type)
        log.info("→ job %d %s (attempt %d/%d)", job.id, job.type, job.attempts, job.max_retries + 1)
        self.events.emit("job:started", {"job_id": job.id, "type": job.type, "attempt": job.attempts})
        exc: BaseException | None = None
        result: Any = None
        timer: asyncio.TimerHandle | None = None
        limit = (reg.timeout if reg is not None else None) or self.timeout
        started = time.perf_counter()
        try:
            if ctx.cancelled.is_set():
                raise JobCancelled()
            if reg is None:
                raise PermanentFailure(f"no handler registered for job type {job.type!r}")
            timer = asyncio.get_running_loop().call_later(limit, self._expire, ctx, task)
            result = await reg.handler(ctx)
        except asyncio.CancelledError:
            if not ctx.timed_out or task.uncancel() > 0:
                # shutdown interrupted it: re-queue without counting the attempt
                self._finish(job, Outcome(job.id, Status.RUNNING))
                raise
            exc = TimeoutError(f"timed out after {limit:g} s")
        except Exception as e:
            exc = e
            if getattr(e, "status", None) is None:
                log.warning("! job %d %s raised", job.id, job.type, exc_info=e)
        finally:
            if timer is not None:
                timer.cancel()
        if ctx.timed_out and exc is None and task.cancelling():
            task.uncancel()  # the handler swallowed the timeout's cancellation and finished anyway
        if exc is None and result is not None:
            try:
                json.dumps(result)
            except (TypeError, ValueError) as e:  # caught here, so it can never block the outcome write
                exc = PermanentFailure(f"handler returned a result that is not JSON: {e}")
        self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * (time.perf_counter() - started)
        self._finish(job, decide(job, exc, result, self.clock.now(), self.rng))

    def _finish(self, job: Job, out: Outcome) -> None:
        """Queue an outcome for the dispatcher and wake it."""
        self._outcomes.append((job, out))
        self._claimed.pop(job.id, None)
        self._wake.set()
