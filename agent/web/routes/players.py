"""GET /api/players: configured players, their group, connection state and what they play."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.clock import iso
from agent.config_checks import mask_url, mask_values
from agent.errors import NotFound
from agent.players import PlayerError
from agent.players.registry import Player
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


async def probe(player: Player) -> str:
    """Ask a player whether it answers (and, for Jellyfin, accepts the key); a line naming what answered."""
    if player.is_kodi:
        await player.kodi.ping()
        version = await player.kodi.version()
        return f"Kodi answered (JSON-RPC {version.get('major', '?')}.{version.get('minor', '?')})"
    info = await player.jellyfin.ping()
    await player.jellyfin.sessions()  # the public ping does not check the API key; this does
    what = " ".join(str(part) for part in ("Jellyfin", info.get("ServerName"), info.get("Version")) if part)
    return f"{what} answered and accepted the key"


def setup(app: web.Application) -> None:
    """Register the players route."""

    async def players(request: web.Request) -> web.Response:
        """List the players."""
        services = services_of(request)
        items = [player_to_api(r) for r in await services.db.read(api.players)]
        return web.json_response({"items": items, "total": len(items)})

    async def test(request: web.Request) -> web.Response:
        """POST /api/players/{name}/test: call the player now, record the outcome, report it."""
        services = services_of(request)
        name = request.match_info["name"]
        player = services.players.get(name)
        if player is None:
            raise NotFound(f"no player named {name!r}", detail={"players": sorted(services.players.players)})
        try:
            message = await probe(player)
        except PlayerError as exc:
            await services.players.mark(player, exc)
            ok, message = False, mask_values(exc.message)
        else:
            await services.players.mark(player)
            ok = True
        rows = [r for r in await services.db.read(api.players) if r["name"] == player.name]
        return web.json_response({"ok": ok, "message": message,
                                  "player": player_to_api(rows[0]) if rows else None})

    app.router.add_get("/api/players", players)
    app.router.add_post("/api/players/{name}/test", test)
