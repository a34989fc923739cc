"""Job routes: list, get, retry, cancel."""

from __future__ import annotations

from aiohttp import web

from agent.store import activity
from agent.web.keys import services_of
from agent.web.params import path_id, query_int


def setup(app: web.Application) -> None:
    """Register the /api/jobs routes."""

    async def list_jobs(request: web.Request) -> web.Response:
        services = services_of(request)
        jobs, total = await services.queue.list(
            request.query.get("status") or None, request.query.get("type") or None,
            query_int(request, "limit", 50, 1, 500), query_int(request, "offset", 0, 0, 10**9))
        items = await services.db.read(activity.job_dicts, jobs)
        return web.json_response({"items": items, "total": total})

    async def get_job(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response((await services.queue.get(path_id(request))).to_dict())

    async def retry_job(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response((await services.queue.retry(path_id(request))).to_dict())

    async def cancel_job(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response((await services.queue.cancel(path_id(request))).to_dict())

    async def stop_job(request: web.Request) -> web.Response:
        services = services_of(request)
        job = await services.queue.cancel(path_id(request), allow_running=True)
        return web.json_response(job.to_dict(), status=202 if job.status.value == "running" else 200)

    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{id}", get_job)
    app.router.add_post("/api/jobs/{id}/retry", retry_job)
    app.router.add_delete("/api/jobs/{id}", cancel_job)
    app.router.add_post("/api/jobs/{id}/cancel", stop_job)
