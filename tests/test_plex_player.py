"""Plex as a player: a partial scan of the item's folder in the section that holds it, the token's user's
watched state and view offset kept across an upgrade, and its sessions as /api/players state, against a
fake Plex Media Server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import HEADERS, make_config, wait_for
from fakes.player_setup import add_movie
from fakes.plex import FakePlex, start_fake_plex

from agent.clock import FakeClock
from agent.config_checks import effective

REMOTE = "/plex/movies/Heat (1995)"


def plex_player(fake: FakePlex, tmp_path: Path) -> dict[str, Any]:
    """A plex player entry: Plex sees our movies folder as /plex/movies."""
    maps = [{"remote": "/plex/movies", "local": str(tmp_path / "media" / "movies")}]
    return {"name": "plex", "type": "plex", "url": fake.url, "token": fake.token, "path_mappings": maps}


async def start(make_client: Any, tmp_path: Path, fake: FakePlex, clock: FakeClock | None = None) -> Any:
    """The real app with one Plex player; Plex has a Movies section (and a TV one)."""
    fake.add_section("1", "movie", "/plex/movies")
    fake.add_section("2", "show", "/plex/tv")
    return await make_client(make_config(tmp_path, {"players": [plex_player(fake, tmp_path)]}), clock=clock)


async def run(agent: Any, type_: str, payload: dict[str, Any]) -> Any:
    """Enqueue one job, drain the queue, return the job."""
    job = await agent.queue.enqueue(type_, payload)
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def test_notify_scans_only_the_items_folder_in_its_section(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """GET /library/sections/1/refresh?path=<the movie's folder as Plex sees it>, with the token."""
    fake = await start_fake_plex(aiohttp_server)
    client = await start(make_client, tmp_path, fake)
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await run(client.agent, "notify_players", {"entity": "movie", "id": movie_id, "update": "Modified"})
    assert job.status == "completed", job.error
    [scan] = fake.calls("/library/sections/1/refresh")
    assert scan.query == {"path": REMOTE} and scan.token == fake.token
    assert fake.calls("/library/sections/2/refresh") == []
    assert job.result["groups"]["plex"]["action"] == f"scanned {REMOTE} (section 1)"


async def test_folder_outside_every_section_fails_clearly(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """No section holds the folder: a clear permanent failure, never a whole-section scan."""
    fake = await start_fake_plex(aiohttp_server)
    fake.add_section("1", "movie", "/elsewhere")
    client = await make_client(make_config(tmp_path, {"players": [plex_player(fake, tmp_path)]}))
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await run(client.agent, "notify_players", {"entity": "movie", "id": movie_id, "update": "Created"})
    assert job.status == "failed" and f"no Plex library section has a folder holding {REMOTE}" in job.error
    assert [r for r in fake.requests if r.path.endswith("/refresh")] == []


async def test_watched_state_and_offset_survive_an_upgrade(
    make_client: Any, tmp_path: Path, aiohttp_server: Any, clock: FakeClock
) -> None:
    """The old file was watched and left at 25 min; the new item gets scrobbled and its offset set."""
    fake = await start_fake_plex(aiohttp_server)
    client = await start(make_client, tmp_path, fake, clock)
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995)
    fake.add_item("101", "1", f"{REMOTE}/Heat (1995).mkv", "Heat", view_count=1, view_offset=1_500_000)
    job = await run(agent, "playback_capture",
                    {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"})
    assert job.status == "completed", job.error
    assert job.result["captured"] == {"plex": 1}
    row = await agent.db.fetchone("SELECT player_item_id, position, playcount FROM playback_state", ())
    assert tuple(row) == (101, 1500.0, 1)  # the ratingKey, kept with the column's integer affinity

    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    Path(new_local).write_bytes(b"video")
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    del fake.items["101"]
    waiting = await agent.queue.enqueue("playback_restore", {"entity": "movie", "id": movie_id})
    await agent.queue.run_until_idle()
    waiting = await agent.queue.get(waiting.id)
    assert waiting.status == "pending" and "not in plex's library yet" in (waiting.error or "")

    assert fake.calls("/:/scrobble") == [] and fake.calls("/:/progress") == []

    fake.add_item("202", "1", f"{REMOTE}/Heat (1995) 2160p.mkv", "Heat")  # Plex scanned the new file
    clock.advance(10)
    await agent.queue.run_until_idle()
    restored = await agent.queue.get(waiting.id)
    assert restored.status == "completed", restored.error
    assert restored.result["restored"]["plex"].startswith("watched and offset 1500 s on item 202")
    assert [r.query for r in fake.calls("/:/scrobble")] == [
        {"key": "202", "identifier": "com.plexapp.plugins.library"}]
    assert [r.query for r in fake.calls("/:/progress")] == [
        {"key": "202", "identifier": "com.plexapp.plugins.library", "time": "1500000", "state": "stopped"}]
    new = fake.items["202"]
    assert (new.view_count, new.view_offset) == (1, 1_500_000)


async def test_sessions_show_in_the_players_api(make_client: Any, tmp_path: Path, aiohttp_server: Any) -> None:
    """What Plex plays (GET /status/sessions) is the player's state in GET /api/players."""
    fake = await start_fake_plex(aiohttp_server)
    fake.add_section("1", "movie", "/plex/movies")
    fake.add_item("101", "1", f"{REMOTE}/Heat (1995).mkv", "Heat")
    fake.playing.append(("101", 600_000, "paused"))
    client = await make_client(make_config(tmp_path, {"players": [plex_player(fake, tmp_path)]}))
    await wait_for(lambda: fake.calls("/status/sessions"))

    async def state() -> Any:
        resp = await client.get("/api/players", headers=HEADERS)
        body = await resp.json()
        return next(p for p in body["items"] if p["name"] == "plex")

    await wait_for(lambda: client.agent.players.get("plex").activity.get("state") == "paused")
    player = await state()
    print("GET /api/players (plex):", json.dumps(player))
    assert player["state"] == "connected" and player["type"] == "plex"
    assert player["now_playing"]["file"] == str(tmp_path / "media" / "movies" / "Heat (1995)" / "Heat (1995).mkv")
    assert player["now_playing"]["position"] == 600.0


def test_token_is_masked_in_the_effective_config(tmp_path: Path) -> None:
    """The Plex token is a secret: check-config masks it."""
    fake = FakePlex()
    fake.url = "http://127.0.0.1:32400"
    cfg = make_config(tmp_path, {"players": [plex_player(fake, tmp_path)]})
    assert cfg.players[0].token == fake.token
    assert effective(cfg)["players"][0]["token"] == "********"
