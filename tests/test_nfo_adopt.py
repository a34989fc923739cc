"""An NFO another tool wrote is adopted (written into, never shadowed) and its values held per `nfo.existing`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config
from fakes.tmdb import FakeTmdb, sample_movie, sample_show
from test_pipeline import Factory, get, nfo_root, only_movie, provider_extra, publish_again, scan

from agent.clock import FakeClock
from agent.config import load_config
from agent.errors import UserError

SAMPLES = Path(__file__).parent / "nfo_samples"
DUNE = "Dune Part Two (2024)"
RADARR_PLOT = "Paul Atreides unites with Chani and the Fremen."


@pytest.fixture
def fake() -> FakeTmdb:
    """A fake TMDB knowing Dune: Part Two (the movie of tests/nfo_samples/radarr_movie.nfo) differently."""
    return FakeTmdb(movies={693134: sample_movie(693134, "Dune: Part Two", 2024, imdb_id="tt15239678",
                                                 overview="TMDB's own overview.")})


async def agent_with(make_client: Factory, tmp_path: Path, fake: FakeTmdb, url: str, **nfo: Any) -> Any:
    """The real app with TMDB at the fake and the given `nfo:` settings."""
    extra: dict[str, Any] = {"providers": provider_extra(fake, url, fanart=False)}
    if nfo:
        extra["nfo"] = nfo
    return await make_client(make_config(tmp_path, extra=extra), clock=FakeClock())


def dune_folder(tmp_path: Path, *nfo_names: str, sample: str = "radarr_movie.nfo") -> Path:
    """A movie folder with its video and a copy of a real-world NFO under each given name."""
    folder = tmp_path / "media" / "movies" / DUNE
    folder.mkdir(parents=True)
    (folder / f"{DUNE}.mkv").write_bytes(b"\x1aE\xdf\xa3 dune video")
    for name in nfo_names:
        (folder / name).write_bytes((SAMPLES / sample).read_bytes())
    return folder


def nfos(folder: Path) -> list[str]:
    """The .nfo files in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".nfo")


async def test_foreign_movie_nfo_is_the_one_rewritten(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                                     fake_url: str) -> None:
    """Radarr's movie.nfo + default `movie_filename: basename`: movie.nfo is rewritten, no <stem>.nfo appears."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo")
    await scan(client)
    assert nfos(folder) == ["movie.nfo"]
    root = nfo_root(folder / "movie.nfo")
    assert root.findtext("tagline") == "Dune: Part Two: believe the unbelievable."  # ours: TMDB filled it
    movie = await only_movie(client)
    assert movie["nfo_path"] == str(folder / "movie.nfo")
    job = await publish_again(client, "movie", movie["id"])
    assert job.result["written"] == [] and job.result["hand_edits"] == [], job.result
    assert nfos(folder) == ["movie.nfo"]


async def test_both_nfos_are_kept_in_step(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                          fake_url: str) -> None:
    """movie.nfo and <stem>.nfo both there: both are rewritten with the same bytes."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo", f"{DUNE}.nfo")
    await scan(client)
    assert nfos(folder) == sorted(["movie.nfo", f"{DUNE}.nfo"])
    ours = (folder / "movie.nfo").read_bytes()
    assert ours == (folder / f"{DUNE}.nfo").read_bytes()
    assert b"believe the unbelievable" in ours


async def test_release_text_nfo_is_not_adopted(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                               fake_url: str) -> None:
    """A scene text movie.nfo is not the item's NFO: ours goes to <stem>.nfo, the text file keeps its bytes."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo", sample="scene_info.nfo")
    await scan(client)
    assert (folder / "movie.nfo").read_bytes() == (SAMPLES / "scene_info.nfo").read_bytes()
    assert nfo_root(folder / f"{DUNE}.nfo").tag == "movie"


async def test_movie_nfo_in_a_shared_folder_is_not_adopted(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                                           fake_url: str) -> None:
    """Two movies in one folder: a movie.nfo there belongs to neither; each gets its <stem>.nfo."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo")
    (folder / "Arrival (2016).mkv").write_bytes(b"\x1aE\xdf\xa3 arrival")
    await scan(client)
    assert (folder / "movie.nfo").read_bytes() == (SAMPLES / "radarr_movie.nfo").read_bytes()
    assert (folder / f"{DUNE}.nfo").exists() and (folder / "Arrival (2016).nfo").exists()


