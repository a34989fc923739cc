"""Housekeeping: the `cleanup` and `cache_gc` jobs, and the periodic scheduler started with the server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
from typing import TYPE_CHECKING, Any

from agent.errors import PermanentFailure
from agent.queue import JobContext
from agent.queue.model import Priority

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger("agent.maintenance")

TICK_SECONDS = 3600.0  # how often the scheduler wakes
GC_EVERY = 86400.0  # cache_gc once a day
GC_META_KEY = "maintenance.last_cache_gc"
ENTITIES = {"movie": "movies", "series": "series", "episode": "episodes"}
_TASKS: dict[int, asyncio.Task[None]] = {}


# ---------------------------------------------------------------- cleanup


def _targets(
    conn: sqlite3.Connection, entity: str, item_id: int | None, files: list[str]
) -> list[sqlite3.Row]:
    """The rows a cleanup is about: the one id, else the items whose file is in `files`."""
    table = ENTITIES[entity]
    if item_id is not None:
        return conn.execute(f"SELECT * FROM {table} WHERE id = ?", (item_id,)).fetchall()
    if not files or entity == "series":
        return []
    marks = ",".join("?" * len(files))
    return conn.execute(f"SELECT * FROM {table} WHERE file IN ({marks}) ORDER BY id", files).fetchall()


def _still_there(entity: str, row: sqlite3.Row) -> str | None:
    """The item's file (or a series' folder) when it still exists on disk."""
    path = row["path"] if entity == "series" else row["file"]
    exists = os.path.isdir(path) if entity == "series" else os.path.exists(path)
    return path if exists else None


def _mark_missing(conn: sqlite3.Connection, entity: str, item_id: int, now: float) -> None:
    """Set missing_since (keeping an earlier one); a series takes its episodes with it."""
    table = ENTITIES[entity]
    conn.execute(
        f"UPDATE {table} SET missing_since = COALESCE(missing_since, ?), updated_at = ? WHERE id = ?",
        (now, now, item_id),
    )
    if entity == "series":
        conn.execute(
            "UPDATE episodes SET missing_since = COALESCE(missing_since, ?), updated_at = ?"
            " WHERE series_id = ?",
            (now, now, item_id),
        )


def _folder_of(entity: str, row: sqlite3.Row) -> str:
    """The item's folder: a movie's or series' path, an episode's file folder."""
    if entity == "episode":
        return os.path.dirname(row["file"])
    return row["path"]


async def cleanup(agent: Agent, ctx: JobContext) -> dict[str, Any]:
    """Mark deleted items missing and tell the players (Deleted); keep items whose files are still there."""
    payload = ctx.payload
    entity = payload.get("entity")
    if entity not in ENTITIES:
        raise PermanentFailure(f"cleanup needs entity movie, series or episode, got {entity!r}")
    item_id = payload.get("id")
    if item_id is not None and not isinstance(item_id, int):
        raise PermanentFailure(f"cleanup id must be an integer, got {item_id!r}")
    files = payload.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise PermanentFailure("cleanup files must be a list of paths")
    if item_id is None and not files:
        raise PermanentFailure("cleanup needs an id or files")
    priority = int(payload.get("priority") or Priority.LOW)
    rows = await agent.db.read(_targets, entity, item_id, files)
    result: dict[str, Any] = {"reason": payload.get("reason"), "missing": [], "kept": [], "notify_jobs": []}
    if not rows:
        result["nothing"] = f"no {entity} matches {('id ' + str(item_id)) if item_id else ', '.join(files)}"
        return result
    for row in rows:
        present = await asyncio.to_thread(_still_there, entity, row)
        if present:
            result["kept"].append({"id": row["id"], "reason": f"'{present}' is still on disk"})
            continue
        await agent.db.write(_mark_missing, entity, row["id"], agent.clock.now())
        agent.emit(f"{entity}:updated", {"id": row["id"]})
        notify: dict[str, Any] = {"entity": entity, "id": row["id"], "update": "Deleted",
                                  "folder": _folder_of(entity, row), "priority": priority}
        if entity != "series":
            notify["file"] = row["file"]
        job = await ctx.enqueue("notify_players", notify, priority=priority)
        result["missing"].append(row["id"])
        result["notify_jobs"].append(job.id)
    return result


# ---------------------------------------------------------------- cache gc


async def cache_gc(agent: Agent) -> dict[str, Any]:
    """Run the asset cache's GC and return its report."""
    cache = agent.services.get("cache")
    own = cache is None
    if own:
        from agent.cache import AssetCache

        cache = AssetCache(agent.db, agent.cfg.data_dir / "cache", clock=agent.clock,
                           grace_seconds=agent.cfg.artwork.gc_grace_days * 86400,
                           baselines=agent.cfg.data_dir / "published")
    try:
        report = await cache.gc()
    finally:
        if own:
            await cache.close()
    return dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(report)


