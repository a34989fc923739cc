"""notify_players through the real app and queue against a fake Kodi and a fake Jellyfin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_config, wait_for
from fakes.jellyfin import start_fake_jellyfin
from fakes.kodi import FakeKodi, start_fake_kodi
from fakes.player_setup import (
    NAS_MOVIES,
    NAS_TV,
    add_episode,
    add_movie,
    jellyfin_player,
    kodi_player,
    nas_mappings,
)

from agent.clock import FakeClock


@pytest.fixture
async def kodi(aiohttp_server: Any) -> FakeKodi:
    """A fake Kodi with a notification socket."""
    return await start_fake_kodi(aiohttp_server)


async def app_with(
    make_client: Any, tmp_path: Path, players: list[dict[str, Any]], clock: FakeClock | None = None
) -> Any:
    """The real app with these players configured."""
    return await make_client(make_config(tmp_path, {"players": players}), clock=clock)


async def notify(agent: Any, entity: str, item_id: int, update: str, **extra: Any) -> Any:
    """Enqueue one notify_players job, drain the queue, return the job."""
    job = await agent.queue.enqueue(
        "notify_players", {"entity": entity, "id": item_id, "update": update, **extra}
    )
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def test_known_movie_is_refreshed_with_its_nfo(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """Kodi already has the movie: RefreshMovie with ignorenfo false, no scan."""
    client = await app_with(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    known = kodi.add_item("movie", f"{NAS_MOVIES}Heat (1995)/Heat (1995).mkv", "Heat")
    job = await notify(client.agent, "movie", movie_id, "Modified")
    assert job.status == "completed", job.error
    refresh = kodi.calls_to("VideoLibrary.RefreshMovie")
    assert [c.params for c in refresh] == [{"movieid": known, "ignorenfo": False}]
    assert kodi.calls_to("VideoLibrary.Scan") == []
    assert job.result["groups"]["lr"]["action"].startswith("refreshed")


async def test_unknown_movie_scans_its_mapped_folder_never_the_root(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """Kodi lacks the movie: VideoLibrary.Scan on the movie folder as Kodi sees it."""
    client = await app_with(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "X", 1999)
    kodi.add_file(f"{NAS_MOVIES}X (1999)/X (1999).mkv", "X")
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "completed", job.error
    scans = [c.params["directory"] for c in kodi.calls_to("VideoLibrary.Scan")]
    assert scans == ["smb://nas/movies/X (1999)/"]
    assert NAS_MOVIES not in scans
    await kodi.scans_done()
    assert kodi.find("movie", f"{NAS_MOVIES}X (1999)/X (1999).mkv") is not None


async def test_deleted_cleans_the_folder_from_the_payload(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """Deleted with the row gone: VideoLibrary.Clean on the payload's folder, mapped."""
    client = await app_with(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    local = tmp_path / "media" / "movies" / "Gone (2001)" / "Gone (2001).mkv"
    job = await notify(client.agent, "movie", 999, "Deleted", file=str(local))
    assert job.status == "completed", job.error
    assert [c.params["directory"] for c in kodi.calls_to("VideoLibrary.Clean")] == [
        f"{NAS_MOVIES}Gone (2001)/"
    ]


async def test_group_fails_over_to_the_second_member_once(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """The first member is down: the second is told, once; the first is shown unreachable."""
    maps = nas_mappings(tmp_path)
    players = [
        kodi_player("bedroom", None, group="main", port=free_port(), path_mappings=maps),
        kodi_player("lr", kodi, group="main", path_mappings=maps),
    ]
    client = await app_with(make_client, tmp_path, players)
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Alien", 1979)
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "completed", job.error
    assert job.result["groups"]["main"]["player"] == "lr"
    assert len(kodi.calls_to("VideoLibrary.Scan")) == 1
    row = await client.agent.db.fetchone("SELECT state, last_error FROM media_players WHERE name = 'bedroom'")
    assert row["state"] == "unreachable" and "cannot reach Kodi" in row["last_error"]


async def test_jellyfin_gets_the_mapped_path_with_its_token(
    make_client: Any, tmp_path: Path, aiohttp_server: Any
) -> None:
    """Jellyfin: /Library/Media/Updated with the path as Jellyfin sees it and the MediaBrowser token."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    maps = [{"remote": "/data/movies", "local": str(tmp_path / "media" / "movies")}]
    client = await app_with(make_client, tmp_path, [jellyfin_player("jf", jelly, path_mappings=maps)])
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "completed", job.error
    assert jelly.updates() == [{"Path": "/data/movies/Heat (1995)/Heat (1995).mkv", "UpdateType": "Created"}]
    posted = [r for r in jelly.requests if r.path == "/Library/Media/Updated"]
    assert posted[0].authorization.startswith(f'MediaBrowser Token="{jelly.api_key}"')


async def test_defer_while_playing_retries_in_a_minute(
    make_client: Any, tmp_path: Path, kodi: FakeKodi, clock: FakeClock
) -> None:
    """A playing Kodi with defer_while_playing is left alone for 60 s, then told."""
    player = kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path), defer_while_playing=True)
    client = await app_with(make_client, tmp_path, [player], clock=clock)
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    kodi.play(f"{NAS_MOVIES}Other (2000)/Other (2000).mkv", 10, 100)
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "pending" and "defer_while_playing" in job.error
    assert job.run_after == pytest.approx(clock.now() + 60)
    assert kodi.calls_to("VideoLibrary.Scan") == []
    kodi.playing = None
    clock.advance(61)
    await client.agent.queue.run_until_idle()
    assert (await client.agent.queue.get(job.id)).status == "completed"
    assert len(kodi.calls_to("VideoLibrary.Scan")) == 1


async def test_retry_tells_only_the_groups_that_failed(
    make_client: Any, tmp_path: Path, kodi: FakeKodi, aiohttp_server: Any, clock: FakeClock
) -> None:
    """Kodi is told on the first try; Jellyfin is down (503): the retry tells Jellyfin only."""
    jelly = await start_fake_jellyfin(aiohttp_server)
    maps = nas_mappings(tmp_path)
    client = await app_with(
        make_client,
        tmp_path,
        [kodi_player("lr", kodi, path_mappings=maps), jellyfin_player("jf", jelly)],
        clock=clock,
    )
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    await wait_for(lambda: any(r.path == "/Sessions" for r in jelly.requests))  # the poller's first look
    jelly.fail_status = [503]
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "pending" and "jf" in job.error
    assert job.payload["done_groups"] == ["lr"]
    clock.advance(31)
    await client.agent.queue.run_until_idle()
    job = await client.agent.queue.get(job.id)
    assert job.status == "completed", job.error
    assert len(kodi.calls_to("VideoLibrary.Scan")) == 1
    # The 503 answered the item lookup (GET /Items); the retry looked again and reported the new path once.
    assert [r.path.split("?")[0] for r in jelly.requests if r.path.startswith("/Items")] == ["/Items", "/Items"]
    assert [u["UpdateType"] for u in jelly.updates()] == ["Created"]


async def test_uncovered_path_fails_clearly(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """No mapping covers the movie: the job fails naming the path, Kodi is not called."""
    elsewhere = tmp_path / "elsewhere"  # a real folder (the config requires one), outside the library
    elsewhere.mkdir()
    maps = [{"remote": "smb://nas/other/", "local": str(elsewhere)}]
    client = await app_with(make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=maps)])
    movie_id, _, _ = await add_movie(client.agent, tmp_path, "Heat", 1995)
    job = await notify(client.agent, "movie", movie_id, "Created")
    assert job.status == "failed"
    assert "lr" in job.error and "no path mapping covers" in job.error and "Heat (1995)" in job.error
    assert kodi.calls_to("VideoLibrary.Scan") == [] and kodi.calls_to("VideoLibrary.GetMovies") == []


async def test_episode_of_a_new_show_scans_the_show_folder(
    make_client: Any, tmp_path: Path, kodi: FakeKodi
) -> None:
    """New show: the show folder is scanned; a known show: only the episode's season folder."""
    client = await app_with(
        make_client, tmp_path, [kodi_player("lr", kodi, path_mappings=nas_mappings(tmp_path))]
    )
    ep1, _ = await add_episode(client.agent, tmp_path, "Dark", 1, 1)
    job = await notify(client.agent, "episode", ep1, "Created")
    assert job.status == "completed", job.error
    kodi.add_item("tvshow", f"{NAS_TV}Dark/", "Dark")
    ep2, _ = await add_episode(client.agent, tmp_path, "Dark", 1, 2)
    job = await notify(client.agent, "episode", ep2, "Created")
    assert job.status == "completed", job.error
    assert [c.params["directory"] for c in kodi.calls_to("VideoLibrary.Scan")] == [
        f"{NAS_TV}Dark/",
        f"{NAS_TV}Dark/Season 01/",
    ]


async def test_unknown_item_is_a_clear_failure(make_client: Any, tmp_path: Path, kodi: FakeKodi) -> None:
    """A Created notification for a movie that does not exist fails with a message, not a crash."""
    client = await app_with(make_client, tmp_path, [kodi_player("lr", kodi)])
    job = await notify(client.agent, "movie", 4242, "Created")
    assert job.status == "failed" and "movie 4242 not found" in job.error


async def test_new_artwork_drops_cached_textures_on_every_kodi_of_a_group(
    make_client: Any, tmp_path: Path, kodi: FakeKodi, aiohttp_server: Any
) -> None:
    """Two Kodis share one library (a group): one is told, but BOTH drop their thumbnail of the new poster."""
    second = await start_fake_kodi(aiohttp_server)
    maps = nas_mappings(tmp_path)
    players = [kodi_player("lr", kodi, group="main", path_mappings=maps),
               kodi_player("bedroom", second, group="main", path_mappings=maps)]
    client = await app_with(make_client, tmp_path, players)
    movie_id, folder, _ = await add_movie(client.agent, tmp_path, "Alien", 1979)
    remote = "smb://nas/movies/Alien (1979)/"
    for fake in (kodi, second):
        fake.cache_texture(remote + "poster.jpg")
        fake.cache_texture(remote + "fanart.jpg")
    job = await client.agent.queue.enqueue("notify_players", {
        "entity": "movie", "id": movie_id, "update": "Modified", "art": [str(Path(folder) / "poster.jpg")]})
    await client.agent.queue.run_until_idle()
    job = await client.agent.queue.get(job.id)
    assert job.status == "completed", job.error
    assert job.result["groups"]["main"]["player"] == "lr"
    assert job.result["textures"] == {"lr": {"dropped": [remote + "poster.jpg"]},
                                      "bedroom": {"dropped": [remote + "poster.jpg"]}}
    for fake in (kodi, second):
        assert [u for u in fake.textures.values() if "poster" in u] == []
        assert len(fake.textures) == 1  # the fanart, not replaced, stays cached
