"""Housekeeping jobs: `cleanup` (an item gone from its library) and `cache_gc` (the artwork cache's GC, and the
stream probes of files no item holds)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
from typing import Any

from agent.cache import AssetCache
from agent.clock import Clock
from agent.events import Emit
from agent.housekeeping import CACHE_GC, CLEANUP, CacheGcPayload, CleanupPayload
from agent.players.jobs import NotifyPayload, enqueue_notify
from agent.queue import JobContext
from agent.queue.model import Priority
from agent.services import Services
from agent.store import Database, media
from agent.streams import StreamProber

log = logging.getLogger("agent.maintenance")


# ---------------------------------------------------------------- cleanup


def _still_there(entity: str, row: sqlite3.Row) -> str | None:
    """The item's file (or a series' folder) when it still exists on disk."""
    path = row["path"] if entity == "series" else row["file"]
    exists = os.path.isdir(path) if entity == "series" else os.path.exists(path)
    return path if exists else None


def _folder_of(entity: str, row: sqlite3.Row) -> str:
    """The item's folder: a movie's or series' path, an episode's file folder."""
    if entity == "episode":
        return os.path.dirname(row["file"])
    return row["path"]


async def cleanup(db: Database, clock: Clock, emit: Emit, ctx: JobContext, p: CleanupPayload) -> dict[str, Any]:
    """Mark deleted items missing and tell the players (Deleted); keep items whose files are still there."""
    entity = p.entity
    priority = p.priority or Priority.LOW
    rows = await db.read(media.rows_by_id_or_files, entity, p.id, list(p.files))
    result: dict[str, Any] = {"reason": p.reason, "missing": [], "kept": [], "notify_jobs": []}
    if not rows:
        result["nothing"] = f"no {entity} matches {('id ' + str(p.id)) if p.id else ', '.join(p.files)}"
        return result
    for row in rows:
        present = await asyncio.to_thread(_still_there, entity, row)
        if present:
            result["kept"].append({"id": row["id"], "reason": f"'{present}' is still on disk"})
            continue
        await db.write(media.mark_missing, entity, row["id"], clock.now())
        emit(f"{entity}:updated", {"id": row["id"]})
        notify = NotifyPayload(entity=entity, id=row["id"], update="Deleted", folder=_folder_of(entity, row),
                               file=None if entity == "series" else row["file"], priority=priority)
        # Not folded into a pending refresh of the same item: the players must hear of the deletion.
        job = await enqueue_notify(ctx, notify, dedupe=False)
        result["missing"].append(row["id"])
        result["notify_jobs"].append(job.id)
    return result


# ---------------------------------------------------------------- cache gc


async def cache_gc(cache: AssetCache, prober: StreamProber) -> dict[str, Any]:
    """Run the asset cache's GC and forget the stream probes of files no item holds; return its report."""
    report = dataclasses.asdict(await cache.gc())
    return {**report, "probes_forgotten": await prober.prune()}


def register(services: Services) -> None:
    """Register the `cleanup` and `cache_gc` job handlers."""

    async def handle_cleanup(ctx: JobContext) -> dict[str, Any]:
        """Run one cleanup job."""
        p = CleanupPayload.from_payload(ctx.payload)
        return await cleanup(services.db, services.clock, services.emit, ctx, p)

    async def handle_cache_gc(ctx: JobContext) -> dict[str, Any]:
        """Run one cache_gc job."""
        CacheGcPayload.from_payload(ctx.payload)
        return await cache_gc(services.cache, services.prober)

    services.queue.register(CLEANUP, handle_cleanup)
    services.queue.register(CACHE_GC, handle_cache_gc)
