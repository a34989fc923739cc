"""Series and episode routes: lists, a show with its seasons and episodes, one episode, edits and locks."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from aiohttp import web

from agent.service import Agent
from agent.store import media
from agent.web.params import path_id
from agent.web.routes.media import detail, item_routes, list_items

EPISODE_COUNT = (
    ", (SELECT COUNT(*) FROM episodes e WHERE e.series_id = x.id AND e.missing_since IS NULL)"
    " AS episode_count"
)


def series_detail(conn: sqlite3.Connection, series_id: int) -> dict[str, Any]:
    """A show in API shape with its seasons and episodes (ordered by season, episode, file)."""
    out = detail(conn, "series", series_id)
    out["seasons"] = [
        {
            "id": r["id"],
            "season": r["season"],
            "path": r["path"],
            "title": r["title"],
            "artwork_found": json.loads(r["artwork_found"] or "{}"),
        }
        for r in conn.execute("SELECT * FROM seasons WHERE series_id = ? ORDER BY season", (series_id,))
    ]
    rows = conn.execute(
        "SELECT * FROM episodes WHERE series_id = ? ORDER BY season IS NULL, season, episode, aired, file",
        (series_id,),
    ).fetchall()
    out["episodes"] = [media.to_api(media.item_from_row("episode", r), out["library"]) for r in rows]
    return out


def setup(app: web.Application, agent: Agent) -> None:
    """Register the /api/series and /api/episodes routes."""

    async def list_series(request: web.Request) -> web.Response:
        return await list_items(agent, request, "series", EPISODE_COUNT)

    async def get_series(request: web.Request) -> web.Response:
        return web.json_response(await agent.db.read(series_detail, path_id(request)))

    app.router.add_get("/api/series", list_series)
    app.router.add_get("/api/series/{id}", get_series)
    item_routes(app, agent, "series", with_get=False)
    item_routes(app, agent, "episode")
