"""Playback capture and restore across a file upgrade, through the real app against a fake Kodi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, wait_for
from fakes.jellyfin import start_fake_jellyfin
from fakes.kodi import FakeKodi, start_fake_kodi
from fakes.player_setup import NAS_MOVIES, add_movie, jellyfin_player, kodi_player, nas_mappings

from agent.clock import FakeClock
from agent.players.kodi import seconds_from_time

OLD = f"{NAS_MOVIES}Heat (1995)/Heat (1995) 720p.mkv"
NEW = f"{NAS_MOVIES}Heat (1995)/Heat (1995) 2160p.mkv"


@pytest.fixture
async def kodi(aiohttp_server: Any) -> FakeKodi:
    """A fake Kodi whose scans take a moment (so a restore has to wait for OnScanFinished)."""
    return await start_fake_kodi(aiohttp_server, scan_delay=0.2)


async def start(
    make_client: Any, tmp_path: Path, players: list[dict[str, Any]], clock: FakeClock | None = None
) -> Any:
    """The real app with these players, its Kodi listeners connected."""
    client = await make_client(make_config(tmp_path, {"players": players}), clock=clock)
    registry = client.agent.players
    assert registry is not None
    for player in registry.kodis():
        if player.cfg.url.startswith("http://127.0.0.1") and player.listener is not None:
            await wait_for(lambda p=player: p.listener.connected)
    return client


async def run(agent: Any, type_: str, payload: dict[str, Any], **kw: Any) -> Any:
    """Enqueue one job, drain the queue, return the job."""
    job = await agent.queue.enqueue(type_, payload, **kw)
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def rows(agent: Any) -> list[dict[str, Any]]:
    """Every playback_state row."""
    return [dict(r) for r in await agent.db.fetchall("SELECT * FROM playback_state ORDER BY id", ())]


async def test_upgrade_keeps_the_viewers_place(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """Playing, half-watched old file -> capture -> new file scanned -> restore on the new item."""
    client = await start(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995, "Heat (1995) 720p.mkv")
    old_id = kodi.add_item(
        "movie",
        OLD,
        "Heat",
        playcount=1,
        lastplayed="2026-01-02 20:00:00",
        resume={"position": 1200.0, "total": 6000.0},
    )
    kodi.play(OLD, position=3000.0, total=6000.0)

    job = await run(
        agent,
        "playback_capture",
        {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"},
    )
    assert job.status == "completed", job.error
    assert job.result["captured"] == {"lr": 1}
    [row] = await rows(agent)
    assert row["player"] == "lr" and row["media_key"] == f"movie:{movie_id}" and row["old_file"] == old_local
    assert (row["player_item_id"], row["position"], row["total"]) == (old_id, 3000.0, 6000.0)
    assert (row["playcount"], row["lastplayed"], row["was_playing"]) == (1, "2026-01-02 20:00:00", 1)
    assert row["expires_at"] == pytest.approx(row["captured_at"] + 24 * 3600)
    assert kodi.playing is not None and kodi.calls_to("Player.Stop") == []  # the upgrade replaces the file
    details = json.loads(
        (await agent.db.fetchone("SELECT details FROM movies WHERE id = ?", (movie_id,)))["details"]
    )
    assert details["playcount"] == 1 and details["lastplayed"] == "2026-01-02 20:00:00"
    assert details["resume"] == {"position": 3000.0, "total": 6000.0}

    # The upgrade: Radarr put a new file in the folder; the scan kept the row and switched its file.
    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    Path(new_local).write_bytes(b"video")
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    kodi.remove_file(OLD)
    kodi.add_file(NEW, "Heat")
    notify = await agent.queue.enqueue(
        "notify_players", {"entity": "movie", "id": movie_id, "update": "Created"}
    )
    restore = await run(
        agent, "playback_restore", {"entity": "movie", "id": movie_id}, depends_on=[notify.id]
    )
    assert restore.status == "completed", restore.error

    new_item = kodi.find("movie", NEW)
    assert new_item is not None and new_item.id != old_id
    [details_call] = kodi.calls_to("VideoLibrary.SetMovieDetails")
    assert details_call.params == {
        "movieid": new_item.id,
        "playcount": 1,
        "lastplayed": "2026-01-02 20:00:00",
        "resume": {"position": 3000.0, "total": 6000.0},
    }
    assert (new_item.playcount, new_item.resume["position"]) == (1, 3000.0)
    [open_call] = kodi.calls_to("Player.Open")
    assert open_call.params["item"] == {"file": NEW}
    assert seconds_from_time(open_call.params["options"]["resume"]) == 3000.0
    assert kodi.playing is not None and kodi.playing.file == NEW and kodi.playing.position == 3000.0
    [row] = await rows(agent)
    assert row["restored_at"] is not None and row["new_file"] == new_local and row["restore_error"] is None
    assert restore.result["restored"]["lr"].startswith("resumed")


async def test_nothing_to_capture_stores_nothing(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """A file Kodi never saw and does not play: no row, and the result says so."""
    client = await start(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    movie_id, _, old_local = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await run(
        client.agent,
        "playback_capture",
        {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"},
    )
    assert job.status == "completed", job.error
    assert job.result["captured"] == {"lr": 0} and "nothing to restore" in job.result["note"]
    assert await rows(client.agent) == []
    restore = await run(client.agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert restore.status == "completed" and "nothing captured" in restore.result["note"]
    assert kodi.calls_to("VideoLibrary.SetMovieDetails") == []


async def test_restore_waits_for_the_new_file_then_gives_up(
    make_client: Any, tmp_path: Path, kodi: FakeKodi, clock: FakeClock
) -> None:
    """The new file never reaches Kodi: retried every 5 s, then restore_error names it."""
    client = await start(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))], clock=clock
    )
    agent = client.agent
    movie_id, _, old_local = await add_movie(agent, tmp_path, "Heat", 1995, "Heat (1995) 720p.mkv")
    kodi.add_item("movie", OLD, "Heat", playcount=2)
    await run(
        agent,
        "playback_capture",
        {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"},
    )
    kodi.remove_file(OLD)
    kodi.items.clear()
    job = await run(agent, "playback_restore", {"entity": "movie", "id": movie_id}, max_retries=2)
    assert job.status == "pending" and job.run_after == pytest.approx(clock.now() + 5)
    assert "not in lr's library yet" in job.error
    for _ in range(2):
        clock.advance(6)
        await agent.queue.run_until_idle()
    job = await agent.queue.get(job.id)
    assert job.status == "failed" and "never appeared" in job.error
    [row] = await rows(agent)
    assert row["restored_at"] is None and "never appeared" in row["restore_error"]


async def test_expired_capture_is_not_restored(
    make_client: Any, tmp_path: Path, kodi: FakeKodi, clock: FakeClock
) -> None:
    """A capture older than playback.expire_hours is ignored."""
    client = await start(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))], clock=clock
    )
    movie_id, _, old_local = await add_movie(client.agent, tmp_path, "Heat", 1995, "Heat (1995) 720p.mkv")
    kodi.add_item("movie", OLD, "Heat", playcount=3)
    await run(
        client.agent,
        "playback_capture",
        {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"},
    )
    assert len(await rows(client.agent)) == 1
    clock.advance(25 * 3600)
    job = await run(client.agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert job.status == "completed" and "nothing captured" in job.result["note"]
    assert kodi.calls_to("VideoLibrary.SetMovieDetails") == []


async def test_jellyfin_capture_records_the_session_position(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """Jellyfin playing the old file: position, runtime and was_playing are captured."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    maps = [{"remote": "/data/movies", "local": str(tmp_path / "media" / "movies")}]
    client = await start(make_client, tmp_path, [jellyfin_player("jf", jelly, path_mappings=maps)])
    movie_id, _, old_local = await add_movie(client.agent, tmp_path, "Heat", 1995)
    jelly.play("/data/movies/Heat (1995)/Heat (1995).mkv", "Heat", position=600.0, runtime=6000.0)
    job = await run(
        client.agent,
        "playback_capture",
        {"entity": "movie", "id": movie_id, "files": [old_local], "source": "radarr"},
    )
    assert job.status == "completed", job.error
    [row] = await rows(client.agent)
    assert (row["player"], row["position"], row["total"], row["was_playing"]) == ("jf", 600.0, 6000.0, 1)
    assert row["player_item_id"] == "item-1"


