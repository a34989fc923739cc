"""Scan -> enrich -> publish through the real app against a fake TMDB/fanart.tv on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
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
from agent.providers import base as provider_base

MATRIX = "The Matrix (1999)"
SHOW = "Game of Thrones (2011)"
PAYLOADS = Path(__file__).parent / "payloads"


@pytest.fixture
def fake() -> FakeTmdb:
    """A fake TMDB + fanart.tv with The Matrix and Game of Thrones."""
    return FakeTmdb(movies={603: sample_movie()}, shows={1399: sample_show()},
                    fanart_movies={603: sample_fanart_movie()})


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
    assert root.find("set").get("tmdbcolid") == "2344"  # Jellyfin reads the collection id from here
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
    before = snapshot(show)
    for entity, table in (("series", "series"), ("episode", "episodes")):
        for row in await app.agent.db.fetchall(f"SELECT id FROM {table}"):
            job = await publish_again(app, entity, row["id"])
            assert job.status.value == "completed" and job.result["written"] == [], job.result
    assert snapshot(show) == before


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


async def publish_again(client: Any, entity: str, item_id: int) -> Any:
    """Queue a publish of one item, drain, return the finished job."""
    job = await client.agent.queue.enqueue("publish", {"entity": entity, "id": item_id})
    await client.agent.queue.run_until_idle()
    return await client.agent.queue.get(job.id)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (mtime_ns, inode) of every file under a folder."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


async def test_publishing_twice_writes_nothing(app: Any, tmp_path: Path) -> None:
    """A second publish of unchanged data skips every file: mtimes and inodes stay."""
    folder = movie_folder(tmp_path)
    await scan(app)
    before = snapshot(folder)
    assert f"{MATRIX}.nfo" in before and "poster.jpg" in before
    movie = await only_movie(app)
    job = await publish_again(app, "movie", movie["id"])
    assert job.status.value == "completed", job.error
    assert job.result["written"] == [] and job.result["removed"] == [] and job.result["hand_edits"] == []
    assert len(job.result["unchanged"]) == len(before) - 1  # every file but the video
    assert snapshot(folder) == before


async def test_crash_mid_publish_leaves_no_partial_files(app: Any, tmp_path: Path, fake: FakeTmdb,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """os.replace failing on the 2nd library file: the job retries, no temp or half file stays, re-run ends."""
    folder = movie_folder(tmp_path)
    calls: list[str] = []
    before: dict[str, bytes | None] = {}  # what the failed target held just before the failing replace
    real_replace = os.replace

    def flaky(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        """Fail the second replace into the library, once (library files are renamed inside a folder handle)."""
        where = str(dst)
        if kwargs.get("dst_dir_fd") is not None:
            where = os.path.join(os.readlink(f"/proc/self/fd/{kwargs['dst_dir_fd']}"), where)
        if where.startswith(str(folder)):
            calls.append(where)
            if len(calls) == 2:
                target = Path(where)
                before[where] = target.read_bytes() if target.is_file() else None
                raise OSError(errno.EIO, "injected I/O error")
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky)
    await app.post("/api/libraries/Movies/scan", headers=HEADERS)
    await app.agent.queue.run_until_idle()
    jobs = (await app.agent.queue.list(type_="publish"))[0]  # fields first, then the republish with artwork
    [job] = [j for j in jobs if j.status.value != "completed"]
    assert job.status.value == "pending" and "injected I/O error" in (job.error or ""), job
    names = os.listdir(folder)
    assert not [n for n in names if ".metarr-tmp-" in n], names
    failed = Path(calls[1])  # absent, or exactly as it was before: never half written
    assert (failed.read_bytes() if failed.name in names else None) == before[calls[1]]
    first = Path(calls[0])
    root = nfo_root(first) if first.suffix == ".nfo" else None
    assert root is None or root.findtext("title") == "The Matrix"
    app.agent.clock.advance(3600)
    await app.agent.queue.run_until_idle()
    job = await app.agent.queue.get(job.id)
    assert job.status.value == "completed", job.error
    assert nfo_root(folder / f"{MATRIX}.nfo").findtext("title") == "The Matrix"
    assert (folder / "poster.jpg").is_file() and (folder / "fanart.jpg").is_file()
    assert not [n for n in os.listdir(folder) if ".metarr-tmp-" in n]


async def test_tmdb_429_retries_after_retry_after(app: Any, tmp_path: Path, fake: FakeTmdb,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """TMDB 429 with a Retry-After too long to wait inline -> the enrich job is pending again, due then.

    The inline limit is lowered to 0 s so the limiter's own (real-time) pause lasts one second, not 30.
    """
    monkeypatch.setattr(provider_base, "THROTTLE_WAIT_MAX", 0.0)
    wait = 1.0
    movie_folder(tmp_path)
    fake.fail("/3/movie/603", status=429, retry_after=wait)
    await app.post("/api/libraries/Movies/scan", headers=HEADERS)
    await app.agent.queue.run_until_idle()
    [job] = (await app.agent.queue.list(type_="enrich"))[0]
    assert job.status.value == "pending" and "429" in (job.error or "")
    assert job.run_after == pytest.approx(app.agent.clock.now() + wait, abs=0.01)
    assert not (await app.agent.queue.list(type_="publish"))[0]
    app.agent.clock.advance(wait)
    await app.agent.queue.run_until_idle()
    assert (await app.agent.queue.get(job.id)).status.value == "completed"
    assert (tmp_path / "media" / "movies" / MATRIX / f"{MATRIX}.nfo").is_file()


async def test_tmdb_401_fails_permanently(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                          fake_url: str) -> None:
    """A key TMDB rejects: the enrich job fails once, saying which key to fix."""
    extra = provider_extra(fake, fake_url, fanart=False)
    extra["tmdb"]["api_key"] = "wrong-key"
    client = await make_client(make_config(tmp_path, extra={"providers": extra}), clock=FakeClock())
    movie_folder(tmp_path)
    await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    await client.agent.queue.run_until_idle()
    [job] = (await client.agent.queue.list(type_="enrich"))[0]
    assert job.status.value == "failed" and job.attempts == 1
    assert "rejected the API key (401)" in job.error and "providers.tmdb.api_key" in job.error
    assert "wrong-key" not in job.error


async def run_cli(*argv: str) -> int:
    """agent.cli.main in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(cli.main, list(argv))


