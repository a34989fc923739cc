"""Jellyfin as a player: a per-item full refresh for known items, and every user's place kept across an
upgrade (captured per user on the delete-for-upgrade, restored per user on the new item), against a fake
Jellyfin that models /Items, /Items/{id}/Refresh, /Users and /UserItems/{id}/UserData."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import make_config
from fakes.jellyfin import start_fake_jellyfin
from fakes.player_setup import add_movie, jellyfin_player

from agent.clock import FakeClock

REMOTE = "/data/movies/Heat (1995)"
OLD = f"{REMOTE}/Heat (1995).mkv"


def mappings(tmp_path: Path) -> list[dict[str, str]]:
    """Jellyfin sees our movies folder as /data/movies."""
    return [{"remote": "/data/movies", "local": str(tmp_path / "media" / "movies")}]


async def start(make_client: Any, tmp_path: Path, jelly: Any, clock: FakeClock | None = None) -> Any:
    """The real app with one Jellyfin player."""
    players = [jellyfin_player("jf", jelly, path_mappings=mappings(tmp_path))]
    return await make_client(make_config(tmp_path, {"players": players}), clock=clock)


async def run(agent: Any, type_: str, payload: dict[str, Any]) -> Any:
    """Enqueue one job, drain the queue, return the job."""
    job = await agent.queue.enqueue(type_, payload)
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def test_known_item_gets_a_full_item_refresh_not_a_library_scan(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """An item Jellyfin lists (found by its path as Jellyfin sees it) is refreshed with the replace-all modes."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    client = await start(make_client, tmp_path, jelly)
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    jelly.add_item("aaa111", "Movie", OLD, "Heat")
    jelly.add_item("bbb222", "Movie", "/data/movies/Alien (1979)/Alien (1979).mkv", "Alien")
    job = await run(client.agent, "notify_players", {"entity": "movie", "id": movie_id, "update": "Modified"})
    assert job.status == "completed", job.error
    [refresh] = jelly.calls("POST", "/Items/")
    assert refresh.path == (
        "/Items/aaa111/Refresh?metadataRefreshMode=FullRefresh&imageRefreshMode=FullRefresh"
        "&replaceAllMetadata=true&replaceAllImages=true"
    )
    assert jelly.updates() == []  # no /Library/Media/Updated, no /Library/Refresh
    assert not jelly.calls("POST", "/Library/Refresh")
    assert job.result["groups"]["jf"]["action"] == f"refreshed {OLD} (item aaa111)"


