"""Locked fields and artwork survive re-enrichment; NFO edits made by hand become locked user edits."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from conftest import HEADERS
from fakes.tmdb import FakeTmdb
from test_pipeline import MATRIX, app, fake, movie_folder, nfo_root, only_movie, publish_again, scan

__all__ = ["app", "fake"]  # fixtures used by name (fake_url is conftest's)
TTL = 8 * 86400  # past the provider response cache's 7 days, so the next enrich asks the fake again


async def enrich(client: Any, movie_id: int) -> None:
    """POST /enrich for a movie (after the response cache expired) and drain the queue."""
    client.agent.clock.advance(TTL)
    resp = await client.post(f"/api/movies/{movie_id}/enrich", headers=HEADERS)
    assert resp.status == 202, await resp.text()
    await client.agent.queue.run_until_idle()
    failed, _ = await client.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]


async def set_lock(client: Any, movie_id: int, names: list[str], locked: bool) -> dict[str, Any]:
    """POST /lock; returns the movie."""
    resp = await client.post(f"/api/movies/{movie_id}/lock", json={"fields": names, "locked": locked},
                             headers=HEADERS)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def sha(path: Path) -> str:
    """sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def setup_movie(client: Any, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Scan The Matrix through enrich and publish; (folder, movie)."""
    folder = movie_folder(tmp_path)
    await scan(client)
    return folder, await only_movie(client)


async def test_patched_title_is_locked_and_survives_enrich(app: Any, tmp_path: Path, fake: FakeTmdb) -> None:
    """PATCH title locks it; re-enrich keeps it while other fields update; unlock brings TMDB's back."""
    folder, movie = await setup_movie(app, tmp_path)
    nfo = folder / f"{MATRIX}.nfo"
    resp = await app.patch(f"/api/movies/{movie['id']}/metadata", json={"title": "My Matrix"}, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["locked_fields"] == ["title"]
    await app.agent.queue.run_until_idle()
    assert nfo_root(nfo).findtext("title") == "My Matrix"

    fake.movies[603].update(title="The Matrix Remastered", tagline="Free your mind.")
    await enrich(app, movie["id"])
    root = nfo_root(nfo)
    assert root.findtext("title") == "My Matrix" and root.findtext("tagline") == "Free your mind."
    movie = await only_movie(app)
    assert movie["title"] == "My Matrix" and movie["locked_fields"] == ["title"]

    await set_lock(app, movie["id"], ["title"], False)
    await enrich(app, movie["id"])
    assert nfo_root(nfo).findtext("title") == "The Matrix Remastered"
    assert (await only_movie(app))["locked_fields"] == []


async def test_locked_poster_kept_when_provider_poster_changes(app: Any, tmp_path: Path,
                                                               fake: FakeTmdb) -> None:
    """`art:poster` locked: a new TMDB poster is not taken (fanart still updates); unlocked it is."""
    folder, movie = await setup_movie(app, tmp_path)
    poster, fanart = folder / "poster.jpg", folder / "fanart.jpg"
    old_poster, old_fanart = sha(poster), sha(fanart)
    await set_lock(app, movie["id"], ["art:poster"], True)
    images = fake.movies[603]["images"]
    images["posters"] = [dict(p, file_path=p["file_path"].replace("poster-", "newposter-"))
                         for p in images["posters"]]
    images["backdrops"] = [dict(b, file_path=b["file_path"].replace("backdrop-", "newbackdrop-"))
                           for b in images["backdrops"]]
    await enrich(app, movie["id"])
    assert sha(poster) == old_poster and sha(fanart) != old_fanart
    detail = await only_movie(app)
    assert "art:poster" in detail["locked_fields"]
    assert next(a for a in detail["artwork"] if a["art_type"] == "poster")["sha256"] == old_poster

    await set_lock(app, movie["id"], ["art:poster"], False)
    await enrich(app, movie["id"])
    assert sha(poster) != old_poster
    assert "newposter-" in (nfo_root(folder / f"{MATRIX}.nfo").findtext("thumb[@aspect='poster']") or "")


async def test_hand_edited_nfo_becomes_a_locked_edit(app: Any, tmp_path: Path, fake: FakeTmdb) -> None:
    """A plot edited by hand in the NFO is kept on the next publish, locked, and not overwritten by enrich."""
    folder, movie = await setup_movie(app, tmp_path)
    nfo = folder / f"{MATRIX}.nfo"
    original = nfo.read_text(encoding="utf-8")
    tmdb_plot = nfo_root(nfo).findtext("plot")
    assert tmdb_plot and original.count(tmdb_plot) == 1
    edited = original.replace(tmdb_plot, "My own plot &amp; notes.").replace("</movie>", "<mytag>keep</mytag></movie>")
    nfo.write_text(edited, encoding="utf-8")

    job = await publish_again(app, "movie", movie["id"])
    assert job.status.value == "completed", job.error
    assert job.result["hand_edits"] == ["plot"]
    assert nfo_root(nfo).findtext("plot") == "My own plot & notes." and nfo_root(nfo).findtext("mytag") == "keep"
    detail = await only_movie(app)
    assert detail["locked_fields"] == ["plot"] and detail["plot"] == "My own plot & notes."

    fake.movies[603]["overview"] = "A brand new TMDB overview."
    fake.movies[603]["tagline"] = "Changed upstream."
    await enrich(app, movie["id"])
    root = nfo_root(nfo)
    assert root.findtext("plot") == "My own plot & notes." and root.findtext("tagline") == "Changed upstream."
    assert root.findtext("mytag") == "keep"
    assert (await only_movie(app))["locked_fields"] == ["plot"]


async def test_untouched_nfo_is_not_taken_as_an_edit(app: Any, tmp_path: Path) -> None:
    """Publishing again over the agent's own NFO finds no hand edits and locks nothing."""
    _, movie = await setup_movie(app, tmp_path)
    job = await publish_again(app, "movie", movie["id"])
    assert job.result["hand_edits"] == [] and (await only_movie(app))["locked_fields"] == []


async def test_hand_edit_found_by_a_rescan_is_kept(app: Any, tmp_path: Path, fake: FakeTmdb) -> None:
    """A rescan that finds the hand-edited NFO: the edit survives the enrich + publish it triggers, locked."""
    folder, _ = await setup_movie(app, tmp_path)
    nfo = folder / f"{MATRIX}.nfo"
    text = nfo.read_text(encoding="utf-8")
    tmdb_plot = nfo_root(nfo).findtext("plot") or ""
    nfo.write_text(text.replace(tmdb_plot, "Edited on the NAS."), encoding="utf-8")
    app.agent.clock.advance(TTL)
    fake.movies[603]["overview"] = "Yet another TMDB overview."
    await scan(app)
    await app.agent.queue.run_until_idle()
    assert nfo_root(nfo).findtext("plot") == "Edited on the NAS."
    detail = await only_movie(app)
    assert detail["plot"] == "Edited on the NAS." and detail["locked_fields"] == ["plot"]


async def test_hand_edit_of_one_field_locks_only_that_field(app: Any, tmp_path: Path, fake: FakeTmdb) -> None:
    """Title edited by hand while TMDB changed the plot: only the title is an edit; the new plot is taken."""
    folder, _ = await setup_movie(app, tmp_path)
    nfo = folder / f"{MATRIX}.nfo"
    nfo.write_text(nfo.read_text(encoding="utf-8").replace("<title>The Matrix</title>", "<title>Matrix!</title>"),
                   encoding="utf-8")
    app.agent.clock.advance(TTL)
    fake.movies[603]["overview"] = "A newer TMDB overview."
    await scan(app)
    await app.agent.queue.run_until_idle()
    root = nfo_root(nfo)
    assert root.findtext("title") == "Matrix!" and root.findtext("plot") == "A newer TMDB overview."
    assert (await only_movie(app))["locked_fields"] == ["title"]