async def test_bad_payload_fails_with_a_message(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """A capture without usable files is a clear permanent failure."""
    client = await start(make_client, tmp_path, [kodi_player("lr", kodi)])
    job = await run(client.agent, "playback_capture", {"entity": "movie", "id": 1, "files": "nope"})
    assert job.status == "failed" and "files must be a list of paths" in job.error


async def test_upgrade_removes_the_replaced_files_entry_once_the_new_one_exists(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """Kodi keeps the deleted file's entry beside the new one; the restore removes exactly that entry."""
    client = await start(make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))])
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995, "Heat (1995) 720p.mkv")
    old_id = kodi.add_item("movie", OLD, "Heat", playcount=1, lastplayed="2026-01-02 20:00:00")
    other = kodi.add_item("movie", f"{NAS_MOVIES}Heat (1995)/Heat (1995) extras.mkv", "Heat extras")
    job = await run(agent, "playback_capture", {"entity": "movie", "id": movie_id, "files": [old_local]})
    assert job.status == "completed", job.error
    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    Path(new_local).write_bytes(b"video")
    Path(old_local).unlink()  # Radarr deleted it for the upgrade
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    new_id = kodi.add_item("movie", NEW, "Heat")  # the scan added the new file; the old entry stays
    restore = await run(agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert restore.status == "completed", restore.error
    assert restore.result["restored"]["lr"] == f"watched state set on {NEW}; removed the old entry {old_id}"
    assert [c.params for c in kodi.calls_to("VideoLibrary.RemoveMovie")] == [{"movieid": old_id}]
    assert sorted(kodi.items) == sorted([new_id, other])  # never a clean: the unrelated entry stays
    assert kodi.calls_to("VideoLibrary.Clean") == []


async def test_old_file_still_on_disk_is_not_removed(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """When the old file still exists (a copy, not an upgrade), its Kodi entry is left alone."""
    client = await start(make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))])
    agent = client.agent
    movie_id, folder, old_local = await add_movie(agent, tmp_path, "Heat", 1995, "Heat (1995) 720p.mkv")
    kodi.add_item("movie", OLD, "Heat", playcount=1)
    await run(agent, "playback_capture", {"entity": "movie", "id": movie_id, "files": [old_local]})
    new_local = str(Path(folder) / "Heat (1995) 2160p.mkv")
    Path(new_local).write_bytes(b"video")
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (new_local, movie_id))
    kodi.add_item("movie", NEW, "Heat")
    restore = await run(agent, "playback_restore", {"entity": "movie", "id": movie_id})
    assert restore.status == "completed", restore.error
    assert kodi.calls_to("VideoLibrary.RemoveMovie") == []