# ---------------------------------------------------------------- scheduler


def _meta_get(conn: sqlite3.Connection, key: str) -> str | None:
    """One value from the meta table."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def _meta_set(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store one value in the meta table."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _expire_playback(conn: sqlite3.Connection, now: float) -> int:
    """Delete captured playback states that were never restored and have expired."""
    sql = "DELETE FROM playback_state WHERE restored_at IS NULL AND expires_at < ?"
    return conn.execute(sql, (now,)).rowcount


def _orphan_events(conn: sqlite3.Connection) -> list[int]:
    """Recorded webhook events that need work but never got their job (a stop between the two writes)."""
    rows = conn.execute(
        "SELECT e.id FROM webhook_events e WHERE e.ignored IS NULL AND e.job_ids = '[]' AND NOT EXISTS"
        " (SELECT 1 FROM job_queue j WHERE j.type = 'webhook'"
        " AND json_extract(j.payload, '$.event_id') = e.id)"
        " ORDER BY e.id"
    )
    return [r["id"] for r in rows]


def _set_job_ids(conn: sqlite3.Connection, event_id: int, job_ids: list[int]) -> None:
    """Remember which jobs an event queued."""
    conn.execute("UPDATE webhook_events SET job_ids = ? WHERE id = ?", (json.dumps(job_ids), event_id))


async def tick(agent: Agent) -> dict[str, Any]:
    """One scheduler pass: enqueue cache_gc when a day has passed, drop expired playback captures."""
    now = agent.clock.now()
    out: dict[str, Any] = {"cache_gc_job": None}
    last = await agent.db.read(_meta_get, GC_META_KEY)
    if last is None:
        # First start: the first GC runs a day from now, not while the agent is being set up.
        await agent.db.write(_meta_set, GC_META_KEY, repr(now))
    elif now - float(last) >= GC_EVERY:
        job = await agent.queue.enqueue("cache_gc", {}, priority=Priority.LOW, dedupe_key="cache_gc")
        await agent.db.write(_meta_set, GC_META_KEY, repr(now))
        out["cache_gc_job"] = job.id
    out["playback_expired"] = await agent.db.write(_expire_playback, now)
    if out["playback_expired"]:
        log.info("dropped %d expired playback capture(s)", out["playback_expired"])
    return out


async def resume_webhooks(agent: Agent) -> list[int]:
    """Queue the webhook job for events recorded just before a stop; returns the new job ids."""
    job_ids = []
    for event_id in await agent.db.read(_orphan_events):
        job = await agent.queue.enqueue("webhook", {"event_id": event_id}, priority=Priority.CRITICAL)
        await agent.db.write(_set_job_ids, event_id, [job.id])
        job_ids.append(job.id)
    if job_ids:
        log.warning("↻ queued %d webhook event(s) recorded before the last stop", len(job_ids))
    return job_ids


async def _loop(agent: Agent) -> None:
    """Run `tick` now and every TICK_SECONDS until cancelled; a failing pass is logged, not fatal."""
    while True:
        try:
            await tick(agent)
        except Exception:
            log.exception("maintenance pass failed")
        await asyncio.sleep(TICK_SECONDS)


async def start(agent: Agent) -> None:
    """Service start: resume orphaned webhook events, then run the scheduler in the background."""
    await resume_webhooks(agent)
    await stop(agent)
    _TASKS[id(agent)] = asyncio.create_task(_loop(agent), name="maintenance")


async def stop(agent: Agent) -> None:
    """Service stop: cancel the scheduler."""
    task = _TASKS.pop(id(agent), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def register(agent: Agent) -> None:
    """Register the `cleanup` and `cache_gc` job handlers."""

    async def handle_cleanup(ctx: JobContext) -> dict[str, Any]:
        return await cleanup(agent, ctx)

    async def handle_cache_gc(ctx: JobContext) -> dict[str, Any]:
        return await cache_gc(agent)

    agent.queue.register("cleanup", handle_cleanup)
    agent.queue.register("cache_gc", handle_cache_gc)
