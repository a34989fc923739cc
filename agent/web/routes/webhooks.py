"""POST /api/webhooks/{source}: parse once, record body and event in webhook_events, enqueue one webhook job."""

from __future__ import annotations

import logging

from aiohttp import web

from agent.services import Services
from agent.web.keys import MAX_BODY, services_of
from agent.web.middleware import error_response
from agent.webhooks.jobs import enqueue_webhook
from agent.webhooks.parse import PARSERS, parse_webhook
from agent.webhooks.record import ignored_reason, record_event

log = logging.getLogger("services.webhooks")
DRAIN_LIMIT = 8 * MAX_BODY  # read at most this much of an oversized body before answering 413


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


async def receive(request: web.Request, services: Services) -> web.Response:
    """Accept one webhook: 400 for a foreign body, 200 ignored, or 202 with the queued job."""
    source = request.match_info["source"]
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    event = parse_webhook(source, body, request.headers.get("Content-Type", ""))
    event_id = await record_event(services.db, event, services.clock.now(), services.cfg.store_agent)
    services.emit("webhook:received", {"source": source, "event_type": event.event_type, "event_id": event_id})
    reason = ignored_reason(event)
    if reason is not None:
        log.info("webhook %d ignored: %s", event_id, event.summary())
        return web.json_response({"ignored": reason, "event_id": event_id}, status=200)
    job_id = await enqueue_webhook(services.queue, services.db, event_id)
    log.info("webhook %d -> job %d: %s", event_id, job_id, event.summary())
    return web.json_response({"event_id": event_id, "job_ids": [job_id]}, status=202)


def setup(app: web.Application) -> None:
    """Register POST /api/webhooks/{radarr,sonarr,jellyfin,plex}."""

    async def handler(request: web.Request) -> web.Response:
        return await receive(request, services_of(request))

    sources = "|".join(PARSERS)
    app.router.add_post("/api/webhooks/{source:(" + sources + ")}", handler)