async def test_stack_and_disc_nfos_are_adopted(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                              fake_url: str) -> None:
    """A stack's `<title>.nfo` and a DVD's `VIDEO_TS/VIDEO_TS.nfo` are rewritten; no second NFO is made."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    stack = tmp_path / "media" / "movies" / DUNE
    stack.mkdir(parents=True)
    for part in (1, 2):
        (stack / f"Dune Part Two cd{part}.avi").write_bytes(b"RIFF part %d" % part)
    (stack / "Dune Part Two.nfo").write_bytes((SAMPLES / "radarr_movie.nfo").read_bytes())
    dvd = tmp_path / "media" / "movies" / "Amelie (2001)"
    (dvd / "VIDEO_TS").mkdir(parents=True)
    (dvd / "VIDEO_TS" / "VIDEO_TS.IFO").write_bytes(b"DVDVIDEO-VMG")
    (dvd / "VIDEO_TS" / "VIDEO_TS.nfo").write_bytes((SAMPLES / "tmm_movie.nfo").read_bytes())
    await scan(client)
    assert nfos(stack) == ["Dune Part Two.nfo"] and nfos(dvd) == [] and nfos(dvd / "VIDEO_TS") == ["VIDEO_TS.nfo"]
    assert nfo_root(stack / "Dune Part Two.nfo").findtext("tagline") == "Dune: Part Two: believe the unbelievable."
    dvd_nfo = dvd / "VIDEO_TS" / "VIDEO_TS.nfo"
    assert dvd_nfo.read_bytes() != (SAMPLES / "tmm_movie.nfo").read_bytes() and nfo_root(dvd_nfo).tag == "movie"


async def test_keep_holds_foreign_values(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                         fake_url: str) -> None:
    """keep (default): Radarr's title and plot stay, TMDB fills the tagline; nothing becomes a user lock."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo")
    await scan(client)
    movie = await only_movie(client)
    assert (movie["title"], movie["plot"]) == ("Dune Part Two", RADARR_PLOT)
    assert movie["tagline"] == "Dune: Part Two: believe the unbelievable."
    assert movie["locked_fields"] == []
    assert {"title", "plot", "original_title"} <= set(movie["nfo_held_fields"])
    assert "tagline" not in movie["nfo_held_fields"]
    root = nfo_root(folder / "movie.nfo")
    assert (root.findtext("title"), root.findtext("plot")) == ("Dune Part Two", RADARR_PLOT)
    job = await publish_again(client, "movie", movie["id"])
    assert job.result["hand_edits"] == [] and (await only_movie(client))["locked_fields"] == []


async def test_refresh_lets_providers_win(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                          fake_url: str) -> None:
    """`nfo.existing: refresh`: TMDB's values replace Radarr's, nothing is held or locked."""
    client = await agent_with(make_client, tmp_path, fake, fake_url, existing="refresh")
    folder = dune_folder(tmp_path, "movie.nfo")
    await scan(client)
    movie = await only_movie(client)
    assert (movie["title"], movie["plot"]) == ("Dune: Part Two", "TMDB's own overview.")
    assert movie["nfo_held_fields"] == [] and movie["locked_fields"] == []
    assert nfo_root(folder / "movie.nfo").findtext("plot") == "TMDB's own overview."


