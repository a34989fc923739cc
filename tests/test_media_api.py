"""REST routes for movies, series and episodes against the real app and a scanned temp library."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS

from agent.jobs.scan import build_request, scan_parts
from agent.library.scan import run_scan

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def touch(path: Path, data: bytes = b"x") -> None:
    """Create a file and its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
async def api(make_client: Any, config: Any) -> Any:
    """A client over a scanned library: five movies (one with a poster) and one show with two episodes."""
    movies, tv = config.libraries[0].path, config.libraries[1].path
    for i, title in enumerate(["Alpha", "Bravo", "Charlie", "Delta", "Echo"]):
        touch(movies / f"{title} ({2000 + i})" / f"{title} ({2000 + i}).mkv")
    touch(movies / "Alpha (2000)" / "poster.jpg", PNG)
    touch(tv / "Show (2010)" / "Season 01" / "Show - S01E01 - One.mkv")
    touch(tv / "Show (2010)" / "Season 01" / "Show - S01E02 - Two.mkv")
    client = await make_client(config)
    for name in ("Movies", "TV"):
        await run_scan(scan_parts(client.agent), build_request(client.agent.cfg, {"library": name}))
    return client


async def get(client: Any, url: str, status: int = 200) -> Any:
    """GET with the key; check the status; return the JSON."""
    resp = await client.get(url, headers=HEADERS)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def movie_id(client: Any, title: str) -> int:
    """The id of a movie by title."""
    reply = await get(client, f"/api/movies?q={title}")
    return reply["items"][0]["id"]


async def test_movie_list_filters_sorting_and_pages(api: Any) -> None:
    """library, status, q, sort, limit and offset all apply; total counts the whole match."""
    reply = await get(api, "/api/movies?limit=2&offset=1")
    assert reply["total"] == 5 and [m["title"] for m in reply["items"]] == ["Bravo", "Charlie"]
    assert reply["items"][0]["library"] == "Movies" and reply["items"][0]["status"] == "unidentified"
    assert [m["year"] for m in (await get(api, "/api/movies?sort=-year&limit=2"))["items"]] == [2004, 2003]
    assert (await get(api, "/api/movies?q=lph"))["total"] == 1
    assert (await get(api, "/api/movies?q=100%25"))["total"] == 0
    assert (await get(api, "/api/movies?library=movies"))["total"] == 5
    assert (await get(api, "/api/movies?status=identified"))["total"] == 0
    assert (await get(api, "/api/movies?status=unidentified"))["total"] == 5
    assert "status" in (await get(api, "/api/movies?status=bogus", 400))["error"]
    assert "Movies" in json.dumps(await get(api, "/api/movies?library=Nope", 400))
    assert "sort" in (await get(api, "/api/movies?sort=colour", 400))["error"]
    await get(api, "/api/movies?limit=0", 400)


async def test_movie_detail_and_404s(api: Any) -> None:
    """A movie has all fields, locks, files, artwork and artwork_found; unknown ids are 404, bad ids 400."""
    movie = await get(api, f"/api/movies/{await movie_id(api, 'Alpha')}")
    for key in (
        "id",
        "library",
        "path",
        "file",
        "title",
        "year",
        "tmdb_id",
        "imdb_id",
        "status",
        "locked_fields",
        "nfo_path",
        "nfo_error",
        "artwork",
        "files",
        "artwork_found",
    ):
        assert key in movie
    assert movie["artwork_found"]["poster"].endswith("poster.jpg") and movie["files"] == []
    assert "not found" in (await get(api, "/api/movies/999", 404))["error"]
    await get(api, "/api/movies/abc", 400)


async def test_patch_locks_fields_and_republishes(api: Any) -> None:
    """PATCH saves and locks the fields, emits movie:updated and queues publish at priority 2."""
    mid = await movie_id(api, "Bravo")
    events: list[tuple[str, dict[str, Any]]] = []
    api.agent.events.subscribe(lambda t, d: events.append((t, d)))
    resp = await api.patch(
        f"/api/movies/{mid}/metadata",
        headers=HEADERS,
        json={"title": "Bravo!", "tmdb_id": "1234", "genres": "Drama / War"},
    )
    assert resp.status == 200
    movie = await resp.json()
    assert movie["title"] == "Bravo!" and movie["tmdb_id"] == 1234 and movie["genres"] == ["Drama", "War"]
    assert movie["locked_fields"] == ["genres", "title", "tmdb_id"] and movie["status"] == "identified"
    assert ("movie:updated", {"id": mid}) in events
    job = await api.agent.db.fetchone("SELECT * FROM job_queue WHERE type = 'publish'")
    assert json.loads(job["payload"]) == {"entity": "movie", "id": mid, "priority": 2}
    assert job["priority"] == 2 and job["dedupe_key"] == f"publish:movie:{mid}"


async def test_patch_rejects_unknown_fields_and_bad_values(api: Any) -> None:
    """Unknown fields are a 400 listing the allowed ones; bad values and empty bodies are 400s."""
    mid = await movie_id(api, "Bravo")
    resp = await api.patch(f"/api/movies/{mid}/metadata", headers=HEADERS, json={"colour": "red"})
    body = await resp.json()
    assert resp.status == 400 and "colour" in body["error"] and "title" in body["detail"]["fields"]
    resp = await api.patch(f"/api/movies/{mid}/metadata", headers=HEADERS, json={"year": "soon"})
    assert resp.status == 400
    resp = await api.patch(f"/api/movies/{mid}/metadata", headers=HEADERS, json={})
    assert resp.status == 400
    resp = await api.patch("/api/movies/999/metadata", headers=HEADERS, json={"title": "x"})
    assert resp.status == 404
    movie = await get(api, f"/api/movies/{mid}")
    assert movie["title"] == "Bravo" and movie["locked_fields"] == []


