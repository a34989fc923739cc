"""GET /api/players and the players service: connection state, now playing, player:activity events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, free_port, make_config, wait_for
from fakes.jellyfin import start_fake_jellyfin
from fakes.kodi import start_fake_kodi
from fakes.player_setup import NAS_MOVIES, jellyfin_player, kodi_player, nas_mappings

import agent.players.links as players_service


async def players(client: Any) -> dict[str, dict[str, Any]]:
    """GET /api/players keyed by name."""
    resp = await client.get("/api/players", headers=HEADERS)
    assert resp.status == 200
    body = await resp.json()
    assert body["total"] == len(body["items"])
    return {p["name"]: p for p in body["items"]}


async def test_players_show_state_group_and_now_playing(
    make_client: Any, tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listening Kodi, a polled Kodi (9090 closed), a down Kodi and a Jellyfin, each with its state."""
    monkeypatch.setattr(players_service, "KODI_POLL_SECONDS", 0.1)
    live = await start_fake_kodi(aiohttp_server)
    polled = await start_fake_kodi(aiohttp_server, with_ws=False)
    jelly = await start_fake_jellyfin(aiohttp_server)
    maps = nas_mappings(tmp_path)
    live.add_item("movie", f"{NAS_MOVIES}Heat (1995)/Heat (1995).mkv", "Heat")
    live.play(f"{NAS_MOVIES}Heat (1995)/Heat (1995).mkv", 100.0, 6000.0)
    polled.play("/elsewhere/clip.mkv", 5.0, 50.0, paused=True)
    jelly.play("/data/movies/Alien (1979)/Alien (1979).mkv", "Alien", 60.0, 7000.0)
    config = make_config(
        tmp_path,
        {
            "players": [
                kodi_player("lr", live, group="main", path_mappings=maps),
                kodi_player("bedroom", None, group="main", port=free_port()),
                {**kodi_player("kitchen", polled), "ws_port": free_port()},
                jellyfin_player(
                    "jf",
                    jelly,
                    path_mappings=[{"remote": "/data/movies", "local": str(tmp_path / "media" / "movies")}],
                ),
            ]
        },
    )
    client = await make_client(config)

    async def settled() -> bool:
        """Every player has left the unknown state and the playing ones report it."""
        got = await players(client)
        return all(p["state"] != "unknown" for p in got.values()) and all(
            got[n]["now_playing"] for n in ("lr", "kitchen", "jf")
        )

    await wait_for(settled, timeout=10)
    got = await players(client)
    assert list(got) == ["lr", "bedroom", "kitchen", "jf"]
    lr = got["lr"]
    assert (lr["type"], lr["group"], lr["url"], lr["state"]) == ("kodi", "main", live.url, "connected")
    assert lr["last_seen_at"].endswith("Z") and lr["last_error"] is None
    movie = str(tmp_path / "media" / "movies" / "Heat (1995)" / "Heat (1995).mkv")
    assert lr["now_playing"]["state"] == "playing" and lr["now_playing"]["file"] == movie
    assert lr["now_playing"]["position"] == 100.0 and lr["now_playing"]["total"] == 6000.0
    assert got["bedroom"]["state"] == "unreachable" and "cannot reach Kodi" in got["bedroom"]["last_error"]
    assert got["bedroom"]["now_playing"] is None and got["bedroom"]["group"] == "main"
    assert got["kitchen"]["state"] == "connected" and got["kitchen"]["group"] == "kitchen"
    assert got["kitchen"]["now_playing"]["state"] == "paused"
    assert got["kitchen"]["now_playing"]["file"] == "/elsewhere/clip.mkv"  # no mapping: the player's own path
    assert got["jf"]["state"] == "connected" and got["jf"]["now_playing"]["title"] == "Alien"
    assert got["jf"]["now_playing"]["file"] == str(
        tmp_path / "media" / "movies" / "Alien (1979)" / "Alien (1979).mkv"
    )


async def test_kodi_notifications_become_player_activity(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """Player.OnStop / Player.OnPlay on the 9090 socket -> player:activity events and now_playing."""
    fake = await start_fake_kodi(aiohttp_server)
    fake.add_item("movie", f"{NAS_MOVIES}Heat (1995)/Heat (1995).mkv", "Heat")
    client = await make_client(
        make_config(tmp_path, {"players": [kodi_player("lr", fake, path_mappings=nas_mappings(tmp_path))]})
    )
    events: list[dict[str, Any]] = []
    client.agent.events.subscribe(lambda t, d: events.append(d) if t == "player:activity" else None)
    await wait_for(lambda: fake.sockets)
    await wait_for(lambda: fake.calls_to("Player.GetActivePlayers"))  # the connect watcher's first look

    fake.play(f"{NAS_MOVIES}Heat (1995)/Heat (1995).mkv", 30.0, 6000.0)
    await fake.push(
        "Player.OnPlay", {"item": {"id": 1, "type": "movie"}, "player": {"playerid": 1, "speed": 1}}
    )
    await wait_for(lambda: any(e["state"] == "playing" for e in events))
    playing = next(e for e in events if e["state"] == "playing")
    assert playing["player"] == "lr" and playing["file"].endswith("Heat (1995).mkv")
    assert playing["position"] == 30.0 and playing["total"] == 6000.0
    assert (await players(client))["lr"]["now_playing"]["state"] == "playing"

    fake.playing = None
    await fake.push("Player.OnStop", {"item": {"id": 1, "type": "movie"}, "end": False})
    await wait_for(lambda: events[-1]["state"] == "idle")
    assert events[-1] == {"player": "lr", "state": "idle"}
    assert (await players(client))["lr"]["now_playing"] is None


async def test_players_need_the_api_key(client: Any) -> None:
    """GET /api/players without the key is 401; with it and no players, an empty list."""
    assert (await client.get("/api/players")).status == 401
    resp = await client.get("/api/players", headers=HEADERS)
    assert await resp.json() == {"items": [], "total": 0}
