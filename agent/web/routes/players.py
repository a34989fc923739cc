"""GET /api/players: configured players, their group, connection state and what they play."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.clock import iso
from agent.config_checks import mask_url, mask_values
from agent.store import api
from agent.web.keys import services_of


def player_to_api(row: dict[str, Any]) -> dict[str, Any]:
    """The REST shape of one player."""
    try:
        now_playing = json.loads(row["now_playing"]) if row.get("now_playing") else None
    except ValueError:
        now_playing = None
    if isinstance(now_playing, dict) and "updated_at" in now_playing:
        now_playing = {**now_playing, "updated_at": iso(now_playing["updated_at"])}
    state = row.get("state") if row.get("state") in ("connected", "unreachable") else "unknown"
    return {
        "name": row["name"],
        "type": row["type"],
        "group": row.get("group_name") or row["name"],
        "url": mask_url(row["url"]),
        "state": state,
        "last_seen_at": iso(row.get("last_seen_at")),
        "last_error": mask_values(row["last_error"]) if row.get("last_error") else None,
        "now_playing": now_playing,
    }


def setup(app: web.Application) -> None:
    """Register the players route."""

    async def players(request: web.Request) -> web.Response:
        """List the players."""
        services = services_of(request)
        items = [player_to_api(r) for r in await services.db.read(api.players)]
        return web.json_response({"items": items, "total": len(items)})

    app.router.add_get("/api/players", players)