async def test_unknown_item_falls_back_to_media_updated(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """An item Jellyfin does not list yet is reported by path; nothing is refreshed."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    client = await start(make_client, tmp_path, jelly)
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await run(client.agent, "notify_players", {"entity": "movie", "id": movie_id, "update": "Created"})
    assert job.status == "completed", job.error
    assert jelly.updates() == [{"Path": OLD, "UpdateType": "Created"}]
    assert jelly.calls("POST", "/Items/") == []


async def upgrade(agent: Any, tmp_path: Path, jelly: Any, movie_id: int, folder: str) -> str:
    """Radarr's new file replaces the old one; Jellyfin lists it under a new item id."""
    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    Path(new_local).write_bytes(b"video")
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    del jelly.items["old-item"]
    jelly.add_item("new-item", "Movie", f"{REMOTE}/Heat (1995) 2160p.mkv", "Heat")
    return new_local


async def test_every_users_place_is_kept_across_an_upgrade(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """alice watched it twice, bob stopped at 25 min, carol never started: alice and bob get theirs back."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    client = await start(make_client, tmp_path, jelly)
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995)
    jelly.add_item("old-item", "Movie", OLD, "Heat")
    for uid, name in (("u-alice", "alice"), ("u-bob", "bob"), ("u-carol", "carol")):
        jelly.add_user(uid, name)
    jelly.user_data[("u-alice", "old-item")] = {
        "Played": True, "PlayCount": 2, "PlaybackPositionTicks": 0, "LastPlayedDate": "2026-01-02T20:00:00Z"}
    jelly.user_data[("u-bob", "old-item")] = {
        "Played": False, "PlayCount": 0, "PlaybackPositionTicks": 1500 * 10_000_000,
        "LastPlayedDate": "2026-01-03T21:00:00Z"}

    job = await run(agent, "playback_capture",
                    {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"})
    assert job.status == "completed", job.error
    assert job.result["captured"] == {"jf": 2}
    captured = await agent.db.fetchall(
        "SELECT player_user, player_item_id, position, playcount, lastplayed, played FROM playback_state"
        " ORDER BY player_user", ())
    assert [tuple(r) for r in captured] == [
        ("u-alice", "old-item", 0.0, 2, "2026-01-02T20:00:00Z", 1),
        ("u-bob", "old-item", 1500.0, 0, "2026-01-03T21:00:00Z", 0),
    ]
    details = json.loads((await agent.db.fetchone("SELECT details FROM movies WHERE id = ?", (movie_id,)))[0])
    assert "lastplayed" not in details  # Jellyfin's per-user dates never reach Kodi's NFO

    await upgrade(agent, tmp_path, jelly, movie_id, folder)
    restore = await run(agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert restore.status == "completed", restore.error
    posted = jelly.calls("POST", "/UserItems/")
    print("Jellyfin per-user restore calls:", json.dumps([{"path": r.path, "body": r.body} for r in posted]))
    assert [(r.path, r.body) for r in posted] == [
        ("/UserItems/new-item/UserData?userId=u-alice",
         {"Played": True, "PlayCount": 2, "PlaybackPositionTicks": 0, "LastPlayedDate": "2026-01-02T20:00:00Z"}),
        ("/UserItems/new-item/UserData?userId=u-bob",
         {"Played": False, "PlayCount": 0, "PlaybackPositionTicks": 15_000_000_000,
          "LastPlayedDate": "2026-01-03T21:00:00Z"}),
    ]
    assert jelly.data_of("u-bob", "new-item")["PlaybackPositionTicks"] == 15_000_000_000
    assert jelly.data_of("u-carol", "new-item")["PlayCount"] == 0
    assert set(restore.result["restored"]) == {"jf/u-alice", "jf/u-bob"}
    assert not await agent.db.fetchall("SELECT 1 FROM playback_state WHERE restored_at IS NULL", ())


async def test_restore_waits_until_jellyfin_lists_the_new_file(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """Before Jellyfin has scanned the new file the restore retries; nothing is written to the old item."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    client = await start(make_client, tmp_path, jelly)
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995)
    jelly.add_item("old-item", "Movie", OLD, "Heat")
    jelly.add_user("u-bob", "bob")
    jelly.user_data[("u-bob", "old-item")] = {"Played": False, "PlayCount": 0, "PlaybackPositionTicks": 10**10}
    await run(agent, "playback_capture", {"entity": "movie", "id": movie_id, "files": [old_local]})
    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    del jelly.items["old-item"]
    job = await agent.queue.enqueue("playback_restore", {"entity": "movie", "id": movie_id})
    await agent.queue.run_until_idle()
    job = await agent.queue.get(job.id)
    assert job.status == "pending" and "not in jf's library yet" in (job.error or ""), job
    assert jelly.calls("POST", "/UserItems/") == []


async def test_expired_jellyfin_capture_is_not_restored(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """Captures expire after playback.expire_hours, as Kodi's do."""
    clock = FakeClock(1_000_000.0)
    jelly = await start_fake_jellyfin(aiohttp_server)
    client = await start(make_client, tmp_path, jelly, clock=clock)
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995)
    jelly.add_item("old-item", "Movie", OLD, "Heat")
    jelly.add_user("u-alice", "alice")
    jelly.user_data[("u-alice", "old-item")] = {"Played": True, "PlayCount": 1}
    await run(agent, "playback_capture", {"entity": "movie", "id": movie_id, "files": [old_local]})
    await upgrade(agent, tmp_path, jelly, movie_id, folder)
    clock.advance(25 * 3600)
    job = await run(agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert job.status == "completed" and "nothing captured" in job.result["note"]
    assert jelly.calls("POST", "/UserItems/") == []
