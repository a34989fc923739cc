"""POST /api/webhooks/{source}: parse, record in webhook_events, enqueue one webhook job, answer fast."""

from __future__ import annotations

import json
import logging
import sqlite3

from aiohttp import web

from agent.queue.model import Priority
from agent.service import Agent
from agent.web.app import MAX_BODY
from agent.web.middleware import error_response
from agent.webhooks import PARSERS, WebhookEvent, parse_webhook

log = logging.getLogger("agent.webhooks")
DRAIN_LIMIT = 8 * MAX_BODY  # read at most this much of an oversized body before answering 413


def _insert_event(conn: sqlite3.Connection, event: WebhookEvent, now: float) -> int:
    """Record one accepted webhook; its decoded JSON body is what the job re-parses."""
    ignored = None if event.needs_work else (event.ignore_reason or f"{event.event_type}: nothing to do")
    cur = conn.execute(
        "INSERT INTO webhook_events (source, event_type, payload, received_at, ignored)"
        " VALUES (?, ?, ?, ?, ?)",
        (event.source, event.event_type, json.dumps(event.raw), now, ignored),
    )
    return int(cur.lastrowid or 0)


def _set_job_ids(conn: sqlite3.Connection, event_id: int, job_ids: list[int]) -> None:
    """Remember which jobs an event queued."""
    conn.execute("UPDATE webhook_events SET job_ids = ? WHERE id = ?", (json.dumps(job_ids), event_id))


async def _read_body(request: web.Request) -> bytes | web.Response:
    """The body, or a 413 JSON reply when it is over the 1 MiB cap."""
    too_big = error_response(
        413, f"webhook body is larger than {MAX_BODY} bytes (1 MiB); nothing was recorded"
    )
    if request.content_length is not None and request.content_length > MAX_BODY:
        # Drain what the sender pushes so it can read our answer instead of seeing a reset.
        remaining = min(request.content_length, DRAIN_LIMIT)
        while remaining > 0:
            chunk = await request.content.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return too_big
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_big


async def receive(request: web.Request, agent: Agent) -> web.Response:
    """Accept one webhook: 400 for a foreign body, 200 ignored, or 202 with the queued job."""
    source = request.match_info["source"]
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    event = parse_webhook(source, body, request.headers.get("Content-Type", ""))
    event_id = await agent.db.write(_insert_event, event, agent.clock.now())
    agent.emit("webhook:received", {"source": source, "event_type": event.event_type, "event_id": event_id})
    if not event.needs_work:
        reason = event.ignore_reason or f"{event.event_type}: nothing to do"
        log.info("webhook %d ignored: %s", event_id, event.summary())
        return web.json_response({"ignored": reason, "event_id": event_id}, status=200)
    job = await agent.queue.enqueue("webhook", {"event_id": event_id}, priority=Priority.CRITICAL)
    await agent.db.write(_set_job_ids, event_id, [job.id])
    log.info("webhook %d -> job %d: %s", event_id, job.id, event.summary())
    return web.json_response({"event_id": event_id, "job_ids": [job.id]}, status=202)


def setup(app: web.Application, agent: Agent) -> None:
    """Register POST /api/webhooks/{radarr,sonarr,jellyfin,plex}."""

    async def handler(request: web.Request) -> web.Response:
        return await receive(request, agent)

    sources = "|".join(PARSERS)
    app.router.add_post("/api/webhooks/{source:(" + sources + ")}", handler)