async def test_lock_and_unlock(api: Any) -> None:
    """Fields and artwork types lock and unlock; bad bodies are 400s."""
    mid = await movie_id(api, "Charlie")
    resp = await api.post(
        f"/api/movies/{mid}/lock", headers=HEADERS, json={"fields": ["plot", "art:poster"], "locked": True}
    )
    assert resp.status == 200 and (await resp.json())["locked_fields"] == ["art:poster", "plot"]
    resp = await api.post(
        f"/api/movies/{mid}/lock", headers=HEADERS, json={"fields": ["plot"], "locked": False}
    )
    assert (await resp.json())["locked_fields"] == ["art:poster"]
    for body in ({"fields": "plot"}, {"fields": ["plot"], "locked": "yes"}, {"fields": ["nonsense"]}):
        resp = await api.post(f"/api/movies/{mid}/lock", headers=HEADERS, json=body)
        assert resp.status == 400, body


async def test_enrich_queues_a_job(api: Any) -> None:
    """POST enrich answers 202 with the job id of a priority-2 enrich job."""
    mid = await movie_id(api, "Delta")
    await api.agent.db.execute("UPDATE job_queue SET status = 'completed'")
    resp = await api.post(f"/api/movies/{mid}/enrich", headers=HEADERS)
    assert resp.status == 202
    job = await api.agent.queue.get((await resp.json())["job_id"])
    assert job.type == "enrich" and job.priority == 2 and job.payload["id"] == mid
    assert (await api.post("/api/movies/999/enrich", headers=HEADERS)).status == 404


async def test_artwork_route_serves_cached_then_local_bytes(api: Any) -> None:
    """The cached asset wins; else the poster beside the media; else a JSON 404."""
    mid = await movie_id(api, "Alpha")
    resp = await api.get(f"/api/movies/{mid}/artwork/poster", headers=HEADERS)
    assert resp.status == 200 and await resp.read() == PNG
    cached = PNG + b"cached"
    sha = hashlib.sha256(cached).hexdigest()
    path = api.agent.cfg.data_dir / "cache" / "assets" / sha[:2] / sha[2:4] / f"{sha}.png"
    touch(path, cached)
    await api.agent.db.execute(
        "INSERT INTO cache_assets (sha256, ext, size, mime, created_at) VALUES (?, 'png', ?, 'image/png', 0)",
        (sha, len(cached)),
    )
    await api.agent.db.execute(
        "INSERT INTO asset_references (sha256, entity_type, entity_id, art_type, created_at)"
        " VALUES (?, 'movie', ?, 'poster', 0)",
        (sha, mid),
    )
    resp = await api.get(f"/api/movies/{mid}/artwork/poster?apikey={HEADERS['X-Api-Key']}")
    assert resp.status == 200 and await resp.read() == cached
    movie = await get(api, f"/api/movies/{mid}")
    assert (
        movie["artwork"][0]["url"] == f"/api/movies/{mid}/artwork/poster"
        and movie["artwork"][0]["sha256"] == sha
    )
    resp = await api.get(f"/api/movies/{mid}/artwork/clearlogo", headers=HEADERS)
    assert resp.status == 404 and "clearlogo" in (await resp.json())["error"]
    assert (await api.get(f"/api/movies/{mid}/artwork/..%2Fetc", headers=HEADERS)).status in (400, 404)


async def test_series_and_episode_routes(api: Any) -> None:
    """Series list and detail with seasons and episodes; episode detail, PATCH and lock."""
    reply = await get(api, "/api/series")
    assert reply["total"] == 1 and reply["items"][0]["episode_count"] == 2
    sid = reply["items"][0]["id"]
    show = await get(api, f"/api/series/{sid}")
    assert show["title"] == "Show" and show["library"] == "TV"
    assert [s["season"] for s in show["seasons"]] == [1]
    assert [(e["season"], e["episode"], e["title"]) for e in show["episodes"]] == [
        (1, 1, "One"),
        (1, 2, "Two"),
    ]
    eid = show["episodes"][1]["id"]
    episode = await get(api, f"/api/episodes/{eid}")
    assert episode["series_id"] == sid and episode["file"].endswith("S01E02 - Two.mkv")
    resp = await api.patch(f"/api/episodes/{eid}/metadata", headers=HEADERS, json={"plot": "Things happen."})
    assert resp.status == 200 and (await resp.json())["locked_fields"] == ["plot"]
    resp = await api.patch(f"/api/series/{sid}/metadata", headers=HEADERS, json={"season": 3})
    assert resp.status == 400
    resp = await api.post(f"/api/series/{sid}/lock", headers=HEADERS, json={"fields": ["title"]})
    assert (await resp.json())["locked_fields"] == ["title"]
    assert (await api.post(f"/api/series/{sid}/enrich", headers=HEADERS)).status == 202
    assert (await api.get(f"/api/episodes/{eid}/artwork/thumb", headers=HEADERS)).status == 404
    await get(api, "/api/series/999", 404)
    await get(api, "/api/episodes/999", 404)
    assert (await api.get("/api/series", headers={})).status == 401