async def test_refresh_action_clears_holds_and_republishes(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                                           fake_url: str) -> None:
    """POST /api/movies/{id}/refresh: holds cleared, provider values taken and published; locks stay."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo")
    await scan(client)
    movie = await only_movie(client)
    resp = await client.patch(f"/api/movies/{movie['id']}/metadata", json={"tagline": "Mine."}, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/movies/{movie['id']}/refresh", headers=HEADERS)
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["cleared"] and "plot" in body["cleared"] and body["job_id"]
    await client.agent.queue.run_until_idle()
    movie = await get(client, f"/api/movies/{movie['id']}")
    assert (movie["title"], movie["plot"]) == ("Dune: Part Two", "TMDB's own overview.")
    assert movie["nfo_held_fields"] == [] and movie["locked_fields"] == ["tagline"] and movie["tagline"] == "Mine."
    root = nfo_root(folder / "movie.nfo")
    assert (root.findtext("plot"), root.findtext("tagline")) == ("TMDB's own overview.", "Mine.")
    assert nfos(folder) == ["movie.nfo"]
    missing = await client.post("/api/movies/9999/refresh", headers=HEADERS)
    assert missing.status == 404


async def test_series_keep_and_refresh(make_client: Factory, tmp_path: Path, fake: FakeTmdb, fake_url: str) -> None:
    """Jellyfin's tvshow.nfo: its plot is held under keep; POST /api/series/{id}/refresh lets TMDB's in."""
    fake.shows[4607] = sample_show(4607, "Lost", 2004, tvdb_id=73739, imdb_id="tt0411008", seasons=1, episodes=1,
                                   overview="TMDB's Lost overview.")
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    show = tmp_path / "media" / "tv" / "Lost (2004)"
    (show / "Season 01").mkdir(parents=True)
    (show / "Season 01" / "Lost - S01E01.mkv").write_bytes(b"episode")
    (show / "tvshow.nfo").write_bytes((SAMPLES / "jellyfin_tvshow.nfo").read_bytes())
    await scan(client, "TV")
    [series] = (await get(client, "/api/series"))["items"]
    assert series["plot"] == "A crash on a mysterious island." and "plot" in series["nfo_held_fields"]
    assert series["locked_fields"] == []
    resp = await client.post(f"/api/series/{series['id']}/refresh", headers=HEADERS)
    assert resp.status == 202, await resp.text()
    await client.agent.queue.run_until_idle()
    series = await get(client, f"/api/series/{series['id']}")
    assert series["plot"] == "TMDB's Lost overview." and series["nfo_held_fields"] == []
    assert nfo_root(show / "tvshow.nfo").findtext("plot") == "TMDB's Lost overview."
    [episode] = series["episodes"]
    resp = await client.post(f"/api/episodes/{episode['id']}/refresh", headers=HEADERS)
    assert resp.status == 202, await resp.text()
    missing = await client.post("/api/episodes/4242/refresh", headers=HEADERS)
    assert missing.status == 404 and "episode 4242 not found" in (await missing.json())["error"]


async def test_hand_edit_of_our_adopted_nfo_is_still_a_lock(make_client: Factory, tmp_path: Path,
                                                            fake: FakeTmdb, fake_url: str) -> None:
    """Once the agent wrote movie.nfo, a hand edit of it becomes a user lock (not a hold)."""
    client = await agent_with(make_client, tmp_path, fake, fake_url)
    folder = dune_folder(tmp_path, "movie.nfo")
    await scan(client)
    nfo = folder / "movie.nfo"
    nfo.write_text(nfo.read_text(encoding="utf-8").replace(RADARR_PLOT, "My own plot."), encoding="utf-8")
    movie = await only_movie(client)
    job = await publish_again(client, "movie", movie["id"])
    assert job.result["hand_edits"] == ["plot"], job.result
    movie = await only_movie(client)
    assert movie["locked_fields"] == ["plot"] and movie["plot"] == "My own plot."
    assert "My own plot." in nfo.read_text(encoding="utf-8") and nfos(folder) == ["movie.nfo"]


def test_config_existing_is_checked(tmp_path: Path) -> None:
    """`nfo.existing` takes keep or refresh (default keep); anything else is an error naming the key."""
    path = tmp_path / "agent.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nnfo:\n  existing: refrsh\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"nfo\.existing.*'keep' or 'refresh'"):
        load_config(path)
    path.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert load_config(path).nfo.existing == "keep"
