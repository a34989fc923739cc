"""Scan -> enrich -> publish through the real app against a fake TMDB/fanart.tv on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import HEADERS, make_config, write_config
from fakes.tmdb import FakeTmdb, sample_fanart_movie, sample_movie, sample_show

from agent import cli
from agent.clock import FakeClock

MATRIX = "The Matrix (1999)"
SHOW = "Game of Thrones (2011)"
PAYLOADS = Path(__file__).parent / "payloads"


@pytest.fixture
def fake() -> FakeTmdb:
    """A fake TMDB + fanart.tv with The Matrix and Game of Thrones."""
    return FakeTmdb(movies={603: sample_movie()}, shows={1399: sample_show()},
                    fanart_movies={603: sample_fanart_movie()})


@pytest.fixture
async def fake_url(aiohttp_server: Any, fake: FakeTmdb) -> str:
    """The fake served on loopback; its base URL."""
    server = await aiohttp_server(fake.app)
    return str(server.make_url("")).rstrip("/")


def provider_extra(fake: FakeTmdb, url: str, fanart: bool = True) -> dict[str, Any]:
    """Config `providers:` pointing TMDB (and fanart.tv) at the fake."""
    out: dict[str, Any] = {"tmdb": {"api_key": fake.api_key, "base_url": f"{url}/3",
                                    "image_base_url": f"{url}/t/p/original"}}
    if fanart:
        out["fanart"] = {"api_key": fake.fanart_key, "base_url": f"{url}/v3"}
    return out


Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def app(make_client: Factory, tmp_path: Path, fake: FakeTmdb, fake_url: str) -> Any:
    """The real app with TMDB + fanart.tv at the fake (workers not started)."""
    cfg = make_config(tmp_path, extra={"providers": provider_extra(fake, fake_url)})
    return await make_client(cfg, clock=FakeClock())


def movie_folder(tmp_path: Path, name: str = MATRIX) -> Path:
    """A movie folder with its video in the Movies library."""
    folder = tmp_path / "media" / "movies" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.mkv").write_bytes(b"\x1aE\xdf\xa3 matrix video")
    return folder


async def scan(client: Any, library: str = "Movies") -> None:
    """POST a scan and drain the queue; every job must have completed."""
    resp = await client.post(f"/api/libraries/{library}/scan", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    await assert_no_failures(client)


async def assert_no_failures(client: Any) -> None:
    """No job ended failed."""
    failed, _ = await client.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]


async def get(client: Any, url: str) -> Any:
    """GET JSON with the key."""
    resp = await client.get(url, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def only_movie(client: Any) -> dict[str, Any]:
    """The detail of the library's only movie."""
    items = (await get(client, "/api/movies"))["items"]
    assert len(items) == 1, items
    return await get(client, f"/api/movies/{items[0]['id']}")


async def served(url: str) -> bytes:
    """What the fake serves at a URL."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.read()


def nfo_root(path: Path) -> ET.Element:
    """Parse an NFO (it must be well-formed XML)."""
    return ET.fromstring(path.read_bytes())


async def test_movie_end_to_end(app: Any, tmp_path: Path, fake_url: str) -> None:
    """Scan -> enrich -> publish: a Kodi v20 NFO, byte-identical artwork from the cache, status enriched."""
    folder = movie_folder(tmp_path)
    await scan(app)
    root = nfo_root(folder / f"{MATRIX}.nfo")
    assert root.tag == "movie" and root.findtext("title") == "The Matrix"
    [uid] = [u for u in root.findall("uniqueid") if u.get("type") == "tmdb"]
    assert uid.text == "603" and uid.get("default") == "true"
    rating = root.find("ratings/rating")
    assert rating is not None and rating.get("name") == "themoviedb" and rating.findtext("value") == "8.2"
    assert root.findtext("mpaa") == "R"
    assert root.findtext("set/name") == "The Matrix Collection"
    actors = root.findall("actor")
    assert actors[0].findtext("name") == "Actor 0 the-matrix" and actors[0].findtext("role") == "Role 0"
    assert actors[1].findtext("thumb", "").startswith(f"{fake_url}/t/p/original/")
    assert root.findtext("trailer") == "plugin://plugin.video.youtube/play/?video_id=vKQi3bBA1y8"
    assert [g.text for g in root.findall("genre")] == ["Action", "Science Fiction"]

    movie = await only_movie(app)
    assert movie["status"] == "enriched"
    art = {a["art_type"]: a for a in movie["artwork"] if a["position"] == 0}
    poster, fanart = folder / "poster.jpg", folder / "fanart.jpg"
    for path, kind in ((poster, "poster"), (fanart, "fanart")):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert sha == art[kind]["sha256"] and art[kind]["library_path"] == str(path)
        cached = tmp_path / "data" / "cache" / "assets" / sha[:2] / sha[2:4] / f"{sha}.jpg"
        assert cached.read_bytes() == path.read_bytes()
    assert poster.read_bytes() == await served(f"{fake_url}/t/p/original/the-matrix-poster-en-1-1000x1500.jpg")
    files = {Path(f["path"]).name: f["kind"] for f in movie["files"]}
    assert files[f"{MATRIX}.nfo"] == "nfo" and files["poster.jpg"] == "asset" and "fanart.jpg" in files


async def test_movie_nfo_named_movie_nfo(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                         fake_url: str) -> None:
    """`nfo.movie_filename: movie` writes movie.nfo instead of <stem>.nfo."""
    cfg = make_config(tmp_path, extra={"providers": provider_extra(fake, fake_url),
                                       "nfo": {"movie_filename": "movie"}})
    client = await make_client(cfg, clock=FakeClock())
    folder = movie_folder(tmp_path)
    await scan(client)
    assert nfo_root(folder / "movie.nfo").findtext("title") == "The Matrix"
    assert not (folder / f"{MATRIX}.nfo").exists()


async def test_series_end_to_end(app: Any, tmp_path: Path) -> None:
    """A show with two episodes: tvshow.nfo, poster, season poster, episode NFOs and thumbs."""
    show = tmp_path / "media" / "tv" / SHOW
    season = show / "Season 01"
    season.mkdir(parents=True)
    stems = [f"Game of Thrones - S01E0{n}" for n in (1, 2)]
    for stem in stems:
        (season / f"{stem}.mkv").write_bytes(b"episode " + stem.encode())
    await scan(app, "TV")
    root = nfo_root(show / "tvshow.nfo")
    assert root.tag == "tvshow" and root.findtext("title") == "Game of Thrones"
    assert {u.get("type"): u.text for u in root.findall("uniqueid")}["tmdb"] == "1399"
    assert (show / "poster.jpg").stat().st_size > 0 and (show / "season01-poster.jpg").stat().st_size > 0
    for n, stem in enumerate(stems, start=1):
        ep = nfo_root(season / f"{stem}.nfo")
        assert ep.tag == "episodedetails" and ep.findtext("title") == f"Game of Thrones S01E0{n}"
        assert (ep.findtext("season"), ep.findtext("episode")) == ("1", str(n))
        assert (season / f"{stem}-thumb.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    series = (await get(app, "/api/series"))["items"]
    assert [s["status"] for s in series] == ["enriched"]


RADARR_NFO = """<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<movie>
  <title>The Matrix</title>
  <originaltitle>The Matrix</originaltitle>
  <ratings>
    <rating name="imdb" max="10" default="true"><value>8.7</value><votes>2000000</votes></rating>
  </ratings>
  <userrating />
  <plot>A hacker learns the truth.</plot>
  <runtime>136</runtime>
  <mpaa>R</mpaa>
  <id>603</id>
  <uniqueid type="tmdb" default="true">603</uniqueid>
  <uniqueid type="imdb">tt0133093</uniqueid>
  <genre>Action</genre>
  <genre>Science Fiction</genre>
  <premiered>1999-03-30</premiered>
  <year>1999</year>
  <watched>true</watched>
  <someothertool>x</someothertool>
  <actor><name>Keanu Reeves</name><role>Neo</role></actor>
