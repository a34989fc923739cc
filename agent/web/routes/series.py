"""Series and episode routes: lists, a show with its seasons and episodes, one episode, edits and locks."""

from __future__ import annotations

from aiohttp import web

from agent.store import api
from agent.web.keys import services_of
from agent.web.params import path_id
from agent.web.routes.media import item_routes, list_items


def setup(app: web.Application) -> None:
    """Register the /api/series and /api/episodes routes."""

    async def list_series(request: web.Request) -> web.Response:
        services = services_of(request)
        return await list_items(services, request, "series")

    async def get_series(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response(await services.db.read(api.series_detail, path_id(request)))

    app.router.add_get("/api/series", list_series)
    app.router.add_get("/api/series/{id}", get_series)
    item_routes(app, "series", with_get=False)
    item_routes(app, "episode")