async def test_cache_cli_verify_and_gc(app: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify exits 0 when clean, 1 naming a corrupt file (quarantined); gc prints what it deleted."""
    movie_folder(tmp_path)
    await scan(app)
    config = str(tmp_path / "agent.yaml")
    assert await run_cli("cache", "verify", "--config", config) == 0
    out = capsys.readouterr().out
    assert "0 corrupt, 0 missing" in out and "checked " in out
    movie = await only_movie(app)
    poster = next(a for a in movie["artwork"] if a["art_type"] == "poster")
    sha = poster["sha256"]
    cached = tmp_path / "data" / "cache" / "assets" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    cached.unlink()  # a new file in its place (the library file is a separate copy either way), then corrupt it
    cached.write_bytes(b"\xff\xd8\xff corrupted")
    assert await run_cli("cache", "verify", "--config", config) == 1
    out = capsys.readouterr().out
    assert f"corrupt: {cached}" in out and "1 corrupt" in out
    assert not cached.exists() and list((tmp_path / "data" / "cache" / "quarantine").iterdir())
    assert (tmp_path / "media" / "movies" / MATRIX / "poster.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

    cache = app.agent.cache
    loose = await cache.store_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    await app.agent.db.execute("UPDATE cache_assets SET unreferenced_since = 1000 WHERE sha256 = ?",
                               (loose.sha256,))
    orphan = cache.assets_dir / "ee" / "ee" / ("e" * 64 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x" * 50)
    temp = cache.root / "tmp" / "left-by-a-crash.part"
    temp.write_bytes(b"y" * 20)
    for path in (orphan, temp):
        os.utime(path, (1000, 1000))
    assert await run_cli("cache", "gc", "--config", config) == 0
    out = capsys.readouterr().out
    assert "deleted 1 unreferenced asset(s), 1 orphan file(s), 1 stale temp file(s)" in out
    assert not loose.path.exists() and not orphan.exists() and not temp.exists()
    assert (await app.agent.db.fetchone("SELECT 1 FROM cache_assets WHERE sha256 = ?", (loose.sha256,))) is None
    assert await run_cli("cache", "verify", "--config", config) == 0


async def test_cache_cli_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No database yet: a one-line error, exit 1, nothing created."""
    config = write_config(tmp_path)
    assert await run_cli("cache", "gc", "--config", str(config)) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "data" / "metarr.sqlite").exists()


async def test_tmdb_rate_limit_is_configurable(make_client: Factory, tmp_path: Path, fake: FakeTmdb,
                                               fake_url: str) -> None:
    """providers.tmdb.rate_limit sets the token bucket (requests per 10 s, default 400); 0 is refused."""
    from agent.config import ConfigError

    extra = provider_extra(fake, fake_url, fanart=False)
    client = await make_client(make_config(tmp_path, extra={"providers": extra}))
    assert (client.agent.providers.tmdb.limiter.capacity, client.agent.providers.tmdb.limiter.period) == (400, 10.0)
    extra["tmdb"]["rate_limit"] = 500
    fast = await make_client(make_config(tmp_path / "fast", extra={"providers": extra}))
    assert fast.agent.providers.tmdb.limiter.capacity == 500
    extra["tmdb"]["rate_limit"] = 0
    with pytest.raises(ConfigError, match=r"providers\.tmdb\.rate_limit: must be between 1 and 100000"):
        make_config(tmp_path / "bad", extra={"providers": extra})


async def test_movie_unknown_to_tmdb_stays_unidentified(app: Any, tmp_path: Path) -> None:
    """A folder TMDB has never heard of: the jobs complete, an NFO from the name is written, status stays."""
    folder = movie_folder(tmp_path, "Nobody Knows This (2003)")
    await scan(app)
    movie = await only_movie(app)
    assert movie["status"] == "unidentified" and movie["title"] == "Nobody Knows This"
    assert nfo_root(folder / "Nobody Knows This (2003).nfo").findtext("year") == "2003"
    [job] = (await app.agent.queue.list(type_="enrich"))[0]
    assert job.status.value == "completed" and job.result["fields"] == []


async def test_re_enrich_with_nothing_new_rewrites_nothing(app: Any, tmp_path: Path) -> None:
    """Enriching again when TMDB has nothing new leads to a publish that writes and notifies nothing."""
    folder = movie_folder(tmp_path)
    await scan(app)
    before = snapshot(folder)
    movie = await only_movie(app)
    app.agent.clock.advance(8 * 86400)  # past the response cache: TMDB is asked again
    resp = await app.post(f"/api/movies/{movie['id']}/enrich", headers=HEADERS)
    assert resp.status == 202
    await app.agent.queue.run_until_idle()
    publishes = (await app.agent.queue.list(type_="publish"))[0]
    latest = max(publishes, key=lambda j: j.id)
    assert latest.status.value == "completed" and latest.result["written"] == [], latest.result
    assert snapshot(folder) == before
