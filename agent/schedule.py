"""The maintenance schedule started with the server: resume webhook events left without a job, queue
cache_gc once a day, and drop expired playback captures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from agent.clock import Clock
from agent.config import Config
from agent.housekeeping import enqueue_cache_gc
from agent.queue import Queue
from agent.store import Database, meta
from agent.store import players as players_store
from agent.store import webhooks as webhooks_store
from agent.webhooks.jobs import enqueue_webhook

log = logging.getLogger("agent.maintenance")

TICK_SECONDS = 3600.0  # how often the scheduler wakes
GC_EVERY = 86400.0  # cache_gc once a day
GC_META_KEY = "maintenance.last_cache_gc"


class Maintenance:
    """The periodic housekeeping of one agent: `start` resumes orphaned webhooks and runs `tick` hourly."""

    def __init__(self, cfg: Config, db: Database, queue: Queue, clock: Clock) -> None:
        self.cfg, self.db, self.queue, self.clock = cfg, db, queue, clock
        # each agent sharing a store collects its own cache on its own day
        self._gc_key = GC_META_KEY if cfg.store_agent is None else f"{GC_META_KEY}@{cfg.store_agent}"
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> dict[str, Any]:
        """One pass: enqueue cache_gc when a day has passed, drop expired playback captures."""
        now = self.clock.now()
        out: dict[str, Any] = {"cache_gc_job": None}
        last = await self.db.read(meta.get, self._gc_key)
        if last is None:
            # First start: the first GC runs a day from now, not while the agent is being set up.
            await self.db.write(meta.put, self._gc_key, repr(now))
        elif now - float(last) >= GC_EVERY:
            job = await enqueue_cache_gc(self.queue)
            await self.db.write(meta.put, self._gc_key, repr(now))
            out["cache_gc_job"] = job.id
        out["playback_expired"] = await self.db.write(players_store.expire_playback, now)
        if out["playback_expired"]:
            log.info("dropped %d expired playback capture(s)", out["playback_expired"])
        return out

    async def resume_webhooks(self) -> list[int]:
        """Queue the webhook job for events recorded just before a stop; returns the new job ids."""
        job_ids = []
        for event_id in await self.db.read(webhooks_store.orphan_events, self.cfg.store_agent):
            job_ids.append(await enqueue_webhook(self.queue, self.db, event_id))
        if job_ids:
            log.warning("↻ queued %d webhook event(s) recorded before the last stop", len(job_ids))
        return job_ids

    async def _loop(self) -> None:
        """Run `tick` now and every TICK_SECONDS until cancelled; a failing pass is logged, not fatal."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("maintenance pass failed")
            await asyncio.sleep(TICK_SECONDS)

    async def start(self) -> None:
        """Resume orphaned webhook events, then run the schedule in the background."""
        await self.resume_webhooks()
        await self.stop()
        self._task = asyncio.create_task(self._loop(), name="maintenance")

    async def stop(self) -> None:
        """Cancel the schedule (nothing happens when it is not running)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