</movie>
"""


async def test_no_key_enriches_from_existing_nfo(make_client: Factory, tmp_path: Path) -> None:
    """No provider key: fields come from the Radarr NFO, which is rewritten for Kodi keeping foreign tags."""
    client = await make_client(make_config(tmp_path), clock=FakeClock())
    folder = movie_folder(tmp_path)
    nfo = folder / f"{MATRIX}.nfo"
    nfo.write_text(RADARR_NFO, encoding="utf-8")
    await scan(client)
    text = nfo.read_text(encoding="utf-8")
    assert text != RADARR_NFO and "<userrating />" not in text
    root = nfo_root(nfo)
    assert root.findtext("title") == "The Matrix" and root.findtext("plot") == "A hacker learns the truth."
    assert root.findtext("watched") == "true" and root.findtext("someothertool") == "x"
    assert {u.get("type"): u.text for u in root.findall("uniqueid")} == {"tmdb": "603", "imdb": "tt0133093"}
    assert [g.text for g in root.findall("genre")] == ["Action", "Science Fiction"]
    assert root.findtext("actor/name") == "Keanu Reeves"
    movie = await only_movie(client)
    assert movie["status"] == "enriched" and movie["plot"] == "A hacker learns the truth."


async def test_no_key_radarr_webhook_uses_payload_and_remote_images(
        make_client: Factory, tmp_path: Path, fake_url: str) -> None:
    """A Radarr Download with no provider key: NFO from the payload, poster from images[].remoteUrl."""
    media = tmp_path / "media" / "movies"
    cfg = make_config(tmp_path, extra={"sources": {"radarr": {"path_mappings": [
        {"remote": "/movies", "local": str(media)}]}}})
    client = await make_client(cfg, clock=FakeClock())
    folder = media / MATRIX
    folder.mkdir(parents=True)
    video = folder / f"{MATRIX} Bluray-1080p.mkv"
    video.write_bytes(b"video")
    data = json.loads((PAYLOADS / "radarr" / "download.json").read_text(encoding="utf-8"))
    poster_url = f"{fake_url}/t/p/original/radarr-poster-1000x1500.jpg"
    fanart_url = f"{fake_url}/t/p/original/radarr-fanart-1920x1080.jpg"
    for image in data["movie"]["images"]:
        if image["coverType"] in ("poster", "fanart"):
            image["remoteUrl"] = poster_url if image["coverType"] == "poster" else fanart_url
        else:
            image.pop("remoteUrl", None)  # nothing else may leave this machine
    resp = await client.post("/api/webhooks/radarr", json=data, headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    await assert_no_failures(client)
    root = nfo_root(video.with_suffix(".nfo"))
    assert (root.findtext("title"), root.findtext("year")) == ("The Matrix", "1999")
    assert root.findtext("plot") == "A hacker learns the truth about reality."
    assert [g.text for g in root.findall("genre")] == ["Action", "Science Fiction"]
    assert {u.get("type"): u.text for u in root.findall("uniqueid")}["tmdb"] == "603"
    assert (folder / "poster.jpg").read_bytes() == await served(poster_url)
    assert (folder / "fanart.jpg").read_bytes() == await served(fanart_url)
    assert (await only_movie(client))["status"] == "enriched"
