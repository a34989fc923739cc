"""GET /api/activity: the jobs that started something (a scan, a webhook, a click), each with what it is
about and a summary of its follow-ups; GET /api/activity/{id}: one of them with every follow-up."""

from __future__ import annotations

from aiohttp import web

from agent.errors import NotFound, UserError
from agent.queue.model import Status
from agent.store import activity
from agent.web.keys import services_of
from agent.web.params import path_id, query_int

STATUSES = tuple(s.value for s in Status)


def setup(app: web.Application) -> None:
    """Register the activity routes."""

    async def listing(request: web.Request) -> web.Response:
        services = services_of(request)
        status = request.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise UserError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
        items, total = await services.db.read(
            activity.activity, status, query_int(request, "limit", 30, 1, 200),
            query_int(request, "offset", 0, 0, 10**9))
        return web.json_response({"items": items, "total": total})

    async def one(request: web.Request) -> web.Response:
        services = services_of(request)
        job_id = path_id(request)
        found = await services.db.read(activity.chain, job_id)
        if found is None:
            raise NotFound(f"job {job_id} not found")
        return web.json_response(found)

    app.router.add_get("/api/activity", listing)
    app.router.add_get("/api/activity/{id}", one)
